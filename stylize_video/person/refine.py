"""From the model's small, blocky probability map to a frame-sized mask that follows
the person's edges and holds still over time.

* :func:`guided_upsample`: the fast guided filter (He, Sun and Tang, "Guided Image
  Filtering", TPAMI 2013, and He and Sun, "Fast Guided Filter", 2015) with the
  frame's grey levels as the guide. The local linear model ``q = a * I + b`` is fit
  with box filters at a reduced resolution, ``a`` and ``b`` are upsampled, and the
  full-size guide is applied: the mask's border snaps to the frame's edges at full
  resolution, for the cost of two resizes and a multiply-add there. OpenCV's own
  ``ximgproc.guidedFilter`` is only in the contrib build, hence this version.
* :func:`feather`: a small Gaussian on the result, so the cut between styled and
  unstyled pixels is a ramp of a few pixels, not a hard cut-out line.
* :class:`MaskSmoother`: an exponential moving average of the small map, reset on
  scene cuts, so a border pixel the model is unsure about does not flicker; given the
  optical flow the pipeline's flow smoother computes anyway, the previous map is
  first warped along it (:func:`warp_mask`), so a moving border is not dragged behind.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    # Normalized box mean; BORDER_REFLECT keeps the frame's edge from reading as dark.
    return np.asarray(cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT), np.float32)


def guide_gray(frame: np.ndarray) -> np.ndarray:
    """The guide: a uint8 HxWx3 BGR frame as float32 HxW grey levels in [0, 1]."""
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * np.float32(1 / 255)


def guided_upsample(
    mask: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int = 4,
    eps: float = 1e-3,
    work_side: int = 160,
) -> np.ndarray:
    """Upsample a small mask to the guide's size, following the guide's edges.

    Args:
        mask: float32 hxw in [0, 1], any (smaller) size.
        guide: float32 HxW grey levels in [0, 1] (:func:`guide_gray`), the output size.
        radius: box radius in pixels *at the working resolution*.
        eps: regularization; larger smooths more and follows weak edges less (the
            guide's variance scale: 1e-3 is a grey-level contrast of about 8/255).
        work_side: longer side of the resolution the coefficients are fit at
            (capped at the guide's own size). The defaults (160, radius 4, i.e. a
            window of 1/18 of the frame) halved the edge-band error of bilinear
            upsampling on the synthetic scene of ``tests/test_person.py``; fitting at
            320 with the same radius gained less there (the window was too small for
            the coarse mask's blur) for 3x the cost.

    Returns:
        float32 HxW in [0, 1].
    """
    import cv2

    H, W = guide.shape
    scale = min(1.0, work_side / max(H, W))
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    g = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != (H, W) else guide
    p = cv2.resize(mask.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_LINEAR)
    mean_g = _box(g, radius)
    mean_p = _box(p, radius)
    cov_gp = _box(g * p, radius) - mean_g * mean_p
    var_g = _box(g * g, radius) - mean_g * mean_g
    a = cov_gp / (var_g + np.float32(eps))
    b = mean_p - a * mean_g
    mean_a = _box(a, radius)
    mean_b = _box(b, radius)
    if (h, w) != (H, W):
        mean_a = cv2.resize(mean_a, (W, H), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (W, H), interpolation=cv2.INTER_LINEAR)
    q = mean_a * guide
    q += mean_b
    return np.clip(q, 0.0, 1.0, out=q)


def feather(mask: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Soften the mask's border with a Gaussian of ``sigma`` pixels (0: unchanged).

    Values stay in [0, 1]; a region wider than about 6 sigma keeps its 0 or 1 inside.
    """
    import cv2

    if sigma <= 0:
        return mask
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT), np.float32)


def bilinear_upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain bilinear resize to ``size`` (H, W): the baseline :func:`guided_upsample` beats."""
    import cv2

    return np.asarray(cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), np.float32)


#: Optical flow for the mask's frame: ``(flow, valid)`` at any small size, or None
#: (no history to warp: the first frame, a cut). ``flow`` is float32 (h, w, 2),
#: backward, in pixels of its own size (see :mod:`stylize_video.runtime.flow`);
#: ``valid`` is float32 (h, w) in [0, 1]. Passed as a function that may wait for it.
Motion = Callable[[], "tuple[np.ndarray, np.ndarray] | None"]


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Warp the previous frame's small mask to the current frame along a backward flow.

    Args:
        mask: float32 hxw, the previous frame's map.
        flow: float32 (fh, fw, 2) backward flow in pixels of its own size (any size;
            resized to the mask's and its values rescaled with it).

    Returns:
        float32 hxw: the previous mask where the current frame's pixels came from.
    """
    import cv2

    h, w = mask.shape
    fh, fw = flow.shape[:2]
    if (fh, fw) != (h, w):
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    # Pixel units follow the size: a flow of 2 px at 320 wide is 1.6 px at 256 wide.
    fx = flow[..., 0] * np.float32(w / fw)
    fy = flow[..., 1] * np.float32(h / fh)
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.asarray(cv2.remap(mask, xx + fx, yy + fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float32)


class MaskSmoother:
    """Exponential moving average of the small mask, reset on scene cuts.

    ``out = strength * previous + (1 - strength) * new``. At 0.5 and 30 fps a moving
    border lags by about one frame, while a pixel that flips between frames moves
    half as far. A cut (mean absolute difference of the tiny grey frames above
    ``cut_threshold``, on the 0..1 scale) or a size change starts over, so the old
    person's silhouette never lingers over a new shot.

    Given a :data:`Motion` (the input's optical flow), the history is warped along
    it first and weighted by ``flow_strength`` times the flow's validity: a moving
    border keeps its place instead of lagging, where the flow failed (disocclusions)
    the new map shows, and a motion of None (the flow smoother's first frame or a
    cut) starts over.

    Args:
        strength: weight of the history, 0 (off) .. <1.
        cut_threshold: mean grey-level change (0..1) that counts as a cut.
        flow_strength: weight of the flow-warped history where the flow is valid, 0 .. <1.
    """

    def __init__(self, strength: float = 0.5, *, cut_threshold: float = 0.15, flow_strength: float = 0.7) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"mask smoothing strength must be within [0, 1), got {strength}")
        if not 0.0 <= flow_strength < 1.0:
            raise ValueError(f"mask flow strength must be within [0, 1), got {flow_strength}")
        self.strength = strength
        self.flow_strength = flow_strength
        self.cut_threshold = cut_threshold
        self._mask: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        #: Cuts seen since construction.
        self.cuts = 0

    def reset(self) -> None:
        """Forget the history: the next mask is used as it is."""
        self._mask = None
        self._gray = None

    def __call__(self, mask: np.ndarray, frame: np.ndarray | None = None, motion: Motion | None = None) -> np.ndarray:
        """Smooth one small mask.

        Args:
            mask: float32 hxw in [0, 1].
            frame: the frame the mask is for, for the cut test (uint8 BGR, or float in
                [0, 1], at any size); None skips the test.
            motion: the frame's optical flow (warps the history; see the class docstring);
                None: the plain EMA.

        Returns:
            a new float32 hxw array (the caller's mask is not modified).
        """
        import cv2

        gray = None
        if frame is not None:
            # 32x18 is enough to see a cut and costs ~0.1 ms even from 1280x720.
            tiny = np.asarray(cv2.resize(frame, (32, 18), interpolation=cv2.INTER_AREA), np.float32)
            gray = (tiny.mean(axis=2) if tiny.ndim == 3 else tiny) / np.float32(255 if frame.dtype == np.uint8 else 1)
        prev, prev_gray = self._mask, self._gray
        self._gray = gray
        cut = gray is not None and prev_gray is not None and float(np.abs(gray - prev_gray).mean()) > self.cut_threshold
        if cut:
            self.cuts += 1
        flow = motion() if motion is not None else None
        if motion is not None and (flow is None or prev is None or prev.shape != mask.shape or cut):
            out = mask.astype(np.float32, copy=True)
        elif flow is not None and prev is not None:
            weight = flow[1]
            if weight.shape != mask.shape:
                weight = cv2.resize(weight, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
            # Where the flow holds, the warped history at flow_strength; where it fails
            # (the person's own border is a motion boundary, where flow fails first),
            # the plain EMA rather than no history at all, so the border stays smoothed.
            warped = warp_mask(prev, flow[0])
            history = prev + (warped - prev) * weight
            strength = np.float32(self.strength) + weight * np.float32(self.flow_strength - self.strength)
            out = (mask + (history - mask) * strength).astype(np.float32)
        elif prev is None or prev.shape != mask.shape or cut or self.strength == 0.0:
            out = mask.astype(np.float32, copy=True)
        else:
            out = (prev * np.float32(self.strength) + mask * np.float32(1.0 - self.strength)).astype(np.float32)
        self._mask = out
        return out.copy()  # the history stays ours even if the caller writes into the result
