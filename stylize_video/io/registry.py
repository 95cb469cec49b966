"""One registry per kind of stage: specs -> typed values -> factories.

A source or sink kind is a name, a matcher (a predicate on the spec's text) and a
factory. The factory may be given as ``"module:function"`` so that registering
costs nothing at import time: PyAV, OpenCV and optional backends are imported
only when a spec of that kind is opened (``stylize-video --help`` stays fast).

Adding a sink is one new module with a factory ``open_x(spec, options) -> Sink``
plus one line here (or in any module imported before use)::

    register_sink("gif", lambda text: text.lower().endswith(".gif"), "stylize_video.io.gif_sink:open_gif_sink",
                  local=True)

Kinds are tried in registration order; ``fallback`` kinds (plain files) after all others.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..errors import InputError, OutputError, StylizeError
from .base import FrameSink, Source
from .specs import (
    PREVIEW_SCHEMES,
    STREAM_FORMATS,
    SYNTHETIC_SPEC,
    EncoderOptions,
    InputSpec,
    OutputSpec,
    SinkOptions,
    SourceOptions,
    is_frame_pattern,
    is_live_url,
    url_scheme,
)

Matcher = Callable[[str], bool]
F = TypeVar("F")


@dataclass(frozen=True)
class Registration(Generic[F]):
    """One registered kind. ``factory`` is a callable or ``"module:attribute"`` (imported on first use)."""

    kind: str
    matcher: Matcher
    factory: F | str
    local: bool = False
    live: bool = False
    fallback: bool = False

    def resolve(self, what: str, text: str) -> F:
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attr = self.factory.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise StylizeError(
                f"{what} {text!r}: {self.kind} {what}s are not available in this installation "
                f"(module {module} is missing)"
            ) from exc
        factory: F = getattr(loaded, attr)
        return factory


SourceFactory = Callable[[InputSpec, SourceOptions], Source]
SinkFactory = Callable[[OutputSpec, SinkOptions], FrameSink]

_SOURCES: list[Registration[SourceFactory]] = []
_SINKS: list[Registration[SinkFactory]] = []


def _register(table: list[Registration[Any]], entry: Registration[Any]) -> None:
    table[:] = [r for r in table if r.kind != entry.kind]  # re-registering a kind replaces it
    table.append(entry)


def register_source(
    kind: str, matcher: Matcher, factory: SourceFactory | str, *, local: bool = False, fallback: bool = False
) -> None:
    """Register a source kind.

    Args:
        kind: its name (``InputSpec.kind``).
        matcher: ``text -> bool``: whether a ``-i`` value is of this kind.
        factory: ``(InputSpec, SourceOptions) -> Source``, or ``"module:function"``.
        local: the spec names a local path (``InputSpec.path`` is set).
        fallback: tried after every other kind (plain files).
    """
    _register(_SOURCES, Registration(kind, matcher, factory, local=local, fallback=fallback))


def register_sink(
    kind: str,
    matcher: Matcher,
    factory: SinkFactory | str,
    *,
    local: bool = False,
    live: bool = False,
    fallback: bool = False,
) -> None:
    """Register a sink kind.

    Args:
        kind: its name (``OutputSpec.kind``).
        matcher: ``text -> bool``: whether a ``-o`` value is of this kind.
        factory: ``(OutputSpec, SinkOptions) -> Sink``, or ``"module:function"``.
        local: the spec names a local file or pattern (``OutputSpec.path`` is set).
        live: a live output (stream, preview, virtual camera).
        fallback: tried after every other kind (plain files).
    """
    _register(_SINKS, Registration(kind, matcher, factory, local=local, live=live, fallback=fallback))


def _find(table: list[Registration[F]], text: str) -> Registration[F] | None:
    ordered = [r for r in table if not r.fallback] + [r for r in table if r.fallback]
    return next((r for r in ordered if r.matcher(text)), None)


def parse_input_spec(text: str) -> InputSpec:
    """Classify a ``-i`` value by the registered source kinds.

    Raises:
        InputError: no kind takes it (an empty value).
    """
    clean = text.strip()
    entry = _find(_SOURCES, clean) if clean else None
    if entry is None:
        raise InputError(f"input {text!r}: not a camera, file, URL, image sequence or synthetic scene")
    return InputSpec(clean, entry.kind, url_scheme(clean), Path(clean) if entry.local else None)


def parse_output_spec(text: str) -> OutputSpec:
    """Classify a ``-o`` value by the registered sink kinds.

    Raises:
        OutputError: no kind takes it (an unsupported URL scheme, an empty value).
    """
    clean = text.strip()
    entry = _find(_SINKS, clean) if clean else None
    if entry is None:
        if "://" in clean:
            raise OutputError(f"output {clean!r}: unsupported URL scheme")
        raise OutputError(f"output {text!r}: not a file, window, null, URL or virtualcam")
    path = Path(clean) if entry.local else None
    return OutputSpec(clean, entry.kind, url_scheme(clean), path, live=entry.live)


def open_source(
    spec: str | InputSpec,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    capture_factory: Callable[[int | str], Any] | None = None,
    options: SourceOptions | None = None,
) -> Source:
    """Open the source a ``-i`` value names (the one factory for every kind).

    ``0``, ``1``, ... and ``/dev/videoN`` are cameras; ``synthetic[:WxH][@FPS][:SECONDSs]``
    the built-in scene; rtsp/rtmp/udp/srt/tcp URLs live network streams;
    ``frames/%05d.png`` or a folder of images an image sequence (``fps`` sets its rate);
    anything else a video file or URL.

    Raises:
        InputError: the source cannot be opened.
    """
    parsed = spec if isinstance(spec, InputSpec) else parse_input_spec(spec)
    opts = options or SourceOptions(width=width, height=height, fps=fps, capture_factory=capture_factory)
    entry = next(r for r in _SOURCES if r.kind == parsed.kind)
    return entry.resolve("input", parsed.text)(parsed, opts)


def open_sink(
    spec: str | OutputSpec,
    *,
    inputs: Sequence[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    audio_from: str | os.PathLike[str] | None = None,
    encoder: EncoderOptions | None = None,
    codec: str | None = None,
    crf: int | None = None,
    bitrate: int | None = None,
    preset: str | None = None,
    fps: float | Fraction | None = None,
    cv2_module: Any = None,
    controls: Any = None,
    pace: bool | None = None,
    share_cpu: bool = False,
    options: SinkOptions | None = None,
) -> FrameSink:
    """Open the sink a ``-o`` value names (the one factory for every kind).

    ``window`` shows frames, ``null`` discards them, ``virtualcam[:DEVICE]``,
    ``http://HOST:PORT/`` (MJPEG preview) and rtmp/srt/udp/tcp/rtsp URLs are live
    outputs, ``out/%05d.png`` an image sequence, anything else a video file.
    Encoder settings come whole as ``encoder`` (``codec``/``crf``/``bitrate``/``preset``
    are accepted too, for older callers). ``share_cpu`` (the model runs on the CPU)
    makes files default to a cheap encoder preset.

    Raises:
        OutputError: the output is not acceptable (exists, is an input, ...).
        StylizeError: the kind's module is not available in this installation.
    """
    parsed = spec if isinstance(spec, OutputSpec) else parse_output_spec(spec)
    if options is None:
        if encoder is None:
            encoder = EncoderOptions(codec=codec or "h264", crf=crf, bitrate=bitrate, preset=preset)
        options = SinkOptions(
            inputs=tuple(os.fspath(p) for p in inputs),
            overwrite=overwrite,
            audio_from=os.fspath(audio_from) if audio_from is not None else None,
            encoder=encoder,
            fps=fps,
            controls=controls,
            pace=pace,
            share_cpu=share_cpu,
            cv2_module=cv2_module,
        )
    entry = next(r for r in _SINKS if r.kind == parsed.kind)
    return entry.resolve("output", parsed.text)(parsed, options)


def source_kinds() -> list[str]:
    """Registered source kinds, in the order they are tried."""
    return [r.kind for r in _SOURCES if not r.fallback] + [r.kind for r in _SOURCES if r.fallback]


def sink_kinds() -> list[str]:
    """Registered sink kinds, in the order they are tried."""
    return [r.kind for r in _SINKS if not r.fallback] + [r.kind for r in _SINKS if r.fallback]


# ------------------------------------------------------------------ matchers
def _is_camera(text: str) -> bool:
    return text.isdigit() or text.startswith("/dev/video")


def _is_synthetic(text: str) -> bool:
    return SYNTHETIC_SPEC.match(text) is not None


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _is_image_pattern(text: str) -> bool:
    return url_scheme(text) is None and is_frame_pattern(text) and Path(text).suffix.lower() in _IMAGE_SUFFIXES


def _is_image_input(text: str) -> bool:
    # A folder is an image sequence: video files are never folders.
    return _is_image_pattern(text) or (url_scheme(text) is None and os.path.isdir(text))


def _is_stream_url(text: str) -> bool:
    return url_scheme(text) in STREAM_FORMATS


def _is_preview_url(text: str) -> bool:
    return url_scheme(text) in PREVIEW_SCHEMES


def _is_virtualcam(text: str) -> bool:
    return text == "virtualcam" or text.startswith("virtualcam:")


def _not_a_url(text: str) -> bool:
    return "://" not in text


def _any(text: str) -> bool:
    return True


# ---------------------------------------------------------- registrations
# One line per kind. Modules are imported only when a spec of their kind is opened.
register_source("camera", _is_camera, "stylize_video.io.sources:open_camera")
register_source("synthetic", _is_synthetic, "stylize_video.io.sources:open_synthetic")
register_source("network", is_live_url, "stylize_video.io.network_source:open_network_source")
register_source("images", _is_image_input, "stylize_video.io.image_sequence:open_image_sequence", local=True)
register_source("file", _any, "stylize_video.io.sources:open_video_file", fallback=True)

register_sink("window", "window".__eq__, "stylize_video.io.window:open_window")
register_sink("null", "null".__eq__, "stylize_video.io.null_sink:open_null")
register_sink("virtualcam", _is_virtualcam, "stylize_video.io.streaming:open_live_sink", live=True)
register_sink("mjpeg", _is_preview_url, "stylize_video.io.streaming:open_live_sink", live=True)
register_sink("stream", _is_stream_url, "stylize_video.io.streaming:open_live_sink", live=True)
register_sink("images", _is_image_pattern, "stylize_video.io.image_sequence_sink:open_image_sequence_sink", local=True)
register_sink("file", _not_a_url, "stylize_video.io.file_sink:open_file_sink", local=True, fallback=True)
