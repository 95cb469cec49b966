"""Generate and inspect tiny media files inside tests (PyAV), so no test needs ../shared.

Import from tests: ``from tests.media import write_clip, probe``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def clip_frame(i: int, w: int, h: int) -> np.ndarray:
    """Frame ``i`` of a moving gradient (uint8 HxWx3 RGB): cheap to encode, changes every frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = (xx * 255 // max(w - 1, 1) + 7 * i) % 256
    g = (yy * 255 // max(h - 1, 1) + 3 * i) % 256
    b = np.full_like(r, (40 * i) % 256)
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def write_clip(
    path: str | Path,
    n_frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    audio: bool = True,
    vfr: bool = False,
    codec: str = "libx264",
    audio_codec: str = "aac",
    audio_rate: int = 16000,
    audio_streams: int = 1,
    start_s: float = 0.0,
) -> Path:
    """Write a short clip: a moving gradient, optionally a 440 Hz tone as long as the video.

    Args:
        size: (width, height); odd sizes are allowed for codecs that take them
            (``mpeg4``/``ffv1``; libx264 needs even sizes for yuv420p).
        vfr: irregular frame durations (alternating 1 and 3 ticks of 1/(2*fps)).
        codec: video encoder name.
        audio_codec: audio encoder (``aac``, ``libopus``, ``mp3``...).
        audio_streams: number of audio tracks (tones of 440, 660, ... Hz).
        start_s: timestamp of the first frame and sample, in seconds (camera and
            broadcast files rarely start at 0).

    Returns:
        The path written.
    """
    path = Path(path)
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p" if codec != "ffv1" else "yuv444p"
        tb = Fraction(1, 2 * fps) if vfr else Fraction(1, fps)
        vs.codec_context.time_base = tb
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "23"}
        pts_list = _vfr_pts(n_frames) if vfr else list(range(n_frames))
        last_ticks = 3 if vfr and (n_frames - 1) % 2 == 1 else 1
        duration_s = float((pts_list[-1] + last_ticks) * tb)
        audio_out = []
        if audio:
            for _ in range(audio_streams):
                a = out.add_stream(audio_codec, rate=audio_rate)
                a.layout = "mono"
                audio_out.append(a)
        for i, pts in enumerate(pts_list):
            vf = av.VideoFrame.from_ndarray(clip_frame(i, w, h), format="rgb24")
            vf.pts = pts + round(start_s / tb)
            vf.time_base = tb
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        for k, as_ in enumerate(audio_out):
            n = round(duration_s * audio_rate)
            t = np.arange(n) / audio_rate
            tone = (0.2 * np.sin(2 * np.pi * 220 * (k + 2) * t)).astype(np.float32)
            chunk = 1024
            for start in range(0, n, chunk):
                part = tone[start : start + chunk]
                af = av.AudioFrame.from_ndarray(part[None, :], format="flt", layout="mono")
                af.sample_rate = audio_rate
                af.pts = start + round(start_s * audio_rate)
                af.time_base = Fraction(1, audio_rate)
                for p in as_.encode(af):
                    out.mux(p)
            for p in as_.encode(None):
                out.mux(p)
    return path


def _vfr_pts(n: int) -> list[int]:
    pts, t = [], 0
    for i in range(n):
        pts.append(t)
        t += 1 if i % 2 == 0 else 3
    return pts


@dataclass
class Probe:
    """What a file holds: decoded video frames and audio, from PyAV."""

    width: int = 0
    height: int = 0
    frames: int = 0
    pts_seconds: list[float] = field(default_factory=list)
    video_duration: float = 0.0
    audio_streams: int = 0
    audio_codecs: list[str] = field(default_factory=list)
    audio_packets: list[int] = field(default_factory=list)
    audio_duration: float = 0.0
    audio_end: float = 0.0
    average_rate: Fraction | None = None
    images: list[np.ndarray] = field(default_factory=list, repr=False)


def probe(path: str | Path, keep_images: bool = False) -> Probe:
    """Decode every frame of ``path`` (tiny files only) and report what is there."""
    out = Probe()
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        out.width, out.height = vs.codec_context.width, vs.codec_context.height
        out.average_rate = vs.average_rate
        out.audio_streams = len(c.streams.audio)
        out.audio_codecs = [a.codec_context.codec.canonical_name for a in c.streams.audio]
        for f in c.decode(vs):
            out.frames += 1
            out.pts_seconds.append(float(f.pts * f.time_base))
            if keep_images:
                out.images.append(f.to_ndarray(format="bgr24"))
        if out.pts_seconds:
            ts = sorted(out.pts_seconds)
            step = ts[-1] - ts[-2] if len(ts) > 1 else 0.0
            out.video_duration = ts[-1] - ts[0] + step
    if out.audio_streams:
        with av.open(str(path)) as c:
            out.audio_packets = [sum(1 for p in c.demux(a) if p.size) for a in c.streams.audio]
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            first, last_end = None, 0.0
            for p in c.demux(a):
                if p.pts is None or p.size == 0:
                    continue
                t = float(p.pts * p.time_base)
                first = t if first is None else min(first, t)
                last_end = max(last_end, t + float((p.duration or 0) * p.time_base))
            out.audio_duration = last_end - (first or 0.0)
            out.audio_end = last_end
    return out
