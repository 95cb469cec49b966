"""Moved to :mod:`stylize_video.controls` (io and runtime both use it); re-exported here."""

from __future__ import annotations

from ..controls import (
    COMMANDS,
    KEY_COMMANDS,
    Command,
    ControlChanges,
    ControlState,
    LiveControls,
    apply_remote,
    ignore_background_reads,
    install_signal_handlers,
    parse_command,
    start_stdin_reader,
)

__all__ = [
    "COMMANDS",
    "KEY_COMMANDS",
    "Command",
    "ControlChanges",
    "ControlState",
    "LiveControls",
    "apply_remote",
    "ignore_background_reads",
    "install_signal_handlers",
    "parse_command",
    "start_stdin_reader",
]
