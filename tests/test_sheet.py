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
