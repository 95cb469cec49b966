"""``stylize-video export``: ONNX round trip, metadata, contract and refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.errors import CheckpointError, DependencyError, OutputError
from stylize_video.models.transform_net import TransformNet, pad_to_size, padded_size
from stylize_video.runtime.backends import onnx_export
from stylize_video.runtime.backends.onnx_export import export_onnx, read_exported
from stylize_video.runtime.stylizer import Stylizer

from .conftest import make_image

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CACHE", str(tmp_path / "cache"))


def test_export_round_trip_in_plain_onnxruntime(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from stylize_video.models.checkpoint import load_checkpoint

    out = tmp_path / "tiny.onnx"
    result = export_onnx(tiny_checkpoint, out)
    assert out.is_file() and result.mean_abs_diff <= 1 / 255
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    net = load_checkpoint(tiny_checkpoint).model
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for h, w in [(13, 27), (40, 64)]:  # one graph, any stride multiple: height and width are dynamic
        x = torch.rand(1, 3, h, w)
        th, tw = padded_size(h, w, net.stride, net.min_size)
        y = session.run(None, {"image": pad_to_size(x, th, tw).numpy()})[0][..., :h, :w]
        with torch.inference_mode():
            assert np.abs(y - net(x).numpy()).mean() <= 1 / 255


def test_export_metadata_and_opset(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.onnx"
    export_onnx(tiny_checkpoint, out)
    model = onnx.load(str(out))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["style"] == "tiny" and props["title"] == "Test" and props["artist"] == "Nobody"
    assert props["stride"] == "2" and props["min_size"] == "4" and "multiples of 2" in props["contract"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [1, 3, "height", "width"]
    graph = read_exported(out)
    assert (graph.stride, graph.min_size, graph.name) == (2, 4, "tiny")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_file_runs_in_the_engine(tiny_checkpoint: Path, tmp_path: Path, backend: str) -> None:
    pytest.importorskip(backend)
    out = tmp_path / "tiny.onnx"
    export_onnx(tiny_checkpoint, out)
    frame = make_image(29, 35)
    a = Stylizer(tiny_checkpoint, device="cpu", precision="fp32", backend="torch")(frame)
    b = Stylizer(out, device="cpu", precision="fp32", backend=backend)(frame)
    assert np.abs(a.astype(int) - b.astype(int)).mean() <= 1.0


def test_export_refuses_to_overwrite_and_checks_the_name(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        export_onnx(tiny_checkpoint, out)
    assert out.read_bytes() == b"keep me"
    export_onnx(tiny_checkpoint, out, overwrite=True)
    assert out.read_bytes() != b"keep me"
    with pytest.raises(OutputError, match=r"\.onnx"):
        export_onnx(tiny_checkpoint, tmp_path / "tiny.pt")
    with pytest.raises(OutputError, match="opset"):
        export_onnx(tiny_checkpoint, tmp_path / "old.onnx", opset=13)


def test_an_export_that_differs_from_pytorch_is_not_written(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export.onnx_bytes

    def wrong(net: TransformNet, opset: int = 17) -> bytes:
        other = TransformNet(net.config).eval()  # different random weights
        return real(other, opset)

    monkeypatch.setattr(onnx_export, "onnx_bytes", wrong)
    out = tmp_path / "bad.onnx"
    with pytest.raises(OutputError, match=r"differs from PyTorch by .*/255.*nothing written"):
        export_onnx(tiny_checkpoint, out)
    assert list(tmp_path.glob("*bad.onnx*")) == []


def test_export_without_onnx_names_the_extra(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(DependencyError, match=r"stylize-video\[onnx\]"):
        export_onnx(tiny_checkpoint, tmp_path / "x.onnx")


def test_foreign_onnx_file_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["image"], ["stylized"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(CheckpointError, match="no stylize-video metadata"):
        read_exported(path)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="not a readable ONNX file"):
        read_exported(tmp_path / "junk.onnx")


def test_export_command(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stylize_video.cli import main

    out = tmp_path / "cli.onnx"
    assert main(["export", str(tiny_checkpoint), "-o", str(out)]) == 0
    assert "matches PyTorch within" in capsys.readouterr().out
    assert main(["export", str(tiny_checkpoint), "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["export", str(tiny_checkpoint), "-o", str(out), "--overwrite"]) == 0
