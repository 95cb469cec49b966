"""Train the style gallery in one command (meant for a GPU; works, slowly, on a CPU).

``python -m stylize_video.training.gallery --styles-dir STYLES --data PHOTOS
--vgg-weights VGG --out checkpoints/`` trains, for each style in :data:`GALLERY`,
a ``full`` network (``NAME.safetensors``) and then a ``lite`` one distilled from it
(``NAME-lite.safetensors``). A style whose checkpoint exists is skipped; one with a
training state and no checkpoint is resumed, so the command can simply be rerun
after an interruption.

``--data`` may be a folder or an uncompressed tar (``photos256.tar``: 1,300 photos,
26 MB; with the 15 MB relu4_3 VGG file and the 8 paintings, 3 MB, it fits a 64 MiB
device call only once the working tree is slimmed to ~5 MB, which
``benchmarks/gpu_session.sh prepare`` does)::

    mkdir -p gpu_carry/styles   # listed in .git/info/exclude
    cp ../shared/data/photos256.tar ../shared/weights/vgg16_imagenet_relu4_3.safetensors gpu_carry/
    cp ../shared/styles/{vangogh_starry_night_1889,hokusai_great_wave_c1831,...}.jpg gpu_carry/styles/
    python -m stylize_video.training.gallery --styles-dir gpu_carry/styles --data gpu_carry/photos256.tar \
        --vgg-weights gpu_carry/vgg16_imagenet_relu4_3.safetensors --out checkpoints/ --no-progress

The GPU defaults (batch 8, 5000 iterations = 40k crops, bf16 + channels_last, 8
loader workers) are sized from a FLOP estimate (~140 GFLOP per 256 px training
image, i.e. ~1000 img/s on an H200 at a third of peak: under a minute per full
style); they have not yet been run on a GPU. ``--time-limit 3m`` caps each full
network's training loop (a capped network is validated and written as usual;
loading and validation come on top), so training fits a lease of known length;
``benchmarks/gpu_session.sh train`` runs the one-style recipe that way, and its
``prepare`` fills the copy folder above.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryStyle:
    """One gallery entry: the painting file (in a styles folder) and its credit."""

    name: str
    file: str
    title: str
    artist: str
    year: str
    source: str

    @property
    def credit(self) -> str:
        return f"Public domain painting; image from {self.source}"


#: Painting credits from ``shared/styles/CREDITS.md``.
GALLERY: tuple[GalleryStyle, ...] = (
    GalleryStyle(
        "starry-night",
        "vangogh_starry_night_1889.jpg",
        "The Starry Night",
        "Vincent van Gogh",
        "1889",
        "jcjohnson/neural-style examples/inputs/starry_night.jpg",
    ),
    GalleryStyle(
        "great-wave",
        "hokusai_great_wave_c1831.jpg",
        "The Great Wave off Kanagawa",
        "Katsushika Hokusai",
        "c. 1831",
        "jcjohnson/fast-neural-style images/styles/wave.jpg",
    ),
    GalleryStyle(
        "the-scream",
        "munch_the_scream_1893.jpg",
        "The Scream",
        "Edvard Munch",
        "1893",
        "jcjohnson/neural-style examples/inputs/the_scream.jpg",
    ),
    GalleryStyle(
        "composition-vii",
        "kandinsky_composition_vii_1913.jpg",
        "Composition VII",
        "Wassily Kandinsky",
        "1913",
        "jcjohnson/fast-neural-style images/styles/composition_vii.jpg",
    ),
    GalleryStyle(
        "udnie",
        "picabia_udnie_1913.jpg",
        "Udnie (Young American Girl, The Dance)",
        "Francis Picabia",
        "1913",
        "jcjohnson/fast-neural-style images/styles/udnie.jpg",
    ),
    GalleryStyle(
        "water-lilies",
        "monet_water_lilies_1919.jpg",
        "Water Lilies",
        "Claude Monet",
        "1919",
        "titu1994/Neural-Style-Transfer images/inputs/style/water-lilies-1919-2.jpg",
    ),
    GalleryStyle(
        "shipwreck",
        "turner_shipwreck_of_the_minotaur_c1810.jpg",
        "The Shipwreck of the Minotaur",
        "J. M. W. Turner",
        "c. 1810",
        "lengstrom/fast-style-transfer examples/style/",
    ),
    GalleryStyle(
        "edtaonisl",
        "picabia_edtaonisl_1913.jpg",
        "Edtaonisl (Ecclesiastic)",
        "Francis Picabia",
        "1913",
        "gordicaleksa/pytorch-neural-style-transfer data/style-images/",
    ),
)


def gallery_style(name: str) -> GalleryStyle:
    """Look a gallery entry up by name."""
    from ..errors import StylizeError

    for s in GALLERY:
        if s.name == name:
            return s
    raise StylizeError(f"unknown gallery style {name!r} (choose from {', '.join(s.name for s in GALLERY)})")


def build_parser() -> argparse.ArgumentParser:
    from ..units import parse_duration

    p = argparse.ArgumentParser(
        prog="python -m stylize_video.training.gallery",
        description="Train every gallery style: full, then lite distilled from full.",
    )
    p.add_argument("--styles-dir", required=True, help="folder holding the painting files")
    p.add_argument("--data", required=True, help="photo folder or uncompressed .tar")
    p.add_argument("--vgg-weights", default=None, help="VGG16 weights (torchvision key layout)")
    p.add_argument("--out", default="checkpoints", help="output folder (default: checkpoints)")
    p.add_argument("--only", action="append", default=None, help="train only this style (repeatable)")
    p.add_argument("--preset", default="both", choices=["full", "lite", "both"], help="default: both")
    # GPU defaults: batch 8 x 5000 its = 40k crops (a quarter of Johnson's 160k), enough
    # for a converged look; lite learns from the full teacher in fewer steps.
    p.add_argument("--iterations", type=int, default=5000, help="full-model iterations (default: 5000)")
    p.add_argument("--lite-iterations", type=int, default=3000, help="lite distillation iterations (3000)")
    p.add_argument("--batch-size", type=int, default=8, help="default: 8")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam lr (default: 1e-3)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--style-weight", type=float, default=None, help="override the default style weight")
    p.add_argument("--content-weight", type=float, default=None, help="override the default content weight")
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=30.0,
        help="temporal loss weight for every network (steadier video, softer strokes; default 30, as every "
        "shipped style; 0 = off)",
    )
    p.add_argument(
        "--time-limit",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="cap on each full network's training (e.g. 3m); a capped network is written as usual",
    )
    p.add_argument(
        "--lite-time-limit", type=parse_duration, default=None, metavar="DURATION", help="same for each lite network"
    )
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--sample-every", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def run(args: argparse.Namespace) -> list[Path]:
    """Train what ``args`` asks for; returns the checkpoints written (or already there)."""
    from ..errors import InputError
    from .config import (
        STATE_SUFFIX,
        DataConfig,
        LossConfig,
        ModelConfig,
        OptimConfig,
        RunConfig,
        StyleCredit,
        TrainConfig,
    )
    from .losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT
    from .train import train

    styles = [gallery_style(n) for n in args.only] if args.only else list(GALLERY)
    styles_dir, out_dir = Path(args.styles_dir), Path(args.out)
    missing = [s.file for s in styles if not (styles_dir / s.file).is_file()]
    if missing:
        raise InputError(f"paintings missing from {str(styles_dir)!r}: {', '.join(missing)}")
    written: list[Path] = []
    for s in styles:
        jobs: list[tuple[str, Path, str | None, int, float | None]] = []
        full_path = out_dir / f"{s.name}.safetensors"
        if args.preset in ("full", "both"):
            jobs.append(("full", full_path, None, args.iterations, args.time_limit))
        if args.preset in ("lite", "both"):
            teacher = str(full_path) if full_path.is_file() or args.preset == "both" else None
            lite_path = out_dir / f"{s.name}-lite.safetensors"
            jobs.append(("lite", lite_path, teacher, args.lite_iterations, args.lite_time_limit))
        for preset, path, teacher, iterations, time_limit in jobs:
            if path.is_file():
                log.warning("%s exists, skipping", path)
                written.append(path)
                continue
            config = TrainConfig(
                data=DataConfig(
                    photos=str(args.data),
                    image_size=args.image_size,
                    batch_size=args.batch_size,
                    workers=args.workers,
                ),
                loss=LossConfig(
                    style_image=str(styles_dir / s.file),
                    style_size=args.style_size,
                    vgg_weights=args.vgg_weights,
                    content_weight=args.content_weight if args.content_weight is not None else DEFAULT_CONTENT_WEIGHT,
                    style_weight=args.style_weight if args.style_weight is not None else DEFAULT_STYLE_WEIGHT,
                    temporal_weight=args.temporal_weight,
                    teacher=teacher,
                ),
                run=RunConfig(
                    output=str(path),
                    checkpoint_every=args.checkpoint_every,
                    sample_every=args.sample_every,
                    resume=Path(str(path) + STATE_SUFFIX).is_file(),
                    time_limit=time_limit,
                    device=args.device,
                    threads=args.threads,
                ),
                model=ModelConfig(preset=preset),
                optim=OptimConfig(iterations=iterations, lr=args.lr),
                credit=StyleCredit(
                    name=s.name if preset == "full" else f"{s.name}-lite",
                    title=s.title,
                    artist=s.artist,
                    year=s.year,
                    credit=s.credit,
                ),
            )
            t0 = time.perf_counter()
            result = train(config, progress=not args.no_progress)
            print(
                f"{path}: {result.iterations} its in {time.perf_counter() - t0:.0f}s "
                f"({result.images_per_s:.0f} img/s), val "
                + ", ".join(f"{k} {v:.3g}" for k, v in result.val_losses.items()),
                flush=True,
            )
            written.append(result.checkpoint)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import StylizeError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except StylizeError as exc:
        print(f"gallery: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gallery: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
