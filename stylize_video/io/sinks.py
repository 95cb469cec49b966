"""Frame sinks, by kind of output: one module each, re-exported here.

:mod:`.file_sink` (a video file, PyAV), :mod:`.window` (OpenCV window),
:mod:`.null_sink`, :mod:`.image_sequence_sink` (numbered images) and the live
outputs of :mod:`.streaming`. :func:`open_sink` (from :mod:`.registry`) picks one
by spec. The contract every sink follows is :class:`~.base.Sink`.

The audio copier the file and stream sinks share lives in :mod:`.audio`.
"""

from __future__ import annotations

import logging

from .base import Sink
from .file_sink import LIVE_TIME_BASE, VideoFileSink
from .images import save_snapshot
from .null_sink import NullSink
from .paths import fresh_path
from .registry import open_sink
from .window import KEY_ACTIONS, WindowSink, has_display

__all__ = [
    "KEY_ACTIONS",
    "LIVE_TIME_BASE",
    "NullSink",
    "Sink",
    "VideoFileSink",
    "WindowSink",
    "fresh_path",
    "has_display",
    "open_sink",
    "save_snapshot",
]

log = logging.getLogger(__name__)
