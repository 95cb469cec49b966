"""Live controls: one vocabulary of commands that window keys, stdin, HTTP and signals feed.

The package sits beside ``io`` and ``runtime`` (it imports neither at import time):
the MJPEG sink (io) and the pipeline (runtime) both use it. One concern a module,
imports pointing one way (``inputs`` -> ``state`` -> ``commands`` -> ``blend``):

* :mod:`.blend`: blend specs (``starry-night=0.7+great-wave=0.3``) to
  (name, weight) pairs and back.
* :mod:`.commands`: :data:`COMMANDS`, the one table (words, window keys, signal,
  argument parser) and its parsers (:func:`parse_command`, :func:`apply_remote`).
  A new control is one entry there.
* :mod:`.state`: :class:`LiveControls`, the thread-safe mailbox the pipeline polls once
  per frame (:class:`ControlChanges`), and what it reports back (:class:`ControlState`).
* :mod:`.inputs`: the stdin reader and the signal handlers.

Blends: ``blend SPEC`` sets a mixture of loaded styles; ``b`` picks the next blend
partner and ``[``/``]`` move 0.1 of weight from the current style to the partner and
back (:meth:`ControlChanges.pick_blend` works out the result); ``morph SECONDS`` sets
how long a style change takes.

Every name is re-exported here, so callers import from ``stylize_video.controls``.
"""

from __future__ import annotations

from .blend import Blend, format_blend, parse_blend
from .commands import (
    COMMANDS,
    KEY_COMMANDS,
    MAX_MORPH_SECONDS,
    REGIONS,
    Command,
    ControlRequests,
    Request,
    apply_remote,
    command_words,
    parse_command,
)
from .inputs import ignore_background_reads, install_signal_handlers, start_stdin_reader
from .state import ControlChanges, ControlState, LiveControls

__all__ = [
    "COMMANDS",
    "KEY_COMMANDS",
    "MAX_MORPH_SECONDS",
    "REGIONS",
    "Blend",
    "Command",
    "ControlChanges",
    "ControlRequests",
    "ControlState",
    "LiveControls",
    "Request",
    "apply_remote",
    "command_words",
    "format_blend",
    "ignore_background_reads",
    "install_signal_handlers",
    "parse_blend",
    "parse_command",
    "start_stdin_reader",
]
