"""Contact sheets: one photo in many styles, labelled, on a grid; blend strips: one photo
in mixtures of two styles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Weights of the second style in a blend strip, left to right.
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def blend_spec(a: str, b: str, weight: float) -> str:
    """The style spec of ``a`` and ``b`` mixed with ``weight`` of ``b`` (a style alone at 0 and 1)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must be within 0..1, got {weight}")
    if weight == 0.0:
        return a
    if weight == 1.0:
        return b
    return f"{a}={1.0 - weight:g}+{b}={weight:g}"


def blend_label(a: str, b: str, weight: float) -> str:
    """A tile's label in a blend strip: a style's name at either end, the two shares between."""
    if weight in (0.0, 1.0):
        return b if weight else a
    share = round(weight * 100)
    return f"{100 - share}% {a} + {share}% {b}"


def label_tile(image: np.ndarray, text: str) -> np.ndarray:
    """Return a copy of ``image`` with ``text`` on a dark band along its bottom edge."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(1.0, w / 640))
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if tw > w - 8:  # a long label (a blend's two names) shrinks to fit rather than run off the tile
        scale = max(0.3, scale * (w - 8) / tw)
        thickness = max(1, round(scale * 1.5))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = th + base + 8
    # Darken rather than cover the band, so the picture still shows through.
    out[h - band :] = (out[h - band :].astype(np.float32) * 0.35).astype(np.uint8)
    x = max(4, (w - tw) // 2)
    cv2.putText(out, text, (x, h - base - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def tile(images: Sequence[np.ndarray], cols: int | None = None, gap: int = 4) -> np.ndarray:
    """Arrange equally sized uint8 HxWx3 images on a grid with ``gap`` px white gutters."""
    if not images:
        raise ValueError("no images to tile")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("all tiles must have the same size")
    n = len(images)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = im
    return sheet
