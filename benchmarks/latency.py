"""Capture-to-sink latency of the live outputs: null vs udp (H.264/MPEG-TS) vs http (MJPEG).

Runs the real threaded pipeline (``runtime/pipeline.py``: decode thread -> model ->
encode thread) on the built-in synthetic scene paced in real time (a live source,
like a camera), with a random-weight network (speed does not depend on the style).

Latency is ``time.perf_counter()`` when the frame *left the sink* minus
``Frame.captured`` (stamped by the source when it produced the frame):

* ``null``  when ``NullSink.write`` returned (the pipeline's own measurement);
* ``udp``   when the frame's H.264 packets were handed to the UDP socket (the sink's
  ``on_sent``, from its writer thread); a local socket drains the datagrams;
* ``http``  when the frame's JPEG was written to a connected viewer's socket (the
  MJPEG server's ``on_sent``); one local viewer reads ``/stream.mjpg``.

The issue's target: udp and http add at most one frame period over null.

    python -m benchmarks.latency                         # 640x360@30, lite net, 300 frames per sink
    python -m benchmarks.latency --net tiny --frames 600 --size 1280x720

Writes ``benchmarks/results/latency-<device>.json`` and ``.md``. Loopback only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.harness import command_line, every_round, interleaved, machine_info, parse_size, write_results
from stylize_video.io.base import Frame
from stylize_video.io.mjpeg import MjpegSink
from stylize_video.io.network_sink import NetworkStreamSink
from stylize_video.io.sinks import NullSink
from stylize_video.io.sources import SyntheticSource
from stylize_video.models.transform_net import PRESETS, NetConfig, TransformNet
from stylize_video.runtime.controls import LiveControls
from stylize_video.runtime.pipeline import Pipeline
from stylize_video.runtime.stylizer import Stylizer

NETS = {**PRESETS, "tiny": NetConfig(channels=(4, 8), res_blocks=1, head_kernel=3, tail_kernel=3)}


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _UdpDrain:
    """Receives and discards datagrams so the stream has a live receiver (and counts bytes)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bytes += len(self.sock.recv(65536))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class _MjpegViewer:
    """One viewer reading /stream.mjpg as fast as it can."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        self.bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := self.sock.recv(1 << 20):
                self.bytes += len(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self._thread.join(5)  # the server closes the stream when the sink closes
        self.sock.close()


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50) * 1000), float(np.percentile(values, 95) * 1000)


def run_one(kind: str, stylizer: Stylizer, args: argparse.Namespace) -> dict[str, Any]:
    """One pipeline run into one sink; raw latencies (seconds) and counters."""
    width, height = args.width, args.height
    sent: list[tuple[int, float]] = []

    def on_sent(frame: Frame) -> None:
        sent.append((frame.index, time.perf_counter() - frame.captured))

    aux: Any = None
    sink: Any
    if kind == "null":
        sink = NullSink()
    elif kind == "udp":
        aux = _UdpDrain()
        # pace=False as `run` does for live sources: they are real-time already.
        sink = NetworkStreamSink(f"udp://127.0.0.1:{aux.port}", fps=args.fps, on_sent=on_sent, pace=False)
    elif kind == "http":
        sink = MjpegSink(port=0, on_sent=on_sent)
        aux = _MjpegViewer(sink.host, sink.port)
    else:
        raise ValueError(kind)
    source = SyntheticSource(width, height, args.fps, frames=args.frames, live=True)
    pipeline = Pipeline(source, stylizer, [sink], queue_size=2)
    stats = pipeline.run()  # closes the sink
    if aux is not None:
        aux.close()
    warm = args.warmup
    write_lat = stats.latencies[warm:]
    out_lat = write_lat if kind == "null" else [lat for index, lat in sent if index >= warm]
    return {
        "frames": stats.frames,
        "wall": stats.wall,
        "pipeline dropped": stats.dropped,
        "sink dropped": getattr(getattr(sink, "stats", None), "dropped", 0),
        "paced": getattr(getattr(sink, "pacer", None), "waited", 0.0),
        "write": write_lat,
        "out": out_lat,
    }


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool the rounds of one sink into a table row."""
    out = [x for r in runs for x in r["out"]]
    write = [x for r in runs for x in r["write"]]
    p50, p95 = _percentiles(out)
    frames = sum(r["frames"] for r in runs)
    return {
        "sink": kind,
        "frames": frames,
        "fps": round(frames / max(sum(r["wall"] for r in runs), 1e-9), 1),
        "pipeline dropped": sum(r["pipeline dropped"] for r in runs),
        "sink dropped": sum(r["sink dropped"] for r in runs),
        "paced ms": round(1000 * sum(r["paced"] for r in runs), 1),
        "write p50 ms": round(_percentiles(write)[0], 2),
        "p50 ms": round(p50, 2),
        "p95 ms": round(p95, 2),
        # Within each round: the sink's own delay after the pipeline handed the frame over
        # (encode + send); far less sensitive to the machine's load than the totals.
        "sink adds p50 ms": round(
            float(np.median([_percentiles(r["out"])[0] - _percentiles(r["write"])[0] for r in runs])), 2
        ),
    }


def style_switch(stylizer: Stylizer, args: argparse.Namespace, every: int = 10) -> dict[str, Any]:
    """Frame-to-frame intervals when live controls switch between two preloaded styles.

    A file-like (non-live) source keeps the model busy back to back, so an interval
    is one frame's work; a switch that cost more than a frame would show as an
    interval above twice the median.
    """
    other = stylizer.preload(TransformNet(NETS[args.net]).eval())[0]
    styles = [stylizer.style_name, other]
    controls = LiveControls()
    stamps: list[float] = []

    def on_frame(frame: Frame) -> None:
        stamps.append(time.perf_counter())
        if frame.index % every == every - 1:
            controls.next_style()  # applied before the next frame

    source = SyntheticSource(args.width, args.height, args.fps, frames=max(every * 12, 60), live=False)
    Pipeline(source, stylizer, [NullSink()], styles=styles, controls=controls, on_frame=on_frame).run()
    gaps = np.diff(stamps) * 1000
    switch = gaps[every - 1 :: every]  # gap k ends at frame k+1: the first frame after each switch
    normal = np.delete(gaps, np.arange(every - 1, len(gaps), every))
    return {
        "switches": len(switch),
        "frame interval p50 ms": round(float(np.median(normal)), 2),
        "normal p95 ms": round(float(np.percentile(normal, 95)), 2),
        "after switch p50 ms": round(float(np.median(switch)), 2),
        "after switch max ms": round(float(switch.max()), 2),
        "hitch <= 1 frame": "yes" if np.median(switch) <= 2 * np.median(normal) else "no",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=parse_size, default=(640, 360), help="frame size WxH (default 640x360)")
    p.add_argument("--fps", type=float, default=30.0, help="source rate (default 30)")
    p.add_argument("--frames", type=int, default=300, help="frames per sink and round (default 300)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, sinks interleaved (default 3)")
    p.add_argument("--warmup", type=int, default=30, help="first frames left out of the percentiles (default 30)")
    p.add_argument("--net", default="lite", choices=sorted(NETS), help="network preset, random weights (default lite)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--sinks", default="null,udp,http", help="comma-separated: null, udp, http")
    p.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    args.width, args.height = args.size
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    stylizer = Stylizer(TransformNet(NETS[args.net]).eval(), device=args.device)
    # Warm the engine (allocations, oneDNN kernels) outside the measured runs.
    warm: Callable[[np.ndarray], np.ndarray] = stylizer
    for _ in range(5):
        warm(np.zeros((args.height, args.width, 3), np.uint8))
    kinds = [k.strip() for k in args.sinks.split(",")]

    def one(kind: str) -> dict[str, Any]:
        run = run_one(kind, stylizer, args)
        print(f"{kind}: {summarize(kind, [run])}", flush=True)
        return run

    # Sinks take turns, round after round (see harness.interleaved).
    runs = interleaved(
        {k: every_round(one, k) for k in kinds},
        args.rounds,
        after_round=lambda r: print(f"round {r + 1}/{args.rounds} done", flush=True),
    )
    rows = [summarize(kind, runs[kind]) for kind in kinds]
    null = next((r for r in rows if r["sink"] == "null"), None)
    period = 1000.0 / args.fps
    for row in rows:
        if null is not None:
            row["added p50 ms"] = round(row["p50 ms"] - null["p50 ms"], 2)
            row["added p95 ms"] = round(row["p95 ms"] - null["p95 ms"], 2)
            row["<= 1 frame"] = "yes" if row["added p50 ms"] <= period and row["added p95 ms"] <= period else "no"
    switch = style_switch(stylizer, args)
    print(f"style switch: {switch}", flush=True)
    machine = machine_info(stylizer.device)
    command = command_line("latency", argv)
    cols = ["sink", "frames", "fps", "pipeline dropped", "sink dropped", "paced ms", "write p50 ms", "p50 ms", "p95 ms"]
    cols += ["sink adds p50 ms", "added p50 ms", "added p95 ms", "<= 1 frame"]
    size = f"{args.width}x{args.height}"
    _, md_path, text = write_results(
        f"latency-{stylizer.device.type}",
        machine,
        [
            (
                f"Capture -> leaving the sink, {size}@{args.fps:g} live synthetic, net {args.net}, {args.rounds} rounds",
                rows,
                cols,
            ),
            ("Style switch through LiveControls (two preloaded styles, every 10th frame)", [switch], list(switch)),
        ],
        out_dir=args.out_dir,
        config={"command": command, **{k: v for k, v in vars(args).items() if k != "out_dir"}},
        notes=[
            "Measured with the threaded pipeline (runtime/pipeline.py), not a direct loop.",
            "null: NullSink.write returned; udp: H.264/MPEG-TS packets handed to the socket; "
            "http: JPEG written to a connected viewer's socket. First --warmup frames excluded.",
            f"One frame period is {period:.1f} ms; 'added' is the difference to the null sink at the same percentile "
            "(pooled over rounds, so it carries the machine's load swings between runs).",
            "'sink adds' is, per round, p50(leaving the sink) - p50(write returned), median over rounds: "
            "the sink's own encode + send delay, measured inside one run.",
        ],
    )
    print(text)
    print(f"wrote {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
