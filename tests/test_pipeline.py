"""The threaded pipeline with in-memory sources and sinks: order, drops, controls, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
import torch

from stylize_video.errors import InputError, OutputError
from stylize_video.io.base import Frame
from stylize_video.models.transform_net import TransformNet
from stylize_video.runtime.pipeline import Pipeline, PipelineStats
from stylize_video.runtime.smoothing import EmaSmoother
from stylize_video.runtime.stylizer import Stylizer
from tests.conftest import TINY, make_image


class ListSource:
    """Frames from memory; optionally live (produced at ``interval``) or failing after ``fail_after``."""

    def __init__(
        self,
        n: int,
        live: bool = False,
        interval: float = 0.0,
        fail_after: int | None = None,
        cuts: tuple[int, ...] = (),
    ) -> None:
        self.n, self.live, self.interval, self.fail_after, self.cuts = n, live, interval, fail_after, cuts
        self.produced = 0
        self.closed = False

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            if self.fail_after is not None and i >= self.fail_after:
                raise InputError("camera 0 stopped delivering frames (unplugged?)")
            if self.interval:
                time.sleep(self.interval)
            self.produced += 1
            yield Frame(
                make_image(16, 24, seed=i),
                i,
                pts=i,
                time_base=Fraction(1, 25),
                time=i / 25,
                captured=time.perf_counter(),
                cut=i in self.cuts,
            )

    def close(self) -> None:
        self.closed = True


class ListSink:
    def __init__(self, threaded: bool = True, fail_at: int | None = None) -> None:
        self.threaded = threaded
        self.fail_at = fail_at
        self.frames: list[Frame] = []
        self.threads: set[str] = set()
        self.finished = self.closed = self.aborted = False

    def write(self, frame: Frame) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OutputError("disk full while writing 'x.mp4'")
        self.threads.add(threading.current_thread().name)
        self.frames.append(frame)

    def finish(self) -> None:
        self.finished = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # On a busy 2-core machine two intra-op threads run 10x slower than one.
    torch.set_num_threads(1)


@pytest.fixture
def stylizer(tiny_net: TransformNet) -> Stylizer:
    return Stylizer(tiny_net, device="cpu")


def test_file_source_every_frame_in_order_stylized(stylizer: Stylizer) -> None:
    source = ListSource(12)
    file_sink, inline = ListSink(), ListSink(threaded=False)
    stats = Pipeline(source, stylizer, [file_sink, inline], queue_size=2).run()
    assert stats.frames == 12 and stats.dropped == 0 and not stats.interrupted
    assert [f.index for f in file_sink.frames] == list(range(12))
    assert [f.index for f in inline.frames] == list(range(12))
    assert file_sink.threads == {"stylize-encode"} and inline.threads == {threading.current_thread().name}
    expected = stylizer(make_image(16, 24, seed=5))
    assert np.array_equal(file_sink.frames[5].image, expected)
    assert file_sink.frames[5].pts == 5  # timestamps travel with the frame
    assert file_sink.finished and file_sink.closed and not file_sink.aborted
    assert len(stats.latencies) == 12 and 0 < stats.latency_percentile(50) <= stats.latency_percentile(95)
    assert 0 < stats.busy < stats.wall
    assert "12 frames" in stats.summary() and "0 dropped" in stats.summary()


class SlowStylizer(Stylizer):
    def stylize(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.02)
        return super().stylize(x)


def test_live_source_drops_stale_frames_and_counts_them(tiny_net: TransformNet) -> None:
    slow = SlowStylizer(tiny_net, device="cpu")
    source = ListSource(40, live=True, interval=0.002)
    sink = ListSink()
    stats = Pipeline(source, slow, [sink], queue_size=8).run()  # live input waits in a queue of one anyway
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == source.produced == 40
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices) and indices[-1] == 39  # newest frames win


def test_a_dropped_live_frame_passes_its_cut_mark_on(stylizer: Stylizer) -> None:
    # After a reconnect frames come in a burst; the one marked as a cut is often the one dropped.
    class Burst(ListSource):
        def __iter__(self) -> Iterator[Frame]:
            for f in super().__iter__():
                yield f
                if f.index == 0:
                    time.sleep(0.1)  # frame 0 is taken; 1..5 then arrive at once while it is shown

    class Slow(ListSink):
        def write(self, frame: Frame) -> None:
            if frame.index == 0:
                time.sleep(0.4)
            super().write(frame)

    sink = Slow(threaded=False)
    Pipeline(Burst(6, live=True, cuts=(1,)), stylizer, [sink], queue_size=1).run()
    kept = [f.index for f in sink.frames]
    assert 1 not in kept  # dropped: the burst outran the model
    assert any(f.cut for f in sink.frames if f.index > 1)  # its cut mark went on with the next frame


def test_smoother_applies_and_resets_on_cuts(stylizer: Stylizer) -> None:
    class CountingEma(EmaSmoother):
        resets = 0

        def reset(self) -> None:
            CountingEma.resets += 1
            super().reset()

    sink = ListSink()
    Pipeline(ListSource(6, cuts=(3,)), stylizer, [sink], smoother=CountingEma(0.9)).run()
    assert CountingEma.resets == 1
    plain = stylizer(make_image(16, 24, seed=1))
    assert not np.array_equal(sink.frames[1].image, plain)  # blended with frame 0
    assert np.array_equal(sink.frames[3].image, stylizer(make_image(16, 24, seed=3)))  # fresh after the cut


def test_ctrl_c_finalizes_what_was_processed(stylizer: Stylizer) -> None:
    class InterruptingSmoother:
        calls = 0

        def __call__(self, stylized: torch.Tensor, source: torch.Tensor, source_u8: np.ndarray) -> torch.Tensor:
            InterruptingSmoother.calls += 1
            if InterruptingSmoother.calls == 5:
                raise KeyboardInterrupt
            return stylized

        def reset(self) -> None:
            pass

    sink = ListSink()
    stats = Pipeline(ListSource(50), stylizer, [sink], smoother=InterruptingSmoother()).run()
    assert stats.interrupted and stats.frames == 4
    assert len(sink.frames) == 4
    assert sink.closed and not sink.finished and not sink.aborted  # finalized, audio cut at the video's end


def test_source_failing_mid_run_finalizes_and_reports(stylizer: Stylizer) -> None:
    sink = ListSink()
    stats = Pipeline(ListSource(10, fail_after=6), stylizer, [sink]).run()
    assert stats.frames == 6 and isinstance(stats.error, InputError)
    assert sink.closed and not sink.aborted and not sink.finished


def test_source_failing_before_any_frame_raises_and_discards(stylizer: Stylizer) -> None:
    sink = ListSink()
    with pytest.raises(InputError, match="unplugged"):
        Pipeline(ListSource(10, fail_after=0), stylizer, [sink]).run()
    assert sink.aborted and not sink.closed


def test_input_without_a_single_frame_is_an_error_not_an_empty_success(stylizer: Stylizer) -> None:
    sink = ListSink()
    with pytest.raises(InputError, match="no decodable video frames"):
        Pipeline(ListSource(0), stylizer, [sink]).run()
    assert sink.aborted and not sink.closed  # no empty file under the final name


def test_sink_failure_raises_and_discards(stylizer: Stylizer) -> None:
    sink = ListSink(fail_at=3)
    source = ListSource(30)
    with pytest.raises(OutputError, match="disk full"):
        Pipeline(source, stylizer, [sink], queue_size=2).run()
    assert sink.aborted
    assert source.produced < 30  # the decoder stopped too


class KeySink(ListSink):
    """A window stand-in that requests actions at given frames."""

    def __init__(self, plan: dict[int, list[str]]) -> None:
        super().__init__(threaded=False)
        self.plan = plan
        self.pending: list[str] = []
        self.status = ""

    def write(self, frame: Frame) -> None:
        super().write(frame)
        self.pending += self.plan.get(frame.index, [])

    def poll_actions(self) -> list[str]:
        out, self.pending = self.pending, []
        return out

    def set_status(self, text: str) -> None:
        self.status = text


def test_window_actions_change_style_strength_and_quit(tiny_net: TransformNet) -> None:
    stylizer = Stylizer(tiny_net, device="cpu")
    torch.manual_seed(1)
    other = TransformNet(TINY).eval()
    names = [stylizer.style_name, stylizer.preload(other)[0]]
    plan = {
        1: ["strength_down", "strength_down"],
        2: ["next_style"],
        3: ["prev_style", "toggle_smoothing"],
        5: ["quit"],
    }
    sink = KeySink(plan)
    file_sink = ListSink()
    seen: list[tuple[str, float]] = []
    pipe = Pipeline(
        ListSource(20),
        stylizer,
        [sink, file_sink],
        styles=names,
        on_frame=lambda f: seen.append((stylizer.style_name, stylizer.strength)),
    )
    stats = pipe.run()
    assert stats.stopped and stats.frames == 6 and len(file_sink.frames) == 6
    assert file_sink.closed and not file_sink.finished  # a quit is not the end of the input
    assert seen[1] == (names[0], 1.0) and seen[2] == (names[0], 0.8)
    assert seen[3] == (names[1], 0.8) and seen[4] == (names[0], 0.8)
    assert "strength 0.8" in sink.status and "smoothing on" in sink.status


def test_max_frames_and_stats_summary(stylizer: Stylizer) -> None:
    sink = ListSink()
    stats = Pipeline(ListSource(30), stylizer, [sink], max_frames=7).run()
    assert stats.frames == 7 and sink.closed and not sink.finished  # stopped early: audio stops with the video
    s = PipelineStats(frames=10, dropped=2, corrupt=1, wall=2.0, latencies=[0.1] * 9 + [0.5], interrupted=True)
    text = s.summary()
    assert "10 frames in 2.0s (5.0 fps)" in text and "p50 100 ms" in text and "p95 320 ms" in text
    assert "2 dropped" in text and "1 corrupt" in text and "interrupted" in text
    with pytest.raises(ValueError):
        Pipeline(ListSource(1), stylizer, [sink], queue_size=0)


def test_smoother_can_start_off_and_be_toggled_on(stylizer: Stylizer) -> None:
    sink = KeySink({2: ["toggle_smoothing"]})
    Pipeline(ListSource(6), stylizer, [sink], smoother=EmaSmoother(0.9), smoothing=False).run()
    plain = [stylizer(make_image(16, 24, seed=i)) for i in range(6)]
    assert all(np.array_equal(sink.frames[i].image, plain[i]) for i in range(3))  # off until the key
    assert np.array_equal(sink.frames[3].image, plain[3])  # switching on resets: the first frame is fresh
    assert not np.array_equal(sink.frames[4].image, plain[4])  # then blended
