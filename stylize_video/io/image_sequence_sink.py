"""Numbered still images as an output: ``-o 'out/%05d.png'``.

Frame ``i`` of the input (0-based, ``Frame.index``) is written to ``out/%05d.png % i``.
The extension picks the format: ``.png`` is lossless; ``.jpg``/``.jpeg`` and ``.webp``
are lossy at quality :data:`QUALITY`; ``.bmp``/``.tif`` are lossless too. The folder
is created.

Every frame is written under a temporary name in the same folder and renamed into
place (:func:`~.paths.atomic_output`), so a crash, Ctrl-C or a full disk never leaves a
truncated image under a frame's name: an interrupted sequence is valid up to its last
frame, and every file under a frame's name is a whole image. So ``--resume`` continues
a sequence: frames already there are kept and reported by :meth:`ImageSequenceSink.holds`,
and the pipeline does not stylize them again. ``--overwrite`` replaces them one by
one instead. With neither, an output whose pattern already names existing files is
refused before any work, and a pattern that names an input file is refused always.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import OutputError
from .base import Frame, Sink
from .images import IMAGE_SUFFIXES
from .paths import atomic_output
from .specs import OutputSpec, SinkOptions, frame_name, frame_name_regex, is_frame_pattern

log = logging.getLogger(__name__)

#: Quality of lossy frames (JPEG, WebP), 1..100.
QUALITY = 95
#: Image types that store an alpha plane (``--alpha``): written as 4-channel BGRA.
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")


class ImageSequenceSink(Sink):
    """Write each frame as a numbered image (see the module docstring).

    Args:
        pattern: ``folder/name%05d.ext`` (one printf ``%d``/``%0Nd``).
        inputs: files that must never be overwritten.
        overwrite: replace existing frames.
        quality: JPEG/WebP quality 1..100.
        alpha: frames carry an alpha plane to store (:data:`ALPHA_SUFFIXES` only).
            Any frame with ``alpha`` is written with it whenever the type can store it.
        resume: keep existing frames and report them through :meth:`holds`.

    Raises:
        OutputError: not a pattern, an unknown image type, a frame name that is an input,
            existing frames without ``overwrite`` or ``resume``, a folder that cannot be created, or
            ``alpha`` with a type that cannot store it.
    """

    threaded = True  # encoding a PNG costs milliseconds: keep it off the model's thread

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        *,
        inputs: Iterable[str | os.PathLike[str]] = (),
        overwrite: bool = False,
        quality: int = QUALITY,
        alpha: bool = False,
        resume: bool = False,
    ) -> None:
        text = os.fspath(pattern)
        if not is_frame_pattern(text):
            raise OutputError(f"output {text!r}: an image sequence needs one %d or %05d in its name")
        folder, name = os.path.split(text)
        self.folder = Path(folder or ".")
        self.name = name
        self.ext = Path(name).suffix.lower()
        if self.ext not in IMAGE_SUFFIXES:
            raise OutputError(f"output {text!r}: unsupported image extension (use one of {', '.join(IMAGE_SUFFIXES)})")
        if alpha and self.ext not in ALPHA_SUFFIXES:
            raise OutputError(
                f"output {text!r}: {self.ext} images cannot store --alpha (use {', '.join(ALPHA_SUFFIXES)})"
            )
        if not 1 <= quality <= 100:
            raise OutputError(f"image quality must be within 1..100, got {quality}")
        self.pattern = text
        self.quality = quality
        self.path = self.folder  # for "wrote ..." messages
        self.frames = 0
        self.resume = resume and not overwrite
        regex = frame_name_regex(name)
        folder_abs = self.folder.resolve()
        # Checked now, not at the first frame: a bad output should cost no work.
        for src in inputs:
            p = Path(src).resolve()
            if p.parent == folder_abs and regex.match(p.name):
                raise OutputError(f"output {text!r} would overwrite input {str(src)!r}; refusing")
        if self.folder.is_dir():
            existing = sorted(p.name for p in self.folder.iterdir() if regex.match(p.name))
            if existing and not (overwrite or resume):
                raise OutputError(
                    f"output {text!r}: {len(existing)} frame(s) already exist (first {existing[0]!r}); "
                    "pass --resume to keep them and write the rest, or --overwrite to replace them"
                )
        elif self.folder.exists():
            raise OutputError(f"output {text!r}: {str(self.folder)!r} is not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {str(self.folder)!r}: {exc.strerror or exc}") from exc
        self._closed = False

    def frame_path(self, index: int) -> Path:
        """Where frame ``index`` goes."""
        return self.folder / frame_name(self.name, index)

    def holds(self, index: int) -> bool:
        """With ``resume``: frame ``index`` is already written (whole: frames are renamed into place)."""
        return self.resume and self.frame_path(index).is_file()

    def _params(self) -> list[int]:
        import cv2

        if self.ext in (".jpg", ".jpeg"):
            return [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        if self.ext == ".webp":
            return [cv2.IMWRITE_WEBP_QUALITY, self.quality]
        return []

    def write(self, frame: Frame) -> None:
        """Encode one frame (uint8 HxWx3 BGR; BGRA with its ``alpha`` where the type stores it) and rename it into place."""
        import cv2

        if self._closed:
            raise OutputError(f"{self.pattern!r} is already closed")
        path = self.frame_path(frame.index)
        image = frame.image
        if frame.alpha is not None and self.ext in ALPHA_SUFFIXES:
            image = np.concatenate([image, frame.alpha[:, :, None]], axis=2)
        ok, buf = cv2.imencode(self.ext, image, self._params())
        if not ok:
            raise OutputError(f"could not encode frame {frame.index} as {self.ext}")
        try:
            with atomic_output(path) as tmp:
                buf.tofile(str(tmp))
        except OSError as exc:
            import errno

            reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise OutputError(f"cannot write {str(path)!r}: {reason}") from exc
        self.frames += 1

    def close(self) -> None:
        """Nothing to flush: every frame is complete once written."""
        if not self._closed:
            self._closed = True
            log.info("wrote %d frames to %s", self.frames, self.pattern)

    def abort(self) -> None:
        """Keep the frames already written: each is a complete image (nothing partial to discard)."""
        self.close()


def open_image_sequence_sink(spec: OutputSpec, options: SinkOptions) -> ImageSequenceSink:
    """Registry factory: ``-o 'out/%05d.png'``."""
    return ImageSequenceSink(
        spec.text, inputs=options.inputs, overwrite=options.overwrite, alpha=options.alpha, resume=options.resume
    )
