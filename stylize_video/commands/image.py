"""``stylize-video image``: stylize still images."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from .common import add_engine_options, add_region_options, check_region_args, make_person_stylizer, make_stylizer

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "image",
        help="stylize image files",
        description="Stylize images. Inputs may be files, directories or glob patterns.",
        epilog=(
            "examples:\n"
            "  stylize-video image photo.jpg -s starry-night -o photo-starry.jpg\n"
            "  stylize-video image portrait.jpg -s candy --region background -o room-painted.jpg\n"
            "  stylize-video image portrait.jpg -s candy --region person --alpha -o cut-out.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument("--max-size", type=int, default=None, help="downscale so the longer side is at most this")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    add_engine_options(p)
    add_region_options(p)
    p.set_defaults(func=run)


def _plan(inputs: list[Path], output: Path) -> list[tuple[Path, Path]]:
    from ..errors import OutputError
    from ..io.images import IMAGE_SUFFIXES

    as_dir = output.is_dir() or len(inputs) > 1 or output.suffix == ""
    if not as_dir:
        return [(inputs[0], output)]
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {str(output)!r} must be a folder for {len(inputs)} inputs")
    plan = []
    seen: set[Path] = set()
    for src in inputs:
        dst = output / src.name
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            dst = dst.with_suffix(".png")  # read but not written by us (.ppm, .pgm...): lossless instead
        if dst in seen:
            raise OutputError(f"two inputs would both be written to {str(dst)!r}")
        seen.add(dst)
        plan.append((src, dst))
    return plan


def run(args: argparse.Namespace) -> int:
    from ..errors import OutputError
    from ..io.image_sequence_sink import ALPHA_SUFFIXES
    from ..io.images import check_image_suffix, expand_image_inputs, read_image, resize_max, write_image
    from ..io.paths import check_output
    from ..person import composite, composite_styles, to_rgba
    from ..runtime.region import masker_factory

    check_region_args(args)
    inputs = expand_image_inputs(args.inputs)
    if args.max_size is not None and args.max_size < 1:
        raise OutputError(f"--max-size must be >= 1, got {args.max_size}")
    plan = _plan(inputs, Path(args.output))
    # Check every output before any work, so a bad one costs nothing.
    for _, dst in plan:
        check_output(dst, inputs, overwrite=args.overwrite)
        check_image_suffix(dst)
        if args.alpha and dst.suffix.lower() not in ALPHA_SUFFIXES:
            raise OutputError(f"output {str(dst)!r} cannot store --alpha (use {', '.join(ALPHA_SUFFIXES)})")
    masked = args.region != "all" or args.person_style is not None
    # No temporal smoothing: every image is its own scene.
    masker = masker_factory(args.person_model, smoothing=0.0)() if masked else None
    stylizer = make_stylizer(args)
    person_stylizer = make_person_stylizer(args)
    for src, dst in plan:
        t0 = time.perf_counter()
        image = resize_max(read_image(src), args.max_size)
        out = stylizer(image)
        if masker is not None:
            mask = masker(image)
            if person_stylizer is not None:
                out = composite_styles(person_stylizer(image), out, mask)
            elif args.alpha:
                out = to_rgba(out, mask)  # straight alpha: the stylized colours, the mask as opacity
            else:
                out = composite(image, out, mask, args.region)
        write_image(dst, out)
        log.info("%s -> %s (%dx%d, %.2fs)", src, dst, out.shape[1], out.shape[0], time.perf_counter() - t0)
        print(f"{src} -> {dst}")
    return 0
