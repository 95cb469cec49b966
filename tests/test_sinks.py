"""Sinks: the encoded file (timestamps, odd sizes, audio copy/transcode, safe output), window keys, open_sink."""

from __future__ import annotations

import sys
import types
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stylize_video.errors import OutputError, StylizeError
from stylize_video.io.base import Frame, Sink
from stylize_video.io.sinks import NullSink, VideoFileSink, WindowSink, fresh_path, open_sink
from stylize_video.io.sources import VideoFileSource
from stylize_video.io.specs import OutputSpec, SinkOptions
from tests.conftest import make_image
from tests.media import probe, write_clip


def _frames(n: int, h: int = 48, w: int = 64, fps: int = 25) -> list[Frame]:
    tb = Fraction(1, fps)
    return [Frame(make_image(h, w, seed=i), i, pts=i, time_base=tb, time=i / fps) for i in range(n)]


def test_file_sink_writes_under_a_temporary_name_then_renames(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    sink = VideoFileSink(out, fps=25, allow_nvenc=False)
    assert isinstance(sink, Sink)
    for f in _frames(6):
        sink.write(f)
        assert not out.exists()  # nothing under the final name until complete
    assert sink.encoder == "libx264"
    sink.close()
    assert out.exists() and not sink.tmp.exists()
    p = probe(out)
    assert (p.width, p.height, p.frames) == (64, 48, 6)
    assert p.pts_seconds == pytest.approx([i / 25 for i in range(6)])


def test_file_sink_pads_odd_sizes_by_one_pixel(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    frames = _frames(3, h=47, w=63)
    with VideoFileSink(out, crf=0, allow_nvenc=False) as sink:
        for f in frames:
            sink.write(f)
    p = probe(out, keep_images=True)
    assert (p.width, p.height) == (64, 48)
    # The picture itself is unchanged apart from chroma subsampling.
    err = np.abs(p.images[0][:47, :63].astype(int) - frames[0].image.astype(int)).mean()
    assert err < 6


def test_file_sink_fits_a_size_change_into_the_stream(tmp_path: Path) -> None:
    # A source that changes resolution mid-way (camera reconnect, joined recording)
    # must not cost the recording: later frames are scaled in, aspect kept, on black.
    out = tmp_path / "o.mp4"
    with VideoFileSink(out, crf=0, allow_nvenc=False) as sink:
        sink.write(_frames(1)[0])
        white = np.full((16, 64, 3), 255, np.uint8)  # 4:1, into a 4:3 stream
        sink.write(Frame(white, 1, pts=1, time_base=Fraction(1, 25), time=0.04))
    p = probe(out, keep_images=True)
    assert (p.width, p.height, p.frames) == (64, 48, 2)
    fitted = p.images[1].astype(int)
    assert fitted[20:28].mean() > 240  # the picture, full width, centred
    assert fitted[:14].mean() < 20 and fitted[34:].mean() < 20  # black above and below


def test_file_sink_continues_after_timestamps_jump_back(tmp_path: Path) -> None:
    out = tmp_path / "jump.mp4"
    # In milliseconds, as in MPEG-TS and Matroska files: a tick is far less than a frame.
    ms = [
        Frame(make_image(seed=i), i, pts=40 * (i % 6), time_base=Fraction(1, 1000), time=0.04 * (i % 6))
        for i in range(12)
    ]
    frames = ms  # pts 0..200, then 0..200 again
    with VideoFileSink(out, fps=25, allow_nvenc=False) as sink:
        for f in frames:
            sink.write(f)
    p = probe(out)
    assert p.frames == 12
    assert p.pts_seconds == pytest.approx([i / 25 for i in range(12)], abs=1e-3)


def test_output_names_with_a_colon_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative, as typed: FFmpeg would read "2024-05-01T12:" as a protocol
    with VideoFileSink("2024-05-01T12:30.mp4", fps=25, allow_nvenc=False) as sink:
        for f in _frames(3):
            sink.write(f)
    assert probe(tmp_path / "2024-05-01T12:30.mp4").frames == 3


def test_live_frames_without_pts_are_timed_by_their_clock(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    times = [0.0, 0.05, 0.06, 0.2, 0.2]  # irregular, with a duplicate
    with VideoFileSink(out, fps=30, allow_nvenc=False) as sink:
        for i, t in enumerate(times):
            sink.write(Frame(make_image(seed=i), i, time=t))
    p = probe(out)
    assert p.frames == 5
    assert p.pts_seconds == pytest.approx([0.0, 0.05, 0.06, 0.2, 0.201], abs=1e-3)


def test_output_safety_rules(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=2, audio=False)
    with pytest.raises(OutputError, match="also an input"):
        VideoFileSink(src, inputs=[src], overwrite=True)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        VideoFileSink(existing)
    with VideoFileSink(existing, overwrite=True, allow_nvenc=False) as sink:
        sink.write(_frames(1)[0])
    assert probe(existing).frames == 1
    assert fresh_path(existing) == tmp_path / "exists-1.mp4"
    assert fresh_path(tmp_path / "free.mp4") == tmp_path / "free.mp4"


def _copy(src: Path, out: Path, stop_after: int | None = None) -> VideoFileSink:
    source = VideoFileSource(src)
    sink = VideoFileSink(out, audio_from=src, fps=source.fps, inputs=[src], allow_nvenc=False)
    for frame in source:
        if stop_after is not None and frame.index >= stop_after:
            break
        sink.write(frame)
    if stop_after is None:
        sink.finish()
    sink.close()
    source.close()
    return sink


def test_audio_is_copied_with_the_same_duration(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=25, fps=25, audio=True)
    _copy(src, tmp_path / "out.mp4")
    a, b = probe(src), probe(tmp_path / "out.mp4")
    assert b.audio_codecs == ["aac"] and b.frames == 25
    assert b.audio_duration == pytest.approx(a.audio_duration, abs=1 / 25)
    assert b.audio_duration == pytest.approx(b.video_duration, abs=0.1)  # AAC frames are 64 ms at 16 kHz


def test_interrupted_copy_keeps_audio_under_the_video_only(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=50, fps=25, audio=True)
    _copy(src, tmp_path / "cut.mp4", stop_after=20)
    p = probe(tmp_path / "cut.mp4")
    assert p.frames == 20
    # Audio stops with the last video frame (0.8 s), to within one 64 ms AAC packet.
    assert 0.8 <= p.audio_end <= 0.8 + 0.065


@pytest.mark.parametrize(
    ("src_name", "audio_codec", "out_name", "expected"),
    [
        ("in.mkv", "pcm_s16le", "out.mp4", "aac"),  # PCM cannot go into MP4: transcoded to AAC
        ("in.mp4", "aac", "out.webm", "opus"),  # WebM takes only Opus/Vorbis
        ("in.mp4", "mp3", "out.mkv", "mp3"),  # Matroska takes anything: copied
    ],
)
def test_audio_transcoded_when_the_container_cannot_take_it(
    tmp_path: Path, src_name: str, audio_codec: str, out_name: str, expected: str
) -> None:
    src = write_clip(tmp_path / src_name, n_frames=10, fps=25, audio=True, audio_codec=audio_codec)
    _copy(src, tmp_path / out_name)
    p = probe(tmp_path / out_name)
    assert p.audio_codecs == [expected]
    assert p.frames == 10
    assert p.audio_duration == pytest.approx(probe(src).audio_duration, abs=0.1)


def test_unknown_codec_is_a_clear_error(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "o.mp4", codec="nosuchcodec", allow_nvenc=False)
    with pytest.raises(OutputError, match="nosuchcodec"):
        sink.write(_frames(1)[0])
    assert not sink.tmp.exists()


class FakeCV2:
    """The slice of OpenCV the window sink uses, recording calls; keys come from a list."""

    WINDOW_NORMAL, WINDOW_FULLSCREEN, WND_PROP_FULLSCREEN, WND_PROP_VISIBLE = 0, 1, 0, 4
    FONT_HERSHEY_SIMPLEX, LINE_AA = 0, 16

    def __init__(self, keys: list[int] | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self.keys = list(keys or [])
        self.shown: list[np.ndarray] = []
        self.props: list[tuple[int, int]] = []
        self.visible = 1.0
        self.destroyed = False

    def namedWindow(self, title: str, flags: int) -> None:
        pass

    def imshow(self, title: str, image: np.ndarray) -> None:
        self.shown.append(image)

    def waitKey(self, ms: int) -> int:
        return self.keys.pop(0) if self.keys else -1

    def setWindowProperty(self, title: str, prop: int, value: int) -> None:
        self.props.append((prop, value))

    def getWindowProperty(self, title: str, prop: int) -> float:
        return self.visible

    def destroyWindow(self, title: str) -> None:
        self.destroyed = True

    def putText(self, *args: Any, **kwargs: Any) -> Any:
        return self._cv2.putText(*args, **kwargs)


def test_window_keys_become_actions_or_local_toggles(tmp_path: Path) -> None:
    fake = FakeCV2()
    win = WindowSink(cv2_module=fake, snapshot_dir=tmp_path)
    frame = _frames(1)[0]
    win.write(frame)
    for key in [ord("n"), ord("p"), ord("+"), ord("-"), ord("t"), ord("q")]:
        win.handle_key(key)
    assert win.poll_actions() == [
        "next_style",
        "prev_style",
        "strength_up",
        "strength_down",
        "toggle_smoothing",
        "quit",
    ]
    assert win.poll_actions() == []
    win.handle_key(27)
    assert win.poll_actions() == ["quit"]
    win.handle_key(ord("o"))
    assert not win.overlay
    win.handle_key(ord("f"))
    assert win.fullscreen and fake.props[-1] == (fake.WND_PROP_FULLSCREEN, fake.WINDOW_FULLSCREEN)
    win.handle_key(ord("s"))
    assert len(win.snapshots) == 1 and win.snapshots[0].parent == tmp_path
    import cv2

    assert np.array_equal(cv2.imread(str(win.snapshots[0])), frame.image)  # no overlay in snapshots
    win.close()
    assert fake.destroyed


def test_window_overlay_pause_and_closed_window(tmp_path: Path) -> None:
    frame = _frames(1)[0]
    # Space pauses: the sink keeps showing the frame until space again, then quits on q.
    fake = FakeCV2(keys=[ord(" "), -1, -1, ord(" "), ord("q")])
    win = WindowSink(cv2_module=fake, snapshot_dir=tmp_path)
    win.set_status("tiny  strength 1.0")
    win.write(frame)
    assert len(fake.shown) == 4 and not win.paused
    assert not np.array_equal(fake.shown[0], frame.image)  # overlay drawn on a copy
    assert np.array_equal(frame.image, _frames(1)[0].image)  # the frame itself untouched
    win.write(frame)
    assert win.poll_actions() == ["quit"]
    fake.visible = 0.0  # the user closed the window
    win2 = WindowSink(cv2_module=fake)
    win2.write(frame)
    assert win2.poll_actions() == ["quit"]


def test_open_sink_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_sink("null"), NullSink)
    assert isinstance(open_sink("window", cv2_module=FakeCV2()), WindowSink)
    assert isinstance(open_sink(str(tmp_path / "o.mkv")), VideoFileSink)
    monkeypatch.setitem(sys.modules, "stylize_video.io.streaming", None)  # as if not installed
    with pytest.raises(StylizeError, match="stream outputs are not available"):
        open_sink("rtmp://localhost/live/key")
    calls: list[tuple[OutputSpec, SinkOptions]] = []
    fake = types.ModuleType("stylize_video.io.streaming")
    fake.open_live_sink = lambda spec, options: calls.append((spec, options)) or NullSink()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stylize_video.io.streaming", fake)
    assert isinstance(open_sink("virtualcam", crf=20), NullSink)
    assert isinstance(open_sink("srt://host:9000"), NullSink)
    assert [(c[0].kind, c[0].text) for c in calls] == [("virtualcam", "virtualcam"), ("stream", "srt://host:9000")]
    assert calls[0][1].encoder.crf == 20  # encoder options travel whole
    with pytest.raises(OutputError, match="unsupported URL"):
        open_sink("gopher://x")


def test_bitrate_replaces_constant_quality(tmp_path: Path) -> None:
    from stylize_video.io.media import _encoder_options

    assert _encoder_options("libx264", None, None, 500_000) == {"preset": "veryfast"}
    assert _encoder_options("libx264", 20, "slow", 500_000) == {"crf": "20", "preset": "slow"}
    assert _encoder_options("libx264", None, None)["crf"] == "18"
    frames = [Frame(np.random.default_rng(i).integers(0, 256, (48, 64, 3), np.uint8), i) for i in range(10)]
    for i, f in enumerate(frames):
        f.pts, f.time_base, f.time = i, Fraction(1, 25), i / 25
    sizes = {}
    for name, kw in {"crf": {}, "low": {"bitrate": 20_000}}.items():
        out = tmp_path / f"{name}.mp4"
        with VideoFileSink(out, allow_nvenc=False, **kw) as sink:  # type: ignore[arg-type]
            for f in frames:
                sink.write(f)
        sizes[name] = out.stat().st_size
    assert sizes["low"] < sizes["crf"] / 3


def test_every_audio_stream_is_kept(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "two.mkv", n_frames=10, audio=True, audio_codec="aac", audio_streams=2)
    _copy(src, tmp_path / "two.mp4")
    a, b = probe(src), probe(tmp_path / "two.mp4")
    assert a.audio_streams == b.audio_streams == 2 and b.audio_codecs == ["aac", "aac"]
    assert b.audio_packets == a.audio_packets  # copied packet for packet


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    import os

    out = tmp_path / "full.mp4"
    sink = VideoFileSink(out, allow_nvenc=False)
    os.symlink("/dev/full", sink.tmp)  # every write to the temporary file fails with ENOSPC
    with pytest.raises(OutputError, match=r"disk full while writing '.*full\.mp4'"):
        for f in _frames(30):
            sink.write(f)
        sink.close()
    sink.abort()
    assert not os.path.lexists(sink.tmp) and not out.exists()


def test_nvenc_is_tried_and_falls_back_when_it_does_not_open(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: NVENC may legitimately open")
    import av

    from stylize_video.io.media import open_video_encoder

    with av.open(str(tmp_path / "o.mp4"), "w") as c:
        stream = open_video_encoder(c, "h264", 64, 48, rate=25, time_base=Fraction(1, 25), allow_nvenc=True)
        assert stream.codec_context.name == "libx264"  # h264_nvenc was built in but found no GPU
    with av.open(str(tmp_path / "p.mp4"), "w") as c, pytest.raises(OutputError, match=r"h264_nvenc: "):
        open_video_encoder(c, "h264_nvenc", 64, 48, rate=25, time_base=Fraction(1, 25))


def test_cheap_preset_when_the_model_shares_the_cpu(tmp_path: Path) -> None:
    import av

    from stylize_video.io.media import open_video_encoder

    def options(codec: str, **kw: Any) -> dict[str, str]:
        with av.open(str(tmp_path / "o.mkv"), "w") as c:
            stream = open_video_encoder(c, codec, 64, 48, rate=25, time_base=Fraction(1, 25), allow_nvenc=False, **kw)
            return dict(stream.codec_context.options)

    assert options("h264", share_cpu=True)["preset"] == "ultrafast"
    assert options("h264")["preset"] == "veryfast"
    assert options("h264", share_cpu=True, preset="slow")["preset"] == "slow"  # an explicit --preset wins
    sink = VideoFileSink(tmp_path / "s.mp4", allow_nvenc=False, share_cpu=True)
    with sink:
        sink.write(_frames(1)[0])
    assert probe(tmp_path / "s.mp4").frames == 1


def test_unwritable_or_unknown_outputs_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"'.*out\.xyz': unknown video file type"):
        VideoFileSink(tmp_path / "out.xyz")
    with pytest.raises(OutputError, match="unknown video file type"):
        VideoFileSink(tmp_path / "noext")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=r"cannot write '.*out\.mp4'"):
        VideoFileSink(blocker / "sub" / "out.mp4")
    sink = VideoFileSink(tmp_path / "new" / "dir" / "out.mov", allow_nvenc=False)  # folders are created
    with sink:
        sink.write(_frames(1)[0])
    assert probe(tmp_path / "new" / "dir" / "out.mov").frames == 1


def test_colours_survive_and_the_matrix_is_tagged(tmp_path: Path) -> None:
    import av

    colours = [(30, 60, 200), (40, 190, 60), (210, 120, 40), (128, 128, 128)]  # BGR: red, green, blue, grey
    image = np.zeros((720, 1280, 3), np.uint8)  # HD: where an untagged stream is read as BT.709
    for i, c in enumerate(colours):
        image[:, i * 320 : (i + 1) * 320] = c
    out = tmp_path / "c.mp4"
    with VideoFileSink(out, crf=0, allow_nvenc=False) as sink:
        sink.write(Frame(image, 0, pts=0, time_base=Fraction(1, 25)))
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.colorspace), int(cc.color_primaries), int(cc.color_trc), int(cc.color_range)) == (1, 1, 1, 1)
    decoded = probe(out, keep_images=True).images[0]
    for i, c in enumerate(colours):
        patch = decoded[300:400, i * 320 + 100 : i * 320 + 200].reshape(-1, 3).mean(0)
        assert np.abs(patch - np.array(c)).max() <= 5, (c, patch)  # swscale's own bgr<->yuv rounding is ~4
