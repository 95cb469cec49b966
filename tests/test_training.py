"""Training: losses, data split, a tiny end-to-end run, exact resume, skipped files, CLI."""

from __future__ import annotations

import math
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError, OutputError
from stylize_video.models.checkpoint import load_checkpoint
from stylize_video.models.vgg import VGGFeatures, _select_features
from stylize_video.training.data import PhotoSet, PositionDataset, is_validation, list_images
from stylize_video.training.losses import PerceptualLoss, gram_matrix
from stylize_video.training.train import TrainConfig, train

from .conftest import TINY


def small_vgg(seed: int = 1) -> VGGFeatures:
    torch.manual_seed(seed)
    return VGGFeatures(width_div=16)


def _config(photos: Path, style: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "style_image": str(style),
        "data": str(photos),
        "output": str(out),
        "image_size": 32,
        "style_size": 48,
        "batch_size": 2,
        "iterations": 3,
        "checkpoint_every": 100,
        "sample_every": 2,
        "amp": "off",
        "threads": 1,
        "device": "cpu",
        "val_fraction": 0.2,
        "title": "Test Painting",
        "artist": "Nobody",
    }
    base.update(kw)
    return TrainConfig.from_options(**base)


def test_gram_is_fp32_and_size_normalised() -> None:
    f = torch.rand(2, 4, 8, 8)
    g = gram_matrix(f.bfloat16())
    assert g.dtype == torch.float32 and g.shape == (2, 4, 4)
    # Tiling the map 2x2 keeps the per-position statistics, so the normalised Gram is unchanged.
    assert torch.allclose(gram_matrix(f.repeat(1, 1, 2, 2)), gram_matrix(f), rtol=1e-5)


def test_loss_is_invariant_to_vgg_activation_scale() -> None:
    # Scaling the first conv and every bias by k scales every ReLU activation by k
    # (ReLU and max-pool are positively homogeneous): a stand-in for Caffe-scale VGG.
    vgg = small_vgg()
    scaled = small_vgg()
    with torch.no_grad():
        for i, layer in enumerate(scaled.features):
            if isinstance(layer, torch.nn.Conv2d):
                layer.bias.mul_(50.0)
                if i == 0:
                    layer.weight.mul_(50.0)
    style, x, y = torch.rand(1, 3, 40, 40), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    a = PerceptualLoss(vgg, style)
    b = PerceptualLoss(scaled, style)
    la, lb = a(y, a.content_targets(x)), b(y, b.content_targets(x))
    for k in ("content", "style", "total"):
        assert math.isclose(la[k].item(), lb[k].item(), rel_tol=1e-3), k
    # ... while the raw features really are 50x larger.
    assert scaled(x, ["relu4_3"])["relu4_3"].abs().mean() > 40 * vgg(x, ["relu4_3"])["relu4_3"].abs().mean()


def test_vgg_accepts_torchvision_layout_and_reports_missing() -> None:
    full = {f"features.{k}": v for k, v in VGGFeatures().features.state_dict().items()}
    full["classifier.0.weight"] = torch.zeros(1)  # ignored
    assert set(_select_features(full)) == set(VGGFeatures().features.state_dict())
    del full["features.21.weight"]
    with pytest.raises(InputError, match=r"21\.weight"):
        _select_features(full)


def test_validation_split_is_by_name_and_tar_matches_folder(photos: Path, tmp_path: Path) -> None:
    names = [f"img_{i}.jpg" for i in range(400)]
    val = [n for n in names if is_validation(n, 0.05)]
    assert 5 <= len(val) <= 40 and val == [n for n in names if is_validation(n, 0.05)]
    tar_path = tmp_path / "photos.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(photos, arcname=".")
    from_dir, from_tar = list_images(photos), list_images(tar_path)
    assert [r.name for r in from_dir] == [r.name.removeprefix("./") for r in from_tar]
    assert from_dir[3].read_bytes() == from_tar[3].read_bytes()


def test_data_order_is_a_function_of_position(photos: Path) -> None:
    records = PhotoSet.scan(photos, 0.0).train
    a, b = PositionDataset(records, 24, seed=3), PositionDataset(records, 24, seed=3)
    assert torch.equal(a[13], b[13]) and a[13].shape == (3, 24, 24)
    assert not torch.equal(a[13], a[14])
    assert float(a[5].min()) >= 0.0 and float(a[5].max()) <= 1.0


def test_corrupt_images_are_skipped_and_counted(photos: Path, style_file: Path, tmp_path: Path) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "empty.png").write_bytes(b"")
    scanned = PhotoSet.scan(photos, 0.2)
    assert sorted(scanned.skipped) == ["broken.jpg", "empty.png"]
    assert len(scanned.train) + len(scanned.val) == 8
    result = train(
        _config(photos, style_file, tmp_path / "s.safetensors", iterations=1),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )
    assert sorted(result.skipped) == ["broken.jpg", "empty.png"]
    assert load_checkpoint(result.checkpoint).meta.training["skipped_images"] == 2


def test_three_iteration_run_writes_checkpoint_samples_and_metadata(
    photos: Path, style_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "mine.safetensors"
    config = _config(photos, style_file, out)
    result = train(config, vgg=small_vgg(), arch=TINY, progress=False)
    assert result.iterations == 3 and len(result.history) == 3
    assert all(math.isfinite(h["total"]) and h["style"] > 0 for h in result.history)
    ck = load_checkpoint(out)
    assert ck.meta.title == "Test Painting" and ck.meta.artist == "Nobody" and ck.meta.arch == TINY
    assert ck.meta.training["iterations_done"] == 3 and ck.meta.training["lr"] == 1e-3
    assert ck.meta.training["vgg"] == {"source": "provided"}
    assert set(ck.meta.metrics) >= {"val_content", "val_style", "val_tv", "val_total"}
    assert (config.samples_dir / "iter_000002.png").is_file() and (config.samples_dir / "final.png").is_file()
    assert config.state_path.is_file()
    # A second run must not silently replace the first.
    with pytest.raises(OutputError, match="exists"):
        train(config, vgg=small_vgg(), arch=TINY, progress=False)


def test_training_lowers_the_loss(photos: Path, style_file: Path, tmp_path: Path) -> None:
    config = _config(photos, style_file, tmp_path / "l.safetensors", iterations=25, lr=1e-2, sample_every=0)
    hist = train(config, vgg=small_vgg(), arch=TINY, progress=False).history
    assert sum(h["total"] for h in hist[-5:]) < 0.9 * sum(h["total"] for h in hist[:5])


def test_resume_after_interrupt_equals_uninterrupted_run(photos: Path, style_file: Path, tmp_path: Path) -> None:
    straight = train(
        _config(photos, style_file, tmp_path / "a.safetensors", iterations=4),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )

    cfg = _config(photos, style_file, tmp_path / "b.safetensors", iterations=4)

    def stop_at_two(it: int, losses: dict[str, float]) -> None:
        if it == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, vgg=small_vgg(), arch=TINY, progress=False, on_step=stop_at_two)
    assert cfg.state_path.is_file() and not Path(cfg.run.output).exists()
    torch.manual_seed(12345)  # resume must not depend on the global RNG
    resumed = train(cfg.replace(resume=True), vgg=small_vgg(), arch=TINY, progress=False)

    assert len(resumed.history) == 4
    for a, b in zip(straight.history, resumed.history, strict=True):
        for k in a:
            assert math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-9), (k, a, b)
    wa = load_checkpoint(straight.checkpoint).model.state_dict()
    wb = load_checkpoint(resumed.checkpoint).model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_time_limit_writes_a_checkpoint_that_resume_continues(photos: Path, style_file: Path, tmp_path: Path) -> None:
    cfg = _config(photos, style_file, tmp_path / "t.safetensors", iterations=4, sample_every=0, time_limit=1e-6)
    capped = train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    assert capped.iterations == 1 and len(capped.history) == 1
    meta = load_checkpoint(capped.checkpoint).meta
    assert meta.training["iterations_done"] == 1 and meta.training["stopped_at_time_limit"] is True
    assert "val_content" in meta.metrics
    # The state stays, so the run can go on to its --iterations (the limit may change on resume).
    resumed = train(cfg.replace(resume=True, time_limit=None), vgg=small_vgg(), arch=TINY, progress=False)
    assert resumed.iterations == 4 and len(resumed.history) == 4
    assert load_checkpoint(resumed.checkpoint).meta.training["stopped_at_time_limit"] is False


def test_parse_duration() -> None:
    import argparse

    from stylize_video.units import parse_duration

    assert parse_duration("90") == 90.0 and parse_duration("90s") == 90.0
    assert parse_duration("3m") == 180.0 and parse_duration("1.5h") == 5400.0
    for bad in ("", "m", "-1m", "0", "soon", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)


def test_sigterm_during_training_is_a_flag_not_a_kill() -> None:
    import os
    import signal

    from stylize_video.training.trainer import InterruptFlag

    before = signal.getsignal(signal.SIGTERM)
    with InterruptFlag() as flag:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next bytecode
        assert flag.set  # the loop saves whole state at the next step boundary
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_signals_leave_an_ignored_sighup_alone() -> None:
    # `nohup stylize-video train ...` ignores SIGHUP so the run outlives the terminal.
    import signal

    from stylize_video.interrupts import stop_signals_as_interrupt
    from stylize_video.training.trainer import InterruptFlag

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_as_interrupt(), InterruptFlag():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # still taken over
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_resume_refuses_changed_settings(photos: Path, style_file: Path, tmp_path: Path) -> None:
    cfg = _config(photos, style_file, tmp_path / "c.safetensors", iterations=1, sample_every=0)
    train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    with pytest.raises(InputError, match="lr"):
        train(cfg.replace(resume=True, iterations=2, lr=5e-3), vgg=small_vgg(), arch=TINY, progress=False)


def test_resume_refuses_another_painting(photos: Path, style_file: Path, tmp_path: Path) -> None:
    import cv2

    from tests.conftest import make_image

    cfg = _config(photos, style_file, tmp_path / "p.safetensors", iterations=1, sample_every=0)
    train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), make_image(40, 60, seed=7))
    with pytest.raises(InputError, match="not the painting"):
        train(cfg.replace(resume=True, iterations=2, style_image=str(other)), vgg=small_vgg(), arch=TINY)
    # The same painting under another path is the same painting.
    moved = tmp_path / "moved.png"
    moved.write_bytes(style_file.read_bytes())
    resumed = train(
        cfg.replace(resume=True, iterations=2, style_image=str(moved)),
        vgg=small_vgg(),
        arch=TINY,
        progress=False,
    )
    assert resumed.iterations == 2


def test_output_folder_is_created_before_the_first_save(photos: Path, style_file: Path, tmp_path: Path) -> None:
    # No samples (they used to create the folder): the state save must not fail.
    out = tmp_path / "new" / "deeper" / "s.safetensors"
    cfg = _config(photos, style_file, out, iterations=2, checkpoint_every=1, sample_every=0)
    train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    assert out.is_file() and cfg.state_path.is_file()


def test_init_takes_a_style_name(
    photos: Path, style_file: Path, tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tiny_checkpoint.parent))
    cfg = _config(
        photos, style_file, tmp_path / "f.safetensors", iterations=1, sample_every=0, init=tiny_checkpoint.stem
    )
    result = train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    assert load_checkpoint(result.checkpoint).meta.training["init_from"]["name"] is not None
    with pytest.raises(InputError, match="--init: unknown style 'no-such-style'"):
        train(cfg.replace(init="no-such-style", overwrite=True), vgg=small_vgg(), arch=TINY)


def test_distillation_adds_a_teacher_term(
    photos: Path, style_file: Path, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    cfg = _config(photos, style_file, tmp_path / "d.safetensors", iterations=2, teacher=str(tiny_checkpoint))
    result = train(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    assert all(h["distill"] > 0 for h in result.history)
    assert load_checkpoint(result.checkpoint).meta.training["teacher"] == str(tiny_checkpoint)


def test_cli_train_reports_missing_vgg_file(
    photos: Path, style_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--style-image",
            str(style_file),
            "--data",
            str(photos),
            "-o",
            str(tmp_path / "x.safetensors"),
            "--vgg-weights",
            str(tmp_path / "nope.safetensors"),
            "--device",
            "cpu",
        ]
    )
    assert code == 1
    assert "nope.safetensors" in capsys.readouterr().err


def test_config_validation_names_the_bad_value(photos: Path, style_file: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="-3"):
        _config(photos, style_file, tmp_path / "v.safetensors", batch_size=-3)
    with pytest.raises(OutputError, match=r"\.safetensors"):
        _config(photos, style_file, tmp_path / "v.pth")
    with pytest.raises(Exception, match="style-layer-weights"):
        _config(photos, style_file, tmp_path / "v.safetensors", style_layer_weights=(1, 1))
    with pytest.raises(Exception, match="not all 0"):
        _config(photos, style_file, tmp_path / "v.safetensors", style_layer_weights=(0, 0, 0, 0))
    with pytest.raises(Exception, match="--seed must be >= 0"):
        _config(photos, style_file, tmp_path / "v.safetensors", seed=-1)


def test_style_layer_weights_are_relative_and_validated() -> None:
    vgg, style, x = small_vgg(), torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 32)
    equal = PerceptualLoss(vgg, style, style_layer_weights=(2, 2, 2, 2))
    default = PerceptualLoss(vgg, style)
    assert math.isclose(
        equal(x, equal.content_targets(x))["style"].item(),
        default(x, default.content_targets(x))["style"].item(),
        rel_tol=1e-6,
    )
    with pytest.raises(ValueError, match="style_layer_weights"):
        PerceptualLoss(vgg, style, style_layer_weights=(1, 1))


def test_gallery_lists_missing_paintings(tmp_path: Path, photos: Path) -> None:
    from stylize_video.training.gallery import GALLERY, build_parser, gallery_style, run

    assert len({s.name for s in GALLERY}) == len(GALLERY) >= 8
    assert gallery_style("great-wave").artist == "Katsushika Hokusai"
    args = build_parser().parse_args(["--styles-dir", str(tmp_path), "--data", str(photos), "--only", "udnie"])
    with pytest.raises(InputError, match=r"picabia_udnie_1913\.jpg"):
        run(args)


def test_grouped_config_round_trips_the_flat_options(photos: Path, style_file: Path, tmp_path: Path) -> None:
    from stylize_video.training.config import FLAT_KEYS, DataConfig, LossConfig, RunConfig

    cfg = _config(photos, style_file, tmp_path / "g.safetensors", lr=5e-3, teacher="t", name="n")
    assert (cfg.data.photos, cfg.optim.lr, cfg.loss.teacher, cfg.credit.name) == (str(photos), 5e-3, "t", "n")
    flat = cfg.to_dict()
    # The state file and the checkpoint metadata keep the historical flat keys, in order.
    assert list(flat) == list(FLAT_KEYS) and len(flat) == 35 and flat["data"] == str(photos)
    assert TrainConfig.from_options(**flat) == cfg
    changed = cfg.replace(resume=True, image_size=40)
    assert changed.run.resume and changed.data.image_size == 40 and not cfg.run.resume
    assert changed.loss == cfg.loss  # untouched groups are shared as they were
    built = TrainConfig(
        DataConfig(str(photos)), LossConfig(str(style_file)), RunConfig(str(tmp_path / "h.safetensors"))
    )
    assert built.option("iterations") == 20000 and TrainConfig.defaults()["lr"] == 1e-3
    with pytest.raises(TypeError, match="'learning_rate'"):
        cfg.replace(learning_rate=1.0)
    with pytest.raises(TypeError, match="output"):
        TrainConfig.from_options(style_image="s.png", data="d")
    with pytest.raises(TypeError, match="from_options"):
        TrainConfig(str(photos), str(style_file), "o.safetensors")  # type: ignore[arg-type]


def test_trainer_phases_can_be_driven_one_by_one(photos: Path, style_file: Path, tmp_path: Path) -> None:
    from stylize_video.training.trainer import Trainer

    cfg = _config(photos, style_file, tmp_path / "ph.safetensors", iterations=2, sample_every=0)
    trainer = Trainer(cfg, vgg=small_vgg(), arch=TINY, progress=False)
    trainer.setup()
    batch = next(iter(trainer.loader))
    trainer.step(batch)
    trainer.checkpoint()
    saved = torch.load(cfg.state_path, map_location="cpu", weights_only=True)
    assert saved["iteration"] == 1 and len(saved["history"]) == 1 and saved["config"] == cfg.to_dict()
    result = trainer.finish()
    assert result.iterations == 1 and load_checkpoint(result.checkpoint).meta.training["iterations_done"] == 1


def test_gallery_trains_full_then_lite_from_it(
    tmp_path: Path, photos: Path, style_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stylize_video.training.train as train_module
    from stylize_video.training.config import TrainResult
    from stylize_video.training.gallery import build_parser, gallery_style, run

    wave = gallery_style("great-wave")
    (tmp_path / wave.file).write_bytes(style_file.read_bytes())
    seen: list[TrainConfig] = []

    def fake_train(config: TrainConfig, **kw: object) -> TrainResult:
        seen.append(config)
        return TrainResult(Path(config.run.output), config.optim.iterations)

    monkeypatch.setattr(train_module, "train", fake_train)
    argv = ["--styles-dir", str(tmp_path), "--data", str(photos), "--only", "great-wave", "--out", str(tmp_path)]
    run(build_parser().parse_args([*argv, "--time-limit", "2m", "--lite-iterations", "7"]))
    full, lite = seen
    assert (full.model.preset, full.loss.teacher, full.run.time_limit, full.credit.name) == (
        "full",
        None,
        120.0,
        wave.name,
    )
    assert (lite.model.preset, lite.optim.iterations, lite.credit.name) == ("lite", 7, f"{wave.name}-lite")
    assert lite.loss.teacher == full.run.output and lite.credit.artist == wave.artist and not full.run.resume


def _interrupt_after(n: int) -> Callable[[int, dict[str, float]], None]:
    def stop(it: int, losses: dict[str, float]) -> None:
        if it == n:
            raise KeyboardInterrupt

    return stop


def _damage(state: dict[str, Any], how: str) -> object:
    if how == "not-a-dict":
        return torch.zeros(3)
    if how == "no-model":
        return {k: v for k, v in state.items() if k != "model"}
    if how == "iteration-text":
        return {**state, "iteration": "7"}
    if how == "nan-weight":
        model = dict(state["model"])
        name = next(k for k, v in model.items() if v.is_floating_point())
        model[name] = torch.full_like(model[name], float("nan"))
        return {**state, "model": model}
    if how == "wrong-shape":
        model = dict(state["model"])
        name = next(k for k, v in model.items() if v.dim() == 4)
        model[name] = torch.zeros(1, 1, 1, 1)
        return {**state, "model": model}
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "not-a-dict", "no-model", "iteration-text", "nan-weight", "wrong-shape"])
def test_a_damaged_resume_state_is_a_one_line_input_error(
    photos: Path, style_file: Path, tmp_path: Path, how: str
) -> None:
    cfg = _config(photos, style_file, tmp_path / "c.safetensors", iterations=3, sample_every=0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, vgg=small_vgg(), arch=TINY, progress=False, on_step=_interrupt_after(1))
    path = cfg.state_path
    if how == "garbage":
        path.write_bytes(b"PK\x03\x04 not a zip at all" * 10)
    else:
        torch.save(_damage(torch.load(path, weights_only=True), how), path)
    with pytest.raises(InputError, match="--resume") as err:
        train(cfg.replace(resume=True), vgg=small_vgg(), arch=TINY, progress=False)
    assert "\n" not in str(err.value)


def test_every_resumable_state_is_checked_before_it_is_read(tmp_path: Path) -> None:
    # learn-style and distill-styles states read more parts than train's: a state that
    # lacks one is a one-line error, not a KeyError from deep inside the resume.
    from stylize_video.training.state import RESUMABLE_PARTS, load_resume_state

    base = {"config": {}, "model": {"w": torch.zeros(2)}, "optimizer": {}, "history": [], "iteration": 3}
    path = tmp_path / "s.pt"
    torch.save(base, path)
    assert load_resume_state(path, "training state")["iteration"] == 3
    with pytest.raises(InputError, match="'teacher_sha256' is missing"):
        load_resume_state(path, "distillation state", {**RESUMABLE_PARTS, "teacher_sha256": list})
    with pytest.raises(InputError, match="no learn-style state"):
        load_resume_state(tmp_path / "gone.pt", "learn-style state")
