"""Distilling single-style networks into one multi-style network (training/multistyle.py, distill-styles)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError, OutputError
from stylize_video.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from stylize_video.models.transform_net import NetConfig, TransformNet
from stylize_video.models.vgg import VGGFeatures
from stylize_video.training.data import load_fixed
from stylize_video.training.evaluate import evaluate_checkpoint
from stylize_video.training.multistyle import (
    DistillConfig,
    MultiStyleDistiller,
    compare_with_teachers,
    comparison_markdown,
    distill_loss,
    record_comparison,
    style_assignment,
)
from tests.conftest import TINY

NAMES = ("alpha", "beta", "gamma")


def make_teacher(folder: Path, name: str, seed: int, arch: NetConfig = TINY) -> Path:
    """A tiny single-style network with random weights (distinct per seed) and credits."""
    torch.manual_seed(seed)
    net = TransformNet(arch)
    with torch.no_grad():
        for _, norm in net.norms():
            # Random affine rows: each teacher's norm rows differ visibly from the others'.
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    meta = CheckpointMeta(
        name=name,
        title=f"Painting {name}",
        artist=f"Artist {seed}",
        year="1900",
        credit="Public domain, test",
        training={"style_image": "painting.png", "style_size": 32, "image_size": 32, "batch_size": 2},
        metrics={"val_content": 1.0, "val_style": 2.0},
    )
    return save_checkpoint(folder / f"{name}.safetensors", net, meta, dtype=torch.float32)


@pytest.fixture
def teachers(tmp_path: Path) -> list[Path]:
    d = tmp_path / "teachers"
    d.mkdir()
    return [make_teacher(d, n, i + 1) for i, n in enumerate(NAMES)]


def config(teachers: list[Path], photos: Path, out: Path, **kw: object) -> DistillConfig:
    settings: dict[str, object] = {
        "image_size": 32,
        "batch_size": 3,
        "iterations": 6,
        "lr": 3e-3,
        "val_fraction": 0.4,
        "checkpoint_every": 2,
        "device": "cpu",
    }
    settings.update(kw)
    return DistillConfig(teachers=tuple(map(str, teachers)), output=str(out), photos=str(photos), **settings)  # type: ignore[arg-type]


def test_style_assignment_cycles_through_styles() -> None:
    assert style_assignment(0, 4, 3).tolist() == [0, 1, 2, 0]
    assert style_assignment(4, 4, 3).tolist() == [1, 2, 0, 1]


def test_distill_loss_is_zero_only_for_equal_images() -> None:
    a = torch.rand(2, 3, 16, 16)
    assert float(distill_loss(a, a)) == 0.0
    b = a.clone()
    b[:, 0] += 0.1
    # L1 on RGB (0.1 / 3) plus the pooled term (the same shift survives pooling).
    assert float(distill_loss(b, a, blur_weight=1.0)) == pytest.approx(2 * 0.1 / 3, rel=1e-4)
    assert float(distill_loss(b, a, blur_weight=0.0)) == pytest.approx(0.1 / 3, rel=1e-4)


def test_starting_point_holds_every_teachers_affine(teachers: list[Path]) -> None:
    nets = [load_checkpoint(t).model for t in teachers]
    student = TransformNet.from_single(nets).eval()
    x = torch.rand(2, 3, 32, 32)
    for s, net in enumerate(nets):
        vector = student.get_style_vector(s)
        for name, norm in net.norms():
            assert torch.equal(vector[f"{name}.weight"], norm.weight.detach())
            assert torch.equal(vector[f"{name}.bias"], norm.bias.detach())
    onehot = torch.eye(len(nets))
    with torch.no_grad():
        # Style 0 shares the first teacher's convolutions too: it is that teacher exactly.
        assert torch.allclose(student(x, style=onehot[0]), nets[0](x), atol=1e-6)
        # The others have their own norms on foreign convolutions: what training must fix.
        assert not torch.allclose(student(x, style=onehot[1]), nets[1](x), atol=1e-3)


def test_training_lowers_the_distillation_loss(teachers: list[Path], photos: Path, tmp_path: Path) -> None:
    cfg = config(teachers, photos, tmp_path / "out.safetensors", iterations=30, lr=5e-3, checkpoint_every=100)
    distiller = MultiStyleDistiller(cfg, progress=False)
    distiller.setup()
    val = load_fixed(distiller.photos.train[:4], 32)
    before = distiller.validate(val)
    distiller.student.train()
    for batch in distiller.loader:
        distiller.step(batch)
    after = distiller.validate(val)
    mean_before = sum(before[n]["val_distill"] for n in NAMES) / 3
    mean_after = sum(after[n]["val_distill"] for n in NAMES) / 3
    assert mean_after < 0.9 * mean_before
    first, last = distiller.history[:5], distiller.history[-5:]
    assert sum(h["distill"] for h in last) < sum(h["distill"] for h in first)


def test_checkpoint_holds_named_styles_with_credits(teachers: list[Path], photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "gallery.safetensors"
    result = MultiStyleDistiller(config(teachers, photos, out), progress=False).run()
    assert result.path == out and result.iterations == 6
    ck = load_checkpoint(out)
    assert ck.style_names == list(NAMES)
    assert ck.model.num_styles == 3
    for i, info in enumerate(ck.meta.styles):
        assert info.title == f"Painting {NAMES[i]}" and info.artist == f"Artist {i + 1}"
        assert info.credit == "Public domain, test"
        # What evaluate-style needs to score the style like its teacher, and where it came from.
        assert info.training["style_image"] == "painting.png" and info.training["image_size"] == 32
        assert info.training["distilled_from"]["name"] == NAMES[i]
        assert info.training["distilled_from"]["metrics"] == {"val_content": 1.0, "val_style": 2.0}
        assert info.metrics["val_distill"] > 0 and "val_temporal" in info.metrics
    assert ck.meta.training["iterations_done"] == 6
    # The state stays beside the output for a later --resume.
    assert config(teachers, photos, out).state_path.is_file()


def test_resume_reproduces_an_uninterrupted_run(teachers: list[Path], photos: Path, tmp_path: Path) -> None:
    whole = MultiStyleDistiller(config(teachers, photos, tmp_path / "a.safetensors"), progress=False)
    whole.run()

    def stop_at_3(iteration: int, losses: dict[str, float]) -> None:
        if iteration == 3:
            raise KeyboardInterrupt

    b = tmp_path / "b.safetensors"
    with pytest.raises(KeyboardInterrupt):
        MultiStyleDistiller(config(teachers, photos, b), progress=False, on_step=stop_at_3).run()
    assert not b.exists()  # no checkpoint under the final name until the run finishes
    state = torch.load(config(teachers, photos, b).state_path, weights_only=True)
    assert state["iteration"] == 3  # saved at the interrupt, not only at the periodic save (2)
    resumed = MultiStyleDistiller(config(teachers, photos, b, resume=True), progress=False)
    resumed.run()
    assert [h["distill"] for h in resumed.history] == pytest.approx([h["distill"] for h in whole.history], rel=1e-4)
    for (k, va), vb in zip(whole.student.state_dict().items(), resumed.student.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-5), k


def test_resume_refuses_other_settings_or_teachers(teachers: list[Path], photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.safetensors"
    MultiStyleDistiller(config(teachers, photos, out, iterations=2), progress=False).run()
    with pytest.raises(InputError, match="image_size"):
        MultiStyleDistiller(config(teachers, photos, out, resume=True, image_size=48), progress=False).setup()
    with pytest.raises(InputError, match="teachers"):
        cfg = config(list(reversed(teachers)), photos, out, resume=True)
        MultiStyleDistiller(cfg, progress=False).setup()
    # A fresh run refuses to clobber the state (or the output) without --overwrite.
    with pytest.raises(OutputError):
        MultiStyleDistiller(config(teachers, photos, out), progress=False).setup()


def test_teachers_must_share_an_architecture(teachers: list[Path], photos: Path, tmp_path: Path) -> None:
    other = make_teacher(tmp_path, "wide", 9, NetConfig(channels=(6, 8), res_blocks=1, head_kernel=3, tail_kernel=3))
    with pytest.raises(InputError, match="architecture"):
        MultiStyleDistiller(config([*teachers, other], photos, tmp_path / "x.safetensors"), progress=False).setup()
    with pytest.raises(InputError, match="both named"):
        MultiStyleDistiller(
            config([teachers[0], teachers[0]], photos, tmp_path / "y.safetensors"), progress=False
        ).setup()


def test_evaluate_scores_a_style_of_a_network_like_its_teacher(
    teachers: list[Path], photos: Path, style_file: Path, tmp_path: Path
) -> None:
    # One teacher: the starting point computes exactly what it computes, so the scores agree.
    torch.manual_seed(1)
    vgg = VGGFeatures(width_div=16)
    styles = style_file.parent
    out = tmp_path / "one.safetensors"
    MultiStyleDistiller(config(teachers[1:2], photos, out, iterations=1, lr=1e-12), progress=False).run()
    ev_t = evaluate_checkpoint(teachers[1], photos, style_image=styles, vgg=vgg, device="cpu", val_fraction=0.4)
    ev_s = evaluate_checkpoint(out, photos, style_image=styles, vgg=vgg, device="cpu", val_fraction=0.4, style="beta")
    assert ev_s.checkpoint.endswith("[beta]")
    for k in ("content", "style", "temporal"):
        assert ev_s.losses[k] == pytest.approx(ev_t.losses[k], rel=1e-3)
    with pytest.raises(InputError, match="no style"):
        evaluate_checkpoint(out, photos, style_image=styles, vgg=vgg, device="cpu", style="nope")


def test_compare_with_teachers_tables_and_records(
    teachers: list[Path], photos: Path, style_file: Path, tmp_path: Path
) -> None:
    torch.manual_seed(1)
    vgg = VGGFeatures(width_div=16)
    out = tmp_path / "g.safetensors"
    MultiStyleDistiller(config(teachers, photos, out, iterations=2), progress=False).run()
    rows = compare_with_teachers(out, teachers, photos, style_file.parent, vgg=vgg, device="cpu", max_images=2)
    assert [r.style for r in rows] == list(NAMES)
    assert rows[0].ratios["content"] == pytest.approx(rows[0].student["content"] / rows[0].teacher["content"])
    table = comparison_markdown(rows)
    assert table.count("\n") == 2 + len(NAMES) and "`gamma`" in table
    record_comparison(out, rows)
    metrics = load_checkpoint(out).meta.styles[2].metrics
    assert metrics["teacher_val_style"] == pytest.approx(rows[2].teacher["style"])
    assert metrics["ratio_val_content"] == pytest.approx(rows[2].ratios["content"])
    assert "val_distill" in metrics  # the run's own metrics are kept


def test_cli_distills_and_reports_errors(
    teachers: list[Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.safetensors"
    args = ["distill-styles", *map(str, teachers), "-o", str(out), "--data", str(photos), "--image-size", "32"]
    assert main([*args, "--iterations", "2", "--batch-size", "3", "--no-progress", "--device", "cpu"]) == 0
    assert load_checkpoint(out).style_names == list(NAMES)
    assert "wrote" in capsys.readouterr().out
    assert main([*args, "--iterations", "2"]) == 1  # the output exists
    err = capsys.readouterr().err
    assert err.startswith("stylize-video: error:") and err.count("\n") == 1
    assert main([*args, "-o", str(tmp_path / "bad.pt")]) == 1
    assert main([*args, "--report", str(tmp_path / "r.md")]) == 1  # needs --style-images


def test_evaluate_style_command_scores_each_style_of_a_file(
    teachers: list[Path],
    photos: Path,
    style_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from safetensors.torch import save_file

    from stylize_video.models import vgg as vgg_module

    # A 1/16-width VGG stands in for the real one, read from a file as the command does.
    build = vgg_module._build_features
    monkeypatch.setattr(vgg_module, "_build_features", lambda width_div=1: build(16))
    torch.manual_seed(1)
    vgg_file = tmp_path / "vgg.safetensors"
    save_file({f"features.{k}": v for k, v in VGGFeatures().features.state_dict().items()}, str(vgg_file))
    out = tmp_path / "g.safetensors"
    MultiStyleDistiller(config(teachers[:2], photos, out, iterations=1), progress=False).run()
    argv = ["evaluate-style", str(out), "--data", str(photos), "--style-image", str(style_file.parent)]
    assert main([*argv, "--vgg-weights", str(vgg_file), "--max-images", "2", "--device", "cpu", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["checkpoint"] for r in results] == [f"{out}[alpha]", f"{out}[beta]"]
    assert results[0]["losses"]["style"] != results[1]["losses"]["style"]


def test_perceptual_phase_starts_from_init_and_uses_each_painting(
    teachers: list[Path], photos: Path, style_file: Path, tmp_path: Path
) -> None:
    first = tmp_path / "phase1.safetensors"
    MultiStyleDistiller(config(teachers, photos, first, iterations=2), progress=False).run()
    torch.manual_seed(1)
    vgg = VGGFeatures(width_div=16)
    cfg = config(
        teachers,
        photos,
        tmp_path / "phase2.safetensors",
        iterations=2,
        init=str(first),
        perceptual_weight=1.0,
        temporal_weight=10.0,
        style_images=str(style_file.parent),
    )
    distiller = MultiStyleDistiller(cfg, progress=False, vgg=vgg)
    distiller.setup()
    start = load_checkpoint(first).model
    for (k, a), b in zip(start.state_dict().items(), distiller.student.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu()), k  # --init, not from_single
    assert len(distiller.losses) == len(NAMES)
    losses = distiller.step(next(iter(distiller.loader)))
    assert losses["style"] > 0 and losses["content"] > 0 and losses["temporal"] > 0
    assert losses["total"] == pytest.approx(
        losses["distill"] + losses["temporal"] + losses["content"] + losses["style"], rel=0.05
    )
    with pytest.raises(InputError, match="must hold the teachers' styles"):
        MultiStyleDistiller(config(teachers[:2], photos, tmp_path / "x.safetensors", init=str(first))).setup()
    with pytest.raises(InputError, match="not found"):
        bad = dataclasses.replace(cfg, style_images=str(tmp_path / "teachers"), output=str(tmp_path / "y.safetensors"))
        MultiStyleDistiller(bad, vgg=vgg).setup()
