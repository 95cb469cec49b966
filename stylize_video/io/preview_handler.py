"""The HTTP side of the MJPEG preview: the server loop and the per-connection request handler.

Routes: ``/`` (the page of :mod:`.preview_page`), ``/stream.mjpg``, ``/snapshot.jpg``,
``/control`` (GET state, POST changes), ``/state``, ``/health``; admission (Host check,
token, Origin) before any of them, and the error handling that keeps a hostile or
broken client to one debug line.

Kept apart from :mod:`.mjpeg`, which holds the frame hub and the server's lifecycle
(:class:`~.mjpeg.MjpegSink`): this module knows HTTP, that one knows frames. The
handler reaches the sink only through :class:`PreviewHub`, so this module does not
import :mod:`.mjpeg` (no import cycle).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from ..controls import LiveControls, apply_remote
from ..text import printable
from .base import Frame
from .preview_page import PAGE

# The logger of the preview as a whole, as before the split: logging configured (and
# tests' caplog set) for ``stylize_video.io.mjpeg`` still sees the request handling.
log = logging.getLogger("stylize_video.io.mjpeg")

_BOUNDARY = "stylizeframe"


class PreviewHub(Protocol):
    """What the request handler needs from the server it serves (:class:`~.mjpeg.MjpegSink`)."""

    controls: LiveControls | None
    token: str | None
    token_required: bool
    cookie_name: str
    send_timeout: float
    send_buffer: int | None
    request_timeout: float
    snapshot_wait: float

    @property
    def closed(self) -> bool: ...

    def host_allowed(self, value: str | None) -> bool: ...

    def token_valid(self, candidate: str | None) -> bool: ...

    def wait_newer(self, seen: int, timeout: float) -> tuple[int, Frame | None]: ...

    def jpeg(self, seq: int, frame: Frame) -> bytes: ...

    def mark_sent(self, seq: int, frame: Frame) -> None: ...

    def track(self, sock: socket.socket, add: bool) -> None: ...

    def request_received(self, sock: socket.socket) -> None: ...

    def drop_overdue(self) -> None: ...


_CLIENT_ERRORS = (OSError, ValueError, UnicodeError, http.client.HTTPException)


class PreviewServer(ThreadingHTTPServer):
    """The preview's HTTP server: a thread per connection, client failures logged, not printed."""

    daemon_threads = True  # a viewer thread never keeps the process alive
    allow_reuse_address = True
    request_queue_size = 128  # a burst of viewers connecting at once is not refused by the kernel
    sink: PreviewHub
    _warned: set[type[BaseException]]

    def server_activate(self) -> None:
        self._warned = set()
        super().server_activate()

    def service_actions(self) -> None:
        # Called by serve_forever every poll interval.
        self.sink.drop_overdue()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr for anything a client does (a reset, a
        # broken pipe): one debug line instead, a warning (once per kind) for our own bugs.
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_ERRORS) or exc is None:
            log.debug("client %s: %s: %s", client_address, type(exc).__name__, printable(exc))
            return
        if type(exc) not in self._warned:  # a flood of one failure is one line
            self._warned.add(type(exc))
            log.warning("MJPEG preview: %s while serving %s: %s", type(exc).__name__, client_address, printable(exc))
        log.debug("MJPEG preview error details", exc_info=exc)


def handler_for(sink: PreviewHub) -> type[BaseHTTPRequestHandler]:
    """A :class:`PreviewHandler` class bound to ``sink`` (the server builds one handler per request)."""

    class Handler(PreviewHandler):
        pass

    Handler.sink = sink
    return Handler


class PreviewHandler(BaseHTTPRequestHandler):
    """One preview request: admission, then the route (see the module docstring)."""

    sink: PreviewHub
    server_version = "stylize-video"
    protocol_version = "HTTP/1.0"  # one request per connection: simple, and what MJPEG clients expect
    default_request_version = "HTTP/1.0"  # error replies to garbage get a status line, not bare HTML

    _set_cookie = False

    def setup(self) -> None:
        super().setup()
        self.sink.track(self.connection, True)  # first: even a failing setup is closed by the deadline
        self.connection.settimeout(self.sink.send_timeout)
        if self.sink.send_buffer:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sink.send_buffer)

    def finish(self) -> None:
        self.sink.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers: still under the request deadline
        self.sink.request_received(self.connection)
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the client's text: escaped before it reaches a terminal,
        # and the token (shown once, at start) kept out of debug logs.
        text = printable(format % args, limit=300)
        if self.sink.token:
            text = text.replace(self.sink.token, "***")
        log.debug("%s %s", self.address_string(), text)

    def end_headers(self) -> None:
        if self._set_cookie:
            # The page's <img> and fetch() then need no token in their URLs (the page
            # embeds it too, for clients without cookies). Strict: never sent cross-site.
            self.send_header(
                "Set-Cookie", f"{self.sink.cookie_name}={self.sink.token}; Path=/; HttpOnly; SameSite=Strict"
            )
            self._set_cookie = False
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

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

    def _forbid(self, why: str) -> bool:
        self.close_connection = True
        self._reply(HTTPStatus.FORBIDDEN, f"forbidden: {why}\n".encode(), "text/plain; charset=utf-8")
        return False

    def _admit(self) -> bool:
        """Host check, then token check; on refusal answers 403 and returns False.

        A valid token given in the query is removed from ``self.path`` so the
        endpoints never see it, and answered with a cookie.
        """
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or not self.sink.host_allowed(hosts[0] if hosts else None):
            shown = printable(hosts[0] if len(hosts) == 1 else f"{len(hosts)} Host headers", 80)
            log.debug("refused request for Host %s from %s", shown, self.address_string())
            return self._forbid(f"Host {shown} is not this server (allow it with --allow-host)")
        url = urlsplit(self.path)
        if url.path == "/health" or not self.sink.token_required:
            return True
        query_parts = url.query.split("&") if url.query else []
        kept = [part for part in query_parts if unquote(part.partition("=")[0]) != "token"]
        given = [unquote(part.partition("=")[2]) for part in query_parts if part not in kept]
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given.append(auth[7:].strip())
        given += self.headers.get_all("X-Stylize-Token") or []
        from_request = any(self.sink.token_valid(t) for t in given)
        if not from_request and not self.sink.token_valid(self._cookie_token()):
            return self._forbid("this preview needs its token: open the URL with ?token=... it printed at start")
        self._set_cookie = from_request
        self.path = url._replace(query="&".join(kept)).geturl()
        return True

    def _cookie_token(self) -> str | None:
        for header in self.headers.get_all("Cookie") or []:
            for item in header.split(";"):
                name, _, value = item.strip().partition("=")
                if name == self.sink.cookie_name:
                    return value.strip('"')
        return None

    def _form_body(self) -> list[tuple[str, str]] | None:
        """The form fields of a POST body (up to 4 KiB); None after answering a malformed one."""
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return []
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()) or len(text) > 18:
            self.close_connection = True
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"bad Content-Length {printable(lengths[0], 40)!r}"})
            return None
        length = int(text)
        if length == 0 or self.headers.get_content_type() != "application/x-www-form-urlencoded":
            return []  # another kind of body is not read: the controls are in the query
        if length > 4096:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"form body of {length} bytes (max 4096)"})
            return None
        body = b""
        deadline = time.monotonic() + self.sink.request_timeout  # for the whole body: a trickle is cut off
        try:
            while len(body) < length and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    break
                body += chunk
        except TimeoutError:
            pass
        finally:
            self.connection.settimeout(self.sink.send_timeout)
        if len(body) < length:
            self.close_connection = True
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"form body ended after {len(body)} of {length} bytes"})
            return None
        return parse_qsl(body.decode("ascii", "replace"))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._admit():
            return
        path = urlsplit(self.path).path
        if path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
        elif path in ("/", "/index.html"):
            token = self.sink.token if self.sink.token_required else None
            page = (
                PAGE.replace("@HIDDEN@", "" if self.sink.controls else "hidden")
                .replace("@AUTH_AND@", f"token={token}&" if token else "")
                .replace("@AUTH@", f"?token={token}" if token else "")
            )
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
        elif path == "/state" and self.sink.controls is not None:
            self._json(HTTPStatus.OK, self.sink.controls.state())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        if not self._admit():
            return
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
        body = self._form_body()
        if body is None:
            return
        params += body
        try:
            # Every parameter is validated before any is recorded: a bad request changes nothing.
            accepted = apply_remote(controls, params)
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
                sink.mark_sent(seq, frame)
        except OSError as exc:  # viewer went away or stalled past send_timeout
            log.debug("viewer %s left: %s", self.address_string(), exc)
