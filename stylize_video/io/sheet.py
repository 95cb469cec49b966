"""Contact sheets: one photo in many styles, labelled, on a grid."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def label_tile(image: np.ndarray, text: str) -> np.ndarray:
    """Return a copy of ``image`` with ``text`` on a dark band along its bottom edge."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(1.0, w / 640))
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
