"""Optimization-based style transfer (Gatys et al. 2016): optimise the pixels themselves.

Slow (hundreds of VGG passes per image) but works with any painting without
training, and is the quality reference for stills. Uses the same
:class:`~stylize_video.training.losses.PerceptualLoss` as training, with the content
loss on relu4_2 as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import StylizeError
from .losses import STYLE_LAYERS, PerceptualLoss

#: Gatys et al. take content from relu4_2: deeper than Johnson's relu2_2, so the
#: picture keeps its layout while the textures are free to change.
OPTIMIZE_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
#: Style weight 3 with relu4_2 content gave a strongly painted but readable still in a
#: 128 px sweep (3 / 20 / 100) with the shared Caffe-scale VGG file.
DEFAULT_OPTIMIZE_STYLE_WEIGHT = 3.0
DEFAULT_OPTIMIZE_TV_WEIGHT = 1.0


@dataclass(frozen=True)
class OptimizeSettings:
    """How to run the optimisation.

    Attributes:
        iterations: optimizer iterations (L-BFGS iterations may evaluate the loss
            several times for their line search).
        optimizer: ``lbfgs`` (fast convergence, the classic choice) or ``adam``.
        lr: step size; ``None`` picks 1.0 for L-BFGS and 0.02 for Adam.
        init: start from the ``content`` image or from ``noise``.
        seed: for the noise initialisation.
    """

    iterations: int = 300
    optimizer: str = "lbfgs"
    lr: float | None = None
    init: str = "content"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise StylizeError(f"--iterations must be >= 1, got {self.iterations}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise StylizeError(f"--optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise StylizeError(f"--lr must be a positive number, got {self.lr}")
        if self.init not in ("content", "noise"):
            raise StylizeError(f"--init must be content or noise, got {self.init!r}")


def optimize_image(
    content: torch.Tensor,
    loss_fn: PerceptualLoss,
    settings: OptimizeSettings | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Optimise an image to match ``content``'s features and the loss's style.

    Args:
        content: (1, 3, H, W) RGB in [0, 1] on the loss network's device (not modified).
        loss_fn: the perceptual loss holding the style targets.
        settings: optimizer settings.
        progress: show a tqdm bar.
        on_step: called after each iteration with ``(iteration, losses)``.

    Returns:
        The stylised image (1, 3, H, W) in [0, 1] and the loss history (one dict of
        ``total/content/style/tv`` per iteration, measured before its update).
    """
    from tqdm.auto import tqdm

    s = settings or OptimizeSettings()
    targets = loss_fn.content_targets(content)
    if s.init == "content":
        start = content.detach().clone(memory_format=torch.contiguous_format)
    else:
        gen = torch.Generator().manual_seed(s.seed)
        start = torch.rand(content.shape, generator=gen).to(content.device)
    # The pixels are free parameters (no clamp inside the loop: clamping between
    # L-BFGS steps corrupts its curvature history); the result is clamped once.
    image = start.requires_grad_(True)
    optimizer: torch.optim.Optimizer
    if s.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            [image], lr=s.lr or 1.0, max_iter=1, history_size=50, line_search_fn="strong_wolfe"
        )
    else:
        optimizer = torch.optim.Adam([image], lr=s.lr or 0.02)

    history: list[dict[str, float]] = []
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        terms = loss_fn(image, targets)
        terms["total"].backward()
        if not last:
            last.update({k: v.detach() for k, v in terms.items()})
        return terms["total"]

    bar = tqdm(range(s.iterations), disable=not progress, unit="it", dynamic_ncols=True)
    for it in bar:
        last.clear()
        optimizer.step(closure)  # type: ignore[arg-type]
        row = {k: float(v) for k, v in last.items()}
        if not math.isfinite(row["total"]):
            raise StylizeError(f"optimisation diverged at iteration {it + 1} (loss {row['total']}); lower --lr")
        if s.optimizer == "lbfgs" and history and row["total"] >= history[-1]["total"]:
            # torch's L-BFGS stops moving for good once its curvature history yields a
            # non-descent direction (seen with large style weights); restarting from
            # the current image with an empty history gets it going again.
            optimizer.state.clear()
        history.append(row)
        bar.set_postfix(loss=f"{row['total']:.4g}", style=f"{row['style']:.3g}", content=f"{row['content']:.3g}")
        if on_step is not None:
            on_step(it + 1, row)
    bar.close()
    return image.detach().clamp(0.0, 1.0), history


def make_optimize_loss(
    vgg: torch.nn.Module,
    style: torch.Tensor,
    content_weight: float = 1.0,
    style_weight: float = DEFAULT_OPTIMIZE_STYLE_WEIGHT,
    tv_weight: float = DEFAULT_OPTIMIZE_TV_WEIGHT,
) -> PerceptualLoss:
    """The Gatys loss: style on the four Johnson layers, content on relu4_2."""
    from ..models.vgg import VGGFeatures

    if not isinstance(vgg, VGGFeatures):
        raise TypeError(f"expected a VGGFeatures, got {type(vgg).__name__}")
    return PerceptualLoss(
        vgg,
        style,
        style_layers=STYLE_LAYERS,
        content_layers=OPTIMIZE_CONTENT_LAYERS,
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
    )
