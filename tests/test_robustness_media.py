"""Robustness: real-world media faults (issue 16, class 2).

Badly muxed B-frame files whose pts come out of order, pts missing, joined
recordings whose clock restarts, and files cut short. Every clip is generated here
with PyAV, a few dozen 64x48 frames, so the module runs in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.io.base import BestEffortTimestamps, Frame, Source
from stylize_video.io.sources import VideoFileSource
from stylize_video.runtime.pipeline import Pipeline
from stylize_video.runtime.stylizer import Stylizer
from tests.media import clip_frame, probe, write_clip

FPS = 25
SIZE = (64, 48)
REPAIRED = "timestamps are out of order"
TRUNCATED = "ends early"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--no-progress", "--threads", "1"])


# ------------------------------------------------------------------ generators
def _bframe_packets(n: int) -> tuple[av.CodecContext, list[av.Packet]]:
    """H.264 with B-frames (decode order differs from display order), 1/FPS time base."""
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = *SIZE, "yuv420p"
    cc.time_base = Fraction(1, FPS)
    cc.framerate = Fraction(FPS)
    cc.options = {"preset": "veryfast", "bframes": "3", "b-pyramid": "normal", "crf": "35", "g": "10"}
    cc.open()
    packets: list[av.Packet] = []
    for i in range(n):
        vf = av.VideoFrame.from_ndarray(clip_frame(i, *SIZE), format="rgb24")
        vf.pts, vf.time_base = i, cc.time_base
        packets += cc.encode(vf)
    packets += cc.encode(None)
    assert any(p.pts != p.dts for p in packets), "the encoder made no B-frames: the test would prove nothing"
    return cc, packets


def _write_tone(out: av.container.OutputContainer, seconds: float, rate: int = 16000) -> None:
    a = out.add_stream("aac", rate=rate)
    a.layout = "mono"
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate)).astype(np.float32)
    for start in range(0, len(tone), 1024):
        af = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="flt", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
        for p in a.encode(af):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)


def _broken(path: Path, rewrite: Callable[[int, av.Packet], None], n: int = 40, audio: bool = True) -> Path:
    """Mux B-frame H.264 (+ a tone as long as the video) with each packet's timestamps passed through ``rewrite``."""
    cc, packets = _bframe_packets(n)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height = SIZE
        vs.codec_context.extradata = cc.extradata
        vs.time_base = Fraction(1, FPS)
        if audio:
            _write_tone(out, n / FPS)
        for k, p in enumerate(packets):
            rewrite(k, p)
            p.stream, p.time_base = vs, Fraction(1, FPS)
            out.mux(p)
    return path


def _decode_order(k: int, p: av.Packet) -> None:
    p.pts = p.dts  # the classic broken muxer: presentation times in decode order


def _swap_pairs(k: int, p: av.Packet) -> None:
    # Garbled: every third packet gets its neighbour's pts (dts stay valid).
    if p.pts is not None and k % 3 == 1:
        p.pts = max(p.dts, p.pts - 2)


def _one_far_ahead(k: int, p: av.Packet) -> None:
    if k == 20:
        p.pts += 5000  # one garbage value, 200 s in the future


def _audio_end(path: Path) -> float:
    """Where the audio's last packet ends, in seconds (the video may be too broken for ``probe``)."""
    with av.open(str(path)) as c:
        ends = [
            float((p.pts + (p.duration or 0)) * p.time_base) for p in c.demux(c.streams.audio[0]) if p.pts is not None
        ]
    return max(ends)


def _reorder_broken(tmp_path: Path, kind: str) -> Path:
    if kind == "outlier":
        return _broken(tmp_path / "outlier.mkv", _one_far_ahead)
    if kind == "avi":  # AVI has no pts field: B-frames come back out of order from a normal mux
        return _broken(tmp_path / "bframes.avi", lambda k, p: None)
    if kind == "swapped":
        return _broken(tmp_path / "swapped.mkv", _swap_pairs)
    return _broken(tmp_path / f"decode-order.{kind}", _decode_order)


# ------------------------------------------------------------------ timestamps
@pytest.mark.parametrize("kind", ["mkv", "ts", "flv", "avi", "swapped", "outlier"])
def test_out_of_order_pts_keep_video_as_long_as_its_audio(
    tmp_path: Path, tiny_checkpoint: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    src = _reorder_broken(tmp_path, kind)
    with VideoFileSource(src) as s:
        pts = [f.pts for f in s]
    assert np.all(np.diff(pts) > 0)
    out = tmp_path / "out.mp4"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _run("-i", src, "-o", out, "-s", tiny_checkpoint) == 0
    p = probe(out)
    assert p.frames == len(pts)
    # The bug: every reordered frame was taken for a jump back, the video came out twice as long.
    # The tone is exactly as long as the 40 frames (its AAC packets run a little past, by
    # the encoder's padding, in containers without edit lists): compare with that.
    tone = 40 / FPS
    assert abs(p.pts_seconds[0] + p.video_duration - tone) <= 1 / FPS + 1e-3, (p.video_duration, tone)
    assert p.audio_end == pytest.approx(_audio_end(src), abs=1 / FPS)  # the audio came along whole
    assert abs(p.pts_seconds[0]) <= 1 / FPS + 1e-3  # AVI itself puts B-frame video one frame in
    assert np.all(np.diff(p.pts_seconds) > 0)
    said = [r for r in caplog.records if REPAIRED in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]  # said once, not per frame


def test_pts_missing_with_valid_dts_follow_the_dts() -> None:
    ts = BestEffortTimestamps(frame_ticks=40)
    out = [ts(None, 1000 + 40 * i) for i in range(10)]
    assert out == [1000 + 40 * i for i in range(10)]
    assert ts.repaired == 0 and ts.jumps == 0


def test_reordered_pts_without_dts_are_repaired_within_the_window() -> None:
    # Display-order frames carrying decode-order pts (B-pyramid), no dts at all.
    garbled = [0, 2, 3, 1, 5, 6, 4, 8, 9, 7, 11, 12, 10, 14, 15, 13]
    ts = BestEffortTimestamps(frame_ticks=1)
    out = [ts(p, None) for p in garbled]
    assert np.all(np.diff(out) > 0)
    assert out[-1] - out[0] <= len(garbled)  # not one jump per reordered frame
    assert ts.repaired > 0 and ts.jumps == 0


def test_a_real_jump_back_continues_one_frame_later() -> None:
    # Two recordings joined: the second restarts its clock (pts and dts alike).
    ts = BestEffortTimestamps(frame_ticks=3600)
    first = [ts(90000 + 3600 * i, 90000 + 3600 * i) for i in range(40)]
    second = [ts(90000 + 3600 * i, 90000 + 3600 * i) for i in range(40)]
    both = first + second
    assert np.diff(both) == pytest.approx([3600] * 79)
    assert ts.jumps == 1 and ts.repaired == 0


@pytest.mark.parametrize("garbage", [10**6, -(10**6)], ids=["ahead", "behind"])
def test_one_garbage_timestamp_opens_no_gap_and_starts_no_jump(garbage: int) -> None:
    raw = [*range(10), garbage, *range(11, 30)]
    ts = BestEffortTimestamps(frame_ticks=1)
    out = [ts(t, None, (raw[i + 1], None) if i + 1 < len(raw) else None) for i, t in enumerate(raw)]
    assert out == list(range(30))
    assert ts.repaired == 1 and ts.jumps == 0


def test_a_real_gap_stays_a_gap() -> None:
    # A recording paused for 100 frames: the next frames go on from after the gap.
    raw = [*range(10), *range(110, 130)]
    ts = BestEffortTimestamps(frame_ticks=1)
    out = [ts(t, t, (raw[i + 1], raw[i + 1]) if i + 1 < len(raw) else None) for i, t in enumerate(raw)]
    assert out == raw
    assert ts.repaired == 0 and ts.jumps == 0


def test_a_short_joined_part_is_not_called_reordering() -> None:
    # The clock restarts only a few frames back (shorter than the reorder window) and never rises past again.
    ts = BestEffortTimestamps(frame_ticks=1)
    out = [ts(t, t) for t in [*range(10), *range(6), *range(6, 40)]]
    assert np.diff(out) == pytest.approx([1] * (len(out) - 1))
    assert ts.repaired == 0 and ts.jumps == 1


def test_joined_ts_files_continue_in_sync_without_a_repair_warning(
    tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = write_clip(tmp_path / "a.ts", n_frames=30, fps=FPS, audio=False)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() * 2)  # `cat a.ts a.ts`: the clock restarts half-way
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO):
        assert _run("-i", joined, "-o", out, "-s", tiny_checkpoint) == 0
    p = probe(out)
    assert p.frames == 60
    assert np.diff(p.pts_seconds) == pytest.approx([1 / FPS] * 59, abs=1e-3)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if REPAIRED in m or TRUNCATED in m]
    assert any("jump back" in m for m in messages)


def test_joined_ts_files_with_audio_keep_both(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # Today's bug before this: the audio's clock went back too, and muxing it failed the whole run.
    a = write_clip(tmp_path / "a.ts", n_frames=30, fps=FPS, audio=True)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() * 2)
    out = tmp_path / "out.mp4"
    assert _run("-i", joined, "-o", out, "-s", tiny_checkpoint) == 0
    one, p = probe(a), probe(out)
    assert p.frames == 60 and p.video_duration == pytest.approx(2 * 30 / FPS, abs=1e-3)
    assert p.audio_packets == [2 * n for n in one.audio_packets]  # both halves, nothing lost
    # Each half's audio goes on where the last one ended: off by the encoder's padding at most.
    assert abs(p.audio_end - (p.pts_seconds[0] + p.video_duration)) <= 2 * (one.audio_end - 30 / FPS) + 1e-3


@pytest.mark.parametrize(
    "make",
    [
        lambda d: write_clip(d / "n.mp4", n_frames=30),
        lambda d: write_clip(d / "n.mkv", n_frames=30, vfr=True),
        lambda d: write_clip(d / "n.ts", n_frames=30, start_s=10.0),
        lambda d: write_clip(d / "n.webm", n_frames=30, codec="libvpx-vp9", audio_codec="libopus"),
        lambda d: write_clip(d / "n.h264", n_frames=30, audio=False),
        lambda d: _broken(d / "b.mp4", lambda k, p: None),  # B-frames, muxed right
        lambda d: _broken(d / "b.mkv", lambda k, p: None),
    ],
    ids=["mp4", "mkv-vfr", "ts-offset", "webm", "raw-h264", "mp4-bframes", "mkv-bframes"],
)
def test_normal_files_neither_repaired_nor_truncated(
    tmp_path: Path, make: Callable[[Path], Path], caplog: pytest.LogCaptureFixture
) -> None:
    src = make(tmp_path)
    with caplog.at_level(logging.WARNING), VideoFileSource(src) as s:
        frames = list(s)
        assert not s.truncated
    assert len(frames) >= 28
    assert caplog.records == []


# ------------------------------------------------------------------ truncation
def _faststart(src: Path, dst: Path) -> Path:
    """Remux with the index first (as phones and web uploads do): a cut file still opens."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    return dst


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: int(len(data) * fraction)])  # `head -c`
    return cut


@pytest.mark.parametrize("ext", ["mp4", "mkv", "webm"])
def test_a_file_cut_short_converts_what_decodes_and_warns(
    tmp_path: Path,
    tiny_checkpoint: Path,
    ext: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if ext == "webm":
        full = write_clip(tmp_path / "full.webm", n_frames=75, codec="libvpx-vp9", audio_codec="libopus")
    else:
        full = write_clip(tmp_path / f"full.{ext}", n_frames=75)
    if ext == "mp4":
        full = _faststart(full, tmp_path / "fs.mp4")
    cut = _cut(full, 0.5)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        assert _run("-i", cut, "-o", out, "-s", tiny_checkpoint) == 0
    said = [r.getMessage() for r in caplog.records if TRUNCATED in r.getMessage()]
    assert len(said) == 1
    decoded = probe(out).frames
    assert 10 < decoded < 60
    assert f"decoded {decoded} of ~" in said[0]
    assert "input truncated" in capsys.readouterr().out


def test_truncation_is_found_after_a_seek_too(tmp_path: Path) -> None:
    # `batch` reads a long file in segments: the last one seeks and reads to the end.
    full = _faststart(_broken(tmp_path / "full.mp4", lambda k, p: None, n=100, audio=False), tmp_path / "fs.mp4")
    for path, truncated in ((full, False), (_cut(full, 0.6), True)):
        with VideoFileSource(path) as src:
            src.container.seek(round(1.0 / src.time_base), stream=src.stream, backward=True)
            frames = list(src)
            assert 0 < len(frames) < 100 and src.truncated is truncated


def test_truncation_reaches_the_pipeline_stats(tmp_path: Path, tiny_net: torch.nn.Module) -> None:
    full = _faststart(write_clip(tmp_path / "full.mp4", n_frames=50, audio=False), tmp_path / "fs.mp4")
    stylizer = Stylizer(tiny_net, device="cpu")
    with VideoFileSource(_cut(full, 0.5)) as cut:
        stats = Pipeline(cut, stylizer, []).run()
    assert stats.truncated and 0 < stats.frames < 50
    with VideoFileSource(full) as whole:
        stats = Pipeline(whole, stylizer, []).run()
    assert not stats.truncated and stats.frames == 50


def test_sources_are_not_truncated_by_default() -> None:
    class Plain(Source):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield Frame(np.zeros((8, 8, 3), np.uint8), 0)

    assert Plain().truncated is False


def test_webm_from_44100_hz_audio_resamples_for_opus(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # Opus refuses 44.1 kHz (the rate of most MP3/AAC sources): it used to fail in the encoder.
    src = write_clip(tmp_path / "in.mp4", n_frames=25, audio_rate=44100)
    out = tmp_path / "out.webm"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint) == 0
    with av.open(str(out)) as c:
        (audio,) = c.streams.audio
        assert audio.codec_context.name == "opus" and audio.codec_context.sample_rate == 48000
    got = probe(out)
    assert got.frames == 25 and abs(got.audio_duration - 1.0) < 0.1
