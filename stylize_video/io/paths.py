"""Output-path safety shared by every command that writes files.

Rules: never write over an input; refuse an existing output unless asked to
overwrite; write under a temporary name in the same folder and rename into place
only when complete (:func:`atomic_output`), so a crash or Ctrl-C never leaves a
truncated file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputError

# The atomic-write helpers live in the package's neutral ``files`` module (models and
# training use them too); they stay importable from here, where every sink finds them.
from ..files import PendingOutput, atomic_output, is_partial, partial_path

__all__ = ["PendingOutput", "atomic_output", "check_output", "fresh_path", "is_partial", "partial_path"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: Path, inputs: Iterable[Path] = (), overwrite: bool = False) -> Path:
    """Validate an output path against the inputs and the overwrite rule.

    Raises:
        OutputError: the output is an input, is a directory, or exists without
            ``overwrite``.
    """
    out = Path(output)
    for src in inputs:
        if out.resolve() == Path(src).resolve() or _same_file(out, Path(src)):
            raise OutputError(f"output {str(out)!r} is also an input; refusing to overwrite it")
    if out.is_dir():
        raise OutputError(f"output {str(out)!r} is a directory")
    if out.exists() and not overwrite:
        raise OutputError(f"output {str(out)!r} exists (pass --overwrite to replace it)")
    return out


def fresh_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never an existing file)."""
    if not path.exists():
        return path
    for i in range(1, 100_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputError(f"no free file name next to {str(path)!r}")
