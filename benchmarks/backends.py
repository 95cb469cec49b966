"""Inference backends side by side: each installed backend x preset x size x threads.

Every contender is a ``Stylizer`` timed uint8 BGR frame in -> uint8 BGR frame out
(upload, pad, network, crop, download included), at its backend's default precision
(``auto``: torch and OpenVINO bf16 on CPUs with native bf16, ONNX Runtime fp32).
Contenders run interleaved in rounds (the order reversed every other round) so the
machine's load hits all alike; the figure is the median frame time over all rounds.
The ``benchmarks`` package imports ``stylize_video`` before torch loads, so the
process has the package's OpenMP default, as ``stylize-video run`` does.

    python -m benchmarks.backends --rounds 3
    python -m benchmarks.backends --presets lite --sizes 640x480 --threads 1,2

Writes ``benchmarks/results/<--out>.json`` and ``.md`` (default ``backends``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

# Nothing here imports torch at module level: the thread defaults must be set first.
STYLES = {"lite": "starry-night-lite", "full": "starry-night"}
KEYS = ("preset", "size", "threads")


def _timed_frames(stylizer: Any, frame: Any, n: int, threads: int) -> Callable[[int], list[float]]:
    """A contender: ``n`` timed frames through ``stylizer``, seconds each."""
    import torch

    def run(_round: int) -> list[float]:
        torch.set_num_threads(threads)  # torch runs the pre/post-processing of every backend
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            stylizer(frame)
            times.append(time.perf_counter() - t0)
        return times

    return run


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.backends", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed one)")
    p.add_argument("--presets", default="lite,full")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--precision", default="auto")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frames-lite", type=int, default=6, help="timed frames per contender and round (lite)")
    p.add_argument("--frames-full", type=int, default=1, help="timed frames per contender and round (full)")
    p.add_argument("--out", default="backends")
    args = p.parse_args(argv)

    import cv2
    import numpy as np
    import torch

    from benchmarks.harness import Column, Section, command_line, interleaved, machine_info, spread, write_results
    from stylize_video.runtime.backends import is_installed
    from stylize_video.runtime.stylizer import Stylizer

    names = (
        args.backends.split(",")
        if args.backends
        else [b for b in ("torch", "openvino", "onnxruntime") if is_installed(b)]
    )
    machine = machine_info(torch.device("cpu"))
    rows: list[dict[str, Any]] = []
    contenders: dict[int, Callable[[int], list[float]]] = {}
    rng = np.random.default_rng(0)
    for preset in args.presets.split(","):
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            # Smooth content with edges (a blurred random image compresses like a photo).
            frame = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 4)
            for threads in (int(t) for t in args.threads.split(",")):
                for backend in names:
                    torch.set_num_threads(threads)
                    st = Stylizer(
                        STYLES[preset], device="cpu", backend=backend, threads=threads, precision=args.precision
                    )
                    st(frame)  # warm-up: compilation for this size, allocations
                    n = args.frames_lite if preset == "lite" else args.frames_full
                    contenders[len(rows)] = _timed_frames(st, frame, n, threads)
                    rows.append(
                        {
                            "backend": backend,
                            "precision": st.precision,
                            "preset": preset,
                            "size": size,
                            "threads": threads,
                        }
                    )

    started = time.time()
    times: dict[int, list[float]] = {i: [] for i in contenders}
    order = list(contenders)
    for r in range(args.rounds):
        # One round at a time so every other round runs in reverse: no contender
        # always follows the same neighbour (whose threads may still be winding down).
        keys = order if r % 2 == 0 else order[::-1]
        for i, got in interleaved({i: contenders[i] for i in keys}, 1).items():
            times[i] += got[0]
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    for i, row in enumerate(rows):
        s = spread(times[i])
        row.update(
            median_ms=round(s["median"] * 1e3, 2),
            min_ms=round(s["min"] * 1e3, 2),
            max_ms=round(s["max"] * 1e3, 2),
            fps=round(1.0 / s["median"], 2),
            frames=s["n"],
        )
    for row in rows:
        base = next((o for o in rows if o["backend"] == "torch" and all(o[k] == row[k] for k in KEYS)), None)
        row["vs_torch"] = round(base["median_ms"] / row["median_ms"], 2) if base else None

    versions = {}
    for mod in ("openvino", "onnxruntime"):
        with contextlib.suppress(ImportError):
            versions[mod] = __import__(mod).__version__
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    text = (
        f"{args.rounds} interleaved rounds, medians over all frames; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; load average at the end {machine['load_average_1m_at_end']} "
        "(a shared, noisy machine: compare rows of one run, not absolute figures)."
    )
    columns: list[str | Column] = [
        "preset",
        "size",
        "threads",
        "backend",
        "precision",
        Column("median_ms", "ms/frame", ".1f"),
        Column("min_ms", "min ms", ".1f"),
        Column("max_ms", "max ms", ".1f"),
        Column("fps", "fps"),
        Column("vs_torch", "vs torch"),
        "frames",
    ]
    _, md, out = write_results(
        args.out,
        machine,
        [Section("Inference backends: uint8 BGR in/out through Stylizer, default precision", rows, columns, text)],
        config={
            "command": command_line("backends", argv),
            **vars(args),
            "versions": versions,
            "wall_s": round(time.time() - started, 1),
        },
        extra={"frame_times_s": {str(i): times[i] for i in times}},
    )
    print(out)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
