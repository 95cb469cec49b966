"""Encoded video files (PyAV): :class:`VideoFileSink`.

Written under a temporary name beside the target and renamed into place by
``close()``; the input's audio is copied (or transcoded) in step with the video.
"""

from __future__ import annotations

import errno
import logging
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import OutputError
from .base import ForwardTimestamps, Frame, Sink
from .media import (
    alpha_video_encoder,
    even_pad,
    ffmpeg_path,
    fit_into,
    import_av,
    open_video_encoder,
    output_extensions,
    to_yuv420,
    to_yuva,
)
from .paths import PendingOutput, check_output
from .specs import EncoderOptions, OutputSpec, SinkOptions

if TYPE_CHECKING:
    from .audio import AudioCopier

log = logging.getLogger(__name__)

#: Time base for sources without timestamps (cameras): milliseconds, VFR by wall clock.
LIVE_TIME_BASE = Fraction(1, 1000)


def _disk_error(exc: OSError, path: Path) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full while writing {str(path)!r}")
    return OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}")


class VideoFileSink(Sink):
    """Encode frames into a video file, copying the input's audio.

    Written under a temporary name beside the target and renamed by ``close()``,
    so no truncated file ever sits under the final name.

    Args:
        path: output file; the extension picks the container.
        encoder: codec, crf, bitrate and preset as one value (:class:`~.specs.EncoderOptions`);
            NVENC is tried first when CUDA is present.
        codec, crf, bitrate, preset: the same, one by one (used when ``encoder`` is None).
        audio_from: media file whose audio streams are copied (or transcoded when
            the container cannot take them); None for no audio.
        fps: nominal frame rate (a rate-control hint; timestamps come from frames).
        inputs: paths that must never be overwritten.
        overwrite: replace an existing output.
        allow_nvenc: try NVENC (default: when CUDA is available).
        share_cpu: the model runs on the CPU: default to the encoder's cheapest preset.
        alpha: store each frame's ``alpha`` plane (opaque where a frame has none): only
            ``.webm`` (VP9, ``yuva420p``) and ``.mov`` (ProRes 4444, ``yuva444p10le``).

    Raises:
        OutputError: the path is an input or exists (without ``overwrite``), or ``alpha``
            with a container that cannot store it.
    """

    threaded = True
    path: Path

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        encoder: EncoderOptions | None = None,
        codec: str = "h264",
        crf: int | None = None,
        bitrate: int | None = None,
        preset: str | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        fps: float | Fraction | None = None,
        inputs: Iterable[str | os.PathLike[str]] = (),
        overwrite: bool = False,
        allow_nvenc: bool | None = None,
        share_cpu: bool = False,
        alpha: bool = False,
    ) -> None:
        self.path = check_output(Path(path), [Path(p) for p in inputs], overwrite=overwrite)
        ext = self.path.suffix.lower().lstrip(".")
        if not ext or ext not in output_extensions():
            raise OutputError(f"output {str(self.path)!r}: unknown video file type (use .mp4, .mkv, .mov or .webm)")
        self.options = encoder or EncoderOptions(codec=codec, crf=crf, bitrate=bitrate, preset=preset)
        # (encoder, pixel format) of an alpha stream; checked now: a wrong container costs no work.
        self._alpha = alpha_video_encoder(ext, self.options.codec) if alpha else None
        # Checked now, not at the first frame: a bad output should cost no work.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _disk_error(exc, self.path) from exc
        self._pending = PendingOutput(self.path)
        self.tmp = self._pending.tmp
        self.audio_from = os.fspath(audio_from) if audio_from is not None else None
        self.fps = Fraction(fps).limit_denominator(1001) if fps else None
        self.allow_nvenc = allow_nvenc
        self.share_cpu = share_cpu
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._audio: AudioCopier | None = None
        self._time_base = LIVE_TIME_BASE
        self._size: tuple[int, int] = (0, 0)
        self._last_pts: int | None = None
        self._step = 1
        self._forward = ForwardTimestamps(1)
        self._start_time = 0.0
        self._complete = False
        self._closed = False
        self._resized = False

    @property
    def encoder(self) -> str | None:
        """Name of the video encoder in use (None before the first frame)."""
        return None if self._stream is None else str(self._stream.codec_context.name)

    def _open(self, frame: Frame) -> None:
        av = import_av()
        if self.allow_nvenc is None:
            import torch

            self.allow_nvenc = torch.cuda.is_available()
        h, w = frame.image.shape[:2]
        self._size = (w + w % 2, h + h % 2)
        self._time_base = frame.time_base or LIVE_TIME_BASE
        rate = self.fps or Fraction(30)
        if frame.time_base is not None and frame.pts is not None:
            self._start_time = float(frame.pts * frame.time_base) - frame.time
        self._step = max(1, round(1 / (float(rate) * self._time_base)))
        self._forward = ForwardTimestamps(self._step)
        try:
            self._container = av.open(ffmpeg_path(self.tmp), mode="w")
        except (av.FFmpegError, ValueError) as exc:
            raise OutputError(f"cannot write {str(self.path)!r}: {exc}") from exc
        except OSError as exc:
            raise _disk_error(exc, self.path) from exc
        try:
            codec, pix_fmt = self._alpha or (self.options.codec, "yuv420p")
            self._stream = open_video_encoder(
                self._container,
                codec,
                self._size[0],
                self._size[1],
                rate=rate,
                time_base=self._time_base,
                crf=self.options.crf,
                bitrate=self.options.bitrate,
                preset=self.options.preset,
                allow_nvenc=bool(self.allow_nvenc),
                share_cpu=self.share_cpu,
                pix_fmt=pix_fmt,
            )
            if self.audio_from is not None:
                from .audio import AudioCopier  # shared with the stream sink

                self._audio = AudioCopier(self._container, self.audio_from)
                if not len(self._audio):
                    self._audio.close()
                    self._audio = None
        except BaseException:
            self.abort()
            raise

    def write(self, frame: Frame) -> None:
        """Encode one frame (uint8 HxWx3 BGR, and its alpha when writing alpha); odd sizes are padded by one pixel."""
        if self._closed:
            raise OutputError(f"{str(self.path)!r} is already closed")
        if self._container is None:
            self._open(frame)
        image = frame.image
        if self._alpha is not None:
            alpha = frame.alpha if frame.alpha is not None else np.full(image.shape[:2], 255, np.uint8)
            image = np.concatenate([image, alpha[:, :, None]], axis=2)
        image = even_pad(image)
        if (image.shape[1], image.shape[0]) != self._size:
            # The stream's size is fixed by its first frame; a source that changes
            # resolution mid-way (a camera reconnect, a joined recording) is fitted in.
            if not self._resized:
                h, w = frame.image.shape[:2]
                log.warning(
                    "%s: input changed size to %dx%d at frame %d; fitting it into %dx%d",
                    self.path, w, h, self.frames, *self._size,
                )  # fmt: skip
                self._resized = True
            image = fit_into(image, self._size)
        if frame.pts is not None and frame.time_base == self._time_base:
            pts = frame.pts
        else:
            pts = round((frame.time + self._start_time) / self._time_base)
        pts = self._forward(pts)  # a jump back in time goes on one frame later
        if self._last_pts is not None and pts <= self._last_pts:
            # Encoders need strictly increasing pts; a duplicate would be rejected.
            pts = self._last_pts + 1
        if self._last_pts is not None:
            self._step = max(1, pts - self._last_pts)
        self._last_pts = pts
        vf = to_yuv420(image) if self._alpha is None else to_yuva(image, self._alpha[1])
        vf.pts = pts
        vf.time_base = self._time_base
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.mux_until(self._video_end())
        except OSError as exc:
            raise _disk_error(exc, self.path) from exc
        except import_av().FFmpegError as exc:
            raise OutputError(f"cannot write {str(self.path)!r}: {exc}") from exc
        self.frames += 1

    def _video_end(self) -> float:
        """Source-time seconds where the last written frame ends."""
        if self._last_pts is None:
            return 0.0
        return float((self._last_pts + self._step) * self._time_base)

    def finish(self) -> None:
        """The input ended normally: ``close`` copies the audio to its end."""
        self._complete = True

    def close(self) -> None:
        """Flush the encoder, finish the audio, close the file and rename it into place."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.mux_until(math.inf if self._complete else self._video_end())
                self._audio.close()
            self._container.close()
        except OSError as exc:
            self._discard()
            raise _disk_error(exc, self.path) from exc
        except import_av().FFmpegError as exc:
            self._discard()
            raise OutputError(f"cannot write {str(self.path)!r}: {exc}") from exc
        except BaseException:
            self._discard()
            raise
        self._pending.commit()
        log.info("wrote %s (%d frames)", self.path, self.frames)

    def _discard(self) -> None:
        try:
            if self._container is not None:
                self._container.close()
        except Exception as exc:  # the output is being thrown away; report, don't mask the cause
            log.debug("closing a discarded output: %s", exc)
        self._pending.discard()

    def abort(self) -> None:
        """Discard the output: nothing is written under the final name."""
        self._closed = True
        self._discard()


def open_file_sink(spec: OutputSpec, options: SinkOptions) -> VideoFileSink:
    """Registry factory: any ``-o`` value that is not another kind is a video file."""
    return VideoFileSink(
        spec.text,
        encoder=options.encoder,
        audio_from=options.audio_from,
        fps=options.fps,
        inputs=options.inputs,
        overwrite=options.overwrite,
        share_cpu=options.share_cpu,
        alpha=options.alpha,
    )
