"""Batch conversion: many video files, one style, on a local process pool or a Ray cluster.

Planning (which files, which outputs, which segments) and reporting happen in the
calling process; workers only turn a :class:`Task` into a :class:`TaskResult`.

* **Idempotent and resumable.** Outputs appear under their final name only when
  complete (encoded under a hidden name, renamed into place), so an existing
  output is a finished one and a rerun skips it. ``manifest.jsonl`` in the output
  folder gets one JSON line per converted or failed file, with the style (and the
  checkpoint's SHA-256) and the settings that made it.
* **One bad file never stops the batch.** A worker returns failures as results with
  the reason; the batch goes on and the final report lists them.
* **Long videos** (``segment_seconds``) are cut at keyframes into segments that are
  converted in parallel and joined by remuxing the encoded packets (no re-encode),
  with the audio copied untouched from the input. A segment's worker never saw the
  frames before it, so temporal smoothing would restart at each join; with
  smoothing on, a few pre-roll frames before each segment are stylized and smoothed
  but not written, which warms the smoother up (benchmarks/batch_scaling.py
  measures the seam: warping error at joins 2.7x elsewhere without pre-roll, 1.1x with 8 frames).
* **Executors.** :class:`InProcessExecutor` (one worker, here),
  :class:`LocalPoolExecutor` (one process per GPU, or a CPU pool) and
  :class:`RayExecutor` (one Ray actor per worker, holding the loaded model; Ray
  places the actors, restarts dead ones and retries their task).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as _dt
import glob
import hashlib
import json
import logging
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import DependencyError, InputError, StylizeError
from ..io.base import Frame
from ..io.segments import join_segments
from ..models.checkpoint import Checkpoint, load_checkpoint

log = logging.getLogger(__name__)

#: File extensions picked up when the input is a folder.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".ogv"}
)
MANIFEST_NAME = "manifest.jsonl"
#: Converted segments wait here (inside the output folder) until their file is joined.
SEGMENTS_DIR = ".segments"

Status = Literal["done", "failed", "skipped"]


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class BatchSettings:
    """How every file of a batch is converted.

    The fields up to ``preset`` shape the output and go into the manifest; ``device``
    and ``threads`` only say where it runs.

    Args:
        style: style name or checkpoint path.
        strength, preserve_color, style_scale, precision: engine options (as for ``run``).
        smooth, smooth_strength: temporal smoothing (``none``, ``ema``, ``flow``).
        codec, crf, bitrate, preset: video encoder options; audio is always copied.
        extension: output container, e.g. ``.mp4``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (pools give each worker its own GPU).
        threads: CPU threads per worker (None: the cores divided among the workers).
    """

    style: str
    strength: float = 1.0
    preserve_color: bool = False
    style_scale: float = 1.0
    precision: str = "auto"
    smooth: str = "none"
    smooth_strength: float | None = None
    codec: str = "h264"
    crf: int | None = None
    bitrate: int | None = None
    preset: str | None = None
    extension: str = ".mp4"
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise StylizeError(f"strength must be within 0..1, got {self.strength}")
        if self.smooth not in ("none", "ema", "flow"):
            raise StylizeError(f"unknown smoothing {self.smooth!r} (choose none, ema or flow)")
        if self.smooth_strength is not None and not 0.0 <= self.smooth_strength < 1.0:
            raise StylizeError(f"smooth strength must be within [0, 1), got {self.smooth_strength}")
        if not 0.0 < self.style_scale <= 2.0:
            raise StylizeError(f"style scale must be within (0, 2], got {self.style_scale}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise StylizeError(f"crf must be within 0..63, got {self.crf}")
        if self.threads is not None and self.threads < 1:
            raise StylizeError(f"threads must be >= 1, got {self.threads}")
        ext = self.extension if self.extension.startswith(".") else f".{self.extension}"
        object.__setattr__(self, "extension", ext.lower())

    def output_record(self) -> dict[str, Any]:
        """The settings that shape the output (what the manifest records)."""
        skip = {"style", "device", "threads"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class FileJob:
    """One input file and the output it becomes."""

    source: Path
    output: Path
    name: str  # the input relative to the input folder, for reports


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (outputs mirror the tree below it)."""
    parts = Path(pattern).parts
    root: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        root.append(part)
    if len(root) == len(parts):  # a plain file name: its folder is the root
        root = root[:-1]
    return Path(*root) if root else Path(".")


def _find(text: str) -> tuple[Path, list[Path]]:
    """The root that outputs mirror, and the files one input spec names."""
    path = Path(text)
    if path.is_dir():
        return path, [p for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    if glob.has_magic(text):
        return _glob_root(text), sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if path.is_file():
        return path.parent, [path]
    raise InputError(f"input {text!r} is neither a folder, a file nor a glob that matches anything")


def plan_jobs(
    specs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    extension: str = ".mp4",
) -> list[FileJob]:
    """Find the input videos and name their outputs.

    Each spec is a folder (searched recursively for video extensions), a glob
    (``clips/**/*.mov``) or a file (several, as a shell expands an unquoted glob).
    Outputs mirror the inputs' layout below the folder (or the glob's fixed prefix,
    or a file's own folder) inside ``out_dir``, with ``extension``. Files already
    inside ``out_dir`` are never inputs.

    Raises:
        InputError: nothing matches, or two inputs would write the same output.
    """
    texts = [os.fspath(specs)] if isinstance(specs, str | os.PathLike) else [os.fspath(s) for s in specs]
    out_root = Path(out_dir).resolve()
    jobs: list[FileJob] = []
    seen: dict[Path, Path] = {}
    sources: set[Path] = set()
    for text in texts:
        root, found = _find(text)
        for src in found:
            resolved = src.resolve()
            if resolved.is_relative_to(out_root) or resolved in sources:
                continue  # earlier outputs and segments are not inputs; a file named twice is one job
            sources.add(resolved)
            rel = src.relative_to(root) if src.is_relative_to(root) else Path(src.name)
            out = out_root / rel.with_suffix(extension)
            if out in seen:
                raise InputError(f"inputs {str(seen[out])!r} and {str(src)!r} would both write {str(out)!r}")
            seen[out] = src
            jobs.append(FileJob(source=src, output=out, name=str(rel)))
    if not jobs:
        named = ", ".join(repr(t) for t in texts)
        raise InputError(f"no video files in {named} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return jobs


def keyframe_splits(path: str | os.PathLike[str], segment_seconds: float) -> list[int]:
    """Keyframe timestamps (video stream time base) where segments of about ``segment_seconds`` start.

    Seeks to each multiple of ``segment_seconds`` and takes the keyframe at or
    before it, so probing costs one seek per segment, not a pass over the file.
    The first segment's start is not included; an empty list means "one piece".

    Raises:
        InputError: the file cannot be read.
    """
    from ..io.media import import_av, open_input

    if segment_seconds <= 0:
        raise StylizeError(f"segment length must be > 0 s, got {segment_seconds}")
    av = import_av()
    container = open_input(path)
    try:
        if not container.streams.video:
            raise InputError(f"input {os.fspath(path)!r} has no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        if stream.duration is not None and tb:
            duration = float(stream.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            return []
        start = stream.start_time or 0
        splits: set[int] = set()
        k = 1
        while k * segment_seconds < duration - segment_seconds / 2:  # no stub of a last segment
            target = start + round(k * segment_seconds / tb)
            k += 1
            try:
                container.seek(target, stream=stream, backward=True)
                packet = next(p for p in container.demux(stream) if p.pts is not None)
            except (av.FFmpegError, StopIteration):
                continue
            if packet.is_keyframe and packet.pts > start:
                splits.add(int(packet.pts))
        return sorted(splits)
    finally:
        container.close()


# --------------------------------------------------------------------------- worker side
@dataclass(frozen=True)
class Task:
    """A unit of work for a worker: a whole file, or one segment of it.

    ``start_pts``/``end_pts`` bound a segment in the input's video time base (None:
    from the start / to the end); ``preroll`` frames before ``start_pts`` warm the
    smoother up and are not written; ``audio`` copies the input's audio (whole files only).
    """

    id: str
    source: str
    output: str
    start_pts: int | None = None
    end_pts: int | None = None
    preroll: int = 0
    audio: bool = True


@dataclass
class TaskResult:
    """What a worker reports for a :class:`Task`."""

    id: str
    ok: bool
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0  # time in the worker, decode to close
    corrupt: int = 0
    worker: str = ""  # host:pid:device of the worker that ran it ("" when the worker died)


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


class BatchWorker:
    """Holds one loaded style on one device and converts tasks, one at a time.

    Used in-process, in each pool process, and as the Ray actor class. Failures come
    back as results (``ok=False`` with the reason) so one bad file costs one result.

    Args:
        checkpoint: the style (loaded once by the caller and shipped to workers).
        settings: conversion settings.
        device: overrides ``settings.device`` (a pool gives each worker its GPU).
    """

    def __init__(self, checkpoint: Checkpoint, settings: BatchSettings, device: str | None = None) -> None:
        from .stylizer import Stylizer

        self.settings = settings
        self.stylizer = Stylizer(
            checkpoint,
            device=device or settings.device,
            precision=settings.precision,
            strength=settings.strength,
            preserve_color=settings.preserve_color,
            scale=settings.style_scale,
            threads=settings.threads,
        )
        self.name = f"{os.uname().nodename}:{os.getpid()}:{self.stylizer.device}"

    def convert(self, task: Task) -> TaskResult:
        """Convert one task; never raises for a bad input (only for Ctrl-C)."""
        t0 = time.perf_counter()
        try:
            frames, corrupt = self._convert(task)
        except StylizeError as exc:
            return TaskResult(task.id, False, str(exc), seconds=time.perf_counter() - t0, worker=self.name)
        except Exception as exc:  # a bug or a library failure on one file must not end the batch
            log.exception("converting %s failed", task.source)
            reason = f"{type(exc).__name__}: {exc}"
            return TaskResult(task.id, False, reason, seconds=time.perf_counter() - t0, worker=self.name)
        return TaskResult(task.id, True, "", frames, time.perf_counter() - t0, corrupt, self.name)

    def _convert(self, task: Task) -> tuple[int, int]:
        from ..io.sinks import VideoFileSink
        from ..io.sources import VideoFileSource
        from .pipeline import Pipeline
        from .smoothing import make_smoother

        s = self.settings
        final = Path(task.output)
        # The sink renames its own partial file to ``staged`` when it closes; only a
        # run that ended well is renamed again to the final name, so a file that
        # failed mid-way never looks finished to a rerun.
        staged = final.with_name(f".{final.stem}.staged-{os.getpid()}{final.suffix}")
        source = VideoFileSource(task.source)
        try:
            segment = task.start_pts is not None or task.end_pts is not None
            frames_in: Any = source
            if segment:
                frames_in = _SegmentSource(source, task.start_pts, task.end_pts, task.preroll)
            sink = VideoFileSink(
                staged,
                codec=s.codec,
                crf=s.crf,
                bitrate=s.bitrate,
                preset=s.preset,
                audio_from=task.source if task.audio and source.has_audio else None,
                fps=source.fps,
                inputs=[task.source],
                overwrite=True,
                share_cpu=self.stylizer.device.type == "cpu",
            )
            smoother = None if s.smooth == "none" else make_smoother(s.smooth, s.smooth_strength)
            stats = Pipeline(frames_in, self.stylizer, [_StartGate(sink, task.start_pts)], smoother=smoother).run()
            if stats.interrupted:  # the pipeline kept a valid but short file: not a finished output
                raise KeyboardInterrupt
            if stats.error is not None:
                raise stats.error
            if sink.frames == 0:
                raise InputError(f"input {task.source!r}: no frames decoded")
            os.replace(staged, final)
            return sink.frames, stats.corrupt
        finally:
            staged.unlink(missing_ok=True)
            source.close()


# --------------------------------------------------------------------------- executors
class Executor(Protocol):
    """Runs tasks on workers and yields their results as they finish (any order)."""

    workers: int

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskResult]: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """One worker in this process: no start-up cost, for one GPU or a small CPU job."""

    workers = 1

    def __init__(self, checkpoint: Checkpoint, settings: BatchSettings) -> None:
        self._worker = BatchWorker(checkpoint, settings)

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        for task in tasks:
            yield self._worker.convert(task)

    def close(self) -> None:
        pass


_POOL_WORKER: BatchWorker | None = None


def _pool_init(checkpoint: Checkpoint, settings: BatchSettings, devices: Any, worker_cls: type[BatchWorker]) -> None:
    global _POOL_WORKER
    # Each process takes one device from the shared queue: one worker per GPU.
    device = devices.get() if devices is not None else None
    _POOL_WORKER = worker_cls(checkpoint, settings, device=device)


def _pool_convert(task: Task) -> TaskResult:
    if _POOL_WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("pool worker not initialized")
    return _POOL_WORKER.convert(task)


def _spreads_over_gpus(device: str) -> bool:
    """Whether ``device`` means "the GPUs" (one worker each) rather than one chosen device."""
    from ..devices import resolve_device

    return device in ("auto", "cuda") and resolve_device(device).type == "cuda"


def default_workers(device: str = "auto") -> int:
    """One worker per visible GPU; on the CPU, one per two cores (each runs decode, model and encode threads)."""
    import torch

    if _spreads_over_gpus(device):
        return max(1, torch.cuda.device_count())
    return max(1, (os.cpu_count() or 1) // 2)


class LocalPoolExecutor:
    """Worker processes on this machine, each with the model loaded once.

    On CUDA with ``device`` ``auto``/``cuda`` each process gets its own GPU
    (``cuda:0``, ``cuda:1``, ...); on the CPU the cores are split among the workers.
    When a worker process dies, the pool is restarted and the tasks it had not
    finished are tried again (``retries`` more times each; the pool cannot tell
    which task was running, so a queued task spends a try too).

    Args:
        checkpoint: the style.
        settings: conversion settings.
        workers: processes.
        retries: extra tries for a task whose pool broke.
        worker_cls: the worker class (tests inject faults with a subclass).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        settings: BatchSettings,
        workers: int,
        retries: int = 2,
        worker_cls: type[BatchWorker] = BatchWorker,
    ) -> None:
        import torch

        from ..devices import resolve_device

        if workers < 1:
            raise StylizeError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.retries = retries
        self.worker_cls = worker_cls
        self._ctx = multiprocessing.get_context("spawn")  # CUDA and forked torch processes do not mix
        self._devices: list[str] | None = None
        if _spreads_over_gpus(settings.device):
            count = torch.cuda.device_count()
            if workers > count:
                log.warning("%d workers share %d GPUs", workers, count)
            self._devices = [f"cuda:{i % count}" for i in range(workers)]
        elif settings.threads is None and resolve_device(settings.device).type == "cpu":
            settings = dataclasses.replace(settings, threads=max(1, (os.cpu_count() or 1) // workers))
        self._checkpoint, self._settings = checkpoint, settings
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        devices = None
        if self._devices is not None:
            devices = self._ctx.Queue()
            for d in self._devices:
                devices.put(d)
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._ctx,
            initializer=_pool_init,
            initargs=(self._checkpoint, self._settings, devices, self.worker_cls),
        )

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        tries = {t.id: 0 for t in tasks}
        todo = list(tasks)
        while todo:
            self._pool = self._pool or self._start()
            futures: dict[Future[TaskResult], Task] = {self._pool.submit(_pool_convert, t): t for t in todo}
            todo = []
            pending = set(futures)
            broken = False
            while pending:
                try:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self._interrupt_workers()
                    raise
                for fut in finished:
                    task = futures[fut]
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken = True
                        tries[task.id] += 1
                        if tries[task.id] > self.retries:
                            yield TaskResult(task.id, False, f"worker process died (tried {tries[task.id]} times)")
                        else:
                            todo.append(task)
            if broken:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _interrupt_workers(self) -> None:
        """Pass an interrupt on to the worker processes.

        Ctrl-C in a terminal reaches them already (one process group), but SIGTERM or
        SIGHUP sent to this process alone does not, and ``close`` would then wait for
        every file in progress to finish. Interrupted, a worker drops its half-done
        file (nothing is left under a final name) and the next run redoes it.
        """
        # ProcessPoolExecutor has no public list of its processes before Python 3.14.
        processes = getattr(self._pool, "_processes", None) or {}
        for process in list(processes.values()):
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(OSError, ValueError):  # it ended meanwhile
                    os.kill(process.pid, signal.SIGINT)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def import_ray() -> Any:
    """Import Ray, or fail with the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyError("--ray needs Ray: pip install 'stylize-video[ray]'") from exc
    return ray


class RayExecutor:
    """One Ray actor per worker, each holding the loaded model; Ray places, restarts and retries them.

    With GPUs in the cluster (and ``device`` not ``cpu``) every actor asks for
    ``num_gpus=1``, so Ray runs as many as there are GPUs; otherwise each asks for
    ``threads`` CPUs. When an actor's process or node dies, Ray restarts it
    (``max_restarts``) and reruns the task it had (``max_task_retries``); after
    that the task is reported failed with Ray's error and the batch goes on.

    Args:
        checkpoint: the style (put into Ray's object store once, so nodes need no copy of the file).
        settings: conversion settings.
        address: cluster to join (None: the one ``ray.init`` already joined, else a local one).
        workers: actors (None: GPUs in the cluster, else CPUs / threads per worker).
        retries: restarts per actor and retries per task after a worker death.
        worker_cls: the actor class (a :class:`BatchWorker`; tests inject faults with a subclass).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        settings: BatchSettings,
        *,
        address: str | None = None,
        workers: int | None = None,
        retries: int = 2,
        worker_cls: type[BatchWorker] = BatchWorker,
    ) -> None:
        ray = import_ray()
        # A Ray started here (a local one, or a connection to ADDRESS) is ours to shut down.
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address or None, log_to_driver=False)
        options, workers, settings = ray_actor_plan(ray.cluster_resources(), settings, workers)
        self.workers = workers
        self._ray = ray
        actor_cls = ray.remote(worker_cls).options(max_restarts=retries, max_task_retries=retries, **options)
        # Held for the executor's life: a restarted actor reads its constructor arguments again.
        self._checkpoint_ref = ray.put(checkpoint)
        # Ray sets CUDA_VISIBLE_DEVICES per actor, so "auto" is the GPU it was given.
        self._actors = [actor_cls.remote(self._checkpoint_ref, settings) for _ in range(workers)]
        log.info("ray: %d workers (%s)", workers, options)

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskResult]:
        ray = self._ray
        todo = list(reversed(tasks))
        idle = list(self._actors)
        running: dict[Any, tuple[Task, Any]] = {}
        while todo or running:
            # Hand the next file to a free actor: long files don't hold up short ones.
            while todo and idle:
                task, actor = todo.pop(), idle.pop()
                running[actor.convert.remote(task)] = (task, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            task, actor = running.pop(done[0])
            idle.append(actor)
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the worker died more often than Ray retried it
                yield TaskResult(task.id, False, f"worker lost: {_first_line(exc)}")

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray:
            self._ray.shutdown()


def ray_actor_plan(
    resources: dict[str, float], settings: BatchSettings, workers: int | None = None
) -> tuple[dict[str, Any], int, BatchSettings]:
    """Actor resource options, actor count and worker settings for a cluster's ``resources``.

    GPUs present (and ``device`` not ``cpu``): one GPU and one CPU per actor, one
    actor per GPU. Otherwise ``threads`` (default 1) CPUs per actor, as many actors
    as fit, each on the CPU.
    """
    gpus = int(resources.get("GPU", 0))
    if gpus > 0 and settings.device != "cpu":
        return {"num_gpus": 1, "num_cpus": 1}, workers or gpus, settings
    threads = settings.threads or 1
    n = workers or max(1, int(resources.get("CPU", 1)) // threads)
    return {"num_cpus": threads}, n, dataclasses.replace(settings, threads=threads, device="cpu")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------- manifest + report
@dataclass
class FileReport:
    """The outcome for one input file."""

    input: str
    output: str
    status: Status
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0  # summed worker time over the file's tasks
    segments: int = 1


@dataclass
class BatchReport:
    """Every file's outcome and the wall time of the batch."""

    files: list[FileReport] = field(default_factory=list)
    wall: float = 0.0
    workers: int = 0  # 0: nothing needed converting

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        """Counts on one line, then one line per failed file with its reason."""
        lines = [
            f"{self.count('done')} done, {self.count('failed')} failed, {self.count('skipped')} skipped "
            f"in {self.wall:.1f}s with {self.workers} worker(s)"
        ]
        lines += [f"failed: {f.input}: {f.reason}" for f in self.failed]
        return "\n".join(lines)


class Manifest:
    """``manifest.jsonl``: one JSON object per converted or failed file, appended as files finish."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        """All records, oldest first (a torn last line from a crash is ignored)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: ignoring a damaged line", self.path)
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """The newest record per output path."""
        return {r["output"]: r for r in self.records() if "output" in r}

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


# --------------------------------------------------------------------------- the batch
@dataclass
class _FilePlan:
    job: FileJob
    tasks: list[Task]
    seg_dir: Path | None = None
    results: dict[str, TaskResult] = field(default_factory=dict)
    #: Every segment of the file, in order (done earlier or not): what gets joined.
    parts: list[Path] = field(default_factory=list)


class BatchRunner:
    """Plan a batch, run its tasks on an executor, join segments, keep the manifest.

    Args:
        jobs: from :func:`plan_jobs`.
        settings: conversion settings.
        out_dir: the output folder (manifest and segment scratch space live there).
        checkpoint: the loaded style (None: loaded from ``settings.style``).
        segment_seconds: split files longer than about 1.5x this at keyframes (None: never).
        preroll_frames: with smoothing on, frames before each segment start that are
            stylized and smoothed but not written, so the smoother is warm at the join
            (it would restart there otherwise); costs up to one extra GOP of decoding.
        overwrite: redo outputs that exist.
        progress: show a progress bar (over tasks, for the whole cluster).
    """

    def __init__(
        self,
        jobs: Sequence[FileJob],
        settings: BatchSettings,
        out_dir: str | os.PathLike[str],
        *,
        checkpoint: Checkpoint | None = None,
        segment_seconds: float | None = None,
        preroll_frames: int = 8,
        overwrite: bool = False,
        progress: bool = False,
    ) -> None:
        if preroll_frames < 0:
            raise StylizeError(f"pre-roll must be >= 0 frames, got {preroll_frames}")
        if segment_seconds is not None and segment_seconds <= 0:
            raise StylizeError(f"segment length must be > 0 s, got {segment_seconds}")
        self.jobs = list(jobs)
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.checkpoint = checkpoint or load_checkpoint(settings.style)
        style_path = self.checkpoint.path
        self.style_sha256 = file_sha256(style_path) if style_path is not None else ""
        self.segment_seconds = segment_seconds
        # Without smoothing every frame is stylized alone: pre-roll would change nothing.
        self.preroll = preroll_frames if settings.smooth != "none" else 0
        self.overwrite = overwrite
        self.progress = progress
        self.manifest = Manifest(self.out_dir / MANIFEST_NAME)
        record = {"style_sha256": self.style_sha256, **settings.output_record()}
        self.settings_key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]

    def run(self, make_executor: Callable[[], Executor]) -> BatchReport:
        """Convert every job that is not done yet; never raises for one bad file.

        Args:
            make_executor: builds the executor, only when there is work (a rerun
                with everything done starts no workers); closed at the end.
        """
        t0 = time.perf_counter()
        report = BatchReport()
        plans, early = self._plan()
        report.files.extend(early)
        tasks = {t.id: p for p in plans for t in p.tasks}
        pending = {id(p): len(p.tasks) for p in plans}
        ordered = sorted((t for p in plans for t in p.tasks), key=_task_cost, reverse=True)
        for plan in plans:
            if not plan.tasks:  # every segment was converted by an earlier run
                report.files.append(self._finish(plan))
        if ordered:
            executor = make_executor()
            report.workers = executor.workers
            bar = self._bar(len(ordered))
            try:
                for result in executor.run(ordered):
                    plan = tasks[result.id]
                    plan.results[result.id] = result
                    if not result.ok:
                        # On a cluster the worker (host:pid:device) says where to look.
                        where = f" (worker {result.worker})" if result.worker else ""
                        log.warning("%s: %s%s", plan.job.name, result.reason, where)
                    pending[id(plan)] -= 1
                    if pending[id(plan)] == 0:
                        report.files.append(self._finish(plan))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"{report.count('failed')} failed")
            finally:
                if bar is not None:
                    bar.close()
                executor.close()
        report.files.sort(key=lambda f: f.input)
        report.wall = time.perf_counter() - t0
        return report

    def _bar(self, total: int) -> Any:
        if not self.progress or total == 0:
            return None
        import sys

        from tqdm import tqdm

        return tqdm(total=total, unit="task", dynamic_ncols=True, disable=None, file=sys.stderr)

    def _plan(self) -> tuple[list[_FilePlan], list[FileReport]]:
        latest = self.manifest.latest()
        plans: list[_FilePlan] = []
        early: list[FileReport] = []  # skipped, or failed before any work
        for job in self.jobs:
            if job.output.exists() and not self.overwrite:
                early.append(self._skip(job, latest.get(str(job.output))))
                continue
            try:
                plans.append(self._plan_file(job))
            except StylizeError as exc:
                report = FileReport(str(job.source), str(job.output), "failed", str(exc))
                self._record(report)
                early.append(report)
        return plans, early

    def _skip(self, job: FileJob, record: dict[str, Any] | None) -> FileReport:
        if record is not None and record.get("status") == "done":
            same = record.get("settings_key") == self.settings_key
            reason = "done earlier" if same else "exists, made with other settings (--overwrite to redo)"
        else:
            reason = "exists (not made by a batch here; --overwrite to redo)"
        return FileReport(str(job.source), str(job.output), "skipped", reason)

    def _plan_file(self, job: FileJob) -> _FilePlan:
        splits = keyframe_splits(job.source, self.segment_seconds) if self.segment_seconds else []
        src = str(job.source)
        if not splits:
            return _FilePlan(job, [Task(f"{job.output}", src, str(job.output))])
        # The split points and the input's size/mtime are part of the key: segments cut
        # at other points (another --segment-seconds) or from an older version of the
        # input must never be taken as done.
        stat = job.source.stat()
        key = f"{job.source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.settings_key}|{self.preroll}|{splits}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        seg_dir = self.out_dir / SEGMENTS_DIR / f"{job.output.stem}-{digest}"
        seg_dir.mkdir(parents=True, exist_ok=True)
        bounds = [None, *splits, None]
        tasks = []
        for i in range(len(bounds) - 1):
            part = seg_dir / f"{i:05d}{self.settings.extension}"
            task = Task(f"{job.output}#{i}", src, str(part), bounds[i], bounds[i + 1], self.preroll, audio=False)
            tasks.append(task)
        # Resume: segments finished by an earlier run are already in place.
        done = {t.id for t in tasks if Path(t.output).exists()}
        return _FilePlan(
            job,
            [t for t in tasks if t.id not in done],
            seg_dir,
            {i: TaskResult(i, True, "resumed") for i in done},
            [Path(t.output) for t in tasks],
        )

    def _finish(self, plan: _FilePlan) -> FileReport:
        job = plan.job
        results = list(plan.results.values())
        failures = [r.reason for r in results if not r.ok]
        report = FileReport(
            str(job.source),
            str(job.output),
            "done",
            frames=sum(r.frames for r in results),
            seconds=sum(r.seconds for r in results),
            segments=max(1, len(results)),
        )
        if failures:
            report.status, report.reason = "failed", failures[0]
        elif plan.seg_dir is not None:
            parts = plan.parts
            try:
                # join_segments drops the audio itself when the source has none.
                join_segments(parts, job.output, str(job.source))
            except StylizeError as exc:
                report.status, report.reason = "failed", f"joining segments: {exc}"
            else:
                for p in parts:
                    p.unlink(missing_ok=True)
                _rmdir_quiet(plan.seg_dir)
        corrupt = sum(r.corrupt for r in results)
        if report.status == "done" and corrupt:
            report.reason = f"{corrupt} corrupt packets skipped"
        self._record(report)
        return report

    def _record(self, report: FileReport) -> None:
        record = dataclasses.asdict(report)
        record.update(
            input_path=str(Path(report.input).resolve()),
            segment_preroll=self.preroll if report.segments > 1 else None,
            style=self.settings.style,
            style_path=str(self.checkpoint.path.resolve()) if self.checkpoint.path is not None else None,
            style_name=self.checkpoint.meta.name,
            style_sha256=self.style_sha256,
            settings=self.settings.output_record(),
            settings_key=self.settings_key,
            finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        self.manifest.append(record)


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()
        path.parent.rmdir()  # .segments itself, once empty
    except OSError:
        pass  # other files still use it


def _task_cost(task: Task) -> int:
    """Ordering key: big inputs first, so the last file to finish is a short one."""
    try:
        return os.path.getsize(task.source)
    except OSError:
        return 0


def executor_factory(
    checkpoint: Checkpoint,
    settings: BatchSettings,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    use_ray: bool = False,
) -> Callable[[], Executor]:
    """What builds the executor the CLI options ask for: Ray, a local pool, or this process for one worker."""

    def make() -> Executor:
        if use_ray:
            return RayExecutor(checkpoint, settings, address=ray_address, workers=workers)
        n = workers or default_workers(settings.device)
        if n == 1:
            return InProcessExecutor(checkpoint, settings)
        return LocalPoolExecutor(checkpoint, settings, n)

    return make
