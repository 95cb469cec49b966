"""Batch throughput: files/hour with 1 vs 2 local workers, and an on-paper projection to N GPUs.

Part 1, measured: ``--files`` generated clips (the synthetic scene, h264 + AAC) are
converted by ``BatchRunner`` on a ``LocalPoolExecutor`` with 1 and with 2 worker
processes of one torch thread each, and with 1 worker of 2 threads (the same cores
as 2 x 1). Reported per configuration: wall time (including the pool's start-up: spawn
+ import torch + load the style), files/hour from that wall time, the mean worker
time per file, the steady-state files/hour (``workers * 3600 / time per file``: what a
long batch approaches once start-up is amortized), and the workers' CPU seconds per file.

Part 2, measured: what one file costs per stage on this CPU, per frame: decode
(``VideoFileSource``), the model (lite preset, fp32, one thread) and encode
(``VideoFileSink``, x264 ``ultrafast`` as on a CPU engine and ``veryfast`` as with a GPU engine).

Part 3, on paper: with ``N`` GPUs (``--gpus-per-node`` per node with
``--cores-per-node`` cores), a file of ``--proj-frames`` frames at ``--proj-size``
costs ``F / gpu_fps`` GPU-seconds (``--gpu-fps``: the model's speed on one GPU,
an input here, measured by ``benchmarks.gpu_bench`` on a CUDA machine) and
``F * (decode + encode)`` CPU-seconds (this machine's per-frame costs scaled by pixel count).
Storage moves ``in + out`` bytes per file (bitrates measured here, scaled by pixels)
through ``--storage-gbps``. Files/hour is the minimum of the three limits; the table
says which one binds.

    python -m benchmarks.batch_scaling                     # ~4 minutes on a busy 2-core CPU
    python -m benchmarks.batch_scaling --gpu-fps 300 --proj-size 1920x1080

Writes ``benchmarks/results/batch_scaling-cpu.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.end_to_end import make_clip
from benchmarks.harness import (
    Column,
    Section,
    command_line,
    every_round,
    interleaved,
    machine_info,
    parse_size,
    write_results,
)
from stylize_video.io.sinks import VideoFileSink
from stylize_video.io.sources import SyntheticSource, VideoFileSource
from stylize_video.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from stylize_video.models.transform_net import PRESETS, TransformNet
from stylize_video.runtime.batch import BatchRunner, BatchSettings, LocalPoolExecutor, plan_jobs
from stylize_video.runtime.stylizer import Stylizer


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_batch(clips_dir: Path, out: Path, checkpoint: Path, workers: int, threads: int) -> dict[str, Any]:
    """One batch over every clip with ``workers`` pool processes of ``threads`` torch threads each."""
    settings = BatchSettings(style=str(checkpoint), device="cpu", threads=threads)
    runner = BatchRunner(plan_jobs(clips_dir, out), settings, out, overwrite=True)
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    report = runner.run(lambda: LocalPoolExecutor(runner.checkpoint, settings, workers))
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0  # pool processes are reaped at close, so their CPU is counted
    done = [f for f in report.files if f.status == "done"]
    if len(done) != len(report.files):
        raise RuntimeError(report.summary())
    per_file = sum(f.seconds for f in done) / len(done)
    return {
        "workers": workers,
        "threads_per_worker": settings.threads,
        "files": len(done),
        "frames": sum(f.frames for f in done),
        "wall_s": wall,
        "files_per_hour": len(done) * 3600 / wall,
        "file_s": per_file,
        "steady_files_per_hour": workers * 3600 / per_file,
        "cpu_s_per_file": cpu / len(done),
    }


def stage_costs(clip: Path, tmp: Path, stylizer: Stylizer | None = None) -> dict[str, float]:
    """CPU seconds per frame (all threads, robust to other load) to decode, stylize and encode ``clip``."""
    out: dict[str, float] = {}
    with VideoFileSource(clip) as src:
        c0 = time.process_time()
        frames = list(src)
        out["decode_s"] = (time.process_time() - c0) / len(frames)
    if stylizer is not None:
        stylizer(frames[0].image)  # first call: allocations, kernel selection
        c0 = time.process_time()
        for f in frames:
            stylizer(f.image)
        out["model_s"] = (time.process_time() - c0) / len(frames)
    for preset in ("ultrafast", "veryfast"):
        path = tmp / f"enc-{preset}.mp4"
        sink = VideoFileSink(path, preset=preset, fps=30, overwrite=True, allow_nvenc=False)
        c0 = time.process_time()
        for f in frames:
            sink.write(f)
        sink.close()
        out[f"encode_{preset}_s"] = (time.process_time() - c0) / len(frames)
        out[f"encode_{preset}_bytes"] = path.stat().st_size / len(frames)
    out["input_bytes"] = clip.stat().st_size / len(frames)
    return out


def make_gop_clip(path: Path, width: int, height: int, frames: int, fps: int = 30, gop: int = 30) -> Path:
    """The synthetic scene as h264 with a keyframe exactly every ``gop`` frames (segment boundaries)."""
    import av

    with av.open(str(path), "w") as out:
        opts = {"preset": "ultrafast", "crf": "20", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        vs = out.add_stream("libx264", rate=fps, options=opts)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        for f in SyntheticSource(width, height, fps, frames=frames):
            vf = av.VideoFrame.from_ndarray(f.image, format="bgr24")
            vf.pts = f.index
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def seam_study(tmp: Path, checkpoint: Path, size: tuple[int, int], frames: int, gop: int) -> list[dict[str, Any]]:
    """Warping error of each output frame pair, at segment joins vs elsewhere, single pass vs segmented."""
    from stylize_video.metrics.temporal import InputMotion, as_float, pair_warping_error
    from stylize_video.runtime.batch import InProcessExecutor

    src = tmp / "seam-in"
    src.mkdir()
    clip = make_gop_clip(src / "scene.mp4", size[0], size[1], frames, gop=gop)
    with VideoFileSource(clip) as s:
        inputs = [f.image for f in s]
    motion = InputMotion(flow_side=max(size))
    fields = [motion.update(img) for img in inputs]
    joins = set(range(gop, frames, gop))
    rows = []
    runs = [("none", False, 0), ("none", True, 0), ("ema", False, 0), ("ema", True, 0), ("ema", True, 8)]
    for smooth, segmented, preroll in runs:
        out = tmp / f"seam-{smooth}-{int(segmented)}-{preroll}"
        settings = BatchSettings(style=str(checkpoint), device="cpu", threads=1, smooth=smooth)
        seconds = gop / 30 if segmented else None
        runner = BatchRunner(plan_jobs(src, out), settings, out, segment_seconds=seconds, preroll_frames=preroll)
        report = runner.run(functools.partial(InProcessExecutor, runner.checkpoint, settings))
        if report.count("done") != 1:
            raise RuntimeError(report.summary())
        with VideoFileSource(out / "scene.mp4") as s:
            outs = [as_float(f.image) for f in s]
        errs: dict[bool, list[float]] = {True: [], False: []}
        for t in range(1, len(outs)):
            field = fields[t]
            e = pair_warping_error(outs[t], outs[t - 1], field) if field is not None else None
            if e is not None:
                errs[t in joins].append(e)
        rows.append(
            {
                "smooth": smooth,
                "run": "segmented" if segmented else "single pass",
                "segments": report.files[0].segments,
                "preroll": preroll if segmented and smooth != "none" else None,
                "frames": len(outs),
                "joins": sorted(joins),
                "warp_at_joins": sum(errs[True]) / max(len(errs[True]), 1),
                "warp_elsewhere": sum(errs[False]) / max(len(errs[False]), 1),
            }
        )
    return rows


def project(
    stages: dict[str, float],
    stage_pixels: int,
    *,
    size: tuple[int, int],
    frames: int,
    gpu_fps: float,
    gpus_per_node: int,
    cores_per_node: int,
    storage_gbps: float,
    nvenc: bool,
) -> list[dict[str, Any]]:
    """Files/hour for 1..64 GPUs from per-frame costs: the GPU, CPU decode+encode, and storage limits."""
    scale = size[0] * size[1] / stage_pixels
    decode = stages["decode_s"] * scale
    encode = 0.0 if nvenc else stages["encode_veryfast_s"] * scale
    bytes_per_file = frames * (stages["input_bytes"] + stages["encode_veryfast_bytes"]) * scale
    rows = []
    for n in (1, 2, 4, 8, 16, 32, 64):
        nodes = -(-n // gpus_per_node)
        gpu = n * gpu_fps * 3600 / frames
        cpu = nodes * cores_per_node * 3600 / (frames * (decode + encode))
        storage = storage_gbps * 1e9 / 8 * 3600 / bytes_per_file
        limits = {"GPU (model)": gpu, "CPU (decode+encode)": cpu, "storage": storage}
        bound = min(limits, key=lambda k: limits[k])
        rows.append({"gpus": n, "nodes": nodes, **{k: v for k, v in limits.items()}, "bound": bound})
    return rows


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def sections(result: dict[str, Any]) -> list[Section]:
    """The result as titled tables for :func:`benchmarks.harness.write_results`."""
    a = result["args"]
    size, stage_size = _size_text(a["size"]), _size_text(a["stage_size"])
    out = [
        Section(
            "Measured: local worker pools",
            result["runs"],
            [
                Column("workers"),
                Column("threads_per_worker", "threads each"),
                Column("wall_s", "wall s", ".1f"),
                Column("files_per_hour", "files/hour (wall)", ".0f"),
                Column("file_s", "s per file in a worker", ".2f"),
                Column("steady_files_per_hour", "steady files/hour", ".0f"),
                Column("cpu_s_per_file", "CPU s per file", ".2f"),
            ],
            f"{a['files']} clips of {a['frames']} frames at {size} (h264 + AAC), lite preset (random weights), "
            f"CPU, best of {a['rounds']} alternating rounds. Wall time includes the pool's start-up.",
        )
    ]
    small, st = result["stages_small"], result["stages"]
    stage_rows = [
        {"stage": "decode", "size": size, "CPU ms/frame": small["decode_s"] * 1e3},
        {"stage": "model (lite, 1 thread)", "size": size, "CPU ms/frame": small["model_s"] * 1e3},
        {"stage": "encode x264 ultrafast", "size": size, "CPU ms/frame": small["encode_ultrafast_s"] * 1e3},
        {"stage": "decode", "size": stage_size, "CPU ms/frame": st["decode_s"] * 1e3},
        {"stage": "encode x264 ultrafast", "size": stage_size, "CPU ms/frame": st["encode_ultrafast_s"] * 1e3},
        {"stage": "encode x264 veryfast", "size": stage_size, "CPU ms/frame": st["encode_veryfast_s"] * 1e3},
    ]
    out.append(
        Section(
            "CPU ms per frame and stage",
            stage_rows,
            ["stage", "size", "CPU ms/frame"],
            f"All threads of this process, robust to other load. At {stage_size}: bytes/frame in "
            f"{st['input_bytes']:.0f}, out (veryfast, crf 18) {st['encode_veryfast_bytes']:.0f}.",
        )
    )
    projection_columns = [
        Column("gpus", "GPUs"),
        Column("nodes"),
        Column("GPU (model)", "GPU-bound files/h", ".0f"),
        Column("CPU (decode+encode)", "CPU-bound files/h", ".0f"),
        Column("storage", "storage-bound files/h", ".0f"),
        Column("bound", "bottleneck"),
    ]
    for key, title in (("projection_x264", "x264 veryfast on the CPU"), ("projection_nvenc", "NVENC (no CPU encode)")):
        out.append(
            Section(
                f"On paper, {title}",
                result[key],
                projection_columns,
                f"Files of {a['proj_frames']} frames at {_size_text(a['proj_size'])}, model {a['gpu_fps']} fps per "
                f"GPU (an input, not measured here), {a['gpus_per_node']} GPUs and {a['cores_per_node']} cores per "
                f"node, storage {a['storage_gbps']} Gbit/s shared; CPU costs from this machine at {stage_size}, "
                "scaled by pixel count.",
            )
        )
    if result.get("seam"):
        seam_rows = [
            r
            | {
                "at joins ×10³": r["warp_at_joins"] * 1e3,
                "elsewhere ×10³": r["warp_elsewhere"] * 1e3,
                "joins / elsewhere": r["warp_at_joins"] / r["warp_elsewhere"] if r["warp_elsewhere"] else None,
            }
            for r in result["seam"]
        ]
        out.append(
            Section(
                "Seams",
                seam_rows,
                [
                    Column("smooth", "smoothing"),
                    Column("run"),
                    Column("segments"),
                    Column("preroll", "pre-roll frames"),
                    Column("at joins ×10³", fmt=".2f"),
                    Column("elsewhere ×10³", fmt=".2f"),
                    Column("joins / elsewhere", fmt=".2f"),
                ],
                f"{a['seam_frames']} frames at {size}, a keyframe (and segment start) every {a['seam_gop']} frames; "
                "warping error (lower is steadier) of the frame pairs that straddle a join vs all other pairs. "
                "Without pre-roll, smoothing restarts at each segment start; pre-roll frames (stylized and "
                "smoothed before the segment, not written) warm it up.",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--frames", type=int, default=30, help="frames per generated clip")
    ap.add_argument("--size", type=parse_size, default=(256, 144), help="clip size for the measured part")
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["1x1", "2x1", "1x2"],
        help="WORKERSxTHREADS pool configurations (default: 1x1 2x1 1x2)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; the best wall time is kept")
    ap.add_argument("--stage-size", type=parse_size, default=(1280, 720), help="clip size for the per-stage CPU costs")
    ap.add_argument("--stage-frames", type=int, default=24)
    ap.add_argument("--seam-frames", type=int, default=120, help="frames of the seam study clip (0: skip it)")
    ap.add_argument("--seam-gop", type=int, default=30, help="keyframe interval = segment length in the seam study")
    ap.add_argument("--gpu-fps", type=float, default=240.0, help="model fps on one GPU at --proj-size (input)")
    ap.add_argument("--proj-size", type=parse_size, default=(1920, 1080))
    ap.add_argument("--proj-frames", type=int, default=5400, help="frames per file in the projection (3 min @ 30)")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--cores-per-node", type=int, default=64)
    ap.add_argument("--storage-gbps", type=float, default=10.0, help="shared storage bandwidth, Gbit/s")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    w, h = args.size
    machine = machine_info()  # the load average at the start, as every benchmark reports it
    result: dict[str, Any] = {"args": vars(args) | {"out": str(args.out)}}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        clips = tmp / "clips"
        clips.mkdir()
        for i in range(args.files):
            make_clip(clips / f"clip{i}.mp4", w, h, args.frames)
            (clips / f"clip{i}.mp4").unlink()  # make_clip keeps the copy with audio as clip{i}-a.mp4
        torch.manual_seed(0)
        net = TransformNet(PRESETS["lite"]).eval()
        checkpoint = save_checkpoint(tmp / "lite.safetensors", net, CheckpointMeta(name="lite-random"))

        def one(config: str) -> dict[str, Any]:
            n, threads = (int(v) for v in config.lower().split("x"))
            r = run_batch(clips, tmp / f"out{config}", checkpoint, n, threads)
            print(json.dumps(r), flush=True)
            return r

        runs = interleaved({c: every_round(one, c) for c in args.configs}, args.rounds)
        result["runs"] = [min(runs[c], key=lambda r: r["wall_s"]) for c in args.configs]
        stylizer = Stylizer(load_checkpoint(checkpoint), device="cpu", threads=1)
        result["stages_small"] = stage_costs(next(clips.glob("*.mp4")), tmp, stylizer)
        # Decode/encode per frame at a real size: tiny frames are dominated by per-frame overheads.
        sw, sh = args.stage_size
        big = make_clip(tmp / "stage.mp4", sw, sh, args.stage_frames)
        result["stages"] = stage_costs(big, tmp)
        if args.seam_frames:
            result["seam"] = seam_study(tmp, checkpoint, (w, h), args.seam_frames, args.seam_gop)
    common = {
        "size": args.proj_size,
        "frames": args.proj_frames,
        "gpu_fps": args.gpu_fps,
        "gpus_per_node": args.gpus_per_node,
        "cores_per_node": args.cores_per_node,
        "storage_gbps": args.storage_gbps,
    }
    stage_pixels = sw * sh
    result["projection_x264"] = project(result["stages"], stage_pixels, nvenc=False, **common)  # type: ignore[arg-type]
    result["projection_nvenc"] = project(result["stages"], stage_pixels, nvenc=True, **common)  # type: ignore[arg-type]
    _, md_path, text = write_results(
        "batch_scaling-cpu",
        machine,
        sections(result),
        out_dir=args.out,
        config={"command": command_line("batch_scaling", argv), **result["args"]},
        extra={"stages_small": result["stages_small"], "stages": result["stages"]},
    )
    print(text)
    print(f"wrote {md_path} (+ .json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
