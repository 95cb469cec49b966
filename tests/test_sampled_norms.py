"""Sampled full-resolution norm statistics: only in the OpenVINO backend's bf16 graph, within bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stylize_video.models.transform_net import PRESETS, NetConfig, TransformNet
from stylize_video.runtime.backends import onnx_export
from stylize_video.runtime.backends.onnx_export import network_key, onnx_bytes
from stylize_video.runtime.stylizer import Stylizer

from .conftest import TINY, make_image

LITE_LIKE = dataclasses.replace(PRESETS["lite"], res_blocks=1)  # lite's widths and separable decoder


def _net(num_styles: int = 0) -> TransformNet:
    """A lite-shaped network whose norms have a trained-like affine (not the ones/zeros init)."""
    net = TransformNet(dataclasses.replace(LITE_LIKE, num_styles=num_styles)).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, norm in net.norms():
            norm.weight.uniform_(0.5, 1.5, generator=g)
            norm.bias.normal_(0.0, 0.3, generator=g)
    return net


def _ops(data: bytes) -> list[str]:
    onnx = pytest.importorskip("onnx")
    return [node.op_type for node in onnx.load_from_string(data).graph.node]


def _reference(net: TransformNet, frame: np.ndarray, style: torch.Tensor | None = None) -> np.ndarray:
    """torch fp32, BGR uint8 in and out (as the engine's frames are)."""
    rgb = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = net(rgb, style)[0].permute(1, 2, 0).numpy()[:, :, ::-1]
    return (y * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def _black_lines(h: int, w: int) -> np.ndarray:
    """Every other line black (one field of an interlaced frame): ``::2`` or ``::4``
    sampling sees only the picture's lines, 17/255 off; the odd strides 0.4/255."""
    frame = make_image(h, w)
    frame[1::2] = 0
    return frame


def _dot_grid(h: int, w: int) -> np.ndarray:
    """One white pixel in every 4x4 block: ``::2``/``::4`` sampling sees a black plane (5/255 off)."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[1::4, 1::4] = 255
    return frame


@pytest.mark.parametrize("num_styles", [0, 3])
def test_export_keeps_exact_norms_and_the_sampled_graph_replaces_the_two_full_resolution_ones(
    num_styles: int,
) -> None:
    net = _net(num_styles)
    exact, sampled = _ops(onnx_bytes(net)), _ops(onnx_bytes(net, sampled_norms=True))
    norms = len(net.norms())
    # What `export` writes and the other backends run: one InstanceNormalization per norm.
    assert exact.count("InstanceNormalization") == norms
    assert sampled.count("InstanceNormalization") == norms - 2  # the head's and the last decoder stage's
    assert sampled.count("Slice") >= exact.count("Slice") + 2  # the strided samples
    assert network_key(net) != network_key(net, sampled_norms=True)  # cached apart


@pytest.mark.parametrize(
    ("frame", "style"),
    [
        (make_image(360, 640), None),
        (_black_lines(360, 640), None),
        (_dot_grid(360, 640), None),
        (make_image(368, 648, seed=1), torch.tensor([0.2, 0.5, 0.3])),
    ],
)
def test_sampled_graph_in_fp32_stays_within_one_level_of_torch(frame: np.ndarray, style: torch.Tensor | None) -> None:
    # The sampling's own error, without bf16's: ONNX Runtime fp32 runs the sampled graph.
    ort = pytest.importorskip("onnxruntime")
    net = _net(0 if style is None else 3)
    session = ort.InferenceSession(onnx_bytes(net, sampled_norms=True), providers=["CPUExecutionProvider"])
    rgb = np.ascontiguousarray(frame[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    feeds = {onnx_export.INPUT_NAME: rgb}
    if style is not None:
        feeds[onnx_export.STYLE_INPUT_NAME] = style.numpy()
    y = session.run(None, feeds)[0][0].transpose(1, 2, 0)[:, :, ::-1]
    got = (y * 255 + 0.5).clip(0, 255).astype(np.uint8)
    assert _mean_abs(got, _reference(net, frame, style)) <= 1.0


def test_openvino_bf16_samples_from_360p_on_and_stays_within_3_levels() -> None:
    pytest.importorskip("openvino")
    from stylize_video.runtime.backends.openvino import SAMPLED_NORMS_MIN_PIXELS

    net = TransformNet(TINY).eval()
    assert 640 * 360 >= SAMPLED_NORMS_MIN_PIXELS > 480 * 360
    for frame in (make_image(360, 640), _black_lines(360, 640)):
        st = Stylizer(net, device="cpu", precision="bf16", backend="openvino")
        assert _mean_abs(st(frame), _reference(net, frame)) <= 3.0
        assert set(st.backend._models) == {True}  # the sampled graph, only
    small = Stylizer(net, device="cpu", precision="bf16", backend="openvino")
    small(make_image(360, 480))
    assert set(small.backend._models) == {False}  # below 640x360: exact norms
    exact = Stylizer(net, device="cpu", precision="fp32", backend="openvino")
    exact(make_image(360, 640))
    assert set(exact.backend._models) == {False}  # fp32 asks for accuracy: exact norms
    wide = TransformNet(NetConfig(channels=(16, 32), res_blocks=1, head_kernel=3, tail_kernel=3)).eval()
    st = Stylizer(wide, device="cpu", precision="bf16", backend="openvino")
    st(make_image(360, 640))
    assert set(st.backend._models) == {False}  # wider than lite: its convolutions dominate, exact norms
