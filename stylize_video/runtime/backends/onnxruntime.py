"""The ONNX Runtime backend: the exported graph on ORT's CPU (or CUDA) provider, fp32.

Its intra-op pool does not spin between frames (``allow_spinning=0``): spinning
threads starve when another process keeps a core busy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import DeviceError
from . import Backend, BackendOptions, cache_dir, network_geometry, require
from .onnx_export import INPUT_NAME, graph_bytes


class OnnxRuntimeBackend(Backend):
    """Run a network through ONNX Runtime in fp32 (float32 tensors at the seam)."""

    name = "onnxruntime"

    def __init__(self, network: Any, options: BackendOptions) -> None:
        ort = require("onnxruntime", "onnxruntime")
        if options.precision not in ("auto", "fp32"):
            raise DeviceError(f"the onnxruntime backend runs fp32 only, not {options.precision}")
        providers: list[Any]
        if options.device.type == "cpu":
            providers = ["CPUExecutionProvider"]
        elif options.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers = [("CUDAExecutionProvider", {"device_id": options.device.index or 0})]
        else:
            raise DeviceError(f"this onnxruntime build cannot run on {options.device} (providers: CPU only)")
        self.device = options.device
        self.dtype = torch.float32
        self.channels_last = False
        self.precision = "fp32"
        self.stride, self.min_size = network_geometry(network)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if options.threads is not None:
            if options.threads < 1:
                raise DeviceError(f"--threads must be >= 1, got {options.threads}")
            so.intra_op_num_threads = options.threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        cache = Path(options.cache_dir) if options.cache_dir is not None else cache_dir()
        self._session = ort.InferenceSession(graph_bytes(network, cache), so, providers=providers)
        self._cuda = options.device.type == "cuda"

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self._cuda:
            # Simple and correct rather than zero-copy: ORT on CUDA is a fallback here.
            out = self._session.run(None, {INPUT_NAME: x.detach().float().cpu().numpy()})[0]
            return torch.from_numpy(out).to(self.device)
        out = self._session.run(None, {INPUT_NAME: np.ascontiguousarray(x.detach().float().numpy())})[0]
        return torch.from_numpy(out)  # a fresh array per call: ours to hand on
