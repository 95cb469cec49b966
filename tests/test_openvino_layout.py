"""The OpenVINO backend exchanges NHWC tensors with its compiled model."""

from __future__ import annotations

import pytest
import torch

from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime.backends import BackendOptions

from .conftest import TINY


def test_openvino_takes_either_layout_and_returns_nchw_shaped_channels_last_frames() -> None:
    pytest.importorskip("openvino")
    from stylize_video.runtime.backends.openvino import OpenVINOBackend

    net = TransformNet(TINY).eval()
    backend = OpenVINOBackend(net, BackendOptions(torch.device("cpu"), precision="fp32"))
    assert backend.channels_last  # the engine hands it HWC-ordered frames: no transpose
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    y = backend.run(x)
    assert y.shape == (1, 3, 24, 40) and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(backend.run(x.contiguous(memory_format=torch.channels_last)), y)
    with torch.inference_mode():
        reference = net.forward_padded(x)
    assert float((y - reference).abs().mean()) <= 1e-4  # fp32: the layout changes no values
