"""``stylize-video run``: camera, video file, URL or demo scene -> window, file or stream.

Also what plain ``stylize-video`` (no arguments) does: the camera in a window when a
camera and a display exist, else a short demo scene rendered to a fresh file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime.adaptive import DEFAULT_MIN_SCALE
from .common import (
    add_engine_options,
    add_region_options,
    add_video_options,
    check_region_args,
    make_person_stylizer,
    make_stylizer,
)

if TYPE_CHECKING:
    from ..io.base import Sink

log = logging.getLogger(__name__)

DEMO_SOURCE = "synthetic:640x360@30:3s"
DEMO_NAME = "stylize-video-demo.mp4"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="stylize a camera, video file or URL live or into a file",
        description=(
            "Stylize video. Inputs: a camera index (0) or device (/dev/video0), a file or URL, "
            "numbered images (frames/%05d.png, or a folder of images; --fps sets their rate), "
            "or the demo scene (synthetic[:WxH][@FPS][:SECONDSs][:live]). Outputs (-o, repeatable): "
            "window, a video file (audio copied), numbered images (out/%05d.png: PNG lossless, "
            ".jpg/.webp lossy), null, or a stream URL/virtualcam."
        ),
        epilog=(
            "examples:\n"
            "  stylize-video run -i 0 -s great-wave\n"
            "  stylize-video run -i holiday.mp4 -s starry-night -o holiday-starry.mp4\n"
            "  stylize-video run -i 0 -o window -o take1.mp4\n"
            "  stylize-video run -i 'render/%04d.png' --fps 24 -o 'styled/%04d.png'  # frame by frame\n"
            "  stylize-video run -i 0 -o http://127.0.0.1:8080/    # browser/OBS preview, controls at /\n"
            "  stylize-video run -i 0 -o virtualcam                # webcam for calls (extra: virtualcam)\n"
            "  stylize-video run -i rtsp://cam.local/live -o rtmp://127.0.0.1/live/key\n"
            "  stylize-video run -i 0 --target-fps 24 --min-scale 0.5  # hold 24 fps, network at >= half size\n"
            "  stylize-video run -i 0 -o virtualcam --region background  # paint the room, keep the person\n"
            "  stylize-video run -i take.mp4 --region person --alpha -o person.webm  # over transparency\n"
            "live outputs also take typed commands (next, prev, blend a=0.7+b=0.3, morph 1, strength 0.5, "
            "smooth, region, snap) and SIGUSR1/SIGUSR2 (next/prev style)\n"
            "window keys: q/Esc quit, n/p style, b blend partner, [/] blend weight, +/- strength, t smoothing, "
            "r region, s snapshot, space pause, f fullscreen, o overlay"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-i",
        "--input",
        default=None,
        help="camera index/device, video file, URL, frames/%%05d.png or a folder of images, or synthetic",
    )
    p.add_argument(
        "-o",
        "--output",
        action="append",
        default=None,
        help="window, FILE, out/%%05d.png, null, URL or virtualcam (repeatable; default: window)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (never the input)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an image-sequence output (-o 'out/%%05d.png'): frames already there are kept, not redone",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="another name the browser preview may be reached by (repeatable; '*' turns the Host check off)",
    )
    p.add_argument(
        "--morph",
        type=float,
        default=0.5,  # Stylizer.DEFAULT_MORPH_SECONDS (not imported here: it loads torch)
        metavar="SECONDS",
        help="live style changes morph over this much video time (default 0.5; 0: a cut)",
    )
    cam = p.add_argument_group("camera")
    cam.add_argument("--width", type=int, default=None, help="requested capture width")
    cam.add_argument("--height", type=int, default=None, help="requested capture height")
    cam.add_argument(
        "--fps",
        type=float,
        default=None,
        help="requested capture frame rate; an image sequence's frame rate (default 25)",
    )
    add_video_options(p)
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument(
        "--queue-size",
        type=int,
        default=4,
        help="frames buffered between threads (default 4; live inputs keep 1: more is latency)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    adapt = p.add_argument_group("adaptive resolution")
    adapt.add_argument(
        "--target-fps",
        default="auto",
        metavar="N|auto|off",
        help=(
            "when the network can't keep this frame rate, run it on a smaller frame (never above --style-scale) "
            "and grow back when there is headroom; auto (default): the source's rate for cameras, streams and "
            "synthetic:...:live, off for files and image sequences"
        ),
    )
    adapt.add_argument(
        "--min-scale",
        type=float,
        default=DEFAULT_MIN_SCALE,
        help=f"smallest fraction of the frame size adaptive resolution may run the network at (default {DEFAULT_MIN_SCALE})",
    )
    add_region_options(p)
    p.add_argument("--default", action="store_true", help=argparse.SUPPRESS)  # what bare `stylize-video` runs
    add_engine_options(p)
    p.set_defaults(func=run)


def _camera_available(index: int = 0) -> bool:
    import cv2

    from ..io.sources import quiet_opencv

    with quiet_opencv():
        cap = cv2.VideoCapture(index)
    try:
        return bool(cap.isOpened())
    finally:
        cap.release()


def _apply_default(args: argparse.Namespace) -> None:
    """Fill in what bare ``stylize-video`` does, depending on this machine."""
    from ..io.paths import fresh_path
    from ..io.window import has_display

    if args.input is None and has_display() and _camera_available(0):
        args.input, args.output = "0", ["window"]
        return
    args.input = args.input or DEMO_SOURCE
    if not args.output:
        args.output = [str(fresh_path(Path.cwd() / DEMO_NAME))]


def run(args: argparse.Namespace) -> int:
    from ..controls import MAX_MORPH_SECONDS
    from ..devices import resolve_device
    from ..errors import StylizeError
    from ..io.base import as_sink
    from ..io.registry import open_sink, open_source, parse_input_spec, parse_output_spec
    from ..io.specs import EncoderOptions, SinkOptions
    from ..runtime.adaptive import AdaptiveScale, parse_target_fps, resolve_target_fps
    from ..runtime.controls import LiveControls
    from ..runtime.pipeline import Pipeline
    from ..runtime.region import RegionStage, masker_factory
    from ..runtime.smoothing import make_smoother

    if args.default:
        from .common import default_style

        args.style = args.style or default_style(args.device)  # fail before opening anything when none is installed
        _apply_default(args)
        where = "camera 0 in a window" if args.input == "0" else "the built-in demo scene"
        print(f"stylize-video: {where} in style {args.style} (see `stylize-video --help` for more)")
    if args.input is None:
        raise StylizeError("no input: pass -i CAMERA|FILE|URL|synthetic (or run `stylize-video` alone for a demo)")
    if args.smooth_strength is not None and not 0.0 <= args.smooth_strength < 1.0:
        raise StylizeError(f"--smooth-strength must be within [0, 1), got {args.smooth_strength}")
    if not 0.0 <= args.morph <= MAX_MORPH_SECONDS:
        raise StylizeError(f"--morph must be within 0..{MAX_MORPH_SECONDS:g} seconds, got {args.morph}")
    if args.max_frames is not None and args.max_frames < 1:
        raise StylizeError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.queue_size < 1:
        raise StylizeError(f"--queue-size must be >= 1, got {args.queue_size}")
    if args.fps is not None and not args.fps > 0:
        raise StylizeError(f"--fps must be positive, got {args.fps}")
    target_fps = parse_target_fps(args.target_fps)
    if not 0.0 < args.min_scale <= 2.0:
        raise StylizeError(f"--min-scale must be within (0, 2], got {args.min_scale}")
    check_region_args(args)
    input_spec = parse_input_spec(args.input)
    outputs = [parse_output_spec(text) for text in args.output or ["window"]]
    if args.alpha:
        from ..io.media import ALPHA_OUTPUTS

        for spec in outputs:
            # Files and image sequences check their own type when they open (before any work).
            if spec.kind not in ("file", "images", "null"):
                raise StylizeError(f"output {spec.text!r} cannot show --alpha: write {ALPHA_OUTPUTS}")
    if args.resume:
        if args.overwrite:
            raise StylizeError("--resume keeps the frames already written and --overwrite replaces them: pick one")
        for spec in outputs:
            # A video file or a stream cannot be continued; a live view would force every frame.
            if spec.kind != "images":
                raise StylizeError(
                    f"--resume continues image-sequence outputs (-o 'out/%05d.png'), not {spec.text!r}; "
                    "convert a video file again with --overwrite"
                )
    seen: dict[str, str] = {}
    for spec in outputs:
        # Two sinks on one file would share its temporary name and clobber each other.
        if spec.key in seen:
            raise StylizeError(f"output {spec.text!r} is given twice (as {seen[spec.key]!r} too)")
        seen[spec.key] = spec.text
    encoder = EncoderOptions.from_cli(args.codec, args.crf, args.bitrate, args.preset)

    source = open_source(input_spec, width=args.width, height=args.height, fps=args.fps)
    sinks: list[Sink] = []
    region: RegionStage | None = None
    # Live outputs (HTTP preview, streams, virtual camera) take requests from /control, stdin and signals.
    controls = LiveControls()
    try:
        options = SinkOptions(
            inputs=source.inputs,
            overwrite=args.overwrite,
            audio_from=source.audio_path,
            encoder=encoder,
            fps=source.fps,
            controls=controls,
            # Live outputs hold a file's frames to real time; a live source already is.
            pace=not source.live,
            share_cpu=resolve_device(args.device).type == "cpu",
            allow_hosts=tuple(args.allow_host),
            alpha=args.alpha,
            resume=args.resume,
        )
        for spec in outputs:
            sinks.append(as_sink(open_sink(spec, options=options)))
        stylizer = make_stylizer(args)
        stylizer.morph_seconds = args.morph
        styles: list[str] = []
        live = any(s.live for s in sinks)
        if live or any(s.interactive for s in sinks):
            styles = _preload_styles(stylizer)
        interactive = bool(styles)  # a window or live controls: smoothing can be toggled on later
        kind = args.smooth if args.smooth != "none" else ("ema" if interactive else "none")
        smoother = None if kind == "none" else make_smoother(kind, args.smooth_strength)
        if args.region != "all" or args.person_style is not None or interactive:
            # Live runs get the stage even at --region all, for the r key / `region` command:
            # its model then loads on the first switch (a missing one is a warning there).
            region = RegionStage(
                masker_factory(args.person_model),
                args.region,
                person_stylizer=make_person_stylizer(args),
                alpha=args.alpha,
            )
            if region.active:
                region.load()  # a missing model is a one-line error now, not after the first frame
    except BaseException:
        if region is not None:
            region.close()
        for sink in sinks:
            sink.abort()
        source.close()
        raise

    total = source.frame_count
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    progress = _progress(total, disable=args.no_progress or source.live)
    rate = resolve_target_fps(target_fps, live=source.live, source_fps=source.fps)
    adaptive = None
    if rate is not None:
        adaptive = AdaptiveScale(rate, max_scale=args.style_scale, min_scale=args.min_scale)
        log.info("adaptive resolution: holding %.3g fps, scales %s", rate, adaptive.steps)
    pipeline = Pipeline(
        source,
        stylizer,
        sinks,
        smoother=smoother,
        smoothing=args.smooth != "none",
        queue_size=args.queue_size,
        max_frames=args.max_frames,
        progress=progress,
        styles=styles,
        controls=controls if live else None,
        adaptive=adaptive,
        region=region,
    )
    restore_signals = _live_control_inputs(controls, sinks)
    try:
        stats = pipeline.run()
    finally:
        restore_signals()
        if region is not None:
            region.close()
        if progress is not None:
            progress.close()
        source.close()
    for spec, sink in zip(outputs, sinks, strict=True):
        path = sink.path
        if path is not None and Path(path).exists():
            print(f"wrote {path}" if spec.text == str(path) else f"wrote {path} ({spec.text})")
    print(stats.summary())
    if stats.error is not None:
        raise stats.error
    return 130 if stats.interrupted else 0


def _live_control_inputs(controls: Any, sinks: Sequence[Sink]) -> Any:
    """SIGUSR1/SIGUSR2 (next/prev style) and, from a terminal, typed commands for live outputs.

    Returns a function that restores the previous signal handlers.
    """
    import threading

    from ..runtime.controls import ignore_background_reads, install_signal_handlers, start_stdin_reader

    if not any(s.live for s in sinks) or threading.current_thread() is not threading.main_thread():
        return lambda: None
    restore = install_signal_handlers(controls)
    # The window has its own keys; without one, a terminal is the control panel.
    if sys.stdin is not None and sys.stdin.isatty() and not any(s.interactive for s in sinks):
        restore_ttin = ignore_background_reads()
        start_stdin_reader(controls)
        log.warning("live controls: type next, prev, style NAME, strength 0.5, smooth, region, snap (+ Enter)")

        def restore_all() -> None:
            restore()
            restore_ttin()

        return restore_all
    return restore


def _preload_styles(stylizer: Any) -> list[str]:
    """Load every installed style so n/p switch instantly; the current one first."""
    from ..errors import StylizeError
    from ..models.checkpoint import available_styles

    names = [stylizer.style_name]
    for name in sorted(available_styles()):
        try:
            key = stylizer.preload(name)[0]
        except StylizeError as exc:
            log.warning("style %s not loaded: %s", name, exc)
            continue
        if key not in names:
            names.append(key)
    return names


def _progress(total: int | None, disable: bool) -> Any:
    if disable:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI).
    return tqdm(total=total, unit="frame", dynamic_ncols=True, disable=None, file=sys.stderr)
