"""benchmarks/person_face.py and the edge-band helpers it shares with person_mask, on generated frames (no models)."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import person_face
from benchmarks.person_mask import band_warping_error, edge_band
from stylize_video.metrics.temporal import WarpField
from tests.conftest import make_image
from tests.media import write_clip


def _still_field(h: int, w: int) -> WarpField:
    """No motion, every pixel consistent."""
    return WarpField(torch.zeros(1, 2, h, w), np.ones((h, w), np.float32))


def test_edge_band_and_interior() -> None:
    mask = np.zeros((60, 80), np.float32)
    mask[20:40, 30:50] = 1.0
    band, interior = edge_band(mask)
    # The person starts at column 30: the band is 4 px either side of that edge.
    assert band[30, 26:34].tolist() == [1] * 8
    assert band[30, 25] == 0 and band[30, 34] == 0 and band[30, 40] == 0
    assert interior[30, 17] == 1 and interior[30, 18] == 0 and interior[30, 40] == 0  # > 12 px outside only


def test_band_warping_error_scores_change_inside_the_weight_only() -> None:
    a = make_image(48, 64, seed=1)
    b = a.copy()
    b[:, 32:] = 255 - b[:, 32:]
    left = np.zeros((48, 64), np.float32)
    left[:, :32] = 1.0
    field = _still_field(48, 64)
    assert band_warping_error(b, a, field, left) == pytest.approx(0.0, abs=1e-9)
    assert band_warping_error(b, a, field, 1.0 - left) > 0.05
    assert band_warping_error(b, a, field, left * 0.0) is None  # nothing to score
    masks = np.stack([left, 1.0 - left]).astype(np.float32)  # float masks: one channel
    assert band_warping_error(masks[1], masks[0], field, np.ones_like(left)) == pytest.approx(1.0)


def test_score_of_a_perfect_background_composite() -> None:
    h, w = 48, 64
    video = [make_image(h, w, seed=i) for i in range(4)]
    full = [255 - f for f in video]
    person = np.zeros((h, w), np.float32)
    person[:, : w // 2] = 1.0
    output = [np.where(person[..., None] > 0.5, f, s) for f, s in zip(video, full, strict=True)]
    faces: list[tuple[int, int, int, int] | None] = [(4, 4, 24, 30)] * 3 + [None]
    row = person_face.score(video, output, full, [person] * 4, faces)
    assert row["frames with a face"] == 3
    assert row["face |out-in| mean"] == 0.0 and row["face |out-in| p95"] == 0.0
    assert row["face oval |out-in| mean"] == 0.0
    assert row["face |full-in| mean"] > 50
    assert row["background stylization kept"] == pytest.approx(1.0)
    assert row["background share"] == pytest.approx(0.5)


def test_talking_head_is_a_smoothly_moving_framed_photo() -> None:
    photo = make_image(300, 260, seed=5)
    clip = person_face.talking_head(photo, (100, 80, 160, 150), 12)
    assert len(clip) == 12 and all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in clip)
    steps = [float(np.abs(b.astype(int) - a).mean()) for a, b in itertools.pairwise(clip)]
    assert min(steps) > 0 and max(steps) < 40  # it moves, a little each frame


def test_anchor_order_matches_blazeface() -> None:
    anchors = person_face._anchors()
    assert anchors.shape == (896, 2)
    assert anchors[143].tolist() == pytest.approx([7.5 / 16, 4.5 / 16])  # 16x16 grid, two per cell
    assert anchors[512 + 168].tolist() == pytest.approx([4.5 / 8, 3.5 / 8])  # then 8x8, six per cell


def test_missing_photos_or_models_skip_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert person_face.main(["--photos-dir", str(tmp_path / "nowhere")]) == 0
    assert "skipped, photos not found" in capsys.readouterr().out
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"")
    assert person_face.main(["--photos", str(photo), "--face-model", str(tmp_path / "none.tflite")]) == 0
    assert "skipped, no face_detection_short_range.tflite" in capsys.readouterr().out


def test_oval_is_inscribed() -> None:
    oval = person_face._oval(20, 10)
    assert oval[10, 5] and oval[0, 5] and oval[10, 0]  # centre and the middle of each side
    assert not oval[0, 0] and not oval[19, 9]  # not the corners
    assert 0.75 < oval.mean() < 0.82  # pi / 4 of the box


def test_read_clip_takes_the_span_and_the_rate(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", n_frames=10, size=(64, 48), fps=24, audio=False)
    frames, fps = person_face.read_clip(clip, 3, 4)
    assert fps == pytest.approx(24.0)
    assert len(frames) == 4 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    whole, _ = person_face.read_clip(clip, 0, 100)
    assert len(whole) == 10  # a span past the end stops at the end
    np.testing.assert_array_equal(frames[0], whole[3])
    assert person_face.read_clip(clip, 20, 5)[0] == []


def test_compare_variants_parse_as_masker_settings() -> None:
    assert person_face.parse_variant("hold=None") == ("hold=None", {"hold": None})
    assert person_face.parse_variant("hold=0.9, feather_sigma=2") == (
        "hold=0.9, feather_sigma=2",
        {"hold": 0.9, "feather_sigma": 2},
    )
    for bad in ("hold", "=1", "hold=abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            person_face.parse_variant(bad)


def test_missing_clips_skip_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert person_face.main(["--clip", str(tmp_path / "none.mp4")]) == 0
    assert "skipped, clips not found" in capsys.readouterr().out
