"""``stylize-video learn-style``: learn a new style vector for any painting on a frozen network."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from ..training.losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT
    from ..units import parse_duration
    from .common import add_credit_options, add_job_options

    p = sub.add_parser(
        "learn-style",
        help="learn a new style from a painting in minutes (a style vector for an existing network)",
        description=(
            "Learn a new style for any painting (or a folder of images of one style) with the network frozen: "
            "only one row of its conditional instance norms (~3,200 numbers for full) is trained, against the "
            "VGG perceptual loss and the temporal loss. The result is a style-vector file that loads with -s "
            "wherever a style does and blends with the base network's styles. The base defaults to the "
            "installed multi-style gallery network, else the single-style starry-night network. "
            "State is saved every --checkpoint-every steps and on Ctrl-C; --resume continues exactly."
        ),
        epilog=(
            "example: stylize-video learn-style matisse.jpg -o matisse.safetensors --data photos/ "
            "--vgg-weights vgg16.safetensors --time-limit 5m"
        ),
    )
    p.add_argument("painting", help="the painting: an image, or a folder of images of one style")
    p.add_argument("-o", "--output", required=True, help="style file to write (NAME.safetensors; NAME is the style)")
    p.add_argument(
        "--base",
        default=None,
        help="network to learn on (a name or path; default: the shipped full gallery, else starry-night)",
    )
    p.add_argument("--data", required=True, help="folder of photos (recursive) or an uncompressed .tar of them")
    p.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG16 weights (.safetensors/.pth, torchvision key layout); default: torchvision's, downloaded once",
    )
    p.add_argument(
        "--time-limit",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="end the style-vector phase after this long (e.g. 5m); loading and validation come on top",
    )
    p.add_argument("--iterations", type=int, default=1000, help="style-vector steps at most (default: 1000)")
    p.add_argument(
        "--full-finetune",
        type=int,
        default=0,
        metavar="N",
        help="then train the WHOLE network N more steps (much slower); the output is then a standalone "
        "single-style network, not a style vector",
    )
    p.add_argument("--lr", type=float, default=3e-2, help="Adam learning rate of the style vector (default: 3e-2)")
    p.add_argument("--finetune-lr", type=float, default=1e-3, help="learning rate of --full-finetune (1e-3)")
    p.add_argument("--image-size", type=int, default=128, help="training crop size (default: 128, as the gallery)")
    p.add_argument("--style-size", type=int, default=256, help="painting's longer side in px (default: 256)")
    p.add_argument("--batch-size", type=int, default=4, help="default: 4")
    p.add_argument("--content-weight", type=float, default=DEFAULT_CONTENT_WEIGHT, help="default: %(default)s")
    p.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT, help="default: %(default)s")
    p.add_argument("--tv-weight", type=float, default=DEFAULT_TV_WEIGHT, help="default: %(default)s")
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=30.0,
        help="weight of the temporal loss (default: 30, as the shipped styles; 0: off)",
    )
    p.add_argument("--val-images", type=int, default=64, help="held-out photos to validate on (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="fixes the data order (default: 0)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="save resumable state every N steps (50)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT.learn-state.pt")
    p.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"], help="mixed precision (auto)")
    add_job_options(p)
    add_credit_options(p, "style file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import DataConfig, OptimConfig, RunConfig
    from ..training.learn_style import LearnStyleConfig, learn_style
    from .common import credit_from_args, data_options, loss_config_from_args, optim_options, run_options

    config = LearnStyleConfig(
        data=DataConfig(**data_options(args)),
        loss=loss_config_from_args(args, args.painting),
        run=RunConfig(**run_options(args), sample_every=0),
        optim=OptimConfig(**optim_options(args)),
        base=args.base,
        full_finetune=args.full_finetune,
        finetune_lr=args.finetune_lr,
        credit=credit_from_args(args),
    )
    result = learn_style(config, progress=not args.no_progress)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.val_losses.items())
    what = (
        f"a standalone network ({result.finetune_iterations} whole-network steps after the vector)"
        if result.kind == "network"
        else f"a style vector for {result.base!r}"
    )
    print(
        f"wrote {result.output}: {what}; {result.iterations} vector steps from {result.init_style!r} "
        f"in {result.seconds:.0f} s"
    )
    if losses:
        print(f"validation: {losses}")
    return 0
