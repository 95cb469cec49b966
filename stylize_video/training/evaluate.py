"""Content and style loss of a style network on held-out photos: numbers to compare runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError
from ..models.transform_net import TransformNet
from .losses import PerceptualLoss

if TYPE_CHECKING:
    from ..models.vgg import VGGFeatures


def validation_losses(
    model: torch.nn.Module, loss_fn: PerceptualLoss, images: torch.Tensor, batch_size: int = 4
) -> dict[str, float]:
    """Mean loss terms of ``model`` over ``images`` (N, 3, H, W) in [0, 1].

    ``content``, ``style`` and ``tv`` are *unweighted* (the normalised terms with unit
    weights), so runs trained with different weights compare; ``total`` is the
    weighted sum the model was trained on. Runs on the model's device, without
    gradients, in batches of ``batch_size``.
    """
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device)
            terms = loss_fn(model(x).float(), loss_fn.content_targets(x))
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(x)
    means = {k: v / max(len(images), 1) for k, v in sums.items()}
    weights = {"content": loss_fn.content_weight, "style": loss_fn.style_weight, "tv": loss_fn.tv_weight}
    for k, w in weights.items():
        # A zero weight hides the term; report NaN rather than a made-up number.
        means[k] = means[k] / w if w > 0 else float("nan")
    return means


class FixedStyle(torch.nn.Module):
    """A multi-style network painting one fixed mixture of its styles: ``forward(x)``
    as a single-style network, for code that scores single-style networks.

    Shape: (B, 3, H, W) in [0, 1] -> same; ``weights`` (num_styles,) or (1, num_styles).
    """

    weights: torch.Tensor

    def __init__(self, model: TransformNet, weights: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("weights", weights.reshape(1, -1).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, style=self.weights.expand(len(x), -1))


def recorded_loss(
    vgg: VGGFeatures, painting: str | os.PathLike[str], training: Mapping[str, Any], device: torch.device
) -> PerceptualLoss:
    """The perceptual loss a network was trained with, from its ``training`` metadata.

    ``painting`` at the recorded ``style_size`` and the recorded weights (the defaults
    where none were recorded): scoring a network (:func:`evaluate_checkpoint`) and
    distilling it (``distill-styles --perceptual-weight``) use the same loss.
    """
    from .data import load_style_image
    from .losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT

    return PerceptualLoss(
        vgg,
        load_style_image(painting, training.get("style_size", 512)).to(device),
        content_weight=float(training.get("content_weight", DEFAULT_CONTENT_WEIGHT)),
        style_weight=float(training.get("style_weight", DEFAULT_STYLE_WEIGHT)),
        tv_weight=float(training.get("tv_weight", DEFAULT_TV_WEIGHT)),
        style_layer_weights=training.get("style_layer_weights"),
    )


@dataclass
class StyleEvaluation:
    """Result of :func:`evaluate_checkpoint` (see :func:`validation_losses` for the terms)."""

    checkpoint: str
    style_image: str
    images: int
    image_size: int
    losses: dict[str, float]


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    style_image: str | os.PathLike[str] | None = None,
    vgg_weights: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
    max_images: int = 64,
    device: str = "auto",
    val_fraction: float = 0.05,
    vgg: torch.nn.Module | None = None,
    style: str | int | None = None,
) -> StyleEvaluation:
    """Loss terms of a checkpoint on the held-out split of ``data``.

    The style image defaults to ``style_dir/<training.style_image>`` recorded in the
    checkpoint when ``style_image`` is a folder, and the loss weights, style size and
    ``image_size`` to those the checkpoint was trained with, so numbers compare with
    its ``val_*`` metrics. ``vgg`` overrides ``vgg_weights`` (tests pass a random stand-in).

    For a multi-style network, ``style`` (a name or an index) picks the style scored,
    with that style's recorded settings; by default the style the checkpoint was
    loaded by (the first when loaded by path). The result's ``checkpoint`` then reads
    ``FILE[STYLE]``.

    Raises:
        InputError: no style image can be found, the data has no validation images,
            or ``style`` is not in the network.
    """
    from ..devices import resolve_device
    from ..models.checkpoint import load_checkpoint
    from ..models.vgg import VGGFeatures, load_vgg_state
    from .data import PhotoSet, load_fixed
    from .temporal import validation_temporal

    ck = load_checkpoint(checkpoint)
    model: torch.nn.Module = ck.model
    label = str(ck.path)
    meta = ck.meta
    if ck.model.num_styles:
        index = _style_index(ck.style_names, ck.style_index if style is None else style, checkpoint)
        meta = ck.meta.for_style(index)
        model = FixedStyle(ck.model, torch.nn.functional.one_hot(torch.tensor(index), ck.model.num_styles))
        label = f"{ck.path}[{meta.name}]"
    elif style is not None and style not in (0, meta.name):
        raise InputError(f"{str(checkpoint)!r} is a single-style network ({meta.name}), it has no style {style!r}")
    training = meta.training
    recorded = str(training["style_image"]) if training.get("style_image") else None
    # Without --style-image, look for the recorded painting file name in the current folder.
    style_path = Path(style_image) if style_image else (Path(recorded) if recorded else None)
    if style_path is not None and style_path.is_dir() and recorded:
        style_path = style_path / recorded
    if style_path is None or not style_path.is_file():
        what = f"style image {str(style_path)!r} not found" if style_path else "no style image given"
        raise InputError(
            f"{what} (the checkpoint was trained on {recorded or 'an unrecorded image'!r}; pass --style-image PATH)"
        )
    dev = resolve_device(device)
    photos = PhotoSet.scan(data, val_fraction)
    if not photos.val:
        raise InputError(f"{str(data)!r} has no held-out validation images")
    # The size it was trained (and its val_* metrics computed) at, unless asked otherwise.
    image_size = image_size or int(training.get("image_size", 256))
    images = load_fixed(photos.val[:max_images], image_size)
    loss_net = vgg if isinstance(vgg, VGGFeatures) else VGGFeatures(load_vgg_state(vgg_weights))
    loss_net = loss_net.to(dev)
    loss_fn = recorded_loss(loss_net, style_path, training, dev)
    model = model.to(dev)
    losses = validation_losses(model, loss_fn, images)
    # Same motions as the run's own val_temporal: they depend on its batch size.
    losses["temporal"] = validation_temporal(model, images, batch_size=int(training.get("batch_size", 4)))
    return StyleEvaluation(label, str(style_path), len(images), image_size, losses)


def _style_index(names: list[str], style: str | int, checkpoint: object) -> int:
    if isinstance(style, int) and not isinstance(style, bool):
        if not -len(names) <= style < len(names):
            raise InputError(f"style index {style} out of range: {str(checkpoint)!r} holds {len(names)} styles")
        return style % len(names)
    if style not in names:
        raise InputError(f"{str(checkpoint)!r} holds no style {style!r} (it holds {', '.join(names)})")
    return names.index(str(style))
