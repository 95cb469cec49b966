"""``stylize-video optimize``: Gatys et al. optimization-based transfer for one still."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from ..training.optimize import DEFAULT_OPTIMIZE_STYLE_WEIGHT, DEFAULT_OPTIMIZE_TV_WEIGHT

    p = sub.add_parser(
        "optimize",
        help="stylize one image with any painting by optimization (slow, best quality)",
        description=(
            "Optimization-based style transfer (Gatys et al. 2016): the pixels are optimised against the "
            "VGG16 perceptual loss. No training needed; hundreds of VGG passes per image."
        ),
        epilog="example: stylize-video optimize photo.jpg starry.jpg -o photo-starry.png --vgg-weights vgg16.safetensors",
    )
    p.add_argument("content", help="the photo")
    p.add_argument("style", help="the painting")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--size", type=int, default=512, help="longer side of the result in px (default: 512)")
    p.add_argument("--style-size", type=int, default=None, help="painting's longer side (default: --size)")
    p.add_argument("--iterations", type=int, default=300, help="optimizer iterations (default: 300)")
    p.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam"], help="default: lbfgs")
    p.add_argument("--lr", type=float, default=None, help="step size (default: 1 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--init", default="content", choices=["content", "noise"], help="starting image")
    p.add_argument("--content-weight", type=float, default=1.0, help="default: %(default)s")
    p.add_argument("--style-weight", type=float, default=DEFAULT_OPTIMIZE_STYLE_WEIGHT, help="default: %(default)s")
    p.add_argument("--tv-weight", type=float, default=DEFAULT_OPTIMIZE_TV_WEIGHT, help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0, help="for --init noise")
    p.add_argument("--vgg-weights", default=None, help="VGG16 weights file (default: torchvision's, downloaded once)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..devices import resolve_device, set_cpu_threads
    from ..errors import StylizeError
    from ..io.images import check_image_suffix, write_image
    from ..io.paths import check_output
    from ..models.vgg import load_vgg
    from ..training.data import load_style_image
    from ..training.optimize import OptimizeSettings, make_optimize_loss, optimize_image

    if args.size < 16:
        raise StylizeError(f"--size must be >= 16, got {args.size}")
    if args.style_size is not None and args.style_size < 16:
        raise StylizeError(f"--style-size must be >= 16, got {args.style_size}")
    out = check_output(Path(args.output), [Path(args.content), Path(args.style)], overwrite=args.overwrite)
    check_image_suffix(out)  # before minutes of optimization, not after
    settings = OptimizeSettings(
        iterations=args.iterations, optimizer=args.optimizer, lr=args.lr, init=args.init, seed=args.seed
    )
    device = resolve_device(args.device)
    set_cpu_threads(args.threads)
    content = load_style_image(args.content, args.size).to(device)
    style = load_style_image(args.style, args.style_size or args.size).to(device)
    for name, img in ((args.content, content), (args.style, style)):
        if min(img.shape[-2:]) < 16:  # VGG pools four times: a thinner image leaves it nothing
            h, w = img.shape[-2:]
            raise StylizeError(f"{name!r} is {w}x{h} px at this size; its shorter side must be >= 16 (raise --size)")
    vgg = load_vgg(args.vgg_weights).to(device)
    loss_fn = make_optimize_loss(vgg, style, args.content_weight, args.style_weight, args.tv_weight)
    image, history = optimize_image(content, loss_fn, settings)
    rgb = (image[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    write_image(out, np.ascontiguousarray(rgb[..., ::-1]))
    print(f"wrote {out} (loss {history[0]['total']:.4g} -> {history[-1]['total']:.4g} in {len(history)} iterations)")
    return 0
