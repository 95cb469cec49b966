"""Exceptions raised by the library and reported by the CLI as one line.

Every user-facing failure derives from :class:`StylizeError`, so ``cli.main`` can
catch exactly these (and nothing else) and turn them into an exit code.
"""

from __future__ import annotations


class StylizeError(Exception):
    """Base class for errors a user can act on (bad input, missing file, ...)."""


class CheckpointError(StylizeError):
    """A checkpoint file is missing, truncated, foreign or incompatible."""


class InputError(StylizeError):
    """An input image, video or path cannot be read or is not acceptable."""


class OutputError(StylizeError):
    """An output cannot be written (exists, would overwrite an input, ...)."""


class DeviceError(StylizeError):
    """The requested compute device is not available."""


class DependencyError(StylizeError):
    """An optional dependency is missing; the message names the extra to install."""
