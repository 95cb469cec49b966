"""The live-control state machine: requests in from any thread, one batch out per frame.

:class:`LiveControls` is a thread-safe mailbox. Producers (the MJPEG server's
``/control`` endpoint, the window's keys through the pipeline, a stdin reader,
SIGUSR1/SIGUSR2) record requests from their own threads; the pipeline calls
:meth:`LiveControls.poll` once per frame and applies the :class:`ControlChanges` it
gets. Requests are merged between polls (three "next style" presses become a step of
+3, the last strength wins), so a burst of requests never queues up frames. The
pipeline reports what it actually applied with :meth:`LiveControls.report`
(:class:`ControlState`), which producers can show (the preview page reads it as JSON).

Separate from the command table (:mod:`.commands`, the words that make requests) and
from the producers (:mod:`.inputs`): this module is the only one holding a lock, and
it reads typed text only through :func:`~.commands.parse_command`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .blend import Blend, format_blend, is_blend, name_after, split_blend
from .commands import MAX_MORPH_SECONDS, REGIONS, parse_command


@dataclass(frozen=True)
class ControlChanges:
    """Changes requested since the previous poll.

    Attributes:
        style_step: how many styles to move forward (negative: back).
        style: a style requested by name; applied before ``style_step``.
        strength: new strength in 0..1, or None for unchanged.
        smoothing: True/False to switch temporal smoothing on/off, None for unchanged.
        snapshot: save the next output frame.
        strength_steps: relative strength changes (+-0.1 keys), applied in order after ``strength``.
        quit: stop the run (outputs are finalized).
        blend: a blend requested as a whole (``blend SPEC``); replaces ``style``/``style_step``.
        partner_step: how many times to move the blend partner on (``b``).
        blend_steps: weight moved to the blend partner (+) or back (-), in order (``[``/``]``).
        morph: new duration of style changes in seconds, or None for unchanged.
        region: the region to stylize (``all``, ``background``, ``person``), None for unchanged.
    """

    style_step: int = 0
    style: str | None = None
    strength: float | None = None
    smoothing: bool | None = None
    snapshot: bool = False
    strength_steps: tuple[float, ...] = ()
    quit: bool = False
    blend: Blend | None = None
    partner_step: int = 0
    blend_steps: tuple[float, ...] = ()
    morph: float | None = None
    region: str | None = None

    def __bool__(self) -> bool:
        return (
            bool(self.style_step or self.style is not None or self.strength is not None)
            or bool(self.smoothing is not None or self.snapshot or self.strength_steps or self.quit)
            or bool(self.blend is not None or self.partner_step or self.blend_steps or self.morph is not None)
            or self.region is not None
        )

    def pick_blend(self, styles: Iterable[str], current: Blend) -> Blend:
        """The blend to use after these changes, as (name, weight) pairs.

        Order: a requested ``blend`` or style (see :meth:`pick_style`; a single style
        is a blend of one), then ``partner_step``, then ``blend_steps``. The partner is
        the second style of the blend; without one, ``b`` picks the style after the
        current one in ``styles`` at an even mix, and ``]`` starts from it at weight 0.
        A blend of three or more styles is first reduced to its two heaviest.

        Raises:
            ValueError: an unknown style name (the message lists the loaded ones).
        """
        names = list(styles)
        singles = [n for n in names if not is_blend(n)] or names
        blend = current
        if self.blend is not None:
            blend = self.blend
        elif self.style is not None or self.style_step:
            # n/p move on from the style that dominates (a listed blend counts as one).
            text = format_blend(blend)
            base = text if text in names else max(blend, key=lambda p: p[1])[0]
            name = self.pick_style(names, base)
            blend = split_blend(name) if is_blend(name) else ((name, 1.0),)
        if not (self.partner_step or self.blend_steps) or not singles or not blend:
            return blend
        if len(blend) > 2:
            top = sorted(blend, key=lambda p: -p[1])[:2]
            blend = tuple(p for p in blend if p in top)
        partner_steps = self.partner_step
        if len(blend) == 1:
            base = blend[0][0]
            if self.partner_step:  # the first press mixes the next style in evenly
                blend, partner_steps = ((base, 0.5), (name_after(singles, base, base), 0.5)), self.partner_step - 1
            else:
                blend = ((base, 1.0), (name_after(singles, base, base), 0.0))
        (base, wa), (partner, w) = blend
        if partner == base:  # one style loaded: nothing to blend with
            return ((base, 1.0),)
        w = w / (wa + w) if wa + w > 0 else 0.0
        for _ in range(partner_steps % max(1, len(singles) - 1)):
            partner = name_after(singles, partner, base)
        for delta in self.blend_steps:
            w = min(1.0, max(0.0, round(w + delta, 2)))
        return ((base, round(1.0 - w, 4)), (partner, round(w, 4)))

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
    blend: list[tuple[str, float]] = field(default_factory=list)  # (name, weight); a 0 keeps the blend partner
    morph: float = 0.0  # seconds a style change takes (0: a cut)
    styles: list[str] = field(default_factory=list)
    strength: float = 1.0
    smoothing: bool = False
    snapshots: int = 0
    scale: float = 1.0  # the network's current scale (adaptive resolution changes it)
    region: str = "all"  # what is stylized: all, background or person (issue 18)
    notice: str = ""  # why the last control that could not be applied was refused (for the clients)
    notices: int = 0  # how many notices so far: a client shows ``notice`` when this changes


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
        self._strength_steps: list[float] = []
        self._quit = False
        self._blend: Blend | None = None
        self._partner_step = 0
        self._blend_steps: list[float] = []
        self._morph: float | None = None
        self._region: str | None = None
        self._state = ControlState(smoothing=smoothing)
        # Signal handlers run on the main thread between bytecodes, possibly while it
        # holds ``_lock``; they only put here (SimpleQueue.put is reentrant) and poll drains it.
        self._deferred: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    # ------------------------------------------------------------- producers
    def next_style(self) -> None:
        with self._lock:
            self._step += 1
            self._blend = None  # the later request wins

    def prev_style(self) -> None:
        with self._lock:
            self._step -= 1
            self._blend = None

    def set_style(self, name: str) -> None:
        """Request a style by name; resets pending next/prev steps and blend requests."""
        with self._lock:
            self._style, self._step = name, 0
            self._blend, self._partner_step, self._blend_steps = None, 0, []

    def set_blend(self, blend: Blend) -> None:
        """Request a blend of (name, weight) pairs (see :func:`~.blend.parse_blend`); replaces pending style requests."""
        if not blend or any(not 0.0 <= w <= 1.0 for _, w in blend):
            raise ValueError(f"a blend needs weights within 0..1, got {blend!r:.200}")
        with self._lock:
            self._blend = tuple((str(n), float(w)) for n, w in blend)
            self._style, self._step, self._partner_step, self._blend_steps = None, 0, 0, []

    def next_partner(self) -> None:
        """Request the next blend partner (``b``)."""
        with self._lock:
            self._partner_step += 1

    def step_blend(self, delta: float) -> None:
        """Move ``delta`` of weight to the blend partner (negative: back to the current style)."""
        with self._lock:
            self._blend_steps.append(float(delta))

    def set_morph(self, seconds: float) -> None:
        """Request how long style changes take (0: a cut); raises :class:`ValueError` outside 0..60."""
        seconds = float(seconds)
        if not 0.0 <= seconds <= MAX_MORPH_SECONDS:
            raise ValueError(f"morph must be within 0..{MAX_MORPH_SECONDS:g} seconds, got {seconds}")
        with self._lock:
            self._morph = seconds

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

    def step_strength(self, delta: float) -> None:
        """Request a relative strength change (clamped to 0..1 when applied)."""
        with self._lock:
            self._strength_steps.append(float(delta))

    def quit(self) -> None:
        """Request the end of the run."""
        with self._lock:
            self._quit = True

    def set_region(self, region: str) -> None:
        """Request the region to stylize; raises :class:`ValueError` for an unknown one."""
        if region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
        with self._lock:
            self._region = region

    def cycle_region(self) -> None:
        """Request the region after the current (or already requested) one: all -> background -> person -> all."""
        with self._lock:
            current = self._state.region if self._region is None else self._region
            self._region = REGIONS[(REGIONS.index(current) + 1) % len(REGIONS)] if current in REGIONS else REGIONS[0]

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
            changes = ControlChanges(
                self._step,
                self._style,
                self._strength,
                self._smoothing,
                self._snapshot,
                tuple(self._strength_steps),
                self._quit,
                self._blend,
                self._partner_step,
                tuple(self._blend_steps),
                self._morph,
                self._region,
            )
            self._step, self._style, self._strength, self._smoothing, self._snapshot = 0, None, None, None, False
            self._strength_steps, self._quit = [], False
            self._blend, self._partner_step, self._blend_steps, self._morph, self._region = None, 0, [], None, None
        return changes

    def report(self, **applied: Any) -> None:
        """Record what the pipeline applied (fields of :class:`ControlState`)."""
        with self._lock:
            for key, value in applied.items():
                if not hasattr(self._state, key):
                    raise TypeError(f"unknown control state field {key!r}")
                if key == "styles":
                    value = list(value)
                elif key == "blend":
                    value = [(str(name), float(w)) for name, w in value]
                setattr(self._state, key, value)

    def notify(self, text: str) -> None:
        """Tell the clients why a control was not applied (the preview page shows it)."""
        with self._lock:
            self._state.notice = text
            self._state.notices += 1

    def state(self) -> dict[str, Any]:
        """A JSON-ready copy of the last reported state."""
        with self._lock:
            return asdict(self._state)

    # ------------------------------------------------------------- text input
    def apply_command(self, line: str) -> bool:
        """Apply one typed command (see :data:`~.commands.COMMANDS`); False (and nothing changed) if not understood."""
        try:
            request = parse_command(line, self)
        except ValueError:
            return False
        request(self)
        return True
