"""Frame sinks: an encoded video file (PyAV), a window (OpenCV), and a null sink.

A sink opens lazily on its first frame and finalizes its output in ``close()``.
``threaded = True`` sinks run in the pipeline's encoder thread; ``False`` ones (the
window: GUI calls belong to the main thread) run right after the model.
Optional hooks the pipeline calls when present: ``finish()`` (the input ended
normally, so trailing audio may be copied), ``abort()`` (discard the output),
``set_status(text)`` and ``poll_actions()`` (window controls).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, StylizeError
from .audio import AudioCopier as _AudioCopier  # the old private name, still imported by network_sink
from .base import ForwardTimestamps, Frame, Sink
from .media import (
    even_pad,
    ffmpeg_path,
    fit_into,
    import_av,
    is_url,
    open_video_encoder,
    output_extensions,
    to_yuv420,
)
from .paths import check_output, partial_path

log = logging.getLogger(__name__)

#: Time base for sources without timestamps (cameras): milliseconds, VFR by wall clock.
LIVE_TIME_BASE = Fraction(1, 1000)


def _disk_error(exc: OSError, path: Path) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full while writing {str(path)!r}")
    return OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}")


class VideoFileSink:
    """Encode frames into a video file, copying the input's audio.

    Written under a temporary name beside the target and renamed by ``close()``,
    so no truncated file ever sits under the final name.

    Args:
        path: output file; the extension picks the container.
        codec: ``h264`` (default), ``hevc``, ``av1``, ``vp9`` or an FFmpeg encoder name;
            NVENC is tried first when CUDA is present.
        crf, bitrate, preset: encoder quality options (``bitrate`` in bits/s).
        audio_from: media file whose audio streams are copied (or transcoded when
            the container cannot take them); None for no audio.
        fps: nominal frame rate (a rate-control hint; timestamps come from frames).
        inputs: paths that must never be overwritten.
        overwrite: replace an existing output.
        allow_nvenc: try NVENC (default: when CUDA is available).
        share_cpu: the model runs on the CPU: default to the encoder's cheapest preset.

    Raises:
        OutputError: the path is an input or exists (without ``overwrite``).
    """

    threaded = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
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
    ) -> None:
        self.path = check_output(Path(path), [Path(p) for p in inputs], overwrite=overwrite)
        ext = self.path.suffix.lower().lstrip(".")
        if not ext or ext not in output_extensions():
            raise OutputError(f"output {str(self.path)!r}: unknown video file type (use .mp4, .mkv, .mov or .webm)")
        # Checked now, not at the first frame: a bad output should cost no work.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _disk_error(exc, self.path) from exc
        self.tmp = partial_path(self.path)
        self.codec, self.crf, self.bitrate, self.preset = codec, crf, bitrate, preset
        self.audio_from = os.fspath(audio_from) if audio_from is not None else None
        self.fps = Fraction(fps).limit_denominator(1001) if fps else None
        self.allow_nvenc = allow_nvenc
        self.share_cpu = share_cpu
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._audio: _AudioCopier | None = None
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
            self._stream = open_video_encoder(
                self._container,
                self.codec,
                self._size[0],
                self._size[1],
                rate=rate,
                time_base=self._time_base,
                crf=self.crf,
                bitrate=self.bitrate,
                preset=self.preset,
                allow_nvenc=bool(self.allow_nvenc),
                share_cpu=self.share_cpu,
            )
            if self.audio_from is not None:
                self._audio = _AudioCopier(self._container, self.audio_from)
                if not len(self._audio):
                    self._audio.close()
                    self._audio = None
        except BaseException:
            self.abort()
            raise

    def write(self, frame: Frame) -> None:
        """Encode one frame (uint8 HxWx3 BGR); odd sizes are padded by one pixel."""
        if self._closed:
            raise OutputError(f"{str(self.path)!r} is already closed")
        if self._container is None:
            self._open(frame)
        image = even_pad(frame.image)
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
        vf = to_yuv420(image)
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
        os.replace(self.tmp, self.path)
        log.info("wrote %s (%d frames)", self.path, self.frames)

    def _discard(self) -> None:
        try:
            if self._container is not None:
                self._container.close()
        except Exception as exc:  # the output is being thrown away; report, don't mask the cause
            log.debug("closing a discarded output: %s", exc)
        self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Discard the output: nothing is written under the final name."""
        self._closed = True
        self._discard()

    def __enter__(self) -> VideoFileSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close()
        else:
            self.abort()


class NullSink:
    """Discards frames (benchmarks); counts them."""

    threaded = False

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


#: Keys of the window sink -> actions the pipeline applies (the rest are handled locally).
KEY_ACTIONS = {
    ord("q"): "quit",
    27: "quit",  # Esc
    ord("n"): "next_style",
    ord("p"): "prev_style",
    ord("+"): "strength_up",
    ord("="): "strength_up",  # '+' without shift on most layouts
    ord("-"): "strength_down",
    ord("_"): "strength_down",
    ord("t"): "toggle_smoothing",
}


class WindowSink:
    """Show frames in an OpenCV window and turn key presses into actions.

    Keys: q/Esc quit, n/p next/previous style, +/- strength, t smoothing on/off
    (applied by the pipeline through ``poll_actions``); s snapshot, space pause,
    f fullscreen, o overlay (handled here).

    Args:
        title: window title.
        snapshot_dir: folder for ``s`` snapshots.
        overlay: start with the fps/latency overlay shown.
        cv2_module: the OpenCV module (tests pass a fake to run headless).
    """

    threaded = False

    def __init__(
        self,
        title: str = "stylize-video",
        *,
        snapshot_dir: str | os.PathLike[str] = ".",
        overlay: bool = True,
        fullscreen: bool = False,
        cv2_module: Any = None,
    ) -> None:
        if cv2_module is None:
            import cv2 as cv2_module
        self.cv2 = cv2_module
        self.title = title
        self.snapshot_dir = Path(snapshot_dir)
        self.overlay = overlay
        self.fullscreen = fullscreen
        self.paused = False
        self.status = ""
        self.snapshots: list[Path] = []
        self._actions: deque[str] = deque()
        self._opened = False
        self._last: np.ndarray | None = None
        self._fps = 0.0
        self._latency = 0.0
        self._t_prev: float | None = None
        self._quit = False

    # ------------------------------------------------------------- pipeline hooks
    def set_status(self, text: str) -> None:
        """Text for the overlay (style, strength, smoothing), set by the pipeline."""
        self.status = text

    def poll_actions(self) -> list[str]:
        """Actions requested since the last call, oldest first."""
        out = list(self._actions)
        self._actions.clear()
        return out

    # ------------------------------------------------------------------- drawing
    def draw_overlay(self, image: np.ndarray) -> np.ndarray:
        """A copy of ``image`` with fps, latency and status drawn top-left."""
        cv2 = self.cv2
        out = image.copy()
        lines = [f"{self._fps:5.1f} fps  {self._latency * 1000:5.0f} ms"]
        if self.status:
            lines.append(self.status)
        if self.paused:
            lines.append("paused (space)")
        scale = max(0.4, min(out.shape[1], 1280) / 1600)
        for i, text in enumerate(lines):
            org = (8, int(22 * scale / 0.6) * (i + 1))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return out

    def _show(self) -> None:
        if self._last is None:
            return
        cv2 = self.cv2
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
            self._apply_fullscreen()
        cv2.imshow(self.title, self.draw_overlay(self._last) if self.overlay else self._last)

    def _apply_fullscreen(self) -> None:
        cv2 = self.cv2
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)

    # ---------------------------------------------------------------------- keys
    def handle_key(self, key: int) -> None:
        """React to one key code from ``cv2.waitKey`` (-1: none)."""
        if key < 0:
            return
        key &= 0xFF
        action = KEY_ACTIONS.get(key)
        if action is not None:
            if action == "quit":
                self._quit = True
                self.paused = False
            self._actions.append(action)
        elif key == ord(" "):
            self.paused = not self.paused
        elif key == ord("s"):
            self.snapshot()
        elif key == ord("f"):
            self.fullscreen = not self.fullscreen
            if self._opened:
                self._apply_fullscreen()
        elif key == ord("o"):
            self.overlay = not self.overlay

    def snapshot(self) -> Path | None:
        """Save the frame on screen (without overlay) as a fresh PNG in ``snapshot_dir``."""
        if self._last is None:
            return None
        path = save_snapshot(self.snapshot_dir, self._last)
        if path is not None:
            self.snapshots.append(path)
        return path

    def _window_closed(self) -> bool:
        try:
            return bool(self._opened and self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) < 1)
        except Exception:  # some backends raise once the window is gone
            return True

    # ----------------------------------------------------------------------- sink
    def write(self, frame: Frame) -> None:
        now = time.perf_counter()
        if self._t_prev is not None:
            dt = max(now - self._t_prev, 1e-6)
            # Smoothed so the overlay is readable; converges in ~10 frames.
            self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        self._t_prev = now
        if frame.captured:
            self._latency = now - frame.captured
        self._last = frame.image
        self._show()
        self.handle_key(self.cv2.waitKey(1))
        while self.paused and not self._quit:
            self._show()
            self.handle_key(self.cv2.waitKey(30))
            if self._window_closed():
                break
        if self._window_closed() and not self._quit:
            self._quit = True
            self._actions.append("quit")

    def close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                self.cv2.destroyWindow(self.title)
                self.cv2.waitKey(1)  # lets HighGUI process the destroy event
            except Exception as exc:  # closing a window the user already closed
                log.debug("destroying window: %s", exc)


def fresh_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never an existing file)."""
    if not path.exists():
        return path
    for i in range(1, 100_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputError(f"no free file name next to {str(path)!r}")


def save_snapshot(folder: Path, image: np.ndarray) -> Path | None:
    """Save ``image`` as a fresh ``snapshot-<time>.png`` in ``folder``; None if it cannot be written.

    A snapshot is a side request: failing it is a warning, never the end of the run
    and its recording.
    """
    from .images import write_image

    path = fresh_path(folder / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}.png")
    try:
        write_image(path, image)
    except StylizeError as exc:
        log.warning("snapshot not saved: %s", exc)
        return None
    log.info("snapshot saved to %s", path)
    return path


def has_display() -> bool:
    """Whether a window can be shown (a display on Linux; assumed elsewhere)."""
    import sys

    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


STREAM_SPECS = ("virtualcam",)


def open_sink(
    spec: str,
    *,
    inputs: Sequence[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    audio_from: str | os.PathLike[str] | None = None,
    codec: str = "h264",
    crf: int | None = None,
    bitrate: int | None = None,
    preset: str | None = None,
    fps: float | Fraction | None = None,
    cv2_module: Any = None,
    controls: Any = None,
    pace: bool | None = None,
    share_cpu: bool = False,
) -> Sink:
    """Open a sink from a command-line spec.

    ``window`` shows frames, ``null`` discards them, a streaming URL
    (rtmp/srt/udp/rtsp/http...) or ``virtualcam`` goes to
    :func:`stylize_video.io.streaming.open_streaming_sink`, anything else is a file.
    ``share_cpu`` (the model runs on the CPU) makes files default to a cheap encoder preset.

    Raises:
        OutputError: the output is not acceptable (exists, is an input, ...).
        StylizeError: streaming outputs are not available in this installation.
    """
    text = spec.strip()
    if text == "window":
        if cv2_module is None and not has_display():
            raise OutputError("-o window needs a display (none found: DISPLAY is not set)")
        return WindowSink(cv2_module=cv2_module)
    if text == "null":
        return NullSink()
    if is_url(text) or text in STREAM_SPECS or text.startswith("virtualcam:"):
        import importlib

        try:
            streaming = importlib.import_module(f"{__package__}.streaming")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.streaming":
                raise

            raise StylizeError(
                f"output {text!r}: streaming outputs are not available in this installation "
                "(module stylize_video.io.streaming is missing)"
            ) from exc
        sink: Sink = streaming.open_streaming_sink(
            text,
            audio_from=audio_from,
            codec=codec,
            crf=crf,
            bitrate=bitrate,
            preset=preset,
            fps=fps,
            controls=controls,
            pace=pace,
        )
        return sink
    if "://" in text:
        raise OutputError(f"output {text!r}: unsupported URL scheme")
    return VideoFileSink(
        text,
        codec=codec,
        crf=crf,
        bitrate=bitrate,
        preset=preset,
        audio_from=audio_from,
        fps=fps,
        inputs=inputs,
        overwrite=overwrite,
        share_cpu=share_cpu,
    )
