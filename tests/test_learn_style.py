"""learn-style: a new style vector on a frozen network (tiny nets, random VGG, generated images)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError
from stylize_video.models.checkpoint import (
    CheckpointMeta,
    StyleInfo,
    load_checkpoint,
    read_style_vector,
    save_checkpoint,
)
from stylize_video.models.transform_net import TransformNet
from stylize_video.models.vgg import VGGFeatures
from stylize_video.training.config import DataConfig, LossConfig, OptimConfig, RunConfig
from stylize_video.training.data import load_style_image
from stylize_video.training.learn_style import (
    LearnStyleConfig,
    StyleLearner,
    default_base,
    learn_style,
    painting_files,
)
from stylize_video.training.learn_style_base import painting_loss

from .conftest import TINY, make_image


def small_vgg(seed: int = 1) -> VGGFeatures:
    torch.manual_seed(seed)
    return VGGFeatures(width_div=16)


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    """A two-style tiny network, saved as a multi-style checkpoint in a styles folder."""
    nets = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        net = TransformNet(TINY)
        with torch.no_grad():
            for _, norm in net.norms():
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.3, 0.3)
        nets.append(net)
    multi = TransformNet.from_single(nets)
    meta = CheckpointMeta(name="tinygallery", styles=[StyleInfo("style-a"), StyleInfo("style-b")])
    d = tmp_path / "styles"
    d.mkdir()
    return save_checkpoint(d / "tinygallery.safetensors", multi, meta)


def _config(base: Path, painting: Path, photos: Path, out: Path, **kw: Any) -> LearnStyleConfig:
    run = {"output": str(out), "checkpoint_every": 100, "sample_every": 0, "device": "cpu", "threads": 1}
    run.update(kw.pop("run", {}))
    return LearnStyleConfig(
        data=DataConfig(photos=str(photos), image_size=32, batch_size=2, val_fraction=0.2, val_images=4),
        loss=LossConfig(style_image=str(painting), style_size=48, temporal_weight=kw.pop("temporal_weight", 5.0)),
        run=RunConfig(**run),
        optim=OptimConfig(iterations=kw.pop("iterations", 4), lr=kw.pop("lr", 0.05), amp="off"),
        base=str(base),
        **kw,
    )


def _shared(net: TransformNet) -> dict[str, torch.Tensor]:
    norms = {name for name, _ in net.norms()}
    return {k: v for k, v in net.state_dict().items() if k.rpartition(".")[0] not in norms}


def test_vector_is_learned_with_the_network_frozen(
    base_file: Path, style_file: Path, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "styles" / "newstyle.safetensors"
    learner = StyleLearner(_config(base_file, style_file, photos, out, iterations=12), vgg=small_vgg(), progress=False)
    result = learner.run()
    assert result.kind == "vector" and result.iterations == 12 and result.base == "tinygallery"
    assert result.init_style in ("style-a", "style-b", "(mean)")
    # Every convolution bit-identical to the base's; only the norms moved.
    base = load_checkpoint(base_file).model
    for key, value in _shared(base).items():
        assert torch.equal(learner.model.state_dict()[key], value), key
    vector, meta = read_style_vector(out)
    start = (
        base.get_style_vector(["style-a", "style-b"].index(result.init_style))
        if result.init_style != "(mean)"
        else None
    )
    if start is not None:
        assert any(not torch.equal(vector[k], start[k]) for k in vector)
    # The learned style is nearer the painting than where it started (held-out photos).
    info = meta.styles[0]
    assert info.metrics["val_style"] < info.training["init_style_losses"][result.init_style]
    assert info.training["iterations_done"] == 12 and info.training["base_name"] == "tinygallery"
    assert set(info.metrics) >= {"val_style", "val_content", "val_temporal"}


def test_style_loss_goes_down_in_a_few_steps(base_file: Path, style_file: Path, photos: Path, tmp_path: Path) -> None:
    losses: list[float] = []
    out = tmp_path / "s.safetensors"
    config = _config(base_file, style_file, photos, out, iterations=10, lr=0.1, temporal_weight=0.0)
    StyleLearner(config, vgg=small_vgg(), progress=False, on_step=lambda i, row: losses.append(row["style"])).run()
    assert len(losses) == 10
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])  # 0.37 -> 0.30 measured


def test_the_file_loads_with_s_and_blends_with_the_base(
    base_file: Path, style_file: Path, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stylize_video.runtime.stylizer import Stylizer

    out = base_file.parent / "mine.safetensors"
    learn_style(_config(base_file, style_file, photos, out), vgg=small_vgg(), progress=False)
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(base_file.parent))
    ck = load_checkpoint("mine")  # by name, as -s takes it
    assert ck.style == "mine" and ck.style_names == ["style-a", "style-b", "mine"]
    frame = make_image()
    x = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    st = Stylizer("style-a=0.5+mine=0.5", device="cpu", precision="fp32", backend="torch", bgr=True)
    out_blend = st(frame).astype(float)
    with torch.no_grad():
        ref = ck.model(x, torch.tensor([0.5, 0.0, 0.5]))[0].permute(1, 2, 0).numpy()[..., ::-1] * 255
    assert np.abs(out_blend - ref).max() <= 2.0
    alone = Stylizer("mine", device="cpu", precision="fp32", backend="torch")(frame).astype(float)
    assert np.abs(alone - out_blend).max() > 1.0  # the blend is not just the new style
    # The CLI takes it like any style.
    dst = tmp_path / "blend.png"
    import cv2

    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), frame)
    assert main(["image", str(src), "-s", "style-b=0.3+mine=0.7", "-o", str(dst)]) == 0 and dst.is_file()


def test_ctrl_c_leaves_a_resumable_state_that_resumes_exactly(
    base_file: Path, style_file: Path, photos: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.safetensors"
    learn_style(_config(base_file, style_file, photos, whole, iterations=6), vgg=small_vgg(), progress=False)

    out = tmp_path / "cut.safetensors"
    config = _config(base_file, style_file, photos, out, iterations=6)

    def stop(i: int, row: dict[str, float]) -> None:
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StyleLearner(config, vgg=small_vgg(), progress=False, on_step=stop).run()
    assert config.state_path.is_file() and not out.exists()
    state = torch.load(config.state_path, weights_only=True)
    assert state["iteration"] == 3 and state["phase"] == "vector"
    with pytest.raises(Exception, match="exists"):  # no silent restart over the state
        learn_style(config, vgg=small_vgg(), progress=False)
    import dataclasses

    resumed = learn_style(
        dataclasses.replace(config, run=dataclasses.replace(config.run, resume=True)), vgg=small_vgg(), progress=False
    )
    assert resumed.iterations == 6
    a, _ = read_style_vector(whole)
    b, _ = read_style_vector(out)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_full_finetune_writes_a_standalone_network(
    base_file: Path, style_file: Path, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ft.safetensors"
    result = learn_style(
        _config(base_file, style_file, photos, out, iterations=2, full_finetune=2), vgg=small_vgg(), progress=False
    )
    assert result.kind == "network" and result.finetune_iterations == 2
    ck = load_checkpoint(out)
    assert ck.meta.base is None and ck.model.num_styles == 0
    assert "vector_val_style" in ck.meta.metrics and "val_style" in ck.meta.metrics
    base = load_checkpoint(base_file).model
    changed = [k for k, v in _shared(base).items() if not torch.allclose(ck.model.state_dict()[k], v, atol=1e-3)]
    assert changed  # the convolutions trained too


def test_a_folder_of_images_uses_their_mean_gram(tmp_path: Path) -> None:
    import cv2

    d = tmp_path / "set"
    d.mkdir()
    for i in (1, 2):
        cv2.imwrite(str(d / f"p{i}.png"), make_image(40, 60, seed=i))
    vgg = small_vgg()
    loss = LossConfig(style_image=str(d), style_size=48)
    images = [load_style_image(p, 48) for p in painting_files(d)]
    assert len(images) == 2
    both = painting_loss(vgg, images, loss, torch.device("cpu"))
    ones = [painting_loss(vgg, [image], loss, torch.device("cpu")) for image in images]
    for name in both.style_layers:
        expected = (getattr(ones[0], f"gram_{name}") + getattr(ones[1], f"gram_{name}")) / 2
        assert torch.allclose(getattr(both, f"gram_{name}"), expected)


@pytest.fixture
def _no_shipped_styles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The project's checkpoints/ out of sight: its own `full` gallery would be the default base."""
    monkeypatch.setattr("stylize_video.models.checkpoint._PROJECT_CHECKPOINTS", tmp_path / "shipped")


@pytest.mark.usefixtures("_no_shipped_styles")
def test_default_base_prefers_an_installed_multi_style_network(
    base_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with monkeypatch.context() as nothing_installed:
        nothing_installed.setattr("stylize_video.training.learn_style_base.search_dirs", lambda: [empty])
        nothing_installed.setattr("stylize_video.training.learn_style_base.style_refs", lambda: {})
        assert default_base() == "starry-night"
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(base_file.parent))
    assert Path(default_base()) == base_file


@pytest.mark.usefixtures("_no_shipped_styles")
def test_default_base_passes_over_a_lite_gallery(
    base_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A ``lite`` multi-style network (the shipped gallery) is a base only when named."""
    lite_dir = tmp_path / "lite"
    lite_dir.mkdir()
    ck = load_checkpoint(base_file)
    styles = [StyleInfo("lite-a"), StyleInfo("lite-b")]
    meta = dataclasses.replace(ck.meta, name="litegallery", preset="lite", styles=styles)
    save_checkpoint(lite_dir / "litegallery.safetensors", ck.model, meta)
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(lite_dir))
    assert default_base() == "starry-night"
    # beside a multi-style network that is not lite, that one is the base
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", os.pathsep.join([str(lite_dir), str(base_file.parent)]))
    assert Path(default_base()) == base_file


@pytest.mark.parametrize(
    ("painting", "match"),
    [("missing.jpg", "does not exist"), ("emptydir", "holds no images"), ("notimage.jpg", "not a readable image")],
)
def test_bad_painting_is_a_one_line_error(
    base_file: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], painting: str, match: str
) -> None:
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notimage.jpg").write_bytes(b"not an image")
    out = tmp_path / "x.safetensors"
    argv = ["learn-style", str(tmp_path / painting), "-o", str(out), "--base", str(base_file), "--data", str(photos)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylize-video: error:") and match in err and "\n" not in err
    assert not out.exists()


def test_a_name_the_base_already_has_is_refused(base_file: Path, style_file: Path, photos: Path) -> None:
    out = base_file.parent / "style-a.safetensors"
    with pytest.raises(InputError, match="already has a style named 'style-a'"):
        learn_style(_config(base_file, style_file, photos, out), vgg=small_vgg(), progress=False)
