"""Gatys optimization and style evaluation, with a small random stand-in for VGG."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError, StylizeError
from stylize_video.models.vgg import VGGFeatures
from stylize_video.training.evaluate import evaluate_checkpoint
from stylize_video.training.optimize import OptimizeSettings, make_optimize_loss, optimize_image

from .conftest import make_image


def small_vgg() -> VGGFeatures:
    torch.manual_seed(1)
    return VGGFeatures(width_div=16)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_two_steps_lower_the_loss(optimizer: str) -> None:
    content = torch.rand(1, 3, 32, 32)
    before = content.clone()
    loss_fn = make_optimize_loss(small_vgg(), torch.rand(1, 3, 40, 40))
    seen: list[int] = []
    image, history = optimize_image(
        content,
        loss_fn,
        OptimizeSettings(iterations=2, optimizer=optimizer),
        progress=False,
        on_step=lambda it, _: seen.append(it),
    )
    assert seen == [1, 2] and len(history) == 2
    assert torch.equal(content, before)  # the caller's tensor is untouched
    assert image.shape == content.shape and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    final = loss_fn(image, loss_fn.content_targets(content))["total"].item()
    assert final < history[0]["total"]


def test_settings_name_the_bad_value() -> None:
    with pytest.raises(StylizeError, match="sgd"):
        OptimizeSettings(optimizer="sgd")
    with pytest.raises(StylizeError, match="-1"):
        OptimizeSettings(iterations=-1)


def test_optimize_cli_refuses_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo, painting, out = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "out.png"
    cv2.imwrite(str(photo), make_image())
    cv2.imwrite(str(painting), make_image(seed=3))
    out.write_bytes(b"keep me")
    code = main(["optimize", str(photo), str(painting), "-o", str(out), "--iterations", "1", "--device", "cpu"])
    assert code == 1 and "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("shape", "extra", "output", "message"),
    [
        ((48, 64), [], "result", "unsupported image extension"),  # found before minutes of work
        ((8, 160), ["--size", "32"], "out.png", "shorter side must be >= 16"),
        ((48, 64), ["--style-size", "8"], "out.png", "--style-size must be >= 16"),
    ],
)
def test_optimize_cli_checks_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shape: tuple[int, int],
    extra: list[str],
    output: str,
    message: str,
) -> None:
    photo, painting = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(photo), make_image(*shape))
    cv2.imwrite(str(painting), make_image(seed=3))
    # A VGG file that does not exist: the check must come before loading it.
    args = ["optimize", str(photo), str(painting), "-o", str(tmp_path / output), "--device", "cpu"]
    code = main([*args, "--vgg-weights", str(tmp_path / "missing.safetensors"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_evaluate_checkpoint_reports_losses_on_held_out_photos(tmp_path: Path, tiny_checkpoint: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        cv2.imwrite(str(photos / f"p{i}.png"), make_image(seed=i))
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), make_image(seed=7))
    result = evaluate_checkpoint(
        tiny_checkpoint, photos, style_image=painting, image_size=32, val_fraction=0.3, vgg=small_vgg()
    )
    assert result.images >= 1
    assert set(result.losses) == {"content", "style", "tv", "total", "temporal"} and result.losses["style"] > 0
    assert result.losses["temporal"] > 0  # a random network is not steady
    with pytest.raises(InputError, match="style image"):
        evaluate_checkpoint(tiny_checkpoint, photos, style_image=None, image_size=32, vgg=small_vgg())
