"""``batch -s SPEC`` (blends, as ``run -s`` takes them) and ``batch --region person --alpha``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.runtime.batch import MANIFEST_NAME, BatchRunner, BatchSettings, BatchStyle, plan_jobs
from tests.media import probe, write_clip
from tests.test_person_region import H, W, _decode_bgra, core, fake_model, scene, truth  # noqa: F401 (fixture)

ENGINE = ["--device", "cpu", "--threads", "1", "--precision", "fp32", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def other_checkpoint(tmp_path: Path) -> Path:
    """A second tiny single-style network, its weights unlike ``tiny_checkpoint``'s."""
    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint
    from stylize_video.models.transform_net import TransformNet

    from .conftest import TINY

    torch.manual_seed(7)
    net = TransformNet(TINY).eval()
    return save_checkpoint(tmp_path / "other.safetensors", net, CheckpointMeta(name="other", title="T", artist="N"))


def _spec(a: Path, b: Path, wa: float = 0.7, wb: float = 0.3) -> str:
    return f"{a}={wa}+{b}={wb}"


def _batch(src: Path, out: Path, *extra: str | Path) -> int:
    return main(["batch", str(src), "-o", str(out), "--workers", "1", *ENGINE, *map(str, extra)])


def _frames(path: Path) -> list[np.ndarray]:
    return probe(path, keep_images=True).images


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _skip_reason(src: Path, out: Path, spec: str) -> str:
    """Why a rerun with ``spec`` (and the CLI's other settings) skips the one file of ``src``."""
    settings = BatchSettings(style=spec, device="cpu", threads=1, precision="fp32")
    report = BatchRunner(plan_jobs(src, out), settings, out).run(lambda: pytest.fail("nothing should be converted"))
    assert [f.status for f in report.files] == ["skipped"]
    return report.files[0].reason


# --- blends --------------------------------------------------------------------------


def test_a_batch_style_builds_what_stylizer_builds_from_the_spec(tiny_checkpoint: Path, other_checkpoint: Path) -> None:
    from stylize_video.runtime.stylizer import Stylizer

    spec = _spec(tiny_checkpoint, other_checkpoint)
    frame = scene(3)
    engine = {"device": "cpu", "threads": 1, "precision": "fp32"}
    style = BatchStyle.load(spec)
    assert style.blended and [w for _, w in style.spec] == pytest.approx([0.7, 0.3])
    got = style.stylizer(**engine)(frame)
    want = Stylizer(spec, **engine)(frame)
    assert _diff(got, want) <= 1.0  # within 1/255 on average (the same network, the same weights)
    # ... and that is the blend, not either style alone.
    for single in (tiny_checkpoint, other_checkpoint):
        assert _diff(got, Stylizer(str(single), **engine)(frame)) > 3.0
    # A single style is the checkpoint itself, as before blends.
    lone = BatchStyle.load(str(tiny_checkpoint))
    assert not lone.blended and lone.key_record() == {"style_sha256": lone.sha256s()[0]}


def test_batch_with_a_blend_spec_matches_run_and_the_manifest_keys_on_the_spec(
    tmp_path: Path, tiny_checkpoint: Path, other_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=6, audio=False)
    spec = _spec(tiny_checkpoint, other_checkpoint)
    out = tmp_path / "out"
    assert _batch(src, out, "-s", spec) == 0
    # `run -s SPEC` on the same file, encoded the same way: the same frames.
    ref = tmp_path / "ref.mp4"
    assert main(["run", "-i", str(src / "a.mp4"), "-o", str(ref), "-s", spec, *ENGINE]) == 0
    lone = tmp_path / "lone.mp4"
    assert main(["run", "-i", str(src / "a.mp4"), "-o", str(lone), "-s", str(tiny_checkpoint), *ENGINE]) == 0
    got, want, single = _frames(out / "a.mp4"), _frames(ref), _frames(lone)
    assert len(got) == len(want) == 6
    assert max(_diff(g, w) for g, w in zip(got, want, strict=True)) <= 1.0
    assert min(_diff(g, s) for g, s in zip(got, single, strict=True)) > 3.0

    record = json.loads((out / MANIFEST_NAME).read_text().splitlines()[-1])
    assert record["style"] == spec and record["status"] == "done"
    assert [(b["name"], b["weight"]) for b in record["style_blend"]] == [
        (str(tiny_checkpoint), pytest.approx(0.7)),
        (str(other_checkpoint), pytest.approx(0.3)),
    ]
    assert all(len(b["sha256"]) == 64 for b in record["style_blend"]) and len(record["style_sha256"]) == 64
    capsys.readouterr()

    def rerun(style: str, *extra: str) -> str:
        assert _batch(src, out, "-s", style, *extra) == 0
        return capsys.readouterr().out

    mtime = (out / "a.mp4").stat().st_mtime_ns
    # The same blend (also written in another order or scale): done, skipped.
    assert "0 done, 0 failed, 1 skipped" in rerun(spec)
    assert "0 done, 0 failed, 1 skipped" in rerun(f"{other_checkpoint}=3+{tiny_checkpoint}=7")
    assert _skip_reason(src, out, spec) == "done earlier"
    # Other weights: not taken as done (the file is kept unless --overwrite, as for any other setting) ...
    changed = _spec(tiny_checkpoint, other_checkpoint, 0.2, 0.8)
    assert "other settings" in _skip_reason(src, out, changed)
    assert (out / "a.mp4").stat().st_mtime_ns == mtime
    # ... and redone with it, the manifest then keys on the new blend.
    assert "1 done" in rerun(changed, "--overwrite")
    assert _diff(_frames(out / "a.mp4")[0], got[0]) > 1.0
    assert "1 skipped" in rerun(changed)
    assert _skip_reason(src, out, changed) == "done earlier"


def test_a_single_style_keeps_the_settings_key_of_manifests_written_before_blends(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    from stylize_video.files import file_sha256

    settings = BatchSettings(style=str(tiny_checkpoint), device="cpu", threads=1)
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=2, audio=False)
    runner = BatchRunner(plan_jobs(src, tmp_path / "out"), settings, tmp_path / "out")
    # The key as batch computed it before blends (and before --alpha): a file's hash and the settings.
    old = {"style_sha256": file_sha256(tiny_checkpoint), **settings.output_record()}
    assert runner.settings_key == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:12]
    assert runner.style_sha256 == file_sha256(tiny_checkpoint)
    assert "alpha" not in settings.output_record()


@pytest.mark.usefixtures("fake_model")
def test_person_style_takes_a_spec_too(
    tmp_path: Path, tiny_checkpoint: Path, other_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stylize_video.person.find_model", lambda path=None: Path("fake.tflite"))
    src = _scene_clip(tmp_path / "in", 3)
    out = tmp_path / "out"
    person = _spec(tiny_checkpoint, other_checkpoint, 0.5, 0.5)
    assert _batch(src, out, "-s", tiny_checkpoint, "--person-style", person) == 0
    assert probe(out / "a.mp4").frames == 3
    assert json.loads((out / MANIFEST_NAME).read_text())["settings"]["person_style"] == person


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-s", "{a}=x+{b}"], "is not a number"),
        (["-s", "{a}=0.5+no-such-style-here"], "no-such-style-here"),
        (["-s", "{a}", "--person-style", "{a}+{a}"], "twice"),
        (["-s", "{a}", "--region", "person", "--alpha", "--ext", ".mp4"], "cannot store --alpha"),
        (["-s", "{a}", "--region", "person", "--alpha", "--ext", "png"], "use .webm (VP9) or .mov"),
        (["-s", "{a}", "--alpha"], "needs --region person"),
        (["-s", "{a}", "--region", "person", "--alpha", "--ext", ".mov", "--codec", "hevc"], "prores_ks"),
    ],
)
def test_refusals_are_one_line_before_any_work(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=2, audio=False)
    args = [a.replace("{a}", str(tiny_checkpoint)).replace("{b}", str(tiny_checkpoint)) for a in extra]
    assert _batch(src, tmp_path / "out", *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "out").exists()


# --- alpha ---------------------------------------------------------------------------


def _scene_clip(folder: Path, n: int) -> Path:
    """An MJPEG clip of :func:`scene` frames (every frame a keyframe, so segments can cut anywhere)."""
    folder.mkdir(parents=True)
    writer = cv2.VideoWriter(str(folder / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for i in range(n):
        writer.write(scene(i))
    writer.release()
    return folder


def _check_alpha(decoded: list[np.ndarray], n: int) -> None:
    assert len(decoded) == n
    for i, frame in enumerate(decoded):
        person = truth(scene(i))
        assert frame.shape == (H, W, 4)
        assert (frame[..., 3][core(person)] >= 250).all(), i
        assert (frame[..., 3][core(~person)] <= 5).all(), i


@pytest.mark.usefixtures("fake_model")
@pytest.mark.parametrize("segments", [False, True])
def test_batch_alpha_writes_webm_whose_alpha_is_the_person(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, segments: bool
) -> None:
    monkeypatch.setattr("stylize_video.person.find_model", lambda path=None: Path("fake.tflite"))
    n = 20 if segments else 4
    src = _scene_clip(tmp_path / "in", n)
    out = tmp_path / "out"
    extra = ["--segment-seconds", "0.3"] if segments else []
    assert _batch(src, out, "-s", tiny_checkpoint, "--region", "person", "--alpha", *extra) == 0
    result = out / "a.webm"  # --alpha picks WebM (VP9 with alpha) when --ext is not given
    record = json.loads((out / MANIFEST_NAME).read_text())
    assert record["settings"]["alpha"] is True and record["settings"]["extension"] == ".webm"
    assert record["segments"] == (3 if segments else 1)
    # FFmpeg's native vp9 decoder drops the alpha; libvpx reads it.
    _check_alpha(_decode_bgra(result, "libvpx-vp9"), n)
    # The track says it has alpha (what browsers and editors look at), joined or not.
    assert bytes([0x53, 0xC0, 0x81, 0x01]) in result.read_bytes()  # Matroska AlphaMode = 1


@pytest.mark.usefixtures("fake_model")
def test_batch_alpha_in_prores_mov(tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stylize_video.person.find_model", lambda path=None: Path("fake.tflite"))
    src = _scene_clip(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert _batch(src, out, "-s", tiny_checkpoint, "--region", "person", "--alpha", "--ext", "mov") == 0
    _check_alpha(_decode_bgra(out / "a.mov", None), 3)
