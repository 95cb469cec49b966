"""``stylize-video batch``: convert a folder (or glob) of videos with one style or blend, locally or on Ray."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from .common import add_engine_options, add_region_options, add_video_options, check_region_args

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="convert many video files: a local worker pool or a Ray cluster, resumable",
        description=(
            "Stylize every video in a folder (recursively) or matching a glob into OUT_DIR, mirroring "
            "the input layout. Finished outputs are skipped on rerun; OUT_DIR/manifest.jsonl records "
            "each file with its style and settings; a bad file is reported and the batch goes on."
        ),
        epilog=(
            "examples:\n"
            "  stylize-video batch footage/ -o styled/ -s starry-night\n"
            "  stylize-video batch 'footage/**/*.mov' -o styled/ -s great-wave --workers 2\n"
            "  stylize-video batch footage/ -o styled/ -s great-wave --segment-seconds 60\n"
            "  stylize-video batch footage/ -o styled/ -s 'starry-night=0.7+great-wave=0.3'   # a blend\n"
            "  stylize-video batch takes/ -o cutouts/ -s candy --region person --alpha   # .webm with alpha\n"
            "  stylize-video batch footage/ -o /shared/styled -s great-wave --ray=auto   # a running cluster\n"
            "exit status: 0 when no file failed, 1 otherwise (the report lists each failure and why)\n"
            "stopping: Ctrl-C or SIGTERM starts no further file and drops those in progress; every finished\n"
            "file is in the manifest and a rerun does the rest (exit status 130); a second one stops at once"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        nargs="+",
        metavar="INPUT_DIR_OR_GLOB",
        help="folders (searched recursively), globs (quote them) or files",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes/actors (default: one per GPU, or cores/2)"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (extra: ray); ADDRESS of a cluster, e.g. --ray=auto (bare --ray: a local Ray)",
    )
    p.add_argument(
        "--segment-seconds",
        type=float,
        default=None,
        metavar="S",
        help="split videos longer than ~1.5*S at keyframes and convert the pieces in parallel, then join them",
    )
    p.add_argument(
        "--segment-preroll",
        type=int,
        default=8,
        metavar="N",
        help="with --smooth: frames before each piece that warm the smoother up (not written; default 8, "
        "0 restarts smoothing at every join)",
    )
    p.add_argument(
        "--ext", default=None, help="output container (default: .mp4; with --alpha .webm, or .mov for ProRes 4444)"
    )
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    add_video_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_options(p)
    add_region_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import StylizeError
    from ..io.specs import EncoderOptions
    from ..runtime.batch import BatchInterrupted, BatchRunner, BatchSettings, BatchStyle, executor_factory, plan_jobs
    from .common import default_style

    if args.compile:
        log.warning("--compile is ignored by batch (each worker would recompile for every frame size)")
    if args.workers is not None and args.workers < 1:
        raise StylizeError(f"--workers must be >= 1, got {args.workers}")
    check_region_args(args)
    settings = BatchSettings(
        style=args.style or default_style(args.device),
        strength=args.strength,
        preserve_color=args.preserve_color,
        style_scale=args.style_scale,
        precision=args.precision,
        smooth=args.smooth,
        smooth_strength=args.smooth_strength,
        encoder=EncoderOptions.from_cli(args.codec, args.crf, args.bitrate, args.preset),
        extension=args.ext or (".webm" if args.alpha else ".mp4"),
        device=args.device,
        threads=args.threads,
        backend=args.backend,
        region=args.region,
        person_style=args.person_style,
        person_strength=args.person_strength,
        person_model=args.person_model,
        alpha=args.alpha,
    )
    # Style, device, precision and inputs are checked before any worker starts: a typo
    # costs no start-up, and a worker that cannot start would only say "worker died".
    from ..devices import resolve_device
    from ..runtime.stylizer import pick_dtype

    pick_dtype(resolve_device(settings.device), settings.precision)
    # A spec as `run -s` takes it: one style or a blend, loaded once here and shipped to the workers.
    checkpoint = BatchStyle.load(settings.style)
    if settings.person_style is not None:
        BatchStyle.load(settings.person_style)
    if settings.region != "all" or settings.person_style is not None:
        from ..person import find_model

        # Found (or downloaded) once here: workers would each fail or fetch it otherwise.
        settings = dataclasses.replace(settings, person_model=str(find_model(path=settings.person_model)))
    jobs = plan_jobs(args.input, args.output, settings.extension)
    runner = BatchRunner(
        jobs,
        settings,
        args.output,
        checkpoint=checkpoint,
        segment_seconds=args.segment_seconds,
        preroll_frames=args.segment_preroll,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    make = executor_factory(
        checkpoint, settings, workers=args.workers, use_ray=args.ray is not None, ray_address=args.ray or None
    )
    try:
        report = runner.run(make)
    except BatchInterrupted as stopped:
        # What finished is recorded; say so before the CLI reports the interruption (exit 130).
        print(stopped.report.summary())
        print(f"manifest: {runner.manifest.path}")
        raise
    print(report.summary())
    print(f"manifest: {runner.manifest.path}")
    return 1 if report.failed else 0
