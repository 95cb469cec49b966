"""The shared file primitives (stylize_video/files.py): atomic output, the temp-name scheme, file hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from stylize_video.files import atomic_output, file_sha256, is_partial, partial_path
from stylize_video.models.transform_net import TransformNet


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_file_sha256_streams_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(str(path), chunk_size=999) == expected  # many chunks and a short last one
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")


def test_partial_name_scheme(tmp_path: Path) -> None:
    tmp = partial_path(tmp_path / "out.mp4")
    assert tmp == tmp_path / f".out.partial-{os.getpid()}.mp4"  # hidden, same folder, extension kept
    assert is_partial(tmp) and is_partial(partial_path("state"))
    assert not is_partial(tmp_path / "out.mp4")
    assert not is_partial(".hidden.mp4") and not is_partial("partial-1.mp4")


def test_atomic_output_renames_into_place(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "out.bin"  # the folder is created
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent and is_partial(tmp)
        tmp.write_bytes(b"complete")
        assert not final.exists(), "nothing under the final name before the block ends"
    assert final.read_bytes() == b"complete"
    assert _hidden(final.parent) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_leaves_no_file(tmp_path: Path, error: BaseException) -> None:
    final = tmp_path / "out.bin"
    with pytest.raises(type(error)), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        raise error
    assert list(tmp_path.iterdir()) == [], "neither the final name nor the temp file"
    # An existing file is only ever replaced whole: a failed rewrite keeps the old one.
    final.write_bytes(b"old")
    with pytest.raises(type(error)), atomic_output(final) as tmp:
        tmp.write_bytes(b"new but unfinished")
        raise error
    assert final.read_bytes() == b"old" and _hidden(tmp_path) == []


def test_checkpoint_save_failing_mid_write_leaves_no_file(
    tmp_path: Path, tiny_net: TransformNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.torch

    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint

    def torn_save(tensors: object, filename: str | os.PathLike[str], metadata: object = None) -> None:
        Path(filename).write_bytes(b"\x00" * 64)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", torn_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path / "style.safetensors", tiny_net, CheckpointMeta(name="x"))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    saved = save_checkpoint(tmp_path / "style.safetensors", tiny_net, CheckpointMeta(name="x"))
    assert saved.stat().st_size > 64 and _hidden(tmp_path) == []


def test_image_write_failing_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2
    import numpy as np

    from stylize_video.errors import OutputError
    from stylize_video.io.images import write_image

    class TornBuffer(np.ndarray):
        """An encoded image whose write stops half-way, as on a full disk."""

        def tofile(self, fid: object, *args: object, **kwargs: object) -> None:
            np.asarray(self[: len(self) // 2]).tofile(fid)  # type: ignore[arg-type]
            raise OSError(28, "No space left on device")

    real_imencode = cv2.imencode

    def torn_imencode(*args: object) -> tuple[bool, np.ndarray]:
        ok, buf = real_imencode(*args)  # type: ignore[call-overload]
        return ok, buf.view(TornBuffer)

    monkeypatch.setattr(cv2, "imencode", torn_imencode)
    with pytest.raises(OutputError, match="No space"):
        write_image(tmp_path / "still.png", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
