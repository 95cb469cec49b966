"""Temporal consistency benchmark: flicker, fidelity and cost of ``none`` / ``ema`` / ``flow``.

    python -m benchmarks.temporal                          # real clips in ../shared/videos, CPU
    python -m benchmarks.temporal --style checkpoints/x.safetensors --max-frames 60
    python -m benchmarks.temporal --only-timing            # just the per-frame cost
    python -m benchmarks.temporal --gpu-only               # CUDA cost per 1280x720 frame (needs a GPU)

Part 1 (quality), per clip: every frame is stylized once with the ``full`` preset
and fed to each smoother; the library's evaluation engine scores the warping
error (Lai et al. 2018), the fidelity to the per-frame stylization, and the cost.
The EMA is swept over several strengths so its fidelity can be read at the warping
error the flow smoother reaches ("equal warping error" comparison).

Part 2 (cost on this CPU): extra milliseconds per 640x480 frame of each smoother,
median of ``--timing-iters`` calls on consecutive real frames (synthetic if no clip).

Part 3 (cost on CUDA, when available): stylization time of a 1280x720 frame
(``full``, fp16) with and without the flow smoother, and the ratio.

Writes ``<name>.json`` and ``<name>.md`` under ``--out`` (default benchmarks/results, name ``temporal``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    CLIPS_DIR,
    command_line,
    find_clips,
    machine_info,
    parse_size,
    sync_for,
    synthetic_frames,
    write_results,
)
from stylize_video.metrics.evaluation import Evaluation, evaluate_smoothers, read_frames
from stylize_video.metrics.temporal import interpolate_at
from stylize_video.models.transform_net import TransformNet, preset
from stylize_video.runtime.flow_smoother import FlowSmoother
from stylize_video.runtime.smoothing import EmaSmoother, NoSmoother, Smoother
from stylize_video.runtime.stylizer import Stylizer


def _style(spec: str | None) -> tuple[Any, str]:
    """A checkpoint path/name, else the first shipped style, else a seeded random ``full`` net."""
    from stylize_video.models.checkpoint import available_styles

    if spec:
        return spec, spec
    styles = available_styles()
    if styles:
        name = sorted(styles)[0]
        return styles[name], name
    torch.manual_seed(0)
    return TransformNet(preset("full")).eval(), "random full TransformNet (seed 0; no trained style found)"


def _clip_frames(path: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    return list(read_frames(path, count, size))


# ------------------------------------------------------------------ quality


def quality(
    clips: Sequence[Path],
    stylizer: Stylizer,
    *,
    max_frames: int,
    size: tuple[int, int],
    flow_strengths: Sequence[float],
    ema_strengths: Sequence[float],
) -> tuple[list[Evaluation], list[dict[str, Any]], list[dict[str, Any]]]:
    smoothers = [("none", 0.0)] + [("ema", s) for s in ema_strengths] + [("flow", s) for s in flow_strengths]
    evaluations, rows, summary = [], [], []
    for clip in clips:
        t0 = time.perf_counter()
        ev = evaluate_smoothers(read_frames(clip, max_frames, size), stylizer, smoothers, clip=clip.name)
        print(f"{clip.name}: {ev.frames} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        evaluations.append(ev)
        for r in ev.results:
            rows.append(
                {
                    "clip": clip.name,
                    "smoother": r.smoother,
                    "warping error ×10³": r.warping_error * 1e3,
                    "vs none %": r.vs_none_pct,
                    "fidelity MSE ×10³": r.fidelity_mse * 1e3,
                    "extra ms/frame": r.ms_per_frame,
                    "cuts": r.cuts,
                }
            )
        emas = sorted((r for r in ev.results if r.kind == "ema"), key=lambda r: r.strength)
        ema_curve = [(r.warping_error, r.fidelity_mse) for r in emas]
        ema_points = [(r.warping_error, r.strength) for r in emas]
        for r in ev.results:
            if r.kind != "flow":
                continue
            ema_fid = interpolate_at(ema_curve, r.warping_error)
            ema_strength = interpolate_at(ema_points, r.warping_error)
            best = min(emas, key=lambda e: e.warping_error)
            if ema_fid is not None:
                verdict = "flow closer" if r.fidelity_mse < ema_fid else "ema closer"
            elif r.warping_error < best.warping_error:
                verdict = f"flow below every ema (best {best.smoother}: {best.warping_error * 1e3:.2f})"
            else:
                verdict = "flow above every ema"
            summary.append(
                {
                    "clip": clip.name,
                    "flow": r.smoother,
                    "warping error vs none %": r.vs_none_pct,
                    "flow fidelity MSE ×10³": r.fidelity_mse * 1e3,
                    "ema strength at equal warping error": ema_strength,
                    "ema fidelity MSE ×10³ at equal warping error": None if ema_fid is None else ema_fid * 1e3,
                    "verdict": verdict,
                }
            )
    return evaluations, rows, summary


# --------------------------------------------------------------- CPU timing


def time_smoothers(
    frames: Sequence[np.ndarray], iters: int, smoothers: dict[str, Smoother], device: torch.device
) -> list[dict[str, Any]]:
    """Median cost per call of each smoother on consecutive frames (random stylized tensors)."""
    h, w = frames[0].shape[:2]
    gen = torch.Generator().manual_seed(0)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    stylized = [torch.rand(1, 3, h, w, generator=gen).to(device, dtype) for _ in range(4)]
    sync = sync_for(device)
    rows = []
    for name, smoother in smoothers.items():
        samples, cpu = [], []
        for i in range(iters + 1):
            frame = frames[i % len(frames)]
            if i % len(frames) == 0:
                smoother.reset()  # wrapping around the clip is a cut, not motion
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            smoother(stylized[i % 4], stylized[i % 4], frame)
            sync()
            if i % len(frames):
                samples.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
        rows.append(
            {
                "smoother": name,
                "size": f"{w}x{h}",
                "device": str(device),
                "median ms": statistics.median(samples),
                "p90 ms": float(np.percentile(samples, 90)),
                # CPU time of this process: less sensitive than wall time to other
                # processes sharing the cores.
                "median CPU ms": statistics.median(cpu),
                "n": len(samples),
            }
        )
    return rows


def cpu_cost(clips: Sequence[Path], iters: int, threads: int) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    if clips:
        frames = _clip_frames(clips[0], 40, (640, 480))
    else:
        frames = synthetic_frames(640, 480, count=8)
    smoothers: dict[str, Smoother] = {
        "none": NoSmoother(),
        "ema:0.5": EmaSmoother(0.5),
        "flow:0.8": FlowSmoother(0.8),
    }
    rows = time_smoothers(frames, iters, smoothers, torch.device("cpu"))
    for r in rows:
        r["torch threads"] = threads
    return rows


# --------------------------------------------------------------- GPU timing


def gpu_cost(
    clips: Sequence[Path],
    iters: int = 100,
    size: tuple[int, int] = (1280, 720),
    style: Any = None,
    device_spec: str = "cuda",
) -> list[dict[str, Any]]:
    """Flow smoothing cost on CUDA per frame: stylize (``full``, fp16) alone vs stylize + flow.

    The DIS flow runs on the CPU while the GPU stylizes (the stylize kernels are queued
    before the smoother starts), so the end-to-end column is the number that matters.
    Returns [] without CUDA (``device_spec="cpu"`` runs the same code as a smoke test).
    """
    if device_spec.startswith("cuda") and not torch.cuda.is_available():
        return []
    device = torch.device(device_spec)
    if style is None:
        torch.manual_seed(0)
        style = TransformNet(preset("full")).eval()
    stylizer = Stylizer(style, device=device)
    w, h = size
    if clips:
        frames = _clip_frames(clips[0], 40, size)
    else:
        frames = synthetic_frames(w, h, count=8)
    sync = sync_for(device)
    rows = time_smoothers(frames, iters, {"flow:0.8": FlowSmoother(0.8)}, device)

    def loop(smoother: FlowSmoother | None, early: bool = False) -> float:
        samples = []
        for i in range(iters + 5):
            frame = frames[i % len(frames)]
            if smoother is not None and i % len(frames) == 0:
                smoother.reset()
            sync()
            t0 = time.perf_counter()
            if smoother is not None and early:
                smoother.prepare(frame)  # the flow overlaps the network on a worker thread
            x = stylizer.transfer.upload(frame)
            y = stylizer.stylize(x)
            if smoother is not None:
                y = smoother(y, x, frame)
            stylizer.transfer.download(y)
            sync()
            if i >= 5:
                samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples)

    base = loop(None)
    for label, early in (("flow:0.8", False), ("flow:0.8 with prepare()", True)):
        with_flow = loop(FlowSmoother(0.8), early)
        rows.append(
            {
                "smoother": f"upload+stylize+download, none -> {label}",
                "size": f"{w}x{h}",
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
                "median ms": with_flow,
                "base ms": base,
                "extra %": 100.0 * (with_flow - base) / base,
                "n": iters,
            }
        )
    return rows


# --------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=Path, default=CLIPS_DIR, help="folder of clips (default: ../shared/videos)")
    p.add_argument("--style", default=None, help="checkpoint (default: first shipped style, else a random full net)")
    p.add_argument("--size", type=parse_size, default=(384, 216), help="frame size for the quality part (WxH)")
    p.add_argument("--max-frames", type=int, default=40)
    p.add_argument("--flow-strengths", type=float, nargs="+", default=[0.5, 0.8])
    p.add_argument("--ema-strengths", type=float, nargs="+", default=[0.2, 0.35, 0.5, 0.65, 0.8, 0.9])
    p.add_argument("--timing-iters", type=int, default=60)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the CPU timing (default: 1)")
    p.add_argument("--only-timing", action="store_true", help="skip the quality part")
    p.add_argument("--gpu-only", action="store_true", help="only the CUDA timing")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results)")
    p.add_argument("--name", default="temporal", help="result file name, without extension (default: temporal)")
    args = p.parse_args(argv)

    clips = find_clips(args.clips)
    style, style_name = _style(args.style)
    sections: list[tuple[str, Sequence[dict[str, Any]], Sequence[str]]] = []
    notes = [f"style: {style_name}", f"clips: {', '.join(c.name for c in clips) or 'none found'}"]
    config: dict[str, Any] = {"command": command_line("temporal", argv)}
    config.update({k: str(v) for k, v in vars(args).items()})

    if not args.gpu_only:
        if not args.only_timing and clips:
            torch.set_num_threads(max(1, torch.get_num_threads()))
            stylizer = Stylizer(style, device="cpu")
            _, rows, summary = quality(
                clips,
                stylizer,
                max_frames=args.max_frames,
                size=args.size,
                flow_strengths=args.flow_strengths,
                ema_strengths=args.ema_strengths,
            )
            sections.append(("Warping error and fidelity per clip", rows, list(rows[0])))
            sections.append(("Flow vs EMA at equal warping error", summary, list(summary[0])))
            verdicts = [s["verdict"] for s in summary]
            cut50 = [s["warping error vs none %"] <= -50 for s in summary if s["warping error vs none %"] is not None]
            notes.append(f"flow cuts the warping error by >= 50% in {sum(cut50)}/{len(cut50)} (clip, strength) runs")
            notes.append(
                "at equal warping error: flow closer to the per-frame stylization in "
                f"{verdicts.count('flow closer')}, ema closer in {verdicts.count('ema closer')}; flow more stable "
                f"than every ema strength in {sum(v.startswith('flow below') for v in verdicts)} of {len(verdicts)} runs"
            )
        cpu_rows = cpu_cost(clips, args.timing_iters, args.threads)
        sections.append(("Extra cost per 640x480 frame on this CPU", cpu_rows, list(cpu_rows[0])))
    gpu_rows = gpu_cost(clips, style=None if isinstance(style, TransformNet) else style)
    if gpu_rows:
        sections.append(("Cost on CUDA per 1280x720 frame", gpu_rows, list(gpu_rows[-1])))
    elif args.gpu_only:
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 1
    _, md_path, text = write_results(args.name, machine_info(), sections, out_dir=args.out, config=config, notes=notes)
    print(text)
    print(f"wrote {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
