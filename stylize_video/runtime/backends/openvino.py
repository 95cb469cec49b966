"""The OpenVINO backend: the exported graph on OpenVINO's CPU plugin.

Precision ``auto`` is OpenVINO's own default for the CPU: bf16 where the CPU has
native bf16 units (AMX or AVX512-BF16, :func:`cpu_has_fast_bf16`), else fp32.
Instance normalisation is one ``InstanceNormalization`` (MVN) op. In bf16 mode its
inputs and outputs are bf16 (the compiled model's runtime precision), and OpenVINO's
CPU plugin ignores per-op "keep fp32" marks (``disable_fp16_compression``: no change
measured). Its one-pass variance cancels when a plane's mean dwarfs its spread, so
the exported graph subtracts the input's per-channel mean first (exact: the head's
norm removes it anyway; see :class:`.onnx_export._Padded`). Measured against fp64 on
1920x1080 frames: a normal frame fp32 0.29/255, bf16 0.45/255 (3.6/255 uncentred); a
low-contrast frame (levels 200-212) fp32 0.21/255, bf16 0.39/255 (12 and 22/255
uncentred; eager torch bf16 with explicit fp32 statistics: 21/255). Finite throughout.

One model is compiled per input size (a static shape: OpenVINO plans its memory and
kernels for it) and compiled blobs are cached on disk in ``cache_dir()/openvino``,
so the next run with the same style and size skips the compilation.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...devices import cpu_has_fast_bf16
from ...errors import DeviceError
from . import Backend, BackendOptions, cache_dir, network_geometry, require
from .onnx_export import graph_bytes

log = logging.getLogger(__name__)


@functools.cache
def _core(cache: str) -> Any:
    """One OpenVINO Core per cache folder (a Core is heavy and thread-safe)."""
    ov = require("openvino", "openvino")
    core = ov.Core()
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": cache})
    except (OSError, RuntimeError) as exc:  # a read-only home: compile every time
        log.info("OpenVINO model cache off (%s): %s", cache, exc)
    return core


def resolve_precision(precision: str) -> str:
    """``auto``/``fp32``/``bf16`` -> ``bf16`` or ``fp32`` (fp16 is refused on the CPU)."""
    if precision == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision in ("fp32", "bf16"):
        return precision
    if precision == "fp16":
        raise DeviceError("fp16 is not supported by the openvino backend on the CPU; use fp32 or bf16")
    raise DeviceError(f"unknown precision {precision!r} (choose auto, fp32, fp16, bf16)")


class OpenVINOBackend(Backend):
    """Run a network through OpenVINO on the CPU (float32 CPU tensors at the seam)."""

    name = "openvino"

    def __init__(self, network: Any, options: BackendOptions) -> None:
        require("openvino", "openvino")
        if options.device.type != "cpu":
            raise DeviceError(f"the openvino backend runs on the CPU (--device cpu), not {options.device}")
        self.device = options.device
        self.dtype = torch.float32
        self.channels_last = False
        self.precision = resolve_precision(options.precision)
        self.stride, self.min_size = network_geometry(network)
        cache = Path(options.cache_dir) if options.cache_dir is not None else cache_dir()
        self._core = _core(str(cache / "openvino"))
        self._model = self._core.read_model(graph_bytes(network, cache), b"")
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
            # One frame at a time, as fast as possible: latency mode, one stream.
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # Pinned threads stall when another process holds their core.
            "ENABLE_CPU_PINNING": False,
        }
        if options.threads is not None:
            if options.threads < 1:
                raise DeviceError(f"--threads must be >= 1, got {options.threads}")
            self._config["INFERENCE_NUM_THREADS"] = options.threads
        self._requests: dict[tuple[int, int], Any] = {}
        self._num_styles = int(getattr(network, "num_styles", 0))
        self._style_key: torch.Tensor | None = None
        self._style_np: np.ndarray | None = None

    def _request(self, h: int, w: int) -> Any:
        request = self._requests.get((h, w))
        if request is None:
            model = self._model.clone()
            shapes: dict[str, list[int]] = {model.inputs[0].any_name: [1, 3, h, w]}
            if self._num_styles:
                shapes[model.inputs[1].any_name] = [self._num_styles]
            model.reshape(shapes)
            compiled = self._core.compile_model(model, "CPU", self._config)
            request = self._requests[(h, w)] = compiled.create_infer_request()
        return request

    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        request = self._request(int(h), int(w))
        inputs: dict[int, np.ndarray] = {0: np.ascontiguousarray(x.detach().float().numpy())}
        if self._num_styles:
            inputs[1] = self._style_array(style)
        request.infer(inputs, share_inputs=True)
        # The request reuses its output buffer on the next call: copy out.
        return torch.from_numpy(np.array(request.get_output_tensor(0).data, copy=True))

    def _style_array(self, style: torch.Tensor | None) -> np.ndarray:
        """The weights as the graph's second input; converted once per weight vector."""
        if style is None:
            style = torch.nn.functional.one_hot(torch.tensor(0), self._num_styles).float()
        if style is not self._style_key:
            self._style_key = style
            self._style_np = np.ascontiguousarray(style.detach().float().cpu().numpy())
        assert self._style_np is not None
        return self._style_np

    def close(self) -> None:
        self._requests.clear()
