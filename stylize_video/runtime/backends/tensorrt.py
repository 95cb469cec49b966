"""The TensorRT backend (CUDA only): the exported graph built into a TensorRT engine.

An engine is built per input size (a fixed optimisation profile: TensorRT picks
its kernels for that shape) and serialized to ``cache_dir()/tensorrt``, keyed by the
graph's content, the size, the precision, the TensorRT version and the GPU, so only
the first run of a style at a size pays the build (tens of seconds to minutes).

Precision ``auto`` is fp16; instance-norm layers are pinned to fp32 (half-precision
statistics over a 1080p plane give NaN or black frames). Tensors at the seam are
float32 CUDA tensors; TensorRT reads and writes their memory directly on torch's
current stream.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from ...errors import DeviceError
from . import Backend, BackendOptions, cache_dir, network_geometry, require
from .onnx_export import INPUT_NAME, OUTPUT_NAME, STYLE_INPUT_NAME, graph_bytes

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """Run a network as a TensorRT engine on one CUDA device."""

    name = "tensorrt"

    def __init__(self, network: Any, options: BackendOptions) -> None:
        self._trt = trt = require("tensorrt", "tensorrt")
        if options.device.type != "cuda":
            raise DeviceError(f"the tensorrt backend needs a CUDA device, not {options.device}")
        precision = "fp16" if options.precision == "auto" else options.precision
        if precision not in ("fp32", "fp16", "bf16"):
            raise DeviceError(f"unknown precision {precision!r} (choose auto, fp32, fp16, bf16)")
        self.device = options.device
        self.dtype = torch.float32
        self.channels_last = False
        self.precision = precision
        self.stride, self.min_size = network_geometry(network)
        cache = Path(options.cache_dir) if options.cache_dir is not None else cache_dir()
        self._graph = graph_bytes(network, cache)
        self._cache = cache / "tensorrt"
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._contexts: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._num_styles = int(getattr(network, "num_styles", 0))
        self._style_key: torch.Tensor | None = None
        self._style_dev: torch.Tensor | None = None

    def _engine_path(self, h: int, w: int) -> Path:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(self.device))
        key = hashlib.sha256(self._graph).hexdigest()[:16]
        return self._cache / f"{key}-{w}x{h}-{self.precision}-trt{self._trt.__version__}-{gpu}.engine"

    def _build(self, h: int, w: int) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(self._graph):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise DeviceError(f"TensorRT cannot parse the style graph: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        if self.precision != "fp32":
            # Instance-norm statistics in fp32: fp16 sums over a 1080p plane overflow.
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                if layer.type == trt.LayerType.NORMALIZATION:
                    layer.precision = trt.float32
                    layer.set_output_type(0, trt.float32)
                    if hasattr(layer, "compute_precision"):
                        layer.compute_precision = trt.float32
        profile = builder.create_optimization_profile()
        shape = (1, 3, h, w)
        profile.set_shape(INPUT_NAME, shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise DeviceError(f"TensorRT could not build an engine for {w}x{h} {self.precision}")
        return bytes(serialized)

    def _context(self, h: int, w: int) -> Any:
        entry = self._contexts.get((h, w))
        if entry is None:
            path = self._engine_path(h, w)
            try:
                data = path.read_bytes()
            except OSError:
                log.info("building a TensorRT engine for %dx%d %s (cached after)", w, h, self.precision)
                data = self._build(h, w)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
                except OSError as exc:
                    log.info("cannot cache the TensorRT engine in %s: %s", path.parent, exc)
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise DeviceError(f"TensorRT could not load the engine {path}")
            context = engine.create_execution_context()
            context.set_input_shape(INPUT_NAME, (1, 3, h, w))
            entry = self._contexts[(h, w)] = (engine, context)
        return entry[1]

    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        context = self._context(int(h), int(w))
        x = x.detach().float().contiguous()
        out = torch.empty_like(x)
        context.set_tensor_address(INPUT_NAME, x.data_ptr())
        if self._num_styles:
            if style is None:
                style = torch.nn.functional.one_hot(torch.tensor(0), self._num_styles).float()
            if style is not self._style_key:  # uploaded once per weight vector, kept alive here
                self._style_key, self._style_dev = style, style.to(self.device, torch.float32).contiguous()
            assert self._style_dev is not None
            context.set_tensor_address(STYLE_INPUT_NAME, self._style_dev.data_ptr())
        context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise DeviceError(f"TensorRT failed to run the {w}x{h} engine")
        # x must outlive the kernels queued on the stream.
        x.record_stream(stream)
        return out

    def close(self) -> None:
        self._contexts.clear()
