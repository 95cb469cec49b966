"""Inference backends against the torch fp32 reference, the registry, ``auto`` and errors."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.errors import DependencyError, DeviceError
from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime import backends
from stylize_video.runtime.backends import Backend, BackendOptions, ExportedGraph, auto_backend, register_backend
from stylize_video.runtime.stylizer import Stylizer

from .conftest import TINY, make_image

INSTALLABLE = ["torch", "openvino", "onnxruntime"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLIZE_VIDEO_CACHE", str(cache))
    return cache


def _skip_unless_installed(name: str) -> None:
    if name != "torch":
        pytest.importorskip(name)


def _reference(net: TransformNet, frame: np.ndarray) -> np.ndarray:
    """torch fp32, the network's own pad-inside forward, BGR uint8 out."""
    rgb = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = net(rgb)[0].permute(1, 2, 0).numpy()[:, :, ::-1]
    return (y * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize("name", INSTALLABLE)
@pytest.mark.parametrize("shape", [(37, 53), (5, 7), (64, 48)])
def test_fp32_backends_match_torch(tiny_net: TransformNet, name: str, shape: tuple[int, int]) -> None:
    _skip_unless_installed(name)
    frame = make_image(*shape)
    st = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name)
    out = st(frame)
    assert st.backend.name == name and st.precision == "fp32"
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert _mean_abs(out, _reference(tiny_net, frame)) <= 1.0  # 1/255


@pytest.mark.parametrize("name", ["torch", "openvino"])
def test_bf16_backends_within_3_levels(tiny_net: TransformNet, name: str) -> None:
    _skip_unless_installed(name)
    frame = make_image(61, 83)
    st = Stylizer(tiny_net, device="cpu", precision="bf16", backend=name)
    assert st.precision == "bf16"
    assert _mean_abs(st(frame), _reference(tiny_net, frame)) <= 3.0


@pytest.mark.parametrize("name", INSTALLABLE)
def test_engine_options_work_with_every_backend(tiny_net: TransformNet, name: str) -> None:
    _skip_unless_installed(name)
    frame = make_image(46, 66)
    plain = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name)(frame)
    off = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name, strength=0.0)(frame)
    assert _mean_abs(off, frame) <= 0.5
    colour = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name, preserve_color=True)(frame)
    assert colour.shape == frame.shape and not np.array_equal(colour, plain)
    seen: list[tuple[int, ...]] = []
    st = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name, scale=0.5)
    run = st.backend.run
    st.backend.run = lambda x: (seen.append(tuple(x.shape)), run(x))[1]  # type: ignore[method-assign]
    assert st(frame).shape == frame.shape
    assert seen == [(1, 3, 24, 34)]  # 23x33 at half size, padded to the stride (2)


@pytest.mark.parametrize("name", INSTALLABLE)
def test_style_switching_with_every_backend(tiny_net: TransformNet, name: str) -> None:
    _skip_unless_installed(name)
    torch.manual_seed(1)
    other = TransformNet(TINY).eval()
    frame = make_image(33, 41)
    st = Stylizer(tiny_net, device="cpu", precision="fp32", backend=name)
    st.preload(other)
    a = st(frame)
    st.set_style(other)
    b = st(frame)
    assert not np.array_equal(a, b)
    assert _mean_abs(b, _reference(other, frame)) <= 1.0
    st.set_style(tiny_net)
    assert np.array_equal(st(frame), a)
    st.close()


def test_backends_pad_to_the_stride_and_never_see_odd_sizes(tiny_net: TransformNet) -> None:
    seen: list[tuple[int, ...]] = []

    class Recording(Backend):
        name = "recording"

        def __init__(self, network: TransformNet, options: BackendOptions) -> None:
            self.device, self.stride, self.min_size = options.device, network.stride, network.min_size
            self.net = network

        def run(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape))
            with torch.inference_mode():
                return self.net.forward_padded(x)

    register_backend("recording", Recording)
    try:
        frame = make_image(5, 7)
        out = Stylizer(tiny_net, device="cpu", backend="recording")(frame)
    finally:
        backends._REGISTRY.pop("recording")
    assert seen == [(1, 3, 6, 8)]  # stride 2, min size 4
    assert _mean_abs(out, _reference(tiny_net, frame)) <= 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_a_non_finite_half_precision_output_falls_back_to_fp32(tiny_net: TransformNet, bad: float | None) -> None:
    """One bad value anywhere in a bf16 output switches the session to fp32, with one warning."""
    precisions: list[str] = []

    class Flaky(Backend):
        name = "flaky"

        def __init__(self, network: TransformNet, options: BackendOptions) -> None:
            self.device, self.stride, self.min_size = options.device, network.stride, network.min_size
            self.precision = "fp32" if options.precision == "fp32" else "bf16"
            self.net = network

        def run(self, x: torch.Tensor) -> torch.Tensor:
            precisions.append(self.precision)
            with torch.inference_mode():
                y = self.net.forward_padded(x.float()).clone()
            if self.precision != "fp32" and bad is not None:
                y[0, 2, 3, 5] = bad  # one value inside the frame (the engine crops the padding)
            return y

    register_backend("flaky", Flaky)
    try:
        frame = make_image(9, 12)
        st = Stylizer(tiny_net, device="cpu", backend="flaky", precision="bf16")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first, second = st(frame), st(frame)
    finally:
        backends._REGISTRY.pop("flaky")
    fell_back = [w for w in caught if "falling back to fp32" in str(w.message)]
    if bad is None:
        assert precisions == ["bf16", "bf16"] and not fell_back
    else:
        assert precisions == ["bf16", "fp32", "fp32"] and len(fell_back) == 1
        assert st.precision == "fp32"
    for out in (first, second):
        assert _mean_abs(out, _reference(tiny_net, frame)) <= 1.0


def test_auto_picks_by_device_network_and_what_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    net = TransformNet(TINY)
    graph = ExportedGraph(Path("x.onnx"), 2, 4)
    installed = {"openvino": True, "tensorrt": True}
    monkeypatch.setattr(backends, "is_installed", lambda name: installed.get(name, False))
    assert auto_backend(cpu, net) == "openvino"
    assert auto_backend(cpu, graph) == "openvino"
    assert auto_backend(cuda, net) == "torch"
    assert auto_backend(cuda, graph) == "tensorrt"
    # Options only torch honours are not silently dropped.
    assert auto_backend(cpu, net, BackendOptions(cpu, compile=True)) == "torch"
    assert auto_backend(cpu, net, BackendOptions(cpu, channels_last=True)) == "torch"
    installed.clear()
    assert auto_backend(cpu, net) == "torch"
    assert auto_backend(cpu, graph) == "onnxruntime"
    assert auto_backend(cuda, graph) == "onnxruntime"


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [
        ("openvino", "openvino", "openvino"),
        ("onnxruntime", "onnxruntime", "onnx"),
        ("tensorrt", "tensorrt", "tensorrt"),
    ],
)
def test_missing_runtime_is_a_one_line_error_naming_the_extra(
    tiny_net: TransformNet, monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(DependencyError, match=rf"pip install 'stylize-video\[{extra}\]'") as info:
        Stylizer(tiny_net, device="cpu", backend=name)
    assert "\n" not in str(info.value)
    assert not backends.is_installed(name)


def test_unknown_backend_and_wrong_device_are_device_errors(tiny_net: TransformNet) -> None:
    with pytest.raises(DeviceError, match="unknown backend 'nope'"):
        Stylizer(tiny_net, device="cpu", backend="nope")
    pytest.importorskip("openvino")
    with pytest.raises(DeviceError, match="fp16"):
        Stylizer(tiny_net, device="cpu", backend="openvino", precision="fp16")


def test_openvino_and_onnx_graphs_are_cached(tiny_net: TransformNet, _private_cache: Path) -> None:
    pytest.importorskip("openvino")
    frame = make_image(30, 40)
    first = Stylizer(tiny_net, device="cpu", precision="fp32", backend="openvino")(frame)
    assert len(list((_private_cache / "onnx").glob("*.onnx"))) == 1
    blobs = set((_private_cache / "openvino").iterdir())
    assert blobs  # the compiled model for 40x30
    again = Stylizer(tiny_net, device="cpu", precision="fp32", backend="openvino")(frame)
    assert np.array_equal(first, again)
    assert set((_private_cache / "openvino").iterdir()) == blobs  # loaded, not compiled anew


def test_torch_backend_refuses_an_exported_graph(tmp_path: Path) -> None:
    from stylize_video.runtime.backends.torch import TorchBackend

    with pytest.raises(DeviceError, match="exported graphs"):
        TorchBackend(ExportedGraph(tmp_path / "x.onnx", 2, 4), BackendOptions(torch.device("cpu")))


def test_backend_choice_on_the_command_line(tiny_checkpoint: Path, image_file: Path, tmp_path: Path) -> None:
    from stylize_video.cli import main

    out = tmp_path / "out.png"
    assert main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(out), "--backend", "torch"]) == 0
    assert out.exists()
    with pytest.raises(SystemExit):
        main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(out), "--backend", "nope"])


@pytest.mark.needs_cuda
def test_tensorrt_fp16_matches_torch_fp32(tiny_net: TransformNet) -> None:
    pytest.importorskip("tensorrt")
    frame = make_image(241, 321)
    st = Stylizer(tiny_net, device="cuda", precision="fp16", backend="tensorrt")
    assert st.precision == "fp16"
    assert _mean_abs(st(frame), _reference(tiny_net, frame)) <= 3.0


def test_openvino_bf16_stays_finite_on_a_1080p_frame() -> None:
    # Half-precision instance-norm statistics over a 1080p plane are what turns frames
    # NaN or black; the network is tiny, the plane is full size.
    pytest.importorskip("openvino")
    net = TransformNet(TINY).eval()
    frame = make_image(1080, 1920)
    st = Stylizer(net, device="cpu", precision="bf16", backend="openvino")
    with torch.inference_mode():
        y = st.stylize(st.transfer.upload(frame))
    assert bool(torch.isfinite(y).all()) and float(y.std()) > 0.01
    assert _mean_abs(st.transfer.download(y), _reference(net, frame)) <= 3.0


@pytest.mark.parametrize(("name", "precision"), [("openvino", "fp32"), ("openvino", "bf16"), ("torch", "bf16")])
def test_backends_hold_on_a_low_contrast_frame(name: str, precision: str) -> None:
    # A plane whose mean dwarfs its spread: one-pass variance (OpenVINO's MVN) and
    # bf16 values near 0.8 both lose it unless the input is centred in fp32 first.
    _skip_unless_installed(name)
    net = TransformNet(TINY).eval()
    frame = (200 + make_image(360, 480).astype(np.float32) / 255 * 12).astype(np.uint8)
    st = Stylizer(net, device="cpu", precision=precision, backend=name)
    assert _mean_abs(st(frame), _reference(net, frame)) <= 1.0
