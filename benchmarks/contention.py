"""Speed under contention: idle vs one and two busy processes, per engine setting.

Each setting runs in a fresh worker process (OpenMP's wait policy is read when torch
loads, so it cannot change inside one process): uint8 BGR 640x480 frames in and out
through ``Stylizer`` for a fixed time, throughput = frames / elapsed. Busy processes
are ``python -c 'while True: pass'``. Settings and load levels are interleaved in
rounds so the machine's own noise hits all alike; medians over rounds are reported.

Settings: ``default`` is what ``stylize-video run`` and a script that imports
``stylize_video`` first do now (the package's ``configure_thread_defaults`` before torch
loads, ``--backend auto``, no ``--threads``); ``api-torch-first`` is a script that
imports torch first (OpenMP then spins: too late for the package to change it);
``old-default`` is the engine of commit 4474d69 (torch, its default threads, spinning
OpenMP); the rest vary one thing each.

    python -m benchmarks.contention --seconds 4 --rounds 2
    python -m benchmarks.contention --settings default,old-default --loads 0,1

Writes ``benchmarks/results/<--out>.json`` and ``.md`` (default ``contention``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Nothing here imports torch at module level: each worker sets its thread policy first.
ROOT = Path(__file__).resolve().parents[1]

#: name -> (backend, threads, extra environment, import stylize_video before torch)
SETTINGS: dict[str, tuple[str, int | None, dict[str, str], bool]] = {
    "default": ("auto", None, {}, True),
    "api-torch-first": ("auto", None, {}, False),
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
    backend, threads, _env, package_first = SETTINGS[args.worker]
    if not package_first:
        import torch  # noqa: F401  # first, as many scripts do: OpenMP then keeps its spinning default

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
    # By path, not ``-m benchmarks.contention``: the benchmarks package imports stylize_video
    # first (its OpenMP default), which a torch-first setting must not get.
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--style", args.style]
    cmd += ["--size", args.size, "--seconds", str(args.seconds)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _row(name: str, by_load: dict[int, list[float]], engine: str, loads: list[int]) -> dict[str, Any]:
    from benchmarks.harness import spread

    row: dict[str, Any] = {"setting": name, "engine": engine}
    for k in loads:
        s = spread(by_load[k])
        row[f"busy{k}_fps"] = s["median"]
        row[f"busy{k}_min"] = s["min"]
        row[f"busy{k}_max"] = s["max"]
    idle = row.get("busy0_fps")
    for k in loads:
        if k != 0 and idle:
            row[f"busy{k}_vs_idle"] = row[f"busy{k}_fps"] / idle
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.contention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    # The parent only starts processes; torch (through the harness) may load here.
    import torch

    from benchmarks.harness import Column, Section, command_line, every_round, interleaved, machine_info, write_results

    names = [s for s in args.settings.split(",") if s]
    loads = [int(k) for k in args.loads.split(",")]
    results: dict[str, dict[int, list[float]]] = {n: {k: [] for k in loads} for n in names}
    engine: dict[str, str] = {n: "?" for n in names}
    machine = machine_info(torch.device("cpu"))
    started = time.time()
    for r in range(args.rounds):
        for k in loads:
            busy = _busy(k)
            try:
                time.sleep(0.5)
                # Reversed every other round so no setting always follows the same one.
                order = names if r % 2 == 0 else names[::-1]
                got = interleaved({n: every_round(_run_setting, n, args) for n in order}, 1)
            finally:
                for b in busy:
                    b.kill()
                    b.wait()
            for name, (res,) in got.items():
                if "error" in res:
                    engine[name] = f"error: {res['error']}"
                    continue
                engine[name] = f"{res['backend']} {res['precision']}"
                results[name][k].append(res["fps"])
                print(f"round {r} busy {k} {name}: {res['fps']:.1f} fps", flush=True)

    rows = [_row(n, results[n], engine[n], loads) for n in names]
    for k in loads:
        best = max((row[f"busy{k}_fps"] for row in rows if row[f"busy{k}_fps"] == row[f"busy{k}_fps"]), default=0.0)
        for row in rows:
            row[f"busy{k}_vs_best"] = row[f"busy{k}_fps"] / best if best else None
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    columns: list[str | Column] = ["setting", "engine"]
    columns += [Column(f"busy{k}_fps", f"{k} busy (fps)", ".1f") for k in loads]
    columns += [Column(f"busy{k}_vs_idle", f"{k} busy / idle", ".2f") for k in loads if k != 0]
    columns += [Column(f"busy{k}_vs_best", f"{k} busy / best", ".2f") for k in loads]
    text = (
        f"{args.style} {args.size}, uint8 BGR in/out through Stylizer, {args.rounds} rounds x {args.seconds:g} s "
        f"per setting and load, medians over rounds (min/max in the JSON); load average at the end "
        f"{machine['load_average_1m_at_end']} (a shared, noisy machine: other jobs ran alongside, so compare "
        "rows, not absolute figures). 'best' = the fastest setting under the same load."
    )
    settings = {n: {"backend": SETTINGS[n][0], "threads": SETTINGS[n][1], "env": SETTINGS[n][2]} for n in names}
    _, md, out = write_results(
        args.out,
        machine,
        [Section(f"Contention: {args.style} {args.size}", rows, columns, text)],
        config={
            "command": command_line("contention", argv),
            **{k: v for k, v in vars(args).items() if k != "worker"},
            "settings_detail": settings,
            "wall_s": round(time.time() - started, 1),
        },
        extra={"fps": {n: {str(k): v for k, v in by.items()} for n, by in results.items()}},
    )
    print(out)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
