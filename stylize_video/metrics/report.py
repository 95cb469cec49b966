"""Reports of a temporal evaluation: a Markdown table and report, and the JSON document."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .evaluation import Evaluation

__all__ = ["COLUMNS", "json_report", "markdown_report", "markdown_table"]

COLUMNS = (
    ("smoother", "smoother"),
    ("warping error ×10³", "warping_error"),
    ("vs none", "vs_none_pct"),
    ("fidelity MSE ×10³", "fidelity_mse"),
    ("fidelity PSNR dB", "fidelity_psnr_db"),
    ("extra ms/frame", "ms_per_frame"),
)


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("warping_error", "fidelity_mse"):
        return f"{value * 1e3:.3f}"
    if key == "vs_none_pct":
        return f"{value:+.0f}%"
    if key == "fidelity_psnr_db":
        return "∞" if math.isinf(value) else f"{value:.1f}"
    if key == "ms_per_frame":
        return f"{value:.2f}"
    return str(value)


def markdown_table(evaluations: Sequence[Evaluation]) -> str:
    """One Markdown table, a row per (clip, smoother)."""
    multi = len(evaluations) > 1
    head = (["clip"] if multi else []) + [title for title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for ev in evaluations:
        for r in ev.results:
            d = r.as_dict()
            cells = ([ev.clip] if multi else []) + [_cell(key, d[key]) for _, key in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(evaluations: Sequence[Evaluation], title: str = "Temporal consistency") -> str:
    """A Markdown document: one line per clip, the table of :func:`markdown_table`, how to read it."""
    parts = [f"# {title}", ""]
    for ev in evaluations:
        parts.append(
            f"- `{ev.clip}`: {ev.frames} frames at {ev.width}x{ev.height}, stylization {ev.stylize_ms:.1f} ms/frame"
        )
    parts += ["", markdown_table(evaluations), ""]
    parts.append(
        "Warping error: Lai et al. 2018 (masked MSE between each output and the previous output warped by the "
        "input's optical flow, [0, 1] RGB scale, mean over channels). Fidelity: MSE to the unsmoothed per-frame "
        "stylization. Extra ms/frame: median wall time of the smoother call."
    )
    return "\n".join(parts) + "\n"


def json_report(evaluation: Evaluation, meta: Mapping[str, Any] | None = None) -> str:
    """The JSON document of one evaluation: ``meta`` (style, device...) first, then the results.

    Unmeasured or perfect scores (NaN, inf) are ``null``: JSON has neither.
    """
    return json.dumps({**(meta or {}), **evaluation.as_dict()}, indent=2) + "\n"
