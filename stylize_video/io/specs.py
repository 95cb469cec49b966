"""Typed values for what users type: URL schemes, input/output specs, encoder options.

Light on purpose (no PyAV, OpenCV or torch): the CLI parses and validates specs
before anything heavy is imported, and every module that needs to know about a
URL scheme reads :data:`SCHEMES` instead of keeping its own list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, OutputError, StylizeError


@dataclass(frozen=True)
class Scheme:
    """What stylize-video does with one URL scheme.

    Attributes:
        name: the scheme, lower case (``rtmp``).
        live: as an input it always carries a live stream (read by the reconnecting
            :class:`~.network_source.NetworkSource`; stale frames may be dropped).
        stream_format: as an output, the container :class:`~.network_sink.NetworkStreamSink`
            sends (None: not a streaming output).
    """

    name: str
    live: bool
    stream_format: str | None = None


#: The one table of URL schemes. FLV is what RTMP carries; MPEG-TS is made for lossy
#: byte pipes (udp, srt, tcp) because a receiver can join at any packet. http(s) as
#: an input may be a plain file (not live); as an output it is the MJPEG preview.
SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("rtmp", live=True, stream_format="flv"),
        Scheme("rtmps", live=True, stream_format="flv"),
        Scheme("srt", live=True, stream_format="mpegts"),
        Scheme("udp", live=True, stream_format="mpegts"),
        Scheme("tcp", live=True, stream_format="mpegts"),
        Scheme("rtsp", live=True, stream_format="rtsp"),
        Scheme("rtp", live=True),
        Scheme("rtsps", live=True),
        Scheme("http", live=False),
        Scheme("https", live=False),
    )
}

#: Schemes that always mean a live stream as input.
LIVE_SCHEMES: tuple[str, ...] = tuple(s.name for s in SCHEMES.values() if s.live)
#: Schemes a network stream sink sends to, with their container format.
STREAM_FORMATS: dict[str, str] = {s.name: s.stream_format for s in SCHEMES.values() if s.stream_format}
#: Schemes served by the MJPEG preview as an output.
PREVIEW_SCHEMES = ("http", "https")


def url_scheme(spec: str) -> str | None:
    """The lower-case scheme of ``scheme://...``; None for anything else (paths, ``C:\\x``)."""
    scheme, sep, _ = spec.partition("://")
    return scheme.lower() if sep and scheme else None


def is_url(spec: str) -> bool:
    """True for ``scheme://...`` with a scheme of :data:`SCHEMES` (FFmpeg opens it as a URL)."""
    return url_scheme(spec) in SCHEMES


def is_live_url(spec: str) -> bool:
    """True for a URL whose scheme always means a live stream (rtsp, udp, srt, ...)."""
    return url_scheme(spec) in LIVE_SCHEMES


def url_port(spec: str, *, allow_zero: bool = False) -> int | None:
    """The port of a ``scheme://host:port/...`` URL (None when none is given).

    Args:
        allow_zero: port 0 is accepted (a server that picks a free port).

    Raises:
        ValueError: the port is not a number within 1..65535 (0..65535 with ``allow_zero``),
            or the address is malformed (``[::1`` without its bracket).
    """
    netloc = urlsplit(spec).netloc  # raises ValueError on a malformed IPv6 address
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        _, bracket, rest = hostport.partition("]")
        text = rest[1:] if bracket and rest.startswith(":") else None
    else:
        text = hostport.partition(":")[2] if ":" in hostport else None
    if text is None or text == "":
        return None
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"port {text!r} is not a number")
    port = int(text)
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"port {port} is out of range {low}..65535")
    return port


#: ``synthetic[:WxH][@FPS][:SECONDSs][:live]`` (or ``demo...``): the built-in scene;
#: ``:live`` paces it in real time and makes it a live source, like a camera.
SYNTHETIC_SPEC = re.compile(r"^(?:synthetic|demo)(?::(\d+)x(\d+))?(?:@(\d+(?:\.\d+)?))?(?::(\d+(?:\.\d+)?)s)?(:live)?$")

#: printf-style frame number in an image-sequence pattern: %d, %05d.
FRAME_NUMBER = re.compile(r"%0?(\d*)d")


def is_frame_pattern(text: str) -> bool:
    """True for exactly one ``%d``/``%05d`` in the file name (and ``%%`` escapes elsewhere)."""
    return len(FRAME_NUMBER.findall(text.replace("%%", ""))) == 1


def frame_name_regex(name: str) -> re.Pattern[str]:
    """A regex for the file names a pattern's file-name part (``img_%05d.png``) produces.

    The number is captured as group 1; ``%05d`` also matches longer numbers, as printf
    writes them past 99999.
    """
    parts = name.split("%%")
    out = []
    for part in parts:
        m = FRAME_NUMBER.search(part)
        if m is None:
            out.append(re.escape(part))
        else:
            width = int(m.group(1) or 1)
            out.append(re.escape(part[: m.start()]) + rf"(\d{{{width},}})" + re.escape(part[m.end() :]))
    return re.compile("%".join(out) + r"\Z")


def frame_name(name: str, number: int) -> str:
    """The file name of frame ``number`` for a pattern's file-name part (printf semantics)."""
    return name % number


@dataclass(frozen=True)
class InputSpec:
    """A parsed ``-i`` value.

    Attributes:
        text: what the user typed (stripped).
        kind: the registered source kind that takes it (``camera``, ``synthetic``,
            ``network``, ``images``, ``file``...).
        scheme: URL scheme in lower case, or None.
        path: the local path, for kinds that read local files (else None).
    """

    text: str
    kind: str
    scheme: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        # Checked at parsing, before anything is opened: FFmpeg would wrap 99999 or wait for ever.
        if self.scheme in SCHEMES:
            try:
                url_port(self.text)
            except ValueError as exc:
                raise InputError(f"input {self.text!r}: {exc}") from None


@dataclass(frozen=True)
class OutputSpec:
    """A parsed ``-o`` value.

    Attributes:
        text: what the user typed (stripped).
        kind: the registered sink kind (``window``, ``null``, ``virtualcam``, ``mjpeg``,
            ``stream``, ``images``, ``file``...).
        scheme: URL scheme in lower case, or None.
        path: the local file or pattern written (else None).
        live: a live output (stream, preview, virtual camera).
    """

    text: str
    kind: str
    scheme: str | None = None
    path: Path | None = None
    live: bool = False

    def __post_init__(self) -> None:
        if self.scheme in SCHEMES:
            try:
                # The preview server may take port 0 (a free port, reported in its URL); nothing else can.
                url_port(self.text, allow_zero=self.scheme in PREVIEW_SCHEMES)
            except ValueError as exc:
                raise OutputError(f"output {self.text!r}: {exc}") from None

    @property
    def key(self) -> str:
        """Identity for "given twice" checks: the absolute path for local outputs, else the text."""
        return str(self.path.resolve()) if self.path is not None else self.text


def parse_bitrate(text: str | None) -> int | None:
    """``4M`` -> 4000000, ``800k`` -> 800000, ``1500000`` -> 1500000; None stays None.

    Raises:
        StylizeError: not a number with an optional k/M/G suffix.
    """
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise StylizeError(f"--bitrate {text!r}: use a number with an optional k/M suffix, e.g. 4M")
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


@dataclass(frozen=True)
class EncoderOptions:
    """Video encoder settings that travel together from the command line to every encoder.

    Attributes:
        codec: ``h264`` (default), ``hevc``, ``av1``, ``vp9`` or an FFmpeg encoder name.
        crf: constant quality 0..63 (None: the encoder's default; lower is better).
        bitrate: target bits per second (None: constant quality).
        preset: encoder speed preset (None: the sink's default).

    Raises:
        StylizeError: ``crf`` outside 0..63, ``bitrate`` not positive, empty ``codec``.
    """

    codec: str = "h264"
    crf: int | None = None
    bitrate: int | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if not self.codec:
            raise StylizeError("--codec must not be empty")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise StylizeError(f"--crf must be within 0..63, got {self.crf}")
        if self.bitrate is not None and self.bitrate <= 0:
            raise StylizeError(f"--bitrate must be positive, got {self.bitrate}")

    @classmethod
    def from_cli(
        cls, codec: str = "h264", crf: int | None = None, bitrate: str | None = None, preset: str | None = None
    ) -> EncoderOptions:
        """Build from the ``--codec --crf --bitrate --preset`` strings (``--bitrate 4M``)."""
        return cls(codec=codec, crf=crf, bitrate=parse_bitrate(bitrate), preset=preset)


@dataclass(frozen=True)
class SourceOptions:
    """What ``open_source`` passes every source factory (each takes what applies to it).

    Attributes:
        width, height, fps: requested capture format (cameras; the synthetic scene's
            defaults; an image sequence's frame rate).
        capture_factory: builds a camera's capture object (tests pass a fake).
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    capture_factory: Callable[[int | str], Any] | None = None


@dataclass(frozen=True)
class SinkOptions:
    """What ``open_sink`` passes every sink factory (each takes what applies to it).

    Attributes:
        inputs: local files that must never be overwritten.
        overwrite: replace existing outputs.
        audio_from: media file whose audio file and stream outputs copy (None: none).
        encoder: video encoder settings.
        fps: the source's nominal frame rate (None when unknown).
        controls: live controls that preview outputs accept requests into.
        pace: hold a file's frames to real time on live outputs (None: the sink's default).
        share_cpu: the model runs on the CPU: pick cheap encoder presets.
        cv2_module: the OpenCV module for the window (tests pass a fake).
        allow_hosts: extra ``Host`` names the preview server answers to (``--allow-host``).
        alpha: frames carry an alpha plane to store (``--alpha``): sinks that can store it
            do, file and image-sequence sinks that cannot refuse to open.
        resume: continue an earlier run's output (``--resume``): image sequences keep
            the frames they hold and report them through ``Sink.holds``.
    """

    inputs: tuple[str, ...] = ()
    overwrite: bool = False
    audio_from: str | None = None
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    fps: float | Fraction | None = None
    controls: Any = None
    pace: bool | None = None
    share_cpu: bool = False
    cv2_module: Any = None
    allow_hosts: tuple[str, ...] = ()
    alpha: bool = False
    resume: bool = False
