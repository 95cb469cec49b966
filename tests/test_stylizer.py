from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.devices import cpu_has_fast_bf16
from stylize_video.errors import DeviceError, InputError
from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime.stylizer import Stylizer, _transfer_luminance, resize
from stylize_video.runtime.transfer import FrameTransfer

from .conftest import make_image


@pytest.mark.parametrize("shape", [(48, 64), (243, 321), (5, 7)])
def test_uint8_frame_in_same_size_out(tiny_net: TransformNet, shape: tuple[int, int]) -> None:
    st = Stylizer(tiny_net, device="cpu", precision="fp32")
    frame = make_image(*shape)
    out = st(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out, st(frame))


def test_bgr_swap_matches_model_on_rgb(tiny_net: TransformNet) -> None:
    frame = make_image()
    out = Stylizer(tiny_net, device="cpu", precision="fp32")(frame)
    rgb = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        ref = (tiny_net(rgb)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255 + 0.5).clip(0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_strength_zero_returns_original(tiny_net: TransformNet) -> None:
    frame = make_image()
    out = Stylizer(tiny_net, device="cpu", precision="fp32", strength=0.0)(frame)
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 1


def test_strength_is_a_linear_blend(tiny_net: TransformNet) -> None:
    frame = make_image()
    full = Stylizer(tiny_net, device="cpu", precision="fp32")(frame).astype(float)
    half = Stylizer(tiny_net, device="cpu", precision="fp32", strength=0.5)(frame).astype(float)
    assert np.abs(half - (full + frame) / 2).max() <= 1.5
    with pytest.raises(ValueError):
        Stylizer(tiny_net, device="cpu", precision="fp32", strength=1.5)


def test_preserve_color_keeps_chroma_takes_luma() -> None:
    orig = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    styl = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = _transfer_luminance(orig, styl)
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = lambda t: (t * w).sum(1)  # noqa: E731
    torch.testing.assert_close(luma(out), luma(styl), atol=1e-5, rtol=0)
    # chroma = RGB minus luma, per channel
    torch.testing.assert_close(out - luma(out)[:, None], orig - luma(orig)[:, None], atol=1e-5, rtol=0)


def test_bf16_close_to_fp32(tiny_net: TransformNet) -> None:
    frame = make_image()
    a = Stylizer(tiny_net, device="cpu", precision="fp32")(frame).astype(int)
    b = Stylizer(tiny_net, device="cpu", precision="bf16")(frame).astype(int)
    assert np.abs(a - b).mean() < 3


def test_nonfinite_half_output_falls_back_to_fp32(tiny_net: TransformNet, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize_video.runtime.backends.torch import TorchBackend

    def nan_in_half(self: TorchBackend, x: torch.Tensor) -> torch.Tensor:
        # Stands for a net whose half-precision activations overflow.
        return x * float("nan") if self.precision != "fp32" else x.clone()

    monkeypatch.setattr(TorchBackend, "run", nan_in_half)
    st = Stylizer(tiny_net, device="cpu", precision="bf16", backend="torch")
    frame = make_image()
    with pytest.warns(RuntimeWarning, match="falling back to fp32"):
        out = st(frame)
    assert st.dtype == torch.float32 and st.precision == "fp32"
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 1  # the fp32 result, not a black frame
    assert all(p.dtype == torch.float32 for p in tiny_net.parameters())  # the caller's module untouched


def test_auto_precision_on_cpu_follows_the_hardware(tiny_net: TransformNet) -> None:
    expected = "bf16" if cpu_has_fast_bf16() else "fp32"
    assert Stylizer(tiny_net, device="cpu").precision == expected
    torch_engine = Stylizer(tiny_net, device="cpu", backend="torch")
    assert torch_engine.dtype == {"bf16": torch.bfloat16, "fp32": torch.float32}[expected]


def test_fp16_refused_on_cpu(tiny_net: TransformNet) -> None:
    with pytest.raises(DeviceError, match="fp16"):
        Stylizer(tiny_net, device="cpu", precision="fp16")


def test_bad_frames_are_rejected(tiny_net: TransformNet) -> None:
    st = Stylizer(tiny_net, device="cpu", precision="fp32")
    with pytest.raises(InputError, match="uint8"):
        st(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="HxWx3"):
        st(np.zeros((8, 8, 2), np.uint8))


def test_style_switching_and_preload(tiny_checkpoint: Path, tiny_net: TransformNet) -> None:
    st = Stylizer(tiny_checkpoint, device="cpu", precision="fp32")
    st.preload(tiny_net)
    assert len(st.styles) == 2
    frame = make_image()
    a = st(frame)
    st.set_style(tiny_net)
    b = st(frame)
    assert not np.array_equal(a, b)


def test_transfer_round_trip_is_lossless() -> None:
    t = FrameTransfer(torch.device("cpu"))
    frame = make_image(31, 17)
    x = t.upload(frame)
    assert x.shape == (1, 3, 31, 17) and x.dtype == torch.float32
    assert np.array_equal(t.download(x), frame)
    assert np.array_equal(frame[:, :, 2], (x[0, 0] * 255).round().byte().numpy())  # R first on the device


@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_upload_matches_torch_arithmetic_in_either_layout(channels_last: bool) -> None:
    # The CPU upload runs in numpy (no OpenMP region per frame); it must give exactly
    # torch's values and the layout the backend asked for.
    frame = make_image(29, 43)
    x = FrameTransfer(torch.device("cpu"), channels_last=channels_last).upload(frame)
    ref = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].to(torch.float32).mul_(1.0 / 255.0)
    assert torch.equal(x, ref)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert x.is_contiguous(memory_format=fmt)
    # An RGB frame in any memory order (here Fortran's) still comes out in the asked layout.
    y = FrameTransfer(torch.device("cpu"), channels_last=channels_last, bgr=False).upload(
        np.asfortranarray(frame[:, :, ::-1])
    )
    assert torch.equal(y, ref) and y.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "strided", "bf16"])
def test_finite_check_finds_one_bad_value_in_any_layout(layout: str) -> None:
    from stylize_video.runtime.stylizer import _all_finite

    y = torch.rand(1, 3, 37, 54)
    if layout == "nhwc":
        y = y.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        y = y[..., ::2]
    elif layout == "bf16":
        y = y.to(torch.bfloat16)
    assert _all_finite(y)
    assert _all_finite(torch.full_like(y, 60000.0))  # large but finite: the sum must not overflow
    for bad in (float("nan"), float("inf"), -float("inf")):
        z = y.clone()
        z[0, 2, 36, z.shape[-1] - 1] = bad
        assert not _all_finite(z)
    assert _all_finite(y[..., :0])  # nothing to check is finite, in any layout


def test_importing_the_package_makes_openmp_yield_unless_told_otherwise() -> None:
    import os
    import subprocess
    import sys

    code = "import stylize_video, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["ACTIVE"]
    env["OMP_WAIT_POLICY"] = ""  # empty counts as unset, for OpenMP as for us
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["PASSIVE"]


@pytest.mark.parametrize(
    ("torch_first", "policy", "spins"),
    [(True, None, True), (False, None, False), (True, "PASSIVE", False), (True, "", True)],
)
def test_the_torch_backend_says_once_when_openmp_threads_spin(
    torch_first: bool, policy: str | None, spins: bool
) -> None:
    # OpenMP reads its wait policy when torch loads: a script that imported torch first,
    # with no policy of its own, gets spinning threads, and the torch backend says so once.
    import os
    import subprocess
    import sys

    code = "\n".join(
        [
            "import torch" if torch_first else "import stylize_video",
            "import stylize_video, torch",
            "from stylize_video.threads import openmp_spins",
            "from stylize_video.models.transform_net import PRESETS, TransformNet",
            "from stylize_video import Stylizer",
            "net = TransformNet(PRESETS['lite'])",
            "Stylizer(net, device='cpu', backend='torch'); Stylizer(net, device='cpu', backend='torch')",
            "print(openmp_spins())",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == [str(spins)]
    assert out.stderr.count("OpenMP threads spin") == (1 if spins else 0)


def test_input_not_mutated(tiny_net: TransformNet) -> None:
    frame = make_image()
    copy = frame.copy()
    Stylizer(tiny_net, device="cpu", preserve_color=True, strength=0.7)(frame)
    assert np.array_equal(frame, copy)


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import stylize_video, sys; print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.needs_cuda
def test_cuda_fp16_agrees_with_fp32(tiny_net: TransformNet) -> None:
    frame = make_image(240, 320)
    a = Stylizer(tiny_net, device="cpu", precision="fp32")(frame).astype(int)
    b = Stylizer(tiny_net, device="cuda", precision="fp16")(frame).astype(int)
    assert np.abs(a - b).mean() < 2


def test_transfer_rgb_mode_and_out_of_range_values() -> None:
    t = FrameTransfer(torch.device("cpu"), bgr=False)
    frame = make_image(9, 11)
    x = t.upload(frame)
    assert np.array_equal(frame[:, :, 0], (x[0, 0] * 255).round().byte().numpy())  # no swap
    x = x.clone()
    x[0, 0, 0, 0], x[0, 1, 0, 0] = -0.5, 1.7
    out = t.download(x)
    assert out[0, 0, 0] == 0 and out[0, 0, 1] == 255
    assert np.array_equal(out[1:], frame[1:])


def test_style_scale_runs_the_net_smaller_and_returns_full_size(tiny_net: TransformNet) -> None:
    seen: list[tuple[int, ...]] = []
    st = Stylizer(tiny_net, device="cpu", precision="fp32", scale=0.5)
    run = st.backend.run
    st.backend.run = lambda x: (seen.append(tuple(x.shape)), run(x))[1]  # type: ignore[method-assign]
    frame = make_image(60, 80)
    out = st(frame)
    assert out.shape == frame.shape and seen == [(1, 3, 30, 40)]
    with pytest.raises(ValueError, match="scale"):
        st.scale = 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("size", "shrink", "tolerance"),
    # OpenCV's area weights at a fractional factor differ from torch's adaptive pooling.
    [((27, 40), True, 1e-5), ((17, 25), True, 0.03), ((108, 160), False, 1e-5), ((81, 120), False, 1e-5)],
)
def test_cpu_resize_matches_torch_interpolation(
    dtype: torch.dtype, size: tuple[int, int], shrink: bool, tolerance: float
) -> None:
    # The engine's CPU resize (OpenCV per plane) stands in for F.interpolate: same box
    # filter when shrinking, same half-pixel bilinear when growing; dtype and shape kept.
    x = torch.from_numpy(make_image(54, 80)).permute(2, 0, 1)[None].float().div(255).to(dtype)
    y = resize(x, size, shrink=shrink)
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    ref = torch.nn.functional.interpolate(x.float(), size=size, mode=mode, **kwargs)
    assert y.shape == (1, 3, *size) and y.dtype == dtype
    assert float((y.float() - ref).abs().mean()) <= max(tolerance, 0.01 if dtype == torch.bfloat16 else 0.0)


def test_two_checkpoints_with_one_name_stay_two_styles(tmp_path: Path) -> None:
    # Names default to the file stem: v1/my-style and v2/my-style must not share a network.
    from stylize_video.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint

    from .conftest import TINY

    paths = []
    for k in (1, 2):
        torch.manual_seed(k)
        paths.append(
            save_checkpoint(
                tmp_path / f"v{k}" / "my-style.safetensors", TransformNet(TINY), CheckpointMeta(name="my-style")
            )
        )
    a, b = (load_checkpoint(p) for p in paths)
    st = Stylizer(a, device="cpu", precision="fp32")
    frame = make_image(32, 32)
    first = st(frame)
    st.set_style(b)
    assert st.style_name != "my-style" and not np.array_equal(st(frame), first)
    st.set_style(load_checkpoint(paths[0]))  # the first file again: its cached network
    assert st.style_name == "my-style" and np.array_equal(st(frame), first)


def test_running_out_of_memory_is_a_one_line_device_error(
    tiny_net: TransformNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = Stylizer(tiny_net, device="cpu", precision="fp32")

    def no_memory(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"
        )

    monkeypatch.setattr(st, "stylize", no_memory)
    with pytest.raises(DeviceError, match=r"out of cpu memory stylizing a 40x30 image.*--max-size"):
        st(make_image(30, 40))
    monkeypatch.setattr(st, "stylize", lambda x: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not dressed up as memory
        st(make_image(30, 40))
