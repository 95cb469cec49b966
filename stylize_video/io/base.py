"""The data passed between pipeline stages and the contracts of sources and sinks.

``Source -> Frame (uint8 HxWx3 BGR) -> upload -> Stylizer -> Smoother -> download
-> Sink``. Only ``runtime/pipeline.py`` knows every stage; sources and sinks never
call each other.

:class:`Source` and :class:`Sink` are abstract base classes rather than Protocols on
purpose: they declare *every* member the pipeline and the ``run`` command use, and
give the optional ones defaults, so a new stage subclasses one of them, overrides
what it needs, and the pipeline calls hooks directly instead of probing with
``getattr``. (A Protocol cannot give a class that does not inherit from it its
default methods.) Objects written against the older duck-typed contract (an
iterable with ``close``, an object with ``write``/``close``) still work:
:func:`as_source` / :func:`as_sink` wrap them once, at the pipeline's door, in an
adapter that supplies the defaults.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
        alpha: uint8 HxW opacity of ``image`` (straight, not premultiplied), or None for
            an opaque frame; set by ``--region person --alpha``, stored by the sinks
            that can (PNG/TIFF images, VP9 WebM, ProRes 4444 MOV) and ignored by others.
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    time: float = 0.0
    captured: float = 0.0
    cut: bool = False
    alpha: np.ndarray | None = None


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


class BestEffortTimestamps:
    """Decoded frames' timestamps, repaired the way FFmpeg picks its best-effort timestamp.

    Frames come out of a decoder in display order, but badly muxed files (B-frames
    written with pts in decode order, garbled pts, pts missing) give them pts that go
    back and forth. Like FFmpeg's ``guess_correct_pts``, this counts how often the pts
    and how often the dts fail to increase and follows whichever fails less (pts on a
    tie); switching re-anchors the clock on the frame before, so the timeline stays
    continuous. What is still out of order after that is told apart by how it goes on:

    * a short run of frames behind the last one that then rises past it again
      (reordered timestamps within the reorder window): each such frame is put one
      nominal frame after the previous; counted in ``repaired``;
    * a step back of more than ``window`` frames, or a run behind lasting more than
      ``window`` frames (joined recordings, timestamp wraps): a real jump, as in
      :class:`ForwardTimestamps` an offset makes it continue one frame later; counted
      in ``jumps``;
    * given the next frame's timestamps (``ahead``), a lone frame more than ``window``
      frames away from its neighbours on both sides (one garbage value) is put one
      frame after the previous instead of opening a gap or starting a jump; counted
      in ``repaired``. A real gap or jump goes on from where it landed.

    Missing timestamps (raw ``.h264``) continue at the nominal rate. Output is strictly
    increasing, so the total duration stays within a frame or two of the input's.

    Args:
        frame_ticks: one nominal frame in timestamp units (>= 1).
        window: the reorder window in frames (H.264 reorders at most 16).
    """

    def __init__(self, frame_ticks: int, window: int = 16) -> None:
        self.frame_ticks = max(1, frame_ticks)
        self.window = max(1, window)
        self.offset = 0
        self.last: int | None = None
        self.repaired = 0
        self.jumps = 0
        self.faulty_pts = 0
        self.faulty_dts = 0
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._using: str | None = None  # "pts" or "dts": the series followed
        self._has_dts = False  # some frame had a dts: the container gives them
        self._behind = 0  # frames in the current run put after the last because they were behind it

    @property
    def follows_dts(self) -> bool:
        """The pts proved less reliable than the dts (FFmpeg's rule), and there are dts."""
        return self._has_dts and self.faulty_pts > self.faulty_dts

    def _count_faults(self, pts: int | None, dts: int | None) -> None:
        # FFmpeg's guess_correct_pts: a value that does not increase is a fault of its series.
        if dts is not None:
            self.faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        elif pts is not None:
            self._last_dts = pts
        if pts is not None:
            self.faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        elif dts is not None:
            self._last_pts = dts

    def __call__(
        self, pts: int | None, dts: int | None = None, ahead: tuple[int | None, int | None] | None = None
    ) -> int:
        """The timestamp to use for a frame with decoder ``pts`` and packet ``dts`` (None: missing).

        ``ahead`` is the next frame's ``(pts, dts)`` when known (a file), None otherwise.
        """
        self._count_faults(pts, dts)
        self._has_dts |= dts is not None
        step = self.frame_ticks
        # Knowing the next frame, its fault counts now: the series is left one frame
        # earlier, before a bad value opens a gap that re-anchoring would keep.
        pts_next_faulty = ahead is not None and ahead[0] is not None and pts is not None and ahead[0] <= pts
        dts_next_faulty = ahead is not None and ahead[1] is not None and dts is not None and ahead[1] <= dts
        if self._has_dts and self.faulty_pts + pts_next_faulty > self.faulty_dts + dts_next_faulty:
            # Missing dts at the end (the decoder's flushed frames): the rate, not the bad pts.
            using, raw = "dts", dts
        else:
            using, raw = ("pts", pts) if pts is not None else ("dts", dts)
        if raw is None:
            t = 0 if self.last is None else self.last + step
            self.last = t
            return t
        if self._using is not None and using != self._using and self.last is not None:
            # The other series may be offset by the decoder's delay: continue from the last frame.
            self.offset = self.last + step - raw
            self.repaired += 1
        self._using = using
        t = raw + self.offset
        far = self.window * step
        if self.last is not None and abs(t - self.last) > far and ahead is not None:
            next_raw = ahead[1] if using == "dts" else ahead[0]
            if next_raw is not None and abs(next_raw + self.offset - self.last) <= far:
                # The next frame carries on from the previous one: this value alone is garbage.
                self.repaired += 1
                self.last += step
                return self.last
        if self.last is not None and t <= self.last:
            if self.last - t > far or self._behind >= self.window:
                # A real jump back (joined recordings): continue one frame later from here on.
                self.offset += self.last + step - t
                self.jumps += 1
                self._behind = 0
            else:
                self._behind += 1
            t = self.last + step
        elif self._behind:
            self.repaired += self._behind  # the run rose past the last frame again: reordered pts
            self._behind = 0
        self.last = t
        return t


@runtime_checkable
class FrameSource(Protocol):
    """The least a source must do: iterate frames and close. Anything richer subclasses :class:`Source`."""

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSink(Protocol):
    """The least a sink must do: take frames and close. Anything richer subclasses :class:`Sink`."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


class Source(ABC):
    """Produces frames. Subclasses implement ``__iter__`` and usually ``close``.

    Attributes (class defaults; subclasses set them in ``__init__`` when known):
        live: frames come in real time (camera, network stream): the pipeline may drop
            stale frames; files never do.
        path: what to call the input in messages (file name, URL, pattern); None: "the input".
        fps: nominal frame rate (None when unknown): sinks' rate hint.
        frame_count: frames the source will produce (None: unknown or endless): progress bars.
        corrupt: damaged packets/frames skipped so far (read after the run).
        truncated: the input ended clearly before what its header declares (a file cut
            short): what decoded was converted; read after the run (``batch`` records it).
        has_audio: the input carries audio.
        audio_path: a media file or URL whose audio file outputs may copy (None: no audio).
        inputs: local files this source reads; no output may ever overwrite one.
    """

    live: bool = False
    path: str | None = None
    fps: float | Fraction | None = None
    frame_count: int | None = None
    corrupt: int = 0
    truncated: bool = False
    has_audio: bool = False
    audio_path: str | None = None
    inputs: tuple[str, ...] = ()

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Frames in order; a source never drops frames itself."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most sources hold nothing to release
        """Release the device/file; may be called from another thread than the reader."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink(ABC):
    """Consumes frames. Opens lazily on the first frame; ``close`` finalises output.

    Attributes (class defaults):
        threaded: ``write`` runs in the pipeline's encoder thread (True) or in the main
            thread right after the model (False: GUI calls belong to the main thread).
        live: a live output (stream, preview, virtual camera): takes live controls
            (HTTP, stdin, signals) and is paced to real time when the source is a file.
        interactive: the sink takes commands from the user itself (the window's keys),
            reported through :meth:`poll_actions`.
        path: the file it writes (None for non-file outputs), for "wrote ..." messages.
    """

    threaded: bool = True
    live: bool = False
    interactive: bool = False
    path: Path | None = None

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """Take one frame (uint8 HxWx3 BGR); never modify ``frame.image``."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Finalise the output (flush, rename into place, disconnect). Idempotent."""

    def finish(self) -> None:  # noqa: B027 - an optional hook
        """The input ended normally (not a quit or Ctrl-C): e.g. copy the audio to its end.

        Called just before :meth:`close`.
        """

    def abort(self) -> None:
        """Discard the output (an unexpected error): nothing is left under a final name.

        Defaults to :meth:`close` for sinks that have nothing to discard.
        """
        self.close()

    def poll_actions(self) -> list[str]:
        """Control commands the user gave through this sink since the last call (main-thread sinks)."""
        return []

    def holds(self, index: int) -> bool:
        """This output already holds frame ``index`` from an earlier run (``--resume``).

        When every sink holds a frame the pipeline skips it without stylizing it.
        """
        return False

    def set_status(self, text: str) -> None:  # noqa: B027 - an optional hook
        """Text describing the current state (style, strength, smoothing) to show, if the sink can."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close()  # Ctrl-C keeps what was written
        else:
            self.abort()


class _SourceAdapter(Source):
    """A duck-typed source seen through the :class:`Source` contract (missing members take the defaults)."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner
        self.live = bool(getattr(inner, "live", False))
        name = getattr(inner, "path", None)
        self.path = None if name is None else str(name)
        self.fps = getattr(inner, "fps", None)
        self.frame_count = getattr(inner, "frame_count", None)
        self.has_audio = bool(getattr(inner, "has_audio", False))

    @property  # read through: the source counts while it runs
    def corrupt(self) -> int:  # type: ignore[override]
        return int(getattr(self.inner, "corrupt", 0))

    @property
    def truncated(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "truncated", False))

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.inner)

    def close(self) -> None:
        self.inner.close()


class _SinkAdapter(Sink):
    """A duck-typed sink seen through the :class:`Sink` contract (missing hooks take the defaults)."""

    def __init__(self, inner: FrameSink) -> None:
        self.inner = inner
        self.threaded = bool(getattr(inner, "threaded", True))
        self.live = bool(getattr(inner, "live", False))
        self.interactive = bool(getattr(inner, "interactive", False))
        path = getattr(inner, "path", None)
        self.path = None if path is None else Path(path)

    def write(self, frame: Frame) -> None:
        self.inner.write(frame)

    def close(self) -> None:
        self.inner.close()

    def finish(self) -> None:
        getattr(self.inner, "finish", _nothing)()

    def abort(self) -> None:
        getattr(self.inner, "abort", self.inner.close)()

    def poll_actions(self) -> list[str]:
        return list(getattr(self.inner, "poll_actions", list)())

    def set_status(self, text: str) -> None:
        getattr(self.inner, "set_status", _ignore)(text)


def _nothing() -> None:
    pass


def _ignore(text: str) -> None:
    pass


def as_source(source: FrameSource) -> Source:
    """``source`` itself when it subclasses :class:`Source`, else an adapter with the defaults."""
    return source if isinstance(source, Source) else _SourceAdapter(source)


def as_sink(sink: FrameSink) -> Sink:
    """``sink`` itself when it subclasses :class:`Sink`, else an adapter with the defaults."""
    return sink if isinstance(sink, Sink) else _SinkAdapter(sink)
