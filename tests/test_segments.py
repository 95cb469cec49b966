"""Joining encoded segments (io/segments.py) and copying audio into them (io/audio.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stylize_video.errors import OutputError
from stylize_video.io.segments import join_segments
from tests.media import probe, write_clip


def _halves(tmp_path: Path) -> tuple[Path, Path]:
    """Two 1 s pieces of one 12 fps timeline, encoded apart with the same settings (as batch workers do)."""
    a = write_clip(tmp_path / "00000.mp4", n_frames=12, fps=12, codec="mpeg4", audio=False)
    b = write_clip(tmp_path / "00001.mp4", n_frames=12, fps=12, codec="mpeg4", audio=False, start_s=1.0)
    return a, b


def test_join_remuxes_segments_and_copies_the_audio(tmp_path: Path) -> None:
    a, b = _halves(tmp_path)
    source = write_clip(tmp_path / "source.mp4", n_frames=24, fps=12, codec="mpeg4")
    assert join_segments([a, b], tmp_path / "joined.mp4", str(source)) == 24
    joined, original = probe(tmp_path / "joined.mp4"), probe(source)
    assert joined.frames == 24
    assert joined.pts_seconds == pytest.approx([i / 12 for i in range(24)])
    # The audio is copied packet for packet, not re-encoded.
    assert joined.audio_codecs == ["aac"] and joined.audio_packets == original.audio_packets


def test_join_without_audio_source_or_with_a_silent_one(tmp_path: Path) -> None:
    a, b = _halves(tmp_path)
    assert join_segments([a, b], tmp_path / "plain.mp4", None) == 24
    assert probe(tmp_path / "plain.mp4").audio_streams == 0
    silent = write_clip(tmp_path / "silent.mp4", n_frames=24, fps=12, codec="mpeg4", audio=False)
    join_segments([a, b], tmp_path / "quiet.mp4", str(silent))
    assert probe(tmp_path / "quiet.mp4").audio_streams == 0


def test_join_of_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no segments"):
        join_segments([], tmp_path / "joined.mp4", None)
    assert not list(tmp_path.iterdir())
