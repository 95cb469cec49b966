"""Frozen VGG16 feature extractor (to relu4_3): the loss network of perceptual losses.

The module is pure: it is built from a state dict the caller loads (see
:func:`load_vgg_state`), normalises its input with the ImageNet statistics into a new
tensor, and returns the activations of the requested ReLU layers.

Two weight sources are common and their activations differ in scale: torchvision's
``IMAGENET1K_V1`` (inputs normalised, activations O(1)) and the original Caffe release
(inputs 0..255, activations ~50x larger). Losses built on this module should be
normalised by a reference's own feature statistics (see ``training.losses``) so that
one set of loss weights works with both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DependencyError, InputError
from ..files import file_sha256

log = logging.getLogger(__name__)

#: torchvision ``vgg16().features`` indices of the ReLUs the perceptual loss uses.
LAYER_INDEX: dict[str, int] = {
    "relu1_1": 1,
    "relu1_2": 3,
    "relu2_1": 6,
    "relu2_2": 8,
    "relu3_1": 11,
    "relu3_2": 13,
    "relu3_3": 15,
    "relu4_1": 18,
    "relu4_2": 20,
    "relu4_3": 22,
}

# VGG16 "D" configuration up to conv4_3: output channels, "M" = 2x2 max pool.
_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_features(width_div: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = max(1, int(v) // width_div)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=False)]
            cin = cout
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """VGG16 ``features`` up to relu4_3, frozen, returning named activations.

    Shape: (N, 3, H, W) RGB float in [0, 1] -> ``{layer: (N, C_l, H / 2^k, W / 2^k)}``.

    Args:
        state: weights in torchvision's key layout (``features.N.weight`` or
            ``N.weight``); ``None`` keeps a random initialisation (tests).
        width_div: divide every width by this (a cheap random stand-in for tests).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, state: dict[str, torch.Tensor] | None = None, width_div: int = 1) -> None:
        super().__init__()
        self.features = _build_features(width_div)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if state is not None:
            self.features.load_state_dict(_select_features(state), strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        # A loss network never trains; keep it in eval mode whatever the parent does.
        return super().train(False)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        want = {LAYER_INDEX[name]: name for name in layers}
        last = max(want)
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        # Run only as deep as the deepest requested layer (a content target at relu2_2
        # costs a third of a full pass).
        for i, layer in enumerate(self.features):
            if i > last:
                break
            h = F.relu(h) if isinstance(layer, nn.ReLU) else layer(h)
            if i in want:
                out[want[i]] = h
        return out


def _select_features(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the conv weights of features.0 .. features.21 in ``nn.Sequential`` key layout."""
    wanted = {
        f"{i}.{kind}"
        for i, v in enumerate(_build_features(64))
        if isinstance(v, nn.Conv2d)
        for kind in ("weight", "bias")
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key.removeprefix("module.").removeprefix("features.")
        if k in wanted:
            out[k] = value.float()
    missing = sorted(wanted - set(out), key=lambda s: int(s.split(".")[0]))
    if missing:
        raise InputError(
            f"VGG weights lack {len(missing)} tensor(s) needed up to relu4_3, e.g. {missing[0]!r} "
            "(expected torchvision's vgg16 key layout: features.N.weight)"
        )
    return out


def describe_vgg_source(path: str | os.PathLike[str] | None) -> dict[str, str]:
    """A small record of which VGG weights were used (for checkpoint metadata)."""
    if path is None:
        return {"source": "torchvision VGG16_Weights.IMAGENET1K_V1"}
    p = Path(path)
    return {"source": "file", "file": p.name, "sha256": file_sha256(p)[:16]}


def load_vgg_state(path: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """Read VGG16 weights (torchvision key layout) from ``.safetensors``/``.pth``, or torchvision's.

    Without ``path``, torchvision's ``VGG16_Weights.IMAGENET1K_V1`` is used: it is
    downloaded (528 MB) on first use and cached by ``torch.hub``.

    Raises:
        InputError: the file is missing or unreadable, or the weights cannot be
            downloaded (the message says to pass ``--vgg-weights``).
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"VGG weights file {str(p)!r} does not exist")
        try:
            if p.suffix == ".safetensors":
                from safetensors.torch import load_file

                return load_file(str(p))
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # safetensors/pickle raise many types; all mean "unreadable"
            raise InputError(f"VGG weights file {str(p)!r} is not readable: {exc}") from None
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise InputError(f"VGG weights file {str(p)!r} is not a state dict of tensors")
        return {str(k): v for k, v in obj.items()}
    try:
        from torchvision.models import VGG16_Weights
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise DependencyError("torchvision is needed for the default VGG weights: pip install torchvision") from exc
    try:
        return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise InputError(
            f"could not download torchvision's VGG16 weights ({exc}); when offline, pass "
            "--vgg-weights FILE (a .safetensors or .pth in torchvision's vgg16 key layout)"
        ) from None


def load_vgg(path: str | os.PathLike[str] | None = None) -> VGGFeatures:
    """A frozen :class:`VGGFeatures` on the CPU, loaded from ``path`` or torchvision."""
    return VGGFeatures(load_vgg_state(path))
