"""Settings of a training run: frozen groups, each validated on construction.

:class:`TrainConfig` holds one group per concern (:class:`DataConfig`,
:class:`LossConfig`, :class:`ModelConfig`, :class:`OptimConfig`, :class:`RunConfig`,
:class:`StyleCredit`). Files written by a run (the resumable state, the checkpoint's
``training`` metadata) keep the flat option names of ``stylize-video train``
(``image_size``, ``lr``, ...): :meth:`TrainConfig.to_dict` writes them and
:meth:`TrainConfig.from_options` reads them, so the formats did not change when the
settings were grouped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..errors import OutputError, StylizeError
from ..models.transform_net import PRESETS
from .losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT
from .temporal import DEFAULT_TEMPORAL_WEIGHT

#: Suffix of the resumable state written beside the output checkpoint.
STATE_SUFFIX = ".train-state.pt"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_positive(values: dict[str, int]) -> None:
    for key, value in values.items():
        if value < 1:
            raise StylizeError(f"{_option(key)} must be >= 1, got {value}")


@dataclass(frozen=True)
class DataConfig:
    """Which crops the network sees, and in what order.

    ``seed`` fixes the data order (and the network's initialisation); the
    validation split is the fixed ``val_fraction`` of ``photos`` (see ``training.data``).
    """

    photos: str
    image_size: int = 256
    batch_size: int = 4
    seed: int = 0
    val_fraction: float = 0.05
    val_images: int = 64
    workers: int | None = None

    def __post_init__(self) -> None:
        _check_positive({"image_size": self.image_size, "batch_size": self.batch_size, "val_images": self.val_images})
        if self.image_size < 16:
            raise StylizeError(f"--image-size must be >= 16, got {self.image_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise StylizeError(f"validation fraction must be in [0, 1), got {self.val_fraction}")
        if self.seed < 0:
            raise StylizeError(f"--seed must be >= 0, got {self.seed}")
        if self.workers is not None and self.workers < 0:
            raise StylizeError(f"--workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class LossConfig:
    """What the network is trained to minimise: perceptual loss (+ teacher, + temporal).

    ``style_size`` is the longer side the painting is scaled to (smaller -> larger
    brush strokes); ``None`` keeps it as is. ``vgg_weights`` is the loss network's
    file (``None``: torchvision's). ``teacher`` is a checkpoint to distil from.
    """

    style_image: str
    style_size: int | None = 512
    vgg_weights: str | None = None
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float = DEFAULT_STYLE_WEIGHT
    tv_weight: float = DEFAULT_TV_WEIGHT
    style_layer_weights: tuple[float, ...] | None = None
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    teacher: str | None = None
    distill_weight: float = 50.0

    def __post_init__(self) -> None:
        if self.style_size is not None and self.style_size < 16:
            raise StylizeError(f"--style-size must be >= 16, got {self.style_size}")
        for key in ("content_weight", "style_weight", "tv_weight", "distill_weight", "temporal_weight"):
            value = getattr(self, key)
            if not (value >= 0 and math.isfinite(value)):
                raise StylizeError(f"{_option(key)} must be >= 0, got {value}")
        if self.style_layer_weights is not None:
            object.__setattr__(self, "style_layer_weights", tuple(float(w) for w in self.style_layer_weights))
            weights = self.style_layer_weights
            if len(weights) != 4 or min(weights) < 0 or not sum(weights) > 0:
                raise StylizeError(f"--style-layer-weights needs 4 numbers >= 0, not all 0, got {list(weights)}")


@dataclass(frozen=True)
class ModelConfig:
    """The network: an architecture preset, optionally started from a trained checkpoint."""

    preset: str = "full"
    init: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise StylizeError(f"unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")


@dataclass(frozen=True)
class OptimConfig:
    """How long and how fast Adam runs, and in which precision.

    ``amp``: ``auto`` (bf16 on CUDA when supported, else fp16 with loss scaling;
    bf16 on CPUs with native bf16, else off), ``off``, ``bf16`` or ``fp16``.
    """

    iterations: int = 20000
    lr: float = 1e-3
    amp: str = "auto"

    def __post_init__(self) -> None:
        _check_positive({"iterations": self.iterations})
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise StylizeError(f"--lr must be a positive number, got {self.lr}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise StylizeError(f"--amp must be auto, off, bf16 or fp16, got {self.amp!r}")


@dataclass(frozen=True)
class RunConfig:
    """Where the run executes, what it writes and when it stops.

    ``time_limit`` (seconds) ends the loop early; the run then validates and writes
    the checkpoint as usual and keeps its state for ``resume``.
    """

    output: str
    checkpoint_every: int = 500
    sample_every: int = 500
    resume: bool = False
    overwrite: bool = False
    time_limit: float | None = None
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if Path(self.output).suffix != ".safetensors":
            raise OutputError(f"output {self.output!r} must end in .safetensors")
        _check_positive({"checkpoint_every": self.checkpoint_every})
        if self.sample_every < 0:
            raise StylizeError(f"--sample-every must be >= 0 (0: never), got {self.sample_every}")
        if self.time_limit is not None and not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            raise StylizeError(f"--time-limit must be a positive number of seconds, got {self.time_limit}")


class PaintingFields(TypedDict):
    """A painting's credit fields, as ``CheckpointMeta`` and ``StyleInfo`` take them."""

    title: str | None
    artist: str | None
    year: str | None
    credit: str | None


@dataclass(frozen=True)
class StyleCredit:
    """The painting's credit, stored in the checkpoint (``name`` defaults to the output's stem)."""

    name: str | None = None
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None

    def painting(self) -> PaintingFields:
        """The painting's fields as metadata takes them (``title``, ``artist``, ``year``, ``credit``)."""
        return {"title": self.title, "artist": self.artist, "year": self.year, "credit": self.credit}


#: Flat option name -> (group, field). The order is the one the state file and the
#: checkpoint's ``training`` metadata have always had; only ``data`` is renamed.
FLAT_KEYS: dict[str, tuple[str, str]] = {
    "style_image": ("loss", "style_image"),
    "data": ("data", "photos"),
    "output": ("run", "output"),
    "preset": ("model", "preset"),
    "vgg_weights": ("loss", "vgg_weights"),
    "image_size": ("data", "image_size"),
    "style_size": ("loss", "style_size"),
    "batch_size": ("data", "batch_size"),
    "iterations": ("optim", "iterations"),
    "lr": ("optim", "lr"),
    "content_weight": ("loss", "content_weight"),
    "style_weight": ("loss", "style_weight"),
    "tv_weight": ("loss", "tv_weight"),
    "style_layer_weights": ("loss", "style_layer_weights"),
    "seed": ("data", "seed"),
    "checkpoint_every": ("run", "checkpoint_every"),
    "sample_every": ("run", "sample_every"),
    "resume": ("run", "resume"),
    "overwrite": ("run", "overwrite"),
    "threads": ("run", "threads"),
    "device": ("run", "device"),
    "amp": ("optim", "amp"),
    "workers": ("data", "workers"),
    "teacher": ("loss", "teacher"),
    "distill_weight": ("loss", "distill_weight"),
    "temporal_weight": ("loss", "temporal_weight"),
    "init": ("model", "init"),
    "time_limit": ("run", "time_limit"),
    "val_fraction": ("data", "val_fraction"),
    "val_images": ("data", "val_images"),
    "name": ("credit", "name"),
    "title": ("credit", "title"),
    "artist": ("credit", "artist"),
    "year": ("credit", "year"),
    "credit": ("credit", "credit"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs, grouped by concern; each group validates itself.

    Build it from groups (``TrainConfig(DataConfig("photos/"), LossConfig("starry.jpg"),
    RunConfig("out.safetensors"), optim=OptimConfig(iterations=2000))``) or from the
    flat options of ``stylize-video train`` with :meth:`from_options`.
    """

    data: DataConfig
    loss: LossConfig
    run: RunConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    credit: StyleCredit = field(default_factory=StyleCredit)

    def __post_init__(self) -> None:
        for name, kind in _GROUPS.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                # The flat keywords of the old constructor land here as plain values.
                raise TypeError(
                    f"TrainConfig.{name} must be a {kind.__name__}, got {value!r} "
                    "(build from flat options with TrainConfig.from_options)"
                )

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """Build from flat options named as ``stylize-video train``'s (``style_image``,
        ``data``, ``output``, ``image_size``, ``lr``...; see :data:`FLAT_KEYS`).

        Raises:
            TypeError: an unknown option, or a missing ``style_image``/``data``/``output``.
            StylizeError: a value out of range.
        """
        missing = [key for key in ("style_image", "data", "output") if key not in options]
        if missing:
            raise TypeError(f"TrainConfig.from_options: missing {', '.join(missing)}")
        groups: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
        for key, value in options.items():
            group, name = _flat_key(key)
            groups[group][name] = value
        return cls(**{name: _GROUPS[name](**kw) for name, kw in groups.items()})

    def replace(self, **options: Any) -> TrainConfig:
        """A copy with some flat options changed (``config.replace(resume=True, iterations=4000)``)."""
        changes: dict[str, dict[str, Any]] = {}
        for key, value in options.items():
            group, name = _flat_key(key)
            changes.setdefault(group, {})[name] = value
        groups = {group: dataclasses.replace(getattr(self, group), **kw) for group, kw in changes.items()}
        return dataclasses.replace(self, **groups)

    def option(self, key: str) -> Any:
        """The value of one flat option (``config.option("image_size")``)."""
        group, name = _flat_key(key)
        return getattr(getattr(self, group), name)

    def to_dict(self) -> dict[str, Any]:
        """Flat options in their historical order: the ``config`` of the state file and
        the basis of the checkpoint's ``training`` metadata."""
        return {key: self.option(key) for key in FLAT_KEYS}

    @staticmethod
    def defaults() -> dict[str, Any]:
        """Default value of every flat option that has one (states written before a
        setting existed lack its key, and are read as its default)."""
        out: dict[str, Any] = {}
        for key, (group, name) in FLAT_KEYS.items():
            f = next(f for f in dataclasses.fields(_GROUPS[group]) if f.name == name)
            if f.default is not dataclasses.MISSING:
                out[key] = f.default
        return out

    @property
    def state_path(self) -> Path:
        """Resumable state beside the output: ``NAME.safetensors.train-state.pt``."""
        return Path(self.run.output + STATE_SUFFIX)

    @property
    def samples_dir(self) -> Path:
        """Periodic sample stylizations beside the output: ``NAME_samples/``."""
        out = Path(self.run.output)
        return out.with_name(out.stem + "_samples")


_GROUPS: dict[str, Any] = {
    "data": DataConfig,
    "loss": LossConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "credit": StyleCredit,
}


def _flat_key(key: str) -> tuple[str, str]:
    try:
        return FLAT_KEYS[key]
    except KeyError:
        raise TypeError(f"unknown training option {key!r}") from None


@dataclass
class TrainResult:
    """What a finished run produced."""

    checkpoint: Path
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    skipped: list[str] = field(default_factory=list)
