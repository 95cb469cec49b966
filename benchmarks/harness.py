"""The one harness every benchmark uses: machine description, interleaved timing,
size parsing, hardware ceilings (peak FLOPS, memory bandwidth), peak memory and the
JSON + Markdown result writer.

Benchmarks are scripts, not tests. Run each from the repository root as a module,
``python -m benchmarks.<name> --help``; none of them touches ``sys.path``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np
import torch

from stylize_video.errors import StylizeError
from stylize_video.threads import openmp_spins
from stylize_video.units import parse_size as _library_parse_size

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Resolutions every speed benchmark uses, as (width, height).
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "640x480": (640, 480),
    "1280x720": (1280, 720),
    "1920x1080": (1920, 1080),
    "3840x2160": (3840, 2160),
}

#: The real clips the quality benchmarks read by default (outside the repository,
#: never copied into it); every script takes ``--clips`` to point elsewhere.
CLIPS_DIR = Path(__file__).resolve().parents[2] / "shared" / "videos"
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".mkv"})

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
P = ParamSpec("P")


# ------------------------------------------------------------------ inputs


def parse_size(text: str) -> tuple[int, int]:
    """``"640x360"`` -> (640, 360), with the library's format and checks.

    For ``argparse``'s ``type=``: a bad size becomes a usage error naming the value.
    """
    try:
        size = _library_parse_size(text)
    except StylizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert size is not None  # only None in, None out
    return size


def find_clips(folder: Path | str) -> list[Path]:
    """The video files directly in ``folder``, sorted by name; [] when it is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(c for c in folder.iterdir() if c.suffix.lower() in VIDEO_SUFFIXES)


def command_line(name: str, argv: Sequence[str] | None) -> str:
    """How to rerun a benchmark: ``python -m benchmarks.<name> <its arguments>``."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join(["python -m benchmarks." + name, *args])


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
        # The package sets the policy on import, but OpenMP reads it only when torch loads.
        "openmp_spins": openmp_spins(),
    }
    if device is not None:
        info["device"] = str(device)
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
    if info.get("openmp_spins"):
        parts.append("torch loaded before stylize_video: its OpenMP threads spin")
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

    def extend(self, other: Timing) -> None:
        """Append ``other``'s samples (one round of an interleaved run) to these."""
        self.samples_ms += other.samples_ms
        self.cpu_ms += other.cpu_ms

    def summary(self) -> dict[str, float]:
        return {
            "n": self.n,
            "median_ms": round(self.median_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "fps": round(self.fps, 2),
            "cpu_ms": round(self.cpu_median_ms, 3),
        }


@contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """``n`` processes that each keep one core busy: a browser tab, a video call."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)  # let the scheduler see them before timing starts
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


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


def median_call_ms(fn: Callable[[], Any], calls: int) -> float:
    """Median wall time of ``calls`` calls of ``fn`` in ms, after one untimed warm-up call:
    for small host operations where :func:`time_fn`'s device syncs and budgets are not needed."""
    fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def interleaved(
    contenders: Mapping[K, Callable[[int], R]],
    rounds: int,
    *,
    pause_s: float = 0.0,
    after_round: Callable[[int], None] | None = None,
) -> dict[K, list[R]]:
    """Run every contender once per round, round robin, and collect what each returns.

    On a shared machine the load drifts during a run; taking turns spreads it over
    every contender instead of penalising whichever ran last, so ratios of their
    medians are fair even when absolute numbers are not.

    Args:
        contenders: key -> ``fn(round_index)``; round 0 is the place for warm-up calls.
        rounds: how many times each contender runs (>= 1).
        pause_s: sleep before each call (lets the previous contender's spinning
            worker threads go idle).
        after_round: called with the round index after each full round (progress, load).

    Returns:
        key -> the results of its calls, in round order.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    results: dict[K, list[R]] = {k: [] for k in contenders}
    for r in range(rounds):
        for key, fn in contenders.items():
            if pause_s:
                time.sleep(pause_s)
            results[key].append(fn(r))
        if after_round is not None:
            after_round(r)
    return results


def every_round(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Callable[[int], R]:
    """A contender for :func:`interleaved` that calls ``fn(*args, **kwargs)`` the same way
    in every round (binding the arguments now, not when a loop variable has moved on)."""

    def run(_round: int) -> R:
        return fn(*args, **kwargs)

    return run


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and count of a contender's values over the rounds."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


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


def _fmt(value: Any, spec: str | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:  # NaN
        return "-"
    if spec is not None and isinstance(value, (int, float)):
        return format(value, spec)
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


@dataclass(frozen=True)
class Column:
    """A Markdown column: the row key, its header (default: the key) and a format
    spec for numbers (``".0%"``, ``".2f"``; default: 2-3 significant digits)."""

    key: str
    header: str | None = None
    fmt: str | None = None


class Section(NamedTuple):
    """One titled table of a result: the rows go to the JSON, the columns to Markdown;
    ``text`` is a paragraph printed between the title and the table."""

    title: str
    rows: Sequence[dict[str, Any]]
    columns: Sequence[str | Column]
    text: str = ""


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str | Column]) -> str:
    """Render ``rows`` (dicts) as a GitHub Markdown table with the given columns."""
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    lines = [
        "| " + " | ".join(c.header or c.key for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c.key), c.fmt) for c in cols) + " |")
    return "\n".join(lines)


def write_results(
    name: str,
    machine: dict[str, Any],
    sections: Sequence[Section | tuple[str, Sequence[dict[str, Any]], Sequence[str | Column]]],
    *,
    out_dir: Path | str | None = None,
    config: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path, str]:
    """Write ``<out_dir>/<name>.json`` and ``<name>.md`` and return (json, md, markdown).

    Args:
        sections: :class:`Section` values (or (title, rows, columns) triples); each
            becomes one Markdown table, and all rows go to the JSON under their title.
        out_dir: default ``benchmarks/results``.
        config: the command line (key ``command``, see :func:`command_line`) and
            settings that produced the numbers.
        notes: lines printed under the tables (findings, caveats).
        extra: more JSON-only data (raw measurements a table summarizes).
    """
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    parts = [Section(*s) for s in sections]
    payload = {
        "benchmark": name,
        "machine": machine,
        "config": config or {},
        "sections": {s.title: list(s.rows) for s in parts},
        "notes": list(notes),
        **(extra or {}),
    }
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    md = [f"# {name}", "", f"Machine: {machine_line(machine)}", ""]
    if config and config.get("command"):
        md += [f"Command: `{config['command']}`", ""]
    for s in parts:
        md += [f"## {s.title}", ""]
        if s.text:
            md += [s.text, ""]
        md += [markdown_table(s.rows, s.columns), ""]
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
