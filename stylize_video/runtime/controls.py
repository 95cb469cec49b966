"""Live controls: requested changes that any sink, stdin or a signal can feed.

Producers (the MJPEG server's ``/control`` endpoint, the window's keys, a stdin
reader, SIGUSR1/SIGUSR2) call the request methods from their own threads; the
pipeline calls :meth:`LiveControls.poll` once per frame and applies what it gets.
Requests are merged between polls (three "next style" presses become a step of
+3, the last strength wins), so a burst of requests never queues up frames.

The pipeline reports what it actually applied with :meth:`LiveControls.report`,
which producers can show (the preview page reads it as JSON).
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlChanges:
    """Changes requested since the previous poll.

    Attributes:
        style_step: how many styles to move forward (negative: back).
        style: a style requested by name; applied before ``style_step``.
        strength: new strength in 0..1, or None for unchanged.
        smoothing: True/False to switch temporal smoothing on/off, None for unchanged.
        snapshot: save the next output frame.
    """

    style_step: int = 0
    style: str | None = None
    strength: float | None = None
    smoothing: bool | None = None
    snapshot: bool = False

    def __bool__(self) -> bool:
        return bool(self.style_step or self.style is not None or self.strength is not None) or (
            self.smoothing is not None or self.snapshot
        )

    def pick_style(self, styles: Iterable[str], current: str) -> str:
        """The style to use after these changes, cycling through ``styles`` (an ordered list).

        An unknown current style counts as position 0; an unknown requested name
        raises :class:`ValueError` naming the choices.
        """
        names = list(styles)
        if not names:
            return current
        if self.style is not None:
            if self.style not in names:
                raise ValueError(f"unknown style {self.style!r} (loaded: {', '.join(names)})")
            current = self.style
        pos = names.index(current) if current in names else 0
        return names[(pos + self.style_step) % len(names)]


@dataclass
class ControlState:
    """What the pipeline reports as applied, for display by control endpoints."""

    style: str = ""
    styles: list[str] = field(default_factory=list)
    strength: float = 1.0
    smoothing: bool = False
    snapshots: int = 0


class LiveControls:
    """Thread-safe mailbox of requested changes, polled by the pipeline once per frame.

    Args:
        smoothing: whether smoothing starts on; ``toggle_smoothing`` flips the
            requested value relative to it and to later reports.
    """

    def __init__(self, smoothing: bool = False) -> None:
        self._lock = threading.Lock()
        self._step = 0
        self._style: str | None = None
        self._strength: float | None = None
        self._smoothing: bool | None = None
        self._snapshot = False
        self._state = ControlState(smoothing=smoothing)
        # Signal handlers run on the main thread between bytecodes, possibly while it
        # holds ``_lock``; they only put here (SimpleQueue.put is reentrant) and poll drains it.
        self._deferred: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    # ------------------------------------------------------------- producers
    def next_style(self) -> None:
        with self._lock:
            self._step += 1

    def prev_style(self) -> None:
        with self._lock:
            self._step -= 1

    def set_style(self, name: str) -> None:
        """Request a style by name; resets pending next/prev steps."""
        with self._lock:
            self._style, self._step = name, 0

    def set_strength(self, value: float) -> None:
        """Request a strength; raises :class:`ValueError` outside 0..1 (so an endpoint can answer 400)."""
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {value}")
        with self._lock:
            self._strength = value

    def set_smoothing(self, on: bool) -> None:
        with self._lock:
            self._smoothing = bool(on)

    def toggle_smoothing(self) -> None:
        with self._lock:
            current = self._state.smoothing if self._smoothing is None else self._smoothing
            self._smoothing = not current

    def snapshot(self) -> None:
        with self._lock:
            self._snapshot = True

    # -------------------------------------------------------------- consumer
    def defer(self, request: Callable[[], None]) -> None:
        """Queue a request method to run at the next poll; safe inside a signal handler."""
        self._deferred.put(request)

    def poll(self) -> ControlChanges:
        """Take every change requested since the last poll (cheap when there are none)."""
        while True:
            try:
                self._deferred.get_nowait()()
            except queue.Empty:
                break
        with self._lock:
            changes = ControlChanges(self._step, self._style, self._strength, self._smoothing, self._snapshot)
            self._step, self._style, self._strength, self._smoothing, self._snapshot = 0, None, None, None, False
        return changes

    def report(self, **applied: Any) -> None:
        """Record what the pipeline applied (fields of :class:`ControlState`)."""
        with self._lock:
            for key, value in applied.items():
                if not hasattr(self._state, key):
                    raise TypeError(f"unknown control state field {key!r}")
                setattr(self._state, key, list(value) if key == "styles" else value)

    def state(self) -> dict[str, Any]:
        """A JSON-ready copy of the last reported state."""
        with self._lock:
            return asdict(self._state)

    # ------------------------------------------------------------- text input
    def apply_command(self, line: str) -> bool:
        """Apply one text command; returns False (and changes nothing) if it is not understood.

        Commands: ``n``/``next``, ``p``/``prev``, ``style NAME``, ``strength X`` (or a
        bare number), ``t``/``smooth`` (toggle), ``smooth on|off``, ``snap``/``snapshot``.
        """
        words = line.strip().split()
        if not words:
            return False
        cmd, args = words[0].lower(), words[1:]
        try:
            if cmd in ("n", "next") and not args:
                self.next_style()
            elif cmd in ("p", "prev") and not args:
                self.prev_style()
            elif cmd == "style" and len(args) == 1:
                self.set_style(args[0])
            elif cmd in ("s", "strength") and len(args) == 1:
                self.set_strength(float(args[0]))
            elif cmd in ("t", "smooth") and not args:
                self.toggle_smoothing()
            elif cmd == "smooth" and len(args) == 1 and args[0] in ("on", "off"):
                self.set_smoothing(args[0] == "on")
            elif cmd in ("snap", "snapshot") and not args:
                self.snapshot()
            elif not args:
                self.set_strength(float(cmd))
            else:
                return False
        except ValueError:
            return False
        return True


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
            if line.strip() and not controls.apply_command(line):
                log.warning("unknown control command %r (try: next, prev, strength 0.5, smooth, snap)", line.strip())

    thread = threading.Thread(target=_run, name="stdin-controls", daemon=True)
    thread.start()
    return thread


def install_signal_handlers(controls: LiveControls) -> Callable[[], None]:
    """SIGUSR1 -> next style, SIGUSR2 -> previous style, where the platform has them.

    Must be called from the main thread (Python's rule for signal handlers).
    Returns a function that restores the previous handlers.
    """
    wanted: list[tuple[str, Callable[[], None]]] = [
        ("SIGUSR1", controls.next_style),
        ("SIGUSR2", controls.prev_style),
    ]
    previous: list[tuple[signal.Signals, Any]] = []
    for name, action in wanted:
        signum = getattr(signal, name, None)
        if signum is None:  # Windows has neither
            continue

        def _handler(_signum: int, _frame: object, action: Callable[[], None] = action) -> None:
            controls.defer(action)

        previous.append((signum, signal.signal(signum, _handler)))

    def restore() -> None:
        for signum, old in previous:
            signal.signal(signum, old)

    return restore
