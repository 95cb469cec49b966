"""A live network stream as input (rtsp, udp, srt, tcp, http, rtmp) through PyAV, with reconnect.

When the stream breaks or ends (a live server that restarts, a camera that
reboots), the source reopens it with exponential backoff and marks the first
frame after a reconnect ``cut=True`` so temporal smoothers start afresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from .backoff import Backoff
from .base import Frame, Source
from .media import protocol_hint
from .specs import LIVE_SCHEMES, InputSpec, SourceOptions, is_live_url

log = logging.getLogger(__name__)

#: Schemes this source reads; http(s) may also be a plain file, so it is opt-in (construct the source yourself).
NETWORK_SCHEMES = (*LIVE_SCHEMES, "http", "https")


class NetworkSource(Source):
    """Frames from a network stream; ``live`` (the pipeline may drop stale frames).

    Connects at construction, so a wrong URL fails at once (:class:`InputError`);
    later failures are retried with backoff, for ever unless ``max_reconnects`` is set.

    Args:
        url: stream URL, e.g. ``rtsp://cam.local/stream``, ``udp://127.0.0.1:5000``.
        format: demuxer override (e.g. ``mpegts`` for a raw ``tcp://`` stream).
        timeout: seconds to wait for a connection or for data before giving up on it.
        max_reconnects: consecutive failed attempts before iteration stops with
            :class:`InputError` (None: keep trying until closed).
        backoff: reconnect delays (default 0.25 s doubling up to 8 s).
        options: extra demuxer/protocol options.

    Attributes:
        reconnects: successful reconnections so far.
    """

    live = True

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        timeout: float = 5.0,
        max_reconnects: int | None = None,
        backoff: Backoff | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in NETWORK_SCHEMES:
            raise InputError(f"not a network stream URL: {url!r} (schemes: {', '.join(NETWORK_SCHEMES)})")
        self.url = url
        self.format = format
        self.timeout = timeout
        self.max_reconnects = max_reconnects
        # No "fflags=nobuffer": it throws away the packets read while probing the stream.
        self.options: dict[str, str] = {}
        if scheme in ("rtsp", "rtsps"):
            self.options["rtsp_transport"] = "tcp"  # no UDP loss on a busy link; works through NAT
        if scheme == "udp":
            self.options["overrun_nonfatal"] = "1"  # a slow consumer skips packets instead of failing
        self.options.update(options or {})
        self._backoff = backoff or Backoff()
        self._stop = threading.Event()
        self.reconnects = 0
        # The clock starts at the first frame, not here: opening the model and the outputs
        # takes seconds, which a recording would otherwise start with.
        self._t0: float | None = None
        self._iterating = False
        self._container: Any = self._open()
        stream = self._container.streams.video[0]
        self.width: int = stream.codec_context.width
        self.height: int = stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        self.fps: float = float(rate) if rate else 30.0

    def _open(self) -> Any:
        import av

        try:
            container = av.open(self.url, format=self.format, options=self.options, timeout=self.timeout)
        except (OSError, av.FFmpegError) as exc:
            raise InputError(f"cannot open stream {self.url!r}: {exc}{protocol_hint(exc)}") from exc
        if not container.streams.video:
            container.close()
            raise InputError(f"stream {self.url!r} has no video")
        return container

    def __iter__(self) -> Iterator[Frame]:
        import av

        index, cut = 0, False
        self._iterating = True
        try:
            while not self._stop.is_set():
                if self._container is None:  # iterated again after an earlier loop ended
                    if not self._reconnect():
                        return
                    cut = True
                container = self._container
                try:
                    for vf in container.decode(video=0):
                        now = time.perf_counter()
                        if self._t0 is None:
                            self._t0 = now
                        yield Frame(
                            vf.to_ndarray(format="bgr24"),
                            index,
                            time=now - self._t0,  # one clock across reconnects
                            captured=now,
                            cut=cut,
                        )
                        if cut or index == 0:
                            self._backoff.reset()  # only a stream that delivers counts as recovered
                        index, cut = index + 1, False
                        if self._stop.is_set():
                            return
                    log.warning("stream %s ended; reconnecting", self.url)
                except (OSError, av.FFmpegError) as exc:
                    log.warning("stream %s failed (%s); reconnecting", self.url, exc)
                finally:
                    container.close()
                    self._container = None
                if not self._reconnect():
                    return
                cut = True
        finally:
            if self._container is not None:
                self._container.close()
                self._container = None

    def _reconnect(self) -> bool:
        failures = 0
        while not self._backoff.wait(self._stop):
            try:
                self._container = self._open()
            except InputError as exc:
                failures += 1
                log.debug("reconnect %d to %s failed: %s", failures, self.url, exc)
                if self.max_reconnects is not None and failures >= self.max_reconnects:
                    raise InputError(f"stream {self.url!r} lost; {failures} reconnect attempts failed") from exc
                continue
            self.reconnects += 1
            log.warning("stream %s: reconnected", self.url)
            return True
        return False

    def close(self) -> None:
        """Stop iterating (within ``timeout``) and release the connection."""
        self._stop.set()
        # While another thread iterates, that thread closes the container (PyAV objects are not thread-safe).
        if not self._iterating and self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> NetworkSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_network_source(spec: InputSpec, options: SourceOptions) -> NetworkSource:
    """Registry factory: a live stream URL (reconnects with backoff, marks cuts)."""
    return NetworkSource(spec.text)


__all__ = ["LIVE_SCHEMES", "NETWORK_SCHEMES", "NetworkSource", "is_live_url", "open_network_source"]
