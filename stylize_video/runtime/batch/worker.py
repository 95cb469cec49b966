"""The worker side of a batch: one loaded style converting one task at a time.

A segment task reads only its part of the input (:class:`_SegmentSource`, with
pre-roll frames that warm the smoother up) and writes only frames from its start on
(:class:`_StartGate`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import InputError, StylizeError
from ...files import atomic_output, partial_owner
from ...io.base import Frame
from ...models.checkpoint import Checkpoint
from .plan import BatchSettings, Task, TaskResult
from .style import BatchStyle

log = logging.getLogger(__name__)


class _SegmentSource:
    """Frames of a :class:`VideoFileSource` with ``start <= pts < end``, plus up to ``preroll`` frames before ``start``.

    Decoding starts at the keyframe at or before ``start`` minus ``preroll`` frames.
    The pre-roll frames go through the model and the smoother (so a smoother's
    state is warm at ``start``, and the join shows no restart) but a
    :class:`_StartGate` keeps them out of the output. Decoders return frames in
    presentation order, so the first frame at or past ``end`` ends the segment.
    """

    live = False

    def __init__(self, source: Any, start: int | None, end: int | None, preroll: int = 0) -> None:
        self.source = source
        self.start, self.end = start, end
        self.preroll = preroll

    @property
    def corrupt(self) -> int:
        return int(self.source.corrupt)

    @property
    def truncated(self) -> bool:
        return bool(self.source.truncated)

    def __iter__(self) -> Iterator[Frame]:
        held: collections.deque[Frame] = collections.deque(maxlen=max(self.preroll, 1))
        if self.start is not None:
            target = self.start
            if self.preroll:
                frame_ticks = 1 / (float(self.source.fps) * float(self.source.time_base))
                target -= math.ceil(self.preroll * frame_ticks)
            self.source.container.seek(max(target, 0), stream=self.source.stream, backward=True)
        for frame in self.source:
            if frame.pts is None:
                yield frame
                continue
            if self.start is not None and frame.pts < self.start:
                if self.preroll:
                    held.append(frame)
                continue
            if self.end is not None and frame.pts >= self.end:
                return
            while held:
                yield held.popleft()
            yield frame

    def close(self) -> None:
        self.source.close()


class _StartGate:
    """Passes frames at or after ``start`` to a sink; pre-roll frames stop here."""

    threaded = True

    def __init__(self, sink: Any, start: int | None) -> None:
        self.sink, self.start = sink, start

    def write(self, frame: Frame) -> None:
        if self.start is None or frame.pts is None or frame.pts >= self.start:
            self.sink.write(frame)

    def finish(self) -> None:
        self.sink.finish()

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


class _Stopped(Exception):
    """Raised into a conversion by a stop request: the pipeline discards the output (see ``Pipeline.run``)."""


class BatchWorker:
    """Holds one loaded style (or blend) on one device and converts tasks, one at a time.

    Used in-process, in each pool process, and as the Ray actor class. Failures come
    back as results (``ok=False`` with the reason) so one bad file costs one result.
    After :meth:`request_stop` (from any thread) the file in progress is dropped
    within a frame and no further task starts: both come back with ``stopped``.

    Args:
        checkpoint: the style, or a blend as a :class:`BatchStyle` (loaded once by the
            caller and shipped to workers).
        settings: conversion settings.
        device: overrides ``settings.device`` (a pool gives each worker its GPU).
    """

    def __init__(self, checkpoint: Checkpoint | BatchStyle, settings: BatchSettings, device: str | None = None) -> None:
        from ..stylizer import Stylizer

        self.settings = settings
        # One set of engine settings for the main style and --person-style (its own strength).
        engine: dict[str, Any] = {
            "device": device or settings.device,
            "precision": settings.precision,
            "preserve_color": settings.preserve_color,
            "scale": settings.style_scale,
            "threads": settings.threads,
            "backend": settings.backend,
        }
        self.stylizer = BatchStyle.of(checkpoint).stylizer(strength=settings.strength, **engine)
        self.person_stylizer: Stylizer | None = None
        if settings.person_style is not None:
            strength = settings.strength if settings.person_strength is None else settings.person_strength
            self.person_stylizer = Stylizer(settings.person_style, strength=strength, **engine)
        self.name = f"{os.uname().nodename}:{os.getpid()}:{self.stylizer.device}"
        self._stop = threading.Event()
        self._current: Task | None = None

    def request_stop(self) -> None:
        """Drop the file in progress (nothing is left under its name) and start no other."""
        self._stop.set()

    @property
    def busy(self) -> bool:
        """Whether a task is being converted."""
        return self._current is not None

    def discard_partials(self) -> None:
        """Remove this process's partial files beside the current task's output (for a worker that must exit now)."""
        task = self._current
        if task is None:
            return
        folder = Path(task.output).parent
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                owner = partial_owner(path)
                if owner is not None and owner[0] == os.getpid():
                    path.unlink(missing_ok=True)

    def _check_stop(self, frame: Frame) -> None:
        # Called by the pipeline after each frame; an exception other than
        # KeyboardInterrupt makes it discard the outputs instead of finalizing them.
        if self._stop.is_set():
            raise _Stopped

    def convert(self, task: Task) -> TaskResult:
        """Convert one task; never raises for a bad input (only for Ctrl-C when no stop was requested)."""
        t0 = time.perf_counter()
        if self._stop.is_set():
            return TaskResult(task.id, False, "not started: the batch is stopping", worker=self.name, stopped=True)
        self._current = task
        try:
            frames, corrupt, truncated = self._convert(task)
        except (_Stopped, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt) and not self._stop.is_set():
                raise
            return TaskResult(
                task.id, False, "dropped: the batch is stopping", seconds=time.perf_counter() - t0,
                worker=self.name, stopped=True,
            )  # fmt: skip
        except StylizeError as exc:
            return TaskResult(task.id, False, str(exc), seconds=time.perf_counter() - t0, worker=self.name)
        except Exception as exc:  # a bug or a library failure on one file must not end the batch
            log.exception("converting %s failed", task.source)
            reason = f"{type(exc).__name__}: {exc}"
            return TaskResult(task.id, False, reason, seconds=time.perf_counter() - t0, worker=self.name)
        finally:
            self._current = None
        return TaskResult(task.id, True, "", frames, time.perf_counter() - t0, corrupt, self.name, truncated=truncated)

    def _convert(self, task: Task) -> tuple[int, int, bool]:
        from ...io.sinks import VideoFileSink
        from ...io.sources import VideoFileSource
        from ..pipeline import Pipeline
        from ..region import RegionStage, masker_factory
        from ..smoothing import make_smoother

        s = self.settings
        source = VideoFileSource(task.source)
        try:
            # The sink renames its own partial file to ``staged`` when it closes (even
            # when interrupted: a valid, short file); only a run that ended well leaves
            # this block and is renamed to the final name, so a file that failed
            # mid-way never looks finished to a rerun. The host tag in the temporary
            # names lets a later run on this machine remove them at once if this
            # process is killed (see files.remove_stale_partials).
            with atomic_output(task.output, host=True) as staged:
                segment = task.start_pts is not None or task.end_pts is not None
                frames_in: Any = source
                if segment:
                    frames_in = _SegmentSource(source, task.start_pts, task.end_pts, task.preroll)
                sink = VideoFileSink(
                    staged,
                    encoder=s.encoder,
                    audio_from=task.source if task.audio and source.has_audio else None,
                    fps=source.fps,
                    inputs=[task.source],
                    overwrite=True,
                    share_cpu=self.stylizer.device.type == "cpu",
                    alpha=s.alpha,
                )
                smoother = None if s.smooth == "none" else make_smoother(s.smooth, s.smooth_strength)
                gate = _StartGate(sink, task.start_pts)
                region = None
                if s.region != "all" or self.person_stylizer is not None:
                    # A fresh stage per file: the mask's temporal history is one video's.
                    region = RegionStage(
                        masker_factory(s.person_model), s.region, person_stylizer=self.person_stylizer, alpha=s.alpha
                    )
                    region.load()
                pipeline = Pipeline(
                    frames_in, self.stylizer, [gate], smoother=smoother, on_frame=self._check_stop, region=region
                )
                try:
                    stats = pipeline.run()
                finally:
                    if region is not None:
                        region.close()
                if stats.interrupted:  # the pipeline kept a valid but short file: not a finished output
                    raise KeyboardInterrupt
                if stats.error is not None:
                    raise stats.error
                if sink.frames == 0:
                    raise InputError(f"input {task.source!r}: no frames decoded")
            return sink.frames, stats.corrupt, stats.truncated
        finally:
            source.close()
