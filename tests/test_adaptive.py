"""Adaptive resolution: the controller on simulated loads, the pipeline with a slow fake
network on a live source, the synthetic ``:live`` spec and ``--target-fps`` parsing."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from stylize_video.cli import main
from stylize_video.controls import LiveControls
from stylize_video.errors import StylizeError
from stylize_video.io.base import Frame
from stylize_video.io.registry import open_source
from stylize_video.runtime.adaptive import (
    AdaptiveScale,
    parse_target_fps,
    resolve_target_fps,
    scale_steps,
)
from stylize_video.runtime.pipeline import Pipeline

# ---------------------------------------------------------------- controller


def _drive(controller: AdaptiveScale, cost: Callable[[int, float], float], frames: int) -> list[float]:
    """Feed ``cost(frame, scale)`` seconds per frame; returns the scale used for each frame."""
    used = []
    for i in range(frames):
        used.append(controller.scale)
        controller.update(cost(i, controller.scale))
    return used


def test_steps_run_from_the_maximum_down_to_the_minimum() -> None:
    assert scale_steps(1.0, 0.4) == [1.0, 0.85, 0.72, 0.61, 0.52, 0.44, 0.4]
    assert scale_steps(0.5, 0.4) == [0.5, 0.4]
    assert scale_steps(0.6, 0.6) == [0.6]
    steps = scale_steps(1.5, 0.25)
    assert steps[0] == 1.5 and steps[-1] == 0.25 and steps == sorted(steps, reverse=True)


def test_overload_steps_down_within_a_few_frames_to_a_scale_that_fits() -> None:
    c = AdaptiveScale(30.0)
    # 90 ms at full size: three times the 33 ms budget; cost ~ pixels.
    used = _drive(c, lambda i, s: 0.09 * s * s, 40)
    first_change = c.changes[0].frame
    assert first_change <= c.settle + c.down_after  # down fast
    assert 0.09 * c.scale**2 <= 0.95 / 30  # where it settled fits the budget
    assert 0.09 * scale_steps()[scale_steps().index(c.scale) - 1] ** 2 > 0.75 / 30  # and is the largest that does
    assert used[-1] == c.scale and len(c.changes) <= 2


def test_a_very_slow_network_steps_down_at_once() -> None:
    c = AdaptiveScale(30.0)
    # 1.7 s a frame (the full network at 640x480 on a busy 2-core CPU): warm-up frames
    # and the k-frame rule would cost seconds; one frame is proof enough.
    assert c.update(1.7) == c.min_scale
    slow = AdaptiveScale(30.0, settle=0)
    for _ in range(2):
        assert slow.update(0.05) is None  # 1.5x over: waits for down_after frames
    assert slow.update(0.05) is not None


def test_headroom_steps_back_up_slowly() -> None:
    c = AdaptiveScale(30.0)
    # Overloaded for 60 frames (another program ran), then the network alone costs 12 ms.
    used = _drive(c, lambda i, s: (0.09 if i < 60 else 0.012) * s * s, 400)
    assert min(used) < 1.0
    assert used[-1] == 1.0  # grown back to the user's scale
    ups = [ch for ch in c.changes if ch.new > ch.old]
    assert ups and all(ch.new > ch.old for ch in c.changes[-len(ups) :])
    gaps = [b.frame - a.frame for a, b in zip(c.changes, c.changes[1:], strict=False) if b.new > b.old]
    assert min(gaps) >= c.up_after  # one step per up_after frames at most


def test_noisy_load_at_a_step_boundary_does_not_pump() -> None:
    rng = random.Random(1)
    c = AdaptiveScale(30.0)
    # At 0.72 the network takes ~31 ms (just under the 33 ms interval), at 0.85 ~43 ms;
    # +-25% noise per frame and 5% of frames hiccup at 3x.
    base = 0.031 / 0.72**2

    def cost(i: int, s: float) -> float:
        t = base * s * s * rng.uniform(0.75, 1.25)
        return t * 3 if rng.random() < 0.05 else t

    used = _drive(c, cost, 3000)  # 100 s at 30 fps
    assert len(c.changes) <= 8, [(ch.frame, ch.new) for ch in c.changes]
    # It settles: the last 1000 frames run at one scale, one that fits on average.
    assert len(set(used[-1000:])) == 1
    assert used[-1] <= 0.72


def test_boundary_load_that_fails_every_step_up_backs_off() -> None:
    c = AdaptiveScale(30.0, up_after=10)
    # A cost cliff (the frame stops fitting a cache): the proportional model promises
    # 0.85 fits, but it takes 50 ms there.
    used = _drive(c, lambda i, s: 0.02 * s * s if s < 0.8 else 0.05, 2000)
    tries = [ch.frame for ch in c.changes if ch.new == 0.85]
    waits = np.diff(tries)
    # Later tries wait longer (2, 4, 8... times up_after, up to max_backoff).
    assert len(tries) <= 10 and all(np.diff(waits) >= 0) and waits[-1] > 8 * waits[0]
    assert used.count(0.85) <= 5 * len(tries)  # each failed try costs settle + down_after frames
    assert all(ch.new in (0.72, 0.85) for ch in c.changes[2:])  # a failed try goes back one step


def test_respects_minimum_and_maximum() -> None:
    c = AdaptiveScale(30.0, max_scale=0.5, min_scale=0.3)
    used = _drive(c, lambda i, s: 1.0 * s * s, 50)  # hopeless: even the minimum is too slow
    assert max(used) <= 0.5 and c.scale == 0.3
    light = AdaptiveScale(30.0, max_scale=0.5)
    assert max(_drive(light, lambda i, s: 0.001, 500)) == 0.5 and not light.changes
    assert AdaptiveScale(30.0, max_scale=0.3, min_scale=0.4).steps == [0.3]  # the user's scale wins


def test_first_samples_are_ignored() -> None:
    c = AdaptiveScale(30.0, settle=2, down_after=1)
    # Warm-up frames are slow by nature (up to 4x over budget they are not evidence).
    assert c.update(0.1) is None and c.update(0.1) is None
    assert c.update(0.001) is None and c.scale == 1.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="target_fps"):
        AdaptiveScale(0.0)
    with pytest.raises(ValueError, match="up_at"):
        AdaptiveScale(30.0, up_at=0.95, down_at=0.9)


# -------------------------------------------------------------- target fps


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("OFF", "off"), ("25", 25.0), (" 29.97 ", 29.97)])
def test_target_fps_values(text: str, value: object) -> None:
    assert parse_target_fps(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "fast", "nan", "inf", ""])
def test_target_fps_errors_name_the_value(text: str) -> None:
    with pytest.raises(StylizeError, match="--target-fps") as err:
        parse_target_fps(text)
    assert repr(text) in str(err.value)


def test_auto_means_the_source_rate_for_live_sources_only() -> None:
    assert resolve_target_fps("auto", live=True, source_fps=Fraction(30000, 1001)) == pytest.approx(29.97, abs=0.01)
    assert resolve_target_fps("auto", live=True, source_fps=None) == 30.0
    assert resolve_target_fps("auto", live=False, source_fps=25) is None
    assert resolve_target_fps("off", live=True, source_fps=30) is None
    assert resolve_target_fps(12.0, live=False, source_fps=25) == 12.0


def test_synthetic_live_spec_paces_and_marks_the_source_live() -> None:
    live = open_source("synthetic:32x24@50:0.1s:live")
    assert live.live and live.frame_count == 5
    t0 = time.perf_counter()
    frames = list(live)
    assert len(frames) == 5 and time.perf_counter() - t0 >= 0.07  # paced: 4 intervals of 20 ms
    assert not open_source("synthetic:32x24@50:0.1s").live


# ------------------------------------------------------------------ pipeline


class _Transfer:
    def upload(self, image: np.ndarray) -> np.ndarray:
        return image

    def download(self, image: np.ndarray) -> np.ndarray:
        return image


class SlowStylizer:
    """A network whose cost is ``full_cost * scale**2`` seconds; output keeps the frame size."""

    def __init__(self, full_cost: float) -> None:
        self.full_cost = full_cost
        self.scale = 1.0
        self.strength = 1.0
        self.style_name = "slow"
        self.spec = (("slow", 1.0),)
        self.styles = ["slow"]
        self.clock = None  # no morphs: style changes cut
        self.morph_seconds = 0.0
        self.transfer = _Transfer()
        self.scales: list[float] = []

    def stylize(self, x: np.ndarray) -> np.ndarray:
        self.scales.append(self.scale)
        time.sleep(self.full_cost * self.scale**2)
        return 255 - x

    def set_style(self, name: str) -> None:
        self.style_name = name


class LiveSource:
    """A camera stand-in: ``n`` frames at ``fps``, paced to the clock, never waiting for the consumer."""

    live = True

    def __init__(self, n: int, fps: float) -> None:
        self.n, self.fps = n, fps

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.perf_counter()
        for i in range(self.n):
            delay = t0 + i / self.fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            image = np.full((12, 16, 3), i % 256, np.uint8)
            yield Frame(image, i, pts=i, time_base=Fraction(1) / 25, time=i / self.fps, captured=time.perf_counter())

    def close(self) -> None:
        pass


class ListSink:
    threaded = False

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def _run_live(adaptive: AdaptiveScale | None, controls: Any = None) -> tuple[Any, SlowStylizer, ListSink]:
    stylizer = SlowStylizer(full_cost=0.1)  # 100 ms per frame at full size, 25 fps wanted
    sink = ListSink()
    pipe = Pipeline(LiveSource(75, 25.0), stylizer, [sink], adaptive=adaptive, controls=controls)  # type: ignore[arg-type]
    return pipe.run(), stylizer, sink


def test_pipeline_drops_the_scale_and_keeps_latency_bounded() -> None:
    controls = LiveControls()
    stats, stylizer, sink = _run_live(AdaptiveScale(25.0), controls)
    assert stats.scale is not None and stats.scale < 0.6  # 100 ms * 0.52^2 = 27 ms fits 40 ms
    # The first decision steps down at once; a loaded host may make it overshoot, and then
    # one step back up is the controller's recovery, not pumping.
    assert stats.scale_changes and stats.scale_changes[0][1] < 0.6 and len(stats.scale_changes) <= 2
    assert stats.scale_changes[-1][1] == stats.scale
    assert stylizer.scales[0] == 1.0 and stylizer.scales[-1] == stats.scale
    # Every frame keeps the source's size whatever the scale (smoothers see one size).
    assert {f.image.shape for f in sink.frames} == {(12, 16, 3)}
    # Most frames got through once the scale dropped; latency is a frame wait plus one processing time.
    assert stats.frames >= 45, stats.summary()
    interval = 1 / 25
    assert stats.latency_percentile(95) <= 3 * interval + 0.1 + 0.1, stats.summary()
    assert "scale" in stats.summary() and "change" in stats.summary()
    assert controls.state()["scale"] == stats.scale  # what the preview page shows


def test_without_adaptation_the_live_pipeline_drops_instead() -> None:
    stats, stylizer, _ = _run_live(None)
    assert set(stylizer.scales) == {1.0} and stats.scale is None
    assert stats.frames <= 40 and stats.dropped >= 30  # 100 ms per frame: at most 10 fps of 25
    assert "scale" not in stats.summary()


def test_status_line_shows_the_scale() -> None:
    stylizer = SlowStylizer(0.0)
    pipe = Pipeline(LiveSource(1, 25.0), stylizer, [ListSink()], adaptive=AdaptiveScale(25.0, max_scale=0.8))  # type: ignore[arg-type]
    assert stylizer.scale == 0.8  # starts at the user's --style-scale
    assert "scale 0.80" in pipe._status()


# ----------------------------------------------------------------------- CLI


@pytest.mark.parametrize("value", ["0", "-2", "fast"])
def test_cli_refuses_bad_target_fps_in_one_line(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-i", "synthetic:32x24@10:0.2s", "-o", "null", "--target-fps", value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--target-fps" in err[0] and value in err[0]


def test_cli_refuses_bad_min_scale(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-i", "synthetic:32x24@10:0.2s", "-o", "null", "--min-scale", "0"]) == 1
    assert "--min-scale" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "extra", "adaptive"),
    [
        ("synthetic:32x24@20:0.3s:live", [], True),  # auto: live source
        ("synthetic:32x24@20:0.3s", [], False),  # auto: not live
        ("synthetic:32x24@20:0.3s:live", ["--target-fps", "off"], False),
        ("synthetic:32x24@20:0.3s", ["--target-fps", "10"], True),
    ],
)
def test_cli_target_fps_turns_adaptation_on_and_off(
    spec: str, extra: list[str], adaptive: bool, tiny_checkpoint: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "-i", spec, "-o", "null", "-s", str(tiny_checkpoint), "--no-progress", "--threads", "1", *extra]
    assert main(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert ("scale" in summary) == adaptive, summary
