"""The training commands turn every option into the config field it names.

``train``, ``learn-style`` and ``distill-styles`` build their configs with the shared
helpers of ``commands/common.py``; each test gives every option a non-default value
and compares the config the command built with one written out by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stylize_video.cli import main
from stylize_video.training.config import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    StyleCredit,
    TrainConfig,
    TrainResult,
)
from stylize_video.training.learn_style import LearnStyleConfig, LearnStyleResult
from stylize_video.training.multistyle import DistillConfig, DistillResult, MultiStyleDistiller

RUN = ["--checkpoint-every", "7", "--resume", "--overwrite", "--time-limit", "90s", "--device", "cpu"]
RUN += ["--threads", "1", "--iterations", "9", "--lr", "0.5", "--amp", "off", "--seed", "5"]
LOSS = ["--vgg-weights", "vgg.safetensors", "--content-weight", "2", "--style-weight", "3", "--tv-weight", "4"]
LOSS += ["--temporal-weight", "5"]
CREDIT = ["--title", "T", "--artist", "A", "--year", "1900", "--credit", "C"]


def _run_fields(output: str) -> dict[str, Any]:
    return {
        "output": output,
        "checkpoint_every": 7,
        "resume": True,
        "overwrite": True,
        "time_limit": 90.0,
        "device": "cpu",
        "threads": 1,
    }


def _loss_fields(style_image: str) -> dict[str, Any]:
    weights = {"content_weight": 2.0, "style_weight": 3.0, "tv_weight": 4.0, "temporal_weight": 5.0}
    return {"style_image": style_image, "vgg_weights": "vgg.safetensors", **weights}


def test_train_options_reach_their_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[TrainConfig] = []

    def fake_train(config: TrainConfig, **kw: object) -> TrainResult:
        seen.append(config)
        return TrainResult(Path(config.run.output), 0)

    monkeypatch.setattr("stylize_video.training.train.train", fake_train)
    out = str(tmp_path / "o.safetensors")
    argv = ["train", "--style-image", "s.jpg", "--data", "photos", "-o", out, *RUN, *LOSS, *CREDIT]
    argv += ["--image-size", "64", "--batch-size", "3", "--workers", "2", "--style-size", "0", "--name", "N"]
    argv += ["--style-layer-weights", "1", "2", "3", "4", "--teacher", "t", "--distill-weight", "6"]
    argv += ["--sample-every", "8", "--preset", "lite", "--init", "i"]
    assert main(argv) == 0
    assert seen == [
        TrainConfig(
            data=DataConfig(photos="photos", image_size=64, batch_size=3, seed=5, workers=2),
            loss=LossConfig(
                **_loss_fields("s.jpg"),
                style_size=None,
                style_layer_weights=(1.0, 2.0, 3.0, 4.0),
                teacher="t",
                distill_weight=6.0,
            ),
            run=RunConfig(**_run_fields(out), sample_every=8),
            model=ModelConfig(preset="lite", init="i"),
            optim=OptimConfig(iterations=9, lr=0.5, amp="off"),
            credit=StyleCredit(name="N", title="T", artist="A", year="1900", credit="C"),
        )
    ]


def test_learn_style_options_reach_their_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[LearnStyleConfig] = []

    def fake_learn(config: LearnStyleConfig, **kw: object) -> LearnStyleResult:
        seen.append(config)
        return LearnStyleResult(Path(config.run.output), "vector", "base", "a", 0, 0, 0.0)

    monkeypatch.setattr("stylize_video.training.learn_style.learn_style", fake_learn)
    out = str(tmp_path / "o.safetensors")
    argv = ["learn-style", "p.jpg", "-o", out, "--data", "photos", *RUN, *LOSS, *CREDIT]
    argv += ["--image-size", "64", "--batch-size", "3", "--val-images", "11", "--style-size", "96"]
    argv += ["--base", "b", "--full-finetune", "12", "--finetune-lr", "0.25"]
    assert main(argv) == 0
    assert seen == [
        LearnStyleConfig(
            data=DataConfig(photos="photos", image_size=64, batch_size=3, seed=5, val_images=11),
            loss=LossConfig(**_loss_fields("p.jpg"), style_size=96),
            run=RunConfig(**_run_fields(out), sample_every=0),
            optim=OptimConfig(iterations=9, lr=0.5, amp="off"),
            base="b",
            full_finetune=12,
            finetune_lr=0.25,
            credit=StyleCredit(title="T", artist="A", year="1900", credit="C"),
        )
    ]


def test_distill_styles_options_reach_their_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[DistillConfig] = []

    def fake_run(self: MultiStyleDistiller) -> DistillResult:
        seen.append(self.config)
        return DistillResult(Path(self.config.output), 0, [], {}, 0.0)

    monkeypatch.setattr(MultiStyleDistiller, "run", fake_run)
    out = str(tmp_path / "o.safetensors")
    argv = ["distill-styles", "a", "b", "-o", out, "--data", "photos", *RUN, "--temporal-weight", "5"]
    argv += ["--image-size", "64", "--batch-size", "3", "--blur-weight", "2", "--distill-weight", "6"]
    argv += ["--perceptual-weight", "0.5", "--style-images", "paintings", "--vgg-weights", "vgg.safetensors"]
    argv += ["--init", "i", "--name", "N", "--no-progress"]
    monkeypatch.setattr("stylize_video.training.multistyle.compare_with_teachers", lambda *a, **k: [])
    monkeypatch.setattr("stylize_video.training.multistyle.record_comparison", lambda *a, **k: None)
    assert main(argv) == 0
    assert seen == [
        DistillConfig(
            teachers=("a", "b"),
            photos="photos",
            image_size=64,
            batch_size=3,
            seed=5,
            **_run_fields(out),
            iterations=9,
            lr=0.5,
            amp="off",
            blur_weight=2.0,
            temporal_weight=5.0,
            distill_weight=6.0,
            perceptual_weight=0.5,
            style_images="paintings",
            vgg_weights="vgg.safetensors",
            init="i",
            name="N",
        )
    ]


def test_every_training_command_takes_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    # run, batch and distill-styles had it; a log or a batch job wants no bar from any of them.
    for command in ("train", "learn-style", "distill-styles"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert "--no-progress" in capsys.readouterr().out, command
