"""The cost of the style space (issue 17): a multi-style network against a single-style one.

Contenders, each a ``Stylizer`` timed uint8 BGR frame in -> uint8 BGR frame out
(upload, pad, network, crop, download), per backend at its default precision:

* ``single``: the shipped single-style file of ``starry-night`` (``--preset full``) or
  ``starry-night-lite``, loaded by path;
* ``multi, one style``: the shipped 8-style gallery network of the preset
  (``checkpoints/gallery-lite.safetensors``, ``gallery.safetensors``), one style selected;
  where none is installed, one built with ``TransformNet.from_single`` from the eight
  single files (its convolutions are the first network's, so its pictures are only right
  for style 0, but the arithmetic, and so the speed, is that of a distilled one);
* ``multi, 3-way blend``: the same network with a three-style blend spec.

Contenders run interleaved in rounds (order
reversed every other round) so the machine's drifting load hits all alike; the
figures are medians over every frame of every round, and the goal is the ratio:
multi-style speed >= 0.95x single-style, blends included.

    python -m benchmarks.style_space
    python -m benchmarks.style_space --backends torch --rounds 5 --size 1280x720
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .harness import (
    Column,
    Section,
    Timing,
    command_line,
    interleaved,
    machine_info,
    parse_size,
    synthetic_frames,
    time_fn,
    write_results,
)

GALLERY = (
    "starry-night",
    "great-wave",
    "the-scream",
    "udnie",
    "composition-vii",
    "edtaonisl",
    "shipwreck",
    "water-lilies",
)
ROOT = Path(__file__).resolve().parent.parent
BLEND = "starry-night-lite=0.5+great-wave-lite=0.3+udnie-lite=0.2"


def _single_file(name: str) -> Path:
    """A shipped single-style file by path: once a gallery network is installed, the bare
    name means the gallery's style."""
    return ROOT / "checkpoints" / f"{name}.safetensors"


def _multi_checkpoint(preset: str) -> tuple[Any, str]:
    """The shipped gallery network of ``preset``, else the eight single files as one
    conditional network (a Checkpoint); and which of the two it is."""
    from stylize_video.models.checkpoint import Checkpoint, CheckpointMeta, StyleInfo, load_checkpoint
    from stylize_video.models.transform_net import TransformNet

    suffix = "-lite" if preset == "lite" else ""
    shipped = _single_file(f"gallery{suffix}")
    if shipped.is_file():
        return load_checkpoint(shipped), f"the shipped distilled network `{shipped.name}`"
    singles = [load_checkpoint(_single_file(name + suffix)) for name in GALLERY]
    net = TransformNet.from_single([ck.model for ck in singles]).eval().requires_grad_(False)
    meta = CheckpointMeta(
        name=f"gallery{suffix}",
        arch=net.config,
        preset=preset,
        styles=[StyleInfo(name=ck.meta.name) for ck in singles],
    )
    desc = "TransformNet.from_single of the eight single files: same arithmetic as a distilled one"
    return Checkpoint(model=net, meta=meta, path=None), desc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default=None, help="comma-separated (default: torch and openvino if installed)")
    p.add_argument("--preset", default="lite", choices=("lite", "full"))
    p.add_argument("--size", type=parse_size, default=(640, 480), help="WxH (default 640x480)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--frames", type=int, default=8, help="timed frames per contender and round")
    p.add_argument("--out", default="style_space")
    args = p.parse_args(argv)

    import torch

    from stylize_video.runtime.backends import is_installed
    from stylize_video.runtime.stylizer import Stylizer

    torch.set_num_threads(args.threads)
    backends = args.backends.split(",") if args.backends else [b for b in ("torch", "openvino") if is_installed(b)]
    w, h = args.size
    frames = synthetic_frames(w, h, count=4)
    suffix = "-lite" if args.preset == "lite" else ""
    multi, multi_desc = _multi_checkpoint(args.preset)
    blend = BLEND if suffix else BLEND.replace("-lite", "")
    single_name = "starry-night" + suffix

    stylizers: dict[tuple[str, str], Stylizer] = {}
    for backend in backends:
        single = Stylizer(_single_file(single_name), device="cpu", backend=backend, threads=args.threads)
        stylizers[(backend, "single")] = single
        one = Stylizer(multi, device="cpu", backend=backend, threads=args.threads)
        one.set_style(single_name)
        stylizers[(backend, "multi, one style")] = one
        mixed = Stylizer(multi, device="cpu", backend=backend, threads=args.threads)
        mixed.set_style(blend)
        stylizers[(backend, "multi, 3-way blend")] = mixed
        assert len(mixed._styles.nets) == 1, "a blend of one network must run one network"

    def run_frames(st: Stylizer, round_index: int) -> Timing:
        counter = iter(range(10**9))

        def one() -> None:
            st(frames[next(counter) % len(frames)])

        return time_fn(one, warmup=2 if round_index == 0 else 1, iters=args.frames, max_seconds=60.0)

    def contender(st: Stylizer) -> Any:
        return lambda r: run_frames(st, r)

    load_before = os.getloadavg()[0]
    keys = list(stylizers)
    order = {k: contender(stylizers[k]) for k in keys}
    results: dict[tuple[str, str], Timing] = {k: Timing() for k in keys}
    for r in range(args.rounds):
        # Reverse the order every other round: no contender always follows the same one.
        ordered = dict(order.items()) if r % 2 == 0 else dict(reversed(order.items()))
        for key, timings in interleaved(ordered, 1).items():
            results[key].extend(timings[0])
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    rows: list[dict[str, Any]] = []
    for (backend, kind), timing in results.items():
        base = results[(backend, "single")]
        rows.append(
            {
                "backend": backend,
                "precision": stylizers[(backend, kind)].precision,
                "network": kind,
                "style": f"{single_name} (file)" if kind == "single" else stylizers[(backend, kind)].style_name,
                **timing.summary(),
                "speed_vs_single": round(base.median_ms / timing.median_ms, 3),
            }
        )
    machine = machine_info(torch.device("cpu"))
    load_after = os.getloadavg()[0]
    goal = all(r["speed_vs_single"] >= 0.95 for r in rows)
    notes = [
        f"{args.preset} {w}x{h}, {args.threads} threads, {args.rounds} interleaved rounds x {args.frames} frames; "
        "medians over all frames.",
        "speed_vs_single = single-style median ms / this median ms (1.0 = as fast; the goal is >= 0.95).",
        f"goal met in this run: {'yes' if goal else 'no'}.",
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} logical CPUs: "
        "above the CPU count other processes share the cores and absolute times (and ratios) are noisy; the CPU "
        "ms column (this process's CPU time per frame) moves less with load than the wall time.",
        f"The multi-style network: {multi_desc}.",
    ]
    _, _, text = write_results(
        args.out,
        machine,
        [
            Section(
                "Single-style vs 8-style network",
                rows,
                [
                    "backend",
                    "precision",
                    "network",
                    "style",
                    Column("median_ms", "ms/frame", ".2f"),
                    Column("p95_ms", "p95 ms", ".2f"),
                    Column("fps", "fps", ".1f"),
                    Column("cpu_ms", "CPU ms", ".1f"),
                    Column("n", "frames"),
                    Column("speed_vs_single", "speed vs single", ".3f"),
                ],
            )
        ],
        config={
            "command": command_line("style_space", argv),
            "preset": args.preset,
            "size": f"{w}x{h}",
            "threads": args.threads,
            "rounds": args.rounds,
            "frames": args.frames,
        },
        notes=notes,
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
