"""Temporal stability of stylized video: the warping error of Lai et al. 2018, and fidelity.

* **Warping error**: flow between consecutive *input* frames, a non-occlusion mask,
  and the mean squared difference between each output frame and the previous
  output warped to it, over the unmasked pixels and the three channels, averaged
  over frame pairs. Values are on the [0, 1] RGB scale (Lai et al. report the sum
  over channels, i.e. 3x these numbers). Lower is more stable.
* **Fidelity**: mean squared difference between a smoothed output and the
  unsmoothed per-frame stylization of the same frame. Smoothing always costs some;
  smearing (EMA on motion) costs much more than flow-guided blending.

The flow here is finer than the smoother's (DIS ``medium`` on frames up to 640 px
instead of the smoother's ``balanced`` at 320) so the metric does not simply grade the smoother's own
flow; it is still DIS, not FlowNet2 as in the paper, so compare numbers within this
tool only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.flow import DisFlow, estimate_flow, normalize_flow, small_gray, warp_normalized


@dataclass
class WarpField:
    """Motion between two consecutive input frames, ready to score outputs with.

    Attributes:
        nflow: (1, 2, h, w) backward flow in ``grid_sample`` units (any resolution).
        valid: (h, w) float32 non-occlusion mask at the flow's resolution.
    """

    nflow: torch.Tensor
    valid: np.ndarray

    def mask(self, size: tuple[int, int]) -> torch.Tensor:
        """The mask resized to ``size`` (H, W), as a (1, 1, H, W) float tensor in [0, 1]."""
        import cv2

        valid = self.valid
        if valid.shape != tuple(size):
            valid = cv2.resize(valid, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(valid)).view(1, 1, *size)


class InputMotion:
    """Computes a :class:`WarpField` for each new input frame, from the one before.

    One instance serves every output being scored, since the motion depends only on
    the inputs.

    Args:
        flow_side: longer side of the frames the flow is computed on.
        preset: DIS preset.
    """

    #: Below this share of consistent flow, or above this mean residual (0..1), a pair
    #: is a scene cut and is not scored. A real cut leaves ~1% consistent; the least
    #: consistent real pair in the project's test clips (a fade from black) 20%.
    CUT_VALID = 0.1
    CUT_RESIDUAL = 0.15

    def __init__(self, flow_side: int = 640, preset: str = "medium") -> None:
        self.flow_side = flow_side
        self._dis = DisFlow(preset)
        self._prev: np.ndarray | None = None
        self.cuts = 0  # pairs skipped as scene cuts

    def reset(self) -> None:
        self._prev = None

    def update(self, frame: np.ndarray) -> WarpField | None:
        """Motion from the previous frame to ``frame`` (uint8 HxWx3 BGR); None for the first
        frame, after a size change and across a scene cut (a cut's error would swamp
        the mean, and the smoothers rightly reset there)."""
        gray = small_gray(frame, self.flow_side)
        prev, self._prev = self._prev, gray
        if prev is None or prev.shape != gray.shape:
            return None
        # Lai et al. mask occlusions only: no large-change test, so flashes and new
        # objects count against every method equally.
        est = estimate_flow(gray, prev, self._dis, change_threshold=0.0)
        if est.valid_fraction < self.CUT_VALID or est.residual > self.CUT_RESIDUAL:
            self.cuts += 1
            return None
        flow = torch.from_numpy(est.flow).permute(2, 0, 1).unsqueeze(0)
        return WarpField(normalize_flow(flow), est.valid)


def as_float(frame: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 HxWx3 (any channel order) or (1, 3, H, W) tensor -> (1, 3, H, W) float32 CPU in [0, 1]."""
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 3:
            raise ValueError(f"expected a uint8 HxWx3 frame, got {frame.dtype} {frame.shape}")
        return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return frame.detach().float().cpu()


def pair_warping_error(output: torch.Tensor, previous: torch.Tensor, field: WarpField) -> float | None:
    """Masked mean squared difference between ``output`` and ``previous`` warped along ``field``.

    Shape: output, previous (1, 3, H, W) float in [0, 1]. Returns None when the mask
    is empty (a scene cut), so the pair is skipped rather than scored as zero.
    """
    if output.shape != previous.shape:
        raise ValueError(f"output {tuple(output.shape)} != previous {tuple(previous.shape)}")
    mask = field.mask((output.shape[-2], output.shape[-1])).to(output.device, output.dtype)
    total = float(mask.sum())
    if total < 1.0:
        return None
    warped = warp_normalized(previous, field.nflow.to(output.device))
    sq = (output - warped).square_().mul_(mask)  # fresh tensor from the subtraction: ours
    return float(sq.sum()) / (total * output.shape[1])


def fidelity_mse(output: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean squared difference between an output and the per-frame stylization ([0, 1] scale)."""
    return float((output.float() - reference.float()).square().mean())


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for a mean squared error on the [0, 1] scale."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


class TemporalScore:
    """Accumulates the warping error (and optionally fidelity) of one output stream."""

    def __init__(self) -> None:
        self._prev: torch.Tensor | None = None
        self._pair_errors: list[float] = []
        self._fidelity: list[float] = []

    def update(
        self,
        output: np.ndarray | torch.Tensor,
        field: WarpField | None,
        reference: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        """Score the next output frame.

        Args:
            output: the frame shown (uint8 HxWx3 or (1, 3, H, W) float).
            field: motion from the previous input frame (None: first frame or cut).
            reference: the unsmoothed stylization of the same frame, for fidelity.
        """
        out = as_float(output)
        prev, self._prev = self._prev, out
        if field is not None and prev is not None and prev.shape == out.shape:
            err = pair_warping_error(out, prev, field)
            if err is not None:
                self._pair_errors.append(err)
        if reference is not None:
            self._fidelity.append(fidelity_mse(out, as_float(reference)))

    @property
    def pairs(self) -> int:
        return len(self._pair_errors)

    @property
    def warping_error(self) -> float:
        """Mean warping error over the scored frame pairs (NaN if none)."""
        return float(np.mean(self._pair_errors)) if self._pair_errors else math.nan

    @property
    def fidelity(self) -> float:
        """Mean squared distance to the per-frame stylization (NaN if no reference was given)."""
        return float(np.mean(self._fidelity)) if self._fidelity else math.nan


def warping_error(
    inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray | torch.Tensor], flow_side: int = 640
) -> float:
    """Warping error of a whole output sequence against its input frames.

    Args:
        inputs: uint8 HxWx3 BGR input frames.
        outputs: the output frames, one per input (uint8 HxWx3 or (1, 3, H, W) float).
        flow_side: longer side of the frames the flow is computed on.
    """
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    motion = InputMotion(flow_side)
    score = TemporalScore()
    for frame, out in zip(inputs, outputs, strict=True):
        score.update(out, motion.update(frame))
    return score.warping_error


def interpolate_at(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation of y at ``x`` on a curve given as (x, y) points.

    Used to read an EMA sweep's fidelity at the warping error a flow smoother
    reached. The points are joined in the order given (e.g. by increasing strength);
    where the curve passes ``x`` more than once (a strong EMA lags so much that its
    warping error rises again) the smallest y is returned: the reading most
    favourable to the curve. Returns None when the curve never reaches ``x``.
    """
    pts = [p for p in points if not (math.isnan(p[0]) or math.isnan(p[1]))]
    found = []
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if min(x0, x1) <= x <= max(x0, x1):
            found.append(y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return min(found) if found else None
