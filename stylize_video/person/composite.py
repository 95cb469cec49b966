"""Putting stylized and original pixels together by a person mask.

Pure functions on either host frames (numpy, HxWx3, uint8 or float) or device
tensors ((N, 3, H, W) float, the pipeline's layout); channel order does not
matter as long as both images share it. The mask is float HxW in [0, 1], 1 on the
person; as numpy it may be given with tensors (it is uploaded to their device).

Blending is linear in the stored values: ``out = a * (1 - m) + b * m``. Where the mask
is exactly 0 or 1 the result is exactly one input (no rounding drift), so the
unstyled region keeps its original pixels bit for bit.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch

Region = Literal["all", "background", "person"]
#: The values ``--region`` accepts.
REGIONS: tuple[Region, ...] = ("all", "background", "person")

ImageT = TypeVar("ImageT", np.ndarray, torch.Tensor)


def _mask_like(mask: np.ndarray | torch.Tensor, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The mask shaped to broadcast against ``image``, checked against its size."""
    h, w = (image.shape[0], image.shape[1]) if isinstance(image, np.ndarray) else image.shape[-2:]
    if tuple(mask.shape[-2:]) != (h, w):
        raise ValueError(f"mask {tuple(mask.shape[-2:])} != image {(h, w)}")
    if isinstance(image, np.ndarray):
        m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else mask
        return np.asarray(m, np.float32).reshape(h, w, 1)
    t = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(mask, np.float32))
    dtype = image.dtype if image.is_floating_point() else torch.float32
    return t.to(image.device, dtype, non_blocking=True).reshape(1, 1, h, w)


def blend(a: ImageT, b: ImageT, mask: np.ndarray | torch.Tensor) -> ImageT:
    """``a`` where the mask is 0, ``b`` where it is 1, linear in between.

    Shape: a, b (H, W, C) numpy or (N, C, H, W) tensors of one dtype; mask (H, W) ->
    like ``a`` (a new array; uint8 is rounded).
    """
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} != {tuple(b.shape)}")
    m = _mask_like(mask, a)
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and isinstance(m, np.ndarray)
        # a*(1-m) + b*m (not a + (b-a)*m): exact at m = 0 and at m = 1 for floats too.
        out = a.astype(np.float32) * (np.float32(1) - m) + b.astype(np.float32) * m
        if a.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out.astype(a.dtype, copy=False)
    assert isinstance(b, torch.Tensor) and isinstance(m, torch.Tensor)
    if not a.is_floating_point():
        return torch.lerp(a.float(), b.float(), m).round_().clamp_(0, 255).to(a.dtype)
    return torch.lerp(a, b, m)


def composite(original: ImageT, stylized: ImageT, mask: np.ndarray | torch.Tensor, region: Region | str) -> ImageT:
    """Stylize only ``region``; the other keeps the original pixels.

    Args:
        original, stylized: the frame before and after the network (same shape and dtype).
        mask: person probability, (H, W) in [0, 1].
        region: ``all`` (returns ``stylized`` itself), ``background`` or ``person``.
    """
    if region == "all":
        return stylized
    if region == "background":
        return blend(stylized, original, mask)
    if region == "person":
        return blend(original, stylized, mask)
    raise ValueError(f"unknown region {region!r} (choose {', '.join(REGIONS)})")


def composite_styles(person: ImageT, background: ImageT, mask: np.ndarray | torch.Tensor) -> ImageT:
    """The person in one style, the background in another: ``person`` where the mask is 1."""
    return blend(background, person, mask)


def to_rgba(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image over transparency: uint8 HxWx3 + mask -> uint8 HxWx4, alpha = mask * 255.

    Straight (not premultiplied) alpha, as PNG, VP9-with-alpha WebM and ProRes 4444
    store it; channel order is kept (BGR in -> BGRA out, what ``cv2.imwrite`` expects).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
    m = _mask_like(mask, image)
    assert isinstance(m, np.ndarray)
    alpha = np.clip(np.rint(m * 255), 0, 255).astype(np.uint8)
    return np.concatenate([image, alpha], axis=2)
