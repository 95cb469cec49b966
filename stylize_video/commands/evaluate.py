"""``stylize-video evaluate``: how stable, how faithful and how costly each smoother is on a clip.

The engine is :mod:`stylize_video.metrics.evaluation` and the reports are
:mod:`stylize_video.metrics.report`; this module only wires the options to them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..metrics.evaluation import (
    Evaluation,
    SmootherResult,
    evaluate_smoothers,
    parse_size,
    parse_smoother,
    read_frames,
)
from ..metrics.report import COLUMNS, json_report, markdown_report, markdown_table
from .common import add_engine_options

# The engine moved to metrics/; its names stay importable from here for older callers.
__all__ = [
    "COLUMNS",
    "Evaluation",
    "SmootherResult",
    "evaluate_smoothers",
    "markdown_report",
    "markdown_table",
    "parse_size",
    "parse_smoother",
    "read_frames",
    "register",
    "run",
]


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
            tmp.write_text(json_report(ev, meta))
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(report)
    print(markdown_table([ev]))
    return 0
