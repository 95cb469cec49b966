"""``stylize-video distill-styles``: one multi-style network from several single-style ones."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from ..units import parse_duration
    from .common import add_job_options

    p = sub.add_parser(
        "distill-styles",
        help="distil single-style networks into one multi-style network",
        description=(
            "Train one conditional-instance-norm network that paints every style of the given single-style "
            "networks (same architecture), with their outputs as targets: no VGG pass, cheap on a CPU. "
            "Each style keeps its teacher's name and credits. Ctrl-C saves a resumable state (--resume)."
        ),
        epilog=(
            "example: stylize-video distill-styles starry-night-lite udnie-lite great-wave-lite -o my-gallery.safetensors "
            "--data photos/ --time-limit 20m --vgg-weights vgg16.safetensors --style-images styles/ "
            "--report multistyle.md"
        ),
    )
    p.add_argument("teachers", nargs="+", metavar="TEACHER", help="single-style style names or checkpoint files")
    p.add_argument("-o", "--output", required=True, help="the multi-style .safetensors to write")
    p.add_argument("--data", required=True, help="photo folder or .tar (its held-out 5%% validates)")
    p.add_argument("--name", default=None, help="network name in the metadata (default: the output's stem)")
    p.add_argument("--image-size", type=int, default=128, help="training crop size (default: 128)")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step, styles mixed (default: 8)")
    p.add_argument("--iterations", type=int, default=100_000, help="at most this many steps (default: 100000)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--blur-weight", type=float, default=1.0, help="weight of the L1 on 4x pooled images (default: 1)")
    p.add_argument("--temporal-weight", type=float, default=0.0, help="temporal loss weight (default: 0, off)")
    p.add_argument("--distill-weight", type=float, default=1.0, help="distillation loss weight (default: 1)")
    p.add_argument(
        "--perceptual-weight",
        type=float,
        default=0.0,
        help="weight of each style's VGG loss against its painting (needs --style-images; default: 0, off)",
    )
    p.add_argument("--init", default=None, help="start from this multi-style network holding the same styles")
    p.add_argument("--amp", default="auto", help="autocast precision: auto, off, bf16, fp16 (default: auto)")
    p.add_argument("--time-limit", type=parse_duration, default=None, help="stop training after e.g. 20m, 1h30m")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between state saves (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="data order (default: 0)")
    p.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG16 weights for the perceptual loss and, with --style-images, to score each style and its teacher",
    )
    p.add_argument(
        "--style-images",
        default=None,
        help="folder holding the paintings the teachers recorded (then each style is scored against its teacher)",
    )
    p.add_argument("--max-images", type=int, default=64, help="held-out photos for that scoring (default: 64)")
    p.add_argument("--report", default=None, help="write the teacher-vs-network Markdown table here")
    p.add_argument("--resume", action="store_true", help="continue the run saved beside the output")
    add_job_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import StylizeError
    from ..files import atomic_output
    from ..training.multistyle import (
        DistillConfig,
        MultiStyleDistiller,
        compare_with_teachers,
        comparison_markdown,
        record_comparison,
    )
    from .common import data_options, optim_options, run_options

    if args.report and not args.style_images:
        raise StylizeError("--report needs --style-images (the paintings) to compute the losses")
    config = DistillConfig(
        teachers=tuple(args.teachers),
        **data_options(args),
        **run_options(args),
        **optim_options(args),
        blur_weight=args.blur_weight,
        temporal_weight=args.temporal_weight,
        distill_weight=args.distill_weight,
        perceptual_weight=args.perceptual_weight,
        style_images=args.style_images,
        vgg_weights=args.vgg_weights,
        init=args.init,
        name=args.name,
    )
    result = MultiStyleDistiller(config, progress=not args.no_progress).run()
    val = "  ".join(f"{k} {v:.4f}" for k, v in result.val_distill.items())
    print(f"wrote {result.path}: {result.iterations} iterations, {result.images_per_s:.1f} crops/s; val L1: {val}")
    if args.style_images:
        rows = compare_with_teachers(
            result.path,
            args.teachers,
            args.data,
            args.style_images,
            vgg_weights=args.vgg_weights,
            max_images=args.max_images,
            device=args.device,
        )
        record_comparison(result.path, rows)
        table = comparison_markdown(rows)
        print(table, end="")
        if args.report:
            with atomic_output(Path(args.report)) as tmp:
                tmp.write_text(table)
    return 0
