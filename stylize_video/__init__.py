"""stylize-video: real-time neural style transfer for webcams, video files and images.

The public API is ``__all__`` (frozen by ``tests/test_api_surface.py``): :func:`stylize_file`
for one call from a file to a file; :class:`Stylizer` (the engine), :func:`open_source`,
:func:`open_sink` and :class:`Pipeline` to assemble a run yourself; :func:`register_source`
and :func:`register_sink` to add a kind of input or output; the checkpoint functions.

Importing the package is cheap: it loads no model, touches no device and opens no
camera. The public names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .threads import configure_thread_defaults as _configure_thread_defaults

__version__ = "0.1.0"

# Before anything imports torch: OpenMP reads its wait policy once, when it loads.
_configure_thread_defaults()

__all__ = [
    "PRESETS",
    "Checkpoint",
    "CheckpointMeta",
    "EncoderOptions",
    "Frame",
    "NetConfig",
    "Pipeline",
    "PipelineStats",
    "Sink",
    "Source",
    "StylizeError",
    "Stylizer",
    "TransformNet",
    "__version__",
    "available_styles",
    "default_style",
    "load_checkpoint",
    "open_sink",
    "open_source",
    "register_sink",
    "register_source",
    "resolve_device",
    "save_checkpoint",
    "stylize_file",
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
    "Pipeline": "runtime.pipeline",
    "PipelineStats": "runtime.pipeline",
    "Frame": "io.base",
    "Source": "io.base",
    "Sink": "io.base",
    "EncoderOptions": "io.specs",
    "open_source": "io.registry",
    "open_sink": "io.registry",
    "register_source": "io.registry",
    "register_sink": "io.registry",
    "stylize_file": "convert",
    "default_style": "convert",
    "resolve_device": "devices",
    "StylizeError": "errors",
}

if TYPE_CHECKING:
    from .convert import default_style, stylize_file
    from .devices import resolve_device
    from .errors import StylizeError
    from .io.base import Frame, Sink, Source
    from .io.registry import open_sink, open_source, register_sink, register_source
    from .io.specs import EncoderOptions
    from .models.checkpoint import Checkpoint, CheckpointMeta, available_styles, load_checkpoint, save_checkpoint
    from .models.transform_net import PRESETS, NetConfig, TransformNet
    from .runtime.pipeline import Pipeline, PipelineStats
    from .runtime.stylizer import Stylizer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
