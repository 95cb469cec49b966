"""The MJPEG preview under hostile clients: DNS rebinding, missing tokens, garbage requests, resets, floods.

Every refusal is a short 4xx; nothing a client does puts a traceback on stderr or a
warning in the log, and legitimate viewers keep getting frames.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from stylize_video.errors import OutputError
from stylize_video.io.base import Frame
from stylize_video.io.mjpeg import MjpegSink
from stylize_video.runtime.controls import LiveControls

pytestmark = pytest.mark.usefixtures("no_threads_left")


@pytest.fixture
def quiet(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After the test: no traceback or thread exception on stderr, no warning from the server."""
    caplog.set_level(logging.DEBUG, logger="stylize_video.io.mjpeg")
    yield
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err
    loud = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "needs its token" not in r.getMessage()
    ]
    assert not loud, loud


@pytest.fixture
def controls() -> LiveControls:
    return LiveControls()


@pytest.fixture
def sink(controls: LiveControls) -> Iterator[MjpegSink]:
    s = MjpegSink(port=0, controls=controls)
    s.snapshot_wait = 0.05
    s.write(Frame(np.full((24, 32, 3), 90, np.uint8), 0))
    yield s
    s.close()


def _raw(sink: MjpegSink, request: bytes, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes and end the request side; return what the server answers until it closes (a stream: its start)."""
    with socket.create_connection((host, sink.port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        with_stream = b"stream.mjpg" in request.split(b"\r\n", 1)[0]
        data = b""
        while not (with_stream and b"--stylizeframe" in data):
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
        return data


def _status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/"), reply[:100]
    return int(reply.split(b" ", 2)[1])


def _request(sink: MjpegSink, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.0", *(f"{k}: {v}" for k, v in (headers or {}).items()), "", ""]
    return _raw(sink, "\r\n".join(lines).encode())


ENDPOINTS = [("GET", "/"), ("GET", "/stream.mjpg"), ("GET", "/snapshot.jpg"), ("GET", "/control"), ("POST", "/control?style=next"), ("HEAD", "/")]  # fmt: skip


# ------------------------------------------------------------------ Host check
REBINDING_HOSTS = [
    "evil.example:{port}",
    "evil.example",
    "localhost.evil.example:{port}",
    "127.0.0.1.nip.io:{port}",
    "127.0.0.1:1",
    "localhost:{port}0",
    "a b",
    "[::1",
    "x:99999",
    "127.0.0.1:80a",
    "",
    "\x1b[2J:{port}",
]
OWN_HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}", "127.0.0.2:{port}", None]


@pytest.mark.usefixtures("quiet")
def test_rebinding_host_is_refused(sink: MjpegSink, controls: LiveControls) -> None:
    # Every endpoint with a rebinding name, every kind of foreign or malformed Host on two.
    cases = [(m, p, REBINDING_HOSTS[0]) for m, p in ENDPOINTS]
    cases += [(m, p, h) for h in REBINDING_HOSTS[1:] for m, p in (ENDPOINTS[0], ENDPOINTS[4])]
    for method, path, host in cases:
        reply = _request(sink, method, path, {"Host": host.format(port=sink.port)})
        assert _status(reply) == 403 and len(reply) < 1000, (method, path, host)
        assert b"\x1b" not in reply
    assert not controls.poll()


@pytest.mark.usefixtures("quiet")
def test_own_names_are_accepted(sink: MjpegSink) -> None:
    cases = [(m, p, OWN_HOSTS[1]) for m, p in ENDPOINTS] + [(m, p, h) for h in OWN_HOSTS for m, p in ENDPOINTS[:2]]
    for method, path, host in cases:
        headers = {} if host is None else {"Host": host.format(port=sink.port)}
        assert _status(_request(sink, method, path, headers)) == 200, (method, path, host)


@pytest.mark.usefixtures("quiet")
def test_two_host_headers_are_refused(sink: MjpegSink) -> None:
    reply = _raw(sink, f"GET / HTTP/1.0\r\nHost: 127.0.0.1:{sink.port}\r\nHost: evil.example\r\n\r\n".encode())
    assert _status(reply) == 403


@pytest.mark.usefixtures("quiet")
def test_allowed_hosts() -> None:
    with MjpegSink(port=0, allow_hosts=["preview.lan", "Box.Lan:8080"]) as s:
        assert _status(_request(s, "GET", "/", {"Host": "preview.lan"})) == 200  # behind a proxy: any port
        assert _status(_request(s, "GET", "/", {"Host": "PREVIEW.lan:443"})) == 200
        assert _status(_request(s, "GET", "/", {"Host": "box.lan:8080"})) == 200
        assert _status(_request(s, "GET", "/", {"Host": "box.lan:8081"})) == 403
        assert _status(_request(s, "GET", "/", {"Host": "other.lan"})) == 403
    with MjpegSink(port=0, allow_hosts=["*"]) as s:
        assert _status(_request(s, "GET", "/", {"Host": "anything.example"})) == 200
    for bad in ["http://x.lan/", "a b", "x.lan:99999", ""]:
        with pytest.raises(OutputError, match="allowed host"):
            MjpegSink(port=0, allow_hosts=[bad])


@pytest.mark.usefixtures("quiet")
def test_cross_origin_post_is_still_refused(sink: MjpegSink, controls: LiveControls) -> None:
    host = f"127.0.0.1:{sink.port}"
    for origin in ["http://evil.example", "null", f"http://{host}.evil.example"]:
        reply = _request(sink, "POST", "/control?snapshot=1", {"Host": host, "Origin": origin})
        assert _status(reply) == 403
    assert not controls.poll()
    reply = _request(sink, "POST", "/control?snapshot=1", {"Host": host, "Origin": f"http://{host}"})
    assert _status(reply) == 200 and controls.poll().snapshot


# ------------------------------------------------------------------ token
@pytest.fixture
def lan(controls: LiveControls, caplog: pytest.LogCaptureFixture) -> Iterator[MjpegSink]:
    caplog.set_level(logging.INFO, logger="stylize_video.io.mjpeg")
    s = MjpegSink("0.0.0.0", 0, controls=controls)
    s.snapshot_wait = 0.05
    s.write(Frame(np.full((24, 32, 3), 90, np.uint8), 0))
    yield s
    s.close()


def _get(
    sink: MjpegSink, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    if "stream" not in path:
        r.read()
    conn.close()
    return r


@pytest.mark.usefixtures("quiet")
def test_token_required_on_a_network_bind(
    lan: MjpegSink, controls: LiveControls, caplog: pytest.LogCaptureFixture
) -> None:
    token = lan.token
    assert lan.token_required and token and len(token) >= 24
    shown = [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.WARNING]
    assert len(shown) == 1 and f"?token={token}" in shown[0] and f":{lan.port}/" in shown[0]
    assert f"?token={token}" in lan.access_url

    for method, path in ENDPOINTS:
        assert _get(lan, path, method=method).status == 403, path
        assert _get(lan, path + ("&" if "?" in path else "?") + "token=wrong", method=method).status == 403
    assert not controls.poll()
    assert _get(lan, "/health").status == 200  # the one endpoint without a token

    page = _get(lan, f"/?token={token}")
    assert page.status == 200
    cookie = page.getheader("Set-Cookie") or ""
    assert (
        cookie.startswith(f"stylize_token_{lan.port}={token}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    )
    jar = {"Cookie": cookie.split(";")[0]}
    for _, path in ENDPOINTS[:4]:
        r = _get(lan, path, jar)
        assert r.status == 200, path
        r.close()
    assert _get(lan, "/snapshot.jpg", {"X-Stylize-Token": token}).status == 200
    assert _get(lan, "/snapshot.jpg", {"Authorization": f"Bearer {token}"}).status == 200
    assert _get(lan, "/snapshot.jpg", {"Authorization": "Bearer nope"}).status == 403

    conn = http.client.HTTPConnection("127.0.0.1", lan.port, timeout=5)
    conn.request("POST", f"/control?token={token}&style=next&snapshot")
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    assert r.status == 200 and body["accepted"] == {"style": "next"}  # the token is not a control
    assert controls.poll().style_step == 1


@pytest.mark.usefixtures("quiet")
def test_page_embeds_the_token_for_clients_without_cookies(lan: MjpegSink) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", lan.port, timeout=5)
    conn.request("GET", f"/?token={lan.token}")
    body = conn.getresponse().read()
    conn.close()
    assert f'src="stream.mjpg?token={lan.token}"'.encode() in body and f"control?token={lan.token}&".encode() in body


@pytest.mark.usefixtures("quiet")
def test_network_bind_accepts_ip_literals_but_not_names(lan: MjpegSink) -> None:
    auth = {"X-Stylize-Token": lan.token or ""}
    assert _get(lan, "/snapshot.jpg", {**auth, "Host": f"192.168.77.5:{lan.port}"}).status == 200
    assert _get(lan, "/snapshot.jpg", {**auth, "Host": f"[fe80::1]:{lan.port}"}).status == 200
    assert _get(lan, "/snapshot.jpg", {**auth, "Host": f"rebind.evil.example:{lan.port}"}).status == 403


@pytest.mark.usefixtures("quiet")
def test_a_given_token_is_required_even_on_loopback() -> None:
    with MjpegSink(port=0, token="correct-horse-battery-staple") as s:
        assert s.token_required and s.access_url.endswith("?token=correct-horse-battery-staple")
        assert _get(s, "/").status == 403
        assert _get(s, "/?token=correct-horse-battery-staple").status == 200
    with pytest.raises(OutputError, match="token"):
        MjpegSink(port=0, token="short")
    with pytest.raises(OutputError, match="token"):
        MjpegSink(port=0, token="has spaces and \x1b escapes in it")


def test_loopback_needs_no_token(sink: MjpegSink) -> None:
    assert not sink.token_required and sink.token is None and sink.access_url == sink.url


# ------------------------------------------------------------------ garbage
@pytest.mark.usefixtures("quiet")
def test_garbage_content_length(sink: MjpegSink, controls: LiveControls) -> None:
    for length in ["abc", "-1", "99999999999999999999999", "1e3", "0x10", "", "１２", "5\r\nContent-Length: 7"]:
        reply = _raw(
            sink,
            f"POST /control?style=next HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {length}\r\n\r\nstrength=0.5".encode(),
        )
        assert _status(reply) == 400 and len(reply) < 1000, length
        assert not controls.poll()
        assert _status(_request(sink, "GET", "/")) == 200  # still serving


@pytest.mark.usefixtures("quiet")
def test_oversized_short_and_slow_bodies(sink: MjpegSink, controls: LiveControls) -> None:
    form = "POST /control HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n"
    assert _status(_raw(sink, form.format(10**12).encode() + b"style=next")) == 413
    sink.request_timeout = 0.5
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as sock:
        sock.sendall(form.format(100).encode() + b"style=")  # then nothing more
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert _status(reply) == 400 and b"ended after" in reply and time.monotonic() - t < 4
    assert not controls.poll()
    # A body of another type is not read, whatever its size; the query still works.
    reply = _raw(
        sink,
        b"POST /control?style=next HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{}",
    )
    assert _status(reply) == 200 and controls.poll().style_step == 1


MALFORMED = [
    b"\x00\xff\xfe garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.0 extra\r\n\r\n",
    b"BREW /pot HTTP/1.0\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    b"GET / HTTP/1.0\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.0\r\nX: " + b"v" * 70_000 + b"\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: \xff\xfe\r\n\r\n",
    b"GET /\x1b[2J HTTP/1.0\r\n\r\n",
    b"\r\n\r\n",
    b"",
]


@pytest.mark.usefixtures("quiet")
def test_malformed_requests(sink: MjpegSink) -> None:
    for request_bytes in MALFORMED:
        reply = _raw(sink, request_bytes)
        if reply:
            # An error status (the stdlib parser tolerates some oddities: then the page itself).
            assert _status(reply) == 200 or (400 <= _status(reply) < 600 and _status(reply) != 500), request_bytes[:30]
        assert _status(_request(sink, "GET", "/")) == 200


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: what a crashed or killed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.usefixtures("quiet")
def test_resets_and_broken_pipes(sink: MjpegSink) -> None:
    rng = np.random.default_rng(0)
    socks = []
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", sink.port), timeout=5)
        if i % 4 == 0:
            s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            s.recv(100)
        elif i % 4 == 1:
            s.sendall(b"GET /snapshot.jpg HTTP/1.0\r\n\r\n")
        elif i % 4 == 2:
            s.sendall(b"POST /control?style=next HTTP/1.0\r\nContent-Length: 50\r\n\r\nab")
        else:
            s.sendall(b"GET / HTTP/1.0\r\nHo")
        socks.append(s)
    for s in socks:
        _reset(s)
    for i in range(10):  # big noisy frames: the stream writes fail on the reset sockets
        sink.write(Frame(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), i + 1))
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while sink.viewers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.viewers == 0
    assert _status(_request(sink, "GET", "/")) == 200


@pytest.mark.usefixtures("quiet")
def test_close_with_open_and_half_open_sockets(controls: LiveControls) -> None:
    s = MjpegSink(port=0, controls=controls)
    s.write(Frame(np.zeros((16, 16, 3), np.uint8), 0))
    socks = []
    for i in range(10):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n" if i % 2 else b"GET / HTTP/1.0\r\nX-Slow: ")
        socks.append(c)
    time.sleep(0.2)
    t = time.monotonic()
    s.close()
    assert time.monotonic() - t < 5 and s.viewers == 0
    for c in socks:
        c.close()


# ------------------------------------------------------------------ load
def _stream_socket(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    s.setblocking(False)
    return s


@pytest.mark.usefixtures("quiet")
def test_slowloris_does_not_starve_a_viewer_and_is_cut_off() -> None:
    with MjpegSink(port=0) as s:
        s.request_timeout = 1.0
        slow = []
        for _ in range(300):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"GET /stream.mjpg HTTP/1.0\r\nX-a: ")  # and never the end of the headers
            slow.append(c)
        viewer = _stream_socket(s.port)
        got = b""
        t0 = time.monotonic()
        i = 0
        while got.count(b"--stylizeframe") < 20 and time.monotonic() - t0 < 10:
            s.write(Frame(np.full((24, 32, 3), i % 255, np.uint8), i))
            i += 1
            time.sleep(1 / 60)
            with contextlib.suppress(BlockingIOError):
                got += viewer.recv(1 << 16)
        assert got.count(b"--stylizeframe") >= 20, "the viewer was starved"
        assert time.monotonic() - t0 < 3
        # The slow ones are closed by the server once request_timeout has passed.
        deadline = time.monotonic() + 5
        while s.viewers > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.viewers == 1
        for c in slow:
            c.settimeout(1)
            assert c.recv(100) == b""  # closed by the server, not left hanging
            c.close()
        viewer.close()


@pytest.mark.usefixtures("quiet")
def test_two_hundred_viewers() -> None:
    n = 200
    with MjpegSink(port=0) as s:
        socks = [_stream_socket(s.port) for _ in range(n)]
        counts = dict.fromkeys(socks, 0)
        sel = selectors.DefaultSelector()
        for c in socks:
            sel.register(c, selectors.EVENT_READ)
        stop = threading.Event()

        def produce() -> None:
            i = 0
            while not stop.is_set():
                s.write(Frame(np.full((24, 32, 3), i % 255, np.uint8), i))
                i += 1
                time.sleep(1 / 30)

        writer = threading.Thread(target=produce, daemon=True)
        writer.start()
        t0 = time.monotonic()
        try:
            while min(counts.values()) < 5 and time.monotonic() - t0 < 20:
                for key, _ in sel.select(0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(BlockingIOError):
                        counts[sock] += sock.recv(1 << 16).count(b"--stylizeframe")
        finally:
            stop.set()
            writer.join(5)
            sel.close()
            for c in socks:
                c.close()
        assert min(counts.values()) >= 5, sorted(counts.values())[:10]
        assert s.frames_encoded <= s._seq  # each frame encoded once, however many viewers


def test_a_server_side_failure_is_one_warning_not_a_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(frame: Frame) -> None:
        raise RuntimeError("measurement hook failed")

    with caplog.at_level(logging.WARNING, logger="stylize_video.io.mjpeg"), MjpegSink(port=0, on_sent=broken) as s:
        for i in range(3):
            s.write(Frame(np.zeros((16, 16, 3), np.uint8), i))
            _raw(s, b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            time.sleep(0.05)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "RuntimeError" in warnings[0] and "measurement hook failed" in warnings[0]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.usefixtures("quiet")
def test_randomly_damaged_requests(controls: LiveControls) -> None:
    import random

    token = "abcdefghijklmnopqrstuvwxyz"
    with MjpegSink(port=0, controls=controls, token=token) as s:
        s.request_timeout, s.snapshot_wait = 0.3, 0.01
        s.write(Frame(np.zeros((16, 16, 3), np.uint8), 0))
        host = f"localhost:{s.port}"
        seeds = [
            f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n",
            f"POST /control?token={token}&style=next HTTP/1.0\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nstrength=0.5",
            f"GET /stream.mjpg?token={token} HTTP/1.0\r\nCookie: stylize_token_{s.port}=abc; x=y\r\n\r\n",
            f"GET /snapshot.jpg HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n",
        ]
        rng = random.Random(0)
        for _ in range(150):
            b = bytearray(rng.choice(seeds).encode())
            for _ in range(rng.randint(1, 6)):
                pos, op = rng.randrange(len(b)), rng.random()
                if op < 0.5:
                    b[pos] = rng.randrange(256)
                elif op < 0.75:
                    del b[pos : pos + rng.randint(1, 20)]
                else:
                    b[pos:pos] = rng.randbytes(rng.randint(1, 10))
            with socket.create_connection(("127.0.0.1", s.port), timeout=3) as c, contextlib.suppress(OSError):
                c.sendall(bytes(b))
                c.shutdown(socket.SHUT_WR)
                c.settimeout(1)
                c.recv(200)
        assert _status(_request(s, "GET", f"/?token={token}")) == 200


def test_allow_host_travels_from_the_cli_options_to_the_server(controls: LiveControls) -> None:
    from stylize_video.io.registry import open_sink
    from stylize_video.io.specs import SinkOptions

    opened = open_sink(
        "http://127.0.0.1:0/", options=SinkOptions(controls=controls, allow_hosts=("mybox.lan:8080", "*"))
    )
    try:
        assert isinstance(opened, MjpegSink)
        assert ("mybox.lan", 8080) in opened.allow_hosts and ("*", None) in opened.allow_hosts
    finally:
        opened.close()


def test_bad_allow_host_is_a_one_line_cli_error(capsys: pytest.CaptureFixture[str]) -> None:
    from stylize_video.cli import main

    code = main(["run", "-i", "synthetic:32x32@5:1s", "-o", "http://127.0.0.1:0/", "--allow-host", "a/b"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "allowed host" in err[0]
