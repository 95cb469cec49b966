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
from .onnx_export import INPUT_NAME, STYLE_INPUT_NAME, graph_bytes


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
        self._num_styles = int(getattr(network, "num_styles", 0))
        self._style_key: torch.Tensor | None = None
        self._style_np: np.ndarray | None = None

    def _feeds(self, image: np.ndarray, style: torch.Tensor | None) -> dict[str, np.ndarray]:
        feeds = {INPUT_NAME: image}
        if self._num_styles:
            if style is None:
                style = torch.nn.functional.one_hot(torch.tensor(0), self._num_styles).float()
            if style is not self._style_key:  # converted once per weight vector
                self._style_key = style
                self._style_np = np.ascontiguousarray(style.detach().float().cpu().numpy())
            assert self._style_np is not None
            feeds[STYLE_INPUT_NAME] = self._style_np
        return feeds

    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if self._cuda:
            # Simple and correct rather than zero-copy: ORT on CUDA is a fallback here.
            out = self._session.run(None, self._feeds(x.detach().float().cpu().numpy(), style))[0]
            return torch.from_numpy(out).to(self.device)
        out = self._session.run(None, self._feeds(np.ascontiguousarray(x.detach().float().numpy()), style))[0]
        return torch.from_numpy(out)  # a fresh array per call: ours to hand on
