"""Sources: PyAV files (timestamps, VFR, corrupt packets, bad input), fake cameras, the synthetic scene."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stylize_video.errors import InputError
from stylize_video.io.base import Source
from stylize_video.io.media import even_pad, rotate
from stylize_video.io.sources import CameraSource, SyntheticSource, VideoFileSource, open_source
from tests.media import probe, write_clip


def test_file_source_keeps_size_count_and_timestamps(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", n_frames=10, size=(64, 48), fps=25)
    src = VideoFileSource(clip)
    assert isinstance(src, Source)
    assert (src.width, src.height) == (64, 48)
    assert src.fps == 25
    assert src.has_audio
    assert src.frame_count == 10
    frames = list(src)
    src.close()
    assert [f.index for f in frames] == list(range(10))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    times = [f.time for f in frames]
    assert times == pytest.approx([i / 25 for i in range(10)], abs=1e-6)
    assert [float(f.pts * f.time_base) for f in frames] == pytest.approx(probe(clip).pts_seconds)


def test_file_source_keeps_variable_frame_rate(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "vfr.mp4", n_frames=8, fps=25, audio=False, vfr=True)
    with VideoFileSource(clip) as src:
        gaps = np.diff([f.time for f in src]).round(4).tolist()
    assert gaps == [0.02, 0.06] * 3 + [0.02]


def test_file_source_colours_are_bgr(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mkv", n_frames=2, size=(64, 48), audio=False, codec="ffv1")
    with VideoFileSource(clip) as src:
        first = next(iter(src)).image
    from tests.media import clip_frame

    expected = clip_frame(0, 64, 48)[:, :, ::-1]
    assert np.abs(first.astype(int) - expected.astype(int)).mean() < 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.mp4", "does not exist"),
        (lambda p: p, "is a directory"),
        (lambda p: _write(p / "notes.mp4", b"not a video at all\n" * 50), "not a readable video"),
        (lambda p: _write(p / "empty.mp4", b""), "not a readable video"),
    ],
)
def test_bad_inputs_raise_one_clear_error(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        VideoFileSource(path)
    assert str(path) in str(info.value)


def test_audio_only_input_has_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        for p in [*s.encode(af), *s.encode(None)]:
            out.mux(p)
    with pytest.raises(InputError, match="no video stream"):
        VideoFileSource(path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_corrupt_packets_are_skipped_and_counted(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", n_frames=60, size=(64, 48), audio=False)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    for off in range(len(data) // 3, 2 * len(data) // 3, 1500):
        data[off : off + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    bad = _write(tmp_path / "bad.mp4", bytes(data))
    with VideoFileSource(bad) as src:
        frames = list(src)
        assert src.corrupt > 0
    assert 30 < len(frames) < 60
    assert frames[-1].time > 2.0  # decoding went on past the damage


class FakeCapture:
    """Stands in for cv2.VideoCapture: ``frames`` good reads, then failures (unplugged)."""

    def __init__(self, frames: int = 5, opened: bool = True, size: tuple[int, int] = (32, 24)) -> None:
        self.frames, self.opened, self.size = frames, opened, size
        self.props: dict[int, float] = {}
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        import cv2

        defaults = {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1]}
        return self.props.get(prop, defaults.get(prop, 0.0))

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.reads > self.frames:
            return False, None
        w, h = self.size
        return True, np.full((h, w, 3), self.reads % 256, np.uint8)

    def release(self) -> None:
        self.released = True


def test_camera_source_requests_format_and_yields_live_frames() -> None:
    import cv2

    cap = FakeCapture(frames=3)
    cam = CameraSource(2, width=320, height=240, fps=15, max_failures=2, capture_factory=lambda dev: cap)
    assert cam.live
    assert cap.props[cv2.CAP_PROP_FRAME_WIDTH] == 320
    assert cap.props[cv2.CAP_PROP_FRAME_HEIGHT] == 240
    assert cap.props[cv2.CAP_PROP_FPS] == 15
    assert cam.fps == 15
    frames = []
    with pytest.raises(InputError, match=r"camera 2 stopped delivering frames after 3 \(unplugged\?\)"):
        for frame in cam:
            frames.append(frame)
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.pts is None and f.captured > 0 for f in frames)
    assert frames[0].time == 0.0 and frames[2].time >= frames[1].time
    cam.close()
    assert cap.released


def test_camera_is_not_released_under_a_running_read() -> None:
    import threading
    import time

    class SlowRead(FakeCapture):
        def read(self) -> tuple[bool, np.ndarray | None]:
            self.in_read = True
            time.sleep(0.3)
            self.in_read = False
            return super().read()

        def release(self) -> None:
            assert not self.in_read, "released during read()"
            super().release()

    cap = SlowRead(frames=100)
    cam = CameraSource(0, capture_factory=lambda dev: cap)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(f.index for f in cam))
    reader.start()
    time.sleep(0.1)  # inside the first read
    cam.close()  # from another thread, as the pipeline does
    reader.join(2)
    assert cap.released and not reader.is_alive() and len(got) <= 1
    # A read that never returns does not hang close(): it gives up and says so.
    stuck = SlowRead(frames=100)
    cam2 = CameraSource(0, capture_factory=lambda dev: stuck)
    cam2._lock.acquire()
    cam2.close(timeout=0.05)
    assert not stuck.released
    cam2._lock.release()


def test_camera_that_does_not_open_or_never_delivers() -> None:
    with pytest.raises(InputError, match="camera 7 did not open"):
        CameraSource(7, capture_factory=lambda dev: FakeCapture(opened=False))
    cam = CameraSource(0, max_failures=2, capture_factory=lambda dev: FakeCapture(frames=0))
    with pytest.raises(InputError, match="delivered no frames"):
        next(iter(cam))


def test_synthetic_source_is_deterministic_and_moves() -> None:
    src = SyntheticSource(65, 37, fps=10, frames=4)
    frames = list(src)
    assert len(frames) == 4
    assert frames[0].image.shape == (37, 65, 3)
    assert [f.pts for f in frames] == [0, 1, 2, 3] and frames[0].time_base == Fraction(1, 10)
    assert np.array_equal(frames[2].image, SyntheticSource(65, 37, fps=10).render(2))
    assert not np.array_equal(frames[0].image, frames[3].image)
    with pytest.raises(InputError):
        SyntheticSource(1, 10)


def test_open_source_dispatches_by_spec(tmp_path: Path) -> None:
    syn = open_source("synthetic:80x60@12:2s")
    assert isinstance(syn, SyntheticSource)
    assert (syn.width, syn.height, syn.fps, syn.frame_count) == (80, 60, 12, 24)
    assert isinstance(open_source("demo"), SyntheticSource)
    cam = open_source("3", width=16, capture_factory=lambda dev: FakeCapture(size=(16, 12)))
    assert isinstance(cam, CameraSource) and cam.device == 3 and cam.width == 16
    clip = write_clip(tmp_path / "c.mp4", n_frames=2, audio=False)
    assert isinstance(open_source(str(clip)), VideoFileSource)


def test_even_pad_and_rotate() -> None:
    img = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    padded = even_pad(img)
    assert padded.shape == (6, 4, 3)
    assert np.array_equal(padded[:5, :3], img)
    assert np.array_equal(padded[5, :3], img[4]) and np.array_equal(padded[:5, 3], img[:, 2])
    assert even_pad(padded) is padded
    assert rotate(img, 0) is img
    assert rotate(img, -90).shape == (3, 5, 3)
    assert np.array_equal(rotate(img, 180), img[::-1, ::-1])
    # -90 (a phone's "rotate=90" tag) turns the picture clockwise: the top-left goes top-right.
    assert np.array_equal(rotate(img, -90)[0, -1], img[0, 0])


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    import struct

    clip = write_clip(tmp_path / "c.mp4", n_frames=2, size=(64, 48), audio=False)
    data = bytearray(clip.read_bytes())
    matrix = data.index(b"tkhd") + 44  # the track header's 3x3 display matrix (16.16 fixed point)
    # A phone's "rotate=90": display the stored landscape picture turned clockwise.
    data[matrix : matrix + 36] = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    rotated = _write(tmp_path / "rot.mp4", bytes(data))
    with VideoFileSource(rotated) as src:
        image = next(iter(src)).image.astype(int)
    assert image.shape == (64, 48, 3)
    # The clip's red grows left to right and its green top to bottom; turned clockwise,
    # red grows top to bottom and green right to left.
    assert image[:8, :, 2].mean() + 150 < image[-8:, :, 2].mean()
    assert image[:, :8, 1].mean() > image[:, -8:, 1].mean() + 150


def test_raw_h264_without_timestamps_is_timed_at_its_frame_rate(tmp_path: Path) -> None:
    # A raw elementary stream has no container timestamps: frames must still be 1/fps apart.
    clip = write_clip(tmp_path / "raw.h264", n_frames=12, fps=25, audio=False)
    with VideoFileSource(clip) as src:
        fps = float(src.fps)
        times = [f.time for f in src]
    assert len(times) == 12
    assert np.diff(times) == pytest.approx([1 / fps] * 11, rel=0.01)


def test_timestamps_that_jump_back_keep_increasing(tmp_path: Path) -> None:
    # Two MPEG-TS files joined byte for byte (`cat a.ts b.ts`): the second restarts at 0.
    a = write_clip(tmp_path / "a.ts", n_frames=10, fps=25, audio=False)
    b = write_clip(tmp_path / "b.ts", n_frames=10, fps=25, audio=False)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with VideoFileSource(joined) as src:
        frames = list(src)
    assert len(frames) == 20
    times = [f.time for f in frames]
    assert np.diff(times) == pytest.approx([0.04] * 19, abs=1e-3)
    assert np.all(np.diff([f.pts for f in frames]) > 0)


def test_file_names_with_a_colon_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_clip(tmp_path / "take:2.mp4", n_frames=3, audio=False)
    monkeypatch.chdir(tmp_path)  # relative, as typed: FFmpeg would read "take:" as a protocol name
    with VideoFileSource("take:2.mp4") as src:
        assert len(list(src)) == 3
