"""A sink that discards frames (benchmarks, dry runs): ``-o null``."""

from __future__ import annotations

from .base import Frame, Sink
from .specs import OutputSpec, SinkOptions


class NullSink(Sink):
    """Discards frames (benchmarks); counts them."""

    threaded = False

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


def open_null(spec: OutputSpec, options: SinkOptions) -> NullSink:
    """Registry factory: ``-o null``."""
    return NullSink()
