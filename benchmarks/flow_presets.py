"""Which DIS setting should the flow smoother use? Steadiness, fidelity and cost, side by side.

For each preset of ``stylize_video.runtime.flow.DIS_PRESETS``, on the real clips in
../shared/videos (each stylized once, every preset smoothing the same frames):

* warping error (Lai et al. 2018) with ``FlowSmoother(0.8, preset=...)`` against
  ``--smooth none``: median and worst clip;
* fidelity (MSE to the unsmoothed per-frame stylization): median over clips;

and the smoother's cost per 640x480 frame on this CPU, presets interleaved round by
round (so machine noise hits them alike) for each torch thread count.

    python -m benchmarks.flow_presets --style checkpoints/starry-night.safetensors

Writes ``<name>.json`` and ``<name>.md`` under ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness import (
    CLIPS_DIR,
    command_line,
    every_round,
    find_clips,
    interleaved,
    machine_info,
    parse_size,
    spread,
    write_results,
)
from benchmarks.temporal import time_smoothers
from stylize_video.metrics.evaluation import read_frames
from stylize_video.metrics.temporal import InputMotion, TemporalScore
from stylize_video.runtime.flow import DIS_PRESETS
from stylize_video.runtime.flow_smoother import FlowSmoother
from stylize_video.runtime.stylizer import Stylizer

STRENGTH = 0.8


def quality(
    clips: list[Path], stylizer: Stylizer, presets: list[str], size: tuple[int, int], max_frames: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """{preset or "none": {clip: (warping error, fidelity MSE)}}."""
    out: dict[str, dict[str, tuple[float, float]]] = {p: {} for p in ["none", *presets]}
    for clip in clips:
        frames = list(read_frames(clip, max_frames, size))
        motion = InputMotion()
        fields = [motion.update(f) for f in frames]
        with torch.inference_mode():
            sources = [stylizer.transfer.upload(f) for f in frames]
            stylized = [stylizer.stylize(s) for s in sources]
        for preset in out:
            smoother = None if preset == "none" else FlowSmoother(STRENGTH, preset=preset)
            score = TemporalScore()
            for frame, field, source, y in zip(frames, fields, sources, stylized, strict=True):
                smoothed = y if smoother is None else smoother(y, source, frame)
                score.update(stylizer.transfer.download(smoothed), field, stylizer.transfer.download(y))
            out[preset][clip.name] = (score.warping_error, score.fidelity)
        print(f"{clip.name}: done", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry-night", help="checkpoint name or path (default: starry-night)")
    p.add_argument("--clips", type=Path, default=CLIPS_DIR)
    p.add_argument("--size", type=parse_size, default=(384, 216), help="frame size for the quality part")
    p.add_argument("--max-frames", type=int, default=40)
    p.add_argument("--presets", nargs="+", default=list(DIS_PRESETS), choices=list(DIS_PRESETS))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts for the timing")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--name", default="flow_presets_cpu")
    args = p.parse_args(argv)

    clips = find_clips(args.clips)
    if not clips:
        print(f"no clips in {args.clips}", file=sys.stderr)
        return 1
    torch.set_num_threads(max(args.threads))
    stylizer = Stylizer(args.style, device="cpu")
    scores = quality(clips, stylizer, args.presets, args.size, args.max_frames)
    none = scores["none"]

    timing_frames = list(read_frames(clips[0], 40, (640, 480)))
    ms: dict[tuple[str, int], list[float]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)

        def median_ms(preset: str) -> float:
            smoother = FlowSmoother(STRENGTH, preset=preset)
            return float(time_smoothers(timing_frames, 39, {preset: smoother}, stylizer.device)[0]["median ms"])

        runs = interleaved({p: every_round(median_ms, p) for p in args.presets}, args.rounds)
        ms.update({(preset, threads): values for preset, values in runs.items()})

    summary: list[dict[str, Any]] = []
    per_clip: list[dict[str, Any]] = []
    for preset in args.presets:
        cuts = {c: 100.0 * (scores[preset][c][0] / none[c][0] - 1.0) for c in none}
        worst = max(cuts, key=lambda c: cuts[c])
        row: dict[str, Any] = {
            "preset": preset,
            "warping vs none % (median)": statistics.median(cuts.values()),
            "worst clip %": cuts[worst],
            "worst clip": worst,
            "fidelity MSE ×10³ (median)": 1e3 * statistics.median(v[1] for v in scores[preset].values()),
        }
        for threads in args.threads:
            row[f"ms/frame 640x480, {threads} thread(s)"] = spread(ms[(preset, threads)])["median"]
        summary.append(row)
        for clip, cut in cuts.items():
            per_clip.append(
                {
                    "preset": preset,
                    "clip": clip,
                    "warping none ×10³": 1e3 * none[clip][0],
                    "warping flow ×10³": 1e3 * scores[preset][clip][0],
                    "vs none %": cut,
                    "fidelity ×10³": 1e3 * scores[preset][clip][1],
                }
            )
    notes = [
        f"style: {args.style}; {len(clips)} clips x {args.max_frames} frames at {args.size[0]}x{args.size[1]}; "
        f"FlowSmoother strength {STRENGTH}, flow at 320 px",
        f"timing: median over {args.rounds} interleaved rounds of the per-frame median (39 frames of {clips[0].name} "
        "at 640x480, random stylized tensors), OpenCV's own thread count left as is",
        "spread of the rounds: "
        + "; ".join(f"{k[0]}@{k[1]}: {spread(v)['min']:.1f}-{spread(v)['max']:.1f} ms" for k, v in sorted(ms.items())),
    ]
    cmd = command_line("flow_presets", argv)
    _, md_path, text = write_results(
        args.name,
        machine_info(),
        [
            ("Per preset", summary, list(summary[0])),
            ("Per clip", per_clip, list(per_clip[0])),
        ],
        out_dir=args.out,
        config={"command": cmd, **{k: str(v) for k, v in vars(args).items()}},
        notes=notes,
    )
    print(text)
    print(f"wrote {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
