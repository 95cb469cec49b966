"""Low-latency H.264 network stream sink (rtmp, srt, udp, tcp, rtsp) through PyAV.

The pipeline only ever hands a frame over: ``write`` puts it into a latest-frame
slot (1-2 deep) and returns. A writer thread encodes and sends; when the server
goes away it tears the connection down and retries with exponential backoff,
while newer frames keep replacing older ones in the slot (counted as dropped),
so a dead server never blocks or stops the pipeline. ``write`` waits only to pace
a faster-than-real-time source (a file) to its own clock, as ``ffmpeg -re`` does.

Timestamps are the source's clock (``Frame.time``), so dropped frames leave real
gaps and audio copied from the input (``audio_from``) stays in sync.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from ..errors import OutputError
from .backoff import Backoff
from .base import Frame, Sink
from .media import fit_into, protocol_hint, tag_bt709, to_yuv420
from .pacing import Pacer
from .specs import STREAM_FORMATS  # container format per URL scheme

log = logging.getLogger(__name__)

_TIME_BASE = Fraction(1, 1000)  # milliseconds of source time: dropped frames leave gaps, not a sped-up stream


@dataclass
class StreamStats:
    """Counters of a streaming sink (read them any time; updated by the writer thread)."""

    sent: int = 0
    dropped: int = 0
    reconnects: int = 0
    errors: int = 0


def _default_url(url: str, scheme: str) -> str:
    # 1316 = 7 TS packets: fits one Ethernet MTU, the size every TS-over-UDP receiver expects.
    if scheme in ("udp", "srt") and "pkt_size=" not in url:
        return url + ("&" if "?" in url else "?") + "pkt_size=1316"
    return url


class NetworkStreamSink(Sink):
    """Encode frames as H.264 and push them to a streaming URL, reconnecting as needed.

    Args:
        url: ``rtmp://``, ``rtmps://``, ``srt://``, ``udp://``, ``tcp://`` or ``rtsp://``.
        fps: nominal frame rate (encoder rate control and GOP length).
        preset: x264 preset; ``ultrafast`` or ``veryfast`` keep encoding well under a frame.
        gop: keyframe interval in frames (default: one second's worth), so a viewer
            joining or recovering from loss waits at most that long.
        bitrate: target bits per second (default: x264's constant-quality mode).
        format: container override (default: by scheme, see :data:`STREAM_FORMATS`).
        queue_size: frames waiting for the writer (1-2); older ones are dropped.
        codec: encoder name; x264 gets ``tune=zerolatency`` and ``preset``, others only the GOP.
        backoff: reconnect delays (default 0.25 s doubling up to 8 s).
        on_sent: called from the writer thread with each frame once its packets
            were handed to the network (latency measurements).
        container_options: extra muxer/protocol options (e.g. ``{"rtsp_transport": "tcp"}``).
        audio_from: a media file whose audio is sent along, in step with ``Frame.time``
            (copied where the container allows, else transcoded); after a reconnect
            it resumes at the current time.
        pace: hold frames that come faster than real time (see :class:`~.pacing.Pacer`).
    """

    live = True

    def __init__(
        self,
        url: str,
        *,
        fps: float = 30.0,
        preset: str = "ultrafast",
        gop: int | None = None,
        bitrate: int | None = None,
        format: str | None = None,
        queue_size: int = 1,
        codec: str = "libx264",
        backoff: Backoff | None = None,
        on_sent: Callable[[Frame], None] | None = None,
        container_options: dict[str, str] | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        pace: bool = True,
    ) -> None:
        scheme = urlsplit(url).scheme.lower()
        if format is None and scheme not in STREAM_FORMATS:
            raise OutputError(f"unsupported stream URL {url!r} (schemes: {', '.join(sorted(STREAM_FORMATS))})")
        if not 1 <= queue_size <= 2:
            raise ValueError(f"queue_size must be 1 or 2, got {queue_size}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.url = _default_url(url, scheme)
        self.format = format or STREAM_FORMATS[scheme]
        self.fps = float(fps)
        self.preset = preset
        self.gop = gop if gop is not None else max(1, round(self.fps))
        self.bitrate = bitrate
        self.codec = codec
        self.container_options = dict(container_options or {})
        if self.format == "rtsp":
            # TCP interleaving: no firewall/NAT trouble and no UDP loss for the stream's setup.
            self.container_options.setdefault("rtsp_transport", "tcp")
        self.on_sent = on_sent
        self.audio_from = os.fspath(audio_from) if audio_from is not None else None
        self.pacer: Pacer | None = Pacer() if pace else None
        self.stats = StreamStats()
        self._backoff = backoff or Backoff()
        self._slot: collections.deque[Frame] = collections.deque(maxlen=queue_size)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._size: tuple[int, int] | None = None  # (width, height) fixed by the first frame
        self._clock_offset = 0.0  # input timestamp of frame.time 0, in seconds
        self._fatal: OutputError | None = None  # set by the writer when retrying cannot help
        self.connected = threading.Event()

    # ------------------------------------------------------------ pipeline side
    def write(self, frame: Frame) -> None:
        """Hand a frame over (never waits for the network; waits only to pace, if on); a full slot drops its oldest."""
        if self._closed:
            raise OutputError(f"stream {self.url!r} is closed")
        if self._fatal is not None:
            raise self._fatal
        if self._size is None:
            h, w = frame.image.shape[:2]
            # 4:2:0 chroma needs even dimensions; drop the odd row/column rather than fail.
            self._size = (w - w % 2, h - h % 2)
            if min(self._size) < 2:
                raise OutputError(f"frame {w}x{h} is too small to encode")
            if frame.pts is not None and frame.time_base is not None:
                # Audio packets carry the input's own timestamps, which need not start at 0
                # (.ts/.mts files rarely do): put the video on the same clock.
                self._clock_offset = float(frame.pts * frame.time_base) - frame.time
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stream-writer", daemon=True)
            self._thread.start()
        if self.pacer is not None:
            self.pacer.wait(frame.time, frame.cut)
        with self._cond:
            if self.pacer is not None:
                # A file must not lose frames to a momentarily busy encoder: wait up to one frame
                # period for room (bounded, so a dead server still never stalls the pipeline).
                self._cond.wait_for(lambda: len(self._slot) < (self._slot.maxlen or 1), timeout=1.0 / self.fps)
            if len(self._slot) == self._slot.maxlen:
                self.stats.dropped += 1
            self._slot.append(frame)
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is waiting, flush the encoder and disconnect (waits at most ``timeout`` s)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("stream writer for %s did not stop within %.1f s (network stalled?)", self.url, timeout)

    def __enter__(self) -> NetworkStreamSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- writer side
    def _take(self) -> Frame | None:
        with self._cond:
            while not self._slot and not self._stop.is_set():
                self._cond.wait()
            frame = self._slot.popleft() if self._slot else None
            self._cond.notify_all()  # room in the slot for a waiting write()
            return frame

    def _run(self) -> None:
        import av

        out: Any = None
        stream: Any = None
        audio: Any = None
        last_pts = -1
        failures = 0
        try:
            while (frame := self._take()) is not None:
                try:
                    now = frame.time + self._clock_offset  # on the input's clock, like its audio
                    if out is None:
                        out, stream, audio = self._open(av, now)
                        last_pts = -1
                    pts = max(last_pts + 1, round(now * 1000))
                    self._send(av, out, stream, frame, pts)
                    last_pts = pts
                    if audio is not None:
                        audio.mux_until(now + 1.0 / self.fps)
                except _PERMANENT as exc:
                    # A missing protocol/encoder/muxer in this FFmpeg build: retrying cannot help.
                    self._fatal = OutputError(f"cannot stream to {self.url!r}: {exc}{protocol_hint(exc)}")
                    log.error("%s", self._fatal)
                    _abandon(out, audio)
                    out = stream = audio = None
                    break
                except (OSError, av.FFmpegError) as exc:
                    # PyAV connects on the first mux, so refusals surface here too.
                    self.stats.errors += 1
                    self.stats.dropped += 1
                    self.connected.clear()
                    _abandon(out, audio)
                    out = stream = audio = None
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "stream %s: %s; reconnecting with backoff", self.url, exc)
                    if self._backoff.wait(self._stop):
                        break
                    self.stats.reconnects += 1
                    continue
                if failures:
                    log.warning("stream %s: reconnected after %d failed attempts", self.url, failures)
                    failures = 0
                self._backoff.reset()
                self.connected.set()
                self.stats.sent += 1
                if self.on_sent is not None:
                    self.on_sent(frame)
        finally:
            if out is not None:
                try:
                    for packet in stream.encode():
                        out.mux(packet)
                    if audio is not None:
                        audio.close()
                    out.close()
                except (OSError, av.FFmpegError) as exc:
                    log.warning("stream %s: error while finishing: %s", self.url, exc)
                    _abandon(out, audio)
            self.connected.clear()

    def _open(self, av: Any, now: float) -> tuple[Any, Any, Any]:
        """Container, video stream and audio copier (None without audio) for a new connection."""
        assert self._size is not None
        out = av.open(self.url, "w", format=self.format, options=self.container_options)
        audio: Any = None
        try:
            opts = {"g": str(self.gop), "bf": "0"}  # B-frames wait for future frames: latency
            if self.codec == "libx264":
                opts.update(tune="zerolatency", preset=self.preset)  # no lookahead, no frame threads
            stream = out.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001), options=opts)
            stream.width, stream.height = self._size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = _TIME_BASE
            tag_bt709(stream.codec_context)  # the matrix _send converts with, as files do
            if self.bitrate:
                stream.bit_rate = int(self.bitrate)
            if self.audio_from is not None:
                from .audio import AudioCopier

                audio = AudioCopier(out, self.audio_from)
                if len(audio):
                    audio.skip_until(now)  # a reconnect resumes the sound where the picture is
                else:
                    audio.close()
                    audio = None
        except BaseException:
            _abandon(out, audio)
            raise
        return out, stream, audio

    def _send(self, av: Any, out: Any, stream: Any, frame: Frame, pts: int) -> None:
        assert self._size is not None
        w, h = self._size
        # A live stream cannot change size; later frames (e.g. after a source reconnect) are fitted in.
        image = frame.image
        ih, iw = image.shape[:2]
        if (iw - iw % 2, ih - ih % 2) != (w, h):  # as the first frame's size was made even
            image = fit_into(image, (w, h))
        vf = to_yuv420(image, (w, h))
        vf.pts, vf.time_base = pts, _TIME_BASE
        for packet in stream.encode(vf):
            out.mux(packet)


def _permanent_errors() -> tuple[type[BaseException], ...]:
    import av.error

    names = ("ProtocolNotFoundError", "EncoderNotFoundError", "MuxerNotFoundError", "OptionNotFoundError")
    return tuple(getattr(av.error, n) for n in names if hasattr(av.error, n))


_PERMANENT = _permanent_errors()


def _abandon(container: Any, audio: Any = None) -> None:
    """Close a container whose connection failed; its own errors are expected and ignored."""
    for part in (audio, container):
        if part is None:
            continue
        try:
            part.close()
        except Exception as exc:  # the peer is gone: closing may raise anything FFmpeg reports
            log.debug("ignoring error while closing a failed stream: %s", exc)
