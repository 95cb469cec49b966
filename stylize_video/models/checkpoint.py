"""Style checkpoints: safetensors weights plus JSON metadata, and safe loading.

A checkpoint records what it is (style, painting credit), how it was built
(architecture, training settings, validation losses) and the format version, the way
torchvision's ``Weights`` carry their ``meta``. Loading never runs pickle code: ``.pth``
files go through ``torch.load(weights_only=True)``, whose restricted unpickler only
rebuilds tensors and plain containers.

Files are untrusted input. Before anything is built or allocated, a checkpoint's
architecture is validated (:class:`NetConfig` bounds), and the names, shapes, dtypes
and total size of its tensors are checked against it from the file's header alone;
weights must be finite. Only regular files are opened (never a FIFO or a device),
and every problem is one :class:`CheckpointError` line.

Three kinds of file share the format (``.safetensors`` + the ``stylize_video`` JSON):

* a single-style network (``arch.num_styles == 0``, ``styles`` empty): the style's
  name is the file's stem;
* a multi-style network (``arch.num_styles == N``, ``styles`` lists N
  :class:`StyleInfo`, one per row of the conditional-norm tables): each style is
  listed and loaded under its own name; the file's stem names the network;
* a style vector (``base`` set: ``{"name", "sha256"}``; the tensors are one row of
  every table, ``learn-style`` writes it): loading it attaches the row to its base
  network, found by name beside the file or in the search folders and checked by the
  fingerprint of its convolution weights (:func:`base_fingerprint`).

Name resolution (:func:`available_styles`): folders in :func:`search_dirs` order, an
earlier folder's name wins; within one folder, styles inside multi-style networks
claim their names first, then style vectors, then single-style files. So installing a
gallery network beside the sixteen single files makes ``-s starry-night`` the
gallery's style, and the single file stays loadable by its path.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import functools
import io
import json
import logging
import os
import stat
import sys
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from ..errors import CheckpointError
from ..files import atomic_output
from ..text import printable
from .transform_net import MAX_PARAMETERS, MAX_STYLES, PRESETS, NetConfig, TransformNet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_META_KEY = "stylize_video"
_SUFFIXES = (".safetensors", ".pth", ".pt", ".model")

#: Largest file read: every parameter in fp64, plus room for metadata and pickle framing.
_MAX_FILE_BYTES = 8 * MAX_PARAMETERS + (64 << 20)
#: Largest safetensors JSON header (ours are a few KiB).
_MAX_HEADER_BYTES = 16 << 20
#: Weight dtypes accepted, by safetensors name.
_FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}

#: Where bare style names are looked up, first match wins.
_PROJECT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


_LABELS = ("title", "artist", "year", "credit")


def _label(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # "year": 1889 written by hand
    if not isinstance(value, str):
        raise ValueError(f"{where} field {name!r} must be a string, got {type(value).__name__}")
    return printable(value)


def _object(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where} field {name!r} must be an object, got {type(value).__name__}")
    return value


@dataclass
class StyleInfo:
    """One style of a multi-style network (or of a style-vector file): its name,
    painting credit, how it was trained and how it scored."""

    name: str
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> StyleInfo:
        """Parse one entry of the metadata's ``styles``; a wrong type is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"a style entry must be an object, got {type(data).__name__}")
        name = data.get("name")
        if not isinstance(name, str) or not name or printable(name) != name or len(name) > 200:
            raise ValueError(f"a style needs a name of printable text, got {printable(repr(name), 80)}")
        labels = {k: _label(data, k, f"style {name!r}") for k in _LABELS}
        return cls(
            name=name,
            training=_object(data, "training", f"style {name!r}"),
            metrics=_object(data, "metrics", f"style {name!r}"),
            **labels,
        )

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [printable(p) for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class CheckpointMeta:
    """Everything a checkpoint says about itself besides its weights.

    ``styles`` is empty for a single-style network; for a multi-style one it names
    each row of the style tables (``len(styles) == arch.num_styles``). ``base`` is
    set only in style-vector files: ``{"name": network, "sha256": fingerprint}``.
    """

    name: str
    arch: NetConfig = field(default_factory=NetConfig)
    preset: str | None = None
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    format_version: int = FORMAT_VERSION
    styles: list[StyleInfo] = field(default_factory=list)
    base: dict[str, str] | None = None

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["arch"] = self.arch.to_dict()
        # Single-style metadata stays as it was before the style space.
        if not self.styles:
            del d["styles"]
        if self.base is None:
            del d["base"]
        return json.dumps(d, sort_keys=True)

    @property
    def style_names(self) -> list[str]:
        """Names of the styles this file holds: its own name for a single-style network."""
        return [s.name for s in self.styles] if self.styles else [self.name]

    def for_style(self, index: int) -> CheckpointMeta:
        """A single-style view of style ``index`` (its name, credits, training and metrics;
        the network's architecture and preset), as listings and reports show each style."""
        if not self.styles:
            if index != 0:
                raise IndexError(f"{self.name} has one style, not {index + 1}")
            return self
        info = self.styles[index]
        return dataclasses.replace(
            self,
            name=info.name,
            title=info.title,
            artist=info.artist,
            year=info.year,
            credit=info.credit,
            training=info.training,
            metrics=info.metrics,
            styles=[],
            base=None,
        )

    @classmethod
    def from_json(cls, text: str) -> CheckpointMeta:
        """Parse :meth:`to_json` output; a wrong field type or architecture is a ValueError.

        Label fields (name, title, credit ...) come back with control characters
        escaped (:func:`~stylize_video.text.printable`): they are shown on terminals,
        window titles and logs, where an escape sequence must not act.
        """
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("metadata nests too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        version = data.get("format_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"format_version must be an int, got {printable(repr(version), 80)}")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is newer than this program's ({FORMAT_VERSION}); upgrade stylize-video"
            )
        kwargs: dict[str, Any] = {}
        for name in ("name", "preset", *_LABELS, "created"):
            value = _label(data, name, "metadata")
            if value is None:
                if name == "name":
                    raise ValueError("metadata has no name")
                continue
            kwargs[name] = value
        for name in ("training", "metrics"):
            kwargs[name] = _object(data, name, "metadata")
        kwargs["arch"] = arch = NetConfig.from_dict(data.get("arch", {}))
        kwargs["format_version"] = version
        styles = data.get("styles", [])
        if not isinstance(styles, list) or len(styles) > MAX_STYLES:
            raise ValueError(f"metadata field 'styles' must be a list of at most {MAX_STYLES} styles")
        kwargs["styles"] = [StyleInfo.from_dict(entry) for entry in styles]
        names = [s.name for s in kwargs["styles"]]
        if len(set(names)) != len(names):
            raise ValueError(f"style names repeat: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
        base = data.get("base")
        if base is not None:
            if (
                not isinstance(base, dict)
                or not all(isinstance(base.get(k), str) and base[k] for k in ("name", "sha256"))
                or printable(base["name"]) != base["name"]
            ):
                raise ValueError("metadata field 'base' must be an object with a name and a sha256")
            kwargs["base"] = {"name": base["name"], "sha256": base["sha256"]}
            if len(names) != 1:
                raise ValueError(f"a style vector holds one style, its metadata lists {len(names)}")
        elif len(names) != arch.num_styles:
            raise ValueError(f"the network has {arch.num_styles} style(s) but the metadata names {len(names)}")
        return cls(**kwargs)

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [printable(p) for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class Checkpoint:
    """A loaded style: a CPU fp32 :class:`TransformNet` in eval mode and its metadata.

    For a multi-style network, ``style_index`` is the row of the style asked for
    (0 when the network was loaded by its file name or path).
    """

    model: TransformNet
    meta: CheckpointMeta
    path: Path | None = None
    style_index: int = 0

    @property
    def style_names(self) -> list[str]:
        """Every style the network holds, by row (one name for a single-style network)."""
        return self.meta.style_names

    @property
    def style(self) -> str:
        """The name of the style asked for."""
        return self.style_names[self.style_index]


@dataclass(frozen=True)
class StyleRef:
    """Where a style name lives: the file, and the row inside a multi-style network.

    Attributes:
        name: the style's name.
        path: the file (a single-style network, a multi-style network or a style vector).
        index: the row in a multi-style network; None for single-style and vector files.
        kind: ``"single"``, ``"multi"`` or ``"vector"``.
    """

    name: str
    path: Path
    index: int | None = None
    kind: str = "single"


def search_dirs() -> list[Path]:
    """Folders searched for bare style names, in order.

    ``$STYLIZE_VIDEO_CHECKPOINTS`` (``os.pathsep``-separated) first, then the
    project's ``checkpoints/`` (a source checkout or editable install), then the
    copy a wheel installs under ``<prefix>/share/stylize-video/checkpoints``.
    """
    dirs = [Path(p) for p in os.environ.get("STYLIZE_VIDEO_CHECKPOINTS", "").split(os.pathsep) if p]
    dirs.append(_PROJECT_CHECKPOINTS)
    dirs.append(Path(sys.prefix) / "share" / "stylize-video" / "checkpoints")
    return dirs


def available_styles() -> dict[str, Path]:
    """Map of style name -> checkpoint path over :func:`search_dirs`.

    Every style of a multi-style network is listed under its own name (all mapping
    to the network's file); style vectors under their file's stem. Precedence: an
    earlier folder wins; within a folder, multi-style networks, then style vectors,
    then single-style files (see the module docstring). A file that is not a usable
    checkpoint (not a regular file, unreadable, corrupt, foreign, or a name with
    control characters) is skipped with one warning per file and process; a later
    folder's file of the same name then takes its place. Only headers are read, so
    listing stays fast.
    """
    return {name: ref.path for name, ref in _scan_styles()[0].items()}


def style_refs() -> dict[str, StyleRef]:
    """Like :func:`available_styles`, with the row of each style inside its network."""
    return dict(_scan_styles()[0])


#: (path, device, inode, size, mtime) -> (why the file is unusable or None, its metadata): each file is probed once.
_probe_cache: dict[tuple[str, int, int, int, int], tuple[str | None, CheckpointMeta | None]] = {}
_warned: set[tuple[str, str]] = set()
_KIND_ORDER = {"multi": 0, "vector": 1, "single": 2}


def _scan_styles() -> tuple[dict[str, StyleRef], dict[str, str]]:
    """Usable styles by name, and the problem of each unusable name (one line each)."""
    found: dict[str, StyleRef] = {}
    broken: dict[str, str] = {}
    for d in search_dirs():
        try:
            if not d.is_dir():
                continue
            candidates = sorted(d.glob("*.safetensors"))
        except OSError:
            continue  # an unreadable folder holds no styles we could load
        refs: list[StyleRef] = []
        for p in candidates:
            name = p.stem
            problem, meta = _style_problem(p)
            if problem is None and printable(name) != name:
                problem = f"{_show(p)}: a style name must not contain control characters"
            if problem is None and meta is not None:
                if meta.base is not None:
                    refs.append(StyleRef(name, p, None, "vector"))
                elif meta.styles:
                    refs += [StyleRef(info.name, p, i, "multi") for i, info in enumerate(meta.styles)]
                else:
                    refs.append(StyleRef(name, p, None, "single"))
                continue
            if problem is None or name in found:
                continue
            broken.setdefault(name, problem)
            if (str(p), problem) not in _warned:
                _warned.add((str(p), problem))
                log.warning("skipping style file %s", problem)
        for ref in sorted(refs, key=lambda r: _KIND_ORDER[r.kind]):  # stable: file order within a kind
            if ref.name not in found:
                found[ref.name] = ref
                broken.pop(ref.name, None)
    return found, broken


def _style_problem(path: Path) -> tuple[str | None, CheckpointMeta | None]:
    """Why ``path`` cannot be loaded as a style, judged from its header (None if it looks
    usable), and its metadata."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{_show(path)}: cannot read it ({exc.strerror or exc})", None
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _probe_cache:
        meta = None
        try:
            with _open_regular(path) as f:
                _, _, meta = _safetensors_plan(path, _safetensors_header(path, f, st.st_size))
            if meta is None:
                raise CheckpointError(f"{_show(path)}: not a style checkpoint (no stylize-video metadata)")
            problem = None
        except CheckpointError as exc:
            problem = str(exc)
        if len(_probe_cache) > 1000:  # a folder rewritten in a loop must not grow this forever
            _probe_cache.clear()
        _probe_cache[key] = (problem, meta)
    return _probe_cache[key]


def _network_file(name: str, near: Path | None = None) -> Path | None:
    """The file named ``name.safetensors`` beside ``near`` or in the search folders (a network by its stem)."""
    dirs = ([near] if near is not None else []) + search_dirs()
    for d in dirs:
        p = d / f"{name}.safetensors"
        try:
            if p.is_file():
                return p
        except OSError:
            continue
    return None


def known_styles_hint(name: str, styles: Collection[str]) -> str:
    """The known styles for an unknown-name error: close matches first."""
    import difflib

    if not styles:
        return "no styles installed"
    close = difflib.get_close_matches(name, list(styles), n=3, cutoff=0.6)
    listing = ", ".join(sorted(styles))
    return (f"did you mean {', '.join(close)}? " if close else "") + f"known styles: {listing}"


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a style name (``starry-night``) or a path into an existing regular file's path.

    Raises:
        CheckpointError: nothing matches (the message lists known styles), the named
            style's file is unusable, or the path is a directory, FIFO, socket or device.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    is_bare = os.sep not in text and "/" not in text and path.suffix not in _SUFFIXES
    try:
        st: os.stat_result | None = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        st = None
        if isinstance(exc, OSError) and exc.errno not in (errno.ENOENT, errno.ENOTDIR) and not is_bare:
            # Permission denied on a folder, a symlink loop, a name too long: not "does not exist".
            raise CheckpointError(f"checkpoint {printable(text)!r}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISREG(st.st_mode):
        return path
    if is_bare:
        # Before "is a directory": `-o udnie-lite` makes a folder named after the style.
        styles, broken = _scan_styles()
        if text in styles:
            return styles[text].path
        network = _network_file(text)  # a multi-style network by its file name
        if network is not None and text not in broken:
            return network
        if text in broken:
            raise CheckpointError(f"style {printable(text)!r} is unusable: {broken[text]}")
    if st is not None:
        raise CheckpointError(f"checkpoint {printable(text)!r} is {_file_kind(st.st_mode)}, not a weights file")
    if is_bare and ("+" in text or "=" in text):
        raise CheckpointError(
            f"{printable(text)!r} is a blend of styles: a checkpoint is one network "
            "(blends are for Stylizer and the -s option)"
        )
    if is_bare:
        raise CheckpointError(f"unknown style {printable(text)!r} ({known_styles_hint(text, styles)})")
    raise CheckpointError(f"checkpoint file {printable(text)!r} does not exist")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TransformNet,
    meta: CheckpointMeta,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write ``model`` + ``meta`` to a ``.safetensors`` file atomically.

    Weights are stored in ``dtype`` (fp16 by default: half the size, and the
    weights of these small nets lose nothing visible). The file appears under its
    final name only once complete. A multi-style network needs one
    :class:`StyleInfo` per style in ``meta.styles`` (distinct names).

    Raises:
        CheckpointError: wrong suffix, or ``meta.styles`` does not name every style.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint {str(path)!r} must end in .safetensors")
    names = [s.name for s in meta.styles]
    if len(names) != model.num_styles:
        raise CheckpointError(
            f"{path}: the network has {model.num_styles} style(s) but the metadata names {len(names)}"
        )
    if len(set(names)) != len(names) or not all(names) or any(printable(n) != n for n in names):
        raise CheckpointError(f"{path}: style names must be distinct printable text, got {names}")
    meta = dataclasses.replace(meta, arch=model.config, created=meta.created or _now(), base=None)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata={_META_KEY: meta.to_json()})
    return path


def base_fingerprint(net: TransformNet) -> str:
    """sha256 of a network's shared weights (everything but the style tables), as stored.

    Identifies the base a style vector was learned on: it survives adding styles to
    the network and a save/load round trip (weights are hashed after rounding to
    fp16, the storage precision), and changes when the convolutions are retrained.
    """
    import hashlib

    h = hashlib.sha256(json.dumps(net.config.single().to_dict(), sort_keys=True).encode())
    norm_names = {name for name, _ in net.norms()}
    for key, value in sorted(net.state_dict().items()):
        if key.rpartition(".")[0] in norm_names:
            continue
        h.update(key.encode())
        h.update(value.detach().to("cpu", torch.float16).float().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_style_vector(
    path: str | os.PathLike[str],
    net: TransformNet,
    index: int,
    info: StyleInfo,
    base: str,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write style ``index`` of ``net`` as a style-vector file (what ``learn-style`` writes).

    The file holds one row of every style table (about 1.4 k numbers for ``lite``,
    3.2 k for ``full``), the style's :class:`StyleInfo`, the architecture and
    ``base``: the name of the network it belongs to (a file stem, looked up beside
    the vector and in :func:`search_dirs`) with :func:`base_fingerprint`, so loading
    it refuses another network's weights. The style's name is the file's stem.

    Raises:
        CheckpointError: wrong suffix, bad base name, or ``index`` out of range.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"style file {str(path)!r} must end in .safetensors")
    if not base or printable(base) != base or "/" in base or os.sep in base:
        raise CheckpointError(f"base network name must be a plain name (a file stem), got {printable(base)!r}")
    try:
        vector = net.get_style_vector(index)
    except (IndexError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    meta = CheckpointMeta(
        name=info.name,
        arch=net.config,
        preset=None,
        title=info.title,
        artist=info.artist,
        year=info.year,
        credit=info.credit,
        training=info.training,
        metrics=info.metrics,
        created=_now(),
        styles=[info],
        base={"name": base, "sha256": base_fingerprint(net)},
    )
    tensors = {k: v.to("cpu", dtype).contiguous() for k, v in vector.items()}
    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata={_META_KEY: meta.to_json()})
    return path


def read_style_vector(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """The rows and metadata of a style-vector file, without its base (e.g. to resume learning).

    Raises:
        CheckpointError: not a style-vector file, or a damaged one.
    """
    p = Path(path)
    with _open_regular(p) as f:
        size = os.fstat(f.fileno()).st_size
        if p.suffix != ".safetensors":
            raise CheckpointError(f"{_show(p)}: a style vector is a .safetensors file")
        _, _, meta = _safetensors_plan(p, _safetensors_header(p, f, size))
        if meta is None or meta.base is None:
            raise CheckpointError(f"{_show(p)}: not a style-vector file (no base network in its metadata)")
        f.seek(0)
        state = {k: v.float() for k, v in _load_safetensors(p, f.read()).items()}
    _check_finite(p, state)
    return state, meta


def load_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Load a style by name or path.

    Accepts our ``.safetensors`` checkpoints (single-style, multi-style, and style
    vectors, which come attached to their base network) and the ``.pth``/``.model``
    state dicts of pytorch/examples ``fast_neural_style`` (legacy InstanceNorm
    running stats dropped, 0..255 output layout kept). A style inside a multi-style
    network loads the whole network with :attr:`Checkpoint.style_index` set to it.

    Raises:
        CheckpointError: missing, truncated, foreign, hostile or mismatched file
            (not a regular file, an architecture out of bounds, tensors that do not
            match it, non-finite weights), a style vector whose base network is
            missing or different, with the file name and the problem in the message.
    """
    text = os.fspath(name_or_path)
    path = resolve_checkpoint(name_or_path)
    index = 0
    ref = _scan_styles()[0].get(text) if Path(text).name == text else None
    if ref is not None and ref.path == path and ref.index is not None:
        index = ref.index
    meta, state = _read_file(path)
    if meta.base is not None:
        return _attach_vector(meta, path, state)
    return _build(meta, state, path, index)


def _build(meta: CheckpointMeta, state: dict[str, torch.Tensor], path: Path, index: int = 0) -> Checkpoint:
    model = TransformNet(meta.arch)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return Checkpoint(model=model, meta=meta, path=path, style_index=index)


def _read_file(path: Path) -> tuple[CheckpointMeta, dict[str, torch.Tensor]]:
    """A checkpoint file's metadata and fp32 tensors, checked (header first, then finiteness)."""
    meta: CheckpointMeta | None = None
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if path.suffix == ".safetensors":
            header = _safetensors_header(path, f, size)
            # Everything is checked from the header before a single tensor is read.
            arch, preset, meta = _safetensors_plan(path, header)
            f.seek(0)
            state = _load_safetensors(path, f.read())
            if meta is None:
                state = _infer_foreign(path, state)[0]  # the same renaming the header went through
        else:
            state, arch, preset = _plan_torch(path, _read_torch(path, f.read()))
    if meta is None:
        credit = "imported from pytorch/examples fast_neural_style" if arch.output == "linear255" else None
        meta = CheckpointMeta(name=printable(path.stem), arch=arch, preset=preset, credit=credit)
    state = {k: v.float() for k, v in state.items()}
    _check_finite(path, state)
    return meta, state


def _attach_vector(meta: CheckpointMeta, path: Path, vector: dict[str, torch.Tensor]) -> Checkpoint:
    """The base network of a style vector with the vector appended as its last style."""
    assert meta.base is not None  # only called for vector files
    base_name, want = meta.base["name"], meta.base["sha256"]
    base_path = _network_file(base_name, near=path.parent)
    if base_path is None or base_path.resolve() == path.resolve():
        raise CheckpointError(
            f"{_show(path)}: its base network {printable(base_name)!r} is not installed "
            f"(put {printable(base_name)}.safetensors beside it or in a styles folder)"
        )
    base_meta, base_state = _read_file(base_path)
    if base_meta.base is not None:
        raise CheckpointError(f"{_show(path)}: its base {_show(base_path)} is itself a style vector")
    base = _build(base_meta, base_state, base_path)
    if base_fingerprint(base.model) != want:
        raise CheckpointError(
            f"{_show(path)}: learned on another version of {printable(base_name)!r} "
            f"({_show(base_path)} has different weights); learn it again on this one"
        )
    net = base.model if base.model.num_styles else TransformNet.from_single([base.model])
    styles = list(base.meta.styles) or [
        StyleInfo(
            name=base.meta.name,
            title=base.meta.title,
            artist=base.meta.artist,
            year=base.meta.year,
            credit=base.meta.credit,
            training=base.meta.training,
            metrics=base.meta.metrics,
        )
    ]
    name = printable(path.stem)
    if name in {s.name for s in styles}:
        raise CheckpointError(f"{_show(path)}: its base {printable(base_name)!r} already has a style named {name!r}")
    index = net.add_style()
    try:
        net.set_style_vector(index, vector)
    except ValueError as exc:
        raise CheckpointError(f"{_show(path)}: {exc}") from None
    net.eval().requires_grad_(False)
    info = dataclasses.replace(meta.styles[0], name=name)
    joined = dataclasses.replace(base.meta, arch=net.config, styles=[*styles, info])
    return Checkpoint(model=net, meta=joined, path=path, style_index=index)


def _show(path: Path) -> str:
    """A path as error messages and logs show it: control characters escaped."""
    return printable(str(path), limit=None)


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if, and only if, it is a regular file of acceptable size.

    ``stat`` first, so a FIFO is never opened (opening one blocks until a writer comes)
    and a device never read (``/dev/zero`` never ends); ``O_NONBLOCK`` and ``fstat`` on
    the opened file cover a file swapped in between.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CheckpointError(f"{_show(path)}: cannot read checkpoint: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{_show(path)} is {_file_kind(st.st_mode)}, not a weights file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise CheckpointError(f"{_show(path)}: cannot read checkpoint: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = f"is {_file_kind(st.st_mode)}, not a weights file"
    elif st.st_size == 0:
        problem = "is empty (0 bytes), not a weights file"
    elif st.st_size > _MAX_FILE_BYTES:
        problem = f"is {st.st_size / 2**20:.0f} MiB, larger than any style network ({_MAX_FILE_BYTES >> 20} MiB)"
    if problem:
        os.close(fd)
        raise CheckpointError(f"{_show(path)} {problem}")
    return os.fdopen(fd, "rb")


def _safetensors_header(path: Path, f: BinaryIO, size: int) -> dict[str, Any]:
    """The JSON header of a safetensors file, read without reading the tensors."""
    corrupt = f"{_show(path)}: not a readable safetensors file (truncated or corrupt?)"
    try:
        prefix = f.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 2 <= n <= min(size - 8, _MAX_HEADER_BYTES):
            raise CheckpointError(f"{corrupt}: header length {n} in a {size}-byte file")
        header = json.loads(f.read(n))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"{corrupt}: {type(exc).__name__} in the header") from None
    except OSError as exc:
        raise CheckpointError(f"{corrupt}: {exc.strerror or exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{corrupt}: the header is not a JSON object")
    return header


def _safetensors_plan(path: Path, header: dict[str, Any]) -> tuple[NetConfig, str | None, CheckpointMeta | None]:
    """Validate a safetensors header: metadata, architecture, tensor names, shapes, dtypes and count."""
    corrupt = f"{_show(path)}: not a readable safetensors file (truncated or corrupt?)"
    raw = header.get("__metadata__") or {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{corrupt}: __metadata__ is not an object")
    shapes: dict[str, tuple[int, ...]] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{corrupt}: tensor {printable(key)!r} has no valid shape")
        if dtype not in _FLOAT_DTYPES:
            raise CheckpointError(
                f"{_show(path)}: tensor {printable(key)!r} has dtype {printable(repr(dtype), 40)}, "
                f"not a float type ({', '.join(_FLOAT_DTYPES)})"
            )
        shapes[key] = tuple(shape)
    if not shapes:
        raise CheckpointError(f"{_show(path)}: contains no tensors")
    raw_meta = raw.get(_META_KEY)
    meta = None
    if raw_meta is not None:
        try:
            if not isinstance(raw_meta, str):
                raise ValueError("metadata is not a string")
            meta = CheckpointMeta.from_json(raw_meta)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{_show(path)}: unreadable stylize-video metadata: {printable(exc)}") from None
        arch, preset = meta.arch, meta.preset
        if meta.base is not None:
            _check_vector_shapes(path, arch, shapes)
            return arch, preset, meta
    else:
        shapes, arch, preset = _infer_foreign(path, shapes)
    _check_shapes(path, arch, shapes)
    return arch, preset, meta


def _load_safetensors(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"{_show(path)}: not a readable safetensors file (truncated or corrupt?): {_first_line(exc)}"
        ) from None


def _read_torch(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    import pickle
    import zipfile

    if data[:4] == b"PK\x03\x04":
        # The zip format's storages are records whose unpacked size the reader trusts and
        # allocates: a small deflated file could claim gigabytes. Check before torch does.
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                unpacked = sum(i.file_size for i in zf.infolist())
        except Exception as exc:  # BadZipFile, NotImplementedError, EOFError ...: a damaged archive either way
            raise CheckpointError(
                f"{_show(path)}: not a readable PyTorch file (truncated or corrupt?): {exc}"
            ) from None
        if unpacked > _MAX_FILE_BYTES:
            raise CheckpointError(f"{_show(path)}: unpacks to {unpacked >> 20} MiB, larger than any style network")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 0": the file is judged below, once
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{_show(path)}: refusing to unpickle arbitrary objects; only plain state dicts are accepted "
            f"({_first_line(exc)})"
        ) from None
    except Exception as exc:  # a damaged pickle fails in many ways (AssertionError, AttributeError ...): all "corrupt"
        raise CheckpointError(
            f"{_show(path)}: not a readable PyTorch file (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{_show(path)}: expected a state dict of tensors, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items()}


def _plan_torch(path: Path, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], NetConfig, str | None]:
    """Recognise a ``.pth`` state dict and check it as strictly as a safetensors header."""
    state, arch, preset = _infer_foreign(path, state)
    for key, value in state.items():
        if value.layout != torch.strided or not value.is_floating_point():
            raise CheckpointError(
                f"{_show(path)}: tensor {printable(key)!r} is {value.dtype} {value.layout}, not dense float weights"
            )
    _check_shapes(path, arch, {k: tuple(v.shape) for k, v in state.items()})
    return state, arch, preset


_V = TypeVar("_V")


def _infer_foreign(path: Path, state: dict[str, _V]) -> tuple[dict[str, _V], NetConfig, str]:
    """Recognise a pytorch/examples checkpoint or a bare state dict of one of our presets.

    ``state`` maps names to tensors or to shapes (a safetensors header).
    """
    if "conv1.conv2d.weight" in state:
        return _from_pytorch_examples(state), dataclasses.replace(PRESETS["full"], output="linear255"), "full"
    for name, arch in PRESETS.items():
        expected = _expected_shapes(arch)
        if set(expected) == set(state) and all(expected[k] == _shape(state[k]) for k in state):
            return state, arch, name
    sample = ", ".join(printable(k, 60) for k in sorted(state)[:3])
    raise CheckpointError(
        f"{_show(path)}: not a style checkpoint (no stylize-video metadata, unknown keys such as {sample})"
    )


def _shape(value: object) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=32)
def _expected_shapes(arch: NetConfig) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a :class:`TransformNet` of ``arch``, built on the meta device (no memory)."""
    with torch.device("meta"):
        net = TransformNet(arch)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_finite(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    # On the fp32 copies: isfinite in fp16 is about 10x slower on a CPU.
    for key, value in state.items():
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{_show(path)}: tensor {printable(key)!r} holds NaN or infinite weights")


_PYTORCH_EXAMPLES_MAP = {
    "conv1.conv2d": "head.conv",
    "in1": "head.norm",
    "conv2.conv2d": "down.0.conv",
    "in2": "down.0.norm",
    "conv3.conv2d": "down.1.conv",
    "in3": "down.1.norm",
    "deconv1.conv2d": "up.0.conv",
    "in4": "up.0.norm",
    "deconv2.conv2d": "up.1.conv",
    "in5": "up.1.norm",
    "deconv3.conv2d": "tail",
}


def _from_pytorch_examples(state: dict[str, _V]) -> dict[str, _V]:
    out: dict[str, _V] = {}
    for key, value in state.items():
        # Old InstanceNorm2d(track_running_stats=True) saved statistics that
        # instance norm never uses at inference: drop them.
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        prefix, _, leaf = key.rpartition(".")
        if prefix.startswith("res") and prefix[3:].partition(".")[0].isdigit():
            block, _, rest = prefix.partition(".")
            idx = int(block[3:]) - 1
            rest = {"conv1.conv2d": "conv1", "in1": "norm1", "conv2.conv2d": "conv2", "in2": "norm2"}.get(rest, rest)
            out[f"res.{idx}.{rest}.{leaf}"] = value
        elif prefix in _PYTORCH_EXAMPLES_MAP:
            out[f"{_PYTORCH_EXAMPLES_MAP[prefix]}.{leaf}"] = value
        else:
            out[key] = value  # left for _check_shapes to report
    return out


def _check_shapes(path: Path, arch: NetConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Names, shapes and total size of the tensors against what ``arch`` builds, before any is loaded."""
    expected = _expected_shapes(arch)
    problems = []
    total = sum(_numel(s) for s in shapes.values())
    if total != arch.num_parameters():
        problems.append(f"{total:,} weights in the file, {arch.num_parameters():,} in the architecture")
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != tuple(shapes[k]))
    if missing:
        problems.append(f"{len(missing)} missing key(s) e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) e.g. {printable(unexpected[0], 60)}")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} shape mismatch(es) e.g. {k} {tuple(shapes[k])} != {tuple(expected[k])}")
    if problems:
        raise CheckpointError(f"{_show(path)}: weights do not match the recorded architecture: {'; '.join(problems)}")


@functools.lru_cache(maxsize=32)
def _expected_vector_shapes(arch: NetConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        net = TransformNet(arch)
    return net.style_vector_shapes()


def _check_vector_shapes(path: Path, arch: NetConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """A style vector's tensors: one (C,) row per norm scale and shift of ``arch``."""
    expected = _expected_vector_shapes(arch)
    if dict(shapes) != expected:
        missing = sorted(set(expected) - set(shapes))
        unexpected = sorted(set(shapes) - set(expected))
        wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != tuple(shapes[k]))
        detail = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected {printable(unexpected[0], 60)}"
            if unexpected
            else f"{wrong[0]} {tuple(shapes[wrong[0]])} != {expected[wrong[0]]}"
        )
        raise CheckpointError(f"{_show(path)}: style vector does not match its architecture ({detail})")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0], 300) if text else type(exc).__name__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
