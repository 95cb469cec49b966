"""stylize-video: real-time neural style transfer for webcams, video files and images.

Importing the package is cheap: it loads no model, touches no device and opens no
camera. The public names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Checkpoint",
    "CheckpointMeta",
    "FrameTransfer",
    "NetConfig",
    "StylizeError",
    "Stylizer",
    "TransformNet",
    "available_styles",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]

_LAZY = {
    "Checkpoint": "models.checkpoint",
    "CheckpointMeta": "models.checkpoint",
    "load_checkpoint": "models.checkpoint",
    "save_checkpoint": "models.checkpoint",
    "available_styles": "models.checkpoint",
    "NetConfig": "models.transform_net",
    "PRESETS": "models.transform_net",
    "TransformNet": "models.transform_net",
    "Stylizer": "runtime.stylizer",
    "FrameTransfer": "runtime.transfer",
    "resolve_device": "devices",
    "StylizeError": "errors",
}

if TYPE_CHECKING:
    from .devices import resolve_device
    from .errors import StylizeError
    from .models.checkpoint import Checkpoint, CheckpointMeta, available_styles, load_checkpoint, save_checkpoint
    from .models.transform_net import PRESETS, NetConfig, TransformNet
    from .runtime.stylizer import Stylizer
    from .runtime.transfer import FrameTransfer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
