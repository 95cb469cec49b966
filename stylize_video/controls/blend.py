"""Blend text: a blend of live styles as (name, weight) pairs, and its spec string.

Separate from the state machine (:mod:`.state`) and the command parsers
(:mod:`.commands`) because both use it and it needs neither: it only turns blend
specs (``starry-night=0.7+great-wave=0.3``) into pairs and back. Specs are checked by
the one parser, :func:`stylize_video.runtime.style_spec.parse_style_spec`, imported
when a blend is first asked for, so importing the controls loads nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..text import printable

#: A blend as (style name, weight) pairs, weights summing to 1. Unlike a parsed style
#: spec it keeps a partner of weight 0, so ``[``/``]`` and the page's slider remember
#: both ends of a blend that currently sits at one of them.
Blend = tuple[tuple[str, float], ...]


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
    from ..runtime.style_spec import parse_style_spec

    text = "+".join(text.split())
    spec = dict(parse_style_spec(text))
    names = [part.rpartition("=")[0].strip() if "=" in part else part.strip() for part in text.split("+")]
    choices = _loaded_names(known)
    for name in names:
        if choices and name not in choices:
            raise ValueError(f"unknown style {printable(name)!r} (loaded: {', '.join(sorted(choices))})")
    return tuple((name, round(spec.get(name, 0.0), 4)) for name in names)


def is_blend(name: str) -> bool:
    """Whether a style-list entry is a blend spec rather than one style's name."""
    return "+" in name or "=" in name


def split_blend(text: str) -> Blend:
    """The pairs of a blend entry; text that does not parse counts as one style of weight 1."""
    from ..runtime.style_spec import parse_style_spec

    try:
        return tuple(parse_style_spec(text))
    except ValueError:
        return ((text, 1.0),)


def name_after(names: list[str], name: str, skip: str) -> str:
    """The name after ``name`` in ``names`` (cycling), never ``skip`` unless nothing else is there."""
    start = names.index(name) if name in names else -1
    for i in range(1, len(names) + 1):
        candidate = names[(start + i) % len(names)]
        if candidate != skip:
            return candidate
    return skip


def _loaded_names(styles: Iterable[str]) -> set[str]:
    """Single style names in a style list (the parts of a blend entry count too)."""
    names: set[str] = set()
    for entry in styles:
        if is_blend(entry):
            names.update(name for name, _ in split_blend(entry))
        else:
            names.add(entry)
    return names
