"""Reading and writing still images (OpenCV, BGR uint8), with safe output."""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, StylizeError
from .paths import atomic_output, fresh_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8 HxWx3 BGR (alpha dropped, grayscale expanded).

    Raises:
        InputError: missing, a directory, or not a decodable image.
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"input {str(p)!r} does not exist")
    if p.is_dir():
        raise InputError(f"input {str(p)!r} is a directory")
    # np.fromfile + imdecode instead of imread: works with non-ASCII paths everywhere.
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"input {str(p)!r} is not a readable image")
    return img


def check_image_suffix(path: str | os.PathLike[str]) -> Path:
    """Raise now, before any work, if ``path``'s extension is not an image type we write."""
    p = Path(path)
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"output {str(p)!r}: unsupported image extension (use one of {', '.join(IMAGE_SUFFIXES)})")
    return p


def write_image(path: str | os.PathLike[str], image: np.ndarray, quality: int = 95) -> Path:
    """Encode ``image`` (uint8 HxWx3 BGR) by the path's extension and write it atomically."""
    import cv2

    p = check_image_suffix(path)
    ext = p.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OutputError(f"could not encode {str(p)!r}")
    try:
        with atomic_output(p) as tmp:
            buf.tofile(str(tmp))
    except OSError as exc:
        raise OutputError(f"cannot write {str(p)!r}: {exc.strerror or exc}") from exc
    return p


def resize_max(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Downscale so the longer side is at most ``max_size`` (never upscales)."""
    if not max_size:
        return image
    import cv2

    h, w = image.shape[:2]
    scale = max_size / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def expand_image_inputs(specs: Sequence[str]) -> list[Path]:
    """Files, directories (their images, sorted) and glob patterns -> image paths.

    Raises:
        InputError: a spec matches nothing.
    """
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise InputError(f"directory {spec!r} contains no images")
            out.extend(found)
        elif p.exists():
            out.append(p)
        elif glob.has_magic(spec):
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            if not found:
                raise InputError(f"pattern {spec!r} matches no files")
            out.extend(found)
        else:
            raise InputError(f"input {spec!r} does not exist")
    return out


def save_snapshot(folder: Path, image: np.ndarray) -> Path | None:
    """Save ``image`` as a fresh ``snapshot-<time>.png`` in ``folder``; None if it cannot be written.

    A snapshot is a side request: failing it is a warning, never the end of the run
    and its recording.
    """
    path = fresh_path(folder / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}.png")
    try:
        write_image(path, image)
    except StylizeError as exc:
        log.warning("snapshot not saved: %s", exc)
        return None
    log.info("snapshot saved to %s", path)
    return path
