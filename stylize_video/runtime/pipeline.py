"""The threaded pipeline: decode thread -> model in the main thread -> encode thread.

Only this module knows every stage. Bounded queues sit between the threads: a
file source blocks when the model falls behind (files never drop a frame); a live
source replaces the oldest waiting frame instead (stale frames are dropped and
counted, so latency stays low). Sinks marked ``threaded`` run in the encoder
thread, the others (the window) in the main thread right after the model.

On Ctrl-C, on a quit key, and when a source fails mid-run (camera unplugged), the
frames already stylized are written and every sink is finalized; only a bug
(an unexpected exception) discards file outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..controls import Blend, LiveControls
from ..errors import DeviceError, InputError, StylizeError
from ..interrupts import install_handler, restore
from ..io.base import Frame, FrameSink, FrameSource, as_sink, as_source
from .adaptive import AdaptiveScale
from .flow_smoother import FlowSmoother
from .pipeline_controls import PipelineControls
from .region import RegionStage
from .smoothing import NoSmoother, Smoother, as_smoother
from .stats import PipelineStats
from .stylizer import Stylizer

__all__ = ["Pipeline", "PipelineStats"]

log = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.1  # queue waits wake up this often to notice a stop request


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM/SIGHUP) while outputs are finalized: a second one must
    not leave a broken file."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def _hold(signum: int, frame: object) -> None:
        if not pending:
            log.warning("finishing the output files, one moment...")
        pending.append(signum)

    previous = install_handler(_hold)
    try:
        yield
    finally:
        restore(previous)


def _is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (a RuntimeError), the CPU allocator's RuntimeError, or MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Pipeline(PipelineControls):
    """Run ``source -> stylizer -> smoother -> sinks`` with a decoder and an encoder thread.

    Args:
        source: frames in; ``source.live`` selects drop-stale behaviour.
        stylizer: the engine (its ``transfer`` moves frames to and from the device).
        sinks: outputs; each gets every stylized frame.
        smoother: temporal smoothing (reset on ``Frame.cut`` and on toggling).
        smoothing: start with the smoother on (default: when one is given); a smoother
            that starts off is there for the ``t`` key / live controls to switch on.
        queue_size: frames waiting between threads (each direction; one for live input).
        max_frames: stop after this many frames (None: until the source ends).
        progress: ``tqdm``-like object with ``update(n)`` (or None).
        styles: style names to cycle with n/p (preloaded on the stylizer).
        controls: live controls (HTTP endpoint, stdin, signals) polled once per frame; window
            keys go through them too (a private set is made when None is given).
        adaptive: adaptive resolution: each frame's processing time goes to it and the
            stylizer's ``scale`` follows its answer (None: the scale stays as set).
        region: the person-aware stage (which region is stylized, a second style for the
            person, alpha); None: the whole frame, as before.

    Style changes morph over ``stylizer.morph_seconds`` of *frame* time: during a run
    the stylizer's clock reads the frames' timestamps (a file morphs over the same
    stretch of video however fast it is processed), and no frame waits for a morph.
    """

    def __init__(
        self,
        source: FrameSource,
        stylizer: Stylizer,
        sinks: Sequence[FrameSink],
        *,
        smoother: Smoother | None = None,
        smoothing: bool | None = None,
        queue_size: int = 4,
        max_frames: int | None = None,
        progress: Any = None,
        styles: Sequence[str] = (),
        on_frame: Callable[[Frame], None] | None = None,
        controls: LiveControls | None = None,
        adaptive: AdaptiveScale | None = None,
        region: RegionStage | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        # Stages written against the older duck-typed contract get the declared defaults here, once.
        self.source = as_source(source)
        self.stylizer = stylizer
        self.sinks = [as_sink(s) for s in sinks]
        self.smoother: Smoother = as_smoother(smoother or NoSmoother())
        self._smoothing_on = smoother is not None if smoothing is None else smoothing
        self.max_frames = max_frames
        self.progress = progress
        self.styles = list(styles)
        self.on_frame = on_frame
        self.controls = controls if controls is not None else LiveControls(smoothing=self._smoothing_on)
        self._last_out: Frame | None = None
        self._blend: Blend = tuple(stylizer.spec)  # the blend pair the controls step through
        # Frame time for morphs: advances by each frame's timestamp step (a nominal frame
        # when timestamps are missing, go back or jump), so a morph never stalls.
        self._media_time = 0.0
        self._last_time: float | None = None
        self._frame_step = 1.0 / (self.source.fps or 30.0)
        self._snapshot_pending = False  # requested before the first frame: taken once one exists
        self._notice_until = 0.0  # the window's status line shows the last notice until then (monotonic s)
        self._notice_text = ""
        self.snapshots: list[Path] = []
        self.stats = PipelineStats()
        self.adaptive = adaptive
        self.region = region
        if adaptive is not None:
            # A scale change is not a cut: the stylizer resizes its output back to the
            # frame size, so smoothers keep blending frames of one size.
            stylizer.scale = adaptive.scale
            self.stats.scale = adaptive.scale
        # A live source keeps one frame waiting: anything older is latency, not throughput.
        live = self.source.live
        self._in: queue.Queue[Any] = queue.Queue(maxsize=1 if live else queue_size)
        # And one frame waiting for a slow encoder: a longer queue there would be a backlog
        # that only grows latency (the model then waits and the input side drops instead).
        self._out: queue.Queue[Any] = queue.Queue(maxsize=1 if live else queue_size)
        self._stop = threading.Event()
        self._writer_error: BaseException | None = None
        self._threaded = [s for s in self.sinks if s.threaded]
        self._inline = [s for s in self.sinks if not s.threaded]
        self._lock = threading.Lock()
        self._size = (0, 0)  # the last input frame's (w, h), for the out-of-memory message

    # ------------------------------------------------------------------ threads
    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        """Blocking put that gives up when a stop is requested."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        live = self.source.live
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                if live:
                    # Newest frame wins: drop the oldest waiting one instead of blocking.
                    while True:
                        try:
                            self._in.put_nowait(frame)
                            break
                        except queue.Full:
                            try:
                                stale = self._in.get_nowait()
                                with self._lock:
                                    self.stats.dropped += 1
                                if isinstance(stale, Frame) and stale.cut and not frame.cut:
                                    # The cut mark (a reconnect) must survive the frame it came on,
                                    # or the smoother blends the old picture into the new.
                                    frame = dataclasses.replace(frame, cut=True)
                            except queue.Empty:
                                pass
                elif not self._put(self._in, frame):
                    break
            self._put(self._in, _END)
        except BaseException as exc:  # handed to the main thread, which decides
            self._put(self._in, _Failure(exc))

    def _write(self) -> None:
        while True:
            try:
                item = self._out.get(timeout=_POLL_S)
            except queue.Empty:
                if self._writer_error is not None:
                    return
                continue
            if item is _END:
                return
            if self._writer_error is not None:
                continue  # drain so the main thread never blocks on a dead writer
            try:
                for sink in self._threaded:
                    sink.write(item)
                self._record(item)
            except BaseException as exc:
                self._writer_error = exc
                self._stop.set()

    def _held(self, index: int) -> bool:
        """Every output already holds frame ``index`` (``--resume``): count it and skip it."""
        if not self.sinks or not all(sink.holds(index) for sink in self.sinks):
            return False
        self.stats.skipped += 1
        if self.progress is not None:
            self.progress.update(1)
        return True

    def _record(self, frame: Frame) -> None:
        with self._lock:
            self.stats.frames += 1
            if frame.captured:
                self.stats.latencies.append(time.perf_counter() - frame.captured)
        if self.progress is not None:
            self.progress.update(1)

    # --------------------------------------------------------------- main loop
    def process(self, frame: Frame) -> Frame:
        """Stylize (and smooth) one frame; no threads involved."""
        transfer = self.stylizer.transfer
        region = self.region
        if frame.cut:
            self.smoother.reset()
            if region is not None:
                region.reset()
        if self._smoothing_on:
            # Optical flow starts on a worker thread now and overlaps the network.
            self.smoother.prepare(frame.image)
        if region is not None:
            # The person mask too, on its own thread; its border follows the same flow.
            smoother = self.smoother
            motion = smoother.pending_flow() if self._smoothing_on and isinstance(smoother, FlowSmoother) else None
            region.submit(frame.image, motion)
        x = transfer.upload(frame.image)
        self._tick(frame)  # during run() the stylizer's clock reads this frame's time
        y = self.stylizer.stylize(x)
        alpha = None
        if region is not None:
            y = region.restyle(x, y, self.stylizer.scale)  # before smoothing: both styles are smoothed
        if self._smoothing_on:
            y = self.smoother(y, x, frame.image)
        if region is not None:
            y, alpha = region.finish(x, y)
        return dataclasses.replace(frame, image=transfer.download(y), alpha=alpha)

    def _tick(self, frame: Frame) -> None:
        """Advance the frame clock to ``frame``."""
        if self._last_time is not None:
            step = frame.time - self._last_time
            self._media_time += step if 0.0 < step <= 1.0 and not frame.cut else self._frame_step
        self._last_time = frame.time

    def _frame_clock(self) -> float:
        return self._media_time

    def run(self) -> PipelineStats:
        """Run to the end of the source, a quit, Ctrl-C or a source failure.

        Returns:
            The stats; ``interrupted`` after Ctrl-C, ``error`` when the source failed
            mid-run (its outputs are finalized first).

        Raises:
            StylizeError: a sink failed (outputs discarded where possible), or the
                source failed before the first frame.
            Exception: anything unexpected, after discarding file outputs.
        """
        reader = threading.Thread(target=self._read, name="stylize-decode", daemon=True)
        writer = threading.Thread(target=self._write, name="stylize-encode", daemon=True)
        t0 = time.perf_counter()
        reader.start()
        writer.start()
        ended = False
        failure: BaseException | None = None
        processed = 0
        resumed = False
        clock = self.stylizer.clock
        if clock is not None:  # None means cuts, and stays so
            self.stylizer.clock = self._frame_clock
        try:
            self._controls()
            while not self._stop.is_set():
                if self._writer_error is not None:
                    break
                try:
                    item = self._in.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _END:
                    ended = True
                    break
                if isinstance(item, _Failure):
                    failure = self._as_device_error(item.exc)
                    break
                if self._held(item.index):
                    resumed = True
                    continue
                if resumed:
                    # Frames were skipped: the smoothers must not blend across the gap.
                    item = dataclasses.replace(item, cut=True)
                    resumed = False
                self._size = (item.image.shape[1], item.image.shape[0])
                t_busy = time.perf_counter()
                out = self.process(item)
                spent = time.perf_counter() - t_busy
                self.stats.busy += spent
                if self.adaptive is not None:
                    # Only the stage the scale acts on is timed: a paused window or a slow
                    # sink must not read as a slow network.
                    self._adapt(self.adaptive, spent, item.index)
                self._last_out = out
                processed += 1
                for sink in self._inline:
                    sink.write(out)
                if self._threaded:
                    self._put(self._out, out)
                else:
                    self._record(out)
                if self.on_frame is not None:
                    self.on_frame(out)
                self._controls()
                if self.max_frames is not None and processed >= self.max_frames:
                    break  # not the input's end: audio stops with the last frame
        except KeyboardInterrupt:
            self.stats.interrupted = True
        except BaseException as exc:
            failure = self._as_device_error(exc)
        self.stylizer.clock = clock
        with _deferred_sigint():
            # Let the encoder drain what was stylized, then stop the decoder.
            if self._threaded:
                self._writer_done(writer)
            self._stop.set()
            reader.join(timeout=2.0)
            self.stats.wall = time.perf_counter() - t0
            self.stats.corrupt = int(self.source.corrupt)
            self.stats.truncated = bool(self.source.truncated)
            return self._finalize(ended, failure)

    def _as_device_error(self, exc: BaseException) -> BaseException:
        """Out of memory becomes the one-line :class:`DeviceError` ``image`` gives (what was written is kept)."""
        if not _is_out_of_memory(exc):
            return exc
        device = self.stylizer.device.type
        w, h = self._size
        frames = f"{w}x{h} frames" if w else "frames"  # (0, 0): it failed before the first frame
        error = DeviceError(
            f"out of {device} memory stylizing {frames} with {self.stylizer.style_name}: "
            "use --style-scale 0.5, a -lite style or a smaller input"
        )
        error.__cause__ = exc
        return error

    def _writer_done(self, writer: threading.Thread) -> None:
        while writer.is_alive():
            try:
                self._out.put(_END, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        writer.join()

    def _finalize(self, ended: bool, failure: BaseException | None) -> PipelineStats:
        if ended and failure is None and self.stats.frames == 0:
            # An input that decodes to nothing is an error, not an empty success.
            name = self.source.path
            where = f"input {name!r}" if name is not None else "the input"
            failure = InputError(f"{where} has no decodable video frames")
        writer_error = self._writer_error
        keep = writer_error is None and (failure is None or isinstance(failure, StylizeError))
        if keep and failure is not None and self.stats.frames == 0 and not self._inline:
            keep = False  # nothing was written: a failing input leaves no empty file behind
        close_error: BaseException | None = None
        for sink in self.sinks:
            try:
                if keep:
                    if ended:
                        sink.finish()
                    sink.close()
                else:
                    sink.abort()
            except BaseException as exc:  # close every sink even if one fails
                close_error = close_error or exc
        if writer_error is not None:
            raise writer_error
        if failure is not None:
            if isinstance(failure, StylizeError) and self.stats.frames > 0:
                self.stats.error = failure
            else:
                raise failure
        if close_error is not None:
            raise close_error
        return self.stats
