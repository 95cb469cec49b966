"""Where a batch's tasks run: in this process, on a local process pool, or on Ray actors.

Every executor takes tasks and yields :class:`TaskResult` as they finish (any
order); a worker that dies costs a retry, then a failed result, never the batch.
Given a :class:`StopRequest`, an executor starts no task once it is set, drops the
ones in progress and still yields every result that finishes meanwhile (those
never started or dropped come back with ``stopped``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from ...errors import DependencyError, StylizeError
from ...models.checkpoint import Checkpoint
from .plan import BatchSettings, Task, TaskResult
from .stopping import (
    POLL_S,
    STOP_GRACE_S,
    ParentWatchdog,
    StopRequest,
    children_ignore_sigint,
    set_parent_death_signal,
)
from .style import BatchStyle
from .worker import BatchWorker

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs tasks on workers and yields their results as they finish (any order)."""

    workers: int

    def run(self, tasks: Sequence[Task], stop: StopRequest | None = None) -> Iterator[TaskResult]: ...

    def close(self) -> None: ...


def _stopped(task: Task, reason: str = "not started: the batch is stopping") -> TaskResult:
    return TaskResult(task.id, False, reason, stopped=True)


class InProcessExecutor:
    """One worker in this process: no start-up cost, for one GPU or a small CPU job.

    With a stop request, each task runs in a helper thread while this one watches
    for the stop: a stop signal always reaches the batch's handler, never the
    pipeline's own (which holds Ctrl-C while it finalizes a file and would swallow it).
    """

    workers = 1

    def __init__(self, checkpoint: Checkpoint | BatchStyle, settings: BatchSettings) -> None:
        self._worker = BatchWorker(checkpoint, settings)

    def run(self, tasks: Sequence[Task], stop: StopRequest | None = None) -> Iterator[TaskResult]:
        for task in tasks:
            if stop is None:
                yield self._worker.convert(task)
                continue
            if stop.requested:
                return
            result = self._convert_watched(task, stop)
            if result is None:  # told twice: stop waiting (its partial file is removed by the next run)
                return
            yield result

    def _convert_watched(self, task: Task, stop: StopRequest) -> TaskResult | None:
        box: list[TaskResult | BaseException] = []

        def target() -> None:
            import torch

            device = self._worker.stylizer.device
            # A new thread starts on cuda:0: keep the worker's GPU current, as in the calling thread.
            on_device = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
            try:
                with on_device:
                    box.append(self._worker.convert(task))
            except BaseException as exc:  # handed to the waiting thread
                box.append(exc)

        thread = threading.Thread(target=target, name="stylize-batch-convert", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(POLL_S)
            if stop.requested:
                self._worker.request_stop()
                if stop.urgent:
                    return None
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def close(self) -> None:
        pass


_POOL_WORKER: BatchWorker | None = None
_POOL_STOP: Any = None  # the pool's shared stop event


def _pool_init(
    checkpoint: Checkpoint | BatchStyle,
    settings: BatchSettings,
    devices: Any,
    worker_cls: type[BatchWorker],
    parent_pid: int | None = None,
    stop_event: Any = None,
    death_signal: bool = False,
) -> None:
    global _POOL_WORKER, _POOL_STOP
    # First of all, before the slow model load: die with the batch process. The
    # kernel does it on Linux (even when the batch is SIGKILLed); the watchdog below
    # does it everywhere, a poll interval later.
    if death_signal:
        set_parent_death_signal(signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the batch died before the death signal was armed
    # Stopping is the batch process's decision (a terminal's Ctrl-C reaches it too):
    # it tells the workers through the stop event.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each process takes one device from the shared queue: one worker per GPU.
    device = devices.get() if devices is not None else None
    worker = worker_cls(checkpoint, settings, device=device)
    _POOL_WORKER, _POOL_STOP = worker, stop_event
    if parent_pid is not None:
        ParentWatchdog(
            parent_pid, stop_event, worker.request_stop, lambda: worker.busy, worker.discard_partials
        ).start()


def _pool_convert(task: Task) -> TaskResult:
    if _POOL_WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("pool worker not initialized")
    if _POOL_STOP is not None and _POOL_STOP.is_set():
        # Queued ahead in the pool's call queue (out of reach of cancel()): never start it.
        _POOL_WORKER.request_stop()
    return _POOL_WORKER.convert(task)


def _spreads_over_gpus(device: str) -> bool:
    """Whether ``device`` means "the GPUs" (one worker each) rather than one chosen device."""
    from ...devices import resolve_device

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

    The workers die with this process, even when it is killed with SIGKILL (see
    :mod:`.stopping`), and on a stop request they drop their files within a frame;
    one that does not within :data:`STOP_GRACE_S` (or on a second request) is killed.

    Args:
        checkpoint: the style, or a blend as a :class:`BatchStyle`.
        settings: conversion settings.
        workers: processes.
        retries: extra tries for a task whose pool broke.
        worker_cls: the worker class (tests inject faults with a subclass).
    """

    def __init__(
        self,
        checkpoint: Checkpoint | BatchStyle,
        settings: BatchSettings,
        workers: int,
        retries: int = 2,
        worker_cls: type[BatchWorker] = BatchWorker,
    ) -> None:
        import torch

        from ...devices import resolve_device

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
        # One for the executor's life: pools restarted after a worker death share it.
        self._stop_event = self._ctx.Event()

    def _start(self) -> ProcessPoolExecutor:
        devices = None
        if self._devices is not None:
            devices = self._ctx.Queue()
            for d in self._devices:
                devices.put(d)
        # The workers are started by this thread (in ``submit``); the kernel's death
        # signal follows the thread that started a process, so it is armed only when
        # that is the main thread (the watchdog covers every other case).
        main = threading.current_thread() is threading.main_thread()
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._ctx,
            initializer=_pool_init,
            initargs=(
                self._checkpoint, self._settings, devices, self.worker_cls, os.getpid(), self._stop_event, main,
            ),
        )  # fmt: skip

    def run(self, tasks: Sequence[Task], stop: StopRequest | None = None) -> Iterator[TaskResult]:
        stop = stop or StopRequest()  # never set from outside: one code path
        tries = {t.id: 0 for t in tasks}
        todo = list(tasks)
        while todo:
            if stop.requested:
                yield from (_stopped(t) for t in todo)
                return
            self._pool = self._pool or self._start()
            with children_ignore_sigint():  # submit starts the worker processes
                futures: dict[Future[TaskResult], Task] = {self._pool.submit(_pool_convert, t): t for t in todo}
            todo = []
            pending = set(futures)
            broken = False
            stopping = killed = False
            while pending:
                if stop.requested and not stopping:
                    stopping = True
                    self._stop_event.set()  # workers drop their files and start no other
                    for fut in pending:
                        fut.cancel()  # those not handed to a worker yet
                if stopping and stop.urgent and not killed:
                    killed = True
                    self._kill_workers()
                try:
                    finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # no StopRequest handler here (not the main thread, or no runner)
                    self._stop_event.set()
                    raise
                for fut in finished:
                    task = futures[fut]
                    if fut.cancelled():
                        yield _stopped(task)
                        continue
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken = True
                        tries[task.id] += 1
                        if stopping:
                            yield _stopped(task, "dropped: the batch is stopping")
                        elif tries[task.id] > self.retries:
                            yield TaskResult(task.id, False, f"worker process died (tried {tries[task.id]} times)")
                        else:
                            todo.append(task)
            if broken:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _processes(self) -> list[Any]:
        # ProcessPoolExecutor has no public list of its processes before Python 3.14.
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _kill_workers(self) -> None:
        """End the workers at once (their partial files stay until the runner removes them)."""
        for process in self._processes():
            with contextlib.suppress(OSError, ValueError, AttributeError):  # it ended meanwhile
                process.kill()

    def close(self) -> None:
        """Stop the workers: those still converting drop their files; one that hangs is killed."""
        if self._pool is None:
            return
        self._stop_event.set()
        processes = self._processes()
        self._pool.shutdown(wait=False, cancel_futures=True)
        # The pool's own thread joins (reaps) the processes: watch their sentinels
        # instead, so that no process is waited for twice or signalled once reaped.
        stragglers = _wait_for_exit(processes, STOP_GRACE_S)
        for process in stragglers:
            log.warning("worker process %s did not stop; killing it", process.pid)
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        _wait_for_exit(stragglers, 1.0)  # dead before the runner looks for their partial files
        self._pool = None


def _wait_for_exit(processes: Sequence[Any], timeout: float) -> list[Any]:
    """Wait up to ``timeout`` s for ``processes`` to end; returns those still running."""
    from multiprocessing.connection import wait as wait_ready

    running = {p.sentinel: p for p in processes}
    deadline = time.monotonic() + timeout
    while running:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for ended in wait_ready(list(running), timeout=left):
            running.pop(ended, None)  # type: ignore[call-overload]
    return list(running.values())


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
        checkpoint: the style or blend (put into Ray's object store once, so nodes need no copy of the files).
        settings: conversion settings.
        address: cluster to join (None: the one ``ray.init`` already joined, else a local one).
        workers: actors (None: GPUs in the cluster, else CPUs / threads per worker).
        retries: restarts per actor and retries per task after a worker death.
        worker_cls: the actor class (a :class:`BatchWorker`; tests inject faults with a subclass).
    """

    def __init__(
        self,
        checkpoint: Checkpoint | BatchStyle,
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

    def run(self, tasks: Sequence[Task], stop: StopRequest | None = None) -> Iterator[TaskResult]:
        ray = self._ray
        stop = stop or StopRequest()
        todo = list(reversed(tasks))
        idle = list(self._actors)
        running: dict[Any, tuple[Task, Any]] = {}
        while todo or running:
            if stop.requested:
                # No new file; those running may still finish (and are recorded) until
                # the stop turns urgent, then the actors go (their partial files are
                # removed by a later run on their machine, or once stale).
                yield from (_stopped(t) for t in reversed(todo))
                todo = []
                if stop.urgent:
                    self.close()
                    yield from (_stopped(t, "dropped: the batch is stopping") for t, _ in running.values())
                    return
            # Hand the next file to a free actor: long files don't hold up short ones.
            while todo and idle:
                task, actor = todo.pop(), idle.pop()
                running[actor.convert.remote(task)] = (task, actor)
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            if not done:
                continue
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
            self._owns_ray = False
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


def executor_factory(
    checkpoint: Checkpoint | BatchStyle,
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
