"""Style specs: one style, or a blend of styles, written as text.

``starry-night`` is one style; ``starry-night=0.7+great-wave=0.3`` a blend (weights
are normalised to sum to 1, so ``a=7+b=3`` is the same); ``a+b`` gives equal
weights (a missing weight counts 1). Every command and the Python API parse specs
with :func:`parse_style_spec` and print them with :func:`format_style_spec`.

A name is anything :func:`~stylize_video.models.checkpoint.load_checkpoint` takes
(a style name or a checkpoint path); a path that itself contains ``+`` or ``=`` is
taken whole when it exists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection

from ..errors import CheckpointError
from ..models.checkpoint import known_styles_hint
from ..text import printable

__all__ = ["StyleSpec", "StyleSpecError", "format_style_spec", "parse_style_spec"]

#: A parsed spec: (name, weight) pairs, weights > 0 summing to 1, in the order written.
StyleSpec = tuple[tuple[str, float], ...]


class StyleSpecError(CheckpointError, ValueError):
    """A style spec that cannot be parsed, or names a style that is not installed."""


def parse_style_spec(text: str, known: Collection[str] | None = None) -> StyleSpec:
    """Parse ``'a=0.7+b=0.3'`` into ``(('a', 0.7), ('b', 0.3))``.

    Args:
        text: the spec.
        known: if given, bare names (not paths) must be in it; an unknown one is an
            error that lists close matches.

    Returns:
        (name, weight) pairs in the order written, weights normalised to sum to 1;
        styles of weight 0 are dropped.

    Raises:
        StyleSpecError: empty spec or name, a weight that is not a number, negative or
            infinite, all weights zero, a name given twice, or an unknown name.
    """
    if not isinstance(text, str) or not text.strip():
        raise StyleSpecError(f"empty style spec {printable(repr(text))}")
    text = text.strip()
    if ("+" in text or "=" in text) and os.path.isfile(text):
        parts = [(text, 1.0)]
    else:
        parts = [_part(p, text) for p in text.split("+")]
    names = [n for n, _ in parts]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StyleSpecError(f"style spec {printable(text)!r} names {printable(repeated[0])!r} twice")
    total = math.fsum(w for _, w in parts)
    if total <= 0:
        raise StyleSpecError(f"style spec {printable(text)!r}: the weights sum to 0")
    if known is not None:
        for name in names:
            if _is_bare(name) and name not in known:
                raise StyleSpecError(f"unknown style {printable(name)!r} ({known_styles_hint(name, known)})")
    return tuple((n, w / total) for n, w in parts if w > 0)


def _part(part: str, text: str) -> tuple[str, float]:
    name, eq, weight_text = part.rpartition("=") if "=" in part else (part, "", "")
    name = name.strip()
    if not name:
        raise StyleSpecError(f"style spec {printable(text)!r} has an empty style name")
    if not eq:
        return name, 1.0
    try:
        weight = float(weight_text)
    except ValueError:
        raise StyleSpecError(
            f"style spec {printable(text)!r}: weight {printable(weight_text.strip())!r} of {printable(name)!r} "
            "is not a number"
        ) from None
    if not math.isfinite(weight) or weight < 0:
        raise StyleSpecError(
            f"style spec {printable(text)!r}: weight of {printable(name)!r} must be >= 0, got {weight}"
        )
    return name, weight


def _is_bare(name: str) -> bool:
    return (
        "/" not in name and os.sep not in name and not name.endswith((".safetensors", ".pth", ".pt", ".model", ".onnx"))
    )


def format_style_spec(spec: StyleSpec) -> str:
    """The canonical text of a parsed spec: ``name`` alone, else ``a=0.7+b=0.3`` (3 decimals at most)."""
    if len(spec) == 1:
        return spec[0][0]
    return "+".join(f"{name}={_weight(w)}" for name, w in spec)


def _weight(w: float) -> str:
    text = f"{w:.3f}".rstrip("0").rstrip(".")
    return text or "0"
