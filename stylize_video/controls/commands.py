"""The one table of live controls (:data:`COMMANDS`) and the parsers that read it.

Each :class:`Command` has its words (typed on stdin, or the HTTP ``/control``
parameter name), its window keys, its signal, and a parser that turns arguments into
a request: a function that calls one method of the controls. A new control is one
entry here (plus, for a new kind of change, a method on
:class:`~stylize_video.controls.state.LiveControls` and a field the pipeline applies).

Separate from the state machine (:mod:`.state`) because it is the text vocabulary,
not the mailbox: it knows the controls only through :class:`ControlRequests`, the
methods a request may call, so the mailbox can parse typed commands
(:meth:`~stylize_video.controls.state.LiveControls.apply_command`) without the two
modules importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..text import printable
from .blend import Blend, parse_blend

#: The longest morph a ``morph`` command may ask for, in seconds.
MAX_MORPH_SECONDS = 60.0

#: The regions ``region`` cycles through, in order: ``stylize_video.person.REGIONS``
#: (spelled out here: importing the person package would load torch for the controls).
REGIONS = ("all", "background", "person")


class ControlRequests(Protocol):
    """What a parsed command may ask of the controls (what :class:`~.state.LiveControls` offers)."""

    def next_style(self) -> None: ...
    def prev_style(self) -> None: ...
    def set_style(self, name: str) -> None: ...
    def set_blend(self, blend: Blend) -> None: ...
    def next_partner(self) -> None: ...
    def step_blend(self, delta: float) -> None: ...
    def set_morph(self, seconds: float) -> None: ...
    def set_strength(self, value: float) -> None: ...
    def set_smoothing(self, on: bool) -> None: ...
    def toggle_smoothing(self) -> None: ...
    def snapshot(self) -> None: ...
    def step_strength(self, delta: float) -> None: ...
    def quit(self) -> None: ...
    def set_region(self, region: str) -> None: ...
    def cycle_region(self) -> None: ...
    def state(self) -> dict[str, Any]: ...


Request = Callable[[ControlRequests], None]


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
    parse: Callable[[list[str], ControlRequests], Request]
    help: str
    keys: tuple[int, ...] = ()
    signal: str | None = None
    remote: bool = True


def _no_args(name: str, request: Request) -> Callable[[list[str], ControlRequests], Request]:
    def parse(args: list[str], controls: ControlRequests) -> Request:
        if args:
            raise ValueError(f"{name} takes no value, got {' '.join(args)!r}")
        return request

    return parse


def _loaded(controls: ControlRequests) -> Sequence[str]:
    """The styles the pipeline reported as loaded (empty before its first report)."""
    return controls.state().get("styles") or []


def _parse_style(args: list[str], controls: ControlRequests) -> Request:
    value = args[0] if len(args) == 1 else ""
    if len(args) > 1 or not value:
        raise ValueError("style needs a value: next, prev or a name")
    if value == "next":
        return lambda c: c.next_style()
    if value in ("prev", "previous"):
        return lambda c: c.prev_style()
    known = _loaded(controls)
    if known and value not in known:  # refused now, not dropped later with "accepted"
        raise ValueError(f"unknown style {value!r} (loaded: {', '.join(known)})")
    return lambda c: c.set_style(value)


def _parse_strength(args: list[str], controls: ControlRequests) -> Request:
    if len(args) != 1:
        raise ValueError("strength needs one value within 0..1")
    try:
        strength = float(args[0])
    except ValueError:
        raise ValueError(f"strength must be a number, got {args[0]!r}") from None
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {args[0]}")
    return lambda c: c.set_strength(strength)


def _parse_blend(args: list[str], controls: ControlRequests) -> Request:
    text = "+".join(args)
    if not text.strip():
        raise ValueError("blend needs a spec such as starry-night=0.7+great-wave=0.3")
    blend = parse_blend(text, _loaded(controls))
    return lambda c: c.set_blend(blend)


def _parse_morph(args: list[str], controls: ControlRequests) -> Request:
    if len(args) != 1:
        raise ValueError(f"morph needs one value in seconds within 0..{MAX_MORPH_SECONDS:g} (0: a cut)")
    try:
        seconds = float(args[0])
    except ValueError:
        raise ValueError(f"morph must be a number of seconds, got {printable(args[0])!r}") from None
    if not 0.0 <= seconds <= MAX_MORPH_SECONDS:  # NaN fails this too
        raise ValueError(f"morph must be within 0..{MAX_MORPH_SECONDS:g} seconds, got {printable(args[0])}")
    return lambda c: c.set_morph(seconds)


def _parse_smooth(args: list[str], controls: ControlRequests) -> Request:
    value = args[0] if len(args) == 1 else ("toggle" if not args else " ".join(args))
    if value == "toggle":
        return lambda c: c.toggle_smoothing()
    if value in ("on", "off", "1", "0"):
        on = value in ("on", "1")
        return lambda c: c.set_smoothing(on)
    raise ValueError(f"smooth must be toggle, on or off, got {value!r}")


def _parse_region(args: list[str], controls: ControlRequests) -> Request:
    if not args or args == ["next"]:
        return lambda c: c.cycle_region()
    if len(args) == 1 and args[0] in REGIONS:
        region = args[0]
        return lambda c: c.set_region(region)
    raise ValueError(f"region must be {', '.join(REGIONS)} or next, got {' '.join(args)!r}")


def _parse_snapshot(args: list[str], controls: ControlRequests) -> Request:
    if args and (len(args) > 1 or args[0] not in ("1", "true", "on")):
        raise ValueError(f"snapshot takes 1 (or no value), got {' '.join(args)!r}")
    return lambda c: c.snapshot()


#: The one table of live controls (keys, typed commands, HTTP parameters and signals).
COMMANDS: tuple[Command, ...] = (
    Command("style", ("style",), _parse_style, "style next|prev|NAME: switch style"),
    Command(
        "next_style",
        ("n", "next"),
        _no_args("next", lambda c: c.next_style()),
        "next: next style",
        keys=(ord("n"),),
        signal="SIGUSR1",
    ),
    Command(
        "prev_style",
        ("p", "prev", "previous"),
        _no_args("prev", lambda c: c.prev_style()),
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
        _no_args("partner", lambda c: c.next_partner()),
        "b: next blend partner (the first press mixes the next style in evenly)",
        keys=(ord("b"),),
    ),
    Command(
        "blend_more",
        ("]",),
        _no_args("]", lambda c: c.step_blend(0.1)),
        "]: 0.1 more of the blend partner",
        keys=(ord("]"),),
    ),
    Command(
        "blend_less",
        ("[",),
        _no_args("[", lambda c: c.step_blend(-0.1)),
        "[: 0.1 less of the blend partner",
        keys=(ord("["),),
    ),
    Command("morph", ("morph",), _parse_morph, "morph SECONDS: how long style changes take (0: a cut)"),
    Command("strength", ("s", "strength"), _parse_strength, "strength X (or a bare number): effect 0..1"),
    Command(
        "strength_up",
        ("+", "up"),
        _no_args("up", lambda c: c.step_strength(0.1)),
        "+: strength +0.1",
        keys=(ord("+"), ord("=")),  # '=' is '+' without shift on most layouts
    ),
    Command(
        "strength_down",
        ("-", "down"),
        _no_args("down", lambda c: c.step_strength(-0.1)),
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
        _no_args("quit", lambda c: c.quit()),
        "quit: end the run (outputs are finished)",
        keys=(ord("q"), 27),  # 27: Esc
        remote=False,
    ),
)

_BY_WORD: dict[str, Command] = {w: c for c in COMMANDS for w in (c.name, *c.words)}

#: Window key code -> command name (the window reports these through ``poll_actions``).
KEY_COMMANDS: dict[int, str] = {key: c.name for c in COMMANDS for key in c.keys}


def parse_command(line: str, controls: ControlRequests) -> Request:
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


def apply_remote(controls: ControlRequests, params: list[tuple[str, str]]) -> dict[str, str]:
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
