"""Shared helpers for the benchmark scripts: machine description, timing, hardware
ceilings (peak FLOPS, memory bandwidth) and JSON + Markdown result writers.

Benchmarks are scripts, not tests: run them with ``python benchmarks/<name>.py``.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Resolutions every speed benchmark uses, as (width, height).
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "640x480": (640, 480),
    "1280x720": (1280, 720),
    "1920x1080": (1920, 1080),
    "3840x2160": (3840, 2160),
}


# ---------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_int8")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """Describe the machine a result was measured on (CPU, cores, torch, GPU, date)."""
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "gpu": None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        # OpenMP's wait policy decides whether idle worker threads spin: it changes
        # 2-thread CPU results on a busy machine by up to 10x.
        "env": {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }
    if torch.cuda.is_available():
        idx = device.index if device is not None and device.type == "cuda" and device.index is not None else 0
        props = torch.cuda.get_device_properties(idx)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One-line human summary of :func:`machine_info`."""
    parts = [
        info["date_utc"],
        f"{info['cpu']} ({info['logical_cpus']} logical CPUs, torch threads {info['torch_threads']})",
    ]
    if info.get("gpu"):
        parts.append(f"GPU {info['gpu']} ({info.get('gpu_memory_gib')} GiB, CUDA {info.get('cuda')})")
    parts.append(f"torch {info['torch']}, Python {info['python']}")
    parts.append(f"load average {info.get('load_average_1m')} at start")
    if info.get("env"):
        parts.append(" ".join(f"{k}={v}" for k, v in info["env"].items()))
    return "; ".join(parts)


# ----------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall-clock samples of one repeated operation, in milliseconds, and the CPU time
    this process (all its threads) spent in each: on a shared machine the CPU time
    barely moves with other processes' load while the wall time does."""

    samples_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else float("nan")

    @property
    def p95_ms(self) -> float:
        if not self.samples_ms:
            return float("nan")
        return float(np.percentile(self.samples_ms, 95, method="linear"))

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms) if self.samples_ms else float("nan")

    @property
    def cpu_median_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    @property
    def fps(self) -> float:
        """Frames per second from the median latency (one frame per call)."""
        m = self.median_ms
        return 1000.0 / m if m > 0 else float("nan")

    def summary(self) -> dict[str, float]:
        return {
            "n": self.n,
            "median_ms": round(self.median_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "fps": round(self.fps, 2),
            "cpu_ms": round(self.cpu_median_ms, 3),
        }


def _noop() -> None:
    pass


def sync_for(device: torch.device) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return _noop


def time_fn(
    fn: Callable[[], Any],
    *,
    warmup: int = 2,
    iters: int = 10,
    max_seconds: float = 5.0,
    min_iters: int = 3,
    sync: Callable[[], None] = _noop,
) -> Timing:
    """Time ``fn`` after ``warmup`` calls: at most ``iters`` samples, stopping early once
    ``max_seconds`` are spent (but never with fewer than ``min_iters`` samples).

    ``sync`` is called before each clock read so queued GPU work is counted.
    """
    for _ in range(warmup):
        fn()
    sync()
    timing = Timing()
    start_all = time.perf_counter()
    for i in range(iters):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        sync()
        timing.samples_ms.append((time.perf_counter() - t0) * 1e3)
        timing.cpu_ms.append((time.process_time() - c0) * 1e3)
        if i + 1 >= min_iters and time.perf_counter() - start_all > max_seconds:
            break
    return timing


# ------------------------------------------------------------------ memory


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _read_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of the code inside the ``with`` block.

    CUDA: ``torch.cuda.max_memory_allocated`` (reset on entry). CPU: the process's
    peak resident set (``VmHWM``), reset on entry through ``/proc/self/clear_refs``
    after ``malloc_trim`` returns freed heap to the OS; ``delta_mib`` is what the
    block added over the resident set it started with. ``None`` where unsupported.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mib: float | None = None
        self.delta_mib: float | None = None
        self._base_kib: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # "5" resets the peak RSS (VmHWM) to the current RSS
            self._base_kib = _read_status_kib("VmRSS")
        except OSError:
            self._base_kib = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.peak_mib = round(peak / 2**20, 1)
            self.delta_mib = round((peak - self._base) / 2**20, 1)
            return
        hwm = _read_status_kib("VmHWM")
        if hwm is not None and self._base_kib is not None:
            self.peak_mib = round(hwm / 1024, 1)
            self.delta_mib = round((hwm - self._base_kib) / 1024, 1)


# ---------------------------------------------------------- hardware limits


def measure_peak_flops(device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 5) -> float:
    """Best-of-``reps`` FLOP/s of a square matmul: the practical compute ceiling.

    A large GEMM is the most compute-dense op the libraries have, so this is the
    highest rate convolutions could hope for on this device and dtype (not the
    datasheet peak). Returns NaN where the dtype is unsupported.
    """
    if size is None:
        size = 8192 if device.type == "cuda" else 2048
    try:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        sync = sync_for(device)
        with torch.inference_mode():
            t = time_fn(lambda: torch.mm(a, b), warmup=2, iters=reps, max_seconds=10.0, sync=sync)
    except (RuntimeError, TypeError):
        return float("nan")
    return 2.0 * size**3 / (t.min_ms / 1e3)


def measure_bandwidth(device: torch.device, mib: int | None = None, reps: int = 5) -> float:
    """Best-of-``reps`` bytes/s of a large tensor copy, counting read + write.

    The buffers are far larger than any cache, so this is the DRAM/HBM rate.
    """
    if mib is None:
        mib = 1024 if device.type == "cuda" else 256
    n = mib * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), warmup=2, iters=reps, max_seconds=10.0, sync=sync_for(device))
    return 2.0 * src.numel() * 4 / (t.min_ms / 1e3)


# ---------------------------------------------------------------- writers


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Render ``rows`` (dicts) as a GitHub Markdown table with the given columns."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_results(
    name: str,
    machine: dict[str, Any],
    sections: Sequence[tuple[str, Sequence[dict[str, Any]], Sequence[str]]],
    *,
    out_dir: Path | str | None = None,
    config: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> tuple[Path, Path, str]:
    """Write ``<out_dir>/<name>.json`` and ``<name>.md`` and return (json, md, markdown).

    Args:
        sections: (title, rows, columns) triples; each becomes one Markdown table,
            and all rows go to the JSON under their title.
        config: the command line / settings that produced the numbers.
        notes: lines printed under the tables (findings, caveats).
    """
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": machine,
        "config": config or {},
        "sections": {title: list(rows) for title, rows, _ in sections},
        "notes": list(notes),
    }
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    md = [f"# {name}", "", f"Machine: {machine_line(machine)}", ""]
    if config and config.get("command"):
        md += [f"Command: `{config['command']}`", ""]
    for title, rows, columns in sections:
        md += [f"## {title}", "", markdown_table(rows, columns), ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    text = "\n".join(md)
    md_path = out / f"{name}.md"
    md_path.write_text(text)
    return json_path, md_path, text


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return str(obj)


def synthetic_frames(width: int, height: int, count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 HxWx3 BGR frames: smooth gradients plus noise (video-like
    content, not constant, so no kernel hits a special fast path)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        base = np.stack(
            [
                127 + 100 * np.sin(xx / (37 + i) + yy / 53),
                127 + 100 * np.cos(yy / (29 + i) - xx / 71),
                127 + 100 * np.sin((xx + yy) / (41 + 3 * i)),
            ],
            axis=-1,
        )
        noise = rng.normal(0, 12, size=base.shape).astype(np.float32)
        frames.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return frames
