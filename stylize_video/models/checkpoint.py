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

This module looks styles up, saves and loads; the metadata types live in
:mod:`.checkpoint_meta` and the guarded file readers in :mod:`.checkpoint_files`
(the names are re-exported here).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import stat
import sys
from collections.abc import Collection
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..files import atomic_output
from ..text import printable
from .checkpoint_files import (
    _check_finite,
    _file_kind,
    _infer_foreign,
    _load_safetensors,
    _now,
    _open_regular,
    _plan_torch,
    _read_torch,
    _safetensors_header,
    _safetensors_plan,
    _show,
)
from .checkpoint_meta import (
    _META_KEY,
    Checkpoint,
    CheckpointMeta,
    StyleInfo,
    StyleRef,
)
from .transform_net import TransformNet

log = logging.getLogger(__name__)

_SUFFIXES = (".safetensors", ".pth", ".pt", ".model")


#: Where bare style names are looked up, first match wins.
_PROJECT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


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
    meta = CheckpointMeta.from_style(
        info, arch=net.config, created=_now(), styles=[info], base={"name": base, "sha256": base_fingerprint(net)}
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


def named_row(name_or_path: str | os.PathLike[str]) -> StyleRef | None:
    """The style row a bare name picks inside a multi-style network; None for a path,
    a single-style or style-vector name, or an unknown one."""
    text = os.fspath(name_or_path)
    if Path(text).name != text:
        return None
    ref = _scan_styles()[0].get(text)
    return ref if ref is not None and ref.index is not None else None


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
    path = resolve_checkpoint(name_or_path)
    ref = named_row(name_or_path)
    index = ref.index if ref is not None and ref.path == path and ref.index is not None else 0
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
    styles = list(base.meta.styles) or [StyleInfo.from_meta(base.meta)]
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
