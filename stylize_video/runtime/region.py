"""The pipeline's person-aware stage: which region is stylized, in which style, with what alpha.

:class:`RegionStage` holds a :class:`~stylize_video.person.MaskWorker` (the mask is
computed on its own thread while the network runs) and does the compositing on the
device tensors, before the download:

* ``region="background"`` / ``"person"``: the other region keeps the original
  pixels (bit for bit where the mask is 0 or 1);
* a ``person_stylizer``: the person in a second style over the background in the
  first (``region`` is then ``all``), blended before temporal smoothing, so the
  smoother steadies both;
* ``alpha``: with ``region="person"``, the stylized frame plus the mask as an alpha
  plane (straight alpha: the colours at the feathered edge are the stylized ones).

The mask model is loaded on first use (``masker_factory``), so a live run can start
with ``region="all"`` and switch later; a model that cannot be loaded then is one
warning, and the region stays ``all``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import StylizeError
from ..person import REGIONS, MaskWorker, Region, composite, composite_styles
from ..person.refine import Motion

if TYPE_CHECKING:
    from .stylizer import Stylizer

log = logging.getLogger(__name__)

#: Builds the per-frame masker (a :class:`~stylize_video.person.PersonMasker`, or any
#: ``(frame, motion=None) -> float32 HxW mask`` callable); called once, on first use.
MaskerFactory = Callable[[], Callable[..., np.ndarray]]


def make_segmenter(model_path: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The person model: :class:`~stylize_video.person.PersonSegmenter` from ``model_path``
    (None: found as :func:`~stylize_video.person.find_model` finds it, downloaded on first use).

    The one place the commands and batch workers build it (tests replace it with a fake).
    """
    from ..person import PersonSegmenter

    return PersonSegmenter(path=model_path)


def masker_factory(
    model_path: str | None = None, *, smoothing: float = 0.5, model_every: int | None = None, **options: Any
) -> MaskerFactory:
    """A :data:`MaskerFactory` for the person model at ``model_path`` (see :func:`make_segmenter`).

    ``smoothing``: the mask's EMA strength (0 for still images). ``model_every``: run
    the model on every n-th frame and carry the mask in between (see
    :class:`~stylize_video.person.PersonMasker`); None: :data:`~stylize_video.person.MODEL_EVERY`
    for video, 1 with ``smoothing=0`` (still images: each is its own scene, nothing to carry).
    ``options``: further :class:`~stylize_video.person.PersonMasker` settings (benchmarks compare them).
    """
    from ..person import MODEL_EVERY

    every = model_every if model_every is not None else (MODEL_EVERY if smoothing > 0 else 1)

    def make() -> Callable[..., np.ndarray]:
        from ..person import PersonMasker

        # Looked up at call time, so a replaced make_segmenter is the one used.
        return PersonMasker(make_segmenter(model_path), smoothing=smoothing, model_every=every, **options)

    return make


def check_region(region: str, *, person_style: bool = False, alpha: bool = False) -> Region:
    """Validate a region choice with the options that depend on it.

    Raises:
        StylizeError: an unknown region, ``person_style`` without ``region="all"``, or
            ``alpha`` without ``region="person"`` (the message names the option).
    """
    if region not in REGIONS:
        raise StylizeError(f"unknown region {region!r} (choose {', '.join(REGIONS)})")
    if person_style and region != "all":
        raise StylizeError(
            f"--person-style paints the person over the background's style: use it with --region all, not {region}"
        )
    if alpha and region != "person":
        raise StylizeError(
            f"--alpha writes the stylized person over transparency: it needs --region person, not {region}"
        )
    return region  # type: ignore[return-value]


class RegionStage:
    """Masks on a worker thread and compositing on the device (see the module docstring).

    Per frame the pipeline calls :meth:`submit` (before the network), then
    :meth:`restyle` (after it, before smoothing) and :meth:`finish` (after smoothing,
    before the download). With ``region="all"`` and no second style nothing runs.

    Args:
        masker_factory: builds the masker on first use (see :data:`MaskerFactory`).
        region: ``all``, ``background`` or ``person``; live controls may change it.
        person_stylizer: the person's own style (``region`` must be ``all``).
        alpha: give the person's mask as the frame's alpha (``region`` must be ``person``).
    """

    def __init__(
        self,
        masker_factory: MaskerFactory,
        region: str = "all",
        *,
        person_stylizer: Stylizer | None = None,
        alpha: bool = False,
    ) -> None:
        self.region: Region = check_region(region, person_style=person_stylizer is not None, alpha=alpha)
        self.person_stylizer = person_stylizer
        self.alpha = alpha
        self._factory: MaskerFactory | None = masker_factory
        self._masker: Callable[..., np.ndarray] | None = None
        self._worker: MaskWorker | None = None
        self._mask: np.ndarray | None = None
        self._was_active = False

    @property
    def active(self) -> bool:
        """Whether frames need a mask (a region other than ``all``, or a second style)."""
        return self.region != "all" or self.person_stylizer is not None

    def set_region(self, region: str) -> None:
        """Switch the region live (``all``, ``background`` or ``person``); alpha output keeps ``person``.

        Raises:
            ValueError: an unknown region, or a change that the outputs cannot follow.
        """
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r} (choose {', '.join(REGIONS)})")
        if self.alpha and region != "person":
            raise ValueError("the alpha output needs the person region")
        if self.person_stylizer is not None and region != "all":
            raise ValueError("with a person style the region stays all")
        if region != "all" and not self._load():
            return
        self.region = region  # type: ignore[assignment]

    def _load(self) -> bool:
        """The masker and its thread, made on first use; False (one warning) if the model is missing."""
        if self._worker is not None:
            return True
        if self._factory is None:
            return False  # failed before: warned then
        factory, self._factory = self._factory, None
        try:
            self._masker = factory()
        except StylizeError as exc:
            log.warning("person region unavailable: %s", exc)
            return False
        self._worker = MaskWorker(self._masker)
        return True

    def load(self) -> None:
        """Load the mask model now (before the first frame): its errors are raised, not warned."""
        if self._worker is None and self._factory is not None:
            factory, self._factory = self._factory, None
            self._masker = factory()
            self._worker = MaskWorker(self._masker)

    def reset(self) -> None:
        """A cut: the mask's temporal history starts over (call between frames)."""
        reset = getattr(self._masker, "reset", None)
        if reset is not None:
            reset()

    def submit(self, frame_u8: np.ndarray, motion: Motion | None = None) -> None:
        """Start the mask of this frame on the worker thread (before the network runs).

        ``motion``: the flow smoother's :meth:`~stylize_video.runtime.flow_smoother.FlowSmoother.pending_flow`
        for this frame (the mask's history follows it), or None (an EMA).
        """
        self._mask = None
        active = self.active and self._load()
        if active and not self._was_active:
            self.reset()  # a mask history from before a pause in masking is stale
        self._was_active = active
        if active:
            assert self._worker is not None
            self._worker.submit(frame_u8, motion)

    def mask(self) -> np.ndarray | None:
        """This frame's mask (waits for the worker), or None when nothing was submitted."""
        if self._mask is None and self._worker is not None and self._worker.pending:
            self._mask = self._worker.result()
        return self._mask

    def restyle(self, x: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """The person in the second style over ``y`` (unchanged without one).

        Shape: x (the uploaded frame), y (its stylization) (1, 3, H, W) -> like ``y``.
        ``scale``: the main network's scale (adaptive resolution), followed by the second.
        """
        person = self.person_stylizer
        mask = self.mask() if person is not None else None
        if person is None or mask is None:
            return y
        if person.scale != scale:
            person.scale = scale
        return composite_styles(person.stylize(x).to(y.dtype), y, mask)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        """The region composite (or the alpha plane) of a stylized and smoothed frame.

        Where the mask is exactly 0 or 1 the unstyled region is ``x`` itself, which
        downloads to the original pixels bit for bit in fp32, fp16 and bf16 alike
        (``round(255 * (v / 255))`` is ``v`` for every uint8 ``v`` in all three).

        Args:
            x: the uploaded frame (1, 3, H, W); y: the output so far, same shape.

        Returns:
            (the tensor to download, the uint8 HxW alpha plane or None).
        """
        mask = self.mask()
        if mask is None or self.region == "all":
            return y, None
        if self.alpha:
            # Straight alpha: every pixel keeps its stylized colour, the mask says how much shows.
            return y, np.clip(np.rint(mask * 255.0), 0, 255).astype(np.uint8)
        return composite(x, y.to(x.dtype), mask, self.region), None

    def close(self) -> None:
        """Stop the mask thread."""
        if self._worker is not None:
            self._worker.close()
