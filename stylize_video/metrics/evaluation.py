"""Temporal evaluation of smoothers on a clip: the engine behind ``stylize-video evaluate``.

Every frame is stylized once; the same stylized frame goes to every smoother, so the
smoothers are compared on identical input. For each one the result holds the
warping error (Lai et al. 2018), its change against ``none``, the fidelity to the
per-frame stylization and the extra milliseconds per frame the smoother costs.
Reports (Markdown, JSON) are written by :mod:`stylize_video.metrics.report`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..units import parse_size

if TYPE_CHECKING:
    from ..runtime.smoothing import Smoother
    from ..runtime.stylizer import Stylizer

__all__ = [
    "Evaluation",
    "SmootherResult",
    "evaluate_smoothers",
    "parse_size",
    "parse_smoother",
    "read_frames",
]

# ------------------------------------------------------------------- inputs


def parse_smoother(spec: str, default_strength: float | None = None) -> tuple[str, float]:
    """``"ema:0.7"`` -> ("ema", 0.7); ``"flow"`` -> ("flow", default_strength, or flow's own
    default as in ``run`` when None); ``"none"`` -> ("none", 0.0)."""
    from ..errors import InputError
    from ..runtime.smoothing import DEFAULT_STRENGTH, SMOOTHERS

    kind, _, value = spec.partition(":")
    if kind not in SMOOTHERS:
        raise InputError(f"unknown smoother {spec!r} (choose from {', '.join(SMOOTHERS)}, e.g. ema:0.7)")
    if kind == "none":
        return kind, 0.0
    try:
        if value:
            strength = float(value)
        else:
            strength = DEFAULT_STRENGTH[kind] if default_strength is None else default_strength
    except ValueError:
        raise InputError(f"bad strength in {spec!r}") from None
    if not 0.0 <= strength < 1.0:
        raise InputError(f"smoothing strength must be within [0, 1), got {strength} in {spec!r}")
    return kind, strength


def read_frames(
    path: str | Path, max_frames: int | None = None, size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Decode a video's first stream as uint8 HxWx3 BGR frames, optionally resized to ``size`` (w, h)."""
    import av

    from ..errors import InputError
    from ..io.media import ffmpeg_path

    try:
        container = av.open(ffmpeg_path(path))
    except (OSError, av.FFmpegError) as exc:
        raise InputError(f"cannot open video {str(path)!r}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise InputError(f"{str(path)!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, frame in enumerate(container.decode(stream)):
            if max_frames is not None and n >= max_frames:
                break
            image = frame if size is None else frame.reformat(width=size[0], height=size[1])
            yield image.to_ndarray(format="bgr24")


# --------------------------------------------------------------- evaluation


@dataclass
class SmootherResult:
    """Scores of one smoother on one clip (errors on the [0, 1] RGB scale)."""

    smoother: str
    kind: str
    strength: float
    warping_error: float
    fidelity_mse: float
    ms_per_frame: float
    pairs: int
    vs_none_pct: float | None = None
    cuts: int | None = None
    samples_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def fidelity_psnr_db(self) -> float:
        from .temporal import psnr

        return psnr(self.fidelity_mse)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("samples_ms")
        d["fidelity_psnr_db"] = self.fidelity_psnr_db
        # JSON has no NaN/inf: an unmeasured or perfect score becomes null.
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in d.items()}


@dataclass
class Evaluation:
    """All smoothers on one clip."""

    clip: str
    frames: int
    width: int
    height: int
    stylize_ms: float
    results: list[SmootherResult]

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "results"}
        d["results"] = [r.as_dict() for r in self.results]
        return d


def evaluate_smoothers(
    frames: Iterable[np.ndarray],
    stylizer: Stylizer,
    smoothers: Sequence[tuple[str, float]],
    *,
    clip: str = "",
    progress: bool = False,
) -> Evaluation:
    """Stylize ``frames`` once each and score every smoother on the same stylized frames.

    Args:
        frames: uint8 HxWx3 BGR frames.
        stylizer: the engine (its device decides where smoothing runs).
        smoothers: (kind, strength) pairs, see :func:`parse_smoother`.
        clip: a name for the report.
        progress: show a progress bar.

    Returns:
        An :class:`Evaluation`; ``vs_none_pct`` is filled when ``none`` is among the smoothers.
    """
    import torch
    from tqdm import tqdm

    from ..errors import InputError
    from ..runtime.smoothing import make_smoother
    from .temporal import InputMotion, TemporalScore

    if not smoothers:
        raise InputError("no smoothers to evaluate")
    labels = [kind if kind == "none" else f"{kind}:{strength:g}" for kind, strength in smoothers]
    active: list[Smoother] = [make_smoother(kind, strength) for kind, strength in smoothers]
    scores = [TemporalScore() for _ in smoothers]
    times: list[list[float]] = [[] for _ in smoothers]
    stylize_times: list[float] = []
    device = stylizer.device
    # Picked once: a no-op on the CPU, a queue drain on CUDA so timings include the kernels.
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    motion = InputMotion()
    n = 0
    size = (0, 0)
    for frame in tqdm(frames, desc="evaluate", unit="frame", disable=not progress, leave=False):
        if (frame.shape[1], frame.shape[0]) != size:
            if n:
                raise InputError(f"frame {n} is {frame.shape[1]}x{frame.shape[0]} != clip {size[0]}x{size[1]}")
            size = (frame.shape[1], frame.shape[0])
        field_ = motion.update(frame)
        t0 = time.perf_counter()
        source = stylizer.transfer.upload(frame)
        stylized = stylizer.stylize(source)
        sync()
        stylize_times.append((time.perf_counter() - t0) * 1e3)
        reference = stylizer.transfer.download(stylized)
        for smoother, score, samples in zip(active, scores, times, strict=True):
            t0 = time.perf_counter()
            out = smoother(stylized, source, frame)
            sync()
            samples.append((time.perf_counter() - t0) * 1e3)
            score.update(stylizer.transfer.download(out), field_, reference)
        n += 1
    if n < 2:
        raise InputError(f"clip {clip!r} has {n} frame(s); need at least 2 to measure flicker")
    results = []
    for (kind, strength), label, smoother, score, samples in zip(smoothers, labels, active, scores, times, strict=True):
        results.append(
            SmootherResult(
                smoother=label,
                kind=kind,
                strength=strength,
                warping_error=score.warping_error,
                fidelity_mse=score.fidelity,
                # The first call only stores history: leave it out of the cost.
                ms_per_frame=statistics.median(samples[1:]),
                pairs=score.pairs,
                cuts=getattr(smoother, "cuts", None),
                samples_ms=samples,
            )
        )
    base = next((r.warping_error for r in results if r.kind == "none"), None)
    if base is not None and base > 0:
        for r in results:
            r.vs_none_pct = 100.0 * (r.warping_error - base) / base
    return Evaluation(clip, n, size[0], size[1], statistics.median(stylize_times), results)
