"""File primitives every layer may use: atomic output and content hashes.

Kept at the top of the package, beside ``errors``, and free of imports from it, so
``models`` (checkpoint saves), ``training`` (state and sample saves), ``runtime``
(batch outputs) and ``io`` (images, videos) share one temp-name scheme and one
hash without importing one another.

The scheme: a file on its way to ``dir/NAME.EXT`` is written as
``dir/.NAME.partial-PID.EXT`` (hidden; same folder, so the rename is atomic; the
extension kept, since encoders pick formats by it; the writer's process id, so
concurrent writers never share a temp file). :func:`is_partial` recognizes it.
Writers that share folders with other machines (batch workers, possibly on a Ray
cluster) add a host tag, ``dir/.NAME.host-TAG.partial-PID.EXT``, naming the
machine boot and PID namespace the PID belongs to, so that
:func:`remove_stale_partials` can tell a dead local writer from a remote one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import time
from collections.abc import Collection, Iterator
from pathlib import Path

_PARTIAL = re.compile(r"^\..+\.partial-(\d+)(\.[^.]*)?$")
_HOST_TAG = re.compile(r"\.host-([0-9a-f]{8})\.partial-\d+")

#: A partial file whose writer may live on another machine is left alone until it
#: has not changed for this long (a live writer adds to its file far more often).
STALE_AFTER_S = 600.0


def partial_path(final: str | os.PathLike[str], *, host: bool = False) -> Path:
    """The temporary sibling ``.NAME.partial-PID.EXT`` that ``final`` is written under.

    With ``host``, ``.NAME.host-TAG.partial-PID.EXT``: the tag (:func:`host_tag`)
    says where the PID is meaningful.
    """
    final = Path(final)
    tag = f".host-{host_tag()}" if host else ""
    return final.with_name(f".{final.stem}{tag}.partial-{os.getpid()}{final.suffix}")


def is_partial(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named as :func:`partial_path` names an unfinished file."""
    return _PARTIAL.match(Path(path).name) is not None


class PendingOutput:
    """A file being written under its temporary name (:func:`partial_path`) until :meth:`commit`.

    For writers whose output outlives one ``with`` block (a video sink open across many
    ``write`` calls); :func:`atomic_output` is the same for a single block.
    """

    def __init__(self, final: str | os.PathLike[str], *, host: bool = False) -> None:
        self.final = Path(final)
        self.tmp = partial_path(self.final, host=host)

    def commit(self) -> None:
        """Rename the finished file into place (atomic on one file system)."""
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike[str], *, host: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final``, on error remove it.

    The folder of ``final`` is created. A crash, an exception or Ctrl-C leaves
    nothing under the final name (an older file there stays as it was) and no
    temporary file. ``KeyboardInterrupt`` is an error here: callers that want
    Ctrl-C to keep a valid file must catch it inside the block, finish the file,
    and leave normally.

    ``host`` tags the temporary name with the machine (see :func:`partial_path`).

    Example::

        with atomic_output("out/state.pt") as tmp:
            torch.save(state, tmp)
    """
    pending = PendingOutput(final, host=host)
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


@functools.cache
def host_tag() -> str:
    """8 hex digits naming the space this process's PID lives in: this boot of this machine, this PID namespace.

    Two processes with the same tag can check each other's PIDs with ``os.kill``;
    a reboot, another machine or another container gives another tag. Where
    ``/proc`` is missing (macOS), the host name stands in.
    """
    parts = [os.uname().nodename]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def partial_owner(path: str | os.PathLike[str]) -> tuple[int, str | None] | None:
    """The writer of a partial file: (PID, host tag or None when untagged); None for other names."""
    name = Path(path).name
    match = _PARTIAL.match(name)
    if match is None:
        return None
    tag = _HOST_TAG.search(name)
    return int(match.group(1)), tag.group(1) if tag else None


def pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs here (and, given ``since``, had started by that time).

    A process that started after ``since`` (a file's last change) cannot be the one
    that wrote the file: its PID was reused. Linux only; elsewhere PID alone decides.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    except OSError:
        return True  # cannot tell: treat as alive, never remove a live writer's file
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return False  # dead, not yet reaped (an orphan's reaper may never do it in a container)
    if since is not None:
        started = _process_start_time(fields)
        if started is not None and started > since + 2.0:  # /proc has 1 s boot time and tick resolution
            return False
    return True


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/PID/stat`` (state first), None where there is no such file."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start_time(fields: list[str]) -> float | None:
    """Start of a process in seconds since the epoch, from its ``/proc`` stat fields (None where unknown)."""
    try:
        ticks = int(fields[19])  # field 22 of stat(5); the first two fields were split off
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def remove_stale_partials(
    folder: str | os.PathLike[str],
    *,
    suffixes: Collection[str] | None = None,
    stale_after: float = STALE_AFTER_S,
) -> list[Path]:
    """Remove partial files in ``folder`` (not below it) left by writers that are gone.

    Only regular files named as :func:`partial_path` names them (with a suffix in
    ``suffixes``, when given) are candidates; anything else is never touched. A
    candidate is removed when

    * its host tag is this one's (:func:`host_tag`) and its PID no longer runs here:
      the writer was killed (a crash, SIGKILL) before it could clean up;
    * it has no tag, or another machine's, and has not changed for ``stale_after``
      seconds (and, untagged, its PID does not run here): such a PID may belong to a
      process on another machine sharing the folder (a Ray cluster on a network
      file system), which this one cannot ask; a writer alive anywhere changes its
      file far more often.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    ours = host_tag()
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        owner = partial_owner(entry.name)
        if owner is None or (suffixes is not None and Path(entry.name).suffix.lower() not in suffixes):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # a link or a folder under a partial name is not ours
        pid, tag = owner
        if tag == ours:
            stale = not pid_alive(pid, since=st.st_mtime)
        elif tag is None:
            stale = now - st.st_mtime > stale_after and not pid_alive(pid, since=st.st_mtime)
        else:
            stale = now - st.st_mtime > stale_after
        if stale:
            with contextlib.suppress(FileNotFoundError):  # its writer's cleanup got there first
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
