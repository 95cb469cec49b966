from __future__ import annotations

import pytest
import torch

from stylize_video.models.transform_net import PRESETS, InstanceNorm, NetConfig, TransformNet, count_flops_per_pixel

from .conftest import TINY


@pytest.mark.parametrize("preset", ["full", "lite"])
@pytest.mark.parametrize("size", [(32, 32), (243, 321), (17, 5), (1, 1), (33, 64)])
def test_output_size_equals_input_size(preset: str, size: tuple[int, int]) -> None:
    net = TransformNet(PRESETS[preset]).eval()
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_deterministic_and_batch_independent() -> None:
    net = TransformNet(TINY).eval()
    x = torch.rand(2, 3, 32, 40)
    with torch.inference_mode():
        a, b = net(x), net(x)
        single = net(x[1:])
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:], single, atol=1e-5, rtol=1e-4)


def test_no_transposed_convolutions_and_reflection_padding() -> None:
    net = TransformNet(PRESETS["full"])
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1]
    assert convs and all(m.padding_mode == "reflect" for m in convs)


def test_full_preset_matches_paper() -> None:
    cfg = PRESETS["full"]
    assert cfg.channels == (32, 64, 128) and cfg.res_blocks == 5 and cfg.stride == 4


def test_lite_is_much_cheaper() -> None:
    assert count_flops_per_pixel(PRESETS["lite"]) * 20 < count_flops_per_pixel(PRESETS["full"])


def test_flops_count_full_by_hand() -> None:
    # conv1 9*9*3*32, conv2 3*3*32*64/4, conv3 3*3*64*128/16, 10 res convs 3*3*128*128/16,
    # up1 3*3*128*64/4, up2 3*3*64*32, tail 9*9*32*3 (MACs per input pixel).
    macs = 7776 + 4608 + 4608 + 10 * 9216 + 18432 + 18432 + 7776
    assert count_flops_per_pixel(PRESETS["full"]) == pytest.approx(2 * macs)


def test_instance_norm_matches_torch_and_keeps_dtype() -> None:
    norm = InstanceNorm(4)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 4, 16, 16) * 3 + 5
    ref = torch.nn.functional.instance_norm(x, weight=norm.weight, bias=norm.bias)
    torch.testing.assert_close(norm(x), ref, atol=1e-4, rtol=1e-4)
    y = norm(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref, atol=0.1, rtol=0.05)


def test_instance_norm_large_plane_in_half_precision_is_finite() -> None:
    # fp16 sums of 1080p planes overflow (65504 max); statistics must be fp32.
    norm = InstanceNorm(1)
    x = (torch.rand(1, 1, 1080, 1920) * 40 + 20).to(torch.bfloat16)
    with torch.no_grad():
        y = norm(x)
    assert torch.isfinite(y.float()).all()
    assert abs(float(y.float().mean())) < 0.05


def test_gradients_flow() -> None:
    net = TransformNet(TINY)
    x = torch.rand(2, 3, 24, 24)
    net(x).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_config_validation_and_round_trip() -> None:
    cfg = PRESETS["lite"]
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="odd"):
        NetConfig(head_kernel=4)
    with pytest.raises(ValueError, match="unknown architecture"):
        NetConfig.from_dict({"bogus": 1})
