"""What a new style is learned on: the painting's files, the base network and the starting row.

A base network (multi-style, or single-style seen as a one-style conditional
network) is frozen; training runs on a single-style *view* of it with one style row
(:func:`single_style_view`), starting from one of its rows or their mean
(:func:`mean_style_vector`). The loss is the perceptual loss against the painting, or
the averaged Gram statistics of a folder of them (:func:`painting_loss`). Kept apart
from the training loop in :mod:`.learn_style`, which uses these pieces.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from ..errors import CheckpointError, InputError
from ..files import file_sha256
from ..models.checkpoint import Checkpoint, load_checkpoint, search_dirs, style_refs
from ..models.transform_net import TransformNet
from ..models.vgg import VGGFeatures
from .config import LossConfig
from .evaluate import validation_losses
from .losses import PerceptualLoss
from .step import perceptual_loss

__all__ = [
    "DEFAULT_SINGLE_BASE",
    "conditional_base",
    "default_base",
    "mean_style_vector",
    "nearest_style",
    "painting_files",
    "painting_loss",
    "painting_sha256",
    "single_style_view",
    "warn_if_unreachable",
]

log = logging.getLogger(__name__)

#: The single-style network used as the base when no multi-style network is installed:
#: the most trained of the shipped ``full`` networks (4,338 iterations).
DEFAULT_SINGLE_BASE = "starry-night"


def painting_files(painting: str | Path) -> list[Path]:
    """The image files of a painting: the file itself, or every image in a folder (recursive, sorted).

    Raises:
        InputError: the path does not exist, or a folder holds no images.
    """
    from ..io.images import IMAGE_SUFFIXES

    p = Path(painting)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise InputError(f"painting folder {str(p)!r} holds no images")
        return files
    raise InputError(f"painting {str(p)!r} does not exist")


def default_base() -> str:
    """The network a new style is learned on when ``--base`` is not given.

    An installed multi-style network that is not a ``lite`` one (``full`` first, then
    by name) when there is one, else :data:`DEFAULT_SINGLE_BASE`, a single-style
    ``full`` network seen as a one-style conditional network. A multi-style base is the
    better choice when it is as large: its convolutions serve many styles, and the new
    style blends with all of them. A ``lite`` gallery is not: its 8-channel full-
    resolution layers leave a vector little to move (a Hokusai vector learned on an
    interim ``lite`` gallery matched the style loss at 1.6x the content loss of one
    learned on ``starry-night``), so it is used only when named with ``--base``.
    """
    networks: dict[Path, str] = {}
    for ref in style_refs().values():
        if ref.kind == "multi" and ref.path not in networks:
            try:
                networks[ref.path] = load_checkpoint(ref.path).meta.preset or ""
            except CheckpointError:
                continue
    candidates = [p for p, preset in networks.items() if preset != "lite"]
    if not candidates:
        return DEFAULT_SINGLE_BASE
    return str(min(candidates, key=lambda p: (networks[p] != "full", p.stem)))


def painting_sha256(files: list[Path]) -> str:
    """One hash of the painting's files, by content: ``--resume`` must refuse a painting
    replaced under the same name."""
    h = hashlib.sha256()
    for f in files:
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def warn_if_unreachable(base_path: Path, output: str) -> None:
    """Warn when the style vector ``output`` will not find its base network ``base_path``.

    A vector file names its base by stem, looked up beside the vector and in the
    styles folders.
    """
    out_dir = Path(output).resolve().parent
    dirs = [out_dir, *(d.resolve() for d in search_dirs())]
    if not any((d / base_path.name).is_file() for d in dirs):
        log.warning(
            "the base network %s is neither beside %s nor in a styles folder: copy it there to load the style",
            base_path,
            output,
        )


def conditional_base(ck: Checkpoint) -> tuple[TransformNet, list[str]]:
    """The base as a conditional network (fp32, frozen) and its style names by row."""
    net = ck.model.float()
    names = ck.meta.style_names
    if not net.num_styles:
        net = TransformNet.from_single([net])
    return net.eval().requires_grad_(False), names


def single_style_view(base: TransformNet, vector: dict[str, torch.Tensor]) -> TransformNet:
    """A single-style network computing what ``base`` computes with style row ``vector``."""
    net = TransformNet(base.config.single())
    state = {k: vector.get(k, v) for k, v in base.state_dict().items()}
    net.load_state_dict(state)
    return net


def mean_style_vector(base: TransformNet) -> dict[str, torch.Tensor]:
    """The mean of every style row of ``base``: a neutral start between its styles."""
    rows = [base.get_style_vector(i) for i in range(base.num_styles)]
    return {k: torch.stack([r[k] for r in rows]).mean(dim=0) for k in rows[0]}


def painting_loss(
    vgg: VGGFeatures, paintings: list[torch.Tensor], loss: LossConfig, device: torch.device
) -> PerceptualLoss:
    """The perceptual loss against one painting (1, 3, H, W), or the mean Gram statistics of several."""
    fns = [perceptual_loss(vgg, image.to(device), loss) for image in paintings]
    first = fns[0]
    if len(fns) > 1:
        # Averaged Grams: the style of the set as a whole (a folder of one artist's
        # details). The normalisers follow from the averaged Gram, as for one image.
        with torch.no_grad():
            for name in first.style_layers:
                g = torch.stack([getattr(f, f"gram_{name}") for f in fns]).mean(dim=0)
                getattr(first, f"gram_{name}").copy_(g)
                getattr(first, f"style_norm_{name}").copy_(g.square().mean().clamp_min(1e-12))
            for name in first.content_layers:
                norm = torch.stack([getattr(f, f"content_norm_{name}") for f in fns]).mean()
                getattr(first, f"content_norm_{name}").copy_(norm)
    return first


def nearest_style(
    base: TransformNet, names: list[str], loss_fn: PerceptualLoss, images: torch.Tensor
) -> tuple[str, dict[str, float]]:
    """The style of ``base`` (or the mean of all, ``(mean)``) whose output on ``images``
    is nearest the painting in style loss, and every candidate's loss."""
    candidates: dict[str, dict[str, torch.Tensor]] = {name: base.get_style_vector(i) for i, name in enumerate(names)}
    if base.num_styles > 1:
        candidates["(mean)"] = mean_style_vector(base)
    device = images.device
    scores: dict[str, float] = {}
    for name, vector in candidates.items():
        net = single_style_view(base, vector).to(device).eval()
        scores[name] = validation_losses(net, loss_fn, images)["style"]
    best = min(scores, key=lambda k: scores[k])
    log.info("starting from %s (style loss %.3g)", best, scores[best])
    return best, scores
