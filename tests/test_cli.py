from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from stylize_video.cli import main

from .conftest import make_image


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "image" in out and "styles" in out


def test_image_stylizes_one_file(image_file: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    assert main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(out), "--device", "cpu"]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape == cv2.imread(str(image_file)).shape
    assert not list(tmp_path.glob(".*partial*"))


def test_image_refuses_existing_output(
    image_file: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    assert main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(out), "--overwrite"]) == 0
    assert cv2.imread(str(out)) is not None


def test_image_never_overwrites_input(
    image_file: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = image_file.read_bytes()
    code = main(["image", str(image_file), "-s", str(tiny_checkpoint), "-o", str(image_file), "--overwrite"])
    assert code == 1 and "also an input" in capsys.readouterr().err
    assert image_file.read_bytes() == before


def test_image_folder_and_glob(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"p{i}.png"), make_image(20 + i, 30, seed=i))
    (src / "notes.txt").write_text("not an image")
    assert main(["image", str(src), "-s", str(tiny_checkpoint), "-o", str(tmp_path / "out"), "--max-size", "16"]) == 0
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == ["p0.png", "p1.png", "p2.png"]
    assert max(cv2.imread(str(outs[0])).shape[:2]) == 16
    assert main(["image", str(src / "p*.png"), "-s", str(tiny_checkpoint), "-o", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").iterdir())) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["image", "missing.png", "-o", "x.png"], "does not exist"),
        (["image", "{img}", "-s", "no-such-style", "-o", "{tmp}/x.png"], "unknown style"),
        (["image", "{img}", "-s", "{ck}", "-o", "{tmp}/x.png", "--device", "cuda:7"], "cuda"),
        (["image", "{img}", "-s", "{ck}", "-o", "{tmp}/x.png", "--strength", "2"], "strength"),
        (["image", "{img}", "-s", "{ck}", "-o", "{tmp}/x.gif"], "unsupported image extension"),
        (["image", "{notimg}", "-s", "{ck}", "-o", "{tmp}/x.png"], "not a readable image"),
        (["run", "-i", "synthetic", "-s", "{ck}", "-o", "{tmp}/x.mp4", "-o", "{tmp}/./x.mp4"], "given twice"),
        (["image", "{img}", "-s", "{ck}", "-o", "{tmp}/x.ppm"], "unsupported image extension"),
        (["batch", "{tmp}", "-s", "{ck}", "-o", "{tmp}/b", "--device", "cpu", "--precision", "fp16"], "fp16 is not"),
    ],
)
def test_user_errors_are_one_line(
    args: list[str],
    message: str,
    image_file: Path,
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notimg = tmp_path / "fake.jpg"
    notimg.write_text("hello")
    fmt = {"img": str(image_file), "ck": str(tiny_checkpoint), "tmp": str(tmp_path), "notimg": str(notimg)}
    assert main([a.format(**fmt) for a in args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_image_folder_output_writes_unwritable_types_as_png(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    from tests.conftest import make_image

    a, b = tmp_path / "a.png", tmp_path / "b.ppm"  # OpenCV reads .ppm; we write only common types
    cv2.imwrite(str(a), make_image())
    cv2.imwrite(str(b), make_image(seed=2))
    assert main(["image", str(a), str(b), "-s", str(tiny_checkpoint), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_styles_lists_installed(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tiny_checkpoint.parent))
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "Nobody" in out


def test_styles_markdown_table_shows_settings_and_losses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint
    from stylize_video.models.transform_net import TransformNet

    from .conftest import TINY

    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tmp_path))
    training = {"iterations_done": 600, "batch_size": 4, "image_size": 128, "style_size": 256, "device": "cpu"}
    for name, extra in (
        ("wave-lite", {"teacher": "runs/wave.safetensors", "temporal_weight": 30.0, "init_from": {"iterations": 400}}),
        ("wave", {}),
    ):
        meta = CheckpointMeta(
            name=name,
            title="Wave",
            artist="Nobody",
            training=training | extra,
            metrics={"val_content": 0.5, "val_style": 0.25, "val_temporal": 0.0014},
        )
        save_checkpoint(tmp_path / f"{name}.safetensors", TransformNet(TINY), meta)
    assert main(["styles", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| `wave")]
    assert rows[0].startswith("| `wave` |") and rows[1].startswith("| `wave-lite` |")  # full first
    assert "distilled from `wave`" in rows[1] and "| 30 |" in rows[1] and "| 1.40 |" in rows[1]
    assert "| 400 + 600 x 4 |" in rows[1]  # fine-tuned: iterations before + this run
    assert "| 600 x 4 | 128 / 256 |" in rows[0] and "| 0.500 | 0.250 |" in rows[0] and "| CPU |" in rows[0]


def test_console_script_runs() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "stylize_video", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "stylize-video" in r.stdout


def test_default_style_prefers_lite_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize_video.commands.common import default_style
    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint
    from stylize_video.models.transform_net import TransformNet

    from .conftest import TINY

    monkeypatch.setenv("STYLIZE_VIDEO_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(
        "stylize_video.models.checkpoint._PROJECT_CHECKPOINTS", tmp_path / "shipped"
    )  # ignore real styles
    monkeypatch.setattr("sys.prefix", str(tmp_path / "prefix"))  # ... and those a wheel installed
    for name in ("aaa", "starry-night", "starry-night-lite"):
        save_checkpoint(tmp_path / f"{name}.safetensors", TransformNet(TINY), CheckpointMeta(name=name))
    assert default_style("cpu") == "starry-night-lite"
    (tmp_path / "starry-night-lite.safetensors").unlink()
    assert default_style("cpu") == "starry-night"
