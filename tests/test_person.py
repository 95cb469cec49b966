"""Person masks and compositing, on a synthetic figure with a known mask.

The real model runs only where its file is found without downloading (the
``STYLIZE_VIDEO_PERSON_MODEL`` environment variable, an installed mediapipe wheel,
or the cache); otherwise those tests skip and say how to enable them.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stylize_video.errors import DependencyError, InputError, StylizeError
from stylize_video.person import (
    HOLD,
    MODEL_ENV,
    RELEASE,
    MaskSmoother,
    MaskWorker,
    PersonMasker,
    PersonSegmenter,
    SegmentationModel,
    area_shrink,
    bilinear_upsample,
    composite,
    composite_styles,
    feather,
    find_model,
    guide_gray,
    guided_upsample,
    hold_confident,
    refine_mask,
    release_confident,
    to_rgba,
)
from stylize_video.person import model as model_mod

H, W = 240, 320
SMALL = (36, 64)  # the model's coarse grid, ~1/7 of the frame


def scene(dx: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a bright ellipse "person" on a darker textured room, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    inside = ((xx - W / 2 - dx) / 60) ** 2 + ((yy - H / 2 - 20) / 95) ** 2 < 1.0
    room = 60 + 25 * np.sin(xx / 7) * np.cos(yy / 11) + rng.normal(0, 6, (H, W))
    person = 190 + 10 * np.sin(yy / 13)
    gray = np.where(inside, person, room)
    frame = np.stack([gray, gray * 0.9 + 10, gray * 0.8 + 20], axis=2).clip(0, 255).astype(np.uint8)
    return frame, inside.astype(np.float32)


def coarse(mask: np.ndarray) -> np.ndarray:
    """What a segmentation model gives: the mask at a small size (area-averaged)."""
    return cv2.resize(mask, (SMALL[1], SMALL[0]), interpolation=cv2.INTER_AREA)


def edge_band(mask: np.ndarray, width: int = 4) -> np.ndarray:
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)


# --- edges -------------------------------------------------------------------------


def test_guided_upsampling_follows_the_edge_better_than_bilinear() -> None:
    frame, truth = scene()
    small = coarse(truth)
    band = edge_band(truth)
    guided = guided_upsample(small, guide_gray(frame))
    plain = bilinear_upsample(small, (H, W))
    err_guided = float(np.abs(guided - truth)[band].mean())
    err_plain = float(np.abs(plain - truth)[band].mean())
    assert guided.shape == (H, W) and guided.dtype == np.float32
    assert guided.min() >= 0.0 and guided.max() <= 1.0
    assert err_guided < 0.7 * err_plain, (err_guided, err_plain)
    # Away from the edge the mask is decided: the room is 0 and the person 1.
    far = ~edge_band(truth, 12)
    assert float(np.abs(guided - truth)[far].max()) < 0.1


def test_guided_upsampling_at_full_working_size_also_beats_bilinear() -> None:
    frame, truth = scene()
    small = coarse(truth)
    band = edge_band(truth)
    guided = guided_upsample(small, guide_gray(frame), radius=8, work_side=max(H, W))
    plain = bilinear_upsample(small, (H, W))
    assert guided.shape == (H, W)
    assert np.abs(guided - truth)[band].mean() < np.abs(plain - truth)[band].mean()


def test_feathering_gives_a_bounded_ramp_and_keeps_the_inside() -> None:
    _, truth = scene()
    soft = feather(truth, sigma=2.0)
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    # No hard step: the steepest change between neighbours is a fraction of the 0..1 jump ...
    steepest = max(np.abs(np.diff(soft, axis=0)).max(), np.abs(np.diff(soft, axis=1)).max())
    assert steepest < 0.35
    # ... but the ramp is narrow: a few sigma from the edge the mask is untouched.
    far = ~edge_band(truth, 8)
    np.testing.assert_allclose(soft[far], truth[far], atol=1e-3)
    assert feather(truth, 0) is truth


# --- time ----------------------------------------------------------------------------


def test_the_ema_steadies_a_jittering_border() -> None:
    rng = np.random.default_rng(1)
    smoother = MaskSmoother(0.6)
    raw, smooth = [], []
    frame, _ = scene()
    for _ in range(30):
        # The model's border wobbles by a pixel or two at the frame's size from frame to frame.
        _, truth = scene(dx=float(rng.uniform(-2.5, 2.5)))
        m = coarse(truth)
        raw.append(m)
        smooth.append(smoother(m, frame))

    def flicker(seq: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(seq[5:])]))

    assert flicker(smooth) < 0.5 * flicker(raw)
    assert smoother.cuts == 0


def test_the_ema_resets_on_a_cut_and_does_not_touch_its_input() -> None:
    smoother = MaskSmoother(0.8)
    frame, truth = scene()
    m = coarse(truth)
    smoother(m, frame)
    empty = np.zeros_like(m)
    blended = smoother(empty, frame)
    assert 0 < blended.max() < 1  # history carried over
    other = np.full_like(frame, 250)  # a new shot: a white frame
    after_cut = smoother(empty, other)
    np.testing.assert_array_equal(after_cut, empty)
    assert smoother.cuts == 1
    after_cut[:] = 1  # the caller's copy: the smoother's history must not change
    assert smoother(empty, other).max() == 0
    with pytest.raises(ValueError, match=r"1\.0"):
        MaskSmoother(1.0)


def test_masker_gives_a_frame_sized_mask() -> None:
    frame, truth = scene()
    masker = PersonMasker(lambda f: coarse(scene()[1]), smoothing=0.5)
    mask = masker(frame)
    assert mask.shape == (H, W) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert float(np.abs(mask - truth)[~edge_band(truth, 12)].max()) < 0.1


class CountingSegmenter:
    """A real (tiny) segmenter: the bright figure of :func:`scene` by a threshold, at the
    model's coarse size; it counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return coarse((frame[..., 0] > 130).astype(np.float32))


def test_the_model_runs_on_every_nth_frame_only() -> None:
    for every, expected in ((1, [1, 2, 3, 4, 5, 6, 7]), (3, [1, 1, 1, 2, 2, 2, 3])):
        segment = CountingSegmenter()
        masker = PersonMasker(segment, model_every=every)
        calls = []
        for i in range(7):
            frame, truth = scene(dx=float(i))
            mask = masker(frame)
            calls.append(segment.calls)
            # Carried or not, every frame gets a full, decided mask.
            assert mask.shape == (H, W) and float(np.abs(mask - truth)[~edge_band(truth, 16)].max()) < 0.1
        assert calls == expected, every
        assert masker.model_runs == expected[-1]
    with pytest.raises(ValueError, match="model_every"):
        PersonMasker(CountingSegmenter(), model_every=0)


def test_a_cut_a_reset_or_a_lost_flow_runs_the_model() -> None:
    segment = CountingSegmenter()
    masker = PersonMasker(segment, model_every=5)
    frame, _ = scene()
    masker(frame)
    masker(frame)
    assert segment.calls == 1  # the second frame carried the first's mask
    dark = np.full_like(frame, 5)  # a new shot, with nobody in it
    assert masker(dark).max() == 0.0  # the old figure does not linger over it
    assert segment.calls == 2 and masker.smoother.cuts == 1
    masker(dark)
    assert segment.calls == 2
    masker.reset()
    masker(frame)
    assert segment.calls == 3
    masker(frame, lambda: None)  # the flow smoother found no flow (its own cut test)
    assert segment.calls == 4


def test_the_carried_mask_follows_a_moving_figure_along_the_flow() -> None:
    step = 4.0  # px per frame at the frame's size, to the right
    flow = np.zeros((*SMALL, 2), np.float32)
    flow[..., 0] = -step * SMALL[1] / W  # backward, in pixels of the flow's own (small) size
    valid = np.ones(SMALL, np.float32)
    errors: dict[str, list[float]] = {"flow": [], "held": []}
    for name in errors:
        masker = PersonMasker(CountingSegmenter(), model_every=4)
        for i in range(4):  # the model runs on frame 0 only
            frame, truth = scene(dx=step * i)
            mask = masker(frame, (lambda: (flow, valid)) if name == "flow" and i else None)
            errors[name].append(float(np.abs(mask - truth).mean()))
    # Held, the mask lags 4, 8, 12 px behind; along the flow it stays on the figure
    # (what is left is the coarse model's own edge error, as on the model's frame).
    assert errors["held"][3] > 2 * errors["held"][1] > 0
    assert max(errors["flow"][1:]) < 1.5 * errors["flow"][0]
    assert errors["flow"][3] < 0.5 * errors["held"][3], errors


def test_refine_mask_stays_close_to_the_full_size_chain() -> None:
    frame, truth = scene()
    small = coarse(truth)
    full = feather(guided_upsample(small, guide_gray(frame)), 1.5)  # the chain refine_mask replaced
    fast = refine_mask(small, frame)
    assert fast.shape == (H, W) and fast.dtype == np.float32
    ramp = (full > 0.01) & (full < 0.99)
    assert ramp.sum() > 500
    assert float(np.abs(fast - full)[ramp].mean()) < 0.01
    assert float(np.abs(fast - full).max()) < 0.1
    # Still edge-following: as close to the true edge as the full-size chain, closer than bilinear.
    band = edge_band(truth)
    err_fast, err_full = np.abs(fast - truth)[band].mean(), np.abs(full - truth)[band].mean()
    assert err_fast < 1.05 * err_full < np.abs(feather(bilinear_upsample(small, (H, W)), 1.5) - truth)[band].mean()
    # Snapped: within half a grey level of 0 or 1 is exactly that, so the unstyled region stays bit-exact.
    snap = 0.5 / 255
    assert not np.any((fast > 0) & (fast < snap)) and not np.any((fast < 1) & (fast > 1 - snap))
    far = ~edge_band(truth, 12)
    assert float(np.mean(fast[far] == truth[far])) > 0.9
    # A frame too small to halve (the fit would be coarser than half of it) is refined at full size.
    tiny_frame = cv2.resize(frame, (96, 72), interpolation=cv2.INTER_AREA)
    tiny_full = feather(guided_upsample(small, guide_gray(tiny_frame)), 1.5)
    assert float(np.abs(refine_mask(small, tiny_frame) - tiny_full).max()) < 0.01


def bright_face_by_door() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A call's proportions (640x360, the landscape model's 256x144 map): a textured bright
    face (grey 150-210) before a white door (200). Returns the true mask (bool), the
    frame (uint8 BGR) and the model's small map (the truth area-averaged)."""
    h, w = 360, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = ((xx - w / 2) / 110) ** 2 + ((yy - h / 2 - 30) / 150) ** 2 < 1.0
    gray = np.where(inside, 180 + 30 * np.sin(xx / 6) * np.sin(yy / 9), 200.0)
    frame = np.repeat(gray[..., None], 3, axis=2).astype(np.uint8)
    return inside, frame, cv2.resize(inside.astype(np.float32), (256, 144), interpolation=cv2.INTER_AREA)


def test_the_models_sure_interior_is_held_where_a_bright_room_meets_bright_skin() -> None:
    # The guided filter's fit across the border reads "brighter is room", so the face's
    # highlights fall below 1 far inside, where the model was sure.
    inside, frame, small = bright_face_by_door()
    deep = cv2.erode(inside.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)  # >= 10 px in
    room = ~cv2.dilate(inside.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    free = refine_mask(small, frame)
    held = refine_mask(small, frame, hold=HOLD)
    assert float(np.mean(free[deep] < 0.97)) > 0.1  # the filter alone paints a tenth of the face
    assert held[deep].min() == 1.0
    np.testing.assert_array_equal(held[room], free[room])  # the room is the filter's, as before
    assert float(np.abs(held - inside).mean()) < float(np.abs(free - inside).mean())
    # The masker holds by default; hold=None does not.
    assert PersonMasker(lambda f: small, smoothing=0.0)(frame)[deep].min() == 1.0
    assert PersonMasker(lambda f: small, smoothing=0.0, hold=None)(frame)[deep].min() < 0.97
    # hold_confident never lowers a mask, and holds nothing where the model is unsure.
    unsure = np.full_like(small, 0.9)
    np.testing.assert_array_equal(hold_confident(free, unsure), free)
    assert np.all(hold_confident(free, small) >= free)


def test_the_models_sure_exterior_is_released_where_bright_skin_meets_a_bright_room() -> None:
    # The outward twin: the same fit carries the face's mask out onto a white door, so a
    # band of room beside the jaw would stay unpainted.
    inside, frame, small = bright_face_by_door()
    room = ~cv2.dilate(inside.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)  # >= 6 px out
    free = refine_mask(small, frame, hold=HOLD)
    released = refine_mask(small, frame, hold=HOLD, release=RELEASE)
    assert free[room].max() > 0.3  # the filter alone leaves a light band of room unpainted
    assert released[room].max() < 0.1
    assert float(released[room].mean()) < 0.05 * float(free[room].mean())
    band = edge_band(inside.astype(np.float32))
    assert np.abs(released - inside)[band].mean() < np.abs(free - inside)[band].mean()
    # release_confident never raises a mask, and releases nothing where the model is unsure.
    unsure = np.full_like(small, 0.1)
    np.testing.assert_array_equal(release_confident(free, unsure), free)
    assert np.all(release_confident(free, small) <= free)
    # The masker releases by default; release=None is the filter (and the hold) alone.
    assert PersonMasker(lambda f: small, smoothing=0.0)(frame)[room].max() < 0.1
    assert PersonMasker(lambda f: small, smoothing=0.0, release=None)(frame)[room].max() > 0.3


def test_area_shrink_averages_like_inter_area() -> None:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    smooth = np.stack([xx / W * 200, yy / H * 200, (xx + yy) / (H + W) * 200], axis=2).astype(np.uint8)
    textured, _ = scene()
    for size in ((64, 36), (32, 18), (100, 80), (W, H)):
        fast = area_shrink(smooth, size).astype(np.float32)
        ref = cv2.resize(smooth, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        assert fast.shape == ref.shape
        assert float(np.abs(fast - ref).mean()) < 1.0  # under a grey level on average
        # On texture the footprints differ a little, but it is still an average (no aliasing bias).
        assert abs(float(area_shrink(textured, size).mean()) - float(textured.mean())) < 1.0


# --- compositing ---------------------------------------------------------------------


def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    original, truth = scene()
    stylized = np.random.default_rng(2).integers(0, 256, original.shape, dtype=np.uint8)
    return original, stylized, feather(truth, 1.5)


def test_region_background_keeps_the_person_exactly() -> None:
    original, stylized, mask = _pair()
    out = composite(original, stylized, mask, "background")
    person, room = mask == 1.0, mask == 0.0
    assert person.sum() > 1000 and room.sum() > 1000
    np.testing.assert_array_equal(out[person], original[person])
    np.testing.assert_array_equal(out[room], stylized[room])
    edge = (mask > 0.2) & (mask < 0.8)
    assert edge.any()
    lo = np.minimum(original, stylized)[edge]
    hi = np.maximum(original, stylized)[edge]
    assert np.all((out[edge] >= lo) & (out[edge] <= hi))  # a blend, not an overshoot


def test_region_person_and_all() -> None:
    original, stylized, mask = _pair()
    out = composite(original, stylized, mask, "person")
    np.testing.assert_array_equal(out[mask == 1.0], stylized[mask == 1.0])
    np.testing.assert_array_equal(out[mask == 0.0], original[mask == 0.0])
    assert composite(original, stylized, mask, "all") is stylized
    with pytest.raises(ValueError, match="'face'"):
        composite(original, stylized, mask, "face")
    with pytest.raises(ValueError, match="mask"):
        composite(original, stylized, mask[:10], "person")


def test_tensors_composite_like_arrays() -> None:
    original, stylized, mask = _pair()

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).float() / 255

    out = composite(t(original), t(stylized), mask, "background")
    expected = composite(original.astype(np.float32) / 255, stylized.astype(np.float32) / 255, mask, "background")
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    person = mask == 1.0  # exact for float frames too, on both paths
    np.testing.assert_array_equal(expected[person], original[person].astype(np.float32) / 255)
    np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy()[person], original[person].astype(np.float32) / 255)
    # A tensor mask works too, and uint8 tensors are rounded like uint8 arrays.
    u8 = composite(
        t(original).mul(255).round().byte(), t(stylized).mul(255).round().byte(), torch.from_numpy(mask), "person"
    )
    np.testing.assert_array_equal(u8[0].permute(1, 2, 0).numpy(), composite(original, stylized, mask, "person"))


def test_two_styles_and_alpha() -> None:
    _, person_style, mask = _pair()
    room_style = 255 - person_style
    out = composite_styles(person_style, room_style, mask)
    np.testing.assert_array_equal(out[mask == 1.0], person_style[mask == 1.0])
    np.testing.assert_array_equal(out[mask == 0.0], room_style[mask == 0.0])
    rgba = to_rgba(person_style, mask)
    assert rgba.shape == (H, W, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., :3], person_style)
    assert set(np.unique(rgba[..., 3][mask == 1.0])) == {255}
    assert set(np.unique(rgba[..., 3][mask == 0.0])) == {0}
    with pytest.raises(ValueError, match="uint8"):
        to_rgba(person_style.astype(np.float32), mask)


# --- the worker thread -----------------------------------------------------------------


@pytest.mark.usefixtures("no_threads_left")
def test_worker_returns_masks_in_order_on_its_own_thread() -> None:
    threads: set[str] = set()

    def masker(frame: np.ndarray) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return np.full(frame.shape[:2], float(frame[0, 0, 0]), np.float32)

    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(6)]
    got = []
    with MaskWorker(masker, max_pending=2) as worker:
        worker.submit(frames[0])
        for i in range(1, len(frames)):
            worker.submit(frames[i])  # one ahead, as the pipeline does
            got.append(worker.result(timeout=5)[0, 0])
        got.append(worker.result(timeout=5)[0, 0])
        assert worker.pending == 0
    assert got == list(range(6))
    assert threads and all(name.startswith("person-mask") for name in threads)


@pytest.mark.usefixtures("no_threads_left")
def test_worker_bounds_its_queue_and_passes_errors_on() -> None:
    def failing(frame: np.ndarray) -> np.ndarray:
        raise InputError("bad frame")

    frame = np.zeros((4, 4, 3), np.uint8)
    worker = MaskWorker(failing, max_pending=1)
    with pytest.raises(RuntimeError, match="no frame"):
        worker.result()
    worker.submit(frame)
    with pytest.raises(RuntimeError, match="max_pending=1"):
        worker.submit(frame)
    with pytest.raises(InputError, match="bad frame"):
        worker.result(timeout=5)
    worker.submit(frame)  # left uncollected: close drops it and ends the thread
    worker.close()
    assert worker.pending == 0


# --- finding the model -------------------------------------------------------------------


@pytest.fixture
def no_model_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(model_mod, "_from_mediapipe", lambda spec: None)
    return tmp_path


def _spec_for(path: Path, sha256: str | None = None) -> SegmentationModel:
    digest = sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    return SegmentationModel("landscape", "selfie_segmentation_landscape.tflite", (144, 256), path.as_uri(), digest)


def test_missing_model_is_a_one_line_error_saying_how_to_get_it(no_model_anywhere: Path) -> None:
    with pytest.raises(DependencyError) as info:
        find_model(download=False)
    msg = str(info.value)
    assert "\n" not in msg and MODEL_ENV in msg and "storage.googleapis.com" in msg
    with pytest.raises(InputError, match=r"nowhere\.tflite"):
        find_model(path=no_model_anywhere / "nowhere.tflite")
    with pytest.raises(InputError, match="'huge'"):
        find_model("huge")


def test_download_is_checked_and_cached(no_model_anywhere: Path) -> None:
    source = no_model_anywhere / "published.tflite"
    source.write_bytes(b"model bytes")
    got = find_model(spec=_spec_for(source))
    assert got.parent == no_model_anywhere / "cache" / "stylize-video" / "models"
    assert got.read_bytes() == b"model bytes"
    source.unlink()  # the second call uses the cache, not the network
    assert find_model(spec=_spec_for(got)) == got


def test_an_installed_mediapipe_wheel_provides_the_file(
    monkeypatch: pytest.MonkeyPatch, no_model_anywhere: Path
) -> None:
    monkeypatch.undo()  # the real lookup, against a stand-in package on sys.path
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_model_anywhere / "cache"))
    folder = no_model_anywhere / "site" / "mediapipe" / "modules" / "selfie_segmentation"
    folder.mkdir(parents=True)
    (folder.parents[1] / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (folder / "selfie_segmentation_landscape.tflite").write_bytes(b"weights")
    monkeypatch.syspath_prepend(str(no_model_anywhere / "site"))
    assert find_model(download=False) == folder / "selfie_segmentation_landscape.tflite"


def test_a_corrupt_or_failed_download_leaves_nothing(no_model_anywhere: Path) -> None:
    source = no_model_anywhere / "published.tflite"
    source.write_bytes(b"tampered")
    with pytest.raises(DependencyError, match="SHA-256"):
        find_model(spec=_spec_for(source, sha256="0" * 64))
    cache = no_model_anywhere / "cache" / "stylize-video" / "models"
    assert not cache.exists() or list(cache.iterdir()) == []
    with pytest.raises(DependencyError, match="could not download"):
        find_model(spec=_spec_for(no_model_anywhere / "absent.tflite", sha256="0" * 64))


def test_a_file_that_is_not_a_model_is_an_input_error(no_model_anywhere: Path) -> None:
    bad = no_model_anywhere / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(InputError, match=r"bad\.tflite") as info:
        PersonSegmenter(path=bad)
    assert isinstance(info.value, StylizeError) and "\n" not in str(info.value)


# --- the real model (where its file is at hand) ---------------------------------------------


def _real_model() -> Path:
    try:
        return find_model(download=False)
    except StylizeError as exc:
        pytest.skip(f"no person model file here ({exc}); set {MODEL_ENV} to selfie_segmentation_landscape.tflite")


def test_real_model_gives_a_probability_map() -> None:
    path = _real_model()
    seg = PersonSegmenter(path=path)
    frame, _ = scene()
    small = seg(frame)
    assert small.shape == seg.input_size == (144, 256) and small.dtype == np.float32
    assert small.min() >= 0.0 and small.max() <= 1.0
    # A flat grey wall has nobody in it.
    assert float(seg(np.full((H, W, 3), 128, np.uint8)).mean()) < 0.1
    mask = PersonMasker(seg)(frame)
    assert mask.shape == (H, W)
