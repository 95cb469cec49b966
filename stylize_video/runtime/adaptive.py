"""Adaptive resolution: shrink the network's input when a live run can't keep up.

:class:`AdaptiveScale` is a small controller with no threads and no clock of its
own: the pipeline hands it each frame's processing time and sets
``Stylizer.scale`` (the ``--style-scale`` mechanism) to what it answers. The
network's cost is close to proportional to its pixel count, so processing time
at scale ``s`` is predicted as ``t * (s / current) ** 2``. That model overestimates
the cost of a larger step (fixed costs such as upload, download and smoothing do
not grow with the scale), so steps up are conservative, and it underestimates the
gain of a smaller one, which the next over-budget check corrects within a few frames.

Hysteresis, so the scale does not pump:

Processing time is smoothed as the median of the last ``window`` frames: one hiccup
(a page fault, another program's burst) moves it not at all, while a real change
of load moves it within half a window.

* **down fast**: when the smoothed time stays above ``down_at`` of the frame interval
  for ``down_after`` frames or ``down_within`` seconds, whichever comes first (a network
  that takes 1.7 s a frame must not be given five frames to prove it), jump straight to the largest step predicted to fit under
  ``up_at`` (at least one step; right after a step up, back to the step it left);
* **up slowly**: only when the time predicted for the next larger step stays under
  ``up_at`` of the interval for ``up_after`` frames; the gap between ``up_at`` and
  ``down_at`` (and one step's ~28% cost ratio) is the dead band;
* **back off**: a step up that has to be undone within ``2 * up_after`` frames blocks
  that step for ``up_after`` frames times 2, 4, 8... (up to ``max_backoff``) failed
  tries, so a load that sits on the boundary of two steps settles on the smaller one
  and probes the larger one ever more rarely instead of alternating; a step up that
  holds clears its count.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from ..errors import StylizeError

#: Each step runs the network on 0.85x the side of the previous one: ~0.72x the pixels,
#: a cost change big enough to measure through frame-to-frame noise.
STEP_RATIO = 0.85
DEFAULT_MIN_SCALE = 0.4

TargetFps = float | Literal["auto", "off"]


def parse_target_fps(text: str) -> TargetFps:
    """Parse ``--target-fps``: ``auto``, ``off`` or a positive frame rate.

    Raises:
        StylizeError: anything else (zero, negative, not a number), naming the value.
    """
    word = text.strip().lower()
    if word in ("auto", "off"):
        return "auto" if word == "auto" else "off"
    try:
        value = float(word)
    except ValueError:
        raise StylizeError(f"--target-fps must be a frame rate, auto or off, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise StylizeError(f"--target-fps must be a positive frame rate, got {text!r}")
    return value


def resolve_target_fps(target: TargetFps, *, live: bool, source_fps: float | Fraction | None) -> float | None:
    """The frame rate to hold, or None for no adaptation.

    ``auto`` holds a live source's own rate (cameras, network streams, a synthetic
    scene paced in real time) and leaves files and image sequences alone: they never
    drop frames, so there the only cost of a slow network is time, which a smaller
    frame should not be silently traded for. An explicit rate applies to any source.
    """
    if target == "off":
        return None
    if target == "auto":
        if not live:
            return None
        return float(source_fps) if source_fps and float(source_fps) > 0 else 30.0
    return float(target)


def scale_steps(max_scale: float = 1.0, min_scale: float = DEFAULT_MIN_SCALE, ratio: float = STEP_RATIO) -> list[float]:
    """The discrete scales, largest first: ``max_scale`` down by ``ratio`` to ``min_scale``.

    >>> scale_steps(1.0, 0.4)
    [1.0, 0.85, 0.72, 0.61, 0.52, 0.44, 0.4]
    """
    if not 0 < min_scale <= 2 or not 0 < max_scale <= 2:
        raise ValueError(f"scales must be within (0, 2], got min {min_scale}, max {max_scale}")
    steps = [max_scale]
    s = max_scale
    while True:
        s = round(s * ratio, 2)
        if s <= min_scale + 0.02:  # a last step under 3% smaller than the one before is noise
            break
        steps.append(s)
    if min_scale < max_scale:
        steps.append(min_scale)
    return steps


@dataclass
class ScaleChange:
    """One decision of the controller: at the ``frame``-th sample, ``old`` -> ``new``."""

    frame: int
    old: float
    new: float
    seconds: float  # the smoothed processing time that triggered it


@dataclass
class AdaptiveScale:
    """Choose the network's scale from measured processing times (see the module docstring).

    Args:
        target_fps: the frame rate to hold.
        max_scale: the largest scale (the user's ``--style-scale``); where it starts.
        min_scale: the smallest scale it may choose.
        down_at: fraction of the frame interval above which the smoothed time is "over budget".
        up_at: fraction of the interval the predicted time must stay under to step up,
            and what a step down aims for.
        down_after: consecutive over-budget frames before stepping down.
        down_within: or this many seconds of processing spent over budget, if that comes first.
        up_after: consecutive frames with headroom before stepping up.
        window: frames whose median is the smoothed processing time.
        settle: samples ignored after a scale change and at the start (the first frame at a
            new size pays for allocations and kernel selection); a sample over
            ``4 * down_at`` intervals counts anyway: half of it would still be overload.
        max_backoff: the most a step's ``up_after`` wait is multiplied by after failed tries.
    """

    target_fps: float
    max_scale: float = 1.0
    min_scale: float = DEFAULT_MIN_SCALE
    down_at: float = 0.95
    up_at: float = 0.75
    down_after: int = 3
    down_within: float = 0.25
    up_after: int = 30
    window: int = 9
    settle: int = 2
    max_backoff: int = 32
    steps: list[float] = field(init=False)
    changes: list[ScaleChange] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if not self.target_fps > 0:
            raise ValueError(f"target_fps must be positive, got {self.target_fps}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0 < self.up_at < self.down_at:
            raise ValueError(f"need 0 < up_at < down_at, got {self.up_at} and {self.down_at}")
        self.min_scale = min(self.min_scale, self.max_scale)
        self.steps = scale_steps(self.max_scale, self.min_scale)
        self.interval = 1.0 / self.target_fps
        self._index = 0
        self._times: deque[float] = deque(maxlen=self.window)
        self._skip = self.settle
        self._over = 0
        self._over_s = 0.0
        self._room = 0
        self._samples = 0
        # Per step index: how many times a step up to it failed in a row, and the
        # sample count before which it is not tried again.
        self._backoff: dict[int, int] = {}
        self._blocked_until: dict[int, int] = {}
        self._last_up: int | None = None  # sample count of the last step up, while on probation

    @property
    def scale(self) -> float:
        """The scale the network should run at now."""
        return self.steps[self._index]

    @property
    def smoothed(self) -> float | None:
        """The median processing time of recent frames at the current scale (None until measured)."""
        return statistics.median(self._times) if self._times else None

    def predict(self, scale: float) -> float | None:
        """Processing time predicted at ``scale`` from the current median (None until measured)."""
        level = self.smoothed
        if level is None:
            return None
        return level * (scale / self.scale) ** 2

    def update(self, seconds: float) -> float | None:
        """Record one frame's processing time; returns the new scale when it changes, else None."""
        self._samples += 1
        if self._last_up is not None and self._samples - self._last_up > 2 * self.up_after:
            self._backoff.pop(self._index, None)  # the step up held: forget its failures
            self._last_up = None
        budget = self.interval
        if self._skip > 0:
            self._skip -= 1
            if seconds <= 4 * self.down_at * budget:
                return None
        self._times.append(seconds)
        level = statistics.median(self._times)
        if level > self.down_at * budget:
            self._over += 1
            self._over_s += seconds
            self._room = 0
            over = self._over >= self.down_after or self._over_s >= self.down_within
            if over and self._index < len(self.steps) - 1:
                return self._step_down()
            return None
        self._over, self._over_s = 0, 0.0
        up = self._index - 1
        if up < 0 or self._samples < self._blocked_until.get(up, 0):
            return None
        predicted = self.predict(self.steps[up])
        if predicted is not None and predicted <= self.up_at * budget:
            self._room += 1
            if self._room >= self.up_after:
                self._last_up = self._samples
                return self._change(up)
        else:
            self._room = 0
        return None

    def _step_down(self) -> float:
        if self._last_up is not None:
            # The step up just taken did not hold: block it for twice as long as last time.
            failed = self._index
            tries = min(self.max_backoff, self._backoff.get(failed, 1) * 2)
            self._backoff[failed] = tries
            self._blocked_until[failed] = self._samples + self.up_after * tries
            self._last_up = None
            # Back to the step that held: times measured here overstate its cost (the
            # step up failed on something the size model does not know).
            return self._change(self._index + 1)
        target = self._index + 1
        while target < len(self.steps) - 1:
            fits = self.predict(self.steps[target])
            if fits is not None and fits <= self.up_at * self.interval:
                break
            target += 1
        return self._change(target)

    def _change(self, index: int) -> float:
        old = self.scale
        self._index = index
        self.changes.append(ScaleChange(self._samples, old, self.scale, self.smoothed or 0.0))
        # Times measured at the old size say little about the new one: measure afresh.
        self._times.clear()
        self._skip = self.settle
        self._over = self._room = 0
        self._over_s = 0.0
        return self.scale

    def describe(self) -> str:
        """One line: ``scale 0.72 (3 changes, min 0.61)``."""
        text = f"scale {self.scale:.2f}"
        if self.changes:
            low = min(c.new for c in self.changes)
            text += f" ({len(self.changes)} change{'s' if len(self.changes) != 1 else ''}, min {low:.2f})"
        return text


def trajectory(changes: Sequence[ScaleChange]) -> list[tuple[int, float]]:
    """``(frame, new scale)`` pairs, for reports."""
    return [(c.frame, c.new) for c in changes]
