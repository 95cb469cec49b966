"""One call from an input to a stylized output: :func:`stylize_file`.

The library's front door for scripts and notebooks. It wires the same stages the
``run`` command does (``open_source -> Stylizer -> smoother -> open_sink`` in a
:class:`~stylize_video.runtime.pipeline.Pipeline`) without argparse, so its
behaviour is the command's: audio copied, outputs written atomically, inputs never
overwritten, Ctrl-C leaves a valid file.

Layering: this module sits above ``io`` and ``runtime`` and below ``commands``;
the CLI may use it, it never imports the CLI.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, DeviceError, OutputError, StylizeError

if TYPE_CHECKING:
    from .io.specs import EncoderOptions
    from .runtime.pipeline import PipelineStats
    from .runtime.stylizer import StyleLike

#: The style used when none is given (its ``-lite`` variant on a CPU).
DEFAULT_STYLE = "starry-night"


def default_style(device: str = "auto") -> str:
    """The style used when none is given.

    ``starry-night`` on a GPU; its ``-lite`` variant on a CPU, where the full network
    runs at about 1-3 fps at 640x480 and the lite one in real time. Falls back to the
    other variant, then to the first installed style.

    Raises:
        CheckpointError: no style is installed.
    """
    from .devices import resolve_device
    from .models.checkpoint import available_styles

    styles = available_styles()
    try:
        on_cpu = resolve_device(device).type == "cpu"
    except DeviceError:
        on_cpu = True  # the engine will report the bad device; any default will do here
    order = [f"{DEFAULT_STYLE}-lite", DEFAULT_STYLE] if on_cpu else [DEFAULT_STYLE, f"{DEFAULT_STYLE}-lite"]
    for name in order:
        if name in styles:
            return name
    if styles:
        return sorted(styles)[0]
    raise CheckpointError("no styles installed: pass -s PATH.safetensors (train one with `stylize-video train`)")


def stylize_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    style: StyleLike | None = None,
    *,
    overwrite: bool = False,
    smooth: str = "none",
    smooth_strength: float | None = None,
    encoder: EncoderOptions | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    **engine: Any,
) -> PipelineStats:
    """Stylize a video file, image sequence, URL or the synthetic scene into ``output``.

    Args:
        input: what ``run -i`` takes: a video file, ``frames/%05d.png``, a folder of
            images, a URL, or ``synthetic:640x360@30:3s``.
        output: what ``run -o`` takes: a video file (audio copied from a file input),
            ``out/%05d.png``, ``null`` or a stream URL.
        style: a style name, checkpoint path, :class:`~stylize_video.models.checkpoint.Checkpoint`
            or network (default: :func:`default_style` for the device).
        overwrite: replace an existing output (never an input).
        smooth: temporal smoothing: ``none``, ``ema`` or ``flow``.
        smooth_strength: 0..1 (None: the smoother's default).
        encoder: codec, crf, bitrate, preset (None: H.264 at its default quality).
        fps: frame rate of an image-sequence input (None: 25).
        max_frames: stop after this many frames.
        **engine: passed to :class:`~stylize_video.runtime.stylizer.Stylizer`
            (``device``, ``precision``, ``strength``, ``preserve_color``, ``scale``, ...).

    Returns:
        The run's :class:`~stylize_video.runtime.pipeline.PipelineStats`
        (``interrupted`` after Ctrl-C; the output is then valid up to that frame).

    Raises:
        StylizeError: bad input, output, style or options (one-line message), or a
            source failure mid-run after the frames so far were written.

    Example::

        from stylize_video import stylize_file
        stats = stylize_file("holiday.mp4", "holiday-wave.mp4", "great-wave", smooth="flow")
        print(stats.summary())
    """
    from .io.base import as_sink
    from .io.registry import open_sink, open_source, parse_input_spec, parse_output_spec
    from .io.specs import EncoderOptions, SinkOptions
    from .runtime.pipeline import Pipeline
    from .runtime.smoothing import SMOOTHERS, make_smoother
    from .runtime.stylizer import Stylizer

    if smooth not in SMOOTHERS:
        raise StylizeError(f"unknown smoothing {smooth!r} (choose from {', '.join(SMOOTHERS)})")
    if max_frames is not None and max_frames < 1:
        raise StylizeError(f"max_frames must be >= 1, got {max_frames}")
    if smooth_strength is not None and not 0.0 <= smooth_strength < 1.0:
        raise StylizeError(f"smooth_strength must be within [0, 1), got {smooth_strength}")
    out_spec = parse_output_spec(os.fspath(output))
    if out_spec.live or out_spec.kind == "window":
        raise OutputError(f"output {out_spec.text!r}: stylize_file writes files; use Pipeline for live outputs")
    source = open_source(parse_input_spec(os.fspath(input)), fps=fps)
    sink = None
    try:
        sink = as_sink(
            open_sink(
                out_spec,
                options=SinkOptions(
                    inputs=source.inputs,
                    overwrite=overwrite,
                    audio_from=source.audio_path,
                    encoder=encoder or EncoderOptions(),
                    fps=source.fps,
                ),
            )
        )
        stylizer = Stylizer(style if style is not None else default_style(engine.get("device", "auto")), **engine)
        smoother = None if smooth == "none" else make_smoother(smooth, smooth_strength)
    except BaseException:
        # Nothing ran yet: drop the output (an empty file must not appear) and the input.
        if sink is not None:
            sink.abort()
        source.close()
        raise
    try:
        # The pipeline finalizes (or discards) the sink itself, on every way out.
        stats = Pipeline(source, stylizer, [sink], smoother=smoother, max_frames=max_frames).run()
    finally:
        source.close()
    if stats.error is not None:
        raise stats.error
    return stats
