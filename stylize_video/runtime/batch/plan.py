"""What a batch does: its settings, the files it converts, and the tasks it hands to workers.

Everything here runs in the calling process, before any worker starts; a
:class:`Task` is the whole of what a worker is told, a :class:`TaskResult` the whole
of what it says back.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError, OutputError, StylizeError
from ...io.specs import EncoderOptions

#: File extensions picked up when the input is a folder.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".ogv"}
)
#: Converted segments wait here (inside the output folder) until their file is joined.
SEGMENTS_DIR = ".segments"


@dataclass(frozen=True)
class BatchSettings:
    """How every file of a batch is converted.

    The engine, smoothing, encoder and extension fields shape the output and go into
    the manifest; ``device``, ``threads`` and ``backend`` only say where and how it runs.

    Args:
        style: style spec as ``run -s`` takes it: a name, a checkpoint path, or a blend
            (``starry-night=0.7+great-wave=0.3``).
        strength, preserve_color, style_scale, precision: engine options (as for ``run``).
        smooth, smooth_strength: temporal smoothing (``none``, ``ema``, ``flow``).
        encoder: video encoder options (codec, crf, bitrate, preset); audio is always copied.
        extension: output container, e.g. ``.mp4``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (pools give each worker its own GPU).
        threads: CPU threads per worker (None: the cores divided among the workers).
        backend: inference backend (``auto``, ``torch``, ``openvino``, ...), as for ``run``.
        region: what is stylized (``all``, ``background``, ``person``), as for ``run``.
        person_style, person_strength: the person's own style (a spec too) and its strength (None: ``strength``).
        person_model: the person model file (None: found as ``run`` finds it).
        alpha: with ``region="person"``, the stylized person over transparency; ``extension``
            must store alpha (``.webm``: VP9, ``.mov``: ProRes 4444).
    """

    style: str
    strength: float = 1.0
    preserve_color: bool = False
    style_scale: float = 1.0
    precision: str = "auto"
    smooth: str = "none"
    smooth_strength: float | None = None
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    extension: str = ".mp4"
    device: str = "auto"
    threads: int | None = None
    backend: str = "auto"
    region: str = "all"
    person_style: str | None = None
    person_strength: float | None = None
    person_model: str | None = None
    alpha: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise StylizeError(f"strength must be within 0..1, got {self.strength}")
        if self.smooth not in ("none", "ema", "flow"):
            raise StylizeError(f"unknown smoothing {self.smooth!r} (choose none, ema or flow)")
        if self.smooth_strength is not None and not 0.0 <= self.smooth_strength < 1.0:
            raise StylizeError(f"smooth strength must be within [0, 1), got {self.smooth_strength}")
        if not 0.0 < self.style_scale <= 2.0:
            raise StylizeError(f"style scale must be within (0, 2], got {self.style_scale}")
        if self.threads is not None and self.threads < 1:
            raise StylizeError(f"threads must be >= 1, got {self.threads}")
        from ..region import check_region

        check_region(self.region, person_style=self.person_style is not None, alpha=self.alpha)
        if self.person_strength is not None and not 0.0 <= self.person_strength <= 1.0:
            raise StylizeError(f"person strength must be within 0..1, got {self.person_strength}")
        ext = self.extension if self.extension.startswith(".") else f".{self.extension}"
        object.__setattr__(self, "extension", ext.lower())
        if self.alpha:
            from ...io.media import ALPHA_VIDEO, alpha_video_encoder

            # Refused here, before any file: a worker would fail on every one. A batch
            # writes one video per input (no image sequences), so only these containers.
            if self.extension.lstrip(".") not in ALPHA_VIDEO:
                raise OutputError(f"--ext {self.extension} cannot store --alpha: use .webm (VP9) or .mov (ProRes 4444)")
            alpha_video_encoder(self.extension, self.encoder.codec)

    def output_record(self) -> dict[str, Any]:
        """The settings that shape the output (what the manifest records)."""
        # Where and how fast it runs does not shape the output (the backend only within
        # rounding), so a rerun on another machine or runtime reuses finished files.
        skip = {"style", "device", "threads", "backend", "encoder", "person_model"}
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        # The person options and alpha only when used: manifests written before them still match.
        for name in ("region", "person_style", "person_strength", "alpha"):
            if record[name] == _DEFAULTS[name]:
                del record[name]
        # Encoder settings stay flat keys: manifests written before EncoderOptions still match.
        return {**record, **dataclasses.asdict(self.encoder)}


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BatchSettings)}


@dataclass(frozen=True)
class FileJob:
    """One input file and the output it becomes."""

    source: Path
    output: Path
    name: str  # the input relative to the input folder, for reports


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (outputs mirror the tree below it)."""
    parts = Path(pattern).parts
    root: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        root.append(part)
    if len(root) == len(parts):  # a plain file name: its folder is the root
        root = root[:-1]
    return Path(*root) if root else Path(".")


def _find(text: str) -> tuple[Path, list[Path]]:
    """The root that outputs mirror, and the files one input spec names."""
    path = Path(text)
    if path.is_dir():
        return path, [p for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    if glob.has_magic(text):
        return _glob_root(text), sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if path.is_file():
        return path.parent, [path]
    raise InputError(f"input {text!r} is neither a folder, a file nor a glob that matches anything")


def plan_jobs(
    specs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    extension: str = ".mp4",
) -> list[FileJob]:
    """Find the input videos and name their outputs.

    Each spec is a folder (searched recursively for video extensions), a glob
    (``clips/**/*.mov``) or a file (several, as a shell expands an unquoted glob).
    Outputs mirror the inputs' layout below the folder (or the glob's fixed prefix,
    or a file's own folder) inside ``out_dir``, with ``extension``. Files already
    inside ``out_dir`` are never inputs.

    Raises:
        InputError: nothing matches, or two inputs would write the same output.
    """
    texts = [os.fspath(specs)] if isinstance(specs, str | os.PathLike) else [os.fspath(s) for s in specs]
    out_root = Path(out_dir).resolve()
    jobs: list[FileJob] = []
    seen: dict[Path, Path] = {}
    sources: set[Path] = set()
    for text in texts:
        root, found = _find(text)
        for src in found:
            resolved = src.resolve()
            if resolved.is_relative_to(out_root) or resolved in sources:
                continue  # earlier outputs and segments are not inputs; a file named twice is one job
            sources.add(resolved)
            rel = src.relative_to(root) if src.is_relative_to(root) else Path(src.name)
            out = out_root / rel.with_suffix(extension)
            if out in seen:
                raise InputError(f"inputs {str(seen[out])!r} and {str(src)!r} would both write {str(out)!r}")
            seen[out] = src
            jobs.append(FileJob(source=src, output=out, name=str(rel)))
    if not jobs:
        named = ", ".join(repr(t) for t in texts)
        raise InputError(f"no video files in {named} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return jobs


def keyframe_splits(path: str | os.PathLike[str], segment_seconds: float) -> list[int]:
    """Keyframe timestamps (video stream time base) where segments of about ``segment_seconds`` start.

    Seeks to each multiple of ``segment_seconds`` and takes the keyframe at or
    before it, so probing costs one seek per segment, not a pass over the file.
    The first segment's start is not included; an empty list means "one piece".

    Raises:
        InputError: the file cannot be read.
    """
    from ...io.media import import_av, open_input

    if segment_seconds <= 0:
        raise StylizeError(f"segment length must be > 0 s, got {segment_seconds}")
    av = import_av()
    container = open_input(path)
    try:
        if not container.streams.video:
            raise InputError(f"input {os.fspath(path)!r} has no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        if stream.duration is not None and tb:
            duration = float(stream.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            return []
        start = stream.start_time or 0
        splits: set[int] = set()
        k = 1
        while k * segment_seconds < duration - segment_seconds / 2:  # no stub of a last segment
            target = start + round(k * segment_seconds / tb)
            k += 1
            try:
                container.seek(target, stream=stream, backward=True)
                packet = next(p for p in container.demux(stream) if p.pts is not None)
            except (av.FFmpegError, StopIteration):
                continue
            if packet.is_keyframe and packet.pts > start:
                splits.add(int(packet.pts))
        return sorted(splits)
    finally:
        container.close()


@dataclass(frozen=True)
class Task:
    """A unit of work for a worker: a whole file, or one segment of it.

    ``start_pts``/``end_pts`` bound a segment in the input's video time base (None:
    from the start / to the end); ``preroll`` frames before ``start_pts`` warm the
    smoother up and are not written; ``audio`` copies the input's audio (whole files only).
    """

    id: str
    source: str
    output: str
    start_pts: int | None = None
    end_pts: int | None = None
    preroll: int = 0
    audio: bool = True


@dataclass
class TaskResult:
    """What a worker reports for a :class:`Task`."""

    id: str
    ok: bool
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0  # time in the worker, decode to close
    corrupt: int = 0
    worker: str = ""  # host:pid:device of the worker that ran it ("" when the worker died)
    #: The batch was stopping: the task did not start, or was dropped half-way (nothing
    #: left under its output's name); not a failure, the next run does it.
    stopped: bool = False
    #: The input ended clearly before its header said (a file cut short): what decoded
    #: was converted, and the file is recorded as ``truncated``, not ``done``.
    truncated: bool = False
