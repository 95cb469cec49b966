"""One optimisation step of a style network, and the mixed precision it runs in."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import cpu_has_fast_bf16
from .losses import PerceptualLoss
from .temporal import FramePair, temporal_loss

__all__ = ["TrainStep", "amp_dtype"]


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``amp`` (``auto``, ``off``, ``bf16``, ``fp16``) means on ``device``; None: fp32."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # On CPUs with AVX512-BF16/AMX, bf16 autocast measured 1.7x faster per training
    # step (full, 256 px, 1 thread); elsewhere bf16 is emulated and slower.
    return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None


class TrainStep:
    """One optimisation step of a style network: forward, perceptual (+ teacher, + temporal) loss, update.

    ``step(x, pair)`` takes a batch (N, 3, H, W) in [0, 1] on the model's device (and,
    when ``temporal_weight`` > 0, its moved second frames) and returns the detached
    loss terms ``KEYS`` as one fp32 tensor (no device sync).
    Under ``amp_dtype`` the networks run in reduced precision while Grams, losses
    and the optimizer stay fp32; fp16 uses the (enabled) ``scaler``.
    """

    KEYS = ("total", "content", "style", "tv", "distill", "temporal")

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: PerceptualLoss,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None = None,
        amp_dtype: torch.dtype | None = None,
        teacher: torch.nn.Module | None = None,
        distill_weight: float = 0.0,
        temporal_weight: float = 0.0,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        device_type = next(model.parameters()).device.type
        self.scaler = scaler or torch.amp.GradScaler(device_type, enabled=False)
        self.teacher, self.distill_weight = teacher, distill_weight
        self.temporal_weight = temporal_weight
        # Picked once so the hot loop has no precision branches.
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
            contextlib.nullcontext if amp_dtype is None else (lambda: torch.autocast(device_type, dtype=amp_dtype))
        )

    def __call__(self, x: torch.Tensor, pair: FramePair | None = None) -> torch.Tensor:
        with self.autocast():
            targets = self.loss_fn.content_targets(x)
            temporal = x.new_zeros((), dtype=torch.float32)
            if pair is not None and self.temporal_weight > 0:
                # Both frames in one batch (InstanceNorm keeps them independent); the
                # VGG loss sees the first frame only, which keeps the extra cost to one
                # more pass of the (cheaper) style network.
                both = self.model(torch.cat([x, pair.frames]))
                y, y2 = both[: len(x)], both[len(x) :]
                temporal = temporal_loss(y, y2, pair) * self.temporal_weight
            else:
                y = self.model(x)
            terms = self.loss_fn(y, targets)
            distill = y.new_zeros((), dtype=torch.float32)
            if self.teacher is not None:
                with torch.no_grad():
                    t = self.teacher(x)
                distill = F.mse_loss(y.float(), t.float()) * self.distill_weight
            total = terms["total"] + distill + temporal
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        losses = [total, terms["content"], terms["style"], terms["tv"], distill, temporal]
        return torch.stack([t.float() for t in losses]).detach()
