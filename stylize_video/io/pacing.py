"""Real-time pacing for live outputs: show each frame when the source's clock says so.

A file is decoded faster than real time; a virtual camera or a stream server must
receive it at its own rate (what ``ffmpeg -re`` does). A live source is already
real-time: do not pace it (``run`` turns pacing off for live sources). Its
timestamps may be a schedule it fell behind and catches up with under load, and
holding those catch-up frames only adds delay (measured: +400 ms p50 on a loaded
2-core machine, benchmarks/latency.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Sleep until ``anchor + frame_time``, where the anchor is learnt from the first frames.

    The anchor is set by the first frame (after its model warm-up, since sinks see
    frames once stylized); with ``warmup`` > 0 it is the *smallest*
    ``now - frame_time`` seen over that much source time, for sources whose first
    frames arrive late. Early frames wait; frames later than ``max_lag`` move the
    anchor (no rushing to catch up, and no delay left behind by a stall). A ``cut``
    restarts it too.

    Args:
        warmup: seconds of source time used to learn the anchor. 0 (the default, for
            files) paces from the second frame: a warm-up would send its frames in a
            burst.
        max_lag: seconds behind schedule after which the schedule moves.
        max_wait: a frame further ahead than this is a timestamp jump: resync instead.
            Long: a still section of a variable-frame-rate video (a screen recording)
            holds one frame for seconds, and it must stay on screen that long.
    """

    def __init__(
        self,
        warmup: float = 0.0,
        max_lag: float = 0.25,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.warmup, self.max_lag, self.max_wait = warmup, max_lag, max_wait
        self._clock, self._sleep = clock, sleep
        self._anchor: float | None = None
        self._start = 0.0  # source time of the first frame after a (re)start
        self.resyncs = 0
        self.waited = 0.0

    def reset(self) -> None:
        self._anchor = None

    def wait(self, frame_time: float, cut: bool = False) -> None:
        """Block until the frame stamped ``frame_time`` (seconds, source clock) is due."""
        now = self._clock()
        offset = now - frame_time
        if self._anchor is None or cut:
            self._anchor, self._start = offset, frame_time
            return
        if frame_time - self._start < self.warmup:
            self._anchor = min(self._anchor, offset)
            return
        ahead = self._anchor - offset
        if ahead > self.max_wait or ahead < -self.max_lag:
            # Learn the anchor afresh: a stall must not leave a live source's frames waiting after it.
            self._anchor, self._start = offset, frame_time
            self.resyncs += 1
        elif ahead > 0:
            self.waited += ahead
            self._sleep(ahead)
