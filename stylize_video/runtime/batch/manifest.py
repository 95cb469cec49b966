"""The batch's record: ``manifest.jsonl`` in the output folder, and the report of a run."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

#: The manifest's file name inside the output folder.
MANIFEST_NAME = "manifest.jsonl"

#: ``truncated``: converted, but the input ends early (a file cut short); like ``done``,
#: a rerun skips it (the same input gives the same output).
Status = Literal["done", "truncated", "failed", "skipped"]


@dataclass
class FileReport:
    """The outcome for one input file."""

    input: str
    output: str
    status: Status
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0  # summed worker time over the file's tasks
    segments: int = 1


@dataclass
class BatchReport:
    """Every file's outcome and the wall time of the batch."""

    files: list[FileReport] = field(default_factory=list)
    wall: float = 0.0
    workers: int = 0  # 0: nothing needed converting
    interrupted: bool = False  # stopped by a signal: ``unfinished`` files are left for the next run
    unfinished: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        """Counts on one line, then one line per failed file with its reason."""
        lines = [
            f"{self.count('done')} done, "
            + (f"{self.count('truncated')} truncated, " if self.count("truncated") else "")
            + f"{self.count('failed')} failed, {self.count('skipped')} skipped "
            f"in {self.wall:.1f}s with {self.workers} worker(s)"
        ]
        if self.interrupted:
            lines[0] += f"; stopped with {self.unfinished} file(s) not converted (a rerun does them)"
        lines += [f"truncated: {f.input}: {f.reason}" for f in self.files if f.status == "truncated"]
        lines += [f"failed: {f.input}: {f.reason}" for f in self.failed]
        return "\n".join(lines)


class Manifest:
    """``manifest.jsonl``: one JSON object per converted or failed file, appended as files finish."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        """All records, oldest first (a torn last line from a crash is ignored)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: ignoring a damaged line", self.path)
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """The newest record per output path."""
        return {r["output"]: r for r in self.records() if "output" in r}

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
