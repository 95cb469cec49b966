"""Settings and result of a ``distill-styles`` run (:class:`DistillConfig`, :class:`DistillResult`).

Kept apart from the distillation loop (:mod:`.multistyle`) so the settings, what a
resume must share with the saved run (:data:`RESUME_KEYS`) and the state's version
can be read without the loop's machinery.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, StylizeError
from .config import STATE_SUFFIX

__all__ = ["RESUME_KEYS", "STATE_VERSION", "DistillConfig", "DistillResult"]

#: Version of the resumable state this module writes (a resume refuses any other).
STATE_VERSION = 1

#: Settings a ``resume`` must share with the saved run (anything else may change, e.g. the time limit).
#: ``lr`` is not among them: a resume may continue at a lower rate (the saved optimizer's rate is replaced).
RESUME_KEYS = (
    "image_size",
    "batch_size",
    "blur_weight",
    "temporal_weight",
    "distill_weight",
    "perceptual_weight",
    "init",
    "seed",
    "val_fraction",
)


@dataclass(frozen=True)
class DistillConfig:
    """Settings of a distillation run (validated on construction).

    Attributes:
        teachers: single-style checkpoints (names or paths), same architecture; their
            order is the order of the styles.
        output: the multi-style ``.safetensors`` to write.
        photos: photo folder or ``.tar`` (its fixed held-out split is used for validation).
        image_size: training crop size.
        batch_size: crops per step (styles mix within a batch).
        iterations: steps to run at most (``time_limit`` usually ends the run first).
        lr: Adam learning rate.
        blur_weight: weight of the L1 term on 4x average-pooled images.
        temporal_weight: weight of the temporal loss on the student (0: off).
        distill_weight: weight of the distillation loss.
        perceptual_weight: weight of each style's own perceptual loss (content + style
            + TV against its painting, with the teacher's recorded loss weights; 0: off,
            no VGG pass). Pixel losses average the teachers' textures away (a student
            trained on L1 alone scored 1.6-2.1x its teachers' style loss), this puts
            them back; it needs ``style_images`` and costs a VGG pass per crop.
        style_images: folder holding the paintings the teachers recorded.
        vgg_weights: VGG16 weights file for the perceptual loss.
        init: a multi-style checkpoint holding the teachers' styles (same names, same
            order) to start from instead of :meth:`TransformNet.from_single`: a second
            phase (e.g. with the perceptual loss) after a cheap pixel-only one.
        amp: autocast precision of the forward passes (``auto``, ``off``, ``bf16``, ``fp16``).
        seed: data order and motions.
        time_limit: seconds of training after which the run finishes as usual.
        checkpoint_every: steps between saves of the resumable state.
    """

    teachers: tuple[str, ...]
    output: str
    photos: str
    image_size: int = 128
    batch_size: int = 8
    iterations: int = 100_000
    lr: float = 1e-3
    blur_weight: float = 1.0
    temporal_weight: float = 0.0
    distill_weight: float = 1.0
    perceptual_weight: float = 0.0
    style_images: str | None = None
    vgg_weights: str | None = None
    init: str | None = None
    amp: str = "auto"
    seed: int = 0
    val_fraction: float = 0.05
    val_images: int = 64
    time_limit: float | None = None
    checkpoint_every: int = 100
    device: str = "auto"
    threads: int | None = None
    resume: bool = False
    overwrite: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "teachers", tuple(str(t) for t in self.teachers))
        if len(self.teachers) < 1:
            raise StylizeError("distill-styles needs at least one teacher network")
        for key in ("image_size", "batch_size", "iterations", "val_images", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise StylizeError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.image_size < 16:
            raise StylizeError(f"--image-size must be >= 16, got {self.image_size}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise StylizeError(f"--amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        if self.perceptual_weight > 0 and not self.style_images:
            raise StylizeError("the perceptual loss needs --style-images (the folder holding the paintings)")
        for key in ("lr", "blur_weight", "temporal_weight", "distill_weight", "perceptual_weight"):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0 or (key == "lr" and value == 0):
                raise StylizeError(f"--{key.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise StylizeError(f"--time-limit must be > 0, got {self.time_limit}")
        if not 0.0 < self.val_fraction < 1.0:
            raise StylizeError(f"validation fraction must be in (0, 1), got {self.val_fraction}")
        if not str(self.output).endswith(".safetensors"):
            raise OutputError(f"output {self.output!r} must end in .safetensors")

    @property
    def state_path(self) -> Path:
        """The resumable state beside the output."""
        return Path(self.output).with_name(Path(self.output).name + STATE_SUFFIX)

    def to_dict(self) -> dict[str, Any]:
        """Flat settings for the state file and the checkpoint's ``training`` metadata."""
        d = dataclasses.asdict(self)
        d["teachers"] = list(self.teachers)
        return d


@dataclass
class DistillResult:
    """What a run produced: the checkpoint, its steps and per-style validation error."""

    path: Path
    iterations: int
    history: list[dict[str, float]]
    val_distill: dict[str, float]
    images_per_s: float
    timed_out: bool = False
