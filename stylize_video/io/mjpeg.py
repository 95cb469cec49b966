"""MJPEG-over-HTTP preview server: a sink any browser or OBS browser/media source can show.

Endpoints: ``/`` (a page with the stream and a control panel: style list, blend
slider, strength, smoothing, snapshot),
``/stream.mjpg`` (``multipart/x-mixed-replace``), ``/snapshot.jpg`` (latest frame),
``/control`` (GET: JSON state; POST ``?style=next|prev|NAME&blend=A=0.7+B=0.3&morph=0.5&strength=0.7&smooth=toggle|on|off&snapshot=1``),
``/state`` (the state alone: style, blend, styles, strength, smoothing, scale...),
``/health`` (``ok``: the server is up; no token needed).

Access (a camera feed is private, and the controls write snapshots to disk):

* **Host check** against DNS rebinding: a request whose ``Host`` is not this
  server (the bound address or a loopback name, with its port, or a name in
  ``allow_hosts``) gets 403. A page on ``evil.example`` that re-points its name
  at 127.0.0.1 still sends ``Host: evil.example``.
* **Token** when bound to a non-loopback address: every endpoint but ``/health``
  needs ``?token=...`` (the URL is logged once at start), the cookie the first
  authorized response sets, or an ``X-Stylize-Token``/``Authorization: Bearer`` header.
* **Origin check** for ``POST /control``: only the preview page itself may post.

Hostile or broken clients (resets, garbage headers, slow senders) cost one debug
log line each, never a traceback, and never hold a legitimate viewer back.

Latest-frame semantics: ``write`` only stores a reference to the newest frame and
notifies a condition variable; it never encodes or touches a socket. Each viewer
has its own thread that waits for a frame newer than the one it sent last, so a
slow viewer skips frames instead of stalling the pipeline or other viewers. Each
frame is JPEG-encoded at most once, by the first viewer thread that needs it.

This module holds that frame hub and the server's lifecycle (:class:`MjpegSink`);
the HTTP side (routes, admission, streaming, error handling) is in
:mod:`.preview_handler`, the page in :mod:`.preview_page`, the Host and token
checks in :mod:`.preview_access`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from ..controls import LiveControls
from ..errors import OutputError
from .base import Frame, Sink
from .pacing import Pacer
from .preview_access import (
    bracket,
    ip_address_of,
    is_loopback,
    is_unspecified,
    lan_address,
    own_names,
    parse_allow_hosts,
    split_host,
    valid_token,
)
from .preview_handler import PreviewServer, handler_for

log = logging.getLogger(__name__)


class MjpegSink(Sink):
    """Serve the output as MJPEG over HTTP (binds at construction so errors show before the model loads).

    Args:
        host: interface to bind; ``127.0.0.1`` unless the user asks for another.
        port: TCP port; 0 picks a free one (see :attr:`port`).
        quality: JPEG quality 1..100.
        controls: where ``POST /control`` records requests; None disables the endpoint.
        on_sent: called with each frame the first time it is written to a viewer
            (latency measurements); runs on a viewer thread.
        send_timeout: seconds a viewer's socket may block before it is dropped.
        send_buffer: kernel send buffer per viewer in bytes (None: the OS's, which
            autotunes to megabytes on Linux). Small keeps a slow viewer's backlog, and
            so its delay, to a frame or two: the rest is skipped at the source instead.
        pace: hold frames to the source's timestamps (for files; see :class:`~.pacing.Pacer`).
        allow_hosts: extra names the server may be reached by (``Host`` header), beyond
            the bound address and loopback names: ``"mybox.lan"`` (any port, e.g. behind
            a reverse proxy), ``"mybox.lan:8080"`` (that port only) or ``"*"`` (any).
        token: the access token; None: a random one (``secrets.token_urlsafe``), required
            only when bound to a non-loopback address. A given token is required on any address.

    Raises:
        OutputError: the address cannot be bound, or an ``allow_hosts`` entry or the token is malformed.
    """

    live = True
    snapshot_wait = 1.0  # seconds /snapshot.jpg waits for a first frame before answering 503
    request_timeout = 10.0  # seconds a client may take to send its request line and headers

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        quality: int = 80,
        controls: LiveControls | None = None,
        on_sent: Callable[[Frame], None] | None = None,
        send_timeout: float = 10.0,
        send_buffer: int | None = 256 * 1024,
        pace: bool = False,
        allow_hosts: Iterable[str] = (),
        token: str | None = None,
    ) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
        self.allow_hosts = parse_allow_hosts(allow_hosts)
        if token is not None and not valid_token(token):
            raise OutputError("the preview token must be 16..200 characters of A-Z a-z 0-9 - _ . ~")
        self.quality = quality
        self.controls = controls
        self.on_sent = on_sent
        self.send_timeout = send_timeout
        self.send_buffer = send_buffer
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._seq = 0  # number of the newest frame; viewers remember the last one they sent
        self._closed = False
        self._jpeg_lock = threading.Lock()
        # The last few encoded frames: with hundreds of viewers, some threads still ask
        # for the previous frame after the next one was encoded; a one-entry cache
        # re-encoded it for them, alternating, hundreds of times a second.
        self._jpegs: dict[int, bytes] = {}
        self._reported_seq = 0
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Condition()
        self.frames_encoded = 0
        self.pacer: Pacer | None = Pacer() if pace else None
        # Connections still sending their request, and when they must have finished
        # (slowloris): the server loop closes them after request_timeout.
        self._pending: dict[socket.socket, float] = {}
        try:
            self._server = PreviewServer((host, port), handler_for(self))
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputError(f"cannot serve MJPEG on {host}:{port}: {reason}") from exc
        self._server.sink = self
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._wildcard = is_unspecified(self.host)
        self.token_required = token is not None or not is_loopback(self.host)
        self.token: str | None = (token or secrets.token_urlsafe(24)) if self.token_required else None
        self.cookie_name = f"stylize_token_{self.port}"  # per port: two previews on one host keep apart
        self._names = own_names(self.host, self._wildcard)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="mjpeg-server", daemon=True
        )
        self._thread.start()
        log.info("MJPEG preview at %s", self.url)
        if self.token_required:
            # The only place the token is shown: whoever can read this log can watch.
            log.warning(
                "MJPEG preview on %s needs its token: open %s%s",
                self.url,
                self.access_url,
                " (it can also change styles and take snapshots)" if controls is not None else "",
            )

    @property
    def url(self) -> str:
        return f"http://{bracket(self.host)}:{self.port}/"

    @property
    def access_url(self) -> str:
        """The URL to open: with ``?token=...`` where one is required, and a reachable host for 0.0.0.0."""
        if not self.token_required:
            return self.url
        host = lan_address() if self._wildcard else self.host
        return f"http://{bracket(host)}:{self.port}/?token={self.token}"

    def host_allowed(self, value: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (None: no header, a non-browser client)."""
        if value is None:
            return True  # DNS rebinding needs a browser, and every browser sends Host
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        if (name, None) in self.allow_hosts or (name, port) in self.allow_hosts or ("*", None) in self.allow_hosts:
            return True
        if (port or 80) != self.port:
            return False
        if name in self._names:
            return True
        ip = ip_address_of(name)
        # An IP literal cannot be a rebinding attack (the attacker's page would have to
        # be served from that address): any loopback one, any one on a wildcard bind.
        return ip is not None and (ip.is_loopback or self._wildcard)

    def token_valid(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is this server's token (always true when none is required)."""
        if not self.token_required:
            return True
        if not candidate or self.token is None:
            return False
        return secrets.compare_digest(candidate.encode("utf-8", "replace"), self.token.encode())

    @property
    def viewers(self) -> int:
        """Open viewer connections (streams and pending requests)."""
        with self._clients_lock:
            return len(self._clients)

    # ------------------------------------------------------------ pipeline side
    def write(self, frame: Frame) -> None:
        """Publish a frame (keeps a reference; the caller must not modify the image afterwards)."""
        if self._closed:
            raise OutputError(f"MJPEG server {self.url} is closed")
        if self.pacer is not None:  # a file plays at its own speed, not the model's
            self.pacer.wait(frame.time, frame.cut)
        with self._cond:
            self._frame = frame
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop serving, end every viewer's stream and release the port."""
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        # Viewers blocked in send() on a stalled socket would hold their threads forever.
        with self._clients_lock:
            for sock in list(self._clients):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(5.0)
        # Viewer threads are daemons (never joined by the server): wait for them to leave.
        with self._clients_lock:
            if not self._clients_lock.wait_for(lambda: not self._clients, timeout=5.0):
                log.warning("%d MJPEG viewer(s) still connected after close", len(self._clients))

    def __enter__(self) -> MjpegSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- viewer side
    def wait_newer(self, seen: int, timeout: float) -> tuple[int, Frame | None]:
        """Block until a frame newer than ``seen`` exists (or timeout/close); returns (seq, frame)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seen or self._closed, timeout)
            return self._seq, self._frame

    def jpeg(self, seq: int, frame: Frame) -> bytes:
        """The JPEG of frame ``seq``, encoded once however many viewers ask."""
        with self._jpeg_lock:
            data = self._jpegs.get(seq)
            if data is None:
                import cv2

                ok, buf = cv2.imencode(
                    ".jpg", np.ascontiguousarray(frame.image), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
                )
                if not ok:
                    raise OutputError(f"JPEG encoding failed for a {frame.image.shape} frame")
                data = self._jpegs[seq] = buf.tobytes()
                self.frames_encoded += 1
                for old in [k for k in self._jpegs if k <= seq - 4]:
                    del self._jpegs[old]
            return data

    def mark_sent(self, seq: int, frame: Frame) -> None:
        """A viewer wrote frame ``seq``: calls ``on_sent`` the first time for each frame."""
        if self.on_sent is None:
            return
        with self._jpeg_lock:
            first = seq > self._reported_seq
            if first:
                self._reported_seq = seq
        if first:
            self.on_sent(frame)

    @property
    def closed(self) -> bool:
        return self._closed

    def track(self, sock: socket.socket, add: bool) -> None:
        """Register (``add``) or forget a viewer connection; a new one must send its request in time."""
        with self._clients_lock:
            if add:
                self._clients.add(sock)
                self._pending[sock] = time.monotonic() + self.request_timeout
            else:
                self._clients.discard(sock)
                self._pending.pop(sock, None)
                self._clients_lock.notify_all()

    def request_received(self, sock: socket.socket) -> None:
        """The connection's request line and headers arrived: no longer under the request deadline."""
        with self._clients_lock:
            self._pending.pop(sock, None)

    def drop_overdue(self) -> None:
        """Close connections still sending their request after request_timeout (slowloris)."""
        now = time.monotonic()
        with self._clients_lock:
            overdue = [sock for sock, deadline in self._pending.items() if deadline < now]
            for sock in overdue:
                del self._pending[sock]
        for sock in overdue:
            # The handler's blocked read returns end-of-file and the thread ends.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if overdue:
            log.debug(
                "closed %d connection(s) that had not sent a request within %.0f s", len(overdue), self.request_timeout
            )
