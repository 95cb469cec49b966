"""The eager PyTorch backend: the network as an ``nn.Module`` on any torch device.

channels_last by default (measured faster on CUDA and on the CPU), fp16 on CUDA,
bf16 on CPUs with native bf16 units, optional ``torch.compile``. Instance-norm
statistics stay fp32 inside :class:`~stylize_video.models.layers.InstanceNorm`.

In half precision the input is centred per channel in fp32 before the cast and the
head conv's bias dropped, as in the exported graph (:class:`.onnx_export._Padded`):
exact in exact arithmetic (the head's norm removes any per-channel constant), and
bf16 resolves a centred plane far better than values near 0.8, and the bias no longer
swamps the centred signal. Measured against the fp32 network through the engine, bf16
on this project's CPU, on a low-contrast 960x544 frame (levels 200-212): lite 11.2 ->
0.43/255 mean absolute, full 8.1 -> 0.30/255; a 1080p frame of smooth noise unchanged
(0.8 and 1.3/255).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ...errors import DeviceError
from ...models.transform_net import TransformNet
from . import Backend, BackendOptions, ExportedGraph


class TorchBackend(Backend):
    """Run a :class:`TransformNet` in eager PyTorch (optionally compiled).

    The network is deep-copied, so the caller's module is never moved, cast or
    wrapped; the engine's fp32 fallback builds a new backend instead of casting this one.
    """

    name = "torch"

    def __init__(self, network: Any, options: BackendOptions) -> None:
        if isinstance(network, ExportedGraph):
            raise DeviceError(
                f"the torch backend runs checkpoints, not exported graphs ({network.path}): "
                "use --backend openvino or onnxruntime"
            )
        if not isinstance(network, TransformNet):
            raise TypeError(f"expected a TransformNet, got {type(network).__name__}")
        from ..stylizer import pick_dtype

        self.device = options.device
        if self.device.type == "cpu":
            from ...threads import warn_if_openmp_spins

            warn_if_openmp_spins()
        self.dtype = pick_dtype(self.device, options.precision)
        self.precision = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]
        self.channels_last = True if options.channels_last is None else options.channels_last
        self.stride, self.min_size = network.stride, network.min_size
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        net = copy.deepcopy(network).eval().requires_grad_(False)
        #: The prepared module (what benchmarks hook or capture in CUDA graphs).
        #: Centre half-precision inputs in fp32 first (see the module docstring).
        self.centre = self.dtype != torch.float32
        if self.centre:
            from .onnx_export import _drop_head_bias

            _drop_head_bias(net)
        self.module: TransformNet = net.to(device=self.device, dtype=self.dtype, memory_format=fmt)  # type: ignore[call-overload]
        self._forward: Any = self.module.forward_padded
        if options.compile:
            # Static shapes: one compile per frame size, the fastest kernels for it.
            self._forward = torch.compile(self._forward, dynamic=False)
        self._style_key: torch.Tensor | None = None
        self._style_dev: torch.Tensor | None = None

    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            if self.centre:
                x32 = x.to(torch.float32, copy=True)  # never the caller's tensor: centred in place
                x = x32.sub_(x32.mean(dim=(2, 3), keepdim=True)).to(self.dtype)
            if style is None:
                return self._forward(x)  # type: ignore[no-any-return]
            if style is not self._style_key:
                # One small upload when the weights change, none per frame (a CUDA copy each
                # frame would be a sync point); the network mixes its style rows in fp32.
                self._style_key, self._style_dev = style, style.to(self.device, torch.float32)
            return self._forward(x, self._style_dev)  # type: ignore[no-any-return]
