"""The resumable state of a training run: what is saved, and the checks before (re)starting.

The state file (``OUTPUT.train-state.pt``) holds the model, the optimizer (and AMP
scaler), the iteration count, the loss history and the run's flat settings. A
``resume`` continues only the same run: the settings in :data:`RESUME_KEYS` and the
painting (by content) must match.

The checks every resumable command shares (:func:`load_resume_state`,
:func:`setting_diffs`, :func:`check_fresh_start`) live here too: ``learn-style`` and
``distill-styles`` save states of their own but start and resume by the same rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, OutputError, StylizeError
from ..files import atomic_output, file_sha256
from ..models.checkpoint import resolve_checkpoint
from .config import STATE_SUFFIX, TrainConfig

__all__ = [
    "RESUMABLE_PARTS",
    "RESUME_KEYS",
    "STATE_SUFFIX",
    "STATE_VERSION",
    "check_fresh_start",
    "check_start",
    "load_resume_state",
    "save_state",
    "setting_diffs",
]

STATE_VERSION = 1

#: Settings that must agree between a run and its ``--resume``: changing any of them
#: would make the continued run a different run.
RESUME_KEYS = (
    "preset",
    "image_size",
    "style_size",
    "batch_size",
    "lr",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layer_weights",
    "distill_weight",
    "seed",
    "teacher",
    "val_fraction",
    "temporal_weight",
    "init",
)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _file_sha256(path: str | os.PathLike[str]) -> str:
    return file_sha256(path)


def save_state(
    config: TrainConfig,
    *,
    iteration: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    history: list[dict[str, float]],
    init_info: dict[str, Any] | None,
    style_sha256: str,
) -> None:
    """Write the state of ``config``'s run after ``iteration`` steps, atomically."""
    _atomic_torch_save(
        {
            "version": STATE_VERSION,
            "config": config.to_dict(),
            "iteration": iteration,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "history": history,
            "init_info": init_info,
            "style_sha256": style_sha256,  # --resume checks the painting by content, not by path
        },
        config.state_path,
    )


#: What every resumable state holds (train, learn-style and distill-styles save these).
RESUMABLE_PARTS: dict[str, type] = {"config": dict, "model": dict, "optimizer": dict, "history": list, "iteration": int}


def load_resume_state(path: Path, what: str, parts: Mapping[str, type] = RESUMABLE_PARTS) -> dict[str, Any]:
    """Read a state file for ``--resume``, checking what resuming will read from it.

    Args:
        path: the state file.
        what: how the messages name it (``training state``, ``learn-style state``...).
        parts: keys that must be there, with their types.

    Raises:
        InputError: one line naming the first problem: missing or unreadable, not a
            dict, a missing or mistyped part, a negative iteration, a weight that is
            not a tensor or holds NaN/Inf.
    """
    where = f"--resume: {what} {str(path)!r}"
    if not path.is_file():
        raise InputError(f"--resume: no {what} {str(path)!r} to continue from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many types all mean "unusable"
        raise InputError(f"{where} is unreadable: {exc}") from None
    if not isinstance(state, dict):
        raise InputError(f"{where} is not a {what} (a {type(state).__name__})")
    for key, kind in parts.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise InputError(f"{where} is damaged: {key!r} is missing or not a {kind.__name__}")
    if state.get("iteration", 0) < 0:
        raise InputError(f"{where} is damaged: iteration {state['iteration']} < 0")
    for name, value in dict(state.get("model") or {}).items():
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{where} is damaged: weight {str(name)!r} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"{where} is damaged: weight {str(name)!r} holds NaN or Inf")
    return state


def setting_diffs(
    saved: Mapping[str, Any],
    now: Mapping[str, Any],
    keys: Iterable[str],
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """``key saved -> now`` for each of ``keys`` whose value differs from the saved run's.

    A key the saved settings lack (a state written before the setting existed) reads
    as its value in ``defaults`` (None without one).
    """
    defaults = defaults or {}
    out = []
    for key in keys:
        before = saved.get(key, defaults.get(key))
        if before != now[key]:
            out.append(f"{key} {before!r} -> {now[key]!r}")
    return out


def check_fresh_start(output: Path, state_path: Path, inputs: Sequence[Path], *, overwrite: bool, what: str) -> None:
    """Checks before a run that does not resume: the output may be written, its folder exists.

    Args:
        output: the file the run will write.
        state_path: its resumable state; one left by an earlier run is not replaced silently.
        inputs: files the output must not overwrite.
        overwrite: replace an existing output and state.
        what: how the message names the state (``training state``...).

    Raises:
        OutputError: the output (or a stale state) exists without ``overwrite``, an
            input would be overwritten, or the folder cannot be created.
    """
    from ..io.paths import check_output

    check_output(output, list(inputs), overwrite=overwrite)
    try:
        # Now, not at the first save: a missing folder must not cost the work done by then.
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {str(output.parent)!r}: {exc.strerror or exc}") from None
    if state_path.exists() and not overwrite:
        raise OutputError(
            f"{what} {str(state_path)!r} exists: pass --resume to continue it or --overwrite to start over"
        )


def check_start(config: TrainConfig) -> dict[str, Any] | None:
    """Validate outputs for a fresh run (returns None), or load and check the state of a resumed one.

    Raises:
        InputError: a missing painting or ``init``; for ``resume``, a missing,
            unreadable or foreign state, or settings that differ from the saved run.
        OutputError: the output (or a stale state) exists without ``overwrite``.
    """
    out, state_path = Path(config.run.output), config.state_path
    style_image, init = config.loss.style_image, config.model.init
    if not Path(style_image).is_file():
        raise InputError(f"style image {style_image!r} does not exist")
    if init and not config.run.resume:
        try:
            resolve_checkpoint(init)  # a style name works, as for --teacher
        except StylizeError as exc:
            raise InputError(f"--init: {exc}") from None
    if config.run.resume:
        state = load_resume_state(state_path, "training state")
        if state.get("version") != STATE_VERSION:
            raise InputError(f"--resume: {str(state_path)!r} has state version {state.get('version')!r}")
        # States written before a setting existed lack its key: read those as its default.
        now = {k: config.option(k) for k in RESUME_KEYS}
        diffs = setting_diffs(state["config"], now, RESUME_KEYS, TrainConfig.defaults())
        saved_painting = state.get("style_sha256")
        if saved_painting is not None and saved_painting != _file_sha256(style_image):
            diffs.append(f"style image {style_image!r} is not the painting the run started with")
        if diffs:
            raise InputError(f"--resume: settings differ from the saved run: {'; '.join(diffs)}")
        return dict(state)
    check_fresh_start(out, state_path, [Path(style_image)], overwrite=config.run.overwrite, what="training state")
    return None
