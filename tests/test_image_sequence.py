"""Image sequences: the source (pattern or folder, --fps), the sink (numbered, atomic, refusals) and `run` round trips."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.errors import InputError, OutputError
from stylize_video.io.base import Frame
from stylize_video.io.image_sequence import DEFAULT_FPS, ImageSequenceSource, list_frames
from stylize_video.io.image_sequence_sink import ImageSequenceSink
from stylize_video.io.registry import open_sink, open_source, parse_input_spec, parse_output_spec
from stylize_video.io.specs import frame_name_regex, is_frame_pattern
from tests.conftest import make_image
from tests.media import probe


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # a busy 2-core machine


def _frames(folder: Path, n: int, name: str = "%04d.png", start: int = 1, size: tuple[int, int] = (40, 32)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        cv2.imwrite(str(folder / (name % i)), make_image(size[1], size[0], seed=i))
    return folder


def test_patterns_are_recognised_and_matched() -> None:
    assert is_frame_pattern("out/%05d.png") and is_frame_pattern("f_%d.jpg") and is_frame_pattern("100%%_%03d.png")
    assert not is_frame_pattern("clip.mp4") and not is_frame_pattern("a%d_%d.png") and not is_frame_pattern("50%%.png")
    regex = frame_name_regex("img_%04d.png")
    assert regex.match("img_0007.png").group(1) == "0007"  # type: ignore[union-attr]
    assert regex.match("img_12345.png") and not regex.match("img_7.png") and not regex.match("img_0007.png.bak")
    assert parse_input_spec("frames/%05d.png").kind == "images"
    assert parse_output_spec("out/%05d.webp").kind == "images"
    assert parse_output_spec("out/%05d.mp4").kind == "file"  # a numbered video file name is still a video file


def test_pattern_takes_matching_files_in_number_order(tmp_path: Path) -> None:
    _frames(tmp_path, 3, "%d.png", start=8)  # 8, 9, 10: numeric, not text, order
    (tmp_path / "notes.txt").write_text("x")
    cv2.imwrite(str(tmp_path / "9.jpg"), make_image(8, 8))  # another extension: not part of the pattern
    assert [p.name for p in list_frames(tmp_path / "%d.png")] == ["8.png", "9.png", "10.png"]


def test_folder_takes_its_images_in_natural_order(tmp_path: Path) -> None:
    for name in ("f10.png", "f2.jpg", "f1.png"):
        cv2.imwrite(str(tmp_path / name), make_image(8, 8))
    (tmp_path / "readme.md").write_text("x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_frames(tmp_path)] == ["f1.png", "f2.jpg", "f10.png"]
    assert parse_input_spec(str(tmp_path)).kind == "images"


def test_source_times_frames_by_fps_and_marks_size_changes(tmp_path: Path) -> None:
    _frames(tmp_path, 3)
    cv2.imwrite(str(tmp_path / "0004.png"), make_image(20, 30, seed=4))  # another size
    src = open_source(str(tmp_path / "%04d.png"))
    assert isinstance(src, ImageSequenceSource)
    assert not src.live and src.frame_count == 4 and src.fps == DEFAULT_FPS and len(src.inputs) == 4
    frames = list(src)
    assert [f.time for f in frames] == pytest.approx([0, 0.04, 0.08, 0.12])
    assert [f.cut for f in frames] == [False, False, False, True]
    assert frames[0].image.shape == (32, 40, 3) and frames[3].image.shape == (20, 30, 3)
    assert np.array_equal(frames[1].image, make_image(32, 40, seed=2))  # PNG in, pixels unchanged
    assert open_source(str(tmp_path), fps=10).fps == Fraction(10)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing/%04d.png", "does not exist"),
        ("missing", "does not exist"),
        ("empty/%04d.png", "match the pattern"),
    ],
)
def test_missing_or_empty_inputs_fail_before_work(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        open_source(str(tmp_path / spec))


def test_empty_folder_and_bad_fps_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="contains no images"):
        ImageSequenceSource(tmp_path)
    _frames(tmp_path, 1)
    with pytest.raises(InputError, match="fps must be positive"):
        ImageSequenceSource(tmp_path, fps=0)


def test_an_unreadable_frame_is_named(tmp_path: Path) -> None:
    _frames(tmp_path, 2)
    (tmp_path / "0003.png").write_bytes(b"not a png")
    frames = iter(ImageSequenceSource(tmp_path / "%04d.png"))
    next(frames), next(frames)
    with pytest.raises(InputError, match=r"frame 2: .*0003\.png.* not a readable image"):
        next(frames)


def _out_frames(n: int, h: int = 32, w: int = 40) -> list[Frame]:
    return [Frame(make_image(h, w, seed=i), i, pts=i, time_base=Fraction(1, 25), time=i / 25) for i in range(n)]


@pytest.mark.parametrize(("ext", "lossless"), [(".png", True), (".jpg", False), (".webp", False)])
def test_sink_writes_numbered_frames_by_extension(tmp_path: Path, ext: str, lossless: bool) -> None:
    sink = open_sink(str(tmp_path / "deep" / "out" / f"f_%03d{ext}"))  # the folder is created
    assert isinstance(sink, ImageSequenceSink) and sink.threaded
    frames = _out_frames(3)
    for f in frames:
        sink.write(f)
    sink.close()
    names = sorted(os.listdir(tmp_path / "deep" / "out"))
    assert names == [f"f_000{ext}", f"f_001{ext}", f"f_002{ext}"]  # numbered by frame index, no leftovers
    back = cv2.imread(str(tmp_path / "deep" / "out" / f"f_001{ext}"))
    error = np.abs(back.astype(int) - frames[1].image.astype(int)).mean()
    assert (
        error == 0 if lossless else 0 < error < 12
    )  # lossy, but the same picture (tiny frames: chroma subsampling shows)


def test_each_frame_is_renamed_into_place_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = ImageSequenceSink(tmp_path / "%02d.png")
    renames: list[tuple[str, bool, int]] = []
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((Path(dst).name, Path(dst).exists(), Path(src).stat().st_size))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    sink.write(_out_frames(1)[0])
    assert renames[0][0] == "00.png" and not renames[0][1] and renames[0][2] == (tmp_path / "00.png").stat().st_size

    def full_disk(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OutputError, match="disk full"):
        sink.write(_out_frames(2)[1])
    assert sorted(os.listdir(tmp_path)) == ["00.png"]  # no partial file, under any name


def test_sink_refuses_existing_frames_and_inputs(tmp_path: Path) -> None:
    _frames(tmp_path / "in", 2, "%04d.png")
    with pytest.raises(OutputError, match="would overwrite input"):
        ImageSequenceSink(tmp_path / "in" / "%04d.png", inputs=list_frames(tmp_path / "in"), overwrite=True)
    ImageSequenceSink(tmp_path / "in" / "x%04d.png", inputs=list_frames(tmp_path / "in"))  # other names: fine
    with pytest.raises(OutputError, match=r"2 frame.*already exist.*--overwrite"):
        ImageSequenceSink(tmp_path / "in" / "%04d.png")
    ImageSequenceSink(tmp_path / "in" / "%04d.png", overwrite=True)
    with pytest.raises(OutputError, match="unsupported image extension"):
        ImageSequenceSink(tmp_path / "%04d.gif")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        ImageSequenceSink(tmp_path / "file" / "%04d.png")


def _run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--no-progress", "--threads", "1"])


def test_run_round_trip_folder_to_folder(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _frames(tmp_path / "in", 5, "%04d.png", start=1)
    out = tmp_path / "out"
    assert _run("-i", tmp_path / "in" / "%04d.png", "-o", out / "%05d.png", "-s", tiny_checkpoint) == 0
    assert sorted(os.listdir(out)) == [f"{i:05d}.png" for i in range(5)]
    assert cv2.imread(str(out / "00004.png")).shape == (32, 40, 3)
    assert f"wrote {out}" in capsys.readouterr().out
    # Again without --overwrite: refused before any work; with it, replaced.
    assert _run("-i", tmp_path / "in", "-o", out / "%05d.png", "-s", tiny_checkpoint) == 1
    assert "already exist" in capsys.readouterr().err
    assert _run("-i", tmp_path / "in", "-o", out / "%05d.png", "-s", tiny_checkpoint, "--overwrite") == 0
    # Into the input's own names: refused even with --overwrite.
    assert _run("-i", tmp_path / "in", "-o", tmp_path / "in" / "%04d.png", "-s", tiny_checkpoint, "--overwrite") == 1
    assert "would overwrite input" in capsys.readouterr().err


def test_run_folder_to_video_uses_fps(tmp_path: Path, tiny_checkpoint: Path) -> None:
    _frames(tmp_path / "in", 6, "%04d.png")
    out = tmp_path / "clip.mp4"
    assert _run("-i", tmp_path / "in", "-o", out, "--fps", "12", "-s", tiny_checkpoint) == 0
    p = probe(out)
    assert (p.width, p.height, p.frames) == (40, 32, 6)
    assert p.pts_seconds == pytest.approx([i / 12 for i in range(6)], abs=1e-3)


def test_resume_continues_a_sequence_without_redoing_frames(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _frames(tmp_path / "in", 6, "%04d.png")
    out = tmp_path / "out"
    assert _run("-i", tmp_path / "in", "-o", out / "%05d.png", "-s", tiny_checkpoint) == 0
    full = {name: (out / name).read_bytes() for name in os.listdir(out)}
    # An interrupted run: frames 3-5 missing, frame 0 marked to see that kept frames stay untouched.
    for i in (3, 4, 5):
        (out / f"{i:05d}.png").unlink()
    cv2.imwrite(str(out / "00000.png"), np.zeros((32, 40, 3), np.uint8))
    marker = (out / "00000.png").read_bytes()
    capsys.readouterr()
    assert _run("-i", tmp_path / "in", "-o", out / "%05d.png", "-s", tiny_checkpoint, "--resume") == 0
    assert sorted(os.listdir(out)) == [f"{i:05d}.png" for i in range(6)]
    assert (out / "00000.png").read_bytes() == marker  # kept, not stylized again
    for i in (3, 4, 5):  # the missing ones written as a fresh run would (no smoothing here)
        assert (out / f"{i:05d}.png").read_bytes() == full[f"{i:05d}.png"]
    assert "3 already written" in capsys.readouterr().out


def test_resume_is_refused_where_it_cannot_hold(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _frames(tmp_path / "in", 2, "%04d.png")
    assert _run("-i", tmp_path / "in", "-o", tmp_path / "a.mp4", "-s", tiny_checkpoint, "--resume") == 1
    assert "--resume continues image-sequence outputs" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()
    args = ("-i", tmp_path / "in", "-o", tmp_path / "o" / "%05d.png", "-s", tiny_checkpoint)
    assert _run(*args, "--resume", "--overwrite") == 1
    assert "pick one" in capsys.readouterr().err
    # Nothing there yet: --resume simply writes everything.
    assert _run(*args, "--resume") == 0
    assert len(os.listdir(tmp_path / "o")) == 2


def test_sink_holds_only_when_resuming(tmp_path: Path) -> None:
    _frames(tmp_path / "o", 2, "%05d.png", start=0)
    assert ImageSequenceSink(tmp_path / "o" / "%05d.png", resume=True).holds(1)
    assert not ImageSequenceSink(tmp_path / "o" / "%05d.png", resume=True).holds(2)
    assert not ImageSequenceSink(tmp_path / "o" / "%05d.png", overwrite=True).holds(1)
