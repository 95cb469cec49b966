"""``--region``, ``--person-style`` and ``--alpha``: the person-aware stage wired into the commands.

A fake segmenter (the bright ellipse of :func:`scene`, found by a threshold and
shrunk to the model's coarse grid) stands in for the model, so these run without
it; one test runs the real model where ``STYLIZE_VIDEO_PERSON_MODEL`` names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stylize_video.cli import main
from stylize_video.controls import ControlChanges, LiveControls, apply_remote, parse_command
from stylize_video.io.base import Frame
from stylize_video.person import MODEL_ENV, MaskSmoother, PersonMasker, warp_mask
from stylize_video.runtime import region as region_mod

H, W = 96, 128
SMALL = (36, 64)  # the fake model's grid


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def scene(i: int = 0) -> np.ndarray:
    """A bright ellipse "person" (moving right 1 px a frame) on a darker textured room."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    room = 60 + 25 * np.sin(xx / 5 + i) * np.cos(yy / 7)
    inside = ((xx - 60 - i) / 30) ** 2 + ((yy - 50) / 38) ** 2 < 1.0
    gray = np.where(inside, 200 + 10 * np.sin(yy / 3), room)
    return np.stack([gray, gray * 0.9 + 10, gray * 0.7 + 30], axis=2).clip(0, 255).astype(np.uint8)


def truth(frame: np.ndarray) -> np.ndarray:
    """The person's mask in a :func:`scene` frame, as bool HxW."""
    return np.asarray(frame[..., 0] > 150)


def fake_segment(frame: np.ndarray) -> np.ndarray:
    """A stand-in for the model: the ellipse at the model's coarse size."""
    m = truth(frame).astype(np.float32)
    return np.asarray(cv2.resize(m, (SMALL[1], SMALL[0]), interpolation=cv2.INTER_AREA), np.float32)


def core(mask: np.ndarray, px: int = 12) -> np.ndarray:
    """Pixels at least ``px`` inside a bool region."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(region_mod, "make_segmenter", lambda path=None: fake_segment)


@pytest.fixture
def frames_in(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:05d}.png"), scene(i))
    return folder


def _run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--no-progress", "--threads", "1"])


def _read(folder: Path, flags: int = cv2.IMREAD_COLOR) -> list[np.ndarray]:
    return [cv2.imread(str(p), flags) for p in sorted(folder.glob("*.png"))]


@pytest.fixture
def second_checkpoint(tmp_path: Path) -> Path:
    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint
    from stylize_video.models.transform_net import TransformNet

    from .conftest import TINY

    torch.manual_seed(7)
    net = TransformNet(TINY).eval()
    return save_checkpoint(tmp_path / "other.safetensors", net, CheckpointMeta(name="other", title="T", artist="N"))


# --- the commands ------------------------------------------------------------------


@pytest.mark.usefixtures("fake_model")
def test_region_background_keeps_the_person_and_region_person_the_room(
    tmp_path: Path, frames_in: Path, tiny_checkpoint: Path
) -> None:
    pattern = "in/%05d.png"
    outs = {}
    for region in ("all", "background", "person"):
        out = tmp_path / region
        assert _run("-i", tmp_path / pattern, "-o", out / "%05d.png", "-s", tiny_checkpoint, "--region", region) == 0
        outs[region] = _read(out)
    originals = _read(frames_in)
    assert len(outs["background"]) == 3
    for i, original in enumerate(originals):
        person = core(truth(original))
        room = core(~truth(original))
        assert person.sum() > 500 and room.sum() > 2000
        assert not np.array_equal(outs["all"][i][person], original[person])  # the style does change pixels
        # region=background: the person exactly as filmed, the room exactly as stylized.
        assert np.array_equal(outs["background"][i][person], original[person])
        assert np.array_equal(outs["background"][i][room], outs["all"][i][room])
        # region=person: the reverse.
        assert np.array_equal(outs["person"][i][room], original[room])
        assert np.array_equal(outs["person"][i][person], outs["all"][i][person])


@pytest.mark.usefixtures("fake_model")
def test_person_style_paints_the_person_in_a_second_style(
    tmp_path: Path, frames_in: Path, tiny_checkpoint: Path, second_checkpoint: Path
) -> None:
    src = tmp_path / "in/%05d.png"
    assert _run("-i", src, "-o", tmp_path / "a/%05d.png", "-s", tiny_checkpoint) == 0
    assert _run("-i", src, "-o", tmp_path / "b/%05d.png", "-s", second_checkpoint) == 0
    both = tmp_path / "both/%05d.png"
    assert _run("-i", src, "-o", both, "-s", tiny_checkpoint, "--person-style", second_checkpoint) == 0
    a, b, mixed = _read(tmp_path / "a"), _read(tmp_path / "b"), _read(tmp_path / "both")
    for i, original in enumerate(_read(frames_in)):
        person, room = core(truth(original)), core(~truth(original))
        assert not np.array_equal(a[i][person], b[i][person])
        assert np.array_equal(mixed[i][person], b[i][person])
        assert np.array_equal(mixed[i][room], a[i][room])


@pytest.mark.usefixtures("fake_model")
def test_image_command_takes_the_region_and_alpha(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "photo.png"
    original = scene()
    cv2.imwrite(str(src), original)
    person, room = core(truth(original)), core(~truth(original))
    assert main(["image", str(src), "-o", str(tmp_path / "bg.png"), "-s", str(tiny_checkpoint), "--threads", "1",
                 "--region", "background"]) == 0  # fmt: skip
    out = cv2.imread(str(tmp_path / "bg.png"))
    assert np.array_equal(out[person], original[person]) and not np.array_equal(out[room], original[room])
    assert main(["image", str(src), "-o", str(tmp_path / "cut.png"), "-s", str(tiny_checkpoint), "--threads", "1",
                 "--region", "person", "--alpha"]) == 0  # fmt: skip
    rgba = cv2.imread(str(tmp_path / "cut.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (H, W, 4)
    assert (rgba[..., 3][person] == 255).all() and (rgba[..., 3][room] == 0).all()


@pytest.mark.usefixtures("fake_model")
def test_alpha_round_trips_through_png_sequences(tmp_path: Path, frames_in: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in/%05d.png"
    assert _run("-i", src, "-o", tmp_path / "all/%05d.png", "-s", tiny_checkpoint) == 0
    out = tmp_path / "alpha/%05d.png"
    assert _run("-i", src, "-o", out, "-s", tiny_checkpoint, "--region", "person", "--alpha") == 0
    styled = _read(tmp_path / "all")
    rgba = _read(tmp_path / "alpha", cv2.IMREAD_UNCHANGED)
    assert len(rgba) == 3
    for i, original in enumerate(_read(frames_in)):
        person, room = core(truth(original)), core(~truth(original))
        assert rgba[i].shape == (H, W, 4)
        assert (rgba[i][..., 3][person] == 255).all() and (rgba[i][..., 3][room] == 0).all()
        # Straight alpha: the colours are the stylized frame's everywhere.
        assert np.array_equal(rgba[i][..., :3], styled[i])


def _alpha_frames(n: int = 3) -> list[Frame]:
    from fractions import Fraction

    frames = []
    for i in range(n):
        image = scene(i)
        alpha = np.where(truth(image), 255, 0).astype(np.uint8)
        frames.append(Frame(image, i, pts=i, time_base=Fraction(1, 25), time=i / 25, alpha=alpha))
    return frames


def _decode_bgra(path: Path, decoder: str | None) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            return [f.to_ndarray(format="bgra") for f in container.decode(stream)]
        # FFmpeg's native vp9 decoder drops the alpha side data; libvpx's reads it.
        ctx = av.CodecContext.create(decoder, "r")
        out = []
        for packet in container.demux(stream):
            out += [f.to_ndarray(format="bgra") for f in ctx.decode(packet)]
        return out


@pytest.mark.parametrize(("name", "decoder"), [("out.webm", "libvpx-vp9"), ("out.mov", None)])
def test_alpha_video_files_decode_with_their_alpha(tmp_path: Path, name: str, decoder: str | None) -> None:
    from stylize_video.io.file_sink import VideoFileSink

    frames = _alpha_frames()
    with VideoFileSink(tmp_path / name, fps=25, alpha=True, allow_nvenc=False) as sink:
        for f in frames:
            sink.write(f)
    decoded = _decode_bgra(tmp_path / name, decoder)
    assert len(decoded) == len(frames)
    for f, d in zip(frames, decoded, strict=True):
        person, room = core(truth(f.image), 4), core(~truth(f.image), 4)
        assert d.shape == (H, W, 4)
        assert (d[..., 3][person] >= 250).all() and (d[..., 3][room] <= 5).all()
        err = np.abs(d[..., :3].astype(int) - f.image.astype(int))[person]
        assert err.mean() < 8, err.mean()  # lossy, but the picture inside the person is kept


@pytest.mark.usefixtures("fake_model")
def test_run_writes_prores_4444_with_alpha(tmp_path: Path, frames_in: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "person.mov"
    assert _run("-i", tmp_path / "in/%05d.png", "-o", out, "-s", tiny_checkpoint, "--region", "person", "--alpha") == 0
    decoded = _decode_bgra(out, None)
    assert len(decoded) == 3
    for i, original in enumerate(_read(frames_in)):
        assert (decoded[i][..., 3][core(truth(original))] >= 250).all()
        assert (decoded[i][..., 3][core(~truth(original))] <= 5).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--region", "person", "--alpha", "-o", "{tmp}/out.mp4"], "cannot store --alpha"),
        (["--alpha", "-o", "{tmp}/out.webm"], "needs --region person"),
        (["--region", "person", "--alpha", "-o", "{tmp}/f/%05d.jpg"], "cannot store --alpha"),
        (["--region", "person", "--alpha", "-o", "window"], "cannot show --alpha"),
        (["--region", "background", "--person-style", "x", "-o", "{tmp}/o.mp4"], "--region all"),
        (["--region", "person", "--alpha", "--codec", "hevc", "-o", "{tmp}/o.mov"], "prores_ks"),
        (["--region", "background", "--person-model", "{tmp}/missing.tflite", "-o", "{tmp}/o.mp4"], "not found"),
    ],
)
def test_refusals_are_one_line_and_leave_nothing(
    tmp_path: Path, frames_in: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
    message: str,
) -> None:  # fmt: skip
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert _run("-i", tmp_path / "in/%05d.png", "-s", tiny_checkpoint, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "tiny.safetensors"]


def test_region_options_are_refused_where_they_make_no_sense(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "x.png", "-o", "y.png", "--region", "background", "--person-strength", "0.5"]) == 1
    assert "--person-style" in capsys.readouterr().err


# --- live control ------------------------------------------------------------------


def test_region_command_cycles_and_is_one_entry_for_keys_typing_and_http() -> None:
    from stylize_video.controls import KEY_COMMANDS

    assert KEY_COMMANDS[ord("r")] == "region"
    controls = LiveControls()
    assert controls.apply_command("r")
    assert controls.poll().region == "background"
    controls.report(region="background")
    controls.apply_command("region")
    controls.apply_command("region")  # two presses between polls move two steps
    assert controls.poll().region == "all"
    assert controls.apply_command("region person") and controls.poll().region == "person"
    apply_remote(controls, [("region", "background")])
    assert controls.poll() == ControlChanges(region="background")
    with pytest.raises(ValueError, match="region must be"):
        parse_command("region face", controls)
    with pytest.raises(ValueError):
        apply_remote(controls, [("region", "sky")])


@pytest.mark.usefixtures("fake_model")
def test_the_region_switches_live_in_the_pipeline(tiny_checkpoint: Path) -> None:
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.region import RegionStage, masker_factory
    from stylize_video.runtime.stylizer import Stylizer

    frames = [Frame(scene(), i) for i in range(4)]
    stylizer = Stylizer(str(tiny_checkpoint), device="cpu", threads=1)
    controls = LiveControls()
    outputs: list[tuple[str, Frame]] = []

    def on_frame(out: Frame) -> None:
        outputs.append((controls.state()["region"], out))
        controls.apply_command("r")  # applied before the next frame

    stage = RegionStage(masker_factory(), "all")
    try:
        Pipeline(frames, stylizer, [], controls=controls, on_frame=on_frame, region=stage).run()
    finally:
        stage.close()
    assert [r for r, _ in outputs] == ["all", "background", "person", "all"]
    original = scene()
    person, room = core(truth(original)), core(~truth(original))
    by_region = dict(outputs[:3])
    assert np.array_equal(by_region["background"].image[person], original[person])
    assert np.array_equal(by_region["person"].image[room], original[room])
    assert np.array_equal(by_region["all"].image[room], by_region["background"].image[room])
    assert not np.array_equal(by_region["all"].image[person], original[person])


def test_a_missing_model_at_a_live_switch_is_a_warning_and_the_region_stays_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stylize_video.errors import DependencyError
    from stylize_video.runtime.region import RegionStage

    def missing() -> PersonMasker:
        raise DependencyError("the person mask needs MediaPipe's model")

    stage = RegionStage(missing)
    stage.set_region("background")
    stage.set_region("person")  # tried once: no second warning
    assert stage.region == "all"
    assert sum("person region unavailable" in r.message for r in caplog.records) == 1


# --- the mask's border over time ---------------------------------------------------


def test_video_runs_the_model_on_every_other_frame_and_images_on_each(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stylize_video.person import MODEL_EVERY
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.region import RegionStage, masker_factory
    from stylize_video.runtime.stylizer import Stylizer

    calls: list[int] = []

    def counting(frame: np.ndarray) -> np.ndarray:
        calls.append(int(frame[0, 0, 0]))
        return fake_segment(frame)

    monkeypatch.setattr(region_mod, "make_segmenter", lambda path=None: counting)
    frames = [Frame(scene(i), i) for i in range(6)]
    stylizer = Stylizer(str(tiny_checkpoint), device="cpu", threads=1)
    outputs: list[Frame] = []
    stage = RegionStage(masker_factory(), "background")
    try:
        Pipeline(frames, stylizer, [], region=stage, on_frame=outputs.append).run()
    finally:
        stage.close()
    assert MODEL_EVERY == 2 and len(calls) == 3  # frames 0, 2 and 4; the others carry the mask
    for frame, out in zip(frames, outputs, strict=True):  # ... and still keep the person
        person = core(truth(frame.image))
        assert np.array_equal(out.image[person], frame.image[person])
    # Still images are each their own scene: the image command runs the model on every one.
    calls.clear()
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), scene(i))
    args = ["image", *(str(tmp_path / f"p{i}.png") for i in range(3)), "-o", str(tmp_path / "out")]
    assert main([*args, "-s", str(tiny_checkpoint), "--threads", "1", "--region", "background"]) == 0
    assert len(calls) == 3


def test_flow_warped_history_follows_motion_where_the_ema_lags() -> None:
    h, w = 36, 64
    xx = np.arange(w, dtype=np.float32)[None, :].repeat(h, 0)
    before = (np.abs(xx - 30) < 8).astype(np.float32)
    after = (np.abs(xx - 34) < 8).astype(np.float32)  # moved 4 px right
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = -4.0  # backward: each pixel came from 4 px to its left
    valid = np.ones((h, w), np.float32)
    assert np.abs(warp_mask(before, flow)[:, 4:] - after[:, 4:]).max() < 1e-6
    ema, warped = MaskSmoother(0.5), MaskSmoother(0.5, flow_strength=0.7)
    ema(before), warped(before, motion=lambda: None)
    lag_ema = np.abs(ema(after) - after).mean()
    lag_flow = np.abs(warped(after, motion=lambda: (flow, valid)) - after).mean()
    assert lag_flow < 0.05 * lag_ema
    # No flow (a cut, or the flow smoother's first frame): the new mask as it is.
    assert np.array_equal(warped(before, motion=lambda: None), before)


def test_the_flow_smoother_shares_its_flow_with_the_mask(tiny_checkpoint: Path) -> None:
    from stylize_video.runtime.flow_smoother import FlowSmoother
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.region import RegionStage
    from stylize_video.runtime.stylizer import Stylizer

    seen: list[bool] = []

    class Spy(PersonMasker):
        def __call__(self, frame: np.ndarray, motion: object = None) -> np.ndarray:
            got = motion() if callable(motion) else None
            seen.append(got is not None)
            return super().__call__(frame, (lambda: got) if motion is not None else None)

    frames = [Frame(scene(i), i) for i in range(3)]
    stylizer = Stylizer(str(tiny_checkpoint), device="cpu", threads=1)
    stage = RegionStage(lambda: Spy(fake_segment), "background")
    smoother = FlowSmoother()
    try:
        Pipeline(frames, stylizer, [], smoother=smoother, region=stage).run()
    finally:
        stage.close()
        smoother.close()
    assert seen == [False, True, True]  # no flow for the first frame, the smoother's after


# --- batch -------------------------------------------------------------------------


def test_batch_settings_record_the_region_only_when_used() -> None:
    from stylize_video.errors import StylizeError
    from stylize_video.runtime.batch import BatchSettings

    plain = BatchSettings(style="x").output_record()
    assert "region" not in plain and "person_style" not in plain
    record = BatchSettings(style="x", region="background", person_model="/m.tflite").output_record()
    assert record["region"] == "background" and "person_model" not in record
    with pytest.raises(StylizeError, match="--region all"):
        BatchSettings(style="x", region="person", person_style="y")


@pytest.mark.usefixtures("fake_model")
def test_batch_converts_with_the_region(tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.media import probe

    monkeypatch.setattr("stylize_video.person.find_model", lambda path=None: Path("fake.tflite"))
    src = tmp_path / "clips"
    src.mkdir()
    writer = cv2.VideoWriter(str(src / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for i in range(3):
        writer.write(scene(i))
    writer.release()
    out = tmp_path / "out"
    code = main(["batch", str(src), "-o", str(out), "-s", str(tiny_checkpoint), "--workers", "1", "--threads", "1",
                 "--device", "cpu", "--no-progress", "--region", "background"])  # fmt: skip
    assert code == 0
    assert probe(out / "a.mp4").frames == 3
    assert '"region": "background"' in (out / "manifest.jsonl").read_text()


# --- the real model ----------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get(MODEL_ENV), reason=f"set {MODEL_ENV} to MediaPipe's landscape .tflite")
def test_the_real_model_runs_in_the_pipeline(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "out/%05d.png"
    assert (
        _run("-i", "synthetic:160x96@10:0.3s", "-o", out, "-s", tiny_checkpoint, "--region", "person", "--alpha") == 0
    )
    frames = _read(tmp_path / "out", cv2.IMREAD_UNCHANGED)
    assert len(frames) == 3 and all(f.shape == (96, 160, 4) for f in frames)


@pytest.mark.parametrize(
    ("device", "dtype"),
    [
        ("cpu", torch.float32),
        ("cpu", torch.bfloat16),  # 8 mantissa bits, and still v/255 rounds back to v
        pytest.param("cuda", torch.float16, marks=pytest.mark.needs_cuda),
    ],
)
def test_the_unstyled_region_is_bit_exact_in_every_precision(device: str, dtype: torch.dtype) -> None:
    from stylize_video.runtime.region import RegionStage
    from stylize_video.runtime.transfer import FrameTransfer

    frame = scene()
    mask = truth(frame).astype(np.float32)
    transfer = FrameTransfer(torch.device(device), dtype)
    x = transfer.upload(frame)
    y = (1.0 - x).clamp(0, 1)  # any "stylization"
    stage = RegionStage(lambda: lambda f, motion=None: mask, "background")
    try:
        stage.submit(frame)
        out, alpha = stage.finish(x, y)
    finally:
        stage.close()
    image = transfer.download(out)
    assert alpha is None
    assert np.array_equal(image[truth(frame)], frame[truth(frame)])
    assert np.array_equal(image[~truth(frame)], transfer.download(y)[~truth(frame)])
