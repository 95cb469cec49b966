"""``stylize-video styles``: list the installed styles with their painting credits."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("styles", help="list installed styles", description="List installed styles and their credits.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..errors import CheckpointError
    from ..models.checkpoint import available_styles, load_checkpoint, search_dirs

    rows: list[dict[str, str]] = []
    for name, path in available_styles().items():
        try:
            meta = load_checkpoint(path).meta
            rows.append({"name": name, "preset": meta.preset or "?", "painting": meta.describe(), "path": str(path)})
        except CheckpointError as exc:
            rows.append({"name": name, "preset": "?", "painting": f"unreadable: {exc}", "path": str(path)})
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
