"""Issue 17's blending goal: a blend of two styles lies between its parents.

Run: ``python -m benchmarks.blend_path --data PHOTOS --style-images PAINTINGS
--vgg-weights VGG [--network gallery-lite] [--pair A B ...] [--weights 0 0.25 0.5 0.75 1]``.

For each pair of styles A and B of one multi-style network, the network paints the
held-out photos with the style vector ``w*A + (1-w)*B`` for each weight ``w``, and the
output is scored with the *style* loss (unweighted Gram distance, each painting's
recorded style size and layer weights, the same loss ``evaluate-style`` reports)
against painting A and against painting B. The goal holds for a pair when

* the loss against A falls, and the loss against B rises, as ``w`` goes from 0 to 1
  (monotone along the blend weight), and
* the 50/50 blend's losses lie between the parents' (strictly inside both intervals).

Without the photos, paintings or VGG weights the script says so and exits 0 (the
project's shared data folder holds all three; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmarks.harness import Column, Section, command_line, machine_info, write_results

if TYPE_CHECKING:
    from stylize_video.models.vgg import VGGFeatures

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: Pairs far apart in colour and stroke, and one of two Picabias.
DEFAULT_PAIRS = (
    ("starry-night-lite", "great-wave-lite"),
    ("the-scream-lite", "water-lilies-lite"),
    ("composition-vii-lite", "shipwreck-lite"),
    ("udnie-lite", "edtaonisl-lite"),
)


def _default_pairs(network: str) -> list[tuple[str, str]]:
    """:data:`DEFAULT_PAIRS` named as ``network`` names its styles (``full`` drops ``-lite``)."""
    from stylize_video.models.checkpoint import load_checkpoint

    names = set(load_checkpoint(network).meta.style_names)
    if all(a in names for a, _ in DEFAULT_PAIRS):
        return list(DEFAULT_PAIRS)
    return [(a.removesuffix("-lite"), b.removesuffix("-lite")) for a, b in DEFAULT_PAIRS]


def _is_monotone(values: Sequence[float], rising: bool) -> bool:
    pairs = list(itertools.pairwise(values))
    return all(b >= a for a, b in pairs) if rising else all(b <= a for a, b in pairs)


def blend_path(
    network: str,
    pair: tuple[str, str],
    weights: Sequence[float],
    data: Path,
    style_images: Path,
    vgg: VGGFeatures,
    max_images: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The style losses against both paintings along the blend, and the verdict."""
    from stylize_video.models.checkpoint import load_checkpoint
    from stylize_video.training.data import PhotoSet, load_fixed
    from stylize_video.training.evaluate import FixedStyle, recorded_loss, validation_losses

    ck = load_checkpoint(network)
    names = ck.style_names
    for name in pair:
        if name not in names:
            raise SystemExit(f"{network} holds no style {name!r} (it holds {', '.join(names)})")
    ia, ib = (names.index(n) for n in pair)
    metas = [ck.meta.for_style(i) for i in (ia, ib)]
    losses = [
        recorded_loss(vgg, style_images / str(m.training["style_image"]), m.training, vgg_device(vgg)) for m in metas
    ]
    size = int(metas[0].training.get("image_size", 128))
    images = load_fixed(PhotoSet.scan(data, 0.05).val[:max_images], size)
    n = ck.model.num_styles
    rows: list[dict[str, Any]] = []
    vs_a: list[float] = []
    vs_b: list[float] = []
    for w in weights:
        mix = w * torch.nn.functional.one_hot(torch.tensor(ia), n).float()
        mix += (1 - w) * torch.nn.functional.one_hot(torch.tensor(ib), n).float()
        model = FixedStyle(ck.model.float().eval(), mix)
        la, lb = (validation_losses(model, loss, images)["style"] for loss in losses)
        rows.append({"pair": f"{pair[0]} / {pair[1]}", "weight_a": w, "style_vs_a": la, "style_vs_b": lb})
        vs_a.append(la)
        vs_b.append(lb)
    verdict: dict[str, Any] = {
        "pair": f"{pair[0]} / {pair[1]}",
        "images": len(images),
        "monotone_vs_a": _is_monotone(vs_a, rising=False),
        "monotone_vs_b": _is_monotone(vs_b, rising=True),
    }
    if {0.0, 0.5, 1.0} <= set(weights):
        at = list(weights).index
        mid_a, mid_b = vs_a[at(0.5)], vs_b[at(0.5)]
        a0, a1, b0, b1 = vs_a[at(0.0)], vs_a[at(1.0)], vs_b[at(0.0)], vs_b[at(1.0)]
        verdict["half_between"] = min(a0, a1) < mid_a < max(a0, a1) and min(b0, b1) < mid_b < max(b0, b1)
    verdict["goal_met"] = all(v for k, v in verdict.items() if isinstance(v, bool))
    return rows, verdict


def vgg_device(vgg: VGGFeatures) -> torch.device:
    return next(vgg.parameters()).device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="gallery-lite", help="multi-style network (name or file)")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), help="two styles (repeatable)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "photos")
    parser.add_argument("--style-images", type=Path, default=SHARED / "styles")
    parser.add_argument("--vgg-weights", type=Path, default=SHARED / "weights" / "vgg16_imagenet_relu4_3.safetensors")
    parser.add_argument("--max-images", type=int, default=32, help="held-out photos scored per blend")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="blend_path", help="result name under benchmarks/results")
    args = parser.parse_args(argv)
    missing = [str(p) for p in (args.data, args.style_images, args.vgg_weights) if not p.exists()]
    if missing:
        print(f"skipped: not found: {', '.join(missing)}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from stylize_video.models.vgg import VGGFeatures, load_vgg_state

    vgg = VGGFeatures(load_vgg_state(args.vgg_weights)).eval()
    rows: list[dict[str, Any]] = []
    verdicts = []
    for pair in args.pair or _default_pairs(args.network):
        r, v = blend_path(args.network, tuple(pair), args.weights, args.data, args.style_images, vgg, args.max_images)
        rows += r
        verdicts.append(v)
        print(v, file=sys.stderr)
    met = sum(v["goal_met"] for v in verdicts)
    write_results(
        args.out,
        machine_info(),
        [
            Section(
                "Style loss along the blend",
                rows,
                [
                    "pair",
                    Column("weight_a", "weight of A", ".2f"),
                    Column("style_vs_a", "style loss vs painting A", ".4f"),
                    Column("style_vs_b", "style loss vs painting B", ".4f"),
                ],
            ),
            Section(
                "Verdict per pair",
                verdicts,
                [
                    "pair",
                    "images",
                    Column("monotone_vs_a", "falls vs A as w rises"),
                    Column("monotone_vs_b", "rises vs B as w rises"),
                    Column("half_between", "50/50 between the parents"),
                    Column("goal_met", "goal met"),
                ],
            ),
        ],
        config={"command": command_line("blend_path", argv), "network": args.network, "weights": args.weights},
        notes=[
            f"goal met for {met} of {len(verdicts)} pairs",
            "style loss: unweighted Gram distance of the output to each painting (its recorded style size and layer "
            "weights), mean over the held-out photos at the network's training size; lower is closer.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
