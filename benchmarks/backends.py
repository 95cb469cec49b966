"""Inference backends side by side: each installed backend x preset x size x threads.

Every contender is a ``Stylizer`` timed uint8 BGR frame in -> uint8 BGR frame out
(upload, pad, network, crop, download included), at its backend's default precision
(``auto``: torch and OpenVINO bf16 on CPUs with native bf16, ONNX Runtime fp32).
Contenders run interleaved in rounds (the order reversed every other round) so the
machine's load hits all alike; the figure is the median frame time over all rounds.
The process applies the CLI's thread defaults (``configure_thread_defaults``) first,
as ``stylize-video run`` does.

    python -m benchmarks.backends --rounds 3
    python -m benchmarks.backends --presets lite --sizes 640x480 --threads 1,2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
STYLES = {"lite": "starry-night-lite", "full": "starry-night"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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

    from stylize_video.cli import configure_thread_defaults

    configure_thread_defaults()  # before torch loads, as the CLI does
    import numpy as np
    import torch

    from stylize_video.runtime.backends import is_installed
    from stylize_video.runtime.stylizer import Stylizer

    names = (
        args.backends.split(",")
        if args.backends
        else [b for b in ("torch", "openvino", "onnxruntime") if is_installed(b)]
    )
    contenders: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for preset in args.presets.split(","):
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            # Smooth content with edges (a blurred random image compresses like a photo).
            import cv2

            frame = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 4)
            for threads in (int(t) for t in args.threads.split(",")):
                for backend in names:
                    torch.set_num_threads(threads)
                    st = Stylizer(
                        STYLES[preset], device="cpu", backend=backend, threads=threads, precision=args.precision
                    )
                    st(frame)  # warm-up: compilation for this size, allocations
                    contenders.append(
                        {
                            "backend": backend,
                            "precision": st.precision,
                            "preset": preset,
                            "size": size,
                            "threads": threads,
                            "stylizer": st,
                            "frame": frame,
                            "times": [],
                        }
                    )
    started = time.time()
    for r in range(args.rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for c in order:
            torch.set_num_threads(c["threads"])  # torch runs the pre/post-processing of every backend
            n = args.frames_lite if c["preset"] == "lite" else args.frames_full
            for _ in range(n):
                t0 = time.perf_counter()
                c["stylizer"](c["frame"])
                c["times"].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    rows = []
    for c in contenders:
        med = statistics.median(c["times"])
        rows.append(
            {k: c[k] for k in ("backend", "precision", "preset", "size", "threads")}
            | {
                "median_ms": round(med * 1e3, 2),
                "fps": round(1.0 / med, 2),
                "frames": len(c["times"]),
            }
        )
    for row in rows:
        base = next(
            (o for o in rows if o["backend"] == "torch" and all(o[k] == row[k] for k in ("preset", "size", "threads"))),
            None,
        )
        row["vs_torch"] = round(base["median_ms"] / row["median_ms"], 2) if base else None
    meta = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "rounds": args.rounds,
        "wall_s": round(time.time() - started, 1),
    }
    for mod in ("openvino", "onnxruntime"):
        with contextlib.suppress(ImportError):
            meta[mod] = __import__(mod).__version__
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Inference backends: uint8 BGR in/out through Stylizer, default precision",
        "",
        f"{meta['date_utc']}, {meta['logical_cpus']} logical CPUs, torch {meta['torch']}, "
        f"openvino {meta.get('openvino', '-')}, onnxruntime {meta.get('onnxruntime', '-')}; OMP_WAIT_POLICY="
        f"{meta['omp_wait_policy']}; {args.rounds} interleaved rounds, medians; load average at the end "
        f"{meta['load_average_1m_at_end']} (a shared, noisy machine: compare rows of one run). "
        "`python -m benchmarks.backends`.",
        "",
        "| preset | size | threads | backend | precision | ms/frame | fps | vs torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['size']} | {row['threads']} | {row['backend']} | {row['precision']} | "
            f"{row['median_ms']:.1f} | {row['fps']:.1f} | {row['vs_torch'] or '-'} |"
        )
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
