"""What a pipeline run did: :class:`PipelineStats` and its one-line summary.

Apart from :mod:`stylize_video.runtime.pipeline` because it is plain data that callers
(``stylize_file``, batch workers, benchmarks) read after the threads are gone; the
pipeline re-exports it, so ``from stylize_video.runtime.pipeline import PipelineStats``
keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import StylizeError


@dataclass
class PipelineStats:
    """What happened in a run. ``latencies`` are capture -> written, in seconds;
    ``busy`` is the main thread's time in upload + model + download (``busy / wall``
    near 1 means decoding and encoding are fully hidden behind the model).
    ``scale`` is the network's final scale when adaptive resolution ran (else None);
    ``scale_changes`` are its ``(frame, new scale)`` decisions.

    ``truncated``: the input ended clearly before its header said (a file cut short);
    what decoded was converted (``batch`` records such a file as truncated, not done).
    ``skipped``: frames every output already held (``--resume``), not stylized again."""

    frames: int = 0
    dropped: int = 0
    corrupt: int = 0
    truncated: bool = False
    wall: float = 0.0
    busy: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    interrupted: bool = False
    stopped: bool = False
    error: StylizeError | None = None
    scale: float | None = None
    scale_changes: list[tuple[int, float]] = field(default_factory=list)
    skipped: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.wall if self.wall > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0..100) in seconds; 0 without frames."""
        return float(np.percentile(self.latencies, q)) if self.latencies else 0.0

    def summary(self) -> str:
        """One line for the end of a run."""
        text = (
            f"{self.frames} frames in {self.wall:.1f}s ({self.fps:.1f} fps), "
            f"latency p50 {self.latency_percentile(50) * 1000:.0f} ms / p95 {self.latency_percentile(95) * 1000:.0f} ms, "
            f"{self.dropped} dropped"
        )
        if self.scale is not None:
            n = len(self.scale_changes)
            text += f", scale {self.scale:.2f}"
            if n:
                low = min(s for _, s in self.scale_changes)
                text += f" ({n} change{'s' if n != 1 else ''}, min {low:.2f})"
        if self.skipped:
            text += f", {self.skipped} already written"
        if self.corrupt:
            text += f", {self.corrupt} corrupt packets skipped"
        if self.truncated:
            text += ", input truncated"
        if self.interrupted:
            text += " (interrupted)"
        return text
