"""The data passed between pipeline stages and the interfaces of sources and sinks.

``Source -> Frame (uint8 HxWx3 BGR) -> upload -> Stylizer -> Smoother -> download
-> Sink``. Only ``runtime/pipeline.py`` knows every stage; sources and sinks never
call each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Frame:
    """One video frame moving through the pipeline.

    Attributes:
        image: uint8 HxWx3 BGR (OpenCV's layout).
        index: 0-based position in the source.
        pts: presentation timestamp in ``time_base`` units (files keep the
            source's own, so VFR stays VFR); None for live sources.
        time_base: unit of ``pts``.
        time: seconds since the start of the stream.
        captured: ``time.perf_counter()`` when the source produced the frame,
            for latency measurements.
        cut: continuity broke before this frame (seek, reconnect, size change):
            temporal smoothers must reset.
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    time: float = 0.0
    captured: float = 0.0
    cut: bool = False


class ForwardTimestamps:
    """Keeps a stream's pts moving forward when its timestamps jump back in time.

    Joined recordings (``cat a.ts b.ts``) and timestamp wraps restart the clock: from
    there on an offset is added so the frame lands one nominal frame after the last,
    instead of everything after it being squashed onto consecutive ticks. Jitter of
    up to a frame is left to the caller. Missing pts (raw ``.h264``) continue at the
    nominal rate.

    Args:
        frame_ticks: one nominal frame in pts units (>= 1).
    """

    def __init__(self, frame_ticks: int) -> None:
        self.frame_ticks = max(1, frame_ticks)
        self.offset = 0
        self.jumps = 0
        self.last: int | None = None

    def __call__(self, pts: int | None) -> int:
        if pts is None:
            pts = 0 if self.last is None else self.last + self.frame_ticks
        else:
            pts += self.offset
            if self.last is not None and self.last - pts > self.frame_ticks:
                self.offset += self.last + self.frame_ticks - pts
                self.jumps += 1
                pts = self.last + self.frame_ticks
        self.last = pts
        return pts


@runtime_checkable
class Source(Protocol):
    """Produces frames. ``live`` sources may drop stale frames; files never do."""

    live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Consumes frames. Opens lazily on the first frame; ``close`` finalises output."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...
