"""Live control of a running pipeline: applying what the user asked for between frames.

:class:`PipelineControls` is a mixin of :class:`~stylize_video.runtime.pipeline.Pipeline`
holding the part of the main loop that reacts to the user rather than moves frames:
window keys and live-control changes (style, blend, morph, strength, smoothing,
region, snapshot, quit), the status line shown back to them, and the adaptive
resolution's scale changes. It lives apart so the pipeline module keeps to the threads
and the frame path; it is a mixin, not a stage, because it changes the pipeline's own
state (the smoother toggle, the stop flag, the blend being stepped through) and runs
on the main thread between two frames, never concurrently with them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..controls import Blend, ControlChanges, LiveControls, format_blend
from ..io.base import Frame, Sink
from .adaptive import AdaptiveScale
from .region import RegionStage
from .smoothing import Smoother
from .stats import PipelineStats

if TYPE_CHECKING:
    from .stylizer import Stylizer

log = logging.getLogger(__name__)


#: Seconds the window's status line shows why a control was refused.
NOTICE_SECONDS = 4.0


class PipelineControls:
    """Apply live controls to the pipeline's stages (mixed into ``Pipeline``, which sets these)."""

    stylizer: Stylizer
    smoother: Smoother
    controls: LiveControls
    region: RegionStage | None
    adaptive: AdaptiveScale | None
    styles: list[str]
    stats: PipelineStats
    snapshots: list[Path]
    _inline: list[Sink]
    _smoothing_on: bool
    _blend: Blend
    _last_out: Frame | None
    _snapshot_pending: bool
    _notice_text: str
    _notice_until: float
    _stop: threading.Event

    def _status(self) -> str:
        """The status line the inline sinks (the window) show."""
        smooth = "on" if self._smoothing_on else "off"
        text = f"{self.stylizer.style_name}  strength {self.stylizer.strength:.1f}  smoothing {smooth}"
        if self.adaptive is not None or self.stylizer.scale != 1.0:
            text += f"  scale {self.stylizer.scale:.2f}"
        if self.region is not None and self.region.region != "all":
            text += f"  region {self.region.region}"
        if self._notice_text and time.monotonic() < self._notice_until:
            text += f"  | {self._notice_text}"
        return text

    def _controls(self) -> None:
        """Apply what the user asked for since the last frame (window keys and live controls alike)."""
        controls = self.controls
        for sink in self._inline:
            for action in sink.poll_actions():
                # The window reports command names of the same vocabulary stdin and HTTP use.
                if not controls.apply_command(action):
                    log.warning("%s: unknown control %r", type(sink).__name__, action)
        self._apply(controls.poll())
        status = self._status()
        for sink in self._inline:
            sink.set_status(status)

    def _apply(self, changes: ControlChanges) -> None:
        """Apply one poll's changes, then report the state back to the controls' producers."""
        st = self.stylizer
        if changes:
            if changes.morph is not None:
                st.morph_seconds = changes.morph
            styles_changed = changes.style is not None or changes.style_step or changes.blend is not None
            if styles_changed or changes.partner_step or changes.blend_steps:
                self._switch(changes)
            if changes.strength is not None:
                st.strength = changes.strength
            for delta in changes.strength_steps:
                st.strength = min(1.0, max(0.0, round(st.strength + delta, 2)))
            if changes.smoothing is not None and changes.smoothing != self._smoothing_on:
                self._smoothing_on = changes.smoothing
                self.smoother.reset()
            if changes.region is not None and self.region is not None:
                try:
                    self.region.set_region(changes.region)
                except ValueError as exc:
                    self._notice(f"region {changes.region}: {exc}")
                else:
                    if self.region.region != changes.region:  # the stage warned why (a missing model)
                        self._notice(f"region {changes.region}: the person model is not available (see the log)")
            elif changes.region is not None:
                self._notice(f"region {changes.region}: this run has no person region (start it with --region)")
            self._snapshot_pending |= changes.snapshot
            if changes.quit:
                self.stats.stopped = True
                self._stop.set()
        if self._snapshot_pending and self._last_out is not None:
            self._snapshot(self._last_out)
        self.controls.report(
            style=st.style_name,
            blend=self._blend,
            morph=st.morph_seconds,
            styles=self.styles,
            strength=st.strength,
            smoothing=self._smoothing_on,
            scale=st.scale,
        )
        if self.region is not None:
            self.controls.report(region=self.region.region)

    def _notice(self, text: str) -> None:
        """A control that could not be applied: the log and the controls' clients say why."""
        log.warning("%s", text)
        self.controls.notify(text)
        # The window shows it too: a key press (r without --region) must not fail silently.
        self._notice_text, self._notice_until = text, time.monotonic() + NOTICE_SECONDS

    def _switch(self, changes: ControlChanges) -> None:
        """Move to the style or blend the changes ask for (morphing; loaded styles only)."""
        st = self.stylizer
        try:
            blend = changes.pick_blend(self.styles or [st.style_name], self._blend)
        except ValueError as exc:
            self._notice(str(exc))
            return
        loaded = set(st.styles)
        missing = [name for name, _ in blend if name not in loaded]
        if missing:
            # Loading a file here would stall the frames: only preloaded styles switch live.
            self._notice(f"style {missing[0]} is not loaded (loaded: {', '.join(self.styles or st.styles)})")
            return
        self._blend = blend
        spec = format_blend(blend)
        if spec != st.style_name:
            st.set_style(spec)  # morphs over st.morph_seconds of frame time
            if st.morph_seconds <= 0:
                self.smoother.reset()  # a cut: don't smear the old style into the new one

    def _adapt(self, adaptive: AdaptiveScale, seconds: float, index: int) -> None:
        scale = adaptive.update(seconds)
        if scale is None:
            return
        log.info("adaptive resolution: scale %.2f -> %.2f", self.stylizer.scale, scale)
        self.stylizer.scale = scale
        self.stats.scale = scale
        self.stats.scale_changes.append((index, scale))

    def _snapshot(self, frame: Frame) -> None:
        self._snapshot_pending = False
        from ..io.sinks import save_snapshot

        path = save_snapshot(Path.cwd(), frame.image)
        if path is None:
            return
        self.snapshots.append(path)
        self.controls.report(snapshots=len(self.snapshots))
