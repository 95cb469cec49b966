"""Person-aware stylization: where the person is, and compositing by it.

``PersonSegmenter`` (MediaPipe's Selfie Segmentation run by OpenCV's DNN; see
:mod:`.model` for the choice) gives a small probability map; ``PersonMasker`` turns
it into a frame-sized, edge-following, feathered and temporally steady mask;
``MaskWorker`` computes it on its own thread beside the style network; and
``composite`` / ``composite_styles`` / ``to_rgba`` put the pictures together.

Example::

    masker = PersonMasker(PersonSegmenter())
    with MaskWorker(masker) as worker:
        worker.submit(frame)
        styled = stylizer(frame)
        out = composite(frame, styled, worker.result(), "background")
"""

from __future__ import annotations

from .composite import REGIONS, Region, blend, composite, composite_styles, to_rgba
from .model import DEFAULT_MODEL, MODEL_ENV, MODELS, PersonSegmenter, SegmentationModel, cache_dir, find_model
from .refine import (
    MaskSmoother,
    Motion,
    area_shrink,
    bilinear_upsample,
    feather,
    guide_gray,
    guided_upsample,
    hold_confident,
    refine_mask,
    release_confident,
    warp_mask,
)
from .worker import HOLD, MODEL_EVERY, RELEASE, MaskWorker, PersonMasker

__all__ = [
    "DEFAULT_MODEL",
    "HOLD",
    "MODELS",
    "MODEL_ENV",
    "MODEL_EVERY",
    "REGIONS",
    "RELEASE",
    "MaskSmoother",
    "MaskWorker",
    "Motion",
    "PersonMasker",
    "PersonSegmenter",
    "Region",
    "SegmentationModel",
    "area_shrink",
    "bilinear_upsample",
    "blend",
    "cache_dir",
    "composite",
    "composite_styles",
    "feather",
    "find_model",
    "guide_gray",
    "guided_upsample",
    "hold_confident",
    "refine_mask",
    "release_confident",
    "to_rgba",
    "warp_mask",
]
