"""``stylize-video sheet``: one photo in every installed style, as a labelled grid."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import add_backend_option


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sheet",
        help="contact sheet of one photo in every style",
        description="Render one photo in every installed style (or those given with -s) as a labelled grid.",
        epilog="example: stylize-video sheet photo.jpg -o sheet.jpg",
    )
    p.add_argument("input", help="photo to stylize")
    p.add_argument("-o", "--output", required=True, help="output image (.jpg/.png)")
    p.add_argument("-s", "--style", action="append", default=None, help="style to include (repeatable; default: all)")
    p.add_argument("--tile-size", type=int, default=384, help="longer side of each tile in px (default: 384)")
    p.add_argument("--cols", type=int, default=None, help="tiles per row (default: about square)")
    p.add_argument("--no-original", action="store_true", help="leave out the original photo tile")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_backend_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import CheckpointError, InputError
    from ..io.images import check_image_suffix, read_image, resize_max, write_image
    from ..io.paths import check_output
    from ..io.sheet import label_tile, tile
    from ..models.checkpoint import available_styles, load_checkpoint
    from ..runtime.stylizer import Stylizer

    src = Path(args.input)
    out = check_image_suffix(check_output(Path(args.output), [src], overwrite=args.overwrite))
    if args.tile_size < 16:
        raise InputError(f"--tile-size must be >= 16, got {args.tile_size}")
    photo = resize_max(read_image(src), args.tile_size)
    names = args.style or sorted(available_styles())
    if not names:
        raise CheckpointError("no styles installed and none given with -s")
    tiles = [] if args.no_original else [label_tile(photo, "original")]
    stylizer: Stylizer | None = None
    for name in names:
        ck = load_checkpoint(name)
        if stylizer is None:
            stylizer = Stylizer(ck, device=args.device, backend=args.backend)
        else:
            stylizer.set_style(ck)
        label = ck.meta.title or ck.meta.name
        if ck.meta.preset == "lite":
            label += " (lite)"
        tiles.append(label_tile(stylizer(photo), label))
        print(f"{name}: done")
    write_image(out, tile(tiles, cols=args.cols))
    print(f"wrote {out} ({len(tiles)} tiles)")
    return 0
