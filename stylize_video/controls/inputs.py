"""Producers that feed the live controls from outside the pipeline: the terminal and signals.

A stdin reader thread (:func:`start_stdin_reader`) applies typed commands, POSIX
signals (:func:`install_signal_handlers`) send the commands of :data:`~.commands.COMMANDS`
that name one, and :func:`ignore_background_reads` keeps a background job that reads
its terminal from being stopped. Separate from the state machine and the command
table because it is the only part that touches process-wide things (``sys.stdin``,
signal handlers, a daemon thread); the window and the MJPEG server are producers too,
but they live in ``io``.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from .commands import COMMANDS, parse_command
from .state import LiveControls

# The name the module had before the split, so logging settings for it still apply.
log = logging.getLogger("stylize_video.controls")


def ignore_background_reads() -> Callable[[], None]:
    """Ignore SIGTTIN, so reading the terminal from a background job (``... &``) fails
    with EIO instead of stopping the whole process, outputs and all. Main thread only;
    returns a function that restores the previous handler."""
    signum = getattr(signal, "SIGTTIN", None)
    if signum is None:  # Windows
        return lambda: None
    previous = signal.signal(signum, signal.SIG_IGN)

    def restore() -> None:
        signal.signal(signum, previous)

    return restore


def start_stdin_reader(controls: LiveControls, stream: IO[str] | None = None, retry_s: float = 0.5) -> threading.Thread:
    """Feed ``controls`` from text commands, one a line (see :meth:`LiveControls.apply_command`).

    The thread is a daemon because a blocking ``readline`` on a terminal cannot be
    interrupted portably; it ends by itself at end of input.
    """
    src = sys.stdin if stream is None else stream

    def _run() -> None:
        while True:
            try:
                line = src.readline()
            except OSError:
                # A background job reading its terminal gets EIO (with SIGTTIN ignored, see
                # ignore_background_reads) instead of being stopped: wait for `fg`.
                time.sleep(retry_s)
                continue
            if not line:
                return  # end of input
            if not line.strip():
                continue
            try:
                parse_command(line, controls)(controls)
            except ValueError as exc:
                log.warning("control %r not applied: %s", line.strip(), exc)

    thread = threading.Thread(target=_run, name="stdin-controls", daemon=True)
    thread.start()
    return thread


def install_signal_handlers(controls: LiveControls) -> Callable[[], None]:
    """SIGUSR1 -> next style, SIGUSR2 -> previous style, where the platform has them.

    Must be called from the main thread (Python's rule for signal handlers).
    Returns a function that restores the previous handlers.
    """
    previous: list[tuple[signal.Signals, Any]] = []
    for command in COMMANDS:
        signum = getattr(signal, command.signal or "", None)
        if signum is None:  # no signal, or Windows (which has neither)
            continue
        action = functools.partial(command.parse([], controls), controls)

        def _handler(_signum: int, _frame: object, action: Callable[[], None] = action) -> None:
            controls.defer(action)

        previous.append((signum, signal.signal(signum, _handler)))

    def restore() -> None:
        for signum, old in previous:
            signal.signal(signum, old)

    return restore
