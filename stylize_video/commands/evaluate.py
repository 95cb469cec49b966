"""``stylize-video evaluate``: how stable, how faithful and how costly each smoother is on a clip.

Every frame is stylized once; the same stylized frame goes to every smoother, so the
smoothers are compared on identical input. For each one the report gives the
warping error (Lai et al. 2018), its change against ``none``, the fidelity to the
per-frame stylization and the extra milliseconds per frame the smoother costs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import add_engine_options

if TYPE_CHECKING:
    from ..runtime.smoothing import Smoother
    from ..runtime.stylizer import Stylizer

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    from ..runtime.smoothing import SMOOTHERS

    p = sub.add_parser(
        "evaluate",
        help="measure flicker (warping error), fidelity and cost of temporal smoothers on a clip",
        description=(
            "Stylize a clip once per frame and score each smoother: warping error (Lai et al. 2018; "
            "lower is more stable), fidelity to the per-frame stylization, extra ms per frame."
        ),
        epilog="example: stylize-video evaluate -i clip.mp4 -s starry-night --smooth none ema:0.6 flow "
        "--max-frames 60 --json eval.json --markdown eval.md",
    )
    p.add_argument("-i", "--input", required=True, help="video file")
    p.add_argument(
        "--smooth",
        nargs="+",
        default=list(SMOOTHERS),
        metavar="KIND[:STRENGTH]",
        help="smoothers to compare: none, ema, flow, optionally with a strength, e.g. ema:0.7 (default: none ema flow)",
    )
    p.add_argument(
        "--smooth-strength",
        type=float,
        default=None,
        help="strength for a KIND given without :STRENGTH (default: each one's default in run: ema 0.5, flow 0.8)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--size", default=None, metavar="WxH", help="resize frames before stylizing, e.g. 640x360")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    p.add_argument("--markdown", default=None, metavar="OUT", help="write the results as a Markdown table")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files")
    add_engine_options(p)
    p.set_defaults(func=run)


# ------------------------------------------------------------------- inputs


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"640x360"`` -> (640, 360) (width, height); None stays None."""
    from ..errors import InputError

    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 640x360, got {text!r}") from None
    if w < 16 or h < 16:
        raise InputError(f"--size must be at least 16x16, got {text!r}")
    return w, h


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
        from ..metrics.temporal import psnr

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
    from ..metrics.temporal import InputMotion, TemporalScore
    from ..runtime.smoothing import make_smoother

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


# ------------------------------------------------------------------ reports

COLUMNS = (
    ("smoother", "smoother"),
    ("warping error ×10³", "warping_error"),
    ("vs none", "vs_none_pct"),
    ("fidelity MSE ×10³", "fidelity_mse"),
    ("fidelity PSNR dB", "fidelity_psnr_db"),
    ("extra ms/frame", "ms_per_frame"),
)


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("warping_error", "fidelity_mse"):
        return f"{value * 1e3:.3f}"
    if key == "vs_none_pct":
        return f"{value:+.0f}%"
    if key == "fidelity_psnr_db":
        return "∞" if math.isinf(value) else f"{value:.1f}"
    if key == "ms_per_frame":
        return f"{value:.2f}"
    return str(value)


def markdown_table(evaluations: Sequence[Evaluation]) -> str:
    """One Markdown table, a row per (clip, smoother)."""
    multi = len(evaluations) > 1
    head = (["clip"] if multi else []) + [title for title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for ev in evaluations:
        for r in ev.results:
            d = r.as_dict()
            cells = ([ev.clip] if multi else []) + [_cell(key, d[key]) for _, key in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(evaluations: Sequence[Evaluation], title: str = "Temporal consistency") -> str:
    parts = [f"# {title}", ""]
    for ev in evaluations:
        parts.append(
            f"- `{ev.clip}`: {ev.frames} frames at {ev.width}x{ev.height}, stylization {ev.stylize_ms:.1f} ms/frame"
        )
    parts += ["", markdown_table(evaluations), ""]
    parts.append(
        "Warping error: Lai et al. 2018 (masked MSE between each output and the previous output warped by the "
        "input's optical flow, [0, 1] RGB scale, mean over channels). Fidelity: MSE to the unsmoothed per-frame "
        "stylization. Extra ms/frame: median wall time of the smoother call."
    )
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------- CLI


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..io.paths import atomic_output, check_output
    from .common import make_stylizer

    clip = Path(args.input)
    if not clip.is_file():
        raise InputError(f"video {str(clip)!r} does not exist")
    if args.max_frames is not None and args.max_frames < 2:
        raise InputError(f"--max-frames must be >= 2, got {args.max_frames}")
    smoothers = [parse_smoother(s, args.smooth_strength) for s in args.smooth]
    size = parse_size(args.size)
    outputs = [Path(p) for p in (args.json, args.markdown) if p]
    for out in outputs:
        check_output(out, [clip], overwrite=args.overwrite)
    stylizer = make_stylizer(args)
    ev = evaluate_smoothers(
        read_frames(clip, args.max_frames, size), stylizer, smoothers, clip=clip.name, progress=True
    )
    report = markdown_report([ev])
    if args.json:
        with atomic_output(args.json) as tmp:
            meta = {"style": stylizer.style_name, "device": str(stylizer.device), "dtype": str(stylizer.dtype)}
            tmp.write_text(json.dumps({**meta, **ev.as_dict()}, indent=2) + "\n")
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(report)
    print(markdown_table([ev]))
    return 0
