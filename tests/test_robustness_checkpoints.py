"""Hostile and broken checkpoints: each is one CheckpointError line, fast, without allocating or hanging."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import CheckpointError
from stylize_video.models.checkpoint import CheckpointMeta, available_styles, load_checkpoint, save_checkpoint
from stylize_video.models.transform_net import PRESETS, NetConfig, TransformNet
from stylize_video.text import printable

from .conftest import TINY


def _safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, object] | str | None) -> Path:
    from safetensors.torch import save_file

    text = meta if isinstance(meta, str) or meta is None else json.dumps(meta)
    save_file(tensors, str(path), metadata=None if text is None else {"stylize_video": text})
    return path


def _meta(**arch: object) -> dict[str, object]:
    return {"name": "x", "format_version": 1, "arch": {**TINY.to_dict(), **arch}}


def _tiny_state() -> dict[str, torch.Tensor]:
    return TransformNet(TINY).state_dict()


def _refused(path: Path | str, match: str, budget: float = 2.0) -> str:
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert time.perf_counter() - t < budget
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message
    return message


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ({"channels": [1 << 20, 4]}, "channels must be ints within"),
        ({"channels": [1024] * 6, "res_blocks": 64}, "parameters, more than"),
        ({"channels": list(range(1, 50))}, "1..6 entries"),
        ({"channels": "abc"}, "channels must be a list"),
        ({"channels": [4.5, 8]}, "channels must be ints"),
        ({"channels": []}, "1..6 entries"),
        ({"head_kernel": 4}, "odd"),
        ({"tail_kernel": 0}, "odd"),
        ({"head_kernel": 10001}, "odd int within"),
        ({"res_blocks": -3}, "res_blocks"),
        ({"res_blocks": 10**9}, "res_blocks"),
        ({"res_blocks": "5"}, "res_blocks"),
        ({"res_blocks": True}, "res_blocks"),
        ({"res_kind": ["standard"]}, "res_kind"),
        ({"output": None}, "output"),
        ({"evil": 1}, "unknown architecture field"),
    ],
)
def test_crafted_architecture_is_refused_before_building(
    tmp_path: Path, arch: dict[str, object], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _safetensors(tmp_path / "crafted.safetensors", _tiny_state(), _meta(**arch))
    built: list[object] = []
    monkeypatch.setattr(TransformNet, "__init__", lambda *a, **k: built.append(a))  # must never run
    message = _refused(p, match, budget=0.5)
    assert "crafted.safetensors" in message and not built


@pytest.mark.parametrize(
    "meta",
    [
        '{"name": "x", "arch": [1, 2]}',
        '{"name": ["x"], "arch": {}}',
        '{"name": "x", "training": 5}',
        '{"name": "x", "format_version": "one"}',
        '{"name": "x", "format_version": 1e400}',
        "[" * 100_000 + "]" * 100_000,
        "not json",
        '{"arch": {}}',
    ],
    ids=["arch-list", "name-list", "training-int", "version-str", "version-inf", "deep", "text", "no-name"],
)
def test_wrong_metadata_types(tmp_path: Path, meta: str) -> None:
    p = _safetensors(tmp_path / "m.safetensors", _tiny_state(), meta)
    _refused(p, "unreadable stylize-video metadata")


def test_parameter_count_must_match_the_architecture(tmp_path: Path) -> None:
    # Valid bounds, but the file's tensors are those of another (bigger) net.
    state = TransformNet(NetConfig(channels=(4, 16), res_blocks=1, head_kernel=3, tail_kernel=3)).state_dict()
    p = _safetensors(tmp_path / "count.safetensors", state, _meta())
    _refused(p, r"weights in the file, 2,043 in the architecture")


def test_extra_tensor_is_refused(tmp_path: Path) -> None:
    state = {**_tiny_state(), "\x1b[2Jextra": torch.zeros(1)}
    msg = _refused(_safetensors(tmp_path / "extra.safetensors", state, _meta()), "unexpected key")
    assert "\\x1b[2J" in msg


def test_integer_tensors_are_refused(tmp_path: Path) -> None:
    state = {k: v.to(torch.int32) for k, v in _tiny_state().items()}
    _refused(_safetensors(tmp_path / "int.safetensors", state, _meta()), "not a float type")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_non_finite_weights_are_refused(tmp_path: Path, bad: float, fmt: str) -> None:
    state = _tiny_state()
    state["tail.weight"][0, 0, 0, 0] = bad
    if fmt == "safetensors":
        p = _safetensors(tmp_path / "nan.safetensors", state, _meta())
    else:
        state = TransformNet(PRESETS["lite"]).state_dict()
        state["res.0.conv1.0.weight"].view(-1)[3] = bad
        p = tmp_path / "nan.pth"
        torch.save(state, p)
    _refused(p, "NaN or infinite")


@pytest.mark.parametrize("cut", [0, 5, 8, 100, -10])
def test_truncated_safetensors(tmp_path: Path, tiny_checkpoint: Path, cut: int) -> None:
    data = tiny_checkpoint.read_bytes()
    p = tmp_path / "cut.safetensors"
    p.write_bytes(data[:cut])
    _refused(p, "empty|truncated or corrupt")


def test_huge_header_length(tmp_path: Path) -> None:
    p = tmp_path / "hdr.safetensors"
    p.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    _refused(p, "header length", budget=0.2)


def test_header_lies_about_offsets(tmp_path: Path, tiny_checkpoint: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["data_offsets"] = [0, 1 << 40]
    blob = json.dumps(header).encode()
    p = tmp_path / "offsets.safetensors"
    p.write_bytes(len(blob).to_bytes(8, "little") + blob + data[8 + n :])
    _refused(p, "truncated or corrupt")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".txt", ""])
def test_text_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"notes{suffix}"
    p.write_text("these are my notes, not weights\n" * 20)
    _refused(p, "notes")


def _with_deadline(fn: Callable[[], object], seconds: float = 5.0) -> None:
    """Run ``fn`` in a thread: a hang fails the test instead of blocking the suite."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test thread
            error.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the loader hung"
    if error:
        raise error[0]


@pytest.mark.parametrize("name", ["style.safetensors", "style.pth", "style"])
def test_fifo_is_refused_without_opening_it(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    _with_deadline(lambda: _refused(fifo, "FIFO"))


def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        _with_deadline(lambda: _refused(path, "socket"))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    _with_deadline(lambda: _refused(device, "character device"))


def test_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    _with_deadline(lambda: _refused(link, "character device"))


def test_zip_bomb_pth_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A few KiB that unpack to more than any style network (the limit lowered to keep the test fast).
    import zipfile

    monkeypatch.setattr("stylize_video.models.checkpoint_files._MAX_FILE_BYTES", 1 << 20)
    p = tmp_path / "bomb.pth"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb/data/0", bytes(4 << 20))
    assert p.stat().st_size < 64 << 10
    _refused(p, "unpacks to")


def test_pth_of_wrong_tensors(tmp_path: Path) -> None:
    p = tmp_path / "ints.pth"
    torch.save(
        {k: torch.zeros(v.shape, dtype=torch.int64) for k, v in TransformNet(PRESETS["lite"]).state_dict().items()}, p
    )
    _refused(p, "not dense float")


def test_malicious_pickle_stays_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pth"
    torch.save({"w": Evil()}, p)
    _refused(p, "refusing to unpickle")
    assert "pwned" not in capfd.readouterr().out


def test_metadata_text_is_escaped(tmp_path: Path) -> None:
    meta = CheckpointMeta(name="ok\x1b]0;owned\x07", title="Wave\x1b[2J\r", artist="\u202eevil", year="1831")
    p = save_checkpoint(tmp_path / "esc.safetensors", TransformNet(TINY), meta)
    loaded = load_checkpoint(p).meta
    shown = [loaded.name, loaded.describe()]
    assert all("\x1b" not in s and "\r" not in s and "\u202e" not in s for s in shown)
    assert "\\x1b[2J" in loaded.describe() and "\\u202e" in loaded.describe()


def test_printable() -> None:
    assert printable("plain text, é 日本") == "plain text, é 日本"
    assert printable("a\x1b[31mb\x9bc\x7f\n\t") == "a\\x1b[31mb\\x9bc\\x7f\\x0a\\x09"
    assert printable("x" * 500).endswith("...") and len(printable("x" * 500)) == 203


def _style_folder(tmp_path: Path) -> Path:
    d = tmp_path / "styles"
    d.mkdir()
    save_checkpoint(d / "good.safetensors", TransformNet(TINY), CheckpointMeta(name="good", title="Fine"))
    (d / "text.safetensors").write_text("hello")
    os.mkfifo(d / "fifo.safetensors")
    (d / "dir.safetensors").mkdir()
    (d / "zero.safetensors").symlink_to("/dev/zero")
    _safetensors(d / "crafted.safetensors", _tiny_state(), _meta(channels=[1 << 30]))
    state = _tiny_state()
    state["head.conv.bias"][0] = float("nan")
    _safetensors(d / "nan.safetensors", state, _meta())
    save_checkpoint(d / "bad\x1b[31mname.safetensors", TransformNet(TINY), CheckpointMeta(name="n"))
    return d


BAD = ["text", "fifo", "dir", "zero", "crafted", "bad\x1b[31mname"]


@pytest.fixture
def only_these_styles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search only $STYLIZE_VIDEO_CHECKPOINTS (not the project's or the prefix's styles); fresh warnings."""
    monkeypatch.setattr("stylize_video.models.checkpoint._PROJECT_CHECKPOINTS", tmp_path / "none")
    monkeypatch.setattr("sys.prefix", str(tmp_path / "none"))
    monkeypatch.setattr("stylize_video.models.checkpoint._warned", set())


@pytest.mark.usefixtures("only_these_styles")
def test_style_folder_skips_bad_files_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(_style_folder(tmp_path)))
    with caplog.at_level(logging.WARNING):
        _with_deadline(available_styles)  # a FIFO in the folder must not block the listing
        styles = available_styles()
        available_styles()  # again: no second warning
    assert set(styles) == {"good", "nan"}  # a NaN is only found by reading the weights
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for bad in BAD:
        assert sum(f"/{printable(bad)}.safetensors" in w for w in warnings) == 1, (bad, warnings)
    assert all("\x1b" not in w for w in warnings)
    assert load_checkpoint("good").meta.title == "Fine"
    with pytest.raises(CheckpointError, match=r"style 'crafted' is unusable.*channels"):
        load_checkpoint("crafted")
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint("nan")


@pytest.mark.usefixtures("only_these_styles")
def test_a_bad_file_does_not_hide_a_good_one_further_down_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    (first / "wave.safetensors").write_text("broken")
    save_checkpoint(second / "wave.safetensors", TransformNet(TINY), CheckpointMeta(name="wave"))
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", os.pathsep.join(map(str, (first, second))))
    assert available_styles()["wave"] == second / "wave.safetensors"


@pytest.mark.usefixtures("only_these_styles")
def test_styles_command_lists_good_and_warns_once_per_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(_style_folder(tmp_path)))
    logging.getLogger().handlers.clear()  # let main() configure logging to this test's stderr
    try:
        assert main(["styles"]) == 0
    finally:
        logging.getLogger().handlers.clear()
    out, err = capfd.readouterr()
    assert out.splitlines()[0].startswith("good") and len(out.splitlines()) == 1, out
    assert "Traceback" not in err and "\x1b" not in out + err
    for bad in [*BAD, "nan"]:
        assert err.count(f"/{printable(bad)}.safetensors") == 1, (bad, err)


def test_legacy_format_pth_still_loads(tmp_path: Path) -> None:
    # The pytorch/examples downloads predate the zip format: torch's legacy layout.
    from .test_checkpoint import _pytorch_examples_state

    p = tmp_path / "candy.pth"
    torch.save(_pytorch_examples_state(), p, _use_new_zipfile_serialization=False)
    ck = load_checkpoint(p)
    assert ck.meta.arch.output == "linear255" and ck.meta.preset == "full"


def test_legacy_pth_declaring_a_huge_storage(tmp_path: Path) -> None:
    # A 400-byte file whose pickle declares a 16 TiB storage for a 4-element tensor.
    import io

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    at = data.find(b"X\x03\x00\x00\x00cpuq")
    if at < 0 or data[at + 10 : at + 12] != b"K\x04":
        pytest.skip("this torch writes the legacy pickle differently")
    huge = b"\x8a\x06" + (1 << 42).to_bytes(6, "little")  # LONG1: 2**42 floats
    p = tmp_path / "huge.pth"
    p.write_bytes(data[: at + 10] + huge + data[at + 12 :])
    _refused(p, "not a readable PyTorch file", budget=1.0)


def test_symlink_loop_and_unreadable_folder(tmp_path: Path) -> None:
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    _refused(loop, "loop.safetensors.*(symbolic links|Too many)")
    locked = tmp_path / "locked"
    locked.mkdir()
    save_checkpoint(locked / "x.safetensors", TransformNet(TINY), CheckpointMeta(name="x"))
    (locked / "x.safetensors").chmod(0)
    try:
        if os.access(locked / "x.safetensors", os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        _refused(locked / "x.safetensors", "Permission denied")
    finally:
        (locked / "x.safetensors").chmod(0o644)


@pytest.mark.parametrize("kind", ["safetensors", "zip.pth", "legacy.pth"])
def test_randomly_damaged_files_are_one_line_errors(
    tmp_path: Path, kind: str, capfd: pytest.CaptureFixture[str]
) -> None:
    import random

    base = tmp_path / f"base.{kind}"
    if kind == "safetensors":
        save_checkpoint(base, TransformNet(TINY), CheckpointMeta(name="b"))
    else:
        torch.save(_tiny_state(), base, _use_new_zipfile_serialization=kind == "zip.pth")
    data = base.read_bytes()
    rng = random.Random(kind)
    for i in range(60):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos, op = rng.randrange(len(b)), rng.random()
            if op < 0.6:
                b[pos] = rng.randrange(256)
            elif op < 0.8:
                del b[pos : pos + rng.randint(1, 50)]
            else:
                b[pos:pos] = rng.randbytes(rng.randint(1, 8))
        p = tmp_path / f"m{i}.{kind}"
        p.write_bytes(bytes(b))
        try:
            load_checkpoint(p)  # some damage lands in the weights and still loads: fine
        except CheckpointError as exc:
            assert "\n" not in str(exc)
    assert capfd.readouterr().err == ""
