"""The engine's per-frame host operations on a 640x480 frame, idle and beside busy processes.

Beside a non-torch backend the engine does its per-frame host work in numpy and
OpenCV rather than torch (``runtime/transfer._host_float``, ``stylizer._all_finite``),
so that no OpenMP region wakes torch's worker threads next to OpenVINO's pool; and the
person mask holds the model's sure interior and exterior (``person/refine``). This
times each of those against what it replaced, in one process (so with the package's
OpenMP default: torch's threads yield), interleaved in rounds, medians of per-call
medians. What the change buys end to end is in ``results/omp_wait_api.md``; this is
what each step costs by itself.

    python -m benchmarks.host_ops --rounds 5 --busy 0 1

Writes ``benchmarks/results/<--out>.json`` and ``.md`` (default ``host_ops``).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from benchmarks.harness import (
    Column,
    Section,
    busy_processes,
    command_line,
    machine_info,
    median_call_ms,
    write_results,
)
from stylize_video.person.refine import refine_mask
from stylize_video.runtime.stylizer import _all_finite
from stylize_video.runtime.transfer import _host_float


def _torch_upload(rgb: np.ndarray, channels_last: bool) -> torch.Tensor:
    """The upload as torch did it before: ``.to(float32).mul_(1 / 255)`` and the layout."""
    x = torch.from_numpy(rgb).unsqueeze(0).permute(0, 3, 1, 2).to(torch.float32).mul_(1.0 / 255.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def cases(size: tuple[int, int]) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (what it replaced or is measured beside, the call)."""
    w, h = size
    rng = np.random.default_rng(0)
    rgb = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    y = _host_float(rgb, True)
    blobs = cv2.GaussianBlur((rng.random((144, 256)) > 0.5).astype(np.float32), (0, 0), 5)
    small = np.clip((blobs - 0.5) * 8 + 0.5, 0, 1).astype(np.float32)
    return {
        "upload NHWC, torch": ("before", lambda: _torch_upload(rgb, True)),
        "upload NHWC, numpy": ("now", lambda: _host_float(rgb, True)),
        "upload NCHW, torch": ("before", lambda: _torch_upload(rgb, False)),
        "upload NCHW, numpy": ("now", lambda: _host_float(rgb, False)),
        "finite check, torch sum": ("before", lambda: float(y.sum(dtype=torch.float32))),
        "finite check, OpenCV sum": ("now", lambda: _all_finite(y)),
        "person mask refine, hold": ("before", lambda: refine_mask(small, rgb, hold=0.98)),
        "person mask refine, hold + release": ("now", lambda: refine_mask(small, rgb, hold=0.98, release=0.02)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.host_ops", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=60, help="timed calls per case and round")
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside the timing")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default="host_ops")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = machine_info()
    ops = cases((640, 480))
    rows: dict[str, dict[str, Any]] = {name: {"op": name, "kind": kind} for name, (kind, _) in ops.items()}
    for busy in args.busy:
        per: dict[str, list[float]] = {name: [] for name in ops}
        with busy_processes(busy):
            for _ in range(args.rounds):
                for name, (_, fn) in ops.items():
                    per[name].append(median_call_ms(fn, args.calls))
        for name, values in per.items():
            rows[name][f"busy{busy}_ms"] = statistics.median(values)
    columns: list[str | Column] = ["op", "kind"]
    columns += [Column(f"busy{b}_ms", f"ms, {b} busy", ".3f") for b in args.busy]
    text = (
        f"640x480, {args.rounds} interleaved rounds x {args.calls} calls, median of per-round medians; "
        f"torch threads {args.threads}; 'before' is what the engine ran until 2026-12-03, 'now' what it runs."
    )
    _, md, out = write_results(
        args.out,
        machine,
        [Section("Per-frame host operations", list(rows.values()), columns, text)],
        config={"command": command_line("host_ops", argv), **vars(args)},
    )
    print(out)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
