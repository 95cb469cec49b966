"""The inference engine: one style network on one device at one precision.

``Stylizer.stylize`` works on device tensors so the pipeline can put smoothing
between the model and the download; ``Stylizer.__call__`` is the convenience path
for a single numpy frame.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import cpu_has_fast_bf16, resolve_device, set_cpu_threads
from ..errors import DeviceError
from ..models.checkpoint import Checkpoint, load_checkpoint
from ..models.transform_net import TransformNet
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
        style: a :class:`Checkpoint`, a :class:`TransformNet`, or a style name/path.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``auto`` (fp16 on CUDA; bf16 on CPUs with AMX/AVX512-BF16, else
            fp32), ``fp32``, ``fp16``, ``bf16``.
        channels_last: memory format for the network; default on for CUDA and CPU.
        strength: 0..1 blend between the original (0) and the stylized frame (1).
        preserve_color: keep the original chroma, take only the stylized luminance.
        scale: run the network on the frame resized by this factor (0 < scale <= 2)
            and resize the result back: below 1, bigger brush strokes and about
            1/scale^2 less compute; strength and colour use the full-size frame.
        threads: CPU intra-op threads (None keeps torch's default).
        compile: wrap the network in ``torch.compile`` (measure first: helps on
            CUDA, costs a warm-up on every new frame size).
        bgr: numpy frames given to ``__call__`` are BGR (OpenCV); False for RGB.
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
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = pick_dtype(self.device, str(precision))
        set_cpu_threads(threads)
        self.channels_last = True if channels_last is None else channels_last
        self.compile = compile
        self.strength = strength
        self.preserve_color = preserve_color
        self.scale = scale
        self._models: dict[str, nn.Module] = {}
        self._origins: dict[str, str] = {}  # checkpoint name -> the file it came from
        self._warned_fallback = False
        self.style_name = ""
        self._model: nn.Module = nn.Identity()
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

    # ------------------------------------------------------------------ styles
    def _prepare(self, net: TransformNet) -> nn.Module:
        net = copy.deepcopy(net).eval().requires_grad_(False)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        net = net.to(device=self.device, dtype=self.dtype, memory_format=fmt)  # type: ignore[call-overload]
        if self.compile:
            return torch.compile(net, dynamic=False)  # type: ignore[return-value]
        return net

    def preload(self, *styles: StyleLike) -> list[str]:
        """Load and place styles on the device now, so switching later is instant."""
        return [self._load(s)[0] for s in styles]

    def _load(self, style: StyleLike) -> tuple[str, nn.Module]:
        if isinstance(style, TransformNet):
            key = f"model-{id(style)}"
            net = style
        else:
            if not isinstance(style, Checkpoint):
                key = os.fspath(style)
                if key in self._models:
                    return key, self._models[key]
                style = load_checkpoint(style)
            else:
                key = style.meta.name or str(style.path)
                origin = str(style.path.resolve()) if style.path is not None else f"id-{id(style)}"
                if self._origins.setdefault(key, origin) != origin:
                    # Another network already goes by this name (names default to the file
                    # stem: v1/my-style vs v2/my-style): tell them apart by their path.
                    key = str(style.path) if style.path is not None else f"{key}#{id(style)}"
                    self._origins.setdefault(key, origin)
            net = style.model
        if key not in self._models:
            self._models[key] = self._prepare(net)
        return key, self._models[key]

    def set_style(self, style: StyleLike) -> None:
        """Switch to another style (loaded and prepared unless preloaded)."""
        self.style_name, self._model = self._load(style)

    @property
    def styles(self) -> list[str]:
        """Names of the styles prepared on the device."""
        return list(self._models)

    # --------------------------------------------------------------- inference
    def _fallback_to_fp32(self) -> None:
        if not self._warned_fallback:
            warnings.warn(
                f"non-finite output in {self.dtype} on {self.device}; falling back to fp32 for this session",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned_fallback = True
        self.dtype = torch.float32
        self._models = {k: m.float() for k, m in self._models.items()}
        self._model = self._models[self.style_name]
        self.transfer.dtype = torch.float32

    @torch.inference_mode()
    def stylize(self, x: torch.Tensor) -> torch.Tensor:
        """Stylize a batch on the device.

        Shape: (N, 3, H, W) float RGB in [0, 1] on ``self.device`` -> same shape, in
        ``self.dtype``. Strength and colour preservation are applied here.
        """
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=self.dtype, memory_format=fmt)
        y = self._run_model(x)
        if self.dtype != torch.float32 and not bool(torch.isfinite(y).all()):
            self._fallback_to_fp32()
            x = x.float()
            y = self._run_model(x)
        if self.preserve_color:
            y = _transfer_luminance(x, y)
        if self._strength < 1.0:
            y = torch.lerp(x, y, self._strength)
        return y

    def _run_model(self, x: torch.Tensor) -> torch.Tensor:
        if self._scale == 1.0:
            return self._model(x)
        h, w = x.shape[-2:]
        size = (max(1, round(h * self._scale)), max(1, round(w * self._scale)))
        # Area averaging when shrinking avoids aliasing; bilinear brings it back.
        small = F.interpolate(x, size=size, mode="area" if self._scale < 1 else "bilinear")
        y = self._model(
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
