"""Live outputs and network input on loopback: udp/tcp streams, reconnects, virtual camera errors."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stylize_video.errors import DependencyError, InputError, OutputError
from stylize_video.io.backoff import Backoff
from stylize_video.io.base import Frame
from stylize_video.io.mjpeg import MjpegSink
from stylize_video.io.network_sink import NetworkStreamSink
from stylize_video.io.network_source import NetworkSource
from stylize_video.io.streaming import open_streaming_sink, parse_http_spec
from tests.conftest import make_image

FAST = Backoff(initial=0.05, maximum=0.2)


pytestmark = pytest.mark.usefixtures("no_threads_left")


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frame(i: int, h: int = 48, w: int = 64) -> Frame:
    return Frame(make_image(h, w, seed=i % 4), i, time=i / 30, captured=time.perf_counter())


def _decode_ts(data: bytes) -> list[tuple[int, int]]:
    """Sizes of the frames an MPEG-TS byte string decodes to."""
    sizes = []
    with av.open(io.BytesIO(data), "r", format="mpegts") as c:
        for vf in c.decode(video=0):
            sizes.append((vf.width, vf.height))
    return sizes


class _TcpReceiver:
    """A TCP listener on 127.0.0.1 collecting each connection's bytes; stoppable and restartable."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[bytearray] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(1)
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()

    def _run(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            buf = bytearray()
            self.received.append(buf)
            with conn:
                conn.settimeout(0.1)
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buf += chunk

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            assert not self._thread.is_alive()
        if self._sock is not None:
            self._sock.close()


def _feed_until(sink: NetworkStreamSink, cond: Callable[[], bool], deadline: float, start: int) -> int:
    """Write frames at ~50 fps until ``cond()`` holds or the deadline passes; returns the next index."""
    i = start
    end = time.monotonic() + deadline
    while time.monotonic() < end and not cond():
        sink.write(_frame(i))
        i += 1
        time.sleep(0.02)
    return i


# --------------------------------------------------------------------- udp sink
@pytest.mark.parametrize(("h", "w", "expect"), [(48, 64, (64, 48)), (49, 65, (64, 48))])
def test_udp_stream_reads_back_with_pyav(h: int, w: int, expect: tuple[int, int]) -> None:
    port = _free_port(socket.SOCK_DGRAM)
    sizes: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    opened = threading.Event()

    def read() -> None:
        try:
            with av.open(f"udp://127.0.0.1:{port}", format="mpegts", timeout=(5.0, 5.0)) as c:
                opened.set()
                for vf in c.decode(video=0):
                    sizes.append((vf.width, vf.height))
                    if len(sizes) >= 8:
                        return
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.2)  # let the reader bind before anything is sent (UDP does not wait)
    with NetworkStreamSink(f"udp://127.0.0.1:{port}", fps=30, gop=5) as sink:
        i = 0
        end = time.monotonic() + 10
        while reader.is_alive() and time.monotonic() < end:
            sink.write(_frame(i, h, w))
            i += 1
            time.sleep(0.02)
    reader.join(5)
    assert not reader.is_alive()
    assert not errors, errors
    assert len(sizes) >= 8
    assert set(sizes) == {expect}
    assert sink.stats.sent >= 8 and sink.stats.errors == 0


# --------------------------------------------------------------- reconnecting
def test_stream_reconnects_when_receiver_restarts() -> None:
    port = _free_port()
    rx = _TcpReceiver(port)
    rx.start()
    sink = NetworkStreamSink(f"tcp://127.0.0.1:{port}", fps=30, gop=5, backoff=FAST)
    try:
        i = _feed_until(sink, lambda: sum(map(len, rx.received)) > 4000, 10, 0)
        assert rx.received, "first connection never arrived"
        rx.stop()  # the receiving side goes away
        i = _feed_until(sink, lambda: sink.stats.errors > 0, 10, i)
        assert sink.stats.errors > 0
        # While nobody listens the pipeline keeps writing without blocking: ~10 writes in well under a second.
        t = time.perf_counter()
        for _ in range(10):
            sink.write(_frame(i))
            i += 1
        assert time.perf_counter() - t < 0.5
        rx.start()
        _feed_until(sink, lambda: len(rx.received) >= 2 and len(rx.received[1]) > 4000, 10, i)
    finally:
        sink.close()
        rx.stop()
    assert len(rx.received) >= 2, "sink did not reconnect"
    assert sink.stats.reconnects >= 1
    assert sink.stats.dropped >= 1
    first, second = _decode_ts(bytes(rx.received[0])), _decode_ts(bytes(rx.received[1]))
    assert len(first) >= 3 and len(second) >= 3
    assert set(first) == set(second) == {(64, 48)}


def test_sink_never_blocks_without_server() -> None:
    port = _free_port()  # nothing listens: every connection attempt is refused
    # pace=False: the frames are stamped 1/30 s apart and written at once; only the network is under test.
    with NetworkStreamSink(f"tcp://127.0.0.1:{port}", backoff=FAST, pace=False) as sink:
        t = time.perf_counter()
        for i in range(50):
            sink.write(_frame(i))
        elapsed = time.perf_counter() - t
        deadline = time.monotonic() + 5
        while sink.stats.errors < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert elapsed < 0.5
    assert sink.stats.sent == 0
    assert sink.stats.errors >= 2  # it kept retrying
    assert sink.stats.dropped >= 48  # a 1-deep slot keeps only the newest frame


def test_stream_colours_survive_and_the_matrix_is_tagged() -> None:
    # As for files (test_sinks): frames go out in BT.709 and the stream says so, else an
    # HD viewer that assumes BT.709 for untagged video shifts every saturated colour.
    colours = [(30, 60, 200), (40, 190, 60), (210, 120, 40), (128, 128, 128)]  # BGR
    image = np.zeros((720, 1280, 3), np.uint8)
    for i, c in enumerate(colours):
        image[:, i * 320 : (i + 1) * 320] = c
    port = _free_port()
    rx = _TcpReceiver(port)
    rx.start()
    sink = NetworkStreamSink(f"tcp://127.0.0.1:{port}", fps=30, gop=2, backoff=FAST)
    try:
        end = time.monotonic() + 10
        i = 0
        while time.monotonic() < end and sum(map(len, rx.received)) < 20000:
            sink.write(Frame(image, i, time=i / 30, captured=time.perf_counter()))
            i += 1
            time.sleep(0.02)
    finally:
        sink.close()
        rx.stop()
    with av.open(io.BytesIO(bytes(rx.received[0])), "r", format="mpegts") as c:
        cc = c.streams.video[0].codec_context
        decoded = next(iter(c.decode(video=0)))
        assert (int(cc.colorspace), int(cc.color_primaries), int(cc.color_trc)) == (1, 1, 1)
        bgr = decoded.to_ndarray(format="bgr24", interpolation="AREA")
    # to_ndarray converts with the frame's own tagged matrix.
    for i, c in enumerate(colours):
        patch = bgr[300:400, i * 320 + 100 : i * 320 + 200].reshape(-1, 3).mean(0)
        assert np.abs(patch - np.array(c)).max() <= 6, (c, patch)


def test_missing_protocol_is_reported_not_retried() -> None:
    # Retrying cannot conjure a protocol FFmpeg was built without (PyAV's wheels lack SRT, for one).
    sink = NetworkStreamSink("nosuchproto://127.0.0.1:9", format="mpegts", backoff=FAST, pace=False)
    deadline = time.monotonic() + 5
    with pytest.raises(OutputError, match="Protocol not found"):
        while time.monotonic() < deadline:
            sink.write(_frame(0))
            time.sleep(0.02)
    sink.close()
    assert sink.stats.reconnects == 0


def test_stream_carries_the_inputs_audio(tmp_path: Path) -> None:
    from tests.media import write_clip

    clip = write_clip(tmp_path / "in.mp4", n_frames=30, fps=30, audio=True)
    port = _free_port()
    rx = _TcpReceiver(port)
    rx.start()
    try:
        # Paced like a file source: written back to back, sent on the clip's clock, none dropped.
        with NetworkStreamSink(f"tcp://127.0.0.1:{port}", fps=30, audio_from=clip) as sink:
            for i in range(30):
                sink.write(_frame(i))
        deadline = time.monotonic() + 5
        while not (rx.received and len(rx.received[0]) > 1000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        rx.stop()
    assert sink.stats.errors == 0
    with av.open(io.BytesIO(bytes(rx.received[0])), "r", format="mpegts") as c:
        assert len(c.streams.audio) == 1 and len(c.streams.video) == 1
        audio = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
    span = float((audio[-1].pts - audio[0].pts) * audio[0].time_base)
    assert span == pytest.approx(1.0, abs=0.15)  # the tone under the second of video
    # The write waits up to a frame period for the encoder; one miss is tolerated on a loaded machine.
    assert sink.stats.dropped <= 1 and len(_decode_ts(bytes(rx.received[0]))) >= 29


def test_stream_audio_stays_under_the_video_when_the_file_starts_late(tmp_path: Path) -> None:
    # .ts/.mts files rarely start at 0: the audio packets keep the file's clock, so must the video.
    from stylize_video.io.sources import VideoFileSource
    from tests.media import write_clip

    clip = write_clip(tmp_path / "late.mkv", n_frames=30, fps=30, audio=True, start_s=10.0)
    port = _free_port()
    rx = _TcpReceiver(port)
    rx.start()
    try:
        with (
            VideoFileSource(clip) as src,
            NetworkStreamSink(f"tcp://127.0.0.1:{port}", fps=30, audio_from=clip) as sink,
        ):
            for frame in src:
                sink.write(frame)
        deadline = time.monotonic() + 5
        while not (rx.received and len(rx.received[0]) > 1000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        rx.stop()
    with av.open(io.BytesIO(bytes(rx.received[0])), "r", format="mpegts") as c:
        video = [p for p in c.demux(c.streams.video[0]) if p.pts is not None]
    with av.open(io.BytesIO(bytes(rx.received[0])), "r", format="mpegts") as c:
        audio = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
    assert len(audio) > 5
    first_video = min(float(p.pts * p.time_base) for p in video)
    first_audio = min(float(p.pts * p.time_base) for p in audio)
    assert first_audio == pytest.approx(first_video, abs=0.15)


# ------------------------------------------------------------- network source
def test_network_source_clock_starts_at_the_first_frame(ts_server: _TcpServer) -> None:
    # run opens the source before loading the model: that wait must not lead the recording.
    src = NetworkSource(f"tcp://127.0.0.1:{ts_server.port}", format="mpegts", timeout=3, backoff=FAST)
    with src:
        time.sleep(0.5)
        first = next(iter(src))
    assert first.time < 0.2


def _ts_clip(n: int, h: int = 48, w: int = 64) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=30, options={"preset": "ultrafast", "tune": "zerolatency", "g": "5"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(make_image(h, w, seed=i), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, 30)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


class _TcpServer:
    """Serves the same bytes to each connection, then hangs up (a live server that restarts)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.sendall(self.data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def ts_server() -> Iterator[_TcpServer]:
    server = _TcpServer(_ts_clip(6))
    yield server
    server.stop()


def test_network_source_reconnects_and_marks_cut(ts_server: _TcpServer) -> None:
    src = NetworkSource(f"tcp://127.0.0.1:{ts_server.port}", format="mpegts", timeout=3, backoff=FAST)
    assert src.live and (src.width, src.height) == (64, 48)
    frames: list[Frame] = []
    watchdog = threading.Timer(15, src.close)  # bounds the loop even if no frame ever arrives
    watchdog.start()
    try:
        with src:
            for f in src:
                frames.append(f)
                if len(frames) >= 14:
                    break
    finally:
        watchdog.cancel()
    assert len(frames) >= 14
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    cuts = [f.index for f in frames if f.cut]
    assert cuts[:2] == [6, 12]  # the first frame of each new connection
    assert src.reconnects >= 2 and ts_server.connections >= 3


def test_udp_round_trip_sink_to_source() -> None:
    """What `run -i udp://...` reads: our own stream, decoded by NetworkSource."""
    port = _free_port(socket.SOCK_DGRAM)
    stop = threading.Event()
    sink = NetworkStreamSink(f"udp://127.0.0.1:{port}", fps=30, gop=5, pace=False)

    def send() -> None:
        i = 0
        while not stop.is_set() and i < 600:
            sink.write(_frame(i))
            i += 1
            time.sleep(1 / 30)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    frames: list[Frame] = []
    try:
        src = NetworkSource(f"udp://127.0.0.1:{port}", format="mpegts", timeout=5, max_reconnects=1)
        with src:
            for f in src:
                frames.append(f)
                if len(frames) >= 10:
                    break
    finally:
        stop.set()
        sender.join(5)
        sink.close()
    assert src.fps == pytest.approx(30, abs=1)
    assert len(frames) == 10 and all(f.image.shape == (48, 64, 3) for f in frames)
    assert frames[-1].time > frames[0].time and not any(f.cut for f in frames)


def test_network_source_can_be_iterated_again(ts_server: _TcpServer) -> None:
    src = NetworkSource(f"tcp://127.0.0.1:{ts_server.port}", format="mpegts", timeout=3, backoff=FAST)
    with src:
        first = [f for _, f in zip(range(3), src, strict=False)]
        again = [f for _, f in zip(range(3), src, strict=False)]  # the first loop closed its connection
    assert len(first) == len(again) == 3
    assert again[0].cut and not first[0].cut


def test_network_source_bad_url_fails_at_once() -> None:
    with pytest.raises(InputError, match="cannot open stream"):
        NetworkSource(f"tcp://127.0.0.1:{_free_port()}", format="mpegts", timeout=2)
    with pytest.raises(InputError, match="not a network stream"):
        NetworkSource("/tmp/file.mp4")


def test_network_source_gives_up_after_max_reconnects(ts_server: _TcpServer) -> None:
    src = NetworkSource(f"tcp://127.0.0.1:{ts_server.port}", format="mpegts", max_reconnects=2, backoff=FAST)
    ts_server.stop()  # gone after the first connection
    frames = []
    with pytest.raises(InputError, match="2 reconnect attempts failed"):
        for f in src:
            frames.append(f)
    assert len(frames) == 6


# ------------------------------------------------------------- virtual camera
def test_virtualcam_without_pyvirtualcam_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import raises ImportError
    with pytest.raises(DependencyError, match=r"pip install 'stylize-video\[virtualcam\]'"):
        open_streaming_sink("virtualcam", fps=30)


class _FakeCamera:
    sent: list[tuple[float, tuple[int, ...]]]

    def __init__(self, width: int, height: int, fps: float, **kw: object) -> None:
        self.size, self.fps, self.kw, self.device = (width, height), fps, kw, kw.get("device") or "/dev/video9"
        self.sent = []
        self.closed = False

    def send(self, image: np.ndarray) -> None:
        self.sent.append((time.perf_counter(), image.shape))

    def close(self) -> None:
        self.closed = True


def _fake_pyvirtualcam(camera: type) -> types.ModuleType:
    mod = types.ModuleType("pyvirtualcam")
    mod.Camera = camera  # type: ignore[attr-defined]
    mod.PixelFormat = types.SimpleNamespace(BGR="BGR", RGB="RGB")  # type: ignore[attr-defined]
    return mod


def test_virtualcam_without_backend_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(*args: object, **kw: object) -> None:
        # What pyvirtualcam raises on Linux without the kernel module.
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99].")

    monkeypatch.setitem(sys.modules, "pyvirtualcam", _fake_pyvirtualcam(no_backend))  # type: ignore[arg-type]
    monkeypatch.setattr(sys, "platform", "linux")
    sink = open_streaming_sink("virtualcam", fps=30)
    with pytest.raises(OutputError, match=r"sudo modprobe v4l2loopback devices=1"):
        sink.write(_frame(0))


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_virtualcam_paces_to_source_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize_video.io.pacing import Pacer

    cams: list[_FakeCamera] = []
    clock = _FakeClock()

    class Recording(_FakeCamera):
        def __init__(self, width: int, height: int, fps: float, **kw: object) -> None:
            super().__init__(width, height, fps, **kw)
            cams.append(self)

        def send(self, image: np.ndarray) -> None:
            self.sent.append((clock.now, image.shape))

    monkeypatch.setitem(sys.modules, "pyvirtualcam", _fake_pyvirtualcam(Recording))
    with open_streaming_sink("virtualcam:/dev/video7", fps=20) as sink:  # type: ignore[attr-defined]
        assert sink.pacer is not None  # paced by default
        sink.pacer = Pacer(warmup=0.2, clock=clock, sleep=clock.sleep)
        for i in range(16):  # a file source: frames arrive at once, stamped 50 ms apart
            f = _frame(i, 49 if i == 3 else 48, 64)
            f.time = i * 0.05
            sink.write(f)
    cam = cams[0]
    assert cam.kw["device"] == "/dev/video7" and cam.fps == 20 and cam.closed
    assert {shape for _, shape in cam.sent} == {(48, 64, 3)}  # the odd-sized frame was scaled
    times = np.array([t for t, _ in cam.sent]) - 100.0
    # Warm-up (0.2 s of source time) goes out at once, then one frame per 50 ms on the source's clock.
    assert times[:4].tolist() == [0.0] * 4
    assert np.allclose(np.diff(times[3:]), 0.05)


def test_pacer_paces_files_but_never_delays_a_live_source() -> None:
    from stylize_video.io.pacing import Pacer

    clock = _FakeClock()
    pacer = Pacer(warmup=0.2, clock=clock, sleep=clock.sleep)
    for i in range(30):  # a file: decoded instantly, 1/30 s apart in source time
        pacer.wait(i / 30)
    assert sum(clock.slept) == pytest.approx(29 / 30 - 5 / 30, abs=1e-6)  # real time after frame 5

    clock = _FakeClock()
    pacer = Pacer(warmup=0.2, clock=clock, sleep=clock.sleep)
    for i in range(60):  # live: the first frame is 300 ms late (warm-up), the rest 20 ms
        clock.now = 100.0 + i / 30 + (0.3 if i == 0 else 0.02)
        pacer.wait(i / 30)
    assert clock.slept == []

    clock = _FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)  # the default, as for files: no warm-up burst
    for i in range(10):
        pacer.wait(i / 30)
    assert sum(clock.slept) == pytest.approx(9 / 30, abs=1e-6)
    pacer.wait(10 / 30 + 3.0)  # a still held 3 s in a variable-rate video stays 3 s
    assert clock.slept[-1] == pytest.approx(3.0 + 1 / 30) and pacer.resyncs == 0

    clock = _FakeClock()
    pacer = Pacer(warmup=0.0, max_lag=0.25, clock=clock, sleep=clock.sleep)
    pacer.wait(0.0)
    clock.now += 1.0  # the pipeline stalled for a second
    pacer.wait(0.1)
    pacer.wait(0.2)  # no catch-up burst: the schedule moved
    assert pacer.resyncs == 1 and clock.slept == [pytest.approx(0.1)]


# ------------------------------------------------------------------ dispatch
def test_dispatch_by_spec() -> None:
    assert parse_http_spec("http://:0/") == ("127.0.0.1", 0)
    assert parse_http_spec("http://0.0.0.0:9000") == ("0.0.0.0", 9000)
    sink = open_streaming_sink("http://127.0.0.1:0/", fps=30, quality=70, overwrite=True)
    try:
        assert isinstance(sink, MjpegSink) and sink.quality == 70 and sink.host == "127.0.0.1" and sink.port > 0
    finally:
        sink.close()
    stream = open_streaming_sink("rtmp://127.0.0.1/live/key", fps=25, preset="veryfast")
    assert isinstance(stream, NetworkStreamSink)
    assert (stream.format, stream.gop, stream.preset) == ("flv", 25, "veryfast")
    stream.close()
    udp = open_streaming_sink("udp://127.0.0.1:1234")
    assert isinstance(udp, NetworkStreamSink)
    assert udp.format == "mpegts" and udp.url.endswith("?pkt_size=1316")
    with pytest.raises(OutputError, match="not a live output"):
        open_streaming_sink("out.mp4")
    with pytest.raises(OutputError, match="plain HTTP"):
        open_streaming_sink("https://127.0.0.1:8443/")


def test_open_sink_dispatches_live_outputs_with_generic_options() -> None:
    from stylize_video.io.sinks import open_sink

    # What `run` passes every sink: unset options are None and must not override the stream's defaults.
    common = {"audio_from": None, "codec": "h264", "crf": None, "bitrate": None, "preset": None}
    udp = open_sink("udp://127.0.0.1:1234", fps=Fraction(30000, 1001), **common)
    assert isinstance(udp, NetworkStreamSink)
    assert (udp.codec, udp.preset, udp.gop, udp.fps) == ("libx264", "ultrafast", 30, pytest.approx(29.97, abs=0.01))
    assert udp.pacer is not None  # a file source is held to real time by default
    udp.close()
    live = open_sink("udp://127.0.0.1:1234", fps=30, pace=False, **common)
    assert isinstance(live, NetworkStreamSink) and live.pacer is None
    live.close()
    http = open_sink(f"http://127.0.0.1:{_free_port()}/", fps=None, **common)
    try:
        assert isinstance(http, MjpegSink) and http.host == "127.0.0.1"
    finally:
        http.close()


class _PacedTcpServer:
    """Serves one MPEG-TS clip per connection, spread over ``seconds`` like a live encoder would."""

    def __init__(self, data: bytes, seconds: float) -> None:
        self.data, self.seconds = data, seconds
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(2)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                chunk = 188 * 8
                pause = self.seconds * chunk / len(self.data)
                for i in range(0, len(self.data), chunk):
                    if self._stop.wait(pause):
                        return
                    try:
                        conn.sendall(self.data[i : i + chunk])
                    except OSError:
                        break

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def test_run_network_input_to_http_preview_with_live_controls(tiny_checkpoint: Path) -> None:
    """`run -i tcp://... -o http://...`: frames reach the preview and /control changes the running engine."""
    import http.client
    import json

    from stylize_video.cli import main

    server = _PacedTcpServer(_ts_clip(60), seconds=2.0)
    port = _free_port()
    argv = ["run", "-i", f"tcp://127.0.0.1:{server.port}", "-o", f"http://127.0.0.1:{port}/"]
    # One torch thread: on a loaded 2-core box, 2 OpenMP threads make each frame ~50x slower.
    argv += ["-s", str(tiny_checkpoint), "--max-frames", "45", "--no-progress", "--device", "cpu", "--threads", "1"]
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)

    def request(method: str, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, r.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()

    runner.start()
    try:
        deadline = time.monotonic() + 15
        status, body = 0, b""
        while status != 200 and time.monotonic() < deadline:
            status, body = request("GET", "/snapshot.jpg")
            time.sleep(0.05)
        assert status == 200 and body[:2] == b"\xff\xd8"  # a JPEG from the running pipeline
        assert request("POST", "/control?strength=0.5&smooth=on")[0] == 200
        state: dict[str, object] = {}
        while time.monotonic() < deadline and state.get("strength") != 0.5:
            status, body = request("GET", "/control")
            state = json.loads(body)["state"] if status == 200 else {}
            time.sleep(0.05)
        assert state.get("strength") == 0.5 and state.get("smoothing") is True  # applied by the pipeline
        assert state.get("style") == str(tiny_checkpoint)
    finally:
        runner.join(20)
        server.stop()
    assert not runner.is_alive() and result == [0]
