"""Temporal loss in training: synthetic frame pairs, the masked loss, and runs that use it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from stylize_video.errors import InputError
from stylize_video.models.checkpoint import load_checkpoint
from stylize_video.training.temporal import (
    Motion,
    make_pair,
    motion_generator,
    random_grid,
    temporal_loss,
    validation_temporal,
    warp,
)
from stylize_video.training.train import train

from .conftest import TINY
from .test_training import _config, small_vgg

STILL = Motion(max_shift=0.0, max_rotate_deg=0.0, max_zoom=0.0, elastic=0.0, noise=0.0)


def _images(n: int = 2, h: int = 40, w: int = 48) -> torch.Tensor:
    torch.manual_seed(3)
    # Smooth content, so bilinear resampling is close to exact.
    return torch.nn.functional.interpolate(torch.rand(n, 3, 5, 6), size=(h, w), mode="bilinear")


def test_pure_shift_is_a_constant_offset_within_the_limit() -> None:
    x = _images()
    motion = dataclasses.replace(STILL, max_shift=0.1)
    pair = make_pair(x, motion, motion_generator(0, 0))
    identity = random_grid(2, 40, 48, STILL, motion_generator(0, 0))
    offset = pair.grid - identity
    # Every pixel of an image moves by the same amount, different per image, <= 10% of the size.
    assert float(offset.std(dim=(1, 2)).max()) < 1e-5
    assert float(offset.abs().max()) <= 2 * 0.1 + 1e-6 and float(offset.abs().max()) > 0.01
    assert not torch.allclose(offset[0, 0, 0], offset[1, 0, 0])
    assert torch.equal(pair.frames, warp(x, pair.grid).clamp(0, 1))
    # An integer shift (in pixels) moves the content exactly.
    grid = identity.clone()
    grid[..., 0] += 3 * 2 / 48
    assert torch.allclose(warp(x, grid)[..., :-3], x[..., 3:], atol=1e-5)


def test_mask_flags_pixels_that_came_from_outside_the_frame() -> None:
    x = _images(1)
    pair = make_pair(x, dataclasses.replace(STILL, max_shift=0.1), motion_generator(0, 0))
    invalid_columns = (pair.mask[0, 0] == 0).all(dim=0)
    assert 1 <= int(invalid_columns.sum()) <= 6  # a strip as wide as the shift
    assert bool(invalid_columns[0]) != bool(invalid_columns[-1])  # on one side only
    assert int((pair.mask[0, 0] == 0).any(dim=1).sum()) == 40 or float(pair.mask.mean()) > 0.85


def test_loss_is_zero_for_a_network_that_follows_the_motion_and_large_for_one_that_flickers() -> None:
    x = _images()
    pair = make_pair(x, Motion(noise=0.0), motion_generator(1, 7))
    # Identity "stylization" moves with the content: no temporal error.
    assert float(temporal_loss(x, pair.frames, pair)) < 1e-4
    # A texture fixed to the screen (not to the content) is what swimming looks like.
    texture = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0)) * 0.5
    swimming = float(temporal_loss(x + texture, pair.frames + texture, pair))
    assert swimming > 50 * float(temporal_loss(x, pair.frames, pair)) and swimming > 1e-3


def test_noise_in_the_second_frame_has_the_requested_strength() -> None:
    x = _images() * 0.5 + 0.25  # away from the clamp at 0 and 1
    pair = make_pair(x, dataclasses.replace(STILL, noise=0.05), motion_generator(0, 1))
    assert math.isclose(float((pair.frames - x).std()), 0.05, rel_tol=0.1)


def test_pairs_are_a_function_of_seed_and_iteration() -> None:
    x = _images()
    a = make_pair(x, Motion(), motion_generator(5, 11))
    b = make_pair(x, Motion(), motion_generator(5, 11))
    c = make_pair(x, Motion(), motion_generator(5, 12))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.grid, b.grid)
    assert not torch.equal(a.grid, c.grid)


def test_warp_with_identity_grid_is_exact() -> None:
    x = _images()
    grid = random_grid(2, 40, 48, STILL, motion_generator(0, 0))
    assert torch.allclose(warp(x, grid), x, atol=1e-5)


def test_training_with_the_temporal_term_makes_the_network_steadier(
    photos: Path,
    style_file: Path,
    tmp_path: Path,
) -> None:
    common = {"iterations": 30, "lr": 1e-2, "sample_every": 0, "image_size": 32}
    plain = train(
        _config(photos, style_file, tmp_path / "plain.safetensors", **common),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )
    steady = train(
        _config(photos, style_file, tmp_path / "steady.safetensors", temporal_weight=200.0, **common),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )
    assert all(h["temporal"] == 0 for h in plain.history)
    assert all(h["temporal"] > 0 for h in steady.history)
    # Both report the same (unweighted) steadiness metric, on the same fixed motions.
    assert steady.val_losses["temporal"] < 0.7 * plain.val_losses["temporal"]
    ck = load_checkpoint(steady.checkpoint)
    assert ck.meta.training["temporal_weight"] == 200.0 and "val_temporal" in ck.meta.metrics
    # The number in the metadata is the one validation_temporal gives for the saved weights.
    from stylize_video.training.data import PhotoSet, load_fixed

    val = load_fixed(PhotoSet.scan(str(photos), 0.2).val, 32)
    assert math.isclose(validation_temporal(ck.model.float(), val), steady.val_losses["temporal"], rel_tol=1e-3)


def test_resume_with_the_temporal_term_equals_an_uninterrupted_run(
    photos: Path,
    style_file: Path,
    tmp_path: Path,
) -> None:
    straight = train(
        _config(photos, style_file, tmp_path / "a.safetensors", iterations=4, temporal_weight=10.0),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )
    cfg = _config(photos, style_file, tmp_path / "b.safetensors", iterations=4, temporal_weight=10.0)

    def stop_at_two(it: int, losses: dict[str, float]) -> None:
        if it == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, vgg=small_vgg(), arch=TINY, progress=False, on_step=stop_at_two)
    resumed = train(cfg.replace(resume=True), vgg=small_vgg(), arch=TINY, progress=False)
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert math.isclose(a["temporal"], b["temporal"], rel_tol=1e-6), (a, b)
        assert math.isclose(a["total"], b["total"], rel_tol=1e-6), (a, b)
    with pytest.raises(InputError, match="temporal_weight"):
        train(
            cfg.replace(resume=True, iterations=5, temporal_weight=1.0),
            vgg=small_vgg(),
            arch=TINY,
            progress=False,
        )


def test_init_fine_tunes_from_a_trained_checkpoint(
    photos: Path,
    style_file: Path,
    tmp_path: Path,
    tiny_checkpoint: Path,
) -> None:
    cfg = _config(photos, style_file, tmp_path / "ft.safetensors", iterations=1, lr=1e-9, init=str(tiny_checkpoint))
    result = train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    start = load_checkpoint(tiny_checkpoint).model.state_dict()
    tuned = load_checkpoint(result.checkpoint).model.state_dict()
    # A near-zero learning rate leaves the initial weights (up to fp16 storage).
    assert all(torch.allclose(start[k].float(), tuned[k].float(), atol=1e-3) for k in start)
    training = load_checkpoint(result.checkpoint).meta.training
    assert training["init_from"]["name"] == "tiny" and training["total_iterations"] == 1
    with pytest.raises(InputError, match="--init"):
        train(
            _config(photos, style_file, tmp_path / "x.safetensors", init=str(tiny_checkpoint)),
            vgg=small_vgg(),
            progress=False,
        )
    with pytest.raises(InputError, match="does not exist"):
        train(_config(photos, style_file, tmp_path / "y.safetensors", init=str(tmp_path / "nope.safetensors")))
