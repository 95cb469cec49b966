"""Live outputs by spec: ``virtualcam``, ``http://HOST:PORT/`` (MJPEG preview) and stream URLs.

``open_sink`` in :mod:`stylize_video.io.sinks` hands these specs here; each
backend module is imported only when used, so optional dependencies stay optional.

Specs:
    ``virtualcam`` or ``virtualcam:/dev/video2``  -> :class:`~.virtualcam.VirtualCameraSink`
    ``http://127.0.0.1:8080/``                    -> :class:`~.mjpeg.MjpegSink`
    ``rtmp://``, ``rtmps://``, ``srt://``, ``udp://``, ``tcp://``, ``rtsp://`` -> :class:`~.network_sink.NetworkStreamSink`
"""

from __future__ import annotations

import inspect
import logging
from typing import Any
from urllib.parse import urlsplit

from ..errors import OutputError
from .base import FrameSink
from .specs import PREVIEW_SCHEMES, STREAM_FORMATS, OutputSpec, SinkOptions

log = logging.getLogger(__name__)

#: Schemes of network stream outputs (from the one table in :mod:`.specs`).
STREAM_SCHEMES = tuple(STREAM_FORMATS)
DEFAULT_HTTP_PORT = 8080


def is_streaming_spec(spec: str) -> bool:
    """True if ``spec`` names a live output handled by :func:`open_streaming_sink`."""
    if spec == "virtualcam" or spec.startswith("virtualcam:"):
        return True
    return urlsplit(spec).scheme.lower() in (*STREAM_SCHEMES, *PREVIEW_SCHEMES)


def _accepted(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    # The generic dispatcher passes every sink the same options (fps, controls, ...);
    # each live sink takes the ones it understands.
    # None means "not given" there (e.g. --preset unset), so the sink's own default applies.
    params = inspect.signature(cls).parameters
    taken = {k: v for k, v in options.items() if k in params and v is not None}
    ignored = sorted(set(options) - set(taken))
    if ignored:
        log.debug("%s ignores options %s", cls.__name__, ", ".join(ignored))
    return taken


def parse_http_spec(spec: str) -> tuple[str, int]:
    """``http://HOST:PORT/`` -> (host, port); an empty host means 127.0.0.1 (never all interfaces by default)."""
    url = urlsplit(spec)
    if url.scheme.lower() == "https":
        raise OutputError(f"{spec!r}: the preview server speaks plain HTTP; put a TLS proxy in front for https")
    try:
        port = url.port if url.port is not None else DEFAULT_HTTP_PORT
    except ValueError as exc:
        raise OutputError(f"bad port in {spec!r}: {exc}") from None
    if url.path not in ("", "/"):
        log.warning("%s: the preview is served at / and /stream.mjpg; ignoring path %r", spec, url.path)
    return url.hostname or "127.0.0.1", port


def open_streaming_sink(spec: str, **options: Any) -> FrameSink:
    """Open the live sink named by ``spec``.

    Args:
        spec: ``virtualcam[:DEVICE]``, ``http://HOST:PORT/`` or a stream URL.
        **options: passed to the sink's constructor where it takes them (``fps``,
            ``controls``, ``quality``, ``preset``, ``bitrate``, ``gop``, ``on_sent`` ...);
            others are ignored.

    Raises:
        OutputError: the spec is not a live output, or the sink cannot be opened.
        DependencyError: the virtual camera's optional dependency is missing.
    """
    if spec == "virtualcam" or spec.startswith("virtualcam:"):
        from .virtualcam import VirtualCameraSink

        device = spec.partition(":")[2] or None
        kwargs = _accepted(VirtualCameraSink, options)
        if device:
            kwargs["device"] = device
        return VirtualCameraSink(**kwargs)
    scheme = urlsplit(spec).scheme.lower()
    if scheme in PREVIEW_SCHEMES:
        from .mjpeg import MjpegSink

        host, port = parse_http_spec(spec)
        return MjpegSink(host, port, **_accepted(MjpegSink, options))
    if scheme in STREAM_SCHEMES:
        from .network_sink import NetworkStreamSink

        kwargs = _accepted(NetworkStreamSink, options)
        if kwargs.get("codec") == "h264":
            kwargs["codec"] = "libx264"  # the generic name; the low-latency settings below are x264's
        if "fps" in kwargs:
            kwargs["fps"] = float(kwargs["fps"])
        return NetworkStreamSink(spec, **kwargs)
    raise OutputError(
        f"not a live output: {spec!r} (use virtualcam, http://127.0.0.1:8080/ or {'/'.join(STREAM_SCHEMES)}://...)"
    )


def open_live_sink(spec: OutputSpec, options: SinkOptions) -> FrameSink:
    """Registry factory for ``virtualcam``, ``http://`` previews and stream URLs.

    Passes the shared options by name; :func:`open_streaming_sink` gives each sink those it takes.
    """
    enc = options.encoder
    return open_streaming_sink(
        spec.text,
        audio_from=options.audio_from,
        codec=enc.codec,
        crf=enc.crf,
        bitrate=enc.bitrate,
        preset=enc.preset,
        fps=options.fps,
        controls=options.controls,
        pace=options.pace,
        allow_hosts=list(options.allow_hosts) or None,
    )
