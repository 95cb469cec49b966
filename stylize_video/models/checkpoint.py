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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from ..errors import CheckpointError
from ..files import atomic_output
from ..text import printable
from .transform_net import MAX_PARAMETERS, PRESETS, NetConfig, TransformNet

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


@dataclass
class CheckpointMeta:
    """Everything a checkpoint says about itself besides its weights."""

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

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["arch"] = self.arch.to_dict()
        return json.dumps(d, sort_keys=True)

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
        for name in ("name", "preset", "title", "artist", "year", "credit", "created"):
            value = data.get(name)
            if value is None:
                if name == "name":
                    raise ValueError("metadata has no name")
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)  # "year": 1889 written by hand
            if not isinstance(value, str):
                raise ValueError(f"metadata field {name!r} must be a string, got {type(value).__name__}")
            kwargs[name] = printable(value)
        for name in ("training", "metrics"):
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise ValueError(f"metadata field {name!r} must be an object, got {type(value).__name__}")
            kwargs[name] = value
        kwargs["arch"] = NetConfig.from_dict(data.get("arch", {}))
        kwargs["format_version"] = version
        return cls(**kwargs)

    def describe(self) -> str:
        """One line for listings: painting, artist, year."""
        parts = [printable(p) for p in (self.title, self.artist, self.year) if p]
        return ", ".join(parts) if parts else "(no painting credit)"


@dataclass
class Checkpoint:
    """A loaded style: a CPU fp32 :class:`TransformNet` in eval mode and its metadata."""

    model: TransformNet
    meta: CheckpointMeta
    path: Path | None = None


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
    """Map of style name -> checkpoint path over :func:`search_dirs` (first usable file wins).

    A file that is not a usable checkpoint (not a regular file, unreadable, corrupt,
    foreign, or a name with control characters) is skipped with one warning per file
    and process; a later folder's file of the same name then takes its place.
    Only headers are read, so listing stays fast.
    """
    return _scan_styles()[0]


#: (path, device, inode, size, mtime) -> why the file is unusable, or None: each file is probed once.
_probe_cache: dict[tuple[str, int, int, int, int], str | None] = {}
_warned: set[tuple[str, str]] = set()


def _scan_styles() -> tuple[dict[str, Path], dict[str, str]]:
    """Usable styles by name, and the problem of each unusable name (one line each)."""
    found: dict[str, Path] = {}
    broken: dict[str, str] = {}
    for d in search_dirs():
        try:
            if not d.is_dir():
                continue
            candidates = sorted(d.glob("*.safetensors"))
        except OSError:
            continue  # an unreadable folder holds no styles we could load
        for p in candidates:
            name = p.stem
            if name in found:
                continue  # shadowed by an earlier folder: never read
            problem = _style_problem(p)
            if problem is None and printable(name) != name:
                problem = f"{_show(p)}: a style name must not contain control characters"
            if problem is None:
                found[name] = p
                broken.pop(name, None)
                continue
            broken.setdefault(name, problem)
            if (str(p), problem) not in _warned:
                _warned.add((str(p), problem))
                log.warning("skipping style file %s", problem)
    return found, broken


def _style_problem(path: Path) -> str | None:
    """Why ``path`` cannot be loaded as a style, judged from its header; None if it looks usable."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{_show(path)}: cannot read it ({exc.strerror or exc})"
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _probe_cache:
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
        _probe_cache[key] = problem
    return _probe_cache[key]


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
            return styles[text]
        if text in broken:
            raise CheckpointError(f"style {printable(text)!r} is unusable: {broken[text]}")
    if st is not None:
        raise CheckpointError(f"checkpoint {printable(text)!r} is {_file_kind(st.st_mode)}, not a weights file")
    if is_bare:
        known = ", ".join(sorted(styles)) or "none installed"
        raise CheckpointError(f"unknown style {printable(text)!r} (known styles: {known})")
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
    final name only once complete.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint {str(path)!r} must end in .safetensors")
    meta = dataclasses.replace(meta, arch=model.config, created=meta.created or _now())
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata={_META_KEY: meta.to_json()})
    return path


def load_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Load a style by name or path.

    Accepts our ``.safetensors`` checkpoints and the ``.pth``/``.model`` state dicts
    of pytorch/examples ``fast_neural_style`` (legacy InstanceNorm running stats
    dropped, 0..255 output layout kept).

    Raises:
        CheckpointError: missing, truncated, foreign, hostile or mismatched file
            (not a regular file, an architecture out of bounds, tensors that do not
            match it, non-finite weights), with the file name and the problem in the message.
    """
    path = resolve_checkpoint(name_or_path)
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
    model = TransformNet(meta.arch)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return Checkpoint(model=model, meta=meta, path=path)


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
