"""``stylize-video train``: train a style network on a painting and a folder of photos."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from ..training.losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT
    from ..training.temporal import DEFAULT_TEMPORAL_WEIGHT
    from ..units import parse_duration
    from .common import add_credit_options, add_job_options

    p = sub.add_parser(
        "train",
        help="train a style network on a painting",
        description=(
            "Train a feed-forward style network (Johnson et al. 2016) with a VGG16 perceptual loss. "
            "State is saved every --checkpoint-every iterations and on Ctrl-C; --resume continues exactly."
        ),
        epilog=(
            "example: stylize-video train --style-image starry.jpg --data photos/ -o starry-night.safetensors "
            "--vgg-weights vgg16.safetensors --preset lite --image-size 128 --iterations 2000"
        ),
    )
    p.add_argument("--style-image", required=True, help="the painting")
    p.add_argument("--data", required=True, help="folder of photos (recursive) or an uncompressed .tar of them")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (NAME.safetensors)")
    p.add_argument("--preset", default="full", choices=["full", "lite"], help="architecture (default: full)")
    p.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG16 weights (.safetensors/.pth, torchvision key layout); default: torchvision's, downloaded once",
    )
    p.add_argument("--image-size", type=int, default=256, help="training crop size (default: 256)")
    p.add_argument(
        "--style-size", type=int, default=512, help="painting's longer side in px; smaller = bigger strokes (512)"
    )
    p.add_argument("--batch-size", type=int, default=4, help="default: 4")
    p.add_argument("--iterations", type=int, default=20000, help="optimizer steps in total (default: 20000)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--content-weight", type=float, default=DEFAULT_CONTENT_WEIGHT, help="default: %(default)s")
    p.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT, help="default: %(default)s")
    p.add_argument("--tv-weight", type=float, default=DEFAULT_TV_WEIGHT, help="default: %(default)s")
    p.add_argument(
        "--style-layer-weights",
        type=float,
        nargs=4,
        default=None,
        metavar="W",
        help="relative weights of relu1_2 relu2_2 relu3_3 relu4_3 in the style loss (default: equal)",
    )
    p.add_argument("--seed", type=int, default=0, help="fixes initialisation and data order (default: 0)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="save resumable state every N its (500)")
    p.add_argument("--sample-every", type=int, default=500, help="save sample stylizations every N its, 0: never")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT.train-state.pt")
    p.add_argument("--teacher", default=None, help="distil from this checkpoint (e.g. a trained full model)")
    p.add_argument("--distill-weight", type=float, default=50.0, help="weight of the teacher MSE (default: 50)")
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=DEFAULT_TEMPORAL_WEIGHT,
        help="weight of the temporal loss on synthetic moving-frame pairs; > 0 trains a network that is "
        "steady on video without --smooth (default: %(default)s = off)",
    )
    p.add_argument("--init", default=None, help="start from this trained checkpoint's weights (fine-tuning)")
    p.add_argument(
        "--time-limit",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="end the training loop after this long (e.g. 90s, 3m, 1.5h), then validate and write the "
        "checkpoint as usual (loading and validation come on top); --resume can continue it later",
    )
    p.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "off", "bf16", "fp16"],
        help="mixed precision (auto: bf16 on CUDA (fp16 where unsupported) and on CPUs with native bf16)",
    )
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, up to 8 on CUDA)")
    add_job_options(p)
    add_credit_options(p, "checkpoint", name=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
    from ..training.train import train
    from .common import credit_from_args, data_options, loss_config_from_args, optim_options, run_options

    config = TrainConfig(
        data=DataConfig(**data_options(args)),
        loss=loss_config_from_args(args, args.style_image),
        run=RunConfig(**run_options(args), sample_every=args.sample_every),
        model=ModelConfig(preset=args.preset, init=args.init),
        optim=OptimConfig(**optim_options(args)),
        credit=credit_from_args(args),
    )
    result = train(config, progress=not args.no_progress)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.val_losses.items())
    skipped = f", {len(result.skipped)} unreadable image(s) skipped" if result.skipped else ""
    print(f"wrote {result.checkpoint} ({result.iterations} iterations, {result.images_per_s:.2f} img/s{skipped})")
    if losses:
        print(f"validation: {losses}")
    return 0
