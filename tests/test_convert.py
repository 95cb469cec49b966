"""stylize_file: the one-call library path from an input to a stylized file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylize_video import stylize_file
from stylize_video.errors import OutputError, StylizeError
from stylize_video.io.images import read_image
from stylize_video.models.transform_net import TransformNet

from .media import probe, write_clip


def test_file_to_file_keeps_frames_size_and_audio(tmp_path: Path, tiny_net: TransformNet) -> None:
    clip = write_clip(tmp_path / "in.mp4", n_frames=10, size=(64, 48), audio=True)
    out = tmp_path / "out.mp4"
    stats = stylize_file(clip, out, tiny_net, device="cpu", precision="fp32")
    assert stats.frames == 10 and not stats.interrupted
    got, src = probe(out), probe(clip)
    assert (got.width, got.height, got.frames) == (64, 48, 10)
    assert got.audio_streams == 1
    assert abs(got.audio_duration - src.audio_duration) < 0.1


def test_frames_folder_and_max_frames(tmp_path: Path, tiny_net: TransformNet) -> None:
    out = tmp_path / "frames" / "%03d.png"
    stats = stylize_file("synthetic:40x30@10:2s", out, tiny_net, max_frames=5, device="cpu")
    assert stats.frames == 5
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == [f"{i:03d}.png" for i in range(5)]
    assert read_image(out.parent / "000.png").shape == (30, 40, 3)


def test_output_exists_is_refused_and_kept(tmp_path: Path, tiny_net: TransformNet) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists"):
        stylize_file("synthetic:32x32@10:1s", out, tiny_net, device="cpu")
    assert out.read_bytes() == b"precious"


def test_input_is_never_overwritten(tmp_path: Path, tiny_net: TransformNet) -> None:
    clip = write_clip(tmp_path / "in.mp4", n_frames=3, audio=False)
    before = clip.read_bytes()
    with pytest.raises(OutputError):
        stylize_file(clip, clip, tiny_net, overwrite=True, device="cpu")
    assert clip.read_bytes() == before


def test_bad_options_are_one_line_errors_and_leave_no_file(tmp_path: Path, tiny_net: TransformNet) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(StylizeError, match="smoothing"):
        stylize_file("synthetic:32x32@10:1s", out, tiny_net, smooth="blur")
    with pytest.raises(StylizeError, match="max_frames"):
        stylize_file("synthetic:32x32@10:1s", out, tiny_net, max_frames=0)
    with pytest.raises(OutputError, match="live outputs"):
        stylize_file("synthetic:32x32@10:1s", "window", tiny_net)
    # A style that cannot load fails after the sink was opened: nothing may be left behind.
    with pytest.raises(StylizeError):
        stylize_file("synthetic:32x32@10:1s", out, tmp_path / "missing.safetensors", device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_smoothing_and_strength_pass_through(tmp_path: Path, tiny_net: TransformNet) -> None:
    plain = tmp_path / "plain" / "%02d.png"
    faded = tmp_path / "faded" / "%02d.png"
    stylize_file("synthetic:32x32@10:1s", plain, tiny_net, max_frames=3, device="cpu", strength=1.0)
    stylize_file("synthetic:32x32@10:1s", faded, tiny_net, max_frames=3, device="cpu", strength=0.0, smooth="ema")
    a = read_image(plain.parent / "02.png").astype(int)
    b = read_image(faded.parent / "02.png").astype(int)
    assert np.abs(a - b).mean() > 1.0  # strength 0 gives the original scene, not the stylized one
