"""Options shared by the commands that run a style network."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runtime.stylizer import Stylizer

DEFAULT_STYLE = "starry-night"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``3m``, ``1.5h`` -> seconds (argparse type)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    value = text.strip().lower()
    scale = units.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 3m, 1.5h)") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return seconds


def add_backend_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--backend`` (the inference runtime) to ``p``."""
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "openvino", "onnxruntime", "tensorrt"],
        help="inference runtime (default auto: OpenVINO on a CPU when installed, else torch; torch on CUDA)",
    )


def add_engine_options(p: argparse.ArgumentParser, style_required: bool = False) -> None:
    """Add ``-s/--style``, device, precision, strength and colour options to ``p``."""
    g = p.add_argument_group("engine")
    g.add_argument(
        "-s",
        "--style",
        required=style_required,
        default=None,
        help=f"style name (see `stylize-video styles`) or checkpoint path (default: {DEFAULT_STYLE}, -lite on a CPU)",
    )
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N (default: auto)")
    g.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="auto: fp16 on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32",
    )
    g.add_argument("--strength", type=float, default=1.0, help="blend with the original, 0..1 (default: 1)")
    g.add_argument("--preserve-color", action="store_true", help="keep the original colours, stylize luminance only")
    g.add_argument(
        "--style-scale",
        type=float,
        default=1.0,
        help="run the network at this fraction of the frame size: <1 gives bigger brush strokes and is faster (default 1)",
    )
    add_backend_option(g)
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the network (default: all cores)")
    g.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (often faster on CPU and CUDA; recompiles for each new frame size)",
    )


def add_video_options(p: argparse.ArgumentParser) -> None:
    """Add the encoder (``--codec --crf --bitrate --preset``) and smoothing options."""
    enc = p.add_argument_group("encoding")
    enc.add_argument("--codec", default="h264", help="h264 (default), hevc, av1, vp9 or an FFmpeg encoder name")
    enc.add_argument("--crf", type=int, default=None, help="constant quality (x264 default 18; lower is better)")
    enc.add_argument("--bitrate", default=None, help="target bitrate, e.g. 4M or 800k (instead of --crf)")
    enc.add_argument("--preset", default=None, help="encoder speed preset (x264: ultrafast..veryslow; NVENC: p1..p7)")
    tmp = p.add_argument_group("temporal")
    tmp.add_argument("--smooth", default="none", choices=["none", "ema", "flow"], help="temporal smoothing")
    tmp.add_argument(
        "--smooth-strength", type=float, default=None, help="smoothing strength, 0..1 (default: flow 0.8, ema 0.5)"
    )


def default_style(device: str = "auto") -> str:
    """The style used when ``-s`` is not given.

    ``starry-night`` on a GPU; its ``-lite`` variant on a CPU, where the full network
    runs at about 1-3 fps at 640x480 and the lite one in real time. Falls back to the
    other variant, then to the first installed style.
    """
    from ..devices import resolve_device
    from ..errors import CheckpointError, DeviceError
    from ..models.checkpoint import available_styles

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


def make_stylizer(args: argparse.Namespace, bgr: bool = True) -> Stylizer:
    """Build the engine from the shared options."""
    from ..errors import StylizeError
    from ..runtime.stylizer import Stylizer

    if not 0.0 <= args.strength <= 1.0:
        raise StylizeError(f"--strength must be within 0..1, got {args.strength}")
    if not 0.0 < args.style_scale <= 2.0:
        raise StylizeError(f"--style-scale must be within (0, 2], got {args.style_scale}")
    return Stylizer(
        args.style or default_style(args.device),
        device=args.device,
        precision=args.precision,
        strength=args.strength,
        preserve_color=args.preserve_color,
        scale=args.style_scale,
        threads=args.threads,
        compile=args.compile,
        bgr=bgr,
        backend=getattr(args, "backend", "auto"),
    )
