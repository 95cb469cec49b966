"""Inference backends: the runtimes a :class:`~stylize_video.runtime.stylizer.Stylizer`
runs its network through.

A backend is built by a factory ``factory(network, options) -> Backend`` for one
network (a :class:`TransformNet` or an :class:`ExportedGraph`) and one device,
precision and thread count. It runs the *padded* network only: the engine pads each
frame to the network's stride (:func:`~stylize_video.models.transform_net.padded_size`)
and crops the result, so exported graphs are pure convolutions with dynamic H/W.

The frame type at the seam is decided once, by the backend: ``run`` takes and returns
torch tensors on :attr:`Backend.device` in :attr:`Backend.dtype` (CPU float32 for
OpenVINO and ONNX Runtime, which read and write the tensors' memory through numpy
without copies). Smoothing, strength, colour and ``--style-scale`` then work on the
same tensors whatever runs the network.

Registry: :func:`register_backend` adds a name (``--backend NAME``);
:func:`create_backend` builds one, resolving ``auto``.

What ``auto`` picks, and why (measured on the 2-core AMD EPYC development CPU with
AVX512-BF16, 2026-12-03, a shared machine with other jobs running;
benchmarks/results/backends.md and contention.md; uint8 BGR in and out):

* **CPU: OpenVINO when installed, else torch.** At each backend's default precision
  (bf16 here) OpenVINO ran starry-night-lite 1.7x faster than eager torch at 640x480
  (48 vs 28 fps, 2 threads), 1.25-2x at 1280x720, and ``full`` 1.35-2.4x: its
  instance normalisation is one fused op where ours is several reductions. Its
  thread pool yields when another process wants the core: with one busy process it
  kept 33 fps where the old torch default fell to 15, with two 13 fps against 0.4.
  ONNX Runtime (fp32 only) ran at 0.6-1.1x torch, so it is never the automatic
  choice for a checkpoint; it runs exported ``.onnx`` files when OpenVINO is missing.
* **CUDA / MPS: torch.** Eager fp16 with channels_last is the engine that was
  measured there; TensorRT builds an engine per input size (minutes on first use,
  cached after), so it runs only when asked for (``--backend tensorrt``).
* Options only torch honours (``compile=True``, an explicit ``channels_last``) make
  ``auto`` pick torch rather than silently ignore them.
* An exported ``.onnx`` graph cannot run in torch: ``auto`` picks OpenVINO on the
  CPU (else ONNX Runtime), TensorRT on CUDA when installed (else ONNX Runtime).
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch

from ...errors import DependencyError, DeviceError

#: The names ``--backend`` accepts, ``auto`` first.
BACKEND_CHOICES = ("auto", "torch", "openvino", "onnxruntime", "tensorrt")

#: The pip extra that brings each optional runtime.
_EXTRAS = {"openvino": "openvino", "onnxruntime": "onnx", "onnx": "onnx", "tensorrt": "tensorrt"}


@dataclass(frozen=True)
class ExportedGraph:
    """An ONNX file written by ``stylize-video export`` (see :mod:`.onnx_export`).

    Attributes:
        path: the ``.onnx`` file.
        stride: height and width must be multiples of it.
        min_size: smallest height/width the graph accepts.
        metadata: the model's ``metadata_props`` (credits, settings).
    """

    path: Path
    stride: int
    min_size: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.metadata.get("style") or self.path.stem

    @property
    def num_styles(self) -> int:
        """Styles of a multi-style graph (it then takes a second input, ``style``); 0 for one style."""
        try:
            return max(0, int(self.metadata.get("num_styles", "0")))
        except ValueError:
            return 0

    @property
    def style_names(self) -> list[str]:
        """The name of each style of a multi-style graph, by row (empty for one style)."""
        import json

        try:
            names = json.loads(self.metadata.get("styles", "[]"))
        except ValueError:
            names = []
        if not isinstance(names, list) or len(names) != self.num_styles or not all(isinstance(n, str) for n in names):
            return [f"{self.name}#{i}" for i in range(self.num_styles)]
        return names


@dataclass(frozen=True)
class BackendOptions:
    """How a backend should run: the same for every style of one engine.

    Attributes:
        device: where the tensors given to ``run`` live.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (each backend resolves auto).
        threads: CPU threads for the network (None: the backend's default, see
            :func:`default_threads`).
        channels_last: torch memory format (None: the backend's default).
        compile: ``torch.compile`` (torch backend only).
        cache_dir: where compiled engines are cached (None: :func:`cache_dir`).
    """

    device: torch.device
    precision: str = "auto"
    threads: int | None = None
    channels_last: bool | None = None
    compile: bool = False
    cache_dir: Path | None = None


class Backend(abc.ABC):
    """One network prepared on one runtime.

    Subclasses set the attributes in ``__init__`` and implement :meth:`run`.

    Attributes:
        name: the registry name (``torch``, ``openvino``...).
        device: where ``run``'s input and output tensors live.
        dtype: their dtype (the compute precision may differ, see ``precision``).
        channels_last: ``run`` prefers channels_last inputs.
        precision: the compute precision, ``fp32``, ``fp16`` or ``bf16``.
        stride, min_size: inputs to ``run`` have H and W multiples of ``stride``
            and at least ``min_size`` (the engine pads).
    """

    name: ClassVar[str] = ""
    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    precision: str = "fp32"
    stride: int = 1
    min_size: int = 1

    @abc.abstractmethod
    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network.

        ``style`` is given only for a multi-style network: float32 CPU mixing weights
        (num_styles,) summing to 1. The engine passes the same tensor object while
        the weights do not change (a backend may cache what it derives from it).

        Shape: (1, 3, H, W) float RGB in [0, 1] on :attr:`device` in :attr:`dtype`,
        H and W multiples of :attr:`stride` -> a new tensor of the same shape, device
        and dtype.
        """

    def close(self) -> None:  # noqa: B027 - an optional hook: most backends hold nothing to release
        """Release the runtime's resources (default: nothing to release)."""

    def describe(self) -> str:
        """One line for logs and summaries, e.g. ``openvino bf16 on cpu``."""
        return f"{self.name} {self.precision} on {self.device}"

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BackendFactory = Callable[[Any, BackendOptions], Backend]

_REGISTRY: dict[str, BackendFactory | str] = {
    # Built-ins by import path: importing this module does not import any runtime.
    "torch": "stylize_video.runtime.backends.torch:TorchBackend",
    "openvino": "stylize_video.runtime.backends.openvino:OpenVINOBackend",
    "onnxruntime": "stylize_video.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "stylize_video.runtime.backends.tensorrt:TensorRTBackend",
}

#: The Python module each built-in backend needs (for ``auto``'s "is it installed").
_REQUIRES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Add (or replace) a backend: ``factory(network, options) -> Backend``."""
    if not name or name == "auto":
        raise ValueError(f"invalid backend name {name!r}")
    _REGISTRY[name] = factory
    _REQUIRES.pop(name, None)


def backend_names() -> list[str]:
    """Registered backend names (``auto`` excluded)."""
    return list(_REGISTRY)


def _factory(name: str) -> BackendFactory:
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise DeviceError(f"unknown backend {name!r} (choose auto, {', '.join(_REGISTRY)})") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry  # type: ignore[return-value]


def is_installed(name: str) -> bool:
    """True when the runtime behind a backend name can be imported."""
    module = _REQUIRES.get(name)
    if module is None:
        return name in _REGISTRY
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (tests)
        return False


def require(module: str, backend: str) -> ModuleType:
    """Import an optional runtime or raise a one-line :class:`DependencyError`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(backend, backend)
        raise DependencyError(
            f"the {backend} backend needs the {module} package: pip install 'stylize-video[{extra}]' ({exc})"
        ) from None


def auto_backend(device: torch.device, network: Any, options: BackendOptions | None = None) -> str:
    """The backend ``auto`` means for this device and network (see the module docstring)."""
    exported = isinstance(network, ExportedGraph)
    torch_only = options is not None and (options.compile or options.channels_last is not None)
    if device.type == "cpu":
        if torch_only and not exported:
            return "torch"
        if is_installed("openvino"):
            return "openvino"
        return "onnxruntime" if exported else "torch"
    if exported:
        return "tensorrt" if device.type == "cuda" and is_installed("tensorrt") else "onnxruntime"
    return "torch"


def create_backend(name: str, network: Any, options: BackendOptions) -> Backend:
    """Build backend ``name`` (or ``auto``'s pick) for one network.

    Raises:
        DeviceError: unknown name, or the backend can't run on this device/precision.
        DependencyError: the backend's runtime is not installed (names the extra).
    """
    if name == "auto":
        name = auto_backend(options.device, network, options)
    return _factory(name)(network, options)


def cache_dir() -> Path:
    """Where compiled engines are cached: ``$STYLIZE_VIDEO_CACHE``, else
    ``$XDG_CACHE_HOME/stylize-video``, else ``~/.cache/stylize-video``."""
    env = os.environ.get("STYLIZE_VIDEO_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stylize-video"


def default_threads() -> int:
    """Threads for CPU inference when the user gives none: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def network_geometry(network: Any) -> tuple[int, int]:
    """(stride, min_size) of a :class:`TransformNet` or an :class:`ExportedGraph`."""
    if isinstance(network, ExportedGraph):
        return network.stride, network.min_size
    return int(network.stride), int(network.min_size)


__all__ = [
    "BACKEND_CHOICES",
    "Backend",
    "BackendFactory",
    "BackendOptions",
    "ExportedGraph",
    "auto_backend",
    "backend_names",
    "cache_dir",
    "create_backend",
    "default_threads",
    "is_installed",
    "network_geometry",
    "register_backend",
    "require",
]
