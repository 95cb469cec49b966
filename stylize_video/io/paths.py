"""Output-path safety shared by every command that writes files.

Rules: never write over an input; refuse an existing output unless asked to
overwrite; write under a temporary name in the same folder and rename into place
only when complete, so a crash or Ctrl-C never leaves a truncated file under the
final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError


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


def partial_path(final: Path) -> Path:
    """Temporary sibling of ``final`` that keeps its extension (encoders guess formats from it)."""
    return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")


class PendingOutput:
    """A file being written under its temporary name (:func:`partial_path`) until :meth:`commit`.

    For writers whose output outlives one ``with`` block (a video sink open across many
    ``write`` calls); :func:`atomic_output` is the same for a single block.
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        self.tmp = partial_path(self.final)

    def commit(self) -> None:
        """Rename the finished file into place (atomic on one file system)."""
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final``, on error remove it.

    ``KeyboardInterrupt`` is an error here: callers that want Ctrl-C to keep a valid
    file must catch it inside the block, finish the file, and leave normally.
    """
    pending = PendingOutput(final)
    pending.final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


def fresh_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never an existing file)."""
    if not path.exists():
        return path
    for i in range(1, 100_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputError(f"no free file name next to {str(path)!r}")
