"""Settings and result of a ``learn-style`` run (:class:`LearnStyleConfig`, :class:`LearnStyleResult`).

Kept apart from the learner (:mod:`.learn_style`) with what the state file must
agree on across a resume (:data:`RESUME_KEYS`), its suffix and version. The groups
(:class:`~.config.DataConfig`, :class:`~.config.LossConfig`...) are ``train``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StylizeError
from .config import DataConfig, LossConfig, OptimConfig, RunConfig, StyleCredit

__all__ = ["LEARN_STATE_SUFFIX", "RESUME_KEYS", "STATE_VERSION", "LearnStyleConfig", "LearnStyleResult"]

#: Suffix of the resumable state written beside the output.
LEARN_STATE_SUFFIX = ".learn-state.pt"
#: Version of the resumable state this module writes (a resume refuses any other).
STATE_VERSION = 1

#: Settings that must agree between a run and its resume.
RESUME_KEYS = (
    "image_size",
    "style_size",
    "batch_size",
    "seed",
    "val_fraction",
    "lr",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layer_weights",
    "temporal_weight",
    "full_finetune",
    "finetune_lr",
)


@dataclass(frozen=True)
class LearnStyleConfig:
    """Everything a ``learn-style`` run needs; each group validates itself.

    ``loss.style_image`` is the painting: an image file or a folder of images of one
    style. ``optim.iterations`` caps the vector phase (``run.time_limit`` may end it
    sooner); ``full_finetune`` whole-network steps at ``finetune_lr`` follow it.
    ``base`` is a network name or path (None: :func:`default_base`).
    """

    data: DataConfig
    loss: LossConfig
    run: RunConfig
    # A row of norm scales/shifts (values ~1) tolerates a far larger step than conv
    # weights: 3e-2 beat 1e-2 in 5 CPU minutes (benchmarks/results/learn_style.md).
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(iterations=1000, lr=3e-2))
    base: str | None = None
    full_finetune: int = 0
    finetune_lr: float = 1e-3
    credit: StyleCredit = field(default_factory=StyleCredit)

    def __post_init__(self) -> None:
        if self.full_finetune < 0:
            raise StylizeError(f"--full-finetune must be >= 0, got {self.full_finetune}")
        if not self.finetune_lr > 0:
            raise StylizeError(f"--finetune-lr must be a positive number, got {self.finetune_lr}")
        if self.loss.teacher:
            raise StylizeError("learn-style takes no teacher network")

    @property
    def state_path(self) -> Path:
        """Resumable state beside the output: ``NAME.safetensors.learn-state.pt``."""
        return Path(self.run.output + LEARN_STATE_SUFFIX)

    @property
    def name(self) -> str:
        """The new style's name: ``credit.name`` or the output's stem."""
        return self.credit.name or Path(self.run.output).stem

    def to_dict(self) -> dict[str, Any]:
        """Flat settings, as stored in the state file and the output's ``training`` metadata."""
        d = self.data
        loss = self.loss
        return {
            "painting": loss.style_image,
            "data": d.photos,
            "base": self.base,
            "vgg_weights": loss.vgg_weights,
            "image_size": d.image_size,
            "style_size": loss.style_size,
            "batch_size": d.batch_size,
            "seed": d.seed,
            "val_fraction": d.val_fraction,
            "val_images": d.val_images,
            "iterations": self.optim.iterations,
            "lr": self.optim.lr,
            "amp": self.optim.amp,
            "content_weight": loss.content_weight,
            "style_weight": loss.style_weight,
            "tv_weight": loss.tv_weight,
            "style_layer_weights": list(loss.style_layer_weights) if loss.style_layer_weights else None,
            "temporal_weight": loss.temporal_weight,
            "full_finetune": self.full_finetune,
            "finetune_lr": self.finetune_lr,
            "time_limit": self.run.time_limit,
            "device": self.run.device,
            "threads": self.run.threads,
        }


@dataclass
class LearnStyleResult:
    """What a finished run produced.

    ``kind`` is ``"vector"`` (a style-vector file attached to ``base``) or
    ``"network"`` (a standalone checkpoint, after ``full_finetune``).
    """

    output: Path
    kind: str
    base: str
    init_style: str
    iterations: int
    finetune_iterations: int
    seconds: float
    val_losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    timed_out: bool = False
