"""Copying an input's audio into an output container, interleaved with the video being written.

Shared by the file sink, the network sink and the batch segment joiner: each one
muxes its video and calls :meth:`AudioCopier.mux_until` with the video's time, so
the output stays interleaved and an interrupted write keeps exactly the audio
under its video.
"""

from __future__ import annotations

import logging
from typing import Any

from .media import audio_codec_name, can_copy_audio, import_av, open_input, transcode_audio_codec

log = logging.getLogger(__name__)


#: The sample rates the Opus encoder accepts (WebM's audio codec).
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


class AudioCopier:
    """Copies (or transcodes) every audio stream of an input into an output container.

    Packets are muxed as the video advances (``mux_until``), so the output stays
    interleaved and an interrupted run keeps exactly the audio under its video.
    """

    def __init__(self, container: Any, source: str) -> None:
        self._av = import_av()
        self._in = open_input(source)
        self._tracks: dict[int, tuple[Any, Any, bool]] = {}  # input index -> (out stream, in stream, copy)
        self.skipped = 0
        for ins in self._in.streams.audio:
            codec = audio_codec_name(ins)
            if can_copy_audio(container, codec):
                out = container.add_stream_from_template(ins)
                self._tracks[ins.index] = (out, ins, True)
                log.info("audio stream %d: copying %s", ins.index, codec)
            else:
                target = transcode_audio_codec(container)
                rate = ins.codec_context.sample_rate or 48000
                if "opus" in target and rate not in _OPUS_RATES:
                    rate = 48000  # Opus takes only these rates (44.1 kHz is refused); PyAV's encoder resamples
                out = container.add_stream(target, rate=rate)
                # By channel count: decoders may report an unordered layout ("1 channels")
                # that encoders refuse.
                channels = ins.codec_context.channels or 2
                out.layout = {1: "mono", 2: "stereo"}.get(channels) or self._av.AudioLayout(channels).name
                self._tracks[ins.index] = (out, ins, False)
                log.info(
                    "audio stream %d: %s cannot go into %s, transcoding to %s",
                    ins.index,
                    codec,
                    container.format.name,
                    target,
                )
        self._packets = self._in.demux(*self._in.streams.audio) if self._tracks else iter(())
        self._pending: Any = None
        self._done = not self._tracks
        self._container = container
        self._offsets: dict[int, int] = {}  # input index -> ticks added after a jump back
        self._ends: dict[int, int] = {}  # input index -> where its last packet ended (shifted)

    def __len__(self) -> int:
        return len(self._tracks)

    def _next(self) -> Any:
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                self._done = True
                return None
            except self._av.FFmpegError as exc:
                log.warning("audio: demuxing stopped early: %s", exc)
                self._done = True
                return None
            if packet.size == 0 or (packet.pts is None and packet.dts is None):
                continue  # demuxer flush packets carry nothing to mux
            self._continue(packet)
            return packet

    def _continue(self, packet: Any) -> None:
        """Shift a track whose clock jumps back (joined recordings) to go on where it ended.

        The video of such an input continues one frame later (``VideoFileSource``); the
        audio must go on too, or its packets would all be muxed at once, out of order.
        """
        index = packet.stream.index
        ts = packet.pts if packet.pts is not None else packet.dts
        offset = self._offsets.get(index, 0)
        end = self._ends.get(index)
        # Packets may overlap a little (encoder priming); a jump back is seconds.
        tolerance = max(2 * (packet.duration or 0), round(0.1 / packet.time_base))
        if end is not None and ts + offset < end - tolerance:
            offset = end - ts
            self._offsets[index] = offset
            log.info("audio stream %d: timestamps jump back; continuing where it ended", index)
        if offset:
            if packet.pts is not None:
                packet.pts += offset
            if packet.dts is not None:
                packet.dts += offset
        self._ends[index] = max(end or ts + offset, ts + offset + (packet.duration or 0))

    @staticmethod
    def _time(packet: Any) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        return float(ts * packet.time_base)

    def mux_until(self, seconds: float) -> None:
        """Mux audio packets that start before ``seconds`` (source time scale)."""
        self._advance(seconds, mux=True)

    def skip_until(self, seconds: float) -> None:
        """Drop audio packets that start before ``seconds`` (a live stream that reconnected mid-way)."""
        self._advance(seconds, mux=False)

    def _advance(self, seconds: float, mux: bool) -> None:
        while not self._done:
            if self._pending is None:
                self._pending = self._next()
                if self._pending is None:
                    return
            if self._time(self._pending) >= seconds:
                return
            if mux:
                self._mux(self._pending)
            self._pending = None

    def _mux(self, packet: Any) -> None:
        out, _, copy = self._tracks[packet.stream.index]
        if copy:
            packet.stream = out
            self._container.mux(packet)
            return
        try:
            frames = packet.decode()
        except self._av.FFmpegError as exc:
            self.skipped += 1
            log.warning("audio: skipped an undecodable packet at %.3fs: %s", self._time(packet), exc)
            return
        for af in frames:
            self._container.mux(out.encode(af))

    def close(self) -> None:
        for out, _, copy in self._tracks.values():
            if not copy:
                self._container.mux(out.encode(None))
        self._in.close()
