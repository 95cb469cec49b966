"""The inference engine: style networks on one backend, device and precision.

``Stylizer.stylize`` works on the backend's tensors (see
:mod:`stylize_video.runtime.backends`) so the pipeline can put smoothing between the
model and the download; ``Stylizer.__call__`` is the convenience path for a single
numpy frame. The engine pads each frame to the network's stride and crops the result,
so every backend runs a pure convolutional graph. Which networks are loaded, under
which style names, and how the current style or blend morphs is the style set's
business (:mod:`stylize_video.runtime.style_set`); the engine owns the backends.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import cpu_has_fast_bf16, resolve_device, set_cpu_threads
from ..errors import DeviceError
from ..models.transform_net import pad_to_size, padded_size
from .backends import Backend, BackendOptions, create_backend
from .style_set import Parts, StyleLike, StyleSet
from .style_spec import StyleSpec, format_style_spec
from .transfer import FrameTransfer

__all__ = ["Precision", "StyleLike", "Stylizer", "pick_dtype", "resize"]

Precision = Literal["auto", "fp32", "fp16", "bf16"]
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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
    """Apply a style, or a blend of styles, to frames.

    Styles of one multi-style network blend for free: the network runs once with a
    weight vector over its styles. Styles of different networks blend by running
    each and mixing their outputs (N times the cost). Switching styles morphs the
    weights over :attr:`morph_seconds` (see :meth:`set_style`).

    Args:
        style: a style spec (a name, a path, or a blend such as
            ``'starry-night=0.7+great-wave=0.3'``, see
            :mod:`~stylize_video.runtime.style_spec`), a :class:`Checkpoint`, a
            :class:`TransformNet`, or an exported ``.onnx`` file (OpenVINO, ONNX
            Runtime or TensorRT only).
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
        style_name: the current style as a normalised spec (``a=0.7+b=0.3``).
        morph_seconds: how long :meth:`set_style` morphs when not told (default 0:
            a cut, so a library call or a contact sheet gets the style it asked for on
            the next frame; live front ends set :attr:`DEFAULT_MORPH_SECONDS`).
        clock: the time source of morphs (``time.monotonic``); a pipeline that knows
            its frames' times can pass ``now`` to :meth:`stylize` instead. None
            turns morphs into cuts.
    """

    #: Duration of a live style change, in seconds (what ``run`` sets :attr:`morph_seconds` to).
    DEFAULT_MORPH_SECONDS = 0.5

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
        self._styles = StyleSet(on_change=self._drop_backend)  # loaded networks and the mixture
        self._backends: dict[str, Backend] = {}  # network key -> its prepared backend
        self._warned_fallback = False
        self.morph_seconds = 0.0
        self.clock: Callable[[], float] | None = time.monotonic
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
    @property
    def backend(self) -> Backend:
        """The backend of the network carrying most of the current style (built on first use)."""
        return self._backend_for(self._styles.main_key)

    def _backend_for(self, key: str) -> Backend:
        backend = self._backends.get(key)
        if backend is None:
            network = self._styles.nets[key].network
            backend = self._backends[key] = create_backend(self.backend_name, network, self._options)
        return backend

    def preload(self, *styles: StyleLike) -> list[str]:
        """Load and prepare styles on the backend now, so switching later is instant.

        Returns the name each style is known by (for a blend spec, its normalised text).
        """
        names = []
        for style in styles:
            spec = self._styles.resolve(style)
            for key in self._styles.keys(spec):
                self._backend_for(key)
            names.append(format_style_spec(spec))
        return names

    def set_style(self, style: StyleLike, morph: float | None = None) -> None:
        """Switch to a style or a blend (loaded and prepared unless preloaded).

        Args:
            style: a style spec (``'starry-night'``, ``'starry-night=0.7+great-wave=0.3'``,
                see :mod:`~stylize_video.runtime.style_spec`), a checkpoint path, a
                :class:`Checkpoint` or a :class:`TransformNet`.
            morph: seconds over which the weights move from the current mixture to the
                new one (None: :attr:`morph_seconds`; 0: a cut). Time comes from
                :attr:`clock` or the ``now`` given to :meth:`stylize`, so the morph
                takes the same time at any frame rate and never holds a frame back.

        Raises:
            StyleSpecError / CheckpointError: a bad spec or an unknown or unusable style.
        """
        seconds = self.morph_seconds if morph is None else float(morph)
        if not seconds >= 0:
            raise ValueError(f"morph must be >= 0 seconds, got {morph}")
        spec = self._styles.resolve(style)
        for key in self._styles.keys(spec):
            self._backend_for(key)  # prepared now, not on the frame that needs it
        self._styles.morph_to(spec, seconds, self.clock)

    @property
    def style_name(self) -> str:
        """The current style as a normalised spec (``a=0.7+b=0.3``)."""
        return self._styles.style_name

    @property
    def spec(self) -> StyleSpec:
        """The current target style as parsed (name, weight) pairs."""
        return self._styles.spec

    @property
    def morphing(self) -> bool:
        """True while a morph is still under way (at :attr:`clock` time)."""
        return self._styles.morphing(self._now(None))

    def blend(self, now: float | None = None) -> dict[str, float]:
        """The mixture of style names the next frame would use (weights summing to 1)."""
        return self._styles.blend(self._now(now))

    def _now(self, now: float | None) -> float | None:
        """``now``, else the clock's time; None without a clock (a morph then counts as done)."""
        if now is None and self.clock is not None:
            return self.clock()
        return now

    def _drop_backend(self, key: str) -> None:
        """The network under ``key`` changed (rows merged in): its prepared backend is stale."""
        old = self._backends.pop(key, None)
        if old is not None:
            old.close()

    @property
    def styles(self) -> list[str]:
        """Names of the styles loaded (every style of a loaded multi-style network)."""
        return list(self._styles.names)

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
        # New fp32 backends from the original networks (built when next used): nothing
        # shared is cast in place.
        self.close()
        self._options = dataclasses.replace(self._options, precision="fp32")
        self.transfer.dtype = self.dtype
        self.transfer.channels_last = self.channels_last

    @torch.inference_mode()
    def stylize(self, x: torch.Tensor, *, now: float | None = None) -> torch.Tensor:
        """Stylize a batch on the device.

        Args:
            x: (N, 3, H, W) float RGB in [0, 1] on ``self.device``.
            now: the frame's time on :attr:`clock`'s scale, for morphs (None: the clock now).

        Shape: (N, 3, H, W) -> same shape, in ``self.dtype``. Strength and colour
        preservation are applied here.
        """
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=self.dtype, memory_format=fmt)
        parts = self._parts(now)
        y = self._run_model(x, parts)
        if self.precision != "fp32" and not _all_finite(y):
            self._fallback_to_fp32()
            x = x.to(dtype=self.dtype)
            y = self._run_model(x, parts)
        if self.preserve_color:
            y = _transfer_luminance(x, y)
        if self._strength < 1.0:
            y = torch.lerp(x, y, self._strength)
        return y

    def _parts(self, now: float | None = None) -> Parts:
        """(network key, its share of the output, its own weights summing to 1) for one frame."""
        return self._styles.parts(self._now(now))

    def _run_padded(self, x: torch.Tensor, parts: Parts) -> torch.Tensor:
        """The networks on ``x`` padded to their stride, cropped back and mixed."""
        out: torch.Tensor | None = None
        h, w = x.shape[-2:]
        for key, mass, weights in parts:
            net = self._styles.nets[key]
            backend = self._backend_for(key)
            th, tw = padded_size(h, w, backend.stride, backend.min_size)
            xp = pad_to_size(x, th, tw)
            y = backend.run(xp, weights) if net.conditional else backend.run(xp)
            if (th, tw) != (h, w):
                y = y[..., :h, :w]
            if len(parts) == 1:
                return y
            y = y.to(self.dtype) * mass
            out = y if out is None else out + y
        assert out is not None, "a mixture always has weight somewhere"
        return out

    def _run_model(self, x: torch.Tensor, parts: Parts) -> torch.Tensor:
        if self._scale == 1.0:
            return self._run_padded(x, parts)
        h, w = x.shape[-2:]
        size = (max(1, round(h * self._scale)), max(1, round(w * self._scale)))
        # Area averaging when shrinking avoids aliasing; bilinear brings it back.
        small = resize(x, size, shrink=self._scale < 1)
        y = self._run_padded(
            small.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format),
            parts,
        )
        return resize(y, (h, w), shrink=False).clamp_(0.0, 1.0)

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


def _all_finite(y: torch.Tensor) -> bool:
    """Whether every value of ``y`` is finite, in one reduction.

    A NaN or an infinity anywhere makes the sum non-finite; accumulating in fp32
    keeps a sum of finite half-precision values (at most 65504 each) finite. One pass
    and no boolean tensor: on a 640x480 frame on the 2-core CPU ``isfinite(y).all()``
    took 0.77 ms (fp32) and 1.2 ms (bf16) idle, 1.5 and 2.5 ms beside one busy
    process; the sum 0.025 and 0.06 ms in both.
    """
    rows = _host_rows(y)
    if rows is not None:
        import cv2

        # OpenCV, not torch, on host float32 (OpenVINO's output): no OpenMP region per
        # frame beside a non-torch backend's own threads (see transfer._host_float).
        # 0.10 / 0.20 ms on 640x480 idle / beside a busy process, torch's sum 0.19 / 0.21
        # (benchmarks/results/host_ops.md); it sums in float64, so no overflow.
        return all(math.isfinite(v) for v in cv2.sumElems(rows))
    return math.isfinite(float(y.sum(dtype=torch.float32)))


def _host_rows(y: torch.Tensor) -> np.ndarray | None:
    """A CPU float32 (N, C, H, W) tensor's memory as a 2-D numpy view, if it is dense."""
    if y.device.type != "cpu" or y.dtype != torch.float32 or y.dim() != 4 or y.numel() == 0:
        return None
    y = y.detach()
    if y.is_contiguous(memory_format=torch.channels_last):
        y = y.permute(0, 2, 3, 1)  # NHWC memory: a dense view
    elif not y.is_contiguous():
        return None
    return y.numpy().reshape(-1, y.shape[-1] * y.shape[-2])


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


def resize(x: torch.Tensor, size: tuple[int, int], *, shrink: bool) -> torch.Tensor:
    """``x`` (1, 3, H, W) resized to ``size`` (h, w): area averaging if ``shrink``, else bilinear.

    On the CPU, OpenCV resizes each fp32 plane in place of ``F.interpolate``: measured
    on this project's 2-core CPU at 960x540 -> 480x270 and back, 0.3 ms against 3.9 ms
    (fp32) and 5.7-8.2 ms (bf16, channels-last), and several times that on a loaded
    machine, which cost adaptive resolution most of what a smaller frame saves. Same
    results within float rounding at integer factors (OpenCV's area weights differ from
    torch's adaptive pooling at fractional ones, both are box filters). CUDA tensors and
    batches keep ``F.interpolate``.
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.shape[0] != 1:
        mode = "area" if shrink else "bilinear"
        return F.interpolate(x, size=size, mode=mode, **({} if shrink else {"align_corners": False}))
    import cv2  # already loaded by every frame path; local so the engine imports without it

    planes = x[0].to(torch.float32).contiguous()
    out = torch.empty((planes.shape[0], *size), dtype=torch.float32)
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    for src, dst in zip(planes.numpy(), out.numpy(), strict=True):
        cv2.resize(src, (size[1], size[0]), dst=dst, interpolation=interpolation)
    return out.unsqueeze(0).to(x.dtype)
