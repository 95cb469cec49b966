"""``stylize-video styles``: list the installed styles with their painting credits."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
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
    from ..models.checkpoint import Checkpoint, load_checkpoint, search_dirs, style_refs

    rows: list[dict[str, Any]] = []
    table = [MARKDOWN_HEADER]
    loaded: dict[Path, Checkpoint | None] = {}
    # Each full style followed by its lite variant; every style of a multi-style network
    # is its own row (the network's file loaded once).
    for name, ref in sorted(style_refs().items(), key=lambda kv: (kv[0].removesuffix("-lite"), kv[0])):
        if ref.path not in loaded:
            try:
                loaded[ref.path] = load_checkpoint(ref.path)
            except CheckpointError as exc:  # header fine, weights not (NaN, a missing base ...): skipped
                log.warning("skipping style file %s", exc)
                loaded[ref.path] = None
        ck = loaded[ref.path]
        if ck is None:
            continue
        index = ref.index if ref.index is not None else ck.style_index
        meta = ck.meta.for_style(index)
        network = ref.path.stem if ref.kind == "multi" else None
        row: dict[str, Any] = {"name": name, "preset": meta.preset or "?", "painting": meta.describe()}
        row["path"] = str(ref.path)
        if ref.kind != "single":
            row |= {"kind": ref.kind, "network": ref.path.stem, "index": index}
        rows.append(row)
        shared = ck.meta.training if network else None
        table.append(markdown_row(name, meta, ref.path.stat().st_size, network, shared))
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
        where = f"  [{printable(r['network'])}]" if r.get("kind") == "multi" else ""
        where = "  [learned]" if r.get("kind") == "vector" else where
        print(f"{printable(r['name']):<{width}}  {printable(r['preset']):<4}  {printable(r['painting'])}{where}")
    return 0
