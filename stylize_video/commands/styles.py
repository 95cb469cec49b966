"""``stylize-video styles``: list the installed styles with their painting credits."""

from __future__ import annotations

import argparse
from typing import Any

from ..training.report import MARKDOWN_HEADER, markdown_row

__all__ = ["MARKDOWN_HEADER", "markdown_row", "register", "run"]


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
            rows.append({"name": name, "preset": meta.preset or "?", "painting": meta.describe(), "path": str(path)})
            table.append(markdown_row(name, meta, path.stat().st_size))
        except CheckpointError as exc:
            rows.append({"name": name, "preset": "?", "painting": f"unreadable: {exc}", "path": str(path)})
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
        print(f"{r['name']:<{width}}  {r['preset']:<4}  {r['painting']}")
    return 0
