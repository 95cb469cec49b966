"""Speed under contention: idle vs one and two busy processes, per engine setting.

Each setting runs in a fresh worker process (OpenMP's wait policy is read when torch
loads, so it cannot change inside one process): uint8 BGR 640x480 frames in and out
through ``Stylizer`` for a fixed time, throughput = frames / elapsed. Busy processes
are ``python -c 'while True: pass'``. Settings and load levels are interleaved in
rounds so the machine's own noise hits all alike; medians over rounds are reported.

Settings: ``default`` is what ``stylize-video run`` does now (the CLI's
``configure_thread_defaults`` before torch loads, ``--backend auto``, no ``--threads``);
``old-default`` is the engine of commit 4474d69 (torch, its default threads, spinning
OpenMP); the rest vary one thing each.

    python -m benchmarks.contention --seconds 4 --rounds 2
    python -m benchmarks.contention --settings default,old-default --loads 0,1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]

#: name -> (backend, threads, extra environment, apply the CLI's defaults)
SETTINGS: dict[str, tuple[str, int | None, dict[str, str], bool]] = {
    "default": ("auto", None, {}, True),
    "old-default": ("torch", None, {}, False),
    "torch-1thread": ("torch", 1, {}, False),
    "torch-default-passive": ("torch", None, {}, True),
    "torch-2threads-spin10k": ("torch", 2, {"GOMP_SPINCOUNT": "10000"}, False),
    "openvino-1thread": ("openvino", 1, {}, True),
    "openvino-2threads": ("openvino", 2, {}, True),
    "onnxruntime-default": ("onnxruntime", None, {}, True),
    "onnxruntime-1thread": ("onnxruntime", 1, {}, True),
}


def _worker(args: argparse.Namespace) -> None:
    """Time one setting in this process and print a JSON line."""
    backend, threads, _env, cli_defaults = SETTINGS[args.worker]
    if cli_defaults:
        from stylize_video.cli import configure_thread_defaults

        configure_thread_defaults()
    import numpy as np

    from stylize_video.runtime.stylizer import Stylizer

    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = [(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(4)]
    st = Stylizer(args.style, device="cpu", backend=backend, threads=threads)
    for f in frames[:2]:
        st(f)  # warm-up: compilation, allocations
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        st(frames[n % len(frames)])
        n += 1
    fps = n / (time.perf_counter() - t0)
    print(json.dumps({"fps": fps, "backend": st.backend.name, "precision": st.precision, "frames": n}))


def _busy(k: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def _run_setting(name: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(key, None)  # each setting says its own
    env.update(SETTINGS[name][2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "benchmarks.contention", "--worker", name, "--style", args.style]
    cmd += ["--size", args.size, "--seconds", str(args.seconds)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _table(results: dict[str, dict[int, list[float]]], info: dict[str, dict[str, str]], loads: list[int]) -> str:
    head = "| setting | engine | " + " | ".join(f"{k} busy (fps)" for k in loads) + " | vs idle |"
    lines = [head, "|" + "---|" * (len(loads) + 3)]
    for name, by_load in results.items():
        med = {k: statistics.median(v) if v else float("nan") for k, v in by_load.items()}
        idle = med.get(0, float("nan"))
        ratio = " / ".join(f"{med[k] / idle:.2f}" for k in loads if k != 0) if 0 in med else ""
        cells = " | ".join(f"{med[k]:.1f}" for k in loads)
        lines.append(f"| {name} | {info[name].get('engine', '?')} | {cells} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry-night-lite")
    p.add_argument("--size", default="640x480")
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per setting and load")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--loads", default="0,1,2", help="numbers of busy processes")
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--out", default="contention")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    names = [s for s in args.settings.split(",") if s]
    loads = [int(k) for k in args.loads.split(",")]
    results: dict[str, dict[int, list[float]]] = {n: {k: [] for k in loads} for n in names}
    info: dict[str, dict[str, str]] = {n: {} for n in names}
    started = time.time()
    for r in range(args.rounds):
        for k in loads:
            busy = _busy(k)
            try:
                time.sleep(0.5)
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    res = _run_setting(name, args)
                    if "error" in res:
                        info[name]["engine"] = f"error: {res['error']}"
                        continue
                    info[name]["engine"] = f"{res['backend']} {res['precision']}"
                    results[name][k].append(res["fps"])
                    print(f"round {r} busy {k} {name}: {res['fps']:.1f} fps", flush=True)
            finally:
                for b in busy:
                    b.kill()
                    b.wait()
    meta = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "style": args.style,
        "size": args.size,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "wall_s": round(time.time() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "meta": meta,
        "settings": {n: {"backend": SETTINGS[n][0], "threads": SETTINGS[n][1], "env": SETTINGS[n][2]} for n in names},
    }
    payload["fps"] = {n: {str(k): v for k, v in by.items()} for n, by in results.items()}
    payload["engine"] = info
    (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=2) + "\n")
    md = [
        f"# Contention: {args.style} {args.size}, uint8 BGR in/out through Stylizer",
        "",
        f"{meta['date_utc']}, {meta['logical_cpus']} logical CPUs, {args.rounds} rounds x {args.seconds:g} s, "
        f"medians; load average at the end {meta['load_average_1m_at_end']} (a shared, noisy machine: other "
        "jobs ran alongside, so compare rows, not absolute figures). `python -m benchmarks.contention`.",
        "",
        _table(results, info, loads),
        "",
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
