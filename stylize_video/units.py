"""Parsers for the sizes and durations users type (``640x360``, ``90s``, ``1.5h``).

One definition for the CLI, the training gallery and the benchmarks, so every tool
accepts the same spellings and reports the same errors. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math

from .errors import InputError

#: Smallest frame side the engine accepts (the style network downsamples by 4).
MIN_SIDE = 16


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"640x360"`` -> (640, 360) (width, height); None stays None.

    Raises:
        InputError: not ``WxH`` with integers, or a side below 16.
    """
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 640x360, got {text!r}") from None
    if w < MIN_SIDE or h < MIN_SIDE:
        raise InputError(f"--size must be at least {MIN_SIDE}x{MIN_SIDE}, got {text!r}")
    return w, h


def size_arg(text: str) -> tuple[int, int]:
    """:func:`parse_size` as an argparse ``type=``: a bad value is a usage error, not a traceback."""
    try:
        size = parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert size is not None  # text is a str, so parse_size returned a size or raised
    return size


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``3m``, ``1.5h`` -> seconds (an argparse ``type=``).

    Raises:
        argparse.ArgumentTypeError: not a positive, finite duration.
    """
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    value = text.strip().lower()
    scale = units.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 3m, 1.5h)") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return seconds
