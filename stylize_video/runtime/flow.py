"""Optical flow between video frames, warping along it, and where it can be trusted.

Used by :class:`~stylize_video.runtime.flow_smoother.FlowSmoother` (cheap flow on a
downscaled frame, every frame) and by the warping-error metric in
:mod:`stylize_video.metrics.temporal` (finer flow, offline).

Conventions:

* flow is *backward* and in pixels: for frame ``t`` and an earlier frame ``s``,
  ``flow[y, x] = (dx, dy)`` says that pixel ``(x, y)`` of ``t`` shows what was at
  ``(x + dx, y + dy)`` in ``s``. ``warp(s, flow)`` therefore aligns ``s`` with ``t``.
* numpy flow is ``(h, w, 2)`` float32 (OpenCV's layout); tensor flow is
  ``(N, 2, h, w)``. A flow may be coarser than the image it warps: :func:`warp`
  upscales it (values scale with the size).
* a *valid* mask is float32 in {0, 1} (soft after resizing): 1 where the earlier
  frame's content is visible and unchanged, 0 for disocclusions, pixels that moved
  in from outside the frame, and large changes (lighting, new objects).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: DIS settings by name: an OpenCV preset plus overrides of its parameters.
#: ``balanced`` is ``fast`` solved down to half resolution (finest scale 1, as
#: ``medium``) with half of fast's gradient-descent iterations. On the 7 real clips
#: (``benchmarks/results/flow_presets_cpu.md``, flow smoothing at 0.8) it cuts the
#: warping error by 90% median, 55% on the worst clip (fast: 85% / 46%, medium: 90% /
#: 57%) for 23 ms per 640x480 frame in the smoother (fast 15, medium 27; one torch
#: thread on this project's 2-core machine).
DIS_PRESETS: dict[str, tuple[int, dict[str, int]]] = {
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, {}),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, {}),
    "balanced": (cv2.DISOPTICAL_FLOW_PRESET_FAST, {"FinestScale": 1, "GradientDescentIterations": 8}),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, {}),
}

# DIS needs a few of its patches (8 px for ultrafast/fast, 12 px for medium) per side.
_MIN_FLOW_SIDE = 32
# Below this OpenCV's DIS refuses the input.
_MIN_DIS_SIDE = 16


def flow_scale(size: tuple[int, int], max_side: int) -> float:
    """Downscale factor (<= 1) that brings the longer side of ``size`` (h, w) to at most ``max_side``.

    Never shrinks the shorter side below what DIS needs; never upscales.
    """
    h, w = size
    scale = min(1.0, max_side / max(h, w))
    scale = max(scale, min(1.0, _MIN_FLOW_SIDE / max(1, min(h, w))))
    return scale


def small_gray(frame: np.ndarray, max_side: int) -> np.ndarray:
    """BGR uint8 HxWx3 -> grayscale uint8, downscaled so its longer side is <= ``max_side``."""
    h, w = frame.shape[:2]
    scale = flow_scale((h, w), max_side)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # Area averaging before the colour conversion: fewer pixels to convert, no aliasing.
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(frame)


class DisFlow:
    """Dense optical flow with OpenCV's DIS (Kroeger et al. 2016) on grayscale frames.

    Args:
        preset: a name from :data:`DIS_PRESETS`.
    """

    def __init__(self, preset: str = "ultrafast") -> None:
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r} (choose from {', '.join(DIS_PRESETS)})")
        self.preset = preset
        base, overrides = DIS_PRESETS[preset]
        self._dis = cv2.DISOpticalFlow.create(base)
        for name, value in overrides.items():
            getattr(self._dis, "set" + name)(value)

    def __call__(self, frame: np.ndarray, earlier: np.ndarray) -> np.ndarray:
        """Backward flow from ``frame`` to ``earlier`` (both uint8 HxW gray), (H, W, 2) float32 pixels."""
        if frame.shape != earlier.shape:
            raise ValueError(f"flow between frames of different sizes: {frame.shape} != {earlier.shape}")
        if min(frame.shape[:2]) < _MIN_DIS_SIDE:
            # Too small for DIS's patches (OpenCV raises): no motion is the safe answer,
            # and the consistency and change tests still guard the blend.
            return np.zeros((*frame.shape[:2], 2), np.float32)
        return self._dis.calc(frame, earlier, None)  # type: ignore[call-overload]


@functools.lru_cache(maxsize=8)
def _pixel_coords(h: int, w: int) -> np.ndarray:
    coords = np.indices((h, w), dtype=np.float32)[::-1].transpose(1, 2, 0).copy()
    coords.flags.writeable = False  # shared by every caller through the cache
    return coords


def _sample_np(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``image`` sampled at absolute ``coords`` (h, w, 2), bilinear and edge-clamped."""
    return cv2.remap(image, coords, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]


def _sq_norm(v: np.ndarray) -> np.ndarray:
    x, y = cv2.split(v)
    return cv2.multiply(x, x) + cv2.multiply(y, y)  # type: ignore[no-any-return]


def consistency_mask(flow_bwd: np.ndarray, flow_fwd: np.ndarray, rel: float = 0.01, abs_px: float = 0.5) -> np.ndarray:
    """Forward-backward consistency test (Sundaram et al. 2010, as used by Ruder et al. 2016).

    A pixel of frame ``t`` is valid when following the backward flow to ``t-1`` and
    the forward flow back lands where it started, and the backward flow stays inside
    the frame. Disoccluded pixels (content that ``t-1`` did not show) fail it.

    Args:
        flow_bwd: (h, w, 2) flow from ``t`` to ``t-1``.
        flow_fwd: (h, w, 2) flow from ``t-1`` to ``t``.
        rel: tolerance relative to the squared flow magnitudes.
        abs_px: absolute tolerance in squared pixels of the flow's resolution.

    Returns:
        (h, w) float32 mask in {0, 1}.
    """
    h, w = flow_bwd.shape[:2]
    return _consistency(flow_bwd, flow_fwd, _pixel_coords(h, w) + flow_bwd, rel, abs_px)


def _consistency(bwd: np.ndarray, fwd: np.ndarray, coords: np.ndarray, rel: float, abs_px: float) -> np.ndarray:
    h, w = bwd.shape[:2]
    fwd_at = _sample_np(fwd, coords)
    err = _sq_norm(bwd + fwd_at)
    tol = _sq_norm(bwd) + _sq_norm(fwd_at)
    tol *= rel
    tol += abs_px
    ok = err <= tol
    x1, y1 = cv2.split(coords)
    ok &= (x1 >= -0.5) & (x1 <= w - 0.5) & (y1 >= -0.5) & (y1 <= h - 0.5)
    return ok.astype(np.float32)


def _residual(frame: np.ndarray, earlier: np.ndarray, coords: np.ndarray) -> np.ndarray:
    return cv2.absdiff(frame, _sample_np(earlier, coords))


def change_mask(frame: np.ndarray, earlier: np.ndarray, flow_bwd: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Large-change test: 1 where ``earlier`` warped along the flow matches ``frame``.

    Catches what flow consistency cannot: a new object whose flow happens to be
    consistent, flashes, lighting changes.

    Args:
        frame, earlier: uint8 (h, w) grayscale frames.
        flow_bwd: (h, w, 2) flow from ``frame`` to ``earlier``.
        threshold: largest accepted absolute difference, as a fraction of 255.

    Returns:
        (h, w) float32 mask in {0, 1}.
    """
    h, w = flow_bwd.shape[:2]
    return (_residual(frame, earlier, _pixel_coords(h, w) + flow_bwd) <= threshold * 255.0).astype(np.float32)


@dataclass
class FlowEstimate:
    """Backward flow between two frames and where it can be trusted (at the flow's resolution).

    Attributes:
        flow: (h, w, 2) float32 pixels, from the later frame to the earlier one.
        valid: (h, w) float32 in {0, 1}.
        residual: mean absolute difference (0..1) between the later frame and the
            earlier one warped along the flow: large after a scene cut.
    """

    flow: np.ndarray
    valid: np.ndarray
    residual: float

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


def estimate_flow(
    frame: np.ndarray,
    earlier: np.ndarray,
    dis: DisFlow,
    change_threshold: float = 0.1,
    static_threshold: float = 0.01,
    erode: int = 1,
) -> FlowEstimate:
    """Backward flow from ``frame`` to ``earlier`` with its validity mask.

    Args:
        frame, earlier: uint8 (h, w) grayscale frames (see :func:`small_gray`).
        dis: the flow estimator.
        change_threshold: see :func:`change_mask`; ``<= 0`` disables the test.
        static_threshold: pixels whose 5x5 neighbourhood changed by at most this
            (fraction of 255) without any motion get zero flow and count as valid.
            Flow is ambiguous on flat regions (sky, walls) and DIS returns noise
            there that fails the consistency test; "nothing moved" is the right
            answer when the unwarped frames already agree. ``<= 0`` disables it.
        erode: grow invalid regions by this many pixels (flow is least reliable at
            occlusion borders, and a ghost there is the most visible artefact).
    """
    bwd = dis(frame, earlier)
    fwd = dis(earlier, frame)
    h, w = bwd.shape[:2]
    coords = _pixel_coords(h, w) + bwd
    valid = _consistency(bwd, fwd, coords, 0.01, 0.5)
    diff = _residual(frame, earlier, coords)
    residual = float(diff.mean()) / 255.0
    if change_threshold > 0:
        valid *= diff <= change_threshold * 255.0
    if static_threshold > 0:
        still = cv2.blur(cv2.absdiff(frame, earlier), (5, 5)) <= static_threshold * 255.0
        still &= valid == 0
        bwd[still] = 0.0  # DIS's output array: ours to edit
        valid[still] = 1.0
    if erode > 0:
        valid = cv2.erode(valid, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return FlowEstimate(bwd, valid, residual)


def upscale_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (N, 2, h, w) pixel flow to ``size`` (H, W), scaling its values to match."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    up = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
    return up * scale


def normalize_flow(flow: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) pixel flow -> the same displacement in ``grid_sample`` units.

    With ``align_corners=False`` one pixel is ``2 / w`` wide, whatever the resolution,
    so a normalized flow can be resized without rescaling its values.
    """
    h, w = flow.shape[-2:]
    scale = torch.tensor([2.0 / w, 2.0 / h], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
    return flow * scale


@functools.lru_cache(maxsize=8)
def base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Pixel centres in grid_sample's normalized coordinates (align_corners=False).
    ys = (torch.arange(h, device=device, dtype=torch.float32) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=torch.float32) * 2 + 1) / w - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return grid.unsqueeze(0).to(dtype)


def warp_normalized(image: torch.Tensor, nflow: torch.Tensor) -> torch.Tensor:
    """Warp with a normalized flow (see :func:`normalize_flow`) of any resolution.

    Shape: image (N, C, H, W), nflow (N, 2, h, w) -> (N, C, H, W).
    """
    hw = tuple(image.shape[-2:])
    if tuple(nflow.shape[-2:]) != hw:
        nflow = F.interpolate(nflow, size=hw, mode="bilinear", align_corners=False)
    # The grid stays fp32: in fp16 a normalized coordinate near 1 is only good to
    # ~1/1000, half a pixel at 1280 px wide.
    grid = base_grid(hw[0], hw[1], image.device, torch.float32) + nflow.float().permute(0, 2, 3, 1)
    # border padding: pixels that came from outside the frame get the edge colour, and
    # the valid mask already excludes them.
    out = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(image.dtype)


def warp(image: torch.Tensor, flow: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Warp ``image`` along a backward pixel flow: ``out(x) = image(x + flow(x))``.

    Works on any device and float dtype (``grid_sample``). A coarser flow is upscaled.

    Args:
        image: (N, C, H, W) float tensor.
        flow: (N, 2, h, w) tensor or (h, w, 2) numpy array, pixels of the flow's own resolution.

    Returns:
        A new (N, C, H, W) tensor.
    """
    if isinstance(flow, np.ndarray):
        flow = torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).unsqueeze(0)
    flow = flow.to(device=image.device, dtype=torch.float32)
    return warp_normalized(image, normalize_flow(flow))
