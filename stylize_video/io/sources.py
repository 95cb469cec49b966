"""Frame sources: video files and URLs (PyAV), cameras (OpenCV), a synthetic scene.

Each source is an iterable of :class:`Frame` with ``close()``; it never drops
frames itself. Live sources (``live = True``) may be read faster than they are
consumed; the pipeline decides which stale frames to drop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from .base import BestEffortTimestamps, Frame, Source
from .media import import_av, is_url, open_input, rotate
from .specs import SYNTHETIC_SPEC, InputSpec, SourceOptions, is_live_url

log = logging.getLogger(__name__)


class VideoFileSource(Source):
    """Decode a video file or URL with PyAV (threaded decoding).

    Frames keep the source's pts and time base, so variable frame rate survives;
    rotation metadata is applied to the pixels. Corrupt packets are skipped and
    counted in ``corrupt``. Out-of-order timestamps (broken muxing) are repaired as
    FFmpeg's best-effort timestamp does (:class:`BestEffortTimestamps`), with one
    warning; a file that ends clearly before its header says (cut short) is read to
    where it ends, with one warning, and ``truncated`` set.

    Args:
        path: file path or URL (anything FFmpeg reads).
        stream: index among the video streams.
        options: FFmpeg demuxer options (e.g. ``{"rtsp_transport": "tcp"}``).

    Raises:
        InputError: missing, unreadable, or without a video stream.
    """

    live = False

    def __init__(self, path: str | os.PathLike[str], stream: int = 0, options: dict[str, str] | None = None) -> None:
        self.path = os.fspath(path)
        self.container = open_input(self.path, options)
        if len(self.container.streams.video) <= stream:
            self.container.close()
            raise InputError(f"input {self.path!r} has no video stream")
        self.stream = self.container.streams.video[stream]
        # Frame threads decode several frames at once: the biggest single win for h264/hevc.
        self.stream.thread_type = "AUTO"
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.fps: Fraction = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        self.width: int = self.stream.codec_context.width
        self.height: int = self.stream.codec_context.height
        self.live = is_live_url(self.path)
        self.corrupt = 0
        self.truncated = False
        self._start: int | None = None
        self._demux_failed = False
        # Raw .h264/.hevc carry no pts, joined .ts files restart theirs and badly muxed
        # B-frames bring them out of order: without this a 12-frame raw clip came out
        # 0.04 s long, a joined one squashed its second half and a reordered one came
        # out twice as long as its audio.
        self._pts = BestEffortTimestamps(round(1 / (float(self.fps) * self.time_base)))
        self._warned_repair = False
        self.frame_count = self._count_frames()
        self.has_audio = len(self.container.streams.audio) > 0
        self.audio_path = self.path if self.has_audio else None
        self.inputs = () if is_url(self.path) else (self.path,)

    @property
    def duration(self) -> float | None:
        """Seconds, from the stream or container header (None when unknown)."""
        if self.stream.duration is not None and self.time_base:
            return float(self.stream.duration * self.time_base)
        if self.container.duration is not None:
            return self.container.duration / 1_000_000
        return None

    def _count_frames(self) -> int | None:
        """Frames in the header, or an estimate from duration and rate (None when unknown)."""
        if self.stream.frames:
            return int(self.stream.frames)
        d = self.duration
        return math.ceil(d * float(self.fps)) if d else None

    def _packets(self) -> Iterator[Any]:
        av = import_av()
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                # A damaged container: count it and stop rather than loop on the same error.
                self.corrupt += 1
                self._demux_failed = True
                log.warning("%s: demuxing stopped early: %s", self.path, exc)
                return
            yield packet

    def __iter__(self) -> Iterator[Frame]:
        av = import_av()
        index = 0
        # A file's frame waits for the next one (decoded, not converted): a lone garbage
        # timestamp is told from a real gap or jump by where the next frame lands.
        held: Any = None
        for packet in self._packets():
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self.corrupt += 1
                log.warning("%s: skipped a corrupt packet at pts %s: %s", self.path, packet.pts, exc)
                continue
            for vf in frames:
                if getattr(vf, "decode_error_flags", 0):
                    self.corrupt += 1
                if self.live:
                    yield self._to_frame(vf, index, None)
                    index += 1
                    continue
                if held is not None:
                    yield self._to_frame(held, index, vf)
                    index += 1
                held = vf
        if held is not None:
            yield self._to_frame(held, index, None)
            index += 1
        self._check_complete(index)

    def _check_complete(self, decoded: int) -> None:
        """Warn (once) and set ``truncated`` when the file clearly ends before its header says.

        Compares where the last decoded frame ends with where the header says the video
        ends, so it holds after a seek too (``batch`` reads segments). Declared lengths
        are estimates for many containers (VFR, a container duration set by a longer
        audio track, none at all in raw streams), so only a clear shortfall counts.
        """
        if self.live or self._pts.last is None:
            return
        tb = float(self.time_base)
        step = 1 / float(self.fps)
        if self.stream.duration is not None:
            # The stream's own length: exact in MP4/MOV, from the last pts in MPEG-TS.
            start = self.stream.start_time if self.stream.start_time is not None else self._start or 0
            declared_end = (start + self.stream.duration) * tb
            margin = max(3 * step, 0.5, 0.01 * self.stream.duration * tb)
        elif self.container.duration is not None:
            # The container's (Matroska, WebM): may come from a longer audio track.
            start_s = (self.container.start_time or 0) / 1_000_000
            declared_end = start_s + self.container.duration / 1_000_000
            margin = max(3 * step, 1.0, 0.1 * self.container.duration / 1_000_000)
        else:
            return
        if self._demux_failed:
            margin = 2 * step  # the demuxer itself hit damage: any clear gap is truncation
        decoded_end = self._pts.last * tb + step
        if declared_end - decoded_end > margin:
            self.truncated = True
            expected = self.frame_count or decoded
            log.warning("%s: the file ends early (truncated?): decoded %d of ~%d frames", self.path, decoded, expected)

    def _to_frame(self, vf: Any, index: int, ahead: Any) -> Frame:
        image = vf.to_ndarray(format="bgr24")
        image = rotate(image, getattr(vf, "rotation", 0) or 0)
        tb = vf.time_base or self.time_base
        jumps = self._pts.jumps
        pts = self._pts(vf.pts, vf.dts, None if ahead is None else (ahead.pts, ahead.dts))
        if self._pts.jumps != jumps:
            log.info("%s: timestamps jump back at frame %d; continuing one frame later", self.path, index)
        if self._pts.repaired and not self._warned_repair:
            self._warned_repair = True
            log.warning(
                "%s: frame timestamps are out of order (badly muxed file); using best-effort timestamps%s",
                self.path,
                " from the dts" if self._pts.follows_dts else "",
            )
        if self._start is None:
            self._start = pts
        return Frame(
            image=image,
            index=index,
            pts=pts,
            time_base=tb,
            time=float((pts - self._start) * tb),
            captured=time.perf_counter(),
        )

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own console logging (a missing camera prints a dozen lines);
    our error message says what happened instead."""
    import cv2

    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    previous = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(previous)


class CameraSource(Source):
    """A camera through OpenCV's ``VideoCapture``.

    Args:
        device: camera index or device path (``/dev/video2``).
        width, height, fps: requested capture format (the driver may pick another;
            the actual one is in ``width``/``height``/``fps`` after opening).
        max_failures: consecutive failed reads that mean "unplugged".
        capture_factory: builds the capture object (tests pass a fake).

    Raises:
        InputError: the camera does not open.
    """

    live = True

    def __init__(
        self,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        max_failures: int = 10,
        capture_factory: Callable[[int | str], Any] | None = None,
    ) -> None:
        import cv2

        self.device = device
        self.max_failures = max_failures
        factory = capture_factory or cv2.VideoCapture
        with quiet_opencv():
            self._cap = factory(device)
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError(f"camera {device!r} did not open (missing, busy, or no permission)")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        # Keep the driver's own queue short: old frames there are latency we cannot drop.
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.fps = Fraction(float(self._cap.get(cv2.CAP_PROP_FPS) or fps or 30)).limit_denominator(1001)
        # read() and release() must not overlap: a capture released under a running read
        # can crash the driver. close() may come from another thread than the reader.
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        failures = 0
        index = 0
        t0: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    return
                ok, image = self._cap.read()
            now = time.perf_counter()
            if not ok or image is None:
                failures += 1
                if failures >= self.max_failures:
                    if index == 0:
                        raise InputError(f"camera {self.device!r} opened but delivered no frames")
                    raise InputError(f"camera {self.device!r} stopped delivering frames after {index} (unplugged?)")
                time.sleep(0.01)
                continue
            failures = 0
            if t0 is None:
                t0 = now
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            yield Frame(image=image, index=index, pts=None, time_base=None, time=now - t0, captured=now)
            index += 1

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        if self._lock.acquire(timeout=timeout):
            try:
                self._cap.release()
            finally:
                self._lock.release()
        else:  # a read stalled in the driver: leave the capture to the process exit
            log.warning("camera %r: a read did not return within %.0f s; not releasing it", self.device, timeout)

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyntheticSource(Source):
    """A built-in animated scene: gradients, moving discs and a sweeping bar.

    Deterministic for a given size and frame index, so tests and demos need no media.

    Args:
        width, height: frame size.
        fps: nominal rate (pts are ``index`` in units of ``1/fps``).
        frames: number of frames (None: endless).
        live: pace frames in real time and mark the source live.
    """

    fps: Fraction

    def __init__(
        self, width: int = 640, height: int = 360, fps: float = 30.0, frames: int | None = 90, live: bool = False
    ) -> None:
        if width < 2 or height < 2 or fps <= 0:
            raise InputError(f"synthetic source needs a size >= 2x2 and fps > 0, got {width}x{height}@{fps}")
        self.width, self.height = width, height
        self.fps = Fraction(fps).limit_denominator(1001)
        self.frame_count = frames
        self.live = live
        # Each sky channel varies along one axis only: computed per row or per column and
        # broadcast, a frame costs a copy instead of three full-frame sin/stack passes
        # (21 ms at 640x480 on a 2-core CPU: most of a core at 30 fps, which a live
        # run's decode thread took from the network a real camera would not).
        self._u = (np.arange(width, dtype=np.float32) / max(width - 1, 1))[None, :]
        self._v = (np.arange(height, dtype=np.float32) / max(height - 1, 1))[:, None]
        self._blue = (((0.55 + 0.35 * self._v) * 255).clip(0, 255)).astype(np.uint8)

    def render(self, index: int) -> np.ndarray:
        """The scene at frame ``index`` as uint8 HxWx3 BGR."""
        import cv2

        t = index / float(self.fps)
        u, v = self._u, self._v
        w, h = self.width, self.height
        img = np.empty((h, w, 3), np.uint8)
        img[:, :, 0] = self._blue
        green = 0.35 + 0.25 * np.sin(2.0 * np.pi * (u * 0.7 + 0.05 * t))
        img[:, :, 1] = ((green * 255).clip(0, 255)).astype(np.uint8)
        red = 0.25 + 0.5 * (1 - v) * (0.5 + 0.5 * np.sin(t * 0.8))
        img[:, :, 2] = ((red * 255).clip(0, 255)).astype(np.uint8)
        r = max(2, min(w, h) // 8)
        for k, color in enumerate([(40, 200, 250), (230, 90, 60), (90, 230, 120)]):
            phase = t * (0.6 + 0.25 * k) + k * 2.1
            cx = int(w * (0.5 + 0.38 * math.sin(phase)))
            cy = int(h * (0.5 + 0.32 * math.cos(phase * 1.3)))
            cv2.circle(img, (cx, cy), r + k * r // 3, color, thickness=-1, lineType=cv2.LINE_AA)
        x = int((t * w * 0.25) % w)
        cv2.rectangle(img, (x, int(h * 0.78)), (min(w - 1, x + w // 6), h - 1), (30, 30, 30), thickness=-1)
        return img

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        index = 0
        tb = Fraction(1) / self.fps
        while self.frame_count is None or index < self.frame_count:
            if self.live:
                due = start + index * float(tb)
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            image = self.render(index)
            yield Frame(
                image=image,
                index=index,
                pts=index,
                time_base=tb,
                time=float(index * tb),
                captured=time.perf_counter(),
            )
            index += 1

    def close(self) -> None:
        pass

    def __enter__(self) -> SyntheticSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_camera(spec: InputSpec, options: SourceOptions) -> CameraSource:
    """Registry factory: ``0``, ``1``, ... or ``/dev/videoN``."""
    device: int | str = int(spec.text) if spec.text.isdigit() else spec.text
    return CameraSource(device, options.width, options.height, options.fps, capture_factory=options.capture_factory)


def open_synthetic(spec: InputSpec, options: SourceOptions) -> SyntheticSource:
    """Registry factory: ``synthetic[:WxH][@FPS][:SECONDSs][:live]`` (3 s, 640x360 @ 30 by default).

    ``:live`` paces the scene in real time and marks it live: a stand-in for a camera
    (stale frames dropped, adaptive resolution on by default).
    """
    m = SYNTHETIC_SPEC.match(spec.text)
    if m is None:
        raise InputError(
            f"input {spec.text!r}: use synthetic[:WxH][@FPS][:SECONDSs][:live], e.g. synthetic:640x360@30:3s"
        )
    w = int(m.group(1) or options.width or 640)
    h = int(m.group(2) or options.height or 360)
    rate = float(m.group(3) or options.fps or 30)
    seconds = float(m.group(4)) if m.group(4) else 3.0
    return SyntheticSource(w, h, rate, frames=max(1, round(seconds * rate)), live=m.group(5) is not None)


def open_video_file(spec: InputSpec, options: SourceOptions) -> VideoFileSource:
    """Registry factory: a video file or a URL FFmpeg reads (the fallback kind)."""
    return VideoFileSource(spec.text)


def open_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    capture_factory: Callable[[int | str], Any] | None = None,
) -> Source:
    """Open a source from a command-line spec: see :func:`stylize_video.io.registry.open_source`."""
    from .registry import open_source as _open

    return _open(spec, width=width, height=height, fps=fps, capture_factory=capture_factory)
