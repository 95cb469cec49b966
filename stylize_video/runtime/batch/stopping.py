"""Stopping a batch cleanly: stop signals as a request, and workers that never outlive their batch.

A stop (Ctrl-C, SIGTERM, SIGHUP) must not be an exception raised at a random point
of the batch process: raised between a worker's last rename and the manifest line,
it would leave a finished output that no record mentions. So while a batch runs,
the signals only *request* a stop (:class:`StopRequest`); the executors see it
between results, start no further file, tell the workers to drop the files they
are converting, and still hand back every result that finishes meanwhile, which
the runner records. A second stop signal (or a worker that ignores the request
for :data:`STOP_GRACE_S`) ends the workers at once; their partial files are removed
at the end of the run.

Pool workers are tied to the batch process: on Linux the kernel kills them when it
dies, even by SIGKILL (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread in
each worker notices that its parent is gone, drops the file in progress and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ...interrupts import install_handler, restore

log = logging.getLogger(__name__)

#: How long workers get to drop their files after a stop before they are killed.
STOP_GRACE_S = 5.0
#: How long an orphaned worker gets to discard its file before it exits regardless.
ORPHAN_GRACE_S = 2.0
#: Poll interval of the waits that watch for a stop, and of the workers' watchdogs.
POLL_S = 0.1

_PR_SET_PDEATHSIG = 1


class StopRequest:
    """A request to stop a batch, set by a stop signal or by :meth:`request`.

    Signal handlers only count (no locks taken: a handler runs between two bytecodes
    of the main thread, which may hold any lock at that moment); code that waits
    polls :attr:`requested`.
    """

    def __init__(self) -> None:
        self.count = 0
        self.since: float | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.count > 0

    @property
    def urgent(self) -> bool:
        """A second request, or the first one long ago: stop waiting for workers to wind down."""
        return self.count > 1 or (self.since is not None and time.monotonic() - self.since > STOP_GRACE_S)

    def request(self) -> None:
        """Ask for a stop (again: ask for it to be immediate)."""
        if self.count == 0:
            self.since = time.monotonic()
        self.count += 1

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.count == 0
        self.request()
        if first:
            log.warning("stopping: no new file starts; files in progress are dropped (again to stop at once)")
        else:
            log.warning("stopping now")

    @contextlib.contextmanager
    def catching_signals(self) -> Iterator[StopRequest]:
        """Within the block, Ctrl-C, SIGTERM and SIGHUP call :meth:`request` instead of raising.

        Only the main thread can set handlers; elsewhere the block changes nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = install_handler(self._on_signal)
        try:
            yield self
        finally:
            restore(previous)


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Processes started in the block begin with Ctrl-C ignored.

    A terminal's Ctrl-C reaches every process of its group: a worker still importing
    torch would die with a traceback on the user's terminal. Workers leave stopping
    to the batch process, which tells them. An ignored disposition is the only one a
    child keeps across ``exec``; the parent's own Ctrl-C is held (blocked) meanwhile,
    not lost, and delivered when the block ends.
    """
    sigint = signal.SIGINT
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield  # Windows: no inherited dispositions to set
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {sigint})
    previous = signal.signal(sigint, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sigint, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Linux: have the kernel send ``signum`` to this process when its parent dies.

    The kernel ties this to the parent *thread* that created the process, not the
    parent process: the pool starts its workers from the thread that submits tasks
    (``ProcessPoolExecutor.submit`` with the spawn method; its manager thread starts
    processes only with ``max_tasks_per_child``, unused here), so callers arm it only
    when that thread is the main thread, which lives as long as the process.

    Returns:
        Whether it was armed (False on other systems or when ``prctl`` fails).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ParentWatchdog(threading.Thread):
    """A worker's guard: stops its conversion when the batch asks, exits when the batch is gone.

    Polls every :data:`POLL_S`: the shared stop event (set by the batch process)
    turns into ``on_stop()``; a parent PID other than ``parent_pid`` (the batch process
    died; the worker was adopted) also calls ``on_stop()``, gives the conversion
    :data:`ORPHAN_GRACE_S` to discard its file, runs ``discard()`` for whatever is
    left and ends the process. The portable half of what ``PR_SET_PDEATHSIG`` does
    on Linux, and the whole of it elsewhere.
    """

    def __init__(
        self,
        parent_pid: int,
        stop_event: Any,
        on_stop: Callable[[], None],
        busy: Callable[[], bool],
        discard: Callable[[], None],
    ) -> None:
        super().__init__(name="stylize-batch-watchdog", daemon=True)
        self.parent_pid = parent_pid
        self.stop_event = stop_event
        self.on_stop, self.busy, self.discard = on_stop, busy, discard

    def run(self) -> None:
        stopped = False
        while True:
            if os.getppid() != self.parent_pid:
                self._orphaned()
                return
            if not stopped and self.stop_event is not None and self.stop_event.is_set():
                stopped = True
                self.on_stop()
            time.sleep(POLL_S)

    def _orphaned(self) -> None:
        self.on_stop()
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while self.busy() and time.monotonic() < deadline:
            time.sleep(POLL_S / 2)
        with contextlib.suppress(Exception):  # exiting matters more than tidying up
            self.discard()
        os._exit(1)
