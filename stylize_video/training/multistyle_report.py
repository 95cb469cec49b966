"""How a multi-style network compares with its teachers: scores, metadata and a Markdown table.

After ``distill-styles`` every style is scored against its own painting next to the
single-style teacher it was distilled from (:func:`compare_with_teachers`); the
numbers go into the network's metadata (:func:`record_comparison`) and a report
(:func:`comparison_markdown`). Kept apart from the distillation loop: it only reads
checkpoints, so it also scores networks trained elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import InputError
from ..models.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["StyleComparison", "compare_with_teachers", "comparison_markdown", "record_comparison"]


@dataclass
class StyleComparison:
    """Validation losses of one style: its teacher vs the multi-style network."""

    style: str
    teacher: dict[str, float]
    student: dict[str, float]
    ratios: dict[str, float] = field(default_factory=dict)

    def within(self, tolerance: float = 0.10, keys: Sequence[str] = ("content", "style")) -> bool:
        """True when every ``keys`` loss is at most ``1 + tolerance`` times the teacher's."""
        return all(self.ratios[k] <= 1.0 + tolerance for k in keys)


def compare_with_teachers(
    network: str | Path,
    teachers: Sequence[str | Path],
    data: str | Path,
    style_images: str | Path,
    *,
    vgg: torch.nn.Module | None = None,
    vgg_weights: str | Path | None = None,
    max_images: int = 64,
    device: str = "auto",
) -> list[StyleComparison]:
    """Score every style of a multi-style ``network`` and its teacher the same way.

    Both go through :func:`~.evaluate.evaluate_checkpoint` with one loss network, the
    painting found in ``style_images`` and the teacher's recorded loss settings, so
    the ratios compare like with like. Teachers are matched to styles by name.

    Raises:
        InputError: a teacher whose name the network does not hold.
    """
    from ..models.vgg import VGGFeatures, load_vgg_state
    from .evaluate import evaluate_checkpoint

    net = load_checkpoint(network)
    names = net.style_names
    loss_net = vgg if vgg is not None else VGGFeatures(load_vgg_state(vgg_weights))
    rows = []
    for t in teachers:
        ev_t = evaluate_checkpoint(
            t, data, style_image=style_images, image_size=None, max_images=max_images, device=device, vgg=loss_net
        )
        name = load_checkpoint(t).meta.name
        if name not in names:
            raise InputError(f"{str(network)!r} holds no style named {name!r} (it holds {', '.join(names)})")
        ev_s = evaluate_checkpoint(
            network,
            data,
            style_image=style_images,
            image_size=ev_t.image_size,
            max_images=max_images,
            device=device,
            vgg=loss_net,
            style=name,
        )
        ratios = {k: ev_s.losses[k] / ev_t.losses[k] if ev_t.losses[k] else float("nan") for k in ev_t.losses}
        rows.append(StyleComparison(name, ev_t.losses, ev_s.losses, ratios))
    return rows


def record_comparison(network: str | Path, rows: Sequence[StyleComparison]) -> Path:
    """Store each style's validation losses (and its teacher's, and the ratios) in the network's metadata.

    The file is rewritten atomically with the same weights (fp16, as saved).
    """
    ck = load_checkpoint(network)
    by_name = {r.style: r for r in rows}
    styles = []
    for info in ck.meta.styles:
        r = by_name.get(info.name)
        if r is not None:
            metrics = dict(info.metrics)
            metrics.update({f"val_{k}": v for k, v in r.student.items()})
            metrics.update({f"teacher_val_{k}": v for k, v in r.teacher.items()})
            metrics.update({f"ratio_val_{k}": v for k, v in r.ratios.items()})
            info = dataclasses.replace(info, metrics=metrics)
        styles.append(info)
    assert ck.path is not None  # loaded from a file
    return save_checkpoint(ck.path, ck.model, dataclasses.replace(ck.meta, styles=styles))


def comparison_markdown(rows: Sequence[StyleComparison], tolerance: float = 0.10) -> str:
    """The per-style table: teacher vs multi-style val content, style, temporal and their ratios."""
    lines = [
        "| style | teacher content | multi content | ratio | teacher style | multi style | ratio "
        "| teacher temporal x10^3 | multi temporal x10^3 | within 10% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, s, q = r.teacher, r.student, r.ratios
        lines.append(
            f"| `{r.style}` | {t['content']:.3f} | {s['content']:.3f} | {q['content']:.3f} "
            f"| {t['style']:.3f} | {s['style']:.3f} | {q['style']:.3f} "
            f"| {t['temporal'] * 1e3:.2f} | {s['temporal'] * 1e3:.2f} | {'yes' if r.within(tolerance) else 'no'} |"
        )
    return "\n".join(lines) + "\n"
