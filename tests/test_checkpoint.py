from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylize_video.errors import CheckpointError
from stylize_video.models.checkpoint import CheckpointMeta, available_styles, load_checkpoint, save_checkpoint
from stylize_video.models.transform_net import PRESETS, TransformNet

from .conftest import TINY


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    net = TransformNet(TINY)
    meta = CheckpointMeta(name="wave", title="The Great Wave", artist="Hokusai", year="1831", training={"lr": 1e-3})
    path = save_checkpoint(tmp_path / "wave.safetensors", net, meta, dtype=torch.float32)
    ck = load_checkpoint(path)
    assert ck.meta.title == "The Great Wave" and ck.meta.training == {"lr": 1e-3}
    assert ck.meta.arch == TINY and ck.meta.created
    for k, v in net.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v)
    assert not ck.model.training


def test_fp16_storage_is_close_and_small(tmp_path: Path) -> None:
    net = TransformNet(PRESETS["full"])
    p16 = save_checkpoint(tmp_path / "a.safetensors", net, CheckpointMeta(name="a"))
    p32 = save_checkpoint(tmp_path / "b.safetensors", net, CheckpointMeta(name="b"), dtype=torch.float32)
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(load_checkpoint(p16).model(x), net.eval()(x), atol=2e-2, rtol=0)


def test_bare_name_resolves_through_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path / "my-style.safetensors", TransformNet(TINY), CheckpointMeta(name="my-style"))
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tmp_path))
    assert "my-style" in available_styles()
    assert load_checkpoint("my-style").meta.name == "my-style"
    with pytest.raises(CheckpointError, match=r"unknown style 'nope'.*my-style"):
        load_checkpoint("nope")


def test_a_folder_named_like_a_style_does_not_hide_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `image photo.jpg -s my-style -o my-style` makes that folder; the style must still resolve.
    styles, work = tmp_path / "styles", tmp_path / "work"
    save_checkpoint(styles / "my-style.safetensors", TransformNet(TINY), CheckpointMeta(name="my-style"))
    (work / "my-style").mkdir(parents=True)
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(styles))
    monkeypatch.chdir(work)
    assert load_checkpoint("my-style").path == styles / "my-style.safetensors"
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint("./my-style")


def test_styles_installed_by_a_wheel_are_found_under_the_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-editable install puts checkpoints/ under <prefix>/share/stylize-video/checkpoints.
    share = tmp_path / "share" / "stylize-video" / "checkpoints"
    share.mkdir(parents=True)
    save_checkpoint(share / "wheel-style.safetensors", TransformNet(TINY), CheckpointMeta(name="wheel-style"))
    monkeypatch.setattr("sys.prefix", str(tmp_path))
    monkeypatch.delenv("STYLIZE_VIDEO_CHECKPOINTS", raising=False)
    assert available_styles()["wheel-style"] == share / "wheel-style.safetensors"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_truncated_file(tmp_path: Path, tiny_checkpoint: Path) -> None:
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(tiny_checkpoint.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*truncated or corrupt"):
        load_checkpoint(bad)


def test_foreign_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(p))
    with pytest.raises(CheckpointError, match="not a style checkpoint"):
        load_checkpoint(p)


def test_wrong_keys_for_recorded_architecture(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v for k, v in TransformNet(TINY).state_dict().items() if not k.startswith("tail")}
    p = tmp_path / "wrong.safetensors"
    save_file(state, str(p), metadata={"stylize_video": CheckpointMeta(name="w", arch=TINY).to_json()})
    with pytest.raises(CheckpointError, match="missing key"):
        load_checkpoint(p)


def test_shape_mismatch(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "shape.safetensors"
    save_file(
        TransformNet(TINY).state_dict(),
        str(p),
        metadata={"stylize_video": CheckpointMeta(name="s", arch=PRESETS["lite"]).to_json()},
    )
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(p)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    meta = CheckpointMeta(name="future", arch=TINY, format_version=99)
    p = tmp_path / "future.safetensors"
    save_file(TransformNet(TINY).state_dict(), str(p), metadata={"stylize_video": meta.to_json()})
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(p)


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "evil.pth"
    torch.save({"x": _Evil()}, p)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(p)
    assert "pwned" not in capsys.readouterr().out


def test_garbage_pth(tmp_path: Path) -> None:
    p = tmp_path / "garbage.pth"
    p.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.pth"):
        load_checkpoint(p)


def _pytorch_examples_state() -> dict[str, torch.Tensor]:
    """A state dict laid out like pytorch/examples fast_neural_style's TransformerNet."""
    g = torch.Generator().manual_seed(0)

    def conv(cin: int, cout: int, k: int) -> dict[str, torch.Tensor]:
        return {"weight": torch.randn(cout, cin, k, k, generator=g) * 0.1, "bias": torch.randn(cout, generator=g) * 0.1}

    def norm(c: int) -> dict[str, torch.Tensor]:
        # Legacy InstanceNorm2d(track_running_stats=True) keys included on purpose.
        return {
            "weight": torch.ones(c),
            "bias": torch.zeros(c),
            "running_mean": torch.zeros(c),
            "running_var": torch.ones(c),
        }

    layers = {
        "conv1.conv2d": conv(3, 32, 9), "in1": norm(32), "conv2.conv2d": conv(32, 64, 3), "in2": norm(64),
        "conv3.conv2d": conv(64, 128, 3), "in3": norm(128),
        "deconv1.conv2d": conv(128, 64, 3), "in4": norm(64), "deconv2.conv2d": conv(64, 32, 3), "in5": norm(32),
        "deconv3.conv2d": conv(32, 3, 9),
    }  # fmt: skip
    for i in range(1, 6):
        layers |= {f"res{i}.conv1.conv2d": conv(128, 128, 3), f"res{i}.in1": norm(128)}
        layers |= {f"res{i}.conv2.conv2d": conv(128, 128, 3), f"res{i}.in2": norm(128)}
    return {f"{name}.{leaf}": t for name, params in layers.items() for leaf, t in params.items()}


def test_loads_pytorch_examples_state_dict(tmp_path: Path) -> None:
    p = tmp_path / "candy.pth"
    torch.save(_pytorch_examples_state(), p)
    ck = load_checkpoint(p)
    assert ck.meta.arch.output == "linear255" and ck.meta.preset == "full"
    with torch.inference_mode():
        y = ck.model(torch.rand(1, 3, 40, 30))
    assert y.shape == (1, 3, 40, 30) and y.min() >= 0 and y.max() <= 1
