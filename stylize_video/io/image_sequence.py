"""Numbered still images as a video source: ``-i 'frames/%05d.png'`` or ``-i frames/``.

For frame-by-frame workflows (Blender renders, EbSynth keyframes, frames exported
by another tool). The frames are listed when the source opens, so a missing folder
or a pattern that matches nothing fails before the model loads:

* a printf pattern (``%d``, ``%05d``) takes every file of its folder whose name fits
  it, ordered by number (a gap is logged, not an error: renders are often partial);
* a folder takes every image in it (``.png .jpg .jpeg .webp .bmp .tif .tiff``),
  sorted naturally (``f2.png`` before ``f10.png``).

Timing comes from ``--fps`` (default :data:`DEFAULT_FPS`): frame ``i`` is at
``i / fps`` seconds. Frames of another size than the previous one are passed on as
they are (as a camera that changes resolution would be) and marked as a cut, so
temporal smoothing starts afresh; video outputs fit them into their first size.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from .base import Frame, Source
from .images import IMAGE_SUFFIXES, read_image
from .specs import InputSpec, SourceOptions, frame_name_regex, is_frame_pattern

log = logging.getLogger(__name__)

#: Frame rate of an image sequence when ``--fps`` is not given (the PAL/film-friendly
#: default of FFmpeg's image2 demuxer, so both tools time a sequence alike).
DEFAULT_FPS = 25.0


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_frames(spec: str | os.PathLike[str]) -> list[Path]:
    """The frame files a pattern or folder names, in playing order.

    Raises:
        InputError: the folder is missing or not a folder, or nothing matches.
    """
    text = os.fspath(spec)
    if is_frame_pattern(text):
        folder, name = os.path.split(text)
        root = Path(folder or ".")
        if not root.is_dir():
            raise InputError(f"input {text!r}: folder {str(root)!r} does not exist")
        regex = frame_name_regex(name)
        numbered = [(int(m.group(1)), p) for p in root.iterdir() if (m := regex.match(p.name)) and p.is_file()]
        if not numbered:
            raise InputError(f"input {text!r}: no files in {str(root)!r} match the pattern")
        numbered.sort()
        numbers = [n for n, _ in numbered]
        missing = numbers[-1] - numbers[0] + 1 - len(set(numbers))
        if missing:
            log.warning("%s: %d frame number(s) between %d and %d are missing", text, missing, numbers[0], numbers[-1])
        return [p for _, p in numbered]
    root = Path(text)
    if not root.exists():
        raise InputError(f"input {text!r} does not exist")
    if not root.is_dir():
        raise InputError(f"input {text!r} is not a folder or a frame pattern such as frames/%05d.png")
    found = sorted((p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key)
    if not found:
        raise InputError(f"input {text!r}: the folder contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


class ImageSequenceSource(Source):
    """Frames from numbered image files (see the module docstring for what is taken).

    Args:
        spec: a printf pattern (``frames/%05d.png``) or a folder.
        fps: frame rate for the timestamps (default :data:`DEFAULT_FPS`).

    Raises:
        InputError: missing folder, nothing matches, or ``fps`` not positive. An
            unreadable frame raises :class:`InputError` naming it when it is reached.
    """

    live = False

    def __init__(self, spec: str | os.PathLike[str], fps: float | None = None) -> None:
        rate = DEFAULT_FPS if fps is None else fps
        if not rate > 0:
            raise InputError(f"image sequence {os.fspath(spec)!r}: fps must be positive, got {rate}")
        self.path = os.fspath(spec)
        self.files = list_frames(spec)
        self.fps: Fraction = Fraction(rate).limit_denominator(1001)
        self.time_base = 1 / self.fps
        self.frame_count = len(self.files)
        self.inputs = tuple(str(p) for p in self.files)

    def __iter__(self) -> Iterator[Frame]:
        size: tuple[int, ...] | None = None
        for index, path in enumerate(self.files):
            try:
                image = read_image(path)
            except InputError as exc:
                raise InputError(f"image sequence {self.path!r}, frame {index}: {exc}") from None
            cut = size is not None and image.shape != size
            if cut:
                log.info("%s: frame %d (%s) is %dx%d", self.path, index, path.name, image.shape[1], image.shape[0])
            size = image.shape
            yield Frame(
                image=image,
                index=index,
                pts=index,
                time_base=self.time_base,
                time=float(index * self.time_base),
                captured=time.perf_counter(),
                cut=cut,
            )


def open_image_sequence(spec: InputSpec, options: SourceOptions) -> ImageSequenceSource:
    """Registry factory: ``-i 'frames/%05d.png'`` or ``-i frames/`` (``--fps`` sets the rate)."""
    return ImageSequenceSource(spec.text, fps=options.fps)
