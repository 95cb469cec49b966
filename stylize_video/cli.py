"""Command-line entry point: ``stylize-video SUBCOMMAND ...``.

The only place that prints errors and picks exit codes: library code raises
:class:`StylizeError` subclasses, ``main`` turns them into one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import StylizeError
from .interrupts import stop_signals_as_interrupt

#: Subcommand modules under ``stylize_video.commands``, in ``--help`` order.
COMMANDS = [
    "image",
    "styles",
    "sheet",
    "train",
    "optimize",
    "evaluate_style",
    "distill_styles",
    "run",
    "batch",
    "evaluate",
    "export",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def configure_thread_defaults() -> None:
    """Make OpenMP threads yield their core when idle; call before torch is imported.

    With the default (spinning) wait policy, torch's intra-op threads on a 2-core
    machine collapse as soon as another process keeps a core busy: each parallel
    region waits for a spinning thread the OS has descheduled. Measured with the torch
    backend, lite 640x480 (benchmarks/results/contention*.md, a shared machine): two
    busy processes 0.4 fps spinning vs 7.6 passive; with only the machine's other jobs
    running 1.9 vs 16.6. (OpenVINO, the CPU default when installed, does not use
    OpenMP.) A value the user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def build_parser() -> argparse.ArgumentParser:
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
    configure_thread_defaults()  # before build_parser: the command modules import torch
    parser = build_parser()
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
    except KeyboardInterrupt:
        print("stylize-video: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
