"""Joining video segments encoded separately into one file, without re-encoding.

Batch conversion cuts long inputs at keyframes, converts the pieces in parallel and
joins them here: the encoded packets are remuxed as they are, and the input's audio
is copied alongside (interleaved by time).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction

from ..errors import OutputError
from ..files import atomic_output
from .audio import AudioCopier
from .media import ffmpeg_path, import_av, open_input


def join_segments(
    parts: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], audio_from: str | None
) -> int:
    """Concatenate encoded segments into ``output`` without re-encoding, adding ``audio_from``'s audio.

    The segments keep the input's timestamps, so their packets are copied as they
    are; the audio is copied (never re-encoded when the container takes it) and
    interleaved by time. Written atomically.

    Returns:
        Video packets written.

    Raises:
        OutputError: the segments do not fit together (different encoder headers,
            or timestamps that go backwards).
    """
    av = import_av()
    if not parts:
        raise OutputError(f"no segments to join into {os.fspath(output)!r}")
    packets = 0
    with atomic_output(output) as tmp:
        out = av.open(ffmpeg_path(tmp), mode="w")
        try:
            with open_input(parts[0]) as first:
                template = first.streams.video[0]
                extradata = template.codec_context.extradata
                vout = out.add_stream_from_template(template)
                # WebM's VP9 alpha rides in each packet's side data (copied with it), but
                # players show it only when the track says so (Matroska's AlphaMode).
                if template.metadata.get("alpha_mode") == "1":
                    vout.metadata["alpha_mode"] = "1"
            audio = AudioCopier(out, audio_from) if audio_from is not None else None
            if audio is not None and not len(audio):
                audio.close()
                audio = None
            last_dts: Fraction | None = None
            for part in parts:
                with open_input(part) as c:
                    vin = c.streams.video[0]
                    if vin.codec_context.extradata != extradata:
                        raise OutputError(f"segment {os.fspath(part)!r} was encoded with other headers; cannot join")
                    for packet in c.demux(vin):
                        if packet.size == 0 or packet.dts is None:
                            continue
                        dts = packet.dts * packet.time_base  # exact seconds: the muxer may change vout's time base
                        if last_dts is not None and dts <= last_dts:
                            raise OutputError(
                                f"segment {os.fspath(part)!r} overlaps the one before it (at {float(dts):.3f}s)"
                            )
                        last_dts = dts
                        if audio is not None:
                            audio.mux_until(float(packet.dts * packet.time_base))
                        packet.stream = vout
                        out.mux(packet)
                        packets += 1
            if audio is not None:
                audio.mux_until(math.inf)
                audio.close()
        finally:
            out.close()
    return packets
