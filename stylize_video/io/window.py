"""An OpenCV window with an fps/latency overlay and keyboard controls: ``-o window``."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from ..controls import KEY_COMMANDS
from ..errors import OutputError
from .base import Frame, Sink
from .images import save_snapshot
from .specs import OutputSpec, SinkOptions

log = logging.getLogger(__name__)


#: Keys of the window sink -> live-control commands the pipeline applies (from the one
#: vocabulary in :mod:`stylize_video.controls`; the window's display keys are handled here).
KEY_ACTIONS = KEY_COMMANDS


class WindowSink(Sink):
    """Show frames in an OpenCV window and turn key presses into actions.

    Keys: q/Esc quit, n/p next/previous style, b blend partner, [/] blend weight -/+ 0.1
    (style changes morph, see ``run --morph``), +/- strength, t smoothing on/off
    (commands of :data:`stylize_video.controls.COMMANDS`, applied by the pipeline through
    ``poll_actions``); s snapshot of the frame on screen, space pause, f fullscreen,
    o overlay (display functions, handled here).

    Args:
        title: window title.
        snapshot_dir: folder for ``s`` snapshots.
        overlay: start with the fps/latency overlay shown.
        cv2_module: the OpenCV module (tests pass a fake to run headless).
    """

    threaded = False  # GUI calls belong to the main thread
    interactive = True

    def __init__(
        self,
        title: str = "stylize-video",
        *,
        snapshot_dir: str | os.PathLike[str] = ".",
        overlay: bool = True,
        fullscreen: bool = False,
        cv2_module: Any = None,
    ) -> None:
        if cv2_module is None:
            import cv2 as cv2_module
        self.cv2 = cv2_module
        self.title = title
        self.snapshot_dir = Path(snapshot_dir)
        self.overlay = overlay
        self.fullscreen = fullscreen
        self.paused = False
        self.status = ""
        self.snapshots: list[Path] = []
        self._actions: deque[str] = deque()
        self._opened = False
        self._last: np.ndarray | None = None
        self._fps = 0.0
        self._latency = 0.0
        self._t_prev: float | None = None
        self._quit = False

    # ------------------------------------------------------------- pipeline hooks
    def set_status(self, text: str) -> None:
        """Text for the overlay (style, strength, smoothing, the network's scale), set by the pipeline."""
        self.status = text

    def poll_actions(self) -> list[str]:
        """Actions requested since the last call, oldest first."""
        out = list(self._actions)
        self._actions.clear()
        return out

    # ------------------------------------------------------------------- drawing
    def draw_overlay(self, image: np.ndarray) -> np.ndarray:
        """A copy of ``image`` with fps, latency and status drawn top-left."""
        cv2 = self.cv2
        out = image.copy()
        lines = [f"{self._fps:5.1f} fps  {self._latency * 1000:5.0f} ms"]
        if self.status:
            lines.append(self.status)
        if self.paused:
            lines.append("paused (space)")
        scale = max(0.4, min(out.shape[1], 1280) / 1600)
        for i, text in enumerate(lines):
            org = (8, int(22 * scale / 0.6) * (i + 1))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return out

    def _show(self) -> None:
        if self._last is None:
            return
        cv2 = self.cv2
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
            self._apply_fullscreen()
        cv2.imshow(self.title, self.draw_overlay(self._last) if self.overlay else self._last)

    def _apply_fullscreen(self) -> None:
        cv2 = self.cv2
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)

    # ---------------------------------------------------------------------- keys
    def handle_key(self, key: int) -> None:
        """React to one key code from ``cv2.waitKey`` (-1: none)."""
        if key < 0:
            return
        key &= 0xFF
        action = KEY_ACTIONS.get(key)
        if action is not None:
            if action == "quit":
                self._quit = True
                self.paused = False
            self._actions.append(action)
        elif key == ord(" "):
            self.paused = not self.paused
        elif key == ord("s"):
            self.snapshot()
        elif key == ord("f"):
            self.fullscreen = not self.fullscreen
            if self._opened:
                self._apply_fullscreen()
        elif key == ord("o"):
            self.overlay = not self.overlay

    def snapshot(self) -> Path | None:
        """Save the frame on screen (without overlay) as a fresh PNG in ``snapshot_dir``."""
        if self._last is None:
            return None
        path = save_snapshot(self.snapshot_dir, self._last)
        if path is not None:
            self.snapshots.append(path)
        return path

    def _window_closed(self) -> bool:
        try:
            return bool(self._opened and self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) < 1)
        except Exception:  # some backends raise once the window is gone
            return True

    # ----------------------------------------------------------------------- sink
    def write(self, frame: Frame) -> None:
        now = time.perf_counter()
        if self._t_prev is not None:
            dt = max(now - self._t_prev, 1e-6)
            # Smoothed so the overlay is readable; converges in ~10 frames.
            self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        self._t_prev = now
        if frame.captured:
            self._latency = now - frame.captured
        self._last = frame.image
        self._show()
        self.handle_key(self.cv2.waitKey(1))
        while self.paused and not self._quit:
            self._show()
            self.handle_key(self.cv2.waitKey(30))
            if self._window_closed():
                break
        if self._window_closed() and not self._quit:
            self._quit = True
            self._actions.append("quit")

    def close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                self.cv2.destroyWindow(self.title)
                self.cv2.waitKey(1)  # lets HighGUI process the destroy event
            except Exception as exc:  # closing a window the user already closed
                log.debug("destroying window: %s", exc)


def has_display() -> bool:
    """Whether a window can be shown (a display on Linux; assumed elsewhere)."""
    import sys

    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_window(spec: OutputSpec, options: SinkOptions) -> WindowSink:
    """Registry factory: ``-o window`` (needs a display unless a fake OpenCV is given)."""
    if options.cv2_module is None and not has_display():
        raise OutputError("-o window needs a display (none found: DISPLAY is not set)")
    return WindowSink(cv2_module=options.cv2_module)
