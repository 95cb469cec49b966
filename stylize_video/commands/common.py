"""Options shared by the commands that run a style network, and by the training commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..convert import DEFAULT_STYLE, default_style
from ..units import parse_duration as parse_duration  # re-exported: commands import it from here

if TYPE_CHECKING:
    from ..runtime.stylizer import Stylizer
    from ..training.config import LossConfig, StyleCredit


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


def add_region_options(p: argparse.ArgumentParser, alpha: bool = True) -> None:
    """Add ``--region``, ``--person-style``, ``--person-strength``, ``--person-model`` (and ``--alpha``)."""
    g = p.add_argument_group("person region (MediaPipe's selfie segmentation model: found locally or downloaded once)")
    g.add_argument(
        "--region",
        default="all",
        choices=["all", "background", "person"],
        help="what is stylized: all (default), background (the person stays as filmed) or person",
    )
    g.add_argument("--person-style", default=None, metavar="STYLE", help="paint the person in this second style")
    g.add_argument(
        "--person-strength", type=float, default=None, help="the person style's strength, 0..1 (default: --strength)"
    )
    g.add_argument(
        "--person-model",
        default=None,
        metavar="PATH",
        help="selfie_segmentation_landscape.tflite (default: $STYLIZE_VIDEO_PERSON_MODEL, a mediapipe wheel, "
        "the cache, else downloaded once)",
    )
    if alpha:
        g.add_argument(
            "--alpha",
            action="store_true",
            help="with --region person: the stylized person over transparency (PNG/TIFF images, .webm VP9, .mov ProRes 4444)",
        )


def check_region_args(args: argparse.Namespace) -> None:
    """Validate the region options together (one-line errors before any work)."""
    from ..errors import StylizeError
    from ..runtime.region import check_region

    check_region(args.region, person_style=args.person_style is not None, alpha=getattr(args, "alpha", False))
    if args.person_strength is not None and not 0.0 <= args.person_strength <= 1.0:
        raise StylizeError(f"--person-strength must be within 0..1, got {args.person_strength}")
    if args.person_strength is not None and args.person_style is None:
        raise StylizeError("--person-strength is the strength of --person-style: give that too")


def _engine(args: argparse.Namespace, style: Any, strength: float, bgr: bool) -> Stylizer:
    """A Stylizer with the shared engine options (device, precision, colour, scale...)."""
    from ..runtime.stylizer import Stylizer

    return Stylizer(
        style,
        device=args.device,
        precision=args.precision,
        strength=strength,
        preserve_color=args.preserve_color,
        scale=args.style_scale,
        threads=args.threads,
        compile=args.compile,
        bgr=bgr,
        backend=getattr(args, "backend", "auto"),
    )


def make_person_stylizer(args: argparse.Namespace, bgr: bool = True) -> Stylizer | None:
    """The second engine for ``--person-style`` (same device and settings, its own strength), or None."""
    if args.person_style is None:
        return None
    strength = args.strength if args.person_strength is None else args.person_strength
    return _engine(args, args.person_style, strength, bgr)


def make_stylizer(args: argparse.Namespace, bgr: bool = True) -> Stylizer:
    """Build the engine from the shared options."""
    from ..errors import StylizeError

    if not 0.0 <= args.strength <= 1.0:
        raise StylizeError(f"--strength must be within 0..1, got {args.strength}")
    if not 0.0 < args.style_scale <= 2.0:
        raise StylizeError(f"--style-scale must be within (0, 2], got {args.style_scale}")
    return _engine(args, args.style or default_style(args.device), args.strength, bgr)


# ---------------------------------------------------------------- training
# ``train``, ``learn-style`` and ``distill-styles`` share these options (same names,
# their own defaults). The helpers return keyword dicts, not config objects:
# ``distill-styles`` has one flat config where the others have groups.


def add_job_options(p: argparse.ArgumentParser) -> None:
    """``--overwrite --device --threads --no-progress``, alike in every training command."""
    p.add_argument("--overwrite", action="store_true", help="replace an existing output and state")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs and batch jobs)")


def add_credit_options(p: argparse.ArgumentParser, stored_in: str, *, name: bool = False) -> None:
    """The painting credit stored in the written file (``--name`` too where the command names a style)."""
    g = p.add_argument_group(f"painting credit (stored in the {stored_in})")
    if name:
        g.add_argument("--name", default=None, help="style name (default: output file stem)")
    g.add_argument("--title", default=None)
    g.add_argument("--artist", default=None)
    g.add_argument("--year", default=None)
    g.add_argument("--credit", default=None, help="source / license line")


def credit_from_args(args: argparse.Namespace) -> StyleCredit:
    """The credit options as a :class:`~stylize_video.training.config.StyleCredit`."""
    from ..training.config import StyleCredit

    return StyleCredit(
        title=args.title, artist=args.artist, year=args.year, credit=args.credit, **_present(args, "name")
    )


def _present(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--data --image-size --batch-size --seed`` (and ``--workers``, ``--val-images``
    where the command has them) as :class:`~stylize_video.training.config.DataConfig` fields."""
    return {
        "photos": args.data,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "seed": args.seed,
        **_present(args, "workers", "val_images"),
    }


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """``-o --checkpoint-every --resume --overwrite --time-limit --device --threads`` as
    :class:`~stylize_video.training.config.RunConfig` fields (``sample_every`` is the command's)."""
    return {
        "output": args.output,
        "checkpoint_every": args.checkpoint_every,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "time_limit": args.time_limit,
        "device": args.device,
        "threads": args.threads,
    }


def optim_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--iterations --lr --amp`` as :class:`~stylize_video.training.config.OptimConfig` fields."""
    return {"iterations": args.iterations, "lr": args.lr, "amp": args.amp}


def loss_config_from_args(args: argparse.Namespace, style_image: str) -> LossConfig:
    """The perceptual-loss options as a :class:`~stylize_video.training.config.LossConfig`
    for ``style_image`` (``--style-size 0`` keeps the painting's size; options the
    command lacks, e.g. ``--teacher``, keep their defaults)."""
    from ..training.config import LossConfig

    layer_weights = getattr(args, "style_layer_weights", None)
    return LossConfig(
        style_image=style_image,
        style_size=args.style_size if args.style_size > 0 else None,
        vgg_weights=args.vgg_weights,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        style_layer_weights=tuple(layer_weights) if layer_weights else None,
        temporal_weight=args.temporal_weight,
        **_present(args, "teacher", "distill_weight"),
    )
