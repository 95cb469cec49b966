"""``stylize-video styles``: list the installed styles with their painting credits."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..text import printable

if TYPE_CHECKING:
    from ..models.checkpoint import CheckpointMeta

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("styles", help="list installed styles", description="List installed styles and their credits.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="a Markdown table with training settings and validation losses (as in checkpoints/README.md)",
    )
    p.set_defaults(func=run)


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def markdown_row(name: str, meta: CheckpointMeta, size_bytes: int) -> str:
    """One row of the styles table: what was trained how, and how well it scored."""
    t, m = meta.training, meta.metrics
    teacher = t.get("teacher")
    settings = f"{t.get('iterations_done', '?')} x {t.get('batch_size', '?')}"
    init = t.get("init_from")
    if isinstance(init, dict):
        # Fine-tuned: iterations before + iterations of this run.
        settings = f"{init.get('iterations', '?')} + {settings}"
    crops = f"{t.get('image_size', '?')} / {t.get('style_size') or 'native'}"
    kind = meta.preset or "custom"
    if teacher:
        kind += f", distilled from `{Path(str(teacher)).stem}`"
    temporal = m.get("val_temporal")
    size = f"{size_bytes / 2**20:.1f} MiB" if size_bytes >= 2**20 else f"{size_bytes / 2**10:.0f} KiB"
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
    return "| " + " | ".join(printable(c, limit=None).replace("|", "\\|") for c in cells) + " |"


MARKDOWN_HEADER = (
    "| style | preset | painting | iterations x batch | crop / style px | temporal weight | trained on "
    "| val content | val style | val temporal x10^3 | size |\n" + "|---" * 11 + "|"
)


def run(args: argparse.Namespace) -> int:
    import json

    from ..errors import CheckpointError
    from ..models.checkpoint import available_styles, load_checkpoint, search_dirs

    rows: list[dict[str, str]] = []
    table = [MARKDOWN_HEADER]
    # Each full style followed by its lite variant.
    for name, path in sorted(available_styles().items(), key=lambda kv: (kv[0].removesuffix("-lite"), kv[0])):
        try:
            meta = load_checkpoint(path).meta
        except CheckpointError as exc:  # header fine, weights not (NaN ...): skipped like a corrupt file
            log.warning("skipping style file %s", exc)
            continue
        rows.append({"name": name, "preset": meta.preset or "?", "painting": meta.describe(), "path": str(path)})
        table.append(markdown_row(name, meta, path.stat().st_size))
    if args.markdown:
        print("\n".join(table))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        where = ", ".join(str(d) for d in search_dirs())
        print(f"no styles installed (searched: {where}); train one with `stylize-video train`")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        # Names and credits come from files: escaped so they cannot drive the terminal.
        print(f"{printable(r['name']):<{width}}  {printable(r['preset']):<4}  {printable(r['painting'])}")
    return 0
