"""Does the temporal loss in training make a network steadier on real video by itself?

Compares checkpoints (e.g. one trained with ``--temporal-weight 0`` and ones with
larger weights, same painting and settings otherwise) on the real clips in
../shared/videos, all with ``--smooth none`` and, for reference, ``flow:0.8``:

* warping error (Lai et al. 2018) of each network's raw per-frame output;
* the same after flow smoothing (the two combine);
* the validation content / style / temporal losses stored in each checkpoint, so the
  price in likeness to the painting shows beside the gain in steadiness.

    python -m benchmarks.temporal_training --styles a.safetensors b.safetensors --name temporal_training

Writes ``<name>.json`` and ``<name>.md`` under ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness import CLIPS_DIR, command_line, find_clips, machine_info, parse_size, write_results
from stylize_video.metrics.evaluation import evaluate_smoothers, read_frames
from stylize_video.models.checkpoint import load_checkpoint
from stylize_video.runtime.stylizer import Stylizer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", nargs="+", required=True, help="checkpoints to compare (names or paths)")
    p.add_argument("--clips", type=Path, default=CLIPS_DIR)
    p.add_argument("--size", type=parse_size, default=(384, 216))
    p.add_argument("--max-frames", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--name", default="temporal_training")
    args = p.parse_args(argv)

    clips = find_clips(args.clips)
    if not clips:
        print(f"no clips in {args.clips}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    frames = {c.name: list(read_frames(c, args.max_frames, args.size)) for c in clips}

    per_clip: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for style in args.styles:
        ck = load_checkpoint(style)
        # fp32: the comparison is between networks, not precisions.
        stylizer = Stylizer(ck, device="cpu", precision="fp32", threads=args.threads)
        raw, smoothed = [], []
        for clip, fr in frames.items():
            ev = evaluate_smoothers(fr, stylizer, [("none", 0.0), ("flow", 0.8)], clip=clip)
            none, flow = ev.results
            raw.append(none.warping_error)
            smoothed.append(flow.warping_error)
            per_clip.append(
                {
                    "style": Path(style).stem,
                    "clip": clip,
                    "warping none ×10³": none.warping_error * 1e3,
                    "warping flow:0.8 ×10³": flow.warping_error * 1e3,
                }
            )
            print(
                f"{Path(style).stem:28s} {clip:40s} none {none.warping_error * 1e3:6.2f}  flow {flow.warping_error * 1e3:6.2f}"
            )
        m = ck.meta.metrics
        summary.append(
            {
                "style": Path(style).stem,
                "temporal weight": ck.meta.training.get("temporal_weight", 0.0),
                "iterations": ck.meta.training.get("iterations_done"),
                "val content": m.get("val_content"),
                "val style": m.get("val_style"),
                "val temporal ×10³": m["val_temporal"] * 1e3 if "val_temporal" in m else None,
                "median warping none ×10³": statistics.median(raw) * 1e3,
                "median warping flow ×10³": statistics.median(smoothed) * 1e3,
            }
        )
    base = summary[0]["median warping none ×10³"]
    for row in summary:
        row["none vs first %"] = 100.0 * (row["median warping none ×10³"] / base - 1.0)

    write_results(
        args.name,
        machine_info(torch.device("cpu")),
        [
            ("Per checkpoint (medians over clips)", summary, list(summary[0])),
            ("Per clip", per_clip, list(per_clip[0])),
        ],
        out_dir=args.out,
        config=vars(args)
        | {
            "clips": [c.name for c in clips],
            "out": str(args.out),
            "command": command_line("temporal_training", argv),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
