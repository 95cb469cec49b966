"""MJPEG-over-HTTP preview server: a sink any browser or OBS browser/media source can show.

Endpoints: ``/`` (a tiny page with the stream and control buttons),
``/stream.mjpg`` (``multipart/x-mixed-replace``), ``/snapshot.jpg`` (latest frame),
``/control`` (GET: JSON state; POST ``?style=next|prev|NAME&strength=0.7&smooth=toggle|on|off&snapshot=1``).

Latest-frame semantics: ``write`` only stores a reference to the newest frame and
notifies a condition variable; it never encodes or touches a socket. Each viewer
has its own thread that waits for a frame newer than the one it sent last, so a
slow viewer skips frames instead of stalling the pipeline or other viewers. Each
frame is JPEG-encoded at most once, by the first viewer thread that needs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..controls import LiveControls, apply_remote
from ..errors import OutputError
from .base import Frame
from .pacing import Pacer

log = logging.getLogger(__name__)

_BOUNDARY = "stylizeframe"

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>stylize-video preview</title>
<style>body{{margin:0;background:#111;color:#ddd;font:14px sans-serif}}img{{display:block;max-width:100vw;max-height:90vh;margin:auto}}
#c{{text-align:center;padding:6px}}button{{margin:0 3px}}</style></head>
<body><img src="stream.mjpg" alt="stylized stream">
<div id="c" {hidden}><button onclick="c('style=prev')">&larr; style</button><button onclick="c('style=next')">style &rarr;</button>
strength <input type="range" min="0" max="1" step="0.05" value="1" onchange="c('strength='+this.value)">
<button onclick="c('smooth=toggle')">smoothing</button><button onclick="c('snapshot=1')">snapshot</button> <span id="s"></span></div>
<script>function c(q){{fetch('control?'+q,{{method:'POST'}}).then(r=>r.json()).then(j=>{{document.getElementById('s').textContent=JSON.stringify(j.state||j)}})}}</script>
</body></html>
"""


class MjpegSink:
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
    """

    live = True
    snapshot_wait = 1.0  # seconds /snapshot.jpg waits for a first frame before answering 503

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
    ) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
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
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._reported_seq = 0
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Condition()
        self.frames_encoded = 0
        self.pacer: Pacer | None = Pacer() if pace else None
        try:
            self._server = _Server((host, port), _handler_for(self))
        except OSError as exc:
            raise OutputError(f"cannot serve MJPEG on {host}:{port}: {exc.strerror or exc}") from exc
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="mjpeg-server", daemon=True
        )
        self._thread.start()
        log.info("MJPEG preview at %s", self.url)
        if not _is_loopback(self.host):
            log.warning(
                "MJPEG preview serves %s: anyone who can reach this address can watch%s",
                self.url,
                " and use /control" if controls is not None else "",
            )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

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
            if self._jpeg[0] != seq:
                import cv2

                ok, buf = cv2.imencode(
                    ".jpg", np.ascontiguousarray(frame.image), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
                )
                if not ok:
                    raise OutputError(f"JPEG encoding failed for a {frame.image.shape} frame")
                self._jpeg = (seq, buf.tobytes())
                self.frames_encoded += 1
            return self._jpeg[1]

    def _sent(self, seq: int, frame: Frame) -> None:
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

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._clients_lock:
            if add:
                self._clients.add(sock)
            else:
                self._clients.discard(sock)
                self._clients_lock.notify_all()


def _is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer thread never keeps the process alive
    allow_reuse_address = True


def _handler_for(sink: MjpegSink) -> type[BaseHTTPRequestHandler]:
    class Handler(_MjpegHandler):
        pass

    Handler.sink = sink
    return Handler


class _MjpegHandler(BaseHTTPRequestHandler):
    sink: MjpegSink
    server_version = "stylize-video"
    protocol_version = "HTTP/1.0"  # one request per connection: simple, and what MJPEG clients expect

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.sink.send_timeout)
        if self.sink.send_buffer:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sink.send_buffer)
        self.sink._track(self.connection, True)

    def finish(self) -> None:
        self.sink._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: dict[str, Any]) -> None:
        self._reply(status, json.dumps(obj).encode(), "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            page = _PAGE.format(hidden="" if self.sink.controls else "hidden")
            self._reply(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/stream.mjpg":
            self._stream()
        elif path == "/snapshot.jpg":
            seq, frame = self.sink.wait_newer(0, timeout=self.sink.snapshot_wait)
            if frame is None:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain", {"Retry-After": "1"})
            else:
                self._reply(HTTPStatus.OK, self.sink.jpeg(seq, frame), "image/jpeg")
        elif path == "/control" and self.sink.controls is not None:
            self._json(HTTPStatus.OK, {"state": self.sink.controls.state()})
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        controls = self.sink.controls
        if url.path != "/control" or controls is None:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            # Any web page the user visits could POST here (no preflight for a bare POST); only our page may.
            self._json(HTTPStatus.FORBIDDEN, {"error": f"cross-origin control request from {origin}"})
            return
        params = parse_qsl(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 4096 and self.headers.get_content_type() == "application/x-www-form-urlencoded":
            params += parse_qsl(self.rfile.read(length).decode("ascii", "replace"))
        try:
            accepted = _apply_controls(controls, params)
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._json(HTTPStatus.OK, {"accepted": accepted, "state": controls.state()})

    def _stream(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        sink, seen = self.sink, 0
        try:
            while not sink.closed:
                seq, frame = sink.wait_newer(seen, timeout=1.0)
                if sink.closed:
                    break
                if frame is None or seq == seen:
                    continue
                data = sink.jpeg(seq, frame)
                head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                self.wfile.write(head.encode() + data + b"\r\n")
                self.wfile.flush()
                seen = seq
                sink._sent(seq, frame)
        except OSError as exc:  # viewer went away or stalled past send_timeout
            log.debug("viewer %s left: %s", self.address_string(), exc)


def _apply_controls(controls: LiveControls, params: list[tuple[str, str]]) -> dict[str, str]:
    """Validate every parameter first, then record them, so a bad request changes nothing.

    The parameters are the live-control vocabulary of :mod:`stylize_video.controls`.
    """
    return apply_remote(controls, params)
