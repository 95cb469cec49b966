"""Reading checkpoint files safely: regular files only, bounded sizes, tensors checked
against the architecture from the header before anything is read or built.

Part of :mod:`.checkpoint` (hostile or broken files become one-line CheckpointErrors).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import io
import json
import logging
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from ..errors import CheckpointError
from ..text import printable
from .checkpoint_meta import _META_KEY, CheckpointMeta
from .transform_net import MAX_PARAMETERS, PRESETS, NetConfig, TransformNet

log = logging.getLogger("stylize_video.models.checkpoint")

#: Largest file read: every parameter in fp64, plus room for metadata and pickle framing.
_MAX_FILE_BYTES = 8 * MAX_PARAMETERS + (64 << 20)
#: Largest safetensors JSON header (ours are a few KiB).
_MAX_HEADER_BYTES = 16 << 20
#: Weight dtypes accepted, by safetensors name.
_FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


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
