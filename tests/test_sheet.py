from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stylize_video.cli import main
from stylize_video.io.sheet import label_tile, tile

from .conftest import make_image


def test_tile_layout_and_gutters() -> None:
    ims = [np.full((10, 20, 3), v, np.uint8) for v in (0, 50, 100)]
    sheet = tile(ims, cols=2, gap=2)
    assert sheet.shape == (2 * 10 + 3 * 2, 2 * 20 + 3 * 2, 3)
    assert (sheet[2:12, 2:22] == 0).all() and (sheet[2:12, 24:44] == 50).all() and (sheet[14:24, 2:22] == 100).all()
    assert (sheet[14:24, 24:44] == 255).all()  # empty cell stays white
    with pytest.raises(ValueError, match="same size"):
        tile([ims[0], np.zeros((5, 5, 3), np.uint8)])


def test_label_changes_only_the_bottom_band_and_not_the_input() -> None:
    im = make_image(120, 160)
    before = im.copy()
    out = label_tile(im, "Starry Night")
    assert np.array_equal(im, before)
    assert np.array_equal(out[:60], im[:60]) and not np.array_equal(out[-10:], im[-10:])


def test_sheet_command(tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tiny_checkpoint.parent))
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), make_image(60, 80))
    out = tmp_path / "sheet.jpg"
    assert (
        main(
            [
                "sheet",
                str(photo),
                "-s",
                "tiny",
                "-s",
                str(tiny_checkpoint),
                "-o",
                str(out),
                "--tile-size",
                "40",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[1] > 2 * 40  # original + 2 styles on one row


def test_blend_specs_and_labels() -> None:
    from stylize_video.io.sheet import BLEND_WEIGHTS, blend_label, blend_spec

    assert BLEND_WEIGHTS == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert [blend_spec("a", "b", w) for w in BLEND_WEIGHTS] == [
        "a",
        "a=0.75+b=0.25",
        "a=0.5+b=0.5",
        "a=0.25+b=0.75",
        "b",
    ]
    assert [blend_label("a", "b", w) for w in (0.0, 0.25, 1.0)] == ["a", "75% a + 25% b", "b"]
    with pytest.raises(ValueError, match=r"0\.\.1"):
        blend_spec("a", "b", 1.5)


def test_a_long_label_shrinks_to_fit_its_tile() -> None:
    import cv2

    im = np.zeros((100, 180, 3), np.uint8)
    text = "75% starry-night-lite + 25% great-wave-lite"
    assert cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)[0][0] > 180  # too long at the usual size
    out = label_tile(im, text)
    ink = np.flatnonzero(out.max(axis=(0, 2)) > 128)
    assert ink.size and ink[0] >= 2 and ink[-1] <= 177  # the text stays inside the tile


def _two_styles(tmp_path: Path) -> tuple[Path, Path]:
    """Two single-style checkpoints of one architecture but different weights (like the shipped lite styles)."""
    import torch

    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint
    from stylize_video.models.transform_net import TransformNet

    from .conftest import TINY

    paths = []
    for seed, name in ((1, "red"), (2, "blue")):
        torch.manual_seed(seed)
        net = TransformNet(TINY).eval()
        paths.append(save_checkpoint(tmp_path / f"{name}.safetensors", net, CheckpointMeta(name=name)))
    return paths[0], paths[1]


def test_sheet_blend_strip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from stylize_video.runtime.stylizer import Stylizer

    red, blue = _two_styles(tmp_path)
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tmp_path))
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), make_image(60, 80))
    out = tmp_path / "strip.png"  # lossless, so tiles compare exactly
    common = ["sheet", str(photo), "-o", str(out), "--tile-size", "80", "--device", "cpu"]
    assert main([*common, "--blend", "red", "blue"]) == 0
    strip = cv2.imread(str(out))
    assert strip is not None and strip.shape == (60 + 2 * 4, 5 * 80 + 6 * 4, 3)  # one row of five
    tiles = [strip[4:64, 4 + i * 84 : 84 + i * 84].astype(np.float32) for i in range(5)]
    image = cv2.imread(str(photo))
    ends = [Stylizer(str(p), device="cpu")(image).astype(np.float32) for p in (red, blue)]
    above_label = slice(0, 40)  # the labels darken the bottom band
    assert np.abs(tiles[0][above_label] - ends[0][above_label]).max() <= 1
    assert np.abs(tiles[4][above_label] - ends[1][above_label]).max() <= 1
    # Different networks: their outputs are mixed, so the middle tile is the mean of the ends.
    middle = (ends[0] + ends[1]) / 2
    assert np.abs(tiles[2][above_label] - middle[above_label]).max() <= 2
    steps = [float(np.abs(t[above_label] - ends[0][above_label]).mean()) for t in tiles]
    assert steps == sorted(steps) and steps[0] < 1 < steps[1]  # further from red at every step
    assert "red=0.5+blue=0.5: done" in capsys.readouterr().out

    for bad, reason in [
        (["--blend", "red", "red"], "two different styles"),
        (["--blend", "red", "blue", "-s", "red"], "not both"),
        (["--blend", "red", "nosuch"], "nosuch"),
    ]:
        assert main([*common, "--overwrite", *bad]) == 1
        err = capsys.readouterr().err
        assert reason in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sheet_grid_takes_blend_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_styles(tmp_path)
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tmp_path))
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), make_image(60, 80))
    out = tmp_path / "grid.jpg"
    argv = ["sheet", str(photo), "-s", "red", "-s", "red=0.7+blue=0.3", "-o", str(out), "--tile-size", "40"]
    assert main([*argv, "--cols", "3", "--device", "cpu"]) == 0
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[1] == 3 * 40 + 4 * 4  # original, red, the blend
