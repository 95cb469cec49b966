"""Command-line entry point: ``stylize-video SUBCOMMAND ...``.

The only place that prints errors and picks exit codes: library code raises
:class:`StylizeError` subclasses, ``main`` turns them into one line on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import __version__

# Everything else is imported inside main(): a Ctrl-C while it loads is then caught
# there and ends quietly, instead of a traceback from the module's import.
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

#: Subcommand modules under ``stylize_video.commands``, in ``--help`` order.
COMMANDS = [
    "image",
    "styles",
    "sheet",
    "train",
    "learn_style",
    "distill_styles",
    "optimize",
    "evaluate_style",
    "run",
    "batch",
    "evaluate",
    "export",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(
        prog="stylize-video",
        description="Real-time neural style transfer for webcams, video files and images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    seen: list[int] = []
    previous = None
    try:
        previous = _record_interrupts(seen)
        return _main(argv, seen)
    except KeyboardInterrupt:
        return _interrupted(quiet_from_now=argv is None)
    except Exception as exc:
        # Ctrl-C in the middle of importing a C extension (torch, cv2) may surface as the
        # import's own error, or as a later one from a half-imported module (numpy without
        # its attributes) once a library swallowed the KeyboardInterrupt. Either way the
        # user pressed Ctrl-C: say so, not a traceback (-vv shows what broke).
        if _caused_by_interrupt(exc) or seen:
            import logging

            logging.getLogger(__name__).debug("after Ctrl-C", exc_info=exc)
            return _interrupted(quiet_from_now=argv is None)
        raise
    finally:
        if argv is None:
            _ignore_interrupts_from_now()
        elif previous is not None:
            _restore_interrupts(previous)


#: Ctrl-Cs this close after one that was raised are the same impatient press: raising
#: again would cut into the clean-up the first one started (between catching it and
#: holding further ones, see ``runtime.pipeline._deferred_sigint``).
_BURST_S = 0.5

#: (file, function) of the weakref callbacks a Ctrl-C lands in during imports (an import
#: lock's clean-up): an exception raised there would be printed and dropped.
_WEAKREF_CALLBACKS = {("<frozen importlib._bootstrap>", "cb")}


def _record_interrupts(seen: list[int]) -> object:
    """Ctrl-C still raises KeyboardInterrupt, and is noted in ``seen``; returns the previous handler."""
    import signal
    import threading
    import time

    if threading.current_thread() is not threading.main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if current is not signal.default_int_handler:
        return None  # ignored (a background job) or someone else's: leave it alone

    raised: list[float] = []

    def note(signum: int, frame: object) -> None:
        seen.append(signum)
        now = time.monotonic()
        if raised and now - raised[-1] < _BURST_S:
            return
        code = getattr(frame, "f_code", None)
        if code is not None and (code.co_filename, code.co_name) in _WEAKREF_CALLBACKS:
            # An exception raised in a weakref callback is only printed ("Exception ignored
            # ... Traceback"), never seen: ask again in a moment, outside the callback.
            import _thread

            threading.Timer(0.01, _thread.interrupt_main).start()
            return
        raised.append(now)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    return current


def _ignore_interrupts_from_now() -> None:
    """As the process's entry point, once the command is over: a Ctrl-C while Python
    exits (a late one of a burst, held while the outputs were finalized) must neither
    print a traceback nor turn the exit status into a death by SIGINT."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore_interrupts(previous: object) -> None:
    import signal

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # _interrupted silenced it for good
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]


def _main(argv: Sequence[str] | None, seen: Sequence[int] = ()) -> int:
    import logging

    from .errors import StylizeError
    from .interrupts import stop_signals_as_interrupt

    parser = build_parser()  # imports every command (torch among them): Ctrl-C is likely here
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        # Bare `stylize-video` does something useful: camera in a window, else a demo file.
        argv = ["run", "--default"]
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    if seen:
        # A Ctrl-C during the imports that a library swallowed (torch's start-up does):
        # the user still asked to stop, so do not start the command.
        raise KeyboardInterrupt
    try:
        # SIGTERM/SIGHUP (timeout, kill, a closed terminal) finish like Ctrl-C: outputs
        # finalized, training state saved.
        with stop_signals_as_interrupt():
            return int(args.func(args) or 0)
    except StylizeError as exc:
        from .text import printable

        # Messages can quote file names and metadata: never let them drive the terminal.
        print(f"stylize-video: error: {printable(str(exc), limit=None)}", file=sys.stderr)
        return EXIT_ERROR


def _interrupted(quiet_from_now: bool) -> int:
    """Say "interrupted" once. As the process's own entry point (``quiet_from_now``), further
    Ctrl-Cs are ignored from here: the run is over, and a second one must not print a
    traceback while Python exits."""
    import signal
    import threading

    while True:
        try:
            if quiet_from_now and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("stylize-video: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:  # a second Ctrl-C before the handler above was set
            continue


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
