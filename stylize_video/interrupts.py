"""Signals that stop a run the way Ctrl-C does.

``timeout``, ``kill``, ``docker stop`` and systemd end a process with SIGTERM, and
closing its terminal sends SIGHUP. Left at their defaults these kill the process at
once: a video being written loses everything (it sits under a temporary name until it
is finalized) and a training run loses the steps since its last periodic save. The
CLI turns them into ``KeyboardInterrupt``, so every path that already handles Ctrl-C
(finalize the outputs, save the training state) handles them too. Worker processes
of ``batch`` do not get a signal sent to the parent alone: the pool passes it on.
A stop signal that is ignored when the CLI starts (``nohup`` ignores SIGHUP) stays
ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: Ctrl-C plus the signals treated like it (those this platform has).
STOP_SIGNALS: tuple[int, ...] = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _handled_signals() -> list[int]:
    """The stop signals to take over: not those set to be ignored (``nohup`` ignores
    SIGHUP so a job outlives its terminal; that choice stands)."""
    return [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C.

    Only the main thread can set handlers; elsewhere this does nothing. The previous
    handlers come back on exit (the CLI's ``main`` is also called in-process by tests).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [(s, signal.signal(s, _raise_interrupt)) for s in _handled_signals() if s != signal.SIGINT]
    try:
        yield
    finally:
        for s, handler in previous:
            signal.signal(s, handler)


def install_handler(handler: Any) -> list[tuple[int, Any]]:
    """Set ``handler`` for every stop signal not ignored; returns what to restore with :func:`restore`."""
    return [(s, signal.signal(s, handler)) for s in _handled_signals()]


def restore(previous: list[tuple[int, Any]]) -> None:
    """Put back the handlers :func:`install_handler` replaced."""
    for s, handler in previous:
        signal.signal(s, handler)
