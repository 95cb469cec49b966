"""The table of trained styles (as in ``checkpoints/README.md``): how each was trained, how well it scored.

Reads only the metadata a checkpoint carries (``training`` and ``metrics``, written
by :class:`~stylize_video.training.trainer.Trainer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..text import printable

if TYPE_CHECKING:
    from ..models.checkpoint import CheckpointMeta

__all__ = ["MARKDOWN_HEADER", "markdown_row"]


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def markdown_row(
    name: str,
    meta: CheckpointMeta,
    size_bytes: int,
    network: str | None = None,
    network_training: Mapping[str, Any] | None = None,
) -> str:
    """One row of the styles table: what was trained how, and how well it scored.

    For a style inside a multi-style network pass that style's view
    (:meth:`CheckpointMeta.for_style`), the network's name and its own training
    settings; ``size_bytes`` is then the network file's size, shared by its styles.
    """
    t, m = meta.training, meta.metrics
    teacher = t.get("teacher")
    source = t.get("distilled_from")
    if isinstance(source, dict) and network_training is not None:
        # A row of a distilled network: iterations, batch and device are the network's
        # (one run trains every row); the style's own settings name its teacher.
        teacher = source.get("name") or teacher
        t = {
            **t,
            **{
                k: network_training[k]
                for k in ("iterations_done", "batch_size", "device", "init")
                if k in network_training
            },
        }
    settings = f"{t.get('iterations_done', '?')} x {t.get('batch_size', '?')}"
    init = t.get("init_from")
    if isinstance(init, dict):
        # Fine-tuned: iterations before + iterations of this run.
        settings = f"{init.get('iterations', '?')} + {settings}"
    elif isinstance(t.get("init"), str) and network_training is not None:
        # A distilled network resumed from an earlier network: name that one.
        settings = f"`{Path(str(t['init'])).stem}` + {settings}"
    crops = f"{t.get('image_size', '?')} / {t.get('style_size') or 'native'}"
    kind = meta.preset or "custom"
    if network:
        kind += f", in `{network}`"
    if teacher:
        kind += f", distilled from `{Path(str(teacher)).stem}`"
    temporal = m.get("val_temporal")
    size = f"{size_bytes / 2**20:.1f} MiB" if size_bytes >= 2**20 else f"{size_bytes / 2**10:.0f} KiB"
    if network:
        size += " (shared)"
    cells = [
        f"`{name}`",
        kind,
        meta.describe(),
        settings,
        crops,
        _number(t.get("temporal_weight", 0.0), 0),
        str(t.get("device", "?")).split(":")[0].upper(),
        _number(m.get("val_content")),
        _number(m.get("val_style")),
        _number(temporal * 1e3 if isinstance(temporal, float) else None, 2),
        size,
    ]
    # Cells come from files: escaped so they cannot drive a terminal, and a | cannot split a cell.
    return "| " + " | ".join(printable(c, limit=None).replace("|", "\\|") for c in cells) + " |"


MARKDOWN_HEADER = (
    "| style | preset | painting | iterations x batch | crop / style px | temporal weight | trained on "
    "| val content | val style | val temporal x10^3 | size |\n" + "|---" * 11 + "|"
)
