"""End-to-end file conversion throughput against model-only throughput.

For each preset (lite, full) and resolution (640x480, 1280x720): a clip is generated
(the built-in synthetic scene, h264 + AAC), then

* ``model``   the engine alone on a frame already on the device (``Stylizer.stylize``);
* ``model+io`` upload + stylize + download per frame (numpy BGR in and out);
* ``file``    the whole ``stylize-video run`` path: PyAV decode thread -> model ->
  encode thread (libx264, or NVENC on CUDA) with the audio copied, timed from the
  first decoded frame to the renamed output.

The ratio ``file / model`` is what the pipeline costs; the target is >= 0.90.
``model busy`` is the share of the file run's wall time the main thread spent in
upload + model + download, measured in the same run. On a shared CPU machine wall
times swing with other people's load, so process CPU time per frame is reported
too: ``CPU ratio`` = model CPU / file CPU (all threads) is the throughput ratio a
CPU-bound conversion reaches when the cores are the bottleneck.
Random weights: speed does not depend on what a style looks like.

    python -m benchmarks.end_to_end                      # CPU, both presets, both sizes
    python -m benchmarks.end_to_end --device cuda
    python -m benchmarks.end_to_end --quick              # lite at 640x480 only

Writes ``benchmarks/results/end_to_end-<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    RESOLUTIONS,
    Column,
    Section,
    command_line,
    every_round,
    interleaved,
    machine_info,
    write_results,
)
from stylize_video.devices import resolve_device
from stylize_video.io.sinks import VideoFileSink
from stylize_video.io.sources import SyntheticSource, VideoFileSource
from stylize_video.models.transform_net import PRESETS, TransformNet
from stylize_video.runtime.pipeline import Pipeline
from stylize_video.runtime.stylizer import Stylizer

SIZES = ["640x480", "1280x720"]
COLUMNS = [
    Column("preset"),
    Column("size"),
    Column("precision"),
    Column("frames"),
    Column("model_fps", "model fps", ".2f"),
    Column("model_io_fps", "model+io fps", ".2f"),
    Column("file_fps", "file fps", ".2f"),
    Column("ratio", "file / model", ".0%"),
    Column("model_busy", "model busy", ".0%"),
    Column("model_cpu_ms_per_frame", "CPU ms/frame model", ".0f"),
    Column("file_cpu_ms_per_frame", "CPU ms/frame file", ".0f"),
    Column("cpu_ratio", "CPU ratio", ".0%"),
    Column("encoder"),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 30) -> Path:
    """The synthetic scene as h264 with a silent-ish AAC track, written with the project's own sink."""
    import av

    src = SyntheticSource(width, height, fps, frames=frames)
    sink = VideoFileSink(path, fps=fps, crf=23, preset="ultrafast", allow_nvenc=False, overwrite=True)
    for frame in src:
        sink.write(frame)
    sink.finish()
    sink.close()
    # Add an audio track by remuxing: the end-to-end run must copy audio too.
    with_audio = path.with_name(path.stem + "-a" + path.suffix)
    with av.open(str(path)) as inp, av.open(str(with_audio), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("aac", rate=48000)
        aout.layout = "stereo"
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
        n = int(frames / fps * 48000)
        t = np.arange(n) / 48000
        tone = np.tile((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (2, 1))
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp")
            af.sample_rate, af.pts = 48000, start
            out.mux(aout.encode(af))
        out.mux(aout.encode(None))
    return with_audio


def time_model(stylizer: Stylizer, width: int, height: int, frames: int) -> tuple[float, float, float]:
    """fps of the model alone and of upload + model + download, and the model's CPU seconds per frame."""
    image = SyntheticSource(width, height).render(0)
    x = stylizer.transfer.upload(image)
    for _ in range(2):
        stylizer.stylize(x)
    _sync(stylizer.device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(frames):
        stylizer.stylize(x)
    _sync(stylizer.device)
    model = frames / (time.perf_counter() - t0)
    model_cpu = (time.process_time() - c0) / frames
    t0 = time.perf_counter()
    for _ in range(frames):
        stylizer(image)
    io = frames / (time.perf_counter() - t0)
    return model, io, model_cpu


def _frames_for(stylizer: Stylizer, width: int, height: int, seconds: float) -> int:
    """Enough frames for ``seconds`` of model time (fixed costs such as opening the
    encoder and flushing its lookahead then weigh little), within 8..300."""
    x = stylizer.transfer.upload(SyntheticSource(width, height).render(0))
    stylizer.stylize(x)  # first call: allocations, kernel selection
    _sync(stylizer.device)
    t0 = time.perf_counter()
    stylizer.stylize(x)
    _sync(stylizer.device)
    return max(8, min(300, round(seconds / max(time.perf_counter() - t0, 1e-6))))


def time_file(stylizer: Stylizer, clip: Path, out: Path) -> tuple[float, int, str, float, float]:
    """fps of the threaded file-to-file pipeline, frames, encoder, the model's busy share, CPU s/frame."""
    source = VideoFileSource(clip)
    on_cpu = stylizer.device.type == "cpu"  # as `stylize-video run` does: cheap x264 preset when sharing the CPU
    sink = VideoFileSink(out, audio_from=clip, fps=source.fps, inputs=[clip], overwrite=True, share_cpu=on_cpu)
    t0, c0 = time.perf_counter(), time.process_time()
    stats = Pipeline(source, stylizer, [sink]).run()
    wall = time.perf_counter() - t0
    cpu = (time.process_time() - c0) / max(stats.frames, 1)  # all threads: decode, model, encode
    source.close()
    return stats.frames / wall, stats.frames, sink.encoder or "?", stats.busy / wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (default: torch's)")
    ap.add_argument(
        "--frames", type=int, default=None, help="frames per measurement (default: ~--seconds of model time, 8..300)"
    )
    ap.add_argument("--seconds", type=float, default=8.0, help="model time each measurement aims for (default 8)")
    ap.add_argument("--presets", nargs="+", default=["lite", "full"], choices=sorted(PRESETS))
    ap.add_argument("--sizes", nargs="+", default=SIZES, choices=list(RESOLUTIONS))
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds; the best of each is kept")
    ap.add_argument("--quick", action="store_true", help="lite at 640x480 only")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.quick:
        args.presets, args.sizes = ["lite"], ["640x480"]

    machine = machine_info(resolve_device(args.device))  # the load average before this run adds its own
    rows: list[dict[str, Any]] = []
    device: torch.device | None = None
    with tempfile.TemporaryDirectory(prefix="e2e-") as tmp:
        for size in args.sizes:
            w, h = RESOLUTIONS[size]
            for name in args.presets:
                torch.manual_seed(0)
                net = TransformNet(PRESETS[name]).eval()
                stylizer = Stylizer(net, device=args.device, precision=args.precision, threads=args.threads)
                device = stylizer.device
                frames = args.frames or _frames_for(stylizer, w, h, args.seconds)
                clip = make_clip(Path(tmp) / f"in-{size}-{frames}.mp4", w, h, frames)
                # Best of --repeat rounds, alternating, so a busy machine hurts both sides alike.
                out = Path(tmp) / f"out-{name}-{size}.mp4"
                contenders: dict[str, Callable[[int], tuple[Any, ...]]] = {
                    "model": every_round(time_model, stylizer, w, h, frames),
                    "file": every_round(time_file, stylizer, clip, out),
                }
                runs = interleaved(contenders, args.repeat)
                model_fps = max(m[0] for m in runs["model"])
                io_fps = max(m[1] for m in runs["model"])
                model_cpu = min(m[2] for m in runs["model"])
                file_fps, done, encoder, busy, _ = max(runs["file"], key=lambda f: f[0])
                file_cpu = min(f[4] for f in runs["file"])
                row = {
                    "preset": name,
                    "size": size,
                    "precision": str(stylizer.dtype).removeprefix("torch."),
                    "frames": done,
                    "model_fps": model_fps,
                    "model_io_fps": io_fps,
                    "file_fps": file_fps,
                    "ratio": file_fps / model_fps,
                    "model_busy": busy,
                    "model_cpu_s_per_frame": model_cpu,
                    "file_cpu_s_per_frame": file_cpu,
                    "cpu_ratio": model_cpu / file_cpu,
                    "model_cpu_ms_per_frame": model_cpu * 1000,
                    "file_cpu_ms_per_frame": file_cpu * 1000,
                    "encoder": encoder,
                }
                rows.append(row)
                print(
                    f"{name:5s} {size:9s} model {model_fps:7.2f} fps  model+io {io_fps:7.2f}  "
                    f"file {file_fps:7.2f}  ratio {row['ratio']:.0%}  busy {busy:.0%}  "
                    f"cpu/frame model {model_cpu * 1000:.0f} ms file {file_cpu * 1000:.0f} ms ({row['cpu_ratio']:.0%})  ({encoder})",
                    flush=True,
                )
    assert device is not None
    machine["torch_threads"] = torch.get_num_threads()  # as the engines set it
    _, md_path, text = write_results(
        f"end_to_end-{device.type}",
        machine,
        [Section(f"End-to-end file conversion vs model-only, {device}", rows, COLUMNS)],
        out_dir=args.out,
        config={"command": command_line("end_to_end", argv), **vars(args)},
    )
    print(text)
    print(f"wrote {md_path} (+ .json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
