"""``stylize-video sheet``: one photo in every installed style, as a labelled grid, or in
five mixtures of two styles (``--blend A B``), as a strip."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import add_backend_option


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sheet",
        help="contact sheet of one photo in every style",
        description=(
            "Render one photo in every installed style (or those given with -s; blends such as "
            "'a=0.7+b=0.3' too) as a labelled grid, or with --blend A B in five mixtures of two styles."
        ),
        epilog=(
            "examples:\n"
            "  stylize-video sheet photo.jpg -o sheet.jpg\n"
            "  stylize-video sheet photo.jpg --blend starry-night great-wave -o strip.jpg"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="photo to stylize")
    p.add_argument("-o", "--output", required=True, help="output image (.jpg/.png)")
    p.add_argument(
        "-s", "--style", action="append", default=None, help="style or blend to include (repeatable; default: all)"
    )
    p.add_argument(
        "--blend",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="a strip of A and B mixed 100/0, 75/25, 50/50, 25/75 and 0/100 instead of a grid",
    )
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
    from ..runtime.style_spec import parse_style_spec
    from ..runtime.stylizer import Stylizer

    src = Path(args.input)
    out = check_image_suffix(check_output(Path(args.output), [src], overwrite=args.overwrite))
    if args.tile_size < 16:
        raise InputError(f"--tile-size must be >= 16, got {args.tile_size}")
    if args.blend is not None and args.style:
        raise InputError("give either -s (a grid of styles) or --blend A B (a strip of their mixtures), not both")
    photo = resize_max(read_image(src), args.tile_size)
    if args.blend is not None:
        return _blend_strip(args, photo, out)
    names = args.style or sorted(available_styles())
    if not names:
        raise CheckpointError("no styles installed and none given with -s")
    tiles = [] if args.no_original else [label_tile(photo, "original")]
    stylizer: Stylizer | None = None
    for name in names:
        if len(parse_style_spec(name)) > 1:  # a blend: labelled by its normalised spec
            if stylizer is None:
                stylizer = Stylizer(name, device=args.device, backend=args.backend)
            else:
                stylizer.set_style(name, morph=0)
            label = stylizer.style_name
            tiles.append(label_tile(stylizer(photo), label))
            print(f"{label}: done")
            continue
        ck = load_checkpoint(name)
        if stylizer is None:
            stylizer = Stylizer(ck, device=args.device, backend=args.backend)
        else:
            stylizer.set_style(ck, morph=0)
        # A gallery row is labelled as its own painting, not as the network ("8 styles").
        meta = ck.meta.for_style(ck.style_index)
        label = meta.title or meta.name
        if meta.preset == "lite":
            label += " (lite)"
        tiles.append(label_tile(stylizer(photo), label))
        print(f"{name}: done")
    write_image(out, tile(tiles, cols=args.cols))
    print(f"wrote {out} ({len(tiles)} tiles)")
    return 0


def _blend_strip(args: argparse.Namespace, photo: Any, out: Path) -> int:
    """One row: ``photo`` in A and B mixed at :data:`~stylize_video.io.sheet.BLEND_WEIGHTS`.

    The engine decides how to mix: styles of one multi-style network mix their style
    vectors (one network run per tile); styles of different networks mix the networks'
    outputs. Two single-style networks are never merged into one with
    ``TransformNet.from_single``: that keeps only the first one's convolutions, so the
    second style would not look like itself (the shipped lite styles share an
    architecture, not their weights).
    """
    from ..errors import InputError
    from ..io.images import write_image
    from ..io.sheet import BLEND_WEIGHTS, blend_label, blend_spec, label_tile, tile
    from ..runtime.stylizer import Stylizer

    a, b = args.blend
    if a == b:
        raise InputError(f"--blend needs two different styles, got {a!r} twice")
    stylizer = Stylizer(blend_spec(a, b, 0.5), device=args.device, backend=args.backend)  # loads both
    tiles = []
    for weight in BLEND_WEIGHTS:
        stylizer.set_style(blend_spec(a, b, weight), morph=0)
        tiles.append(label_tile(stylizer(photo), blend_label(a, b, weight)))
        print(f"{stylizer.style_name}: done")
    write_image(out, tile(tiles, cols=args.cols or len(tiles)))
    print(f"wrote {out} ({len(tiles)} tiles, {a} to {b})")
    return 0
