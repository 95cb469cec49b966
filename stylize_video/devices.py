"""The one place that turns a user's device request into a ``torch.device``.

Everything downstream reads the device from data (a model's parameters, a tensor)
instead of deciding again.
"""

from __future__ import annotations

import functools

import torch

from .errors import DeviceError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` to an available device.

    Args:
        spec: ``"auto"`` picks CUDA when present, else the CPU.

    Raises:
        DeviceError: the device does not exist on this machine.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec in ("", "auto"):
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available here")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {spec!r} requested but only {count} CUDA device(s) exist")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {spec!r} requested but MPS is not available here")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r} (use auto, cpu, cuda or cuda:N)")
    return device


def set_cpu_threads(threads: int | None) -> None:
    """Set the intra-op thread count for CPU inference (``None`` keeps torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise DeviceError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True on x86 CPUs with AMX-BF16 or AVX512-BF16 (Linux ``/proc/cpuinfo`` flags).

    There oneDNN runs bf16 convolutions natively; measured on a Sapphire Rapids
    Xeon (2026-11-28, benchmarks/results/model_speed_cpu.md): full 2-3x faster
    than fp32 at inference, lite 1.1-1.3x, training steps 1.7x. Elsewhere bf16 is
    emulated and slower than fp32, so inference and training both pick bf16 only here.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False
