"""``stylize-video evaluate-style``: content and style loss of a checkpoint on held-out photos."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate-style",
        help="content/style loss of a trained style on held-out photos",
        description=(
            "Compute the perceptual loss terms (content, style, tv unweighted; total as trained; temporal on fixed synthetic motion) of a checkpoint on the fixed "
            "validation split of a photo folder, to compare presets and training settings with numbers."
        ),
        epilog=(
            "example: stylize-video evaluate-style starry-night --data photos/ --style-image styles/ "
            "--vgg-weights vgg16.safetensors --json"
        ),
    )
    p.add_argument(
        "checkpoint",
        nargs="+",
        help="style names or checkpoint files (a multi-style file: each of its styles; a style name: that one)",
    )
    p.add_argument("--data", required=True, help="photo folder or .tar (its held-out 5%% is used)")
    p.add_argument(
        "--style-image", default=None, help="the painting, or a folder holding the file recorded in the checkpoint"
    )
    p.add_argument("--vgg-weights", default=None, help="VGG16 weights file (default: torchvision's)")
    p.add_argument(
        "--image-size", type=int, default=None, help="center-crop size (default: the size the style was trained at)"
    )
    p.add_argument("--max-images", type=int, default=64, help="at most this many held-out photos (default: 64)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ..devices import set_cpu_threads
    from ..errors import StylizeError
    from ..models.checkpoint import load_checkpoint
    from ..training.evaluate import evaluate_checkpoint

    if (args.image_size is not None and args.image_size < 16) or args.max_images < 1:
        raise StylizeError(
            f"--image-size must be >= 16 and --max-images >= 1, got {args.image_size}, {args.max_images}"
        )
    set_cpu_threads(args.threads)
    jobs: list[tuple[str, str | None]] = []
    for arg in args.checkpoint:
        ck = load_checkpoint(arg)
        # A multi-style file by path scores every style it holds; a style name, that style.
        if ck.model.num_styles and arg not in ck.style_names:
            jobs += [(arg, name) for name in ck.style_names]
        else:
            jobs.append((arg, None))
    results = [
        evaluate_checkpoint(
            ck,
            args.data,
            style_image=args.style_image,
            vgg_weights=args.vgg_weights,
            image_size=args.image_size,
            max_images=args.max_images,
            device=args.device,
            style=style,
        )
        for ck, style in jobs
    ]
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
        return 0
    for r in results:
        terms = "  ".join(f"{k} {v:.4g}" for k, v in r.losses.items())
        print(f"{r.checkpoint}: {terms}  ({r.images} photos at {r.image_size}px)")
    return 0
