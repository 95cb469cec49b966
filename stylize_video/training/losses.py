"""Perceptual loss (Johnson et al. 2016; Gatys et al. 2016) on a frozen VGG16.

* Style: Gram matrices of relu1_2, relu2_2, relu3_3, relu4_3, normalised by
  ``C*H*W`` (independent of image size) and always computed in fp32: under fp16 the
  sums over a 256x256 plane overflow, and bf16 loses the small differences the loss
  is made of.
* Content: feature MSE on relu2_2 (Johnson's choice; relu3_3 keeps less detail).
* Total variation: mean squared neighbour difference of the output pixels.

Each layer's loss is divided by a constant taken from the *style image's own*
features (mean squared Gram entry for style layers, mean squared activation for
content layers). That makes the loss invariant to a rescaling of the VGG activations,
so the same default weights work for torchvision's VGG16 (activations O(1)) and for
the Caffe release (inputs 0..255, activations ~50x larger); being constants, they
leave the Johnson loss otherwise unchanged (a per-layer weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.vgg import LAYER_INDEX, VGGFeatures

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYERS: tuple[str, ...] = ("relu2_2",)

#: Default loss weights (style is the total over the style layers, equally weighted).
#: Chosen on the shared photos with the Caffe-scale VGG file: Gatys optimisation at
#: 160 px (content on relu2_2) gives a mild look at style 1 and a heavy one at 10; in
#: lite training runs (128 px crops, starry night at 256 px) style 5 still showed no
#: content after 600 iterations while style 2 had readable shapes by 200, so 2 it is.
#: TV barely matters with upsample+conv decoders (no checkerboards); it only smooths speckle.
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 2.0
DEFAULT_TV_WEIGHT = 1.0


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Normalised Gram matrix, in fp32 whatever the input dtype.

    Shape: (N, C, H, W) -> (N, C, C), entries ``sum_hw f_c f_d / (C*H*W)``.
    """
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w).float()
    # Autocast would run the bmm in half precision again: opt out explicitly.
    with torch.autocast(device_type=f.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / float(c * h * w)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontal and vertical neighbours.

    Shape: (N, C, H, W) -> scalar.
    """
    x = image.float()
    dh = (x[..., 1:, :] - x[..., :-1, :]).square().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).square().mean()
    return dh + dw


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV loss against one style image.

    Args:
        vgg: frozen loss network (its device is where the style targets live).
        style_image: (1, 3, H, W) RGB float in [0, 1]; any size (``--style-size``
            sets the scale of the brush strokes).
        content_weight, style_weight, tv_weight: loss weights (style is averaged over
            the style layers, content over the content layers).

    ``forward(output, content_targets)`` returns a dict of scalar tensors
    ``content``, ``style``, ``tv`` (already weighted) and ``total``.
    """

    def __init__(
        self,
        vgg: VGGFeatures,
        style_image: torch.Tensor,
        style_layers: Sequence[str] = STYLE_LAYERS,
        content_layers: Sequence[str] = CONTENT_LAYERS,
        content_weight: float = DEFAULT_CONTENT_WEIGHT,
        style_weight: float = DEFAULT_STYLE_WEIGHT,
        tv_weight: float = DEFAULT_TV_WEIGHT,
        style_layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        for name in (*style_layers, *content_layers):
            if name not in LAYER_INDEX:
                raise ValueError(f"unknown VGG layer {name!r} (choose from {', '.join(LAYER_INDEX)})")
        if style_image.dim() != 4 or style_image.shape[:2] != (1, 3):
            raise ValueError(f"style image must be (1, 3, H, W), got {tuple(style_image.shape)}")
        self.vgg = vgg
        self.style_layers = tuple(style_layers)
        self.content_layers = tuple(content_layers)
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        lw = [1.0] * len(self.style_layers) if style_layer_weights is None else [float(w) for w in style_layer_weights]
        if len(lw) != len(self.style_layers) or any(w < 0 for w in lw) or sum(lw) <= 0:
            raise ValueError(f"style_layer_weights must be {len(self.style_layers)} non-negative numbers, got {lw}")
        # Relative weights, summing to 1: style_weight stays the total style weight.
        self.style_layer_weights = tuple(w / sum(lw) for w in lw)
        self.layers = tuple(dict.fromkeys((*self.style_layers, *self.content_layers)))
        with torch.no_grad():
            feats = vgg(style_image.float(), self.layers)
            for name in self.style_layers:
                g = gram_matrix(feats[name])
                self.register_buffer(f"gram_{name}", g)
                self.register_buffer(f"style_norm_{name}", g.square().mean().clamp_min(1e-12))
            for name in self.content_layers:
                self.register_buffer(f"content_norm_{name}", feats[name].float().square().mean().clamp_min(1e-12))

    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """VGG features of the content images (no gradient), to pass to :meth:`forward`."""
        with torch.no_grad():
            return {k: v.detach() for k, v in self.vgg(content, self.content_layers).items()}

    def forward(self, output: torch.Tensor, content_targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats = self.vgg(output, self.layers)
        style = output.new_zeros((), dtype=torch.float32)
        for name, weight in zip(self.style_layers, self.style_layer_weights, strict=True):
            target: torch.Tensor = getattr(self, f"gram_{name}")
            g = gram_matrix(feats[name])
            style = style + weight * F.mse_loss(g, target.expand_as(g)) / getattr(self, f"style_norm_{name}")
        content = output.new_zeros((), dtype=torch.float32)
        for name in self.content_layers:
            diff = F.mse_loss(feats[name].float(), content_targets[name].float())
            content = content + diff / getattr(self, f"content_norm_{name}")
        terms = {
            "content": content * (self.content_weight / max(len(self.content_layers), 1)),
            "style": style * self.style_weight,
            "tv": total_variation(output) * self.tv_weight,
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
