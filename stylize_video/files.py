"""File primitives every layer may use: atomic output and content hashes.

Kept at the top of the package, beside ``errors``, and free of imports from it, so
``models`` (checkpoint saves), ``training`` (state and sample saves), ``runtime``
(batch outputs) and ``io`` (images, videos) share one temp-name scheme and one
hash without importing one another.

The scheme: a file on its way to ``dir/NAME.EXT`` is written as
``dir/.NAME.partial-PID.EXT`` (hidden; same folder, so the rename is atomic; the
extension kept, since encoders pick formats by it; the writer's process id, so
concurrent writers never share a temp file). :func:`is_partial` recognizes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

_PARTIAL = re.compile(r"^\..+\.partial-(\d+)(\.[^.]*)?$")


def partial_path(final: str | os.PathLike[str]) -> Path:
    """The temporary sibling ``.NAME.partial-PID.EXT`` that ``final`` is written under."""
    final = Path(final)
    return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")


def is_partial(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named as :func:`partial_path` names an unfinished file."""
    return _PARTIAL.match(Path(path).name) is not None


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

    The folder of ``final`` is created. A crash, an exception or Ctrl-C leaves
    nothing under the final name (an older file there stays as it was) and no
    temporary file. ``KeyboardInterrupt`` is an error here: callers that want
    Ctrl-C to keep a valid file must catch it inside the block, finish the file,
    and leave normally.

    Example::

        with atomic_output("out/state.pt") as tmp:
            torch.save(state, tmp)
    """
    pending = PendingOutput(final)
    pending.final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (a multi-GB file costs no memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
