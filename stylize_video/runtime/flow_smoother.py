"""Flow-guided temporal smoothing: blend each stylized frame with the previous
*output* warped along the optical flow of the *input* frames.

Unlike an EMA, content that moves is blended with itself rather than with whatever
was at the same pixel before, so textures stop re-rolling without smearing motion.
Where the flow cannot be trusted (disocclusions, pixels entering the frame, large
changes) the mask drops the history and the fresh stylization shows through, so new
content is never ghosted. The recursion (the warped frame is the previous *output*)
carries history over many frames, like an EMA along motion paths.

Cost per frame: grayscale + downscale of the source, two DIS flows (forward and
backward, for the consistency test) at <= ``flow_side`` pixels on the CPU, then one
resize of a 3-channel (flow + mask) map, one ``grid_sample`` and one ``lerp`` on the
stylized frame's device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from .flow import DisFlow, FlowEstimate, base_grid, estimate_flow, small_gray

log = logging.getLogger(__name__)


class FlowSmoother:
    """Temporal smoother that warps the previous output along the input's optical flow.

    Args:
        strength: weight of the warped history where the flow is valid, 0 (off) .. <1.
        flow_side: longer side of the frames the flow is computed on (the source is
            downscaled to it; at 320 with the default preset, both DIS directions and
            the checks took 15 ms on one core here, the whole smoother 23 ms per
            640x480 frame: ``benchmarks/results/flow_presets_cpu.md``).
        preset: DIS preset (see :data:`~stylize_video.runtime.flow.DIS_PRESETS`);
            ``balanced`` (the default) smooths about as well as ``medium`` for less.
        change_threshold: per-pixel large-change test, as a fraction of 255 (see
            :func:`~stylize_video.runtime.flow.change_mask`).
        cut_residual: a mean absolute difference (0..1) between the frame and the
            flow-warped previous frame above this is a scene cut: the smoother resets.
        cut_valid: a valid fraction below this is also a scene cut.
    """

    def __init__(
        self,
        strength: float = 0.8,
        *,
        flow_side: int = 320,
        preset: str = "balanced",
        change_threshold: float = 0.1,
        cut_residual: float = 0.15,
        cut_valid: float = 0.2,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"flow strength must be within [0, 1), got {strength}")
        if flow_side < 16:
            raise ValueError(f"flow_side must be >= 16, got {flow_side}")
        self.strength = strength
        self.flow_side = flow_side
        self.change_threshold = change_threshold
        self.cut_residual = cut_residual
        self.cut_valid = cut_valid
        self._dis = DisFlow(preset)
        self._prev_out: torch.Tensor | None = None
        self._prev_gray: np.ndarray | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[np.ndarray, Future[tuple[np.ndarray, FlowEstimate | None]]] | None = None
        #: Scene cuts detected since construction (resets by ``reset()`` not counted).
        self.cuts = 0
        #: Fraction of pixels that took history in the last call (0 after a reset or cut).
        self.last_valid = 0.0

    def reset(self) -> None:
        """Forget the history: the next frame is shown as stylized."""
        self._prev_out = None
        self._prev_gray = None
        self._pending = None
        self.last_valid = 0.0

    def close(self) -> None:
        """Stop the worker thread started by :meth:`prepare` (if any)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pending = None

    def prepare(self, source_u8: np.ndarray) -> None:
        """Start the flow for the next frame on a worker thread (optional).

        Call it with the host frame *before* stylizing that frame, then call the
        smoother with the same array: the flow (CPU, OpenCV releases the GIL) then
        overlaps the network instead of following it. Without it, ``__call__``
        computes the flow itself. One ``prepare`` per call; ``close`` ends the thread.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flow")
        self._pending = (source_u8, self._executor.submit(self._estimate, source_u8, self._prev_gray))

    def pending_flow(self) -> Callable[[], tuple[np.ndarray, np.ndarray] | None] | None:
        """The flow :meth:`prepare` started, for a second consumer (the person mask), or None.

        Returns a function (callable from any thread) that waits for that flow and gives
        ``(flow, valid)`` at the flow's small size, or None when there is nothing to warp
        (the first frame after a reset, or a scene cut by this smoother's own test).
        Sharing it means the mask's border follows motion for no second flow.
        """
        if self._pending is None:
            return None
        future = self._pending[1]

        def flow() -> tuple[np.ndarray, np.ndarray] | None:
            est = future.result()[1]
            if est is None or est.residual > self.cut_residual or est.valid_fraction < self.cut_valid:
                return None
            return est.flow, est.valid

        return flow

    def _estimate(self, source_u8: np.ndarray, prev_gray: np.ndarray | None) -> tuple[np.ndarray, FlowEstimate | None]:
        gray = small_gray(source_u8, self.flow_side)
        if prev_gray is None or prev_gray.shape != gray.shape:
            return gray, None
        return gray, estimate_flow(gray, prev_gray, self._dis, change_threshold=self.change_threshold)

    @torch.inference_mode()
    def __call__(self, stylized: torch.Tensor, source: torch.Tensor, source_u8: np.ndarray) -> torch.Tensor:
        """Smooth one frame.

        Shape: stylized and source (1, 3, H, W) float RGB in [0, 1] on the engine's
        device; source_u8 uint8 HxWx3 BGR, the host frame -> (1, 3, H, W) like ``stylized``.
        """
        pending, self._pending = self._pending, None
        # Always collect a pending result first: the DIS instance is not shared between threads.
        done = pending[1].result() if pending is not None else None
        if done is not None and pending is not None and pending[0] is source_u8:
            gray, maybe = done
        else:
            gray, maybe = self._estimate(source_u8, self._prev_gray)
        prev_out = self._prev_out
        self._prev_gray = gray
        self.last_valid = 0.0
        if (
            maybe is None
            or prev_out is None
            or prev_out.shape != stylized.shape
            or prev_out.dtype != stylized.dtype
            or prev_out.device != stylized.device
        ):
            self._prev_out = stylized
            return stylized
        est = maybe
        if est.residual > self.cut_residual or est.valid_fraction < self.cut_valid:
            log.debug("scene cut (residual %.3f, valid %.2f): resetting", est.residual, est.valid_fraction)
            self.cuts += 1
            self._prev_out = stylized
            return stylized
        self.last_valid = est.valid_fraction
        grid, weight = self._grid_and_weight(est.flow, est.valid, stylized)
        # Sampling and blending in fp32 (free on the CPU, where the engine is fp32
        # anyway): an fp16 grid is only good to about half a pixel at 1280 px wide.
        warped = F.grid_sample(prev_out.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        out = torch.lerp(stylized.float(), warped, weight).to(stylized.dtype)
        self._prev_out = out
        return out

    def _grid_and_weight(
        self, flow: np.ndarray, valid: np.ndarray, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampling grid (1, H, W, 2) and blend weight (1, 1, H, W), fp32, at ``like``'s size and device."""
        h, w = flow.shape[:2]
        H, W = like.shape[-2:]
        # Flow in grid_sample units is resolution-free: resize it without rescaling.
        nflow = flow * np.array([2.0 / w, 2.0 / h], np.float32)
        weight_small = valid * np.float32(self.strength)
        # Upscale the small maps where it is cheapest: on the device (a few KB upload)
        # for CUDA, with OpenCV on the CPU (several times faster than F.interpolate
        # there; separate contiguous maps keep the full-size adds and lerp fast).
        if like.device.type == "cpu":
            import cv2

            if (h, w) != (H, W):
                nflow = np.asarray(cv2.resize(nflow, (W, H), interpolation=cv2.INTER_LINEAR), np.float32)
                weight_small = np.asarray(cv2.resize(weight_small, (W, H), interpolation=cv2.INTER_LINEAR), np.float32)
            grid_offset = torch.from_numpy(nflow).unsqueeze(0)
            weight = torch.from_numpy(weight_small).view(1, 1, H, W)
        else:
            packed = np.concatenate([nflow, weight_small[..., None]], axis=2)
            small = torch.from_numpy(packed).to(like.device, non_blocking=True).permute(2, 0, 1).unsqueeze(0)
            full = F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False)
            grid_offset = full[:, :2].permute(0, 2, 3, 1)
            weight = full[:, 2:].contiguous()
        grid = base_grid(H, W, like.device, torch.float32) + grid_offset
        return grid, weight
