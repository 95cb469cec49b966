"""One command for a CUDA machine: model speed and end-to-end speed, table printed last.

    python -m benchmarks.gpu_bench                 # ~5-8 minutes on one GPU
    OUT=/some/dir python -m benchmarks.gpu_bench   # also writes gpu_bench.json/.md there

Part 1, model only (``model_speed.run_grid``): presets full and lite, fp16,
channels_last eager / CUDA graph / ``torch.compile``, at 1920x1080 and 3840x2160,
with the compute and memory floors.

Part 2, end to end (``stylize_video.runtime.pipeline.Pipeline``), per preset and size:

* ``memory -> pipeline -> null``: pre-decoded frames, so only upload + model +
  download + the pipeline's threads are measured;
* ``opencv decode -> pipeline -> null``: an mp4v file written here with OpenCV and
  decoded with ``cv2.VideoCapture`` (works where PyAV is not installed);
* ``pyav decode -> pipeline -> encode``: file -> file with an AAC audio track, decoded
  by ``VideoFileSource`` and encoded by ``VideoFileSink`` (NVENC when it opens), only
  where PyAV is importable;

plus each stage alone (decode-only, model with transfer, encode-only), so the end-to-end
rate can be compared with the slowest stage (target: >= 90% of it).

A time budget (``--budget-s``, default 360 s) starts nothing new once spent, so the
command ends within 8 minutes; skipped parts are listed in the notes. It also runs
on the CPU (``--device cpu --presets lite --resolutions 640x480``) as a smoke test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    RESOLUTIONS,
    command_line,
    machine_info,
    sync_for,
    synthetic_frames,
    time_fn,
    write_results,
)
from benchmarks.model_speed import GridSpec, run_grid
from stylize_video.devices import resolve_device
from stylize_video.io.base import Frame
from stylize_video.models.transform_net import PRESETS, TransformNet
from stylize_video.runtime.stylizer import Stylizer

RATE = Fraction(30)


class _MemorySource:
    """Cycles pre-made frames: a source that costs nothing, to measure the rest."""

    live = False

    def __init__(self, images: list[np.ndarray], count: int) -> None:
        self.images, self.count = images, count

    def __iter__(self) -> Iterator[Frame]:
        tb = 1 / RATE
        for i in range(self.count):
            yield Frame(self.images[i % len(self.images)], i, pts=i, time_base=tb, time=float(i * tb),
                        captured=time.perf_counter())  # fmt: skip

    def close(self) -> None:
        pass


class _OpenCVFileSource:
    """Decodes a file with ``cv2.VideoCapture`` (FFmpeg inside OpenCV's wheel)."""

    live = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        tb = 1 / RATE
        try:
            i = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    return
                yield Frame(image, i, pts=i, time_base=tb, time=float(i * tb), captured=time.perf_counter())
                i += 1
        finally:
            cap.release()

    def close(self) -> None:
        pass


def _write_opencv_clip(path: Path, images: list[np.ndarray], count: int) -> Path:
    import cv2

    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(RATE), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for i in range(count):
        writer.write(images[i % len(images)])
    writer.release()
    return path


def _write_av_clip(path: Path, images: list[np.ndarray], count: int) -> Path:
    """h264 (ultrafast) + a 440 Hz AAC tone as long as the video."""
    import av

    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=int(RATE))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "23"}
        sr = 48000
        aus = out.add_stream("aac", rate=sr)
        for i in range(count):
            vf = av.VideoFrame.from_ndarray(images[i % len(images)], format="bgr24")
            vf.pts = i
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        n = int(sr * count / float(RATE))
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
        chunk = 1024
        for start in range(0, n, chunk):
            af = av.AudioFrame.from_ndarray(tone[None, start : start + chunk], format="flt", layout="mono")
            af.sample_rate, af.pts = sr, start
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)
    return path


def _fps_of(iterable: Any, limit: int | None = None) -> tuple[float, int]:
    n = 0
    t0 = time.perf_counter()
    for _ in iterable:
        n += 1
        if limit is not None and n >= limit:
            break
    return n / (time.perf_counter() - t0), n


def e2e_rows(
    device: torch.device, preset: str, precision: str, w: int, h: int, count: int, tmp: Path, log: Any = print
) -> list[dict[str, Any]]:
    """End-to-end rates for one preset and size; see the module docstring."""
    from stylize_video.io.sinks import NullSink
    from stylize_video.runtime.pipeline import Pipeline

    res = f"{w}x{h}"
    torch.manual_seed(0)
    stylizer = Stylizer(TransformNet(PRESETS[preset]), device=device, precision=precision)
    images = synthetic_frames(w, h, count=8)
    sync = sync_for(device)
    model = time_fn(lambda: stylizer(images[0]), warmup=3, iters=30, max_seconds=10.0, sync=sync)
    model_fps = model.fps
    rows: list[dict[str, Any]] = []

    def add(path: str, fps: float, frames: int, stages: dict[str, float], note: str = "") -> None:
        slowest = min(stages.values()) if stages else float("nan")
        row = {
            "preset": preset,
            "res": res,
            "precision": precision,
            "path": path,
            "frames": frames,
            "fps": round(fps, 1),
            "x model-only": round(fps / model_fps, 2),
            "slowest stage": min(stages, key=lambda k: stages[k]) if stages else "-",
            "slowest fps": round(slowest, 1),
            "of slowest %": round(100 * fps / slowest, 0) if stages else None,
            "note": note,
        }
        rows.append(row)
        log(f"  e2e {preset} {res} {path}: {row['fps']} fps ({row['of slowest %']}% of {row['slowest stage']})")

    add("model + transfer only", model_fps, model.n, {"model": model_fps})
    stats = Pipeline(_MemorySource(images, count), stylizer, [NullSink()]).run()
    add("memory -> pipeline -> null", stats.fps, stats.frames, {"model": model_fps})

    try:
        clip = _write_opencv_clip(tmp / f"cv_{res}.mp4", images, count)
        decode_fps, _ = _fps_of(_OpenCVFileSource(clip))
        stats = Pipeline(_OpenCVFileSource(clip), stylizer, [NullSink()]).run()
        add(
            "opencv decode -> pipeline -> null",
            stats.fps,
            stats.frames,
            {"decode (opencv mp4v)": decode_fps, "model": model_fps},
        )
    except (ImportError, RuntimeError) as exc:
        add("opencv decode -> pipeline -> null", float("nan"), 0, {}, note=f"skipped: {exc}")

    try:
        import av  # noqa: F401
    except ImportError:
        add("pyav decode -> pipeline -> encode", float("nan"), 0, {}, note="skipped: PyAV not installed here")
        return rows
    from stylize_video.io.sinks import VideoFileSink
    from stylize_video.io.sources import VideoFileSource

    clip = _write_av_clip(tmp / f"av_{res}.mp4", images, count)
    with VideoFileSource(clip) as src:
        decode_fps, _ = _fps_of(src)
    sink = VideoFileSink(tmp / f"enc_{res}.mp4", fps=RATE, overwrite=True)
    t0 = time.perf_counter()
    for frame in _MemorySource(images, count):
        sink.write(frame)
    sink.finish()
    sink.close()
    encode_fps = count / (time.perf_counter() - t0)
    encoder = sink.encoder or "?"
    out = tmp / f"out_{res}.mp4"
    src = VideoFileSource(clip)
    sink = VideoFileSink(out, fps=src.fps, audio_from=clip, inputs=[clip], overwrite=True)
    stats = Pipeline(src, stylizer, [sink]).run()
    src.close()
    add(
        "pyav decode -> pipeline -> encode (+audio)",
        stats.fps,
        stats.frames,
        {"decode (pyav h264)": decode_fps, "model": model_fps, f"encode ({encoder})": encode_fps},
        note=f"encoder {encoder}",
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Model and end-to-end speed on a CUDA machine (<= 8 minutes).")
    p.add_argument("--device", default="auto")
    p.add_argument("--presets", nargs="+", default=["full", "lite"], choices=list(PRESETS))
    p.add_argument("--resolutions", nargs="+", default=["1920x1080", "3840x2160"], choices=list(RESOLUTIONS))
    p.add_argument("--precision", default=None, help="default fp16 on CUDA, fp32 on CPU")
    p.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (CPU smoke runs)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (saves the compile time)")
    p.add_argument("--e2e-frames", type=int, default=240, help="frames per end-to-end run (halved at 4K)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=360.0,
        help="start nothing new after this many seconds (one e2e run may follow)",
    )
    p.add_argument("--out", default=os.environ.get("OUT") or None, help="results folder (default $OUT, else results/)")
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        print(f"warning: no CUDA device, running on {device} (smoke test)", file=sys.stderr)
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    machine = machine_info(device)
    notes: list[str] = []

    # Part 1: graph-free modes first so a compile that eats the budget costs nothing else;
    # the model grid gets the first 35% of the budget, compiling up to 55%, end to end the rest.
    fast_modes = ["channels_last", "cuda_graph"] if device.type == "cuda" else ["channels_last"]
    grid = run_grid(
        GridSpec(
            args.presets,
            args.resolutions,
            [precision],
            fast_modes,
            rounds=3,
            iters_per_round=10,
            max_seconds=3.0,
            deadline=t_start + 0.35 * args.budget_s,
        ),
        device,
    )
    rows = grid["rows"]
    if not args.no_compile:
        compiled = run_grid(
            GridSpec(
                args.presets,
                args.resolutions,
                [precision],
                ["compiled"],
                rounds=3,
                iters_per_round=10,
                max_seconds=3.0,
                deadline=t_start + 0.55 * args.budget_s,
            ),
            device,
        )
        rows += compiled["rows"]
    order = {m: i for i, m in enumerate(["eager", "channels_last", "compiled", "cuda_graph"])}
    rows.sort(key=lambda r: (r["preset"], RESOLUTIONS[r["res"]][0], order.get(r["mode"], 9)))

    # Part 2: end to end.
    e2e: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    try:
        import stylize_video.runtime.pipeline  # noqa: F401
    except ImportError as exc:
        notes.append(f"end-to-end skipped: {exc}")
    else:
        for preset in args.presets:
            for res in args.resolutions:
                if time.perf_counter() > deadline:
                    notes.append(f"end-to-end {preset} {res} skipped: time budget spent")
                    continue
                w, h = RESOLUTIONS[res]
                count = args.e2e_frames if w * h <= 1920 * 1080 else max(30, args.e2e_frames // 2)
                try:
                    e2e += e2e_rows(device, preset, precision, w, h, count, tmp)
                except Exception as exc:  # report and go on: the table must still print
                    notes.append(f"end-to-end {preset} {res} failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    notes += [
        f"total wall time {time.perf_counter() - t_start:.0f} s (budget {args.budget_s:.0f} s)",
        "x floor = median latency / max(compute floor, memory floor); floors from a matmul and a copy measured here",
        "end-to-end fps = frames / wall of Pipeline.run (threads started and joined inside); "
        "'of slowest %' compares it with the slowest stage measured alone",
    ]
    gpu = machine.get("gpu") or device.type
    name = args.name or "gpu_bench_" + "".join(c if c.isalnum() else "_" for c in gpu).strip("_").lower()
    model_cols = ["preset", "res", "precision", "mode", "fps", "p50 ms", "p95 ms", "peak MiB", "first call s",
                  "GFLOP/s", "compute floor ms", "memory floor ms", "x floor", "note"]  # fmt: skip
    e2e_cols = ["preset", "res", "precision", "path", "frames", "fps", "x model-only", "slowest stage",
                "slowest fps", "of slowest %", "note"]  # fmt: skip
    cmd = command_line("gpu_bench", argv)
    _, md_path, text = write_results(
        name,
        machine,
        [
            ("Ceilings measured here", grid["ceilings"], ["what", "value", "unit"]),
            ("Model only", rows, model_cols),
            ("End to end", e2e, e2e_cols),
        ],
        out_dir=args.out,
        config={"command": cmd, **vars(args)},
        notes=notes,
    )
    print()
    print(text)
    print(f"wrote {md_path} (+ .json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
