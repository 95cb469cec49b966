"""Optical flow helpers and the flow-guided smoother, on small generated frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylize_video.runtime.flow import (
    DisFlow,
    change_mask,
    consistency_mask,
    estimate_flow,
    flow_scale,
    small_gray,
    upscale_flow,
    warp,
)
from stylize_video.runtime.flow_smoother import FlowSmoother
from stylize_video.runtime.smoothing import make_smoother

from .conftest import make_image


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture, uint8 HxWx3: DIS needs gradients everywhere to lock on."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    big = cv2.resize(small, (w + 8, h + 8), interpolation=cv2.INTER_CUBIC)
    return big[4 : 4 + h, 4 : 4 + w].copy()


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Content moved by (dx, dy) pixels: out(x) = img(x - d); uncovered border replicated."""
    return np.roll(img, (dy, dx), axis=(0, 1))


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float() / 255.0


# ------------------------------------------------------------------- warp


def test_warp_with_known_translation_recovers_the_shift() -> None:
    img = _to_tensor(_texture(40, 48))
    moved = torch.roll(img, shifts=(2, 3), dims=(2, 3))  # content moved 3 px right, 2 px down
    flow = torch.zeros(1, 2, 40, 48)
    flow[:, 0] = -3.0  # each pixel of `moved` was 3 px to the left in `img`
    flow[:, 1] = -2.0
    out = warp(img, flow)
    inner = (slice(None), slice(None), slice(2, None), slice(3, None))  # away from the uncovered edge
    assert torch.allclose(out[inner], moved[inner], atol=1e-5)
    assert not torch.allclose(img[inner], moved[inner], atol=1e-2)


def test_warp_upscales_a_coarse_flow_and_takes_numpy() -> None:
    img = _to_tensor(_texture(32, 32))
    coarse = np.full((8, 8, 2), 0.0, np.float32)
    coarse[..., 0] = -1.0  # 1 px at 8 px wide is 4 px at 32 px wide
    out = warp(img, coarse)
    expected = torch.roll(img, shifts=4, dims=3)
    assert torch.allclose(out[..., 4:], expected[..., 4:], atol=1e-5)


def test_warp_returns_a_new_tensor_in_the_image_dtype() -> None:
    img = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    before = img.clone()
    out = warp(img, torch.zeros(1, 2, 16, 16))
    assert out.dtype == torch.float64
    assert out.data_ptr() != img.data_ptr()
    assert torch.equal(img, before)
    assert torch.allclose(out, img)


def test_upscale_flow_scales_values_with_size() -> None:
    flow = torch.ones(1, 2, 10, 20)
    up = upscale_flow(flow, (40, 60))
    assert up.shape == (1, 2, 40, 60)
    assert torch.allclose(up[:, 0], torch.full((1, 40, 60), 3.0))
    assert torch.allclose(up[:, 1], torch.full((1, 40, 60), 4.0))


@pytest.mark.needs_cuda
def test_warp_on_cuda_matches_cpu() -> None:
    img = _to_tensor(_texture(32, 40))
    flow = torch.randn(1, 2, 8, 10)
    cpu = warp(img, flow)
    gpu = warp(img.cuda().half(), flow.cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float16
    assert torch.allclose(gpu.float().cpu(), cpu, atol=2e-3)


# ---------------------------------------------------------- flow and masks


def test_flow_scale_keeps_small_frames_usable() -> None:
    assert flow_scale((480, 640), 320) == 0.5
    assert flow_scale((20, 30), 320) == 1.0
    assert round(40 * flow_scale((40, 4000), 320)) >= 32
    assert small_gray(np.zeros((480, 640, 3), np.uint8), 320).shape == (240, 320)


def test_dis_recovers_a_translation() -> None:
    a = small_gray(_texture(96, 128), 320)
    b = small_gray(_shift(_texture(96, 128), 4, -2), 320)
    flow = DisFlow("medium")(b, a)  # b's pixels came from 4 px left, 2 px down in a
    inner = flow[16:-16, 16:-16]
    assert np.allclose(np.median(inner[..., 0]), -4.0, atol=0.3)
    assert np.allclose(np.median(inner[..., 1]), 2.0, atol=0.3)


def test_consistency_mask_flags_disoccluded_regions() -> None:
    # A square moves 6 px right over a static background: the strip it uncovers
    # (left of its new position) was hidden in the earlier frame.
    h, w = 40, 60
    bwd = np.zeros((h, w, 2), np.float32)
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[10:30, 10:30, 0] = 6.0  # earlier frame: the square's pixels go 6 px right
    bwd[10:30, 16:36, 0] = -6.0  # later frame: the square's pixels came from 6 px left
    valid = consistency_mask(bwd, fwd)
    assert valid[10:30, 10:16].max() == 0.0  # disoccluded background: its flow points into the square
    assert valid[10:30, 18:34].min() == 1.0  # the square itself round-trips
    assert valid[0:8].min() == 1.0  # static background away from the motion


def test_consistency_mask_flags_pixels_from_outside_the_frame() -> None:
    bwd = np.zeros((20, 30, 2), np.float32)
    bwd[..., 0] = -5.0  # a pan: everything came from 5 px left
    fwd = np.zeros_like(bwd)
    fwd[..., 0] = 5.0
    valid = consistency_mask(bwd, fwd)
    assert valid[:, :4].max() == 0.0
    assert valid[:, 6:].min() == 1.0


def test_change_mask_flags_new_content() -> None:
    a = np.full((30, 30), 100, np.uint8)
    b = a.copy()
    b[5:15, 5:15] = 220  # something appears without moving
    valid = change_mask(b, a, np.zeros((30, 30, 2), np.float32))
    assert valid[5:15, 5:15].max() == 0.0
    assert valid[20:, 20:].min() == 1.0


@pytest.mark.parametrize("size", [(8, 12), (1, 1), (15, 40)])
def test_tiny_frames_get_zero_flow_instead_of_an_opencv_error(size: tuple[int, int]) -> None:
    frame = np.zeros(size, np.uint8)
    assert np.array_equal(DisFlow()(frame, frame), np.zeros((*size, 2), np.float32))
    sm = FlowSmoother(0.5)
    img = np.zeros((*size, 3), np.uint8)
    s = torch.rand(1, 3, *size)
    sm(s, s, img)
    assert sm(s, s, img).shape == s.shape


def test_estimate_flow_on_a_static_flat_frame_is_all_valid() -> None:
    flat = np.full((64, 64), 128, np.uint8)
    est = estimate_flow(flat, flat, DisFlow())
    assert est.valid_fraction == 1.0
    assert np.abs(est.flow).max() == 0.0
    assert est.residual == 0.0


# ----------------------------------------------------------------- smoother


def _run(smoother: FlowSmoother, frames: list[np.ndarray], stylized: list[torch.Tensor]) -> list[torch.Tensor]:
    return [smoother(s, _to_tensor(f), f) for f, s in zip(frames, stylized, strict=True)]


def test_make_smoother_builds_a_flow_smoother() -> None:
    s = make_smoother("flow", 0.6)
    assert isinstance(s, FlowSmoother) and s.strength == 0.6
    with pytest.raises(ValueError, match="strength"):
        FlowSmoother(1.0)


def test_flow_smoother_follows_motion_instead_of_smearing() -> None:
    base = _texture(64, 80, seed=1)
    frames = [_shift(base, 2 * i, 0) for i in range(6)]
    rng = torch.Generator().manual_seed(0)
    # "Stylization" = the frame plus flicker that re-rolls every frame.
    clean = [_to_tensor(f) for f in frames]
    flicker = [(c + 0.1 * torch.randn(c.shape, generator=rng)).clamp(0, 1) for c in clean]
    out = _run(FlowSmoother(0.8, preset="medium"), frames, flicker)
    ema = [make_smoother("ema", 0.8)(s, s, f) for s, f in zip(flicker, frames, strict=True)]
    inner = (slice(None), slice(None), slice(8, -8), slice(16, -8))
    err_flow = float((out[-1] - clean[-1])[inner].abs().mean())
    err_raw = float((flicker[-1] - clean[-1])[inner].abs().mean())
    err_ema = float((ema[-1] - clean[-1])[inner].abs().mean())
    assert err_flow < 0.6 * err_raw  # flicker averaged out along the motion
    assert err_flow < err_ema  # ...without the EMA's smear of the moving texture


def test_flow_smoother_does_not_mutate_its_inputs() -> None:
    frames = [_texture(32, 32), _shift(_texture(32, 32), 1, 0)]
    stylized = [torch.rand(1, 3, 32, 32) for _ in frames]
    copies = [s.clone() for s in stylized]
    _run(FlowSmoother(0.5), frames, stylized)
    assert all(torch.equal(a, b) for a, b in zip(stylized, copies, strict=True))


def test_flow_smoother_resets_on_a_scene_cut() -> None:
    a = _texture(48, 64, seed=1)
    b = make_image(48, 64, seed=5)  # unrelated content: a cut
    sm = FlowSmoother(0.9)
    s1, s2, s3 = (torch.rand(1, 3, 48, 64) for _ in range(3))
    sm(s1, _to_tensor(a), a)
    held = sm(s2, _to_tensor(a), a)
    assert not torch.equal(held, s2)  # same frame twice: history is blended in
    out = sm(s3, _to_tensor(b), b)
    assert torch.equal(out, s3)  # the cut frame is shown as stylized
    assert sm.cuts == 1


def test_ema_smoother_also_resets_on_a_scene_cut() -> None:
    a = _texture(48, 64, seed=1)
    b = 255 - a  # unrelated content: a cut
    sm = make_smoother("ema", 0.9)
    s1, s2, s3 = (torch.rand(1, 3, 48, 64) for _ in range(3))
    sm(s1, s1, a)
    assert not torch.equal(sm(s2, s2, a), s2)
    assert torch.equal(sm(s3, s3, b), s3)
    assert getattr(sm, "cuts", None) == 1


def test_flow_smoother_resets_on_size_change_and_reset() -> None:
    sm = FlowSmoother(0.9)
    a = _texture(32, 32)
    sm(torch.rand(1, 3, 32, 32), _to_tensor(a), a)
    b = _texture(40, 32)
    s = torch.rand(1, 3, 40, 32)
    assert torch.equal(sm(s, _to_tensor(b), b), s)
    sm.reset()
    s = torch.rand(1, 3, 40, 32)
    assert torch.equal(sm(s, _to_tensor(b), b), s)
    assert sm.cuts == 0


def test_flow_smoother_keeps_disoccluded_content_fresh() -> None:
    # A textured square slides right over a static textured background: where it
    # uncovers background, the old output (the square) must not be ghosted in.
    bg = _texture(96, 128, seed=2)
    sq = _texture(32, 32, seed=3)
    frames = []
    for x in (30, 36):
        f = bg.copy()
        f[20:52, x : x + 32] = sq
        frames.append(f)
    stylized = [_to_tensor(f) for f in frames]
    sm = FlowSmoother(0.9)
    out = _run(sm, frames, stylized)[-1]
    assert sm.last_valid > 0.8  # the history is used almost everywhere else
    uncovered = (slice(None), slice(None), slice(20, 52), slice(30, 36))
    err = (out - stylized[1])[uncovered].abs()
    # A pixel whose warped history passes the large-change test (0.1) may blend in a
    # colour that close; a ghost of the square is far off (0.25 with DIS medium, 0.55
    # with a 0.2 change threshold, both measured).
    assert float(err.max()) < 0.1 and float(err.mean()) < 0.005


def test_prepare_computes_the_same_result_on_a_worker_thread() -> None:
    frames = [_shift(_texture(48, 64), 2 * i, 0) for i in range(4)]
    stylized = [torch.rand(1, 3, 48, 64) for _ in frames]
    plain = _run(FlowSmoother(0.8), frames, stylized)
    sm = FlowSmoother(0.8)
    early = []
    for i, (f, s) in enumerate(zip(frames, stylized, strict=True)):
        if i != 2:  # a frame without prepare falls back to the inline flow
            sm.prepare(f)
        early.append(sm(s, s, f))
    sm.prepare(frames[0])
    sm.close()
    assert all(torch.equal(a, b) for a, b in zip(plain, early, strict=True))
    assert not torch.equal(early[-1], stylized[-1])


def test_flow_smoother_keeps_the_engine_dtype() -> None:
    frames = [_texture(48, 64), _shift(_texture(48, 64), 2, 0)]
    stylized = [torch.rand(1, 3, 48, 64) for _ in frames]
    ref = _run(FlowSmoother(0.8), frames, stylized)[-1]
    low = _run(FlowSmoother(0.8), frames, [s.bfloat16() for s in stylized])[-1]
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), ref, atol=1e-2)


@pytest.mark.needs_cuda
def test_flow_smoother_on_cuda_fp16() -> None:
    frames = [_texture(48, 64), _shift(_texture(48, 64), 2, 0)]
    sm = FlowSmoother(0.8)
    outs = [sm(_to_tensor(f).cuda().half(), _to_tensor(f).cuda().half(), f) for f in frames]
    assert outs[-1].device.type == "cuda" and outs[-1].dtype == torch.float16
    assert torch.isfinite(outs[-1]).all()
