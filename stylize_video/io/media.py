"""PyAV helpers shared by the file source and the file sink.

Kept apart from ``sources.py``/``sinks.py`` so neither imports the other: the
sink re-reads the input's audio on its own, the source never knows about outputs.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import numpy as np

from ..errors import DependencyError, InputError, OutputError
from .specs import SCHEMES, is_url

log = logging.getLogger(__name__)

#: Audio codecs that MP4/MOV players handle when copied as-is. FFmpeg's muxer
#: accepts more (vorbis is "experimental" there), but players do not.
_MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}

#: Video encoders tried in order for each ``--codec`` (NVENC first when CUDA is present).
VIDEO_CODECS: dict[str, tuple[str, ...]] = {
    "h264": ("h264_nvenc", "libx264", "h264"),
    "hevc": ("hevc_nvenc", "libx265", "hevc"),
    "av1": ("av1_nvenc", "libsvtav1", "libaom-av1", "av1"),
    "vp9": ("libvpx-vp9",),
}

#: Video containers that store an alpha plane (``--alpha``): extension -> (encoder, pixel format).
#: VP9 in WebM keeps alpha as a second VP9 stream in Matroska's BlockAdditional side data
#: (FFmpeg's native ``vp9`` decoder drops it: read it back with ``libvpx-vp9``); ProRes
#: 4444 stores it in the frame (any ProRes decoder returns it).
ALPHA_VIDEO: dict[str, tuple[str, str]] = {"webm": ("libvpx-vp9", "yuva420p"), "mov": ("prores_ks", "yuva444p10le")}
#: Codec names (``--codec``) each alpha container accepts; ``h264`` is the default (not given).
_ALPHA_CODECS = {"webm": ("h264", "vp9", "libvpx-vp9"), "mov": ("h264", "prores", "prores_ks")}
#: The outputs that can store ``--alpha``, for messages.
ALPHA_OUTPUTS = "numbered PNG/TIFF/WebP images (out/%05d.png), a .webm (VP9) or a .mov (ProRes 4444)"


def alpha_video_encoder(ext: str, codec: str = "h264") -> tuple[str, str]:
    """(encoder, pixel format) that writes alpha into a container with extension ``ext``.

    Raises:
        OutputError: the container cannot store alpha, or ``codec`` is not its alpha codec.
    """
    ext = ext.lower().lstrip(".")
    if ext not in ALPHA_VIDEO:
        raise OutputError(f"a .{ext} file cannot store --alpha: use {ALPHA_OUTPUTS}")
    if codec not in _ALPHA_CODECS[ext]:
        raise OutputError(f"--alpha in .{ext} is written with {ALPHA_VIDEO[ext][0]}, not --codec {codec}")
    return ALPHA_VIDEO[ext]


#: Schemes FFmpeg is given as URLs (derived from the one table in :mod:`.specs`).
URL_SCHEMES = tuple(SCHEMES)


def import_av() -> Any:
    """Import PyAV, or fail with the extra to install."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a core dependency
        raise DependencyError("video files need PyAV: pip install 'av>=12'") from exc
    return av


def ffmpeg_path(path: str | os.PathLike[str]) -> str:
    """A local path as FFmpeg should be given it: ``file:`` plus the absolute path.

    FFmpeg reads ``name:rest`` as protocol ``name``, so a plain
    ``2024-05-01T12:30.mp4`` or ``take:2.mp4`` would fail with "Protocol not found".
    """
    return "file:" + os.path.abspath(os.fspath(path))


def open_input(spec: str | os.PathLike[str], options: dict[str, str] | None = None) -> Any:
    """Open a media file or URL for reading, with errors a user can act on.

    Raises:
        InputError: missing, a directory, unreadable, or not a media file.
    """
    av = import_av()
    text = os.fspath(spec)
    if not is_url(text):
        if not os.path.exists(text):
            raise InputError(f"input {text!r} does not exist")
        if os.path.isdir(text):
            raise InputError(f"input {text!r} is a directory, not a video")
        if not os.access(text, os.R_OK):
            raise InputError(f"input {text!r} is not readable (permission denied)")
    try:
        if is_url(text):
            return av.open(text, mode="r", options=options or {}, timeout=10.0)
        return av.open(ffmpeg_path(text), mode="r", options=options or {})
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"input {text!r} is not a readable video ({_reason(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@functools.cache
def output_extensions() -> frozenset[str]:
    """File extensions FFmpeg can write a container for (``mp4``, ``mkv``, ...)."""
    av = import_av()
    found: set[str] = set()
    for name in av.formats_available:
        try:
            fmt = av.ContainerFormat(name, "w")
        except ValueError:
            continue  # an input-only format
        found.update(ext.strip().lower() for ext in fmt.extensions)
    return frozenset(found)


def even_pad(image: np.ndarray) -> np.ndarray:
    """Pad an odd width/height by one replicated pixel so yuv420 encoders accept it.

    Replicating the edge changes the picture by at most one row/column, which no
    player shows differently; cropping would lose real content instead.
    """
    h, w = image.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")


def rotate(image: np.ndarray, degrees: int | float) -> np.ndarray:
    """Apply a display-matrix rotation (counter-clockwise degrees, as ``VideoFrame.rotation``)."""
    k = round(float(degrees) / 90.0) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def audio_codec_name(stream: Any) -> str:
    """Canonical codec name of a stream (``mp3``, not the decoder's ``mp3float``)."""
    return str(stream.codec_context.codec.canonical_name)


def can_copy_audio(container: Any, codec: str) -> bool:
    """Whether an output container takes ``codec`` audio without transcoding."""
    fmt = container.format.name
    if "mp4" in fmt or "mov" in fmt:
        return codec in _MP4_AUDIO
    try:
        return codec in container.supported_codecs
    except AttributeError:  # pragma: no cover - PyAV < 12
        return False


def transcode_audio_codec(container: Any) -> str:
    """The audio codec to transcode to for ``container`` (AAC for MP4/MOV)."""
    fmt = container.format.name
    if "mp4" in fmt or "mov" in fmt or "matroska" in fmt.split(",")[0] or "flv" in fmt:
        return "aac"
    if "webm" in fmt:
        return "libopus"
    return str(container.default_audio_codec or "aac")


def open_video_encoder(
    container: Any,
    codec: str,
    width: int,
    height: int,
    *,
    rate: Any,
    time_base: Any,
    crf: int | None = None,
    bitrate: int | None = None,
    preset: str | None = None,
    allow_nvenc: bool = True,
    share_cpu: bool = False,
    pix_fmt: str = "yuv420p",
) -> Any:
    """Add a video stream with the first encoder of ``codec``'s family that opens.

    Args:
        codec: ``h264``, ``hevc``, ``av1``, ``vp9`` or an FFmpeg encoder name.
        rate: nominal frame rate (a hint for rate control; timestamps decide timing).
        time_base: the stream's time base (the source's, so pts are copied unchanged).
        allow_nvenc: try NVENC encoders (callers pass ``torch.cuda.is_available()``).
        share_cpu: the model runs on the CPU too: x264/x265 default to their cheapest
            preset (``ultrafast``: ~4 instead of ~15 ms/frame at 640x480, files ~35%
            larger at the same CRF), since every encoder cycle is a model cycle lost.
        pix_fmt: the stream's pixel format (``yuva420p`` / ``yuva444p10le`` for alpha).

    Raises:
        OutputError: no encoder of the family is available or opens with these options.
    """
    av = import_av()
    candidates = VIDEO_CODECS.get(codec, (codec,))
    if "webm" in container.format.name and codec == "h264":
        candidates = VIDEO_CODECS["vp9"]  # WebM takes only VP8/VP9/AV1
    errors: list[str] = []
    for name in candidates:
        if name.endswith("_nvenc") and not allow_nvenc:
            continue
        fallback = "ultrafast" if share_cpu and name in ("libx264", "libx265") else None
        options = _encoder_options(name, crf, preset or fallback, bitrate)
        # Open a throwaway context first: PyAV cannot remove a stream whose encoder
        # then fails to open (NVENC without a free session, missing library, ...).
        try:
            probe = av.CodecContext.create(name, "w")
            probe.width, probe.height, probe.pix_fmt = width, height, pix_fmt
            probe.time_base = time_base
            probe.framerate = rate
            probe.options = dict(options)
            probe.open()
        except (av.FFmpegError, ValueError) as exc:
            errors.append(f"{name}: {_first_line(exc)}")
            continue
        stream = container.add_stream(name, rate=rate, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        tag_bt709(stream.codec_context)
        if bitrate:
            stream.bit_rate = int(bitrate)
        log.info("video encoder %s (%dx%d, options %s)", name, width, height, options)
        return stream
    raise OutputError(f"no {codec!r} video encoder opens here ({'; '.join(errors) or 'unknown codec'})")


#: FFmpeg's AVCOL_* code for BT.709 (matrix, primaries and transfer all use 1) and
#: AVCOL_RANGE_MPEG (limited range).
_BT709, _LIMITED = 1, 1


def tag_bt709(ctx: Any) -> None:
    """Say in the stream which YUV matrix :func:`to_yuv420` used.

    Untagged streams leave players guessing (BT.601 for SD, BT.709 for HD), which
    shifts reds and greens whenever the guess differs from the encoder's matrix.
    """
    ctx.colorspace = _BT709
    ctx.color_primaries = _BT709
    ctx.color_trc = _BT709
    ctx.color_range = _LIMITED


def fit_into(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to fit ``size`` (w, h) keeping its aspect ratio, centred on black.

    For outputs whose size is fixed by their first frame (a file, a live stream)
    when a later frame comes at another size (a camera reconnect, a stream that
    changes resolution): distorting the picture or dropping the file would be worse.
    """
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, min(w, round(iw * scale))), max(1, min(h, round(ih * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interpolation)
    out = np.zeros((h, w, *image.shape[2:]), dtype=image.dtype)  # BGRA too: the border is transparent
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = scaled
    return out


def to_yuv420(image: np.ndarray, size: tuple[int, int] | None = None) -> Any:
    """uint8 HxWx3 BGR -> a yuv420p ``VideoFrame`` in BT.709 limited range.

    ``size`` (w, h) scales on the way (even sizes only); without it the image's size
    must already be even.
    """
    av = import_av()
    from av.video.reformatter import ColorRange, Colorspace

    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    w, h = size if size is not None else (None, None)
    return frame.reformat(
        width=w, height=h, format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )


def to_yuva(image: np.ndarray, pix_fmt: str) -> Any:
    """uint8 HxWx4 BGRA (straight alpha) -> a ``VideoFrame`` in ``pix_fmt`` (``yuva420p``, ``yuva444p10le``), BT.709 limited."""
    av = import_av()
    from av.video.reformatter import ColorRange, Colorspace

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgra")
    return frame.reformat(format=pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)


def protocol_hint(exc: BaseException) -> str:
    """What to add to an error from opening a URL whose protocol this FFmpeg build lacks."""
    if "Protocol not found" in str(exc):
        return " (this FFmpeg build lacks the protocol; PyAV's wheels have no SRT: use udp://, tcp:// or rtmp://)"
    return ""


def _encoder_options(name: str, crf: int | None, preset: str | None, bitrate: int | None = None) -> dict[str, str]:
    opts: dict[str, str] = {}
    if bitrate and crf is None:
        # A target bitrate replaces the default constant-quality mode (x264 would ignore it otherwise).
        crf_default: dict[str, str] = {}
    else:
        crf_default = {"libx264": "18", "libx265": "24", "libsvtav1": "32", "libvpx-vp9": "32"}
    if name.endswith("_nvenc"):
        if crf is not None:
            opts["cq"] = str(crf)
            opts["rc"] = "vbr"
        opts["preset"] = preset or "p4"
    elif name in ("libx264", "libx265"):
        _set_crf(opts, crf, crf_default.get(name))
        opts["preset"] = preset or "veryfast"
        if name == "libx265":
            opts["x265-params"] = "log-level=error"
    elif name == "libsvtav1":
        _set_crf(opts, crf, crf_default.get(name))
        opts["preset"] = preset or "10"
    elif name == "libvpx-vp9":
        _set_crf(opts, crf, crf_default.get(name))
        if "crf" in opts:
            opts["b"] = "0"  # constant quality in libvpx needs a zero target bitrate
        opts["deadline"] = "realtime" if preset in (None, "realtime") else preset
        opts["cpu-used"] = "8"
    elif name == "prores_ks":
        opts["profile"] = "4444"  # the ProRes profile with an alpha channel (the only one we open)
        if crf is not None or preset is not None:
            log.warning("encoder %s: --crf/--preset ignored", name)
    elif crf is not None or preset is not None:
        log.warning("encoder %s: --crf/--preset ignored", name)
    return opts


def _set_crf(opts: dict[str, str], crf: int | None, default: str | None) -> None:
    value = str(crf) if crf is not None else default
    if value is not None:
        opts["crf"] = value


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words without PyAV's errno prefix and repeated file name."""
    return str(getattr(exc, "strerror", None) or _first_line(exc))
