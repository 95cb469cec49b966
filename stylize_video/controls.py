"""Live controls: one vocabulary of commands that window keys, stdin, HTTP and signals feed.

:data:`COMMANDS` is the one table: each :class:`Command` has its words (typed on
stdin, or the HTTP ``/control`` parameter name), its window keys, its signal, and a
parser that turns arguments into a request on :class:`LiveControls`. A new control is
one entry there (plus, for a new kind of change, a field the pipeline applies).

Producers (the MJPEG server's ``/control`` endpoint, the window's keys through the
pipeline, a stdin reader, SIGUSR1/SIGUSR2) record requests from their own threads;
the pipeline calls :meth:`LiveControls.poll` once per frame and applies what it gets.
Requests are merged between polls (three "next style" presses become a step of
+3, the last strength wins), so a burst of requests never queues up frames.

The pipeline reports what it actually applied with :meth:`LiveControls.report`,
which producers can show (the preview page reads it as JSON).

Blends: ``blend SPEC`` (``blend starry-night=0.7+great-wave=0.3``) sets a mixture
of loaded styles; ``b`` picks the next blend partner and ``[``/``]`` move 0.1 of
weight from the current style to the partner and back (:meth:`ControlChanges.pick_blend`
works out the result); ``morph SECONDS`` sets how long a style change takes.

This module sits beside ``io`` and ``runtime`` (it imports neither at import time):
the MJPEG sink (io) and the pipeline (runtime) both use it. Blend specs are parsed
by the one parser, :func:`stylize_video.runtime.style_spec.parse_style_spec`,
imported when a blend is first asked for.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from .text import printable

log = logging.getLogger(__name__)

#: A blend as (style name, weight) pairs, weights summing to 1. Unlike a parsed style
#: spec it keeps a partner of weight 0, so ``[``/``]`` and the page's slider remember
#: both ends of a blend that currently sits at one of them.
Blend = tuple[tuple[str, float], ...]

#: The longest morph a ``morph`` command may ask for, in seconds.
MAX_MORPH_SECONDS = 60.0

#: The regions ``region`` cycles through, in order: ``stylize_video.person.REGIONS``
#: (spelled out here: importing the person package would load torch for the controls).
REGIONS = ("all", "background", "person")


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
        singles = [n for n in names if not _is_blend(n)] or names
        blend = current
        if self.blend is not None:
            blend = self.blend
        elif self.style is not None or self.style_step:
            # n/p move on from the style that dominates (a listed blend counts as one).
            text = format_blend(blend)
            base = text if text in names else max(blend, key=lambda p: p[1])[0]
            name = self.pick_style(names, base)
            blend = _split_blend(name) if _is_blend(name) else ((name, 1.0),)
        if not (self.partner_step or self.blend_steps) or not singles or not blend:
            return blend
        if len(blend) > 2:
            top = sorted(blend, key=lambda p: -p[1])[:2]
            blend = tuple(p for p in blend if p in top)
        partner_steps = self.partner_step
        if len(blend) == 1:
            base = blend[0][0]
            if self.partner_step:  # the first press mixes the next style in evenly
                blend, partner_steps = ((base, 0.5), (_after(singles, base, base), 0.5)), self.partner_step - 1
            else:
                blend = ((base, 1.0), (_after(singles, base, base), 0.0))
        (base, wa), (partner, w) = blend
        if partner == base:  # one style loaded: nothing to blend with
            return ((base, 1.0),)
        w = w / (wa + w) if wa + w > 0 else 0.0
        for _ in range(partner_steps % max(1, len(singles) - 1)):
            partner = _after(singles, partner, base)
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


def format_blend(blend: Blend) -> str:
    """The style spec of a blend (``a=0.7+b=0.3``; a style alone by its name); weights of 0 are left out."""
    parts = [(name, w) for name, w in blend if w > 0] or list(blend[:1])
    if len(parts) == 1:
        return parts[0][0]
    return "+".join(f"{name}={w:.4g}" for name, w in parts)


def parse_blend(text: str, known: Iterable[str] = ()) -> Blend:
    """Parse a blend spec (``a=0.7+b=0.3``; spaces count as ``+``) into normalised pairs, keeping weights of 0.

    Args:
        text: the spec, checked by :func:`~stylize_video.runtime.style_spec.parse_style_spec`.
        known: the loaded styles; when given, every name must be one of them (a live
            run never loads a file because a viewer asked for it).

    Raises:
        ValueError: bad syntax or weights, or an unknown name (one line saying which).
    """
    from .runtime.style_spec import parse_style_spec

    text = "+".join(text.split())
    spec = dict(parse_style_spec(text))
    names = [part.rpartition("=")[0].strip() if "=" in part else part.strip() for part in text.split("+")]
    choices = _loaded_names(known)
    for name in names:
        if choices and name not in choices:
            raise ValueError(f"unknown style {printable(name)!r} (loaded: {', '.join(sorted(choices))})")
    return tuple((name, round(spec.get(name, 0.0), 4)) for name in names)


def _loaded_names(styles: Iterable[str]) -> set[str]:
    """Single style names in a style list (the parts of a blend entry count too)."""
    names: set[str] = set()
    for entry in styles:
        if _is_blend(entry):
            names.update(name for name, _ in _split_blend(entry))
        else:
            names.add(entry)
    return names


def _is_blend(name: str) -> bool:
    return "+" in name or "=" in name


def _split_blend(text: str) -> Blend:
    from .runtime.style_spec import parse_style_spec

    try:
        return tuple(parse_style_spec(text))
    except ValueError:
        return ((text, 1.0),)


def _after(names: list[str], name: str, skip: str) -> str:
    """The name after ``name`` in ``names`` (cycling), never ``skip`` unless nothing else is there."""
    start = names.index(name) if name in names else -1
    for i in range(1, len(names) + 1):
        candidate = names[(start + i) % len(names)]
        if candidate != skip:
            return candidate
    return skip


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
        """Request a blend of (name, weight) pairs (see :func:`parse_blend`); replaces pending style requests."""
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

    def state(self) -> dict[str, Any]:
        """A JSON-ready copy of the last reported state."""
        with self._lock:
            return asdict(self._state)

    # ------------------------------------------------------------- text input
    def apply_command(self, line: str) -> bool:
        """Apply one typed command (see :data:`COMMANDS`); False (and nothing changed) if not understood."""
        try:
            request = parse_command(line, self)
        except ValueError:
            return False
        request(self)
        return True


Request = Callable[[LiveControls], None]


@dataclass(frozen=True)
class Command:
    """One live control.

    Attributes:
        name: canonical name (what the window's :meth:`~stylize_video.io.base.Sink.poll_actions` returns).
        words: what starts it when typed, and the HTTP ``/control`` parameter names
            (``name`` is always accepted too).
        parse: ``(arguments, controls) -> request``; raises :class:`ValueError` with the reason.
        help: one line for the help text.
        keys: window key codes (``cv2.waitKey`` & 0xFF).
        signal: a POSIX signal name that sends it (no arguments).
        remote: accepted over HTTP (``quit`` is not: a viewer must not end the run).
    """

    name: str
    words: tuple[str, ...]
    parse: Callable[[list[str], LiveControls], Request]
    help: str
    keys: tuple[int, ...] = ()
    signal: str | None = None
    remote: bool = True


def _no_args(name: str, request: Request) -> Callable[[list[str], LiveControls], Request]:
    def parse(args: list[str], controls: LiveControls) -> Request:
        if args:
            raise ValueError(f"{name} takes no value, got {' '.join(args)!r}")
        return request

    return parse


def _parse_style(args: list[str], controls: LiveControls) -> Request:
    value = args[0] if len(args) == 1 else ""
    if len(args) > 1 or not value:
        raise ValueError("style needs a value: next, prev or a name")
    if value == "next":
        return LiveControls.next_style
    if value in ("prev", "previous"):
        return LiveControls.prev_style
    known = controls.state().get("styles") or []
    if known and value not in known:  # refused now, not dropped later with "accepted"
        raise ValueError(f"unknown style {value!r} (loaded: {', '.join(known)})")
    return functools.partial(LiveControls.set_style, name=value)


def _parse_strength(args: list[str], controls: LiveControls) -> Request:
    if len(args) != 1:
        raise ValueError("strength needs one value within 0..1")
    try:
        strength = float(args[0])
    except ValueError:
        raise ValueError(f"strength must be a number, got {args[0]!r}") from None
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {args[0]}")
    return functools.partial(LiveControls.set_strength, value=strength)


def _parse_blend(args: list[str], controls: LiveControls) -> Request:
    text = "+".join(args)
    if not text.strip():
        raise ValueError("blend needs a spec such as starry-night=0.7+great-wave=0.3")
    blend = parse_blend(text, controls.state().get("styles") or ())
    return functools.partial(LiveControls.set_blend, blend=blend)


def _parse_morph(args: list[str], controls: LiveControls) -> Request:
    if len(args) != 1:
        raise ValueError(f"morph needs one value in seconds within 0..{MAX_MORPH_SECONDS:g} (0: a cut)")
    try:
        seconds = float(args[0])
    except ValueError:
        raise ValueError(f"morph must be a number of seconds, got {printable(args[0])!r}") from None
    if not 0.0 <= seconds <= MAX_MORPH_SECONDS:  # NaN fails this too
        raise ValueError(f"morph must be within 0..{MAX_MORPH_SECONDS:g} seconds, got {printable(args[0])}")
    return functools.partial(LiveControls.set_morph, seconds=seconds)


def _parse_smooth(args: list[str], controls: LiveControls) -> Request:
    value = args[0] if len(args) == 1 else ("toggle" if not args else " ".join(args))
    if value == "toggle":
        return LiveControls.toggle_smoothing
    if value in ("on", "off", "1", "0"):
        return functools.partial(LiveControls.set_smoothing, on=value in ("on", "1"))
    raise ValueError(f"smooth must be toggle, on or off, got {value!r}")


def _parse_region(args: list[str], controls: LiveControls) -> Request:
    if not args or args == ["next"]:
        return LiveControls.cycle_region
    if len(args) == 1 and args[0] in REGIONS:
        return functools.partial(LiveControls.set_region, region=args[0])
    raise ValueError(f"region must be {', '.join(REGIONS)} or next, got {' '.join(args)!r}")


def _parse_snapshot(args: list[str], controls: LiveControls) -> Request:
    if args and (len(args) > 1 or args[0] not in ("1", "true", "on")):
        raise ValueError(f"snapshot takes 1 (or no value), got {' '.join(args)!r}")
    return LiveControls.snapshot


#: The one table of live controls (keys, typed commands, HTTP parameters and signals).
COMMANDS: tuple[Command, ...] = (
    Command("style", ("style",), _parse_style, "style next|prev|NAME: switch style"),
    Command(
        "next_style",
        ("n", "next"),
        _no_args("next", LiveControls.next_style),
        "next: next style",
        keys=(ord("n"),),
        signal="SIGUSR1",
    ),
    Command(
        "prev_style",
        ("p", "prev", "previous"),
        _no_args("prev", LiveControls.prev_style),
        "prev: previous style",
        keys=(ord("p"),),
        signal="SIGUSR2",
    ),
    Command(
        "blend",
        ("blend", "mix"),
        _parse_blend,
        "blend A=0.7+B=0.3: mix loaded styles (weights are normalised)",
    ),
    Command(
        "blend_partner",
        ("b", "partner"),
        _no_args("partner", LiveControls.next_partner),
        "b: next blend partner (the first press mixes the next style in evenly)",
        keys=(ord("b"),),
    ),
    Command(
        "blend_more",
        ("]",),
        _no_args("]", functools.partial(LiveControls.step_blend, delta=0.1)),
        "]: 0.1 more of the blend partner",
        keys=(ord("]"),),
    ),
    Command(
        "blend_less",
        ("[",),
        _no_args("[", functools.partial(LiveControls.step_blend, delta=-0.1)),
        "[: 0.1 less of the blend partner",
        keys=(ord("["),),
    ),
    Command("morph", ("morph",), _parse_morph, "morph SECONDS: how long style changes take (0: a cut)"),
    Command("strength", ("s", "strength"), _parse_strength, "strength X (or a bare number): effect 0..1"),
    Command(
        "strength_up",
        ("+", "up"),
        _no_args("up", functools.partial(LiveControls.step_strength, delta=0.1)),
        "+: strength +0.1",
        keys=(ord("+"), ord("=")),  # '=' is '+' without shift on most layouts
    ),
    Command(
        "strength_down",
        ("-", "down"),
        _no_args("down", functools.partial(LiveControls.step_strength, delta=-0.1)),
        "-: strength -0.1",
        keys=(ord("-"), ord("_")),
    ),
    Command(
        "toggle_smoothing",
        ("t", "smooth", "smoothing"),
        _parse_smooth,
        "smooth [on|off|toggle]: temporal smoothing",
        keys=(ord("t"),),
    ),
    Command(
        "region",
        ("r", "region"),
        _parse_region,
        "region [all|background|person]: what is stylized (no value: the next one)",
        keys=(ord("r"),),
    ),
    Command("snapshot", ("snap", "snapshot"), _parse_snapshot, "snap: save the next output frame as a PNG"),
    Command(
        "quit",
        ("q", "quit"),
        _no_args("quit", LiveControls.quit),
        "quit: end the run (outputs are finished)",
        keys=(ord("q"), 27),  # 27: Esc
        remote=False,
    ),
)

_BY_WORD: dict[str, Command] = {w: c for c in COMMANDS for w in (c.name, *c.words)}

#: Window key code -> command name (the window reports these through ``poll_actions``).
KEY_COMMANDS: dict[int, str] = {key: c.name for c in COMMANDS for key in c.keys}


def parse_command(line: str, controls: LiveControls) -> Request:
    """Parse one typed command (``next``, ``style candy``, ``strength 0.5``, ``0.5``, ``smooth on``...).

    Raises:
        ValueError: unknown command or bad argument (the message says which).
    """
    words = line.strip().split()
    if not words:
        raise ValueError("empty command")
    cmd, args = words[0].lower(), words[1:]
    command = _BY_WORD.get(cmd)
    if command is None:
        if not args:
            try:
                float(cmd)
            except ValueError:
                pass
            else:
                return _parse_strength([cmd], controls)  # a bare number is a strength
        raise ValueError(f"unknown command {cmd!r} ({command_words()})")
    return command.parse(args, controls)


def command_words(remote_only: bool = False) -> str:
    """The commands' words (the longest of each), for help and error messages."""
    return ", ".join(max(c.words, key=len) for c in COMMANDS if c.remote or not remote_only)


def apply_remote(controls: LiveControls, params: list[tuple[str, str]]) -> dict[str, str]:
    """Apply HTTP ``/control`` parameters (``style=next&strength=0.7``), all or none.

    Every parameter is validated first, then all are recorded, so a bad request changes nothing.
    Returns the accepted parameters.

    Raises:
        ValueError: an unknown or non-remote control, a bad value, or no control at all.
    """
    requests: list[Request] = []
    accepted: dict[str, str] = {}
    for key, value in params:
        command = _BY_WORD.get(key)
        if command is None or not command.remote:
            raise ValueError(f"unknown control {key!r} ({command_words(remote_only=True)})")
        requests.append(command.parse([value] if value else [], controls))
        accepted[key] = value
    if not requests:
        raise ValueError(f"no control given ({command_words(remote_only=True)})")
    for request in requests:
        request(controls)
    return accepted


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
            if not line.strip():
                continue
            try:
                parse_command(line, controls)(controls)
            except ValueError as exc:
                log.warning("control %r not applied: %s", line.strip(), exc)

    thread = threading.Thread(target=_run, name="stdin-controls", daemon=True)
    thread.start()
    return thread


def install_signal_handlers(controls: LiveControls) -> Callable[[], None]:
    """SIGUSR1 -> next style, SIGUSR2 -> previous style, where the platform has them.

    Must be called from the main thread (Python's rule for signal handlers).
    Returns a function that restores the previous handlers.
    """
    previous: list[tuple[signal.Signals, Any]] = []
    for command in COMMANDS:
        signum = getattr(signal, command.signal or "", None)
        if signum is None:  # no signal, or Windows (which has neither)
            continue
        action = functools.partial(command.parse([], controls), controls)

        def _handler(_signum: int, _frame: object, action: Callable[[], None] = action) -> None:
            controls.defer(action)

        previous.append((signum, signal.signal(signum, _handler)))

    def restore() -> None:
        for signum, old in previous:
            signal.signal(signum, old)

    return restore
