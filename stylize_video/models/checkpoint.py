"""Style checkpoints: safetensors weights plus JSON metadata, and safe loading.

A checkpoint records what it is (style, painting credit), how it was built
(architecture, training settings, validation losses) and the format version, the way
torchvision's ``Weights`` carry their ``meta``. Loading never runs pickle code: ``.pth``
files go through ``torch.load(weights_only=True)``, whose restricted unpickler only
rebuilds tensors and plain containers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..files import atomic_output
from .transform_net import PRESETS, NetConfig, TransformNet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_META_KEY = "stylize_video"
_SUFFIXES = (".safetensors", ".pth", ".pt", ".model")

#: Where bare style names are looked up, first match wins.
_PROJECT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass
class CheckpointMeta:
    """Everything a checkpoint says about itself besides its weights."""

    name: str
    arch: NetConfig = field(default_factory=NetConfig)
    preset: str | None = None
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["arch"] = self.arch.to_dict()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CheckpointMeta:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        version = int(data.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is newer than this program's ({FORMAT_VERSION}); upgrade stylize-video"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["arch"] = NetConfig.from_dict(data.get("arch", {}))
        return cls(**kwargs)

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [p for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class Checkpoint:
    """A loaded style: a CPU fp32 :class:`TransformNet` in eval mode and its metadata."""

    model: TransformNet
    meta: CheckpointMeta
    path: Path | None = None


def search_dirs() -> list[Path]:
    """Folders searched for bare style names, in order.

    ``$STYLIZE_VIDEO_CHECKPOINTS`` (``os.pathsep``-separated) first, then the
    project's ``checkpoints/`` (a source checkout or editable install), then the
    copy a wheel installs under ``<prefix>/share/stylize-video/checkpoints``.
    """
    dirs = [Path(p) for p in os.environ.get("STYLIZE_VIDEO_CHECKPOINTS", "").split(os.pathsep) if p]
    dirs.append(_PROJECT_CHECKPOINTS)
    dirs.append(Path(sys.prefix) / "share" / "stylize-video" / "checkpoints")
    return dirs


def available_styles() -> dict[str, Path]:
    """Map of style name -> checkpoint path over :func:`search_dirs` (first wins)."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.safetensors")):
            found.setdefault(p.stem, p)
    return found


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a style name (``starry-night``) or a path into an existing file path.

    Raises:
        CheckpointError: nothing matches; the message lists known styles.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    is_bare = os.sep not in text and "/" not in text and path.suffix not in _SUFFIXES
    if path.is_file():
        return path
    if is_bare:
        # Before "is a directory": `-o udnie-lite` makes a folder named after the style.
        styles = available_styles()
        if text in styles:
            return styles[text]
    if path.is_dir():
        raise CheckpointError(f"checkpoint {text!r} is a directory, not a weights file")
    if path.exists():
        return path  # a fifo or device: let the loader say what is wrong with it
    if is_bare:
        known = ", ".join(sorted(styles)) or "none installed"
        raise CheckpointError(f"unknown style {text!r} (known styles: {known})")
    raise CheckpointError(f"checkpoint file {text!r} does not exist")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TransformNet,
    meta: CheckpointMeta,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write ``model`` + ``meta`` to a ``.safetensors`` file atomically.

    Weights are stored in ``dtype`` (fp16 by default: half the size, and the
    weights of these small nets lose nothing visible). The file appears under its
    final name only once complete.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint {str(path)!r} must end in .safetensors")
    meta = dataclasses.replace(meta, arch=model.config, created=meta.created or _now())
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata={_META_KEY: meta.to_json()})
    return path


def load_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Load a style by name or path.

    Accepts our ``.safetensors`` checkpoints and the ``.pth``/``.model`` state dicts
    of pytorch/examples ``fast_neural_style`` (legacy InstanceNorm running stats
    dropped, 0..255 output layout kept).

    Raises:
        CheckpointError: missing, truncated, foreign or mismatched file, with the
            file name and the problem in the message.
    """
    path = resolve_checkpoint(name_or_path)
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
    else:
        state = _read_torch(path)
        meta = None
    if meta is None:
        state, meta = _infer_foreign(path, state)
    model = TransformNet(meta.arch)
    _check_keys(path, model.state_dict(), state)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval().requires_grad_(False)
    return Checkpoint(model=model, meta=meta, path=path)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta | None]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get(_META_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if not state:
        raise CheckpointError(f"{path}: contains no tensors")
    if raw_meta is None:
        return state, None
    try:
        meta = CheckpointMeta.from_json(raw_meta)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable stylize-video metadata: {exc}") from None
    return state, meta


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refusing to unpickle arbitrary objects; only plain state dicts are accepted ({_first_line(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch file (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items()}


def _infer_foreign(path: Path, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Recognise a pytorch/examples checkpoint or a bare state dict of one of our presets."""
    if "conv1.conv2d.weight" in state:
        mapped = _from_pytorch_examples(state)
        arch = dataclasses.replace(PRESETS["full"], output="linear255")
        return mapped, CheckpointMeta(
            name=path.stem, arch=arch, preset="full", credit="imported from pytorch/examples fast_neural_style"
        )
    for name, arch in PRESETS.items():
        expected = TransformNet(arch).state_dict()
        if set(expected) == set(state) and all(expected[k].shape == state[k].shape for k in state):
            return state, CheckpointMeta(name=path.stem, arch=arch, preset=name)
    sample = ", ".join(sorted(state)[:3])
    raise CheckpointError(f"{path}: not a style checkpoint (no stylize-video metadata, unknown keys such as {sample})")


_PYTORCH_EXAMPLES_MAP = {
    "conv1.conv2d": "head.conv",
    "in1": "head.norm",
    "conv2.conv2d": "down.0.conv",
    "in2": "down.0.norm",
    "conv3.conv2d": "down.1.conv",
    "in3": "down.1.norm",
    "deconv1.conv2d": "up.0.conv",
    "in4": "up.0.norm",
    "deconv2.conv2d": "up.1.conv",
    "in5": "up.1.norm",
    "deconv3.conv2d": "tail",
}


def _from_pytorch_examples(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        # Old InstanceNorm2d(track_running_stats=True) saved statistics that
        # instance norm never uses at inference: drop them.
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        prefix, _, leaf = key.rpartition(".")
        if prefix.startswith("res"):
            block, _, rest = prefix.partition(".")
            idx = int(block[3:]) - 1
            rest = {"conv1.conv2d": "conv1", "in1": "norm1", "conv2.conv2d": "conv2", "in2": "norm2"}.get(rest, rest)
            out[f"res.{idx}.{rest}.{leaf}"] = value
        elif prefix in _PYTORCH_EXAMPLES_MAP:
            out[f"{_PYTORCH_EXAMPLES_MAP[prefix]}.{leaf}"] = value
        else:
            out[key] = value  # left for load_state_dict to report
    return out


def _check_keys(path: Path, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[0]}")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} shape mismatch(es) e.g. {k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        )
    if problems:
        raise CheckpointError(f"{path}: weights do not match the recorded architecture: {'; '.join(problems)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
