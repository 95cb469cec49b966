"""Pick a CPU backend's thread count from the frames it runs, not from a guess.

On an idle 2-core CPU OpenVINO's lite network runs 1.6x faster on both cores than on
one (75 against 46 fps, 640x480). With two other busy processes the order flips:
two threads that wait for each other at every layer fall to 23 fps while one thread
holds 44 (``benchmarks/contention.py``, 2026-12-03). A live user's machine moves
between those states (a call starts, a build runs), so no fixed count is right.

:class:`ThreadTuner` runs the current count and, every ``period`` frames, tries each
other candidate for a few frames; it moves to a candidate whose median time is
clearly lower (``margin``) than the current count's median over the frames just
before the probe. The first frame after every switch is not scored: a thread pool
that slept wakes up slowly. Probing costs a few slower frames per period when the
current count is already the best (about 3% of idle throughput on 2 cores).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence

#: Frames between probes, frames per probe, and how much faster a candidate must be.
#: A probe stays under half of adaptive resolution's 9-frame median window, so a
#: probe's slower frames alone never make a live run shrink its frames.
PERIOD, PROBE, MARGIN = 90, 4, 0.9
#: The current count's latest scored frames that a probe is compared with.
BASELINE = 8
#: Frames before the first probe: a run that starts on a busy machine moves within a second.
FIRST = 12


def thread_candidates(cores: int) -> list[int]:
    """The counts worth trying on ``cores`` cores: all of them, and half (one less
    thread to wait for when other processes hold some)."""
    return sorted({max(1, cores), max(1, cores // 2)}, reverse=True)


class ThreadTuner:
    """Which thread count to run the next frame with, learnt from frame times.

    Usage per frame: ``n = tuner.threads()``, run with ``n`` threads, then
    ``tuner.record(n, seconds)``. One tuner per input size (times differ by size).

    Args:
        candidates: thread counts to choose from; the first is where it starts.
        period: frames run on the current count between probes (>= probe).
        first: frames before the first probe (<= period).
        probe: frames each other candidate runs per probe (>= 2: the first is not scored).
        margin: a candidate replaces the current count when its median is below
            ``margin`` times the current one's.
    """

    def __init__(
        self,
        candidates: Sequence[int],
        *,
        period: int = PERIOD,
        probe: int = PROBE,
        margin: float = MARGIN,
        first: int = FIRST,
    ) -> None:
        if not candidates or any(c < 1 for c in candidates):
            raise ValueError(f"thread candidates must be >= 1, got {list(candidates)}")
        if probe < 2 or period < probe:
            raise ValueError(f"need probe >= 2 and period >= probe, got period {period}, probe {probe}")
        if not 0 < margin <= 1:
            raise ValueError(f"margin must be within (0, 1], got {margin}")
        self.candidates = list(dict.fromkeys(candidates))
        self.current = self.candidates[0]
        self.period, self.probe, self.margin = period, probe, margin
        self.switches = 0  # how often the current count changed (for reports and tests)
        self._recent: deque[float] = deque(maxlen=max(BASELINE, probe - 1))  # the current count's latest times
        self._since_probe = period - min(max(first, probe), period)
        self._queue: list[int] = []  # candidates still to probe in this round
        self._probing: int | None = None
        self._probe_times: list[float] = []
        self._results: dict[int, float] = {}
        self._last: int | None = None  # the count the previous frame ran with

    def threads(self) -> int:
        """The thread count for the next frame."""
        if self._probing is None and len(self.candidates) > 1 and self._since_probe >= self.period:
            self._queue = [c for c in self.candidates if c != self.current]
            self._results = {}
            self._start_next_probe()
        return self._probing if self._probing is not None else self.current

    def record(self, threads: int, seconds: float) -> None:
        """The time of the frame just run with ``threads`` threads."""
        warm = threads == self._last
        self._last = threads
        if self._probing is not None and threads == self._probing:
            if warm:
                self._probe_times.append(seconds)
            if len(self._probe_times) >= self.probe - 1:
                self._results[threads] = statistics.median(self._probe_times)
                if not self._start_next_probe():
                    self._decide()
            return
        if threads == self.current:
            self._since_probe += 1
            if warm:
                self._recent.append(seconds)

    def _start_next_probe(self) -> bool:
        self._probe_times = []
        self._probing = self._queue.pop(0) if self._queue else None
        return self._probing is not None

    def _decide(self) -> None:
        self._since_probe = 0
        if not self._recent or not self._results:
            return
        baseline = statistics.median(self._recent)
        best, best_time = min(self._results.items(), key=lambda kv: kv[1])
        if best_time < self.margin * baseline:
            self.current = best
            self.switches += 1
            self._recent.clear()
