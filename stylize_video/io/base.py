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
