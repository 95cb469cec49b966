"""``stylize-video styles``: list the installed styles with their painting credits."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..text import printable
from ..training.report import MARKDOWN_HEADER, markdown_row

__all__ = ["MARKDOWN_HEADER", "markdown_row", "register", "run"]

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
