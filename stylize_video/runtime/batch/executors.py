"""Where a batch's tasks run: in this process, on a local process pool, or on Ray actors.

Every executor takes tasks and yields :class:`TaskResult` as they finish (any
order); a worker that dies costs a retry, then a failed result, never the batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from ...errors import DependencyError, StylizeError
from ...models.checkpoint import Checkpoint
from .plan import BatchSettings, Task, TaskResult
from .worker import BatchWorker

log = logging.getLogger(__name__)


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
