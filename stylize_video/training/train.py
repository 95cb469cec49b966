"""Train a feed-forward style network (Johnson et al. 2016) on a folder of photos.

``train(TrainConfig.from_options(style_image=..., data=..., output=...))`` runs the
whole job: scan and split the photos, build the loss network and targets, optimise
with Adam, save samples and resumable state periodically and on Ctrl-C, and write
the final checkpoint with its metadata.

Resume is exact: the state file holds the model, the optimizer (and AMP scaler),
the iteration count and the loss history, and the data order is a pure function of
``(seed, sample position)`` (see ``training.data``), so a resumed run reproduces the
losses of an uninterrupted one.

The pieces live in their own modules: the settings in :mod:`.config`, the loop in
:mod:`.trainer`, the state file in :mod:`.state`, one optimisation step in
:mod:`.step`; their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable

from ..models.transform_net import NetConfig
from ..models.vgg import VGGFeatures
from .config import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    StyleCredit,
    TrainConfig,
    TrainResult,
)
from .data import load_style_image
from .state import STATE_SUFFIX, STATE_VERSION
from .step import TrainStep
from .trainer import Trainer

__all__ = [
    "STATE_SUFFIX",
    "STATE_VERSION",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "StyleCredit",
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "Trainer",
    "load_style_image",
    "train",
]


def train(
    config: TrainConfig,
    *,
    vgg: VGGFeatures | None = None,
    arch: NetConfig | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run (or resume) a training job and write ``config.run.output``.

    Args:
        config: the run's settings.
        vgg: a loss network to use instead of loading ``config.loss.vgg_weights`` (tests
            pass a small random one).
        arch: an architecture overriding ``config.model.preset`` (tests use tiny nets).
        progress: show a tqdm bar.
        on_step: called after each completed step with ``(iteration, losses)``;
            raising ``KeyboardInterrupt`` there behaves like Ctrl-C.

    Raises:
        StylizeError: bad inputs or outputs. ``KeyboardInterrupt`` is re-raised
            after the resumable state has been saved.
    """
    return Trainer(config, vgg=vgg, arch=arch, progress=progress, on_step=on_step).run()
