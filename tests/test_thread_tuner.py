"""The thread tuner on simulated frame times, and the OpenVINO backend using it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime.backends import BackendOptions
from stylize_video.runtime.backends.thread_tuner import ThreadTuner, thread_candidates

#: threads -> seconds per frame, like the 2-core CPU idle and with two busy processes.
IDLE = {2: 0.013, 1: 0.022}
BUSY = {2: 0.044, 1: 0.023}


def _run(tuner: ThreadTuner, frames: int, times: Callable[[int], dict[int, float]], start: int = 0) -> list[int]:
    """Run ``frames`` frames; ``times(i)`` gives frame i's cost per thread count."""
    used = []
    for i in range(start, start + frames):
        n = tuner.threads()
        cost = times(i)[n]
        tuner.record(n, cost)
        used.append(n)
    return used


def test_candidates_are_all_cores_and_half() -> None:
    assert thread_candidates(2) == [2, 1]
    assert thread_candidates(8) == [8, 4]
    assert thread_candidates(1) == [1]


def test_idle_machine_stays_on_all_cores_and_probes_rarely() -> None:
    tuner = ThreadTuner([2, 1], period=30, probe=4)
    used = _run(tuner, 340, lambda i: IDLE)
    assert used[:12] == [2] * 12 and used[12] == 1  # the first probe comes early
    assert used[16:46] == [2] * 30  # then one every 30 frames
    assert tuner.current == 2 and tuner.switches == 0
    assert 0 < used.count(1) <= 340 * 4 / 34 + 4  # probe frames only


def test_load_moves_it_to_fewer_threads_and_back() -> None:
    tuner = ThreadTuner([2, 1], period=30, probe=4)
    _run(tuner, 100, lambda i: IDLE)
    used = _run(tuner, 100, lambda i: BUSY, start=100)
    assert tuner.current == 1, "two busy processes: one thread is faster"
    assert used[-30:].count(1) >= 26  # settled: only probes run two threads
    _run(tuner, 100, lambda i: IDLE, start=200)
    assert tuner.current == 2 and tuner.switches == 2


def test_the_first_frame_after_a_switch_is_not_scored() -> None:
    """A thread pool waking up makes one slow frame; it must not decide anything."""
    for load, best in ((BUSY, 1), (IDLE, 2)):
        tuner = ThreadTuner([2, 1], period=20, probe=2)  # one scored frame per probe
        last = 0
        for _ in range(200):
            n = tuner.threads()
            cost = load[n] * (50 if n != last else 1)  # every switch: one very slow frame
            last = n
            tuner.record(n, cost)
        assert tuner.current == best


def test_a_small_difference_does_not_switch() -> None:
    tuner = ThreadTuner([2, 1], period=20, probe=4, margin=0.9)
    _run(tuner, 300, lambda i: {2: 0.020, 1: 0.019})
    assert tuner.current == 2 and tuner.switches == 0


def test_one_candidate_never_probes() -> None:
    tuner = ThreadTuner([3], period=5, probe=2)
    assert set(_run(tuner, 50, lambda i: {3: 0.01})) == {3}


@pytest.mark.parametrize(
    "kwargs", [{"candidates": []}, {"candidates": [0]}, {"probe": 1}, {"period": 3, "probe": 4}, {"margin": 0}]
)
def test_bad_settings(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"candidates": [2, 1], **kwargs}
    with pytest.raises(ValueError):
        ThreadTuner(**args)  # type: ignore[arg-type]


def test_openvino_backend_tunes_threads_unless_given(
    tiny_net: TransformNet, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    pytest.importorskip("openvino")
    from stylize_video.runtime.backends import openvino as ov_backend

    monkeypatch.setenv("STYLIZE_VIDEO_CACHE", str(tmp_path))
    monkeypatch.setattr(ov_backend, "default_threads", lambda: 2)
    x = torch.rand(1, 3, 16, 24)
    auto = ov_backend.OpenVINOBackend(tiny_net, BackendOptions(device=torch.device("cpu"), precision="fp32"))
    seen, outs = set(), []
    for _ in range(40):  # past the first probe (after 12 frames)
        outs.append(auto.run(x))
        seen.add(auto.threads)
    assert seen == {1, 2}
    assert "threads auto (2/1)" in auto.describe()
    for out in outs[1:]:
        assert np.allclose(out.numpy(), outs[0].numpy(), atol=1e-5)  # same numbers on any count
    fixed = ov_backend.OpenVINOBackend(
        tiny_net, BackendOptions(device=torch.device("cpu"), precision="fp32", threads=1)
    )
    for _ in range(120):
        fixed.run(x)
        assert fixed.threads == 1


def test_probes_alone_never_make_adaptive_resolution_shrink() -> None:
    """A network at 85% of the frame budget on two threads, 150% on one: the probes'
    slow frames must not push adaptive resolution's median over its limit."""
    from stylize_video.runtime.adaptive import AdaptiveScale

    interval = 1 / 30
    tuner = ThreadTuner([2, 1])
    adaptive = AdaptiveScale(target_fps=30)
    for _ in range(600):
        n = tuner.threads()
        seconds = {2: 0.85, 1: 1.5}[n] * interval
        tuner.record(n, seconds)
        adaptive.update(seconds)
    assert tuner.current == 2
    assert adaptive.scale == 1.0
