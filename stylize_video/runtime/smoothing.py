"""Temporal smoothing between the stylizer and the download.

A smoother sees each stylized frame with its source frame and returns the frame
to show. All tensors are (1, 3, H, W) float RGB in [0, 1] on the engine's device;
``source_u8`` is the host frame (uint8 HxWx3 BGR) for CPU-side work such as
optical flow. Smoothers reset on cuts (``Frame.cut``) and size changes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Smoother(Protocol):
    def __call__(self, stylized: torch.Tensor, source: torch.Tensor, source_u8: np.ndarray) -> torch.Tensor: ...

    def reset(self) -> None: ...


class NoSmoother:
    """Per-frame stylization, unchanged."""

    def __call__(self, stylized: torch.Tensor, source: torch.Tensor, source_u8: np.ndarray) -> torch.Tensor:
        return stylized

    def reset(self) -> None:
        pass


class EmaSmoother:
    """Exponential moving average of the outputs: cheap, but smears motion.

    Args:
        strength: weight of the previous output, 0 (off) .. <1.
    """

    def __init__(self, strength: float = 0.5) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"ema strength must be within [0, 1), got {strength}")
        self.strength = strength
        self._prev: torch.Tensor | None = None

    def __call__(self, stylized: torch.Tensor, source: torch.Tensor, source_u8: np.ndarray) -> torch.Tensor:
        prev = self._prev
        if prev is None or prev.shape != stylized.shape or prev.dtype != stylized.dtype:
            out = stylized
        else:
            out = torch.lerp(stylized, prev, self.strength)
        self._prev = out
        return out

    def reset(self) -> None:
        self._prev = None


SMOOTHERS = ("none", "ema", "flow")


def make_smoother(kind: str, strength: float = 0.5) -> Smoother:
    """Build a smoother by name: ``none``, ``ema`` or ``flow``."""
    if kind == "none":
        return NoSmoother()
    if kind == "ema":
        return EmaSmoother(strength)
    if kind == "flow":
        from .flow_smoother import FlowSmoother  # written by the temporal-consistency work

        return FlowSmoother(strength=strength)
    raise ValueError(f"unknown smoothing {kind!r} (choose from {', '.join(SMOOTHERS)})")
