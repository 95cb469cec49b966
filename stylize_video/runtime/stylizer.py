"""The inference engine: style networks on one backend, device and precision.

``Stylizer.stylize`` works on the backend's tensors (see
:mod:`stylize_video.runtime.backends`) so the pipeline can put smoothing between the
model and the download; ``Stylizer.__call__`` is the convenience path for a single
numpy frame. The engine pads each frame to the network's stride and crops the result,
so every backend runs a pure convolutional graph.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import cpu_has_fast_bf16, resolve_device, set_cpu_threads
from ..errors import DeviceError
from ..models.checkpoint import Checkpoint, load_checkpoint
from ..models.transform_net import TransformNet, pad_to_size, padded_size
from .backends import Backend, BackendOptions, ExportedGraph, create_backend
from .transfer import FrameTransfer

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "fp16", "bf16"]
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

StyleLike = Checkpoint | TransformNet | str | os.PathLike[str]


def pick_dtype(device: torch.device, precision: str) -> torch.dtype:
    """Resolve a precision name for a device.

    ``auto`` is fp16 on CUDA (tensor cores; instance-norm statistics stay fp32),
    bf16 on CPUs with native bf16 units (see :func:`cpu_has_fast_bf16`) and fp32 on
    other CPUs. A non-finite half-precision output falls back to fp32 at run time.
    """
    if precision == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if precision not in _DTYPES:
        raise DeviceError(f"unknown precision {precision!r} (choose auto, fp32, fp16, bf16)")
    dtype = _DTYPES[precision]
    if dtype == torch.float16 and device.type == "cpu":
        raise DeviceError("fp16 is not supported on the CPU; use fp32 or bf16")
    return dtype


class Stylizer:
    """Apply a style network to frames.

    Args:
        style: a :class:`Checkpoint`, a :class:`TransformNet`, a style name/path, or
            an exported ``.onnx`` file (OpenVINO, ONNX Runtime or TensorRT only).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``auto`` (fp16 on CUDA; bf16 on CPUs with AMX/AVX512-BF16, else
            fp32), ``fp32``, ``fp16``, ``bf16``.
        channels_last: torch memory format for the network; default on for CUDA and
            CPU (giving it makes ``auto`` pick the torch backend).
        strength: 0..1 blend between the original (0) and the stylized frame (1).
        preserve_color: keep the original chroma, take only the stylized luminance.
        scale: run the network on the frame resized by this factor (0 < scale <= 2)
            and resize the result back: below 1, bigger brush strokes and about
            1/scale^2 less compute; strength and colour use the full-size frame.
        threads: CPU threads for the network (None: the backend's default).
        compile: wrap the network in ``torch.compile`` (torch backend; measure first:
            helps on CUDA, costs a warm-up on every new frame size).
        bgr: numpy frames given to ``__call__`` are BGR (OpenCV); False for RGB.
        backend: ``auto`` (see :mod:`stylize_video.runtime.backends` for what it
            picks and why), ``torch``, ``openvino``, ``onnxruntime``, ``tensorrt`` or
            any name added with :func:`~stylize_video.runtime.backends.register_backend`.

    Attributes:
        backend: the current style's :class:`~stylize_video.runtime.backends.Backend`.
        dtype: dtype of the tensors :meth:`stylize` takes and returns.
        precision: the compute precision (``fp32``, ``fp16``, ``bf16``).
    """

    def __init__(
        self,
        style: StyleLike,
        *,
        device: str | torch.device = "auto",
        precision: Precision | str = "auto",
        channels_last: bool | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        scale: float = 1.0,
        threads: int | None = None,
        compile: bool = False,
        bgr: bool = True,
        backend: str = "auto",
    ) -> None:
        self.device = resolve_device(device)
        if precision not in ("auto", *_DTYPES):
            raise DeviceError(f"unknown precision {precision!r} (choose auto, fp32, fp16, bf16)")
        # torch runs the pre/post-processing (strength, colour, scale) with every backend.
        set_cpu_threads(threads)
        self.compile = compile
        self.strength = strength
        self.preserve_color = preserve_color
        self.scale = scale
        self.backend_name = backend
        self._options = BackendOptions(
            device=self.device, precision=str(precision), threads=threads, channels_last=channels_last, compile=compile
        )
        self._networks: dict[str, TransformNet | ExportedGraph] = {}
        self._backends: dict[str, Backend] = {}
        self._origins: dict[str, str] = {}  # checkpoint name -> the file it came from
        self._warned_fallback = False
        self.style_name = ""
        self.set_style(style)
        self.transfer = FrameTransfer(self.device, self.dtype, self.channels_last, bgr=bgr)

    # ----------------------------------------------------------------- options
    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {value}")
        self._strength = float(value)

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        if not 0.0 < float(value) <= 2.0:
            raise ValueError(f"scale must be within (0, 2], got {value}")
        self._scale = float(value)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the tensors :meth:`stylize` takes and returns (the backend's)."""
        return self.backend.dtype

    @property
    def channels_last(self) -> bool:
        return self.backend.channels_last

    @property
    def precision(self) -> str:
        """The compute precision of the current backend (``fp32``, ``fp16``, ``bf16``)."""
        return self.backend.precision

    @property
    def _model(self) -> Any:
        """The prepared ``nn.Module`` (torch backend only: benchmarks hook and capture it)."""
        module = getattr(self.backend, "module", None)
        if module is None:
            raise AttributeError(f"the {self.backend.name} backend has no torch module; use backend='torch'")
        return module

    # ------------------------------------------------------------------ styles
    def preload(self, *styles: StyleLike) -> list[str]:
        """Load and prepare styles on the backend now, so switching later is instant."""
        return [self._load(s)[0] for s in styles]

    def _key_and_network(self, style: StyleLike) -> tuple[str, TransformNet | ExportedGraph | None]:
        """The cache key of a style, and its network unless already loaded."""
        if isinstance(style, TransformNet):
            return f"model-{id(style)}", style
        if not isinstance(style, Checkpoint):
            key = os.fspath(style)
            if key in self._networks:
                return key, None
            if Path(key).suffix.lower() == ".onnx":
                from .backends.onnx_export import read_exported

                return key, read_exported(key)
            style = load_checkpoint(style)
            return key, style.model
        key = style.meta.name or str(style.path)
        origin = str(style.path.resolve()) if style.path is not None else f"id-{id(style)}"
        if self._origins.setdefault(key, origin) != origin:
            # Another network already goes by this name (names default to the file
            # stem: v1/my-style vs v2/my-style): tell them apart by their path.
            key = str(style.path) if style.path is not None else f"{key}#{id(style)}"
            self._origins.setdefault(key, origin)
        return key, style.model

    def _load(self, style: StyleLike) -> tuple[str, Backend]:
        key, network = self._key_and_network(style)
        if network is not None and key not in self._networks:
            self._networks[key] = network
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = create_backend(self.backend_name, self._networks[key], self._options)
        return key, backend

    def set_style(self, style: StyleLike) -> None:
        """Switch to another style (loaded and prepared unless preloaded)."""
        self.style_name, self.backend = self._load(style)

    @property
    def styles(self) -> list[str]:
        """Names of the styles loaded (prepared on the backend or ready to be)."""
        return list(self._networks)

    def close(self) -> None:
        """Release every backend's resources."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    def __enter__(self) -> Stylizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------- inference
    def _fallback_to_fp32(self) -> None:
        if not self._warned_fallback:
            warnings.warn(
                f"non-finite output in {self.precision} on {self.device} ({self.backend.name}); "
                "falling back to fp32 for this session",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned_fallback = True
        # New fp32 backends from the original networks: nothing shared is cast in
        # place. Other styles are rebuilt when switched to.
        self.close()
        self._options = dataclasses.replace(self._options, precision="fp32")
        self.backend = self._backends[self.style_name] = create_backend(
            self.backend_name, self._networks[self.style_name], self._options
        )
        self.transfer.dtype = self.dtype
        self.transfer.channels_last = self.channels_last

    @torch.inference_mode()
    def stylize(self, x: torch.Tensor) -> torch.Tensor:
        """Stylize a batch on the device.

        Shape: (N, 3, H, W) float RGB in [0, 1] on ``self.device`` -> same shape, in
        ``self.dtype``. Strength and colour preservation are applied here.
        """
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=self.dtype, memory_format=fmt)
        y = self._run_model(x)
        if self.precision != "fp32" and not bool(torch.isfinite(y).all()):
            self._fallback_to_fp32()
            x = x.to(dtype=self.dtype)
            y = self._run_model(x)
        if self.preserve_color:
            y = _transfer_luminance(x, y)
        if self._strength < 1.0:
            y = torch.lerp(x, y, self._strength)
        return y

    def _run_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The backend on ``x`` padded to the network's stride, cropped back."""
        backend = self.backend
        h, w = x.shape[-2:]
        th, tw = padded_size(h, w, backend.stride, backend.min_size)
        y = backend.run(pad_to_size(x, th, tw))
        return y if (th, tw) == (h, w) else y[..., :h, :w]

    def _run_model(self, x: torch.Tensor) -> torch.Tensor:
        if self._scale == 1.0:
            return self._run_padded(x)
        h, w = x.shape[-2:]
        size = (max(1, round(h * self._scale)), max(1, round(w * self._scale)))
        # Area averaging when shrinking avoids aliasing; bilinear brings it back.
        small = F.interpolate(x, size=size, mode="area" if self._scale < 1 else "bilinear")
        y = self._run_padded(
            small.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        )
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Stylize one uint8 HxWx3 frame (BGR unless ``bgr=False``); returns a new one.

        Raises:
            DeviceError: the device ran out of memory (a big still on a small card).
        """
        try:
            return self.transfer.download(self.stylize(self.transfer.upload(frame)))
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            out_of_memory = isinstance(exc, torch.OutOfMemoryError | MemoryError) or "can't allocate memory" in str(exc)
            if not out_of_memory:
                raise
            h, w = frame.shape[:2]
            raise DeviceError(
                f"out of {self.device.type} memory stylizing a {w}x{h} image with {self.style_name}: "
                "make it smaller (--max-size 2048), use --style-scale 0.5 or a -lite style"
            ) from exc


_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, the Y of JPEG's YCbCr


def _transfer_luminance(original: torch.Tensor, stylized: torch.Tensor) -> torch.Tensor:
    """Stylized luminance with the original chroma.

    Y is a weighted sum whose weights add to 1, so shifting R, G and B by the same
    amount changes Y by exactly that amount and leaves Cb/Cr untouched: adding
    ``Y_stylized - Y_original`` to the original replaces its luminance only.
    """
    diff = stylized - original
    # Python-float weights: no per-frame weight tensor (a host->device copy on CUDA).
    delta = diff[:, 0:1] * _LUMA[0] + diff[:, 1:2] * _LUMA[1] + diff[:, 2:3] * _LUMA[2]
    return (original + delta).clamp_(0.0, 1.0)
