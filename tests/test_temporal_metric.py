"""Warping error / fidelity metric and the ``evaluate`` command, on tiny generated clips."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError
from stylize_video.metrics.evaluation import (
    evaluate_smoothers,
    parse_size,
    parse_smoother,
    read_frames,
)
from stylize_video.metrics.report import markdown_report
from stylize_video.metrics.temporal import (
    InputMotion,
    TemporalScore,
    fidelity_mse,
    interpolate_at,
    pair_warping_error,
    psnr,
    warping_error,
)
from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime.stylizer import Stylizer

from .test_flow import _shift, _texture


def _pan(n: int = 6, h: int = 64, w: int = 80, step: int = 2) -> list[np.ndarray]:
    base = _texture(h, w, seed=4)
    return [_shift(base, step * i, 0) for i in range(n)]


def _flicker(frames: list[np.ndarray], sigma: float = 20.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


def test_static_clip_has_near_zero_warping_error() -> None:
    frames = [_texture(48, 64)] * 5
    assert warping_error(frames, frames) < 1e-8


def test_moving_but_stable_output_has_small_warping_error() -> None:
    frames = _pan()
    moving = warping_error(frames, frames)
    # Without motion compensation the same pair of frames differs a lot.
    naive = float(np.mean([np.square(a / 255.0 - b / 255.0).mean() for a, b in itertools.pairwise(frames)]))
    assert moving < 0.05 * naive


def test_metric_ranks_a_flickering_sequence_worse_than_a_stable_one() -> None:
    frames = _pan()
    stable = warping_error(frames, frames)
    flickering = warping_error(frames, _flicker(frames))
    assert flickering > 10 * stable
    # Flicker of sigma 20/255 per channel: consecutive frames differ by ~2 sigma^2.
    assert flickering == pytest.approx(2 * (20 / 255) ** 2, rel=0.35)


def test_metric_ignores_disoccluded_pixels() -> None:
    # New content appears in a region that was hidden: whatever the output shows
    # there is not flicker, so scribbling over it must not change the score much.
    frames = _pan(n=2, h=64, w=96, step=6)
    outs = [f.copy() for f in frames]
    outs[1][:, :6] = 255 - outs[1][:, :6]  # the strip that entered from the left
    assert warping_error(frames, outs) < 2 * warping_error(frames, frames) + 1e-4


def test_pair_error_is_none_when_nothing_is_valid() -> None:
    motion = InputMotion()
    a = _texture(48, 64, seed=1)
    assert motion.update(a) is None
    field = motion.update(_shift(a, 2, 0))
    assert field is not None
    field.valid[:] = 0.0
    t = torch.rand(1, 3, 48, 64)
    assert pair_warping_error(t, t, field) is None


def test_a_scene_cut_is_not_scored() -> None:
    # Two shots joined: the pair across the cut would swamp the mean of the others.
    shot_a, shot_b = _pan(n=4), [_shift(_texture(64, 80, seed=11), 2 * i, 0) for i in range(4)]
    frames = shot_a + shot_b
    outs = _flicker(frames, sigma=5.0)
    motion = InputMotion()
    fields = [motion.update(f) for f in frames]
    assert motion.cuts == 1 and fields[4] is None
    assert all(f is not None for f in fields[1:4] + fields[5:])
    joined = warping_error(frames, outs)
    apart = (warping_error(shot_a, outs[:4]) * 3 + warping_error(shot_b, outs[4:]) * 3) / 6
    assert joined == pytest.approx(apart, rel=0.05)


def test_temporal_score_tracks_fidelity_and_skips_unscored_pairs() -> None:
    score = TemporalScore()
    f = _texture(32, 32)
    score.update(f, None, reference=f)
    assert score.pairs == 0 and math.isnan(score.warping_error)
    score.update(f, None, reference=np.zeros_like(f))
    assert score.fidelity == pytest.approx(fidelity_mse(torch.from_numpy(f).float() / 255, torch.zeros(1)) / 2)


def test_psnr_and_interpolation() -> None:
    assert psnr(1e-3) == pytest.approx(30.0)
    assert math.isinf(psnr(0.0))
    curve = [(0.3, 1.0), (0.2, 2.0), (0.1, 3.0)]
    assert interpolate_at(curve, 0.15) == pytest.approx(2.5)
    assert interpolate_at(curve, 0.5) is None
    # A curve that turns back: the lower reading wins.
    assert interpolate_at([(0.3, 1.0), (0.1, 2.0), (0.2, 4.0)], 0.15) == pytest.approx(1.75)


# ---------------------------------------------------------------- evaluate


def test_parse_smoother_and_size() -> None:
    assert parse_smoother("none", 0.8) == ("none", 0.0)
    assert parse_smoother("flow", 0.8) == ("flow", 0.8)
    assert parse_smoother("ema:0.3", 0.8) == ("ema", 0.3)
    assert parse_smoother("ema") == ("ema", 0.5) and parse_smoother("flow") == ("flow", 0.8)  # as in run
    for bad in ("blur", "ema:x", "ema:1.0"):
        with pytest.raises(InputError):
            parse_smoother(bad, 0.8)
    assert parse_size("64x48") == (64, 48)
    assert parse_size(None) is None
    with pytest.raises(InputError):
        parse_size("64")


def test_size_arg_makes_a_bad_size_a_usage_error() -> None:
    import argparse

    from stylize_video.units import size_arg

    assert size_arg("640X360") == (640, 360)
    for bad in ("64", "8x8", "axb", "64x48x2"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            size_arg(bad)


def test_engine_names_stay_importable_from_the_command() -> None:
    # benchmarks/ imported the engine from the CLI module before it moved to metrics/.
    import stylize_video.commands.evaluate as cmd
    import stylize_video.metrics.evaluation as engine
    import stylize_video.metrics.report as report

    for name in ("Evaluation", "SmootherResult", "evaluate_smoothers", "parse_size", "parse_smoother", "read_frames"):
        assert getattr(cmd, name) is getattr(engine, name)
    for name in ("markdown_report", "markdown_table"):
        assert getattr(cmd, name) is getattr(report, name)


def test_evaluate_smoothers_scores_every_smoother_on_the_same_frames(tiny_net: TransformNet) -> None:
    stylizer = Stylizer(tiny_net, device="cpu")
    frames = _pan(n=5, h=48, w=64)
    ev = evaluate_smoothers(frames, stylizer, [("none", 0.0), ("ema", 0.7), ("flow", 0.7)], clip="pan")
    assert (ev.frames, ev.width, ev.height) == (5, 64, 48)
    by = {r.smoother: r for r in ev.results}
    assert set(by) == {"none", "ema:0.7", "flow:0.7"}
    assert by["none"].fidelity_mse == 0.0 and by["none"].vs_none_pct == 0.0
    assert by["ema:0.7"].fidelity_mse > 0.0
    assert all(r.pairs == 4 for r in ev.results)
    assert by["flow:0.7"].cuts == 0
    # On a pan, an EMA lags behind the motion (a smear the metric sees as instability);
    # the flow smoother follows it.
    assert by["ema:0.7"].warping_error > by["none"].warping_error
    assert by["flow:0.7"].warping_error < 0.5 * by["ema:0.7"].warping_error
    text = markdown_report([ev])
    assert "| flow:0.7 |" in text and "warping error" in text
    json.dumps(ev.as_dict())  # no NaN/inf sneaks into the JSON


def _write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_read_frames_resizes_and_stops(tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "c.mp4", _pan(n=6, h=48, w=64))
    frames = list(read_frames(clip, max_frames=4, size=(32, 24)))
    assert len(frames) == 4
    assert frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8


def test_evaluate_cli_writes_json_and_markdown(tmp_path: Path, tiny_checkpoint: Path) -> None:
    clip = _write_clip(tmp_path / "c.mp4", _pan(n=6, h=48, w=64))
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["evaluate", "-i", str(clip), "-s", str(tiny_checkpoint), "--device", "cpu", "--max-frames", "5"]
    argv += ["--smooth", "none", "ema:0.5", "flow", "--json", str(out_json), "--markdown", str(out_md)]
    assert main(argv) == 0
    data = json.loads(out_json.read_text())
    assert data["frames"] == 5
    assert [r["smoother"] for r in data["results"]] == ["none", "ema:0.5", "flow:0.8"]
    assert "| ema:0.5 |" in out_md.read_text()
    # Reports are not overwritten without --overwrite; bad inputs are one-line errors.
    assert main(argv) == 1
    assert main(["evaluate", "-i", str(tmp_path / "missing.mp4"), "-s", str(tiny_checkpoint)]) == 1
