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

In bf16 at 360p and up, the graph of a narrow network (``lite``; not an exported
file) takes the full-resolution norms' statistics from a strided sample, not from MVN
(:class:`.onnx_export._SampledInstanceNorm`): lite 640x480 1.10-1.13x less CPU time.

One model is compiled per input size (a static shape: OpenVINO plans its memory and
kernels for it) and compiled blobs are cached on disk in ``cache_dir()/openvino``,
so the next run with the same style and size skips the compilation.

A multi-style network's graph takes the mixing weights as a second input, and then
each norm's scale and shift are a (1, N) x (N, C) product computed per frame: OpenVINO
cannot fold them into the norm, and the separate multiply and add over every feature
map made the 8-style ``full`` gallery 1.09-1.12x slower than a single-style network
(640x480 bf16). So once the weights have held for :data:`BAKE_AFTER_FRAMES` frames, a
copy of the graph with those weights as a constant is compiled on a worker thread
(0.15 s for ``full``), and frames of that size run on it while the weights stay the same: as fast
as a single-style network, 1.3/255 at most from the graph with the input. A morph or a
blend slider in motion runs on the graph with the input, without a pause.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...devices import cpu_has_fast_bf16
from ...errors import DeviceError
from ...models.transform_net import TransformNet
from . import Backend, BackendOptions, cache_dir, network_geometry, require
from .onnx_export import graph_bytes

log = logging.getLogger(__name__)

#: Smallest padded frame (pixels) whose bf16 graph samples its full-resolution norms'
#: statistics (640x360: a 1/15 sample still holds 15k pixels a plane; smaller frames
#: gain little and their sample would be small).
SAMPLED_NORMS_MIN_PIXELS = 640 * 360
#: Widest full-resolution layer (``channels[0]``) whose norms are sampled: lite's 8
#: channels gain 1.10x; ``full`` (32 channels after a 9x9 head, whose convolutions
#: dwarf its norms) measured 244.7 against 244.4 ms at 640x480, for 0.31/255 from torch
#: fp32 instead of 0.14/255, so it keeps exact norms.
SAMPLED_NORMS_MAX_WIDTH = 8
#: Frames a multi-style network's mixing weights must hold before they are baked into a
#: graph of their own (see the module docstring): more than a morph's one frame per step.
BAKE_AFTER_FRAMES = 3


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


def _nhwc_io(model: Any) -> Any:
    """``model`` with NHWC input and output tensors (the graph inside stays NCHW).

    OpenVINO runs its convolutions channels-last anyway: the NCHW graph ended in a
    1.3-1.5 ms reorder of the 3-channel output (lite 640x480, 1 thread) and the engine
    transposed frames to NCHW and back around it. NHWC at the seam drops the reorder and
    both transposes: the layout changes which kernels run, not what they compute.
    """
    ov = require("openvino", "openvino")
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input(0).tensor().set_layout(ov.Layout("NHWC"))
    ppp.input(0).model().set_layout(ov.Layout("NCHW"))
    ppp.output(0).tensor().set_layout(ov.Layout("NHWC"))
    ppp.output(0).model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


class OpenVINOBackend(Backend):
    """Run a network through OpenVINO on the CPU (float32 CPU tensors at the seam)."""

    name = "openvino"
    #: Exchange NHWC tensors with the compiled model (see :func:`_nhwc_io`).
    nhwc = True

    def __init__(self, network: Any, options: BackendOptions) -> None:
        require("openvino", "openvino")
        if options.device.type != "cpu":
            raise DeviceError(f"the openvino backend runs on the CPU (--device cpu), not {options.device}")
        self.device = options.device
        self.dtype = torch.float32
        # NHWC at the seam (see _nhwc_io): the engine's frames are HWC already.
        self.channels_last = self.nhwc
        self.precision = resolve_precision(options.precision)
        self.stride, self.min_size = network_geometry(network)
        cache = Path(options.cache_dir) if options.cache_dir is not None else cache_dir()
        self._core = _core(str(cache / "openvino"))
        self._network, self._cache = network, cache
        self._sampled_norms = (
            isinstance(network, TransformNet)
            and network.config.channels[0] <= SAMPLED_NORMS_MAX_WIDTH
            and self.precision == "bf16"
        )
        self._models: dict[bool, Any] = {}  # read lazily: exact, and sampled norms
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
        # Baked graphs (module docstring): per input size, the weights and the request.
        self._held: tuple[tuple[int, int], np.ndarray] | None = None  # the last frame's size and weights
        self._steady = 0  # frames in a row with that size and those weights
        self._baked: dict[tuple[int, int], tuple[np.ndarray, Any]] = {}
        self._baking: Future[None] | None = None  # run() is the only caller: no lock
        self._baker: ThreadPoolExecutor | None = None
        self._bake_failed = False

    def _request(self, h: int, w: int) -> Any:
        request = self._requests.get((h, w))
        if request is None:
            request = self._requests[(h, w)] = self._compile(h, w)
        return request

    def _compile(self, h: int, w: int, weights: np.ndarray | None = None) -> Any:
        """An infer request for ``h`` x ``w`` frames; with ``weights``, a multi-style
        network's graph with those mixing weights baked in as a constant."""
        model = self._graph(self._sampled_norms and h * w >= SAMPLED_NORMS_MIN_PIXELS).clone()
        config = self._config
        if weights is not None:
            ov = require("openvino", "openvino")
            param = model.inputs[1].get_node()
            const = ov.op.Constant(np.ascontiguousarray(weights, dtype=np.float32))
            for target in list(param.output(0).get_target_inputs()):
                target.replace_source_output(const.output(0))
            model.remove_parameter(param)
            model.validate_nodes_and_infer_types()
            # Not cached on disk: every blend would leave a blob there.
            config = {**config, "CACHE_DIR": ""}
        shapes: dict[str, list[int]] = {model.inputs[0].any_name: [1, 3, h, w]}
        if self._num_styles and weights is None:
            shapes[model.inputs[1].any_name] = [self._num_styles]
        model.reshape(shapes)
        if self.nhwc:
            model = _nhwc_io(model)
        return self._core.compile_model(model, "CPU", config).create_infer_request()

    def _bake_soon(self, h: int, w: int, weights: np.ndarray) -> None:
        """Compile the graph with ``weights`` baked in on the worker thread (one at a time)."""
        if self._bake_failed or (self._baking is not None and not self._baking.done()):
            return
        if self._baker is None:
            self._baker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openvino-bake")
        self._baking = self._baker.submit(self._bake, h, w, weights.copy())

    def _bake(self, h: int, w: int, weights: np.ndarray) -> None:
        try:
            request = self._compile(h, w, weights)
        except Exception as exc:  # an optimisation only: the graph with the input still runs
            log.warning("OpenVINO: cannot bake the style weights into a graph (%s); blends run as they are", exc)
            self._bake_failed = True
            return
        self._baked[(h, w)] = (weights, request)  # one assignment: the frame thread sees old or new

    def _graph(self, sampled_norms: bool) -> Any:
        """The network's OpenVINO model, exact or with sampled norms (read once each)."""
        model = self._models.get(sampled_norms)
        if model is None:
            data = graph_bytes(self._network, self._cache, sampled_norms=sampled_norms)
            model = self._models[sampled_norms] = self._core.read_model(data, b"")
        return model

    def run(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h, w = size = int(x.shape[-2]), int(x.shape[-1])
        request = self._request(h, w)
        x = x.detach().float()
        if self.nhwc:
            x = x.permute(0, 2, 3, 1)  # a channels_last x is NHWC in memory already: no copy
        inputs: dict[int, np.ndarray] = {0: np.ascontiguousarray(x.numpy())}
        if self._num_styles:
            weights = self._style_array(style)
            # Steady = same size and weights as the last frame (photos of many sizes: never).
            held = self._held is not None and self._held[0] == size and np.array_equal(self._held[1], weights)
            self._steady = self._steady + 1 if held else 1
            self._held = (size, weights)
            baked = self._baked.get(size)
            if baked is not None and np.array_equal(baked[0], weights):
                request = baked[1]
            else:
                inputs[1] = weights
                if self._steady >= BAKE_AFTER_FRAMES:
                    self._bake_soon(h, w, weights)
        request.infer(inputs, share_inputs=True)
        # The request reuses its output buffer on the next call: copy out.
        y = torch.from_numpy(np.array(request.get_output_tensor(0).data, copy=True))
        return y.permute(0, 3, 1, 2) if self.nhwc else y  # NCHW shape, channels_last memory

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
        if self._baker is not None:
            self._baker.shutdown(wait=False, cancel_futures=True)
        self._requests.clear()
        self._baked.clear()
