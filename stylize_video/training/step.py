"""One optimisation step of a style network, the loss it minimises and the mixed precision it runs in.

The perceptual loss of a :class:`~.config.LossConfig` (:func:`perceptual_loss`, with
the loss network from :func:`loss_network`) and the autocast context
(:func:`autocast_for`) are built here once for ``train``, ``learn-style`` and
``distill-styles``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..devices import cpu_has_fast_bf16
from .losses import PerceptualLoss
from .temporal import FramePair, temporal_loss

if TYPE_CHECKING:
    from ..models.vgg import VGGFeatures
    from .config import LossConfig

__all__ = ["TrainStep", "amp_dtype", "autocast_for", "loss_network", "perceptual_loss"]


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


def autocast_for(dtype: torch.dtype | None, device_type: str) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A context factory: autocast to ``dtype`` on ``device_type``, or nothing for fp32.

    Picked once so the hot loop has no precision branches.
    """
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type, dtype=dtype)


def loss_network(vgg: VGGFeatures | None, weights: str | None) -> tuple[VGGFeatures, dict[str, Any]]:
    """The loss network and how the checkpoint's metadata describes it.

    ``vgg`` when given (tests pass a small random one: described as ``provided``),
    else VGG16 loaded from ``weights`` (None: torchvision's).
    """
    from ..models.vgg import VGGFeatures, describe_vgg_source, load_vgg_state

    if vgg is not None:
        return vgg, {"source": "provided"}
    return VGGFeatures(load_vgg_state(weights)), describe_vgg_source(weights)


def perceptual_loss(vgg: VGGFeatures, painting: torch.Tensor, loss: LossConfig) -> PerceptualLoss:
    """The perceptual loss with ``loss``'s weights against ``painting`` (1, 3, H, W) in [0, 1]."""
    return PerceptualLoss(
        vgg,
        painting,
        content_weight=loss.content_weight,
        style_weight=loss.style_weight,
        tv_weight=loss.tv_weight,
        style_layer_weights=loss.style_layer_weights,
    )


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
        self.autocast = autocast_for(amp_dtype, device_type)

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
