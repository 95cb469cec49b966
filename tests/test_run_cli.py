"""`stylize-video run` end to end on generated clips, and bare `stylize-video`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.cli import main
from tests.media import probe, write_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # On a busy 2-core machine two intra-op threads run 10x slower than one.
    torch.set_num_threads(1)


def _run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--no-progress", "--threads", "1"])


def test_file_to_file_keeps_frames_timing_and_audio(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=16, size=(64, 48), fps=25, audio=True, vfr=True)
    out = tmp_path / "out.mp4"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint) == 0
    a, b = probe(src), probe(out, keep_images=True)
    assert (b.width, b.height, b.frames) == (64, 48, 16)
    assert b.pts_seconds == pytest.approx(a.pts_seconds, abs=1e-3)  # VFR stays VFR
    assert b.audio_codecs == ["aac"]
    assert b.audio_duration == pytest.approx(a.audio_duration, abs=1 / 25)
    assert not np.array_equal(b.images[0], probe(src, keep_images=True).images[0])  # it was stylized
    stdout = capsys.readouterr().out
    assert f"wrote {out}" in stdout and "16 frames" in stdout and "0 dropped" in stdout
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_odd_size_input_is_padded_by_one_pixel(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = write_clip(tmp_path / "odd.mkv", n_frames=3, size=(63, 47), audio=False, codec="ffv1")
    out = tmp_path / "odd.mp4"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint, "--max-frames", "2") == 0
    p = probe(out)
    assert (p.width, p.height, p.frames) == (64, 48, 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: (d / "text.mp4").write_text("hello\n" * 100) and d / "text.mp4", "not a readable video"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    src = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "out.mp4"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(src) in err[0]
    assert not out.exists()


def test_outputs_are_never_overwritten_without_asking(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=3, audio=False)
    before = src.read_bytes()
    assert _run("-i", src, "-o", src, "-s", tiny_checkpoint, "--overwrite") == 1
    assert "also an input" in capsys.readouterr().err and src.read_bytes() == before
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint, "--overwrite") == 0
    assert probe(out).frames == 3


def test_corrupt_input_is_skipped_and_counted(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_clip(tmp_path / "c.mp4", n_frames=60, size=(64, 48), audio=False)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    for off in range(len(data) // 3, 2 * len(data) // 3, 1500):
        data[off : off + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    assert _run("-i", bad, "-o", out, "-s", tiny_checkpoint) == 0
    assert "corrupt packets skipped" in capsys.readouterr().out
    assert 30 < probe(out).frames < 60


def test_smoothing_and_encoder_options(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = write_clip(tmp_path / "in.mp4", n_frames=4, audio=False)
    out = tmp_path / "ema.mkv"
    args = ["-i", src, "-s", tiny_checkpoint, "--smooth", "ema", "--smooth-strength", "0.7"]
    assert _run(*args, "-o", out, "--codec", "hevc", "--bitrate", "300k", "--preset", "ultrafast") == 0
    import av

    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    assert probe(out).frames == 4
    assert _run(*args[:-1], "1.5", "-o", tmp_path / "x.mp4") == 1
    assert _run(*args, "-o", tmp_path / "y.mp4", "--bitrate", "lots") == 1
    assert not (tmp_path / "y.mp4").exists()


def test_window_and_file_together(tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    import stylize_video.io.window as window

    shown: list[tuple[int, ...]] = []
    monkeypatch.setattr(window, "has_display", lambda: True)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, img: shown.append(img.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: -1)
    monkeypatch.setattr(cv2, "setWindowProperty", lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    out = tmp_path / "rec.mp4"
    assert (
        main(["run", "-i", "synthetic:48x32@10:0.5s", "-o", "window", "-o", str(out), "-s", str(tiny_checkpoint)]) == 0
    )
    assert shown == [(32, 48, 3)] * 5
    assert probe(out).frames == 5


def test_bare_command_renders_the_demo_to_a_fresh_file(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stylize_video.commands.run as run_cmd

    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "tiny.safetensors").write_bytes(tiny_checkpoint.read_bytes())
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(styles))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(run_cmd, "DEMO_SOURCE", "synthetic:64x36@10:0.3s")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main([]) == 0
    assert main([]) == 0  # never overwrites the first demo
    stdout = capsys.readouterr().out
    first, second = work / "stylize-video-demo.mp4", work / "stylize-video-demo-1.mp4"
    assert f"wrote {first}" in stdout and f"wrote {second}" in stdout
    assert probe(first).frames == 3 and (probe(second).width, probe(second).height) == (64, 36)


def test_bare_command_without_styles_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stylize_video.models.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "available_styles", lambda: {})
    monkeypatch.chdir(tmp_path)
    assert main([]) == 1
    assert "no styles installed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# SIGTERM (timeout, kill, docker stop) and SIGHUP (terminal closed) finish like Ctrl-C.
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_stop_signal_leaves_a_playable_file_with_audio(tmp_path: Path, tiny_checkpoint: Path, signum: int) -> None:
    src = write_clip(tmp_path / "long.mp4", n_frames=1500, size=(64, 48), fps=25, audio=True)
    out = tmp_path / "out.mp4"
    # The repo first, then whatever the parent had (e.g. packages installed with --target).
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "stylize_video", "run", "-i", str(src), "-o", str(out), "-s", str(tiny_checkpoint)]
    proc = subprocess.Popen(
        [*cmd, "--threads", "1", "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        # The partial file appears once the encoder has produced its first packets.
        while not list(tmp_path.glob(".out.partial-*.mp4")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout
    p = probe(out)
    assert 0 < p.frames < 1500
    assert p.audio_codecs == ["aac"]
    assert abs(p.audio_end - p.video_duration) < 0.07  # audio stops with the last frame
    assert not list(tmp_path.glob(".out.partial-*"))


def test_camera_unplugged_mid_run_finalizes_the_recording(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    import cv2

    from tests.test_sources import FakeCapture

    monkeypatch.setattr(cv2, "VideoCapture", lambda device: FakeCapture(frames=6, size=(48, 32)))
    out = tmp_path / "cam.mp4"
    assert _run("-i", "0", "-o", out, "-s", tiny_checkpoint, "--width", "48", "--height", "32") == 1
    captured = capsys.readouterr()
    assert "camera 0 stopped delivering frames after 6 (unplugged?)" in captured.err
    m = re.search(r"(\d+) frames in .* (\d+) dropped", captured.out)
    assert m is not None and int(m.group(1)) + int(m.group(2)) == 6
    p = probe(out)  # finalized and playable
    assert p.frames == int(m.group(1)) >= 1 and (p.width, p.height) == (48, 32)


def test_flow_smoothing_option(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pytest.importorskip("stylize_video.runtime.flow_smoother")
    src = write_clip(tmp_path / "in.mp4", n_frames=3, audio=False)
    out = tmp_path / "flow.mp4"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint, "--smooth", "flow") == 0
    assert probe(out).frames == 3
