"""Issue 18's talking-head goal: ``--region background`` keeps the face, paints the room, and its border holds still.

Run: ``python -m benchmarks.person_face [--photos A.jpg B.jpg ...] [--frames 60] [--face-model PATH]``.

No talking-head video is at hand, so each clip is **a real portrait photo in simulated
motion, not a video**: the photo framed at 640x480 and moved the way a head and a
hand-held camera move on a call (a few pixels of sway, +-3% zoom, +-2 degrees of
roll, +-4% brightness drift, all smooth), ``--frames`` frames at 30 fps. Each clip
goes through the library's real path, frame by frame through
:meth:`~stylize_video.runtime.pipeline.Pipeline.process`: the ``starry-night-lite``
:class:`~stylize_video.runtime.stylizer.Stylizer` with the
:class:`~stylize_video.runtime.region.RegionStage` and person masker that
``stylize-video run --region background`` builds (``masker_factory``), with
``--smooth none`` and ``--smooth flow``; the same pipeline without the region stage
gives the fully stylized reference.

Figures per clip and smoothing:

* **face**: mean and 95th percentile of the absolute difference (grey levels 0-255,
  every channel) between output and input inside the face box, found in every input
  frame by MediaPipe's BlazeFace short-range detector and shrunk by 10% of its size on
  each side to stay off the hairline; the same within the ellipse inscribed in that
  box (the box's lower corners are jaw line, neck and room, where the mask rightly
  falls off); the fully stylized frame's difference in the box as the reference. (OpenCV 5 no longer has the Haar cascades' ``CascadeClassifier``.)
* **background**: where the person mask is below 0.01, the share of the fully stylized
  frame's change (sum of absolute differences from the input) that the output keeps.
* **border**: the warping error (Lai et al. 2018, :mod:`stylize_video.metrics.temporal`)
  of the output inside the mask's edge band (4 px either side of its 0.5 contour,
  :func:`benchmarks.person_mask.edge_band`) against the fully stylized frame's error in
  the same pixels, and in the background's interior (farther than 12 px outside the
  contour).

Models, found without downloading anything: the person model as the library finds it
(``--model``, ``$STYLIZE_VIDEO_PERSON_MODEL``, a mediapipe wheel, the cache); the face
detector from ``--face-model``, ``$STYLIZE_VIDEO_FACE_MODEL`` or an installed
mediapipe package (``face_detection_short_range.tflite``; the mediapipe 0.10.14 wheel
carries it under ``mediapipe/modules/face_detection/``). Without either, or without the
photos, the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from benchmarks.harness import Column, Section, command_line, machine_info, write_results
from benchmarks.person_mask import band_warping_error, edge_band
from stylize_video.errors import StylizeError
from stylize_video.io.base import Frame, Source

PHOTOS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
#: Portraits with one clear frontal face (checked by eye and by the detector).
DEFAULT_PHOTOS = (
    "pypi_bundled_skimage_astronaut.jpg",
    "pypi_bundled_matplotlib_grace_hopper.jpg",
    "deep_photo_styletransfer_in11.jpg",
    "imagenet_sample_1000_n03763968_military_uniform.jpg",
    "imagenet_sample_1000_n04584207_wig.jpg",
)
FACE_MODEL_ENV = "STYLIZE_VIDEO_FACE_MODEL"
FACE_MODEL_NAME = "face_detection_short_range.tflite"
SIZE = (480, 640)  # (H, W) of the simulated call
FPS = 30.0
STYLE = "starry-night-lite"


# ------------------------------------------------------------------ face boxes


def find_face_model(path: str | None) -> Path | None:
    """The BlazeFace short-range model: ``path``, ``$STYLIZE_VIDEO_FACE_MODEL``, or an installed mediapipe."""
    for candidate in (path, os.environ.get(FACE_MODEL_ENV)):
        if candidate:
            return Path(candidate) if Path(candidate).is_file() else None
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.origin is not None:
        found = Path(spec.origin).parent / "modules" / "face_detection" / FACE_MODEL_NAME
        if found.is_file():
            return found
    return None


def _anchors() -> np.ndarray:
    """BlazeFace short-range anchor centres (896, 2) in 0..1: 2 per cell of a 16x16 grid, then 6 per cell of 8x8."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                centres += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.asarray(centres, np.float32)


class FaceDetector:
    """The most confident face in a frame, by MediaPipe's BlazeFace (short range) run by OpenCV's DNN.

    Args:
        path: the ``face_detection_short_range.tflite`` file.
        min_score: below this confidence (0..1) no face is reported.
    """

    INPUT = 128

    def __init__(self, path: Path, min_score: float = 0.5) -> None:
        self._net = cv2.dnn.readNet(str(path))
        self._anchors = _anchors()
        self.min_score = min_score

    def __call__(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) of the face in ``frame`` (uint8 HxWx3 BGR), or None."""
        h, w = frame.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)  # padded, not squeezed: the net expects true proportions
        square[:h, :w] = frame
        small = cv2.resize(square, (self.INPUT, self.INPUT), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        # OpenCV's TFLite importer takes NCHW and transposes for the NHWC graph itself.
        self._net.setInput(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None])
        reg, cls = self._net.forward(["regressors", "classificators"])
        logits = cls.reshape(-1)
        best = int(np.argmax(logits))
        if 1.0 / (1.0 + math.exp(-float(np.clip(logits[best], -50, 50)))) < self.min_score:
            return None
        dx, dy, bw, bh = reg.reshape(-1, 16)[best, :4] / self.INPUT
        cx, cy = self._anchors[best] + (dx, dy)
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) * side
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _oval(h: int, w: int) -> np.ndarray:
    """The ellipse inscribed in an h x w box, as a boolean mask (a face is an oval; a box's corners are neck and room)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy + 0.5 - h / 2) / (h / 2)) ** 2 + ((xx + 0.5 - w / 2) / (w / 2)) ** 2 <= 1.0


def shrink(box: tuple[int, int, int, int], share: float = 0.1) -> tuple[int, int, int, int]:
    """``box`` with ``share`` of its width/height taken off each side."""
    x0, y0, x1, y1 = box
    dx, dy = round((x1 - x0) * share), round((y1 - y0) * share)
    return x0 + dx, y0 + dy, x1 - dx, y1 - dy


# ------------------------------------------------------------------ the simulated call


def talking_head(photo: np.ndarray, face: tuple[int, int, int, int], frames: int) -> list[np.ndarray]:
    """The photo as a ``frames``-frame 640x480 call: framed on the face, swaying, zooming, rolling, brightness drifting.

    Every motion is a slow sine with its own period (1-2 s), so consecutive frames move
    by a pixel or two, as a head on a call does.
    """
    h, w = SIZE
    ph, pw = photo.shape[:2]
    # Cover the frame with 8% to spare for the motion; keep the face centred where the photo allows.
    s0 = max(w / pw, h / ph) * 1.08
    fx, fy = (face[0] + face[2]) / 2 * s0, (face[1] + face[3]) / 2 * s0
    ox = float(np.clip(fx - w / 2, 0, pw * s0 - w))
    oy = float(np.clip(fy - h * 0.45, 0, ph * s0 - h))
    base = np.array([[s0, 0, -ox], [0, s0, -oy], [0, 0, 1]], np.float64)
    out = []
    for t in range(frames):
        tau = 2 * math.pi * t / FPS
        motion = cv2.getRotationMatrix2D(
            (w / 2, h / 2), 2.0 * math.sin(tau / 1.1), 1.0 + 0.03 * math.sin(tau / 1.7 + 1.0)
        )
        motion[0, 2] += 10.0 * math.sin(tau / 1.3)
        motion[1, 2] += 5.0 * math.sin(tau / 0.9 + 0.5)
        m = np.vstack([motion, [0, 0, 1]]) @ base
        frame = cv2.warpAffine(photo, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        gain = 1.0 + 0.04 * math.sin(tau / 2.0)
        out.append(cv2.convertScaleAbs(frame, alpha=gain))
    return out


class _Clip(Source):
    """The simulated frames as a file-like source (timestamps at 30 fps)."""

    fps = FPS

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self.frames = frames

    def __iter__(self) -> Any:
        return (Frame(f, i, time=i / FPS) for i, f in enumerate(self.frames))

    def close(self) -> None:
        pass


def run_path(
    frames: Sequence[np.ndarray], stylizer: Any, smooth: str, region: str
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The frames through the pipeline as ``stylize-video run --smooth SMOOTH --region REGION`` sets it up.

    Returns the outputs and each frame's person mask (None with ``region="all"``).
    """
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.region import RegionStage, masker_factory
    from stylize_video.runtime.smoothing import make_smoother

    smoother = None if smooth == "none" else make_smoother(smooth, None)
    stage = RegionStage(masker_factory(None), region) if region != "all" else None
    if stage is not None:
        stage.load()
    source = _Clip(frames)
    pipeline = Pipeline(source, stylizer, [], smoother=smoother, smoothing=smoother is not None, region=stage)
    outputs: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    try:
        for frame in source:
            outputs.append(pipeline.process(frame).image)
            masks.append(None if stage is None else stage.mask())
    finally:
        if stage is not None:
            stage.close()
        close = getattr(smoother, "close", None)
        if close is not None:
            close()
    return outputs, masks


# ------------------------------------------------------------------ figures


def score(
    video: Sequence[np.ndarray],
    output: Sequence[np.ndarray],
    full: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    faces: Sequence[tuple[int, int, int, int] | None],
) -> dict[str, Any]:
    """Face fidelity, background stylization and border steadiness of one run (see the module docstring)."""
    from stylize_video.metrics.temporal import InputMotion

    face_out: list[np.ndarray] = []
    face_oval: list[np.ndarray] = []
    face_full: list[np.ndarray] = []
    face_mask: list[float] = []
    kept = changed = bg_pixels = 0.0
    for frame, out, ref, mask, face in zip(video, output, full, masks, faces, strict=True):
        assert mask is not None
        src = frame.astype(np.int16)
        if face is not None:
            x0, y0, x1, y1 = shrink(face)
            diff = np.abs(out[y0:y1, x0:x1].astype(np.int16) - src[y0:y1, x0:x1])
            face_out.append(diff.ravel())
            face_oval.append(diff[_oval(y1 - y0, x1 - x0)].ravel())
            face_full.append(np.abs(ref[y0:y1, x0:x1].astype(np.int16) - src[y0:y1, x0:x1]).ravel())
            face_mask.append(float(mask[y0:y1, x0:x1].mean()))
        bg = mask < 0.01
        kept += float(np.abs(out[bg].astype(np.int16) - src[bg]).sum())
        changed += float(np.abs(ref[bg].astype(np.int16) - src[bg]).sum())
        bg_pixels += float(bg.mean())
    motion = InputMotion()
    band_out: list[float] = []
    band_full: list[float] = []
    interior_full: list[float] = []
    for i, frame in enumerate(video):
        field = motion.update(frame)
        mask = masks[i]
        if field is None or mask is None:
            continue
        band, interior = edge_band(mask)
        valid = field.mask(frame.shape[:2])[0, 0].numpy()
        a = band_warping_error(output[i], output[i - 1], field, valid * band)
        b = band_warping_error(full[i], full[i - 1], field, valid * band)
        if a is not None and b is not None:
            band_out.append(a)
            band_full.append(b)
        c = band_warping_error(full[i], full[i - 1], field, valid * interior)
        if c is not None:
            interior_full.append(c)
    diffs = np.concatenate(face_out) if face_out else np.zeros(1)
    oval = np.concatenate(face_oval) if face_oval else np.zeros(1)
    ref_diffs = np.concatenate(face_full) if face_full else np.zeros(1)
    return {
        "frames with a face": len(face_out),
        "face |out-in| mean": float(diffs.mean()),
        "face |out-in| p95": float(np.percentile(diffs, 95)),
        "face |out-in| max": int(diffs.max()),
        "face oval |out-in| mean": float(oval.mean()),
        "face oval |out-in| p95": float(np.percentile(oval, 95)),
        "face |full-in| mean": float(ref_diffs.mean()),
        "face mask mean": float(np.mean(face_mask)) if face_mask else float("nan"),
        "background share": bg_pixels / len(video),
        "background stylization kept": kept / changed if changed else float("nan"),
        "pairs scored": len(band_out),
        "band warping error x1e3": 1e3 * float(np.mean(band_out)) if band_out else float("nan"),
        "full band warping error x1e3": 1e3 * float(np.mean(band_full)) if band_full else float("nan"),
        "band / full": float(np.mean(band_out) / np.mean(band_full)) if band_out else float("nan"),
        "full interior warping error x1e3": 1e3 * float(np.mean(interior_full)) if interior_full else float("nan"),
    }


COLUMNS = [
    Column("photo"),
    Column("smooth"),
    Column("frames with a face", "face frames"),
    Column("face |out-in| mean", "face diff mean (0-255)", ".2f"),
    Column("face |out-in| p95", "face diff p95", ".1f"),
    Column("face oval |out-in| mean", "oval in the box: mean", ".2f"),
    Column("face oval |out-in| p95", "oval: p95", ".1f"),
    Column("face |full-in| mean", "fully stylized face diff mean", ".1f"),
    Column("face mask mean", "mask in face box", ".3f"),
    Column("background share", "mask < 0.01 share", ".0%"),
    Column("background stylization kept", "stylization kept there", ".1%"),
    Column("band warping error x1e3", "border band warping error x1e3", ".3f"),
    Column("full band warping error x1e3", "fully stylized, same band x1e3", ".3f"),
    Column("band / full", "ratio", ".2f"),
    Column("full interior warping error x1e3", "fully stylized background interior x1e3", ".3f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, help="portrait photos (default: five in --photos-dir)")
    parser.add_argument("--photos-dir", type=Path, default=PHOTOS_DIR, help="where the default photos are")
    parser.add_argument("--frames", type=int, default=60, help="frames per simulated clip")
    parser.add_argument("--model", help="the person model .tflite (default: found as the library finds it)")
    parser.add_argument("--face-model", help=f"BlazeFace {FACE_MODEL_NAME} (default: ${FACE_MODEL_ENV}, mediapipe)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)

    photos = args.photos or [args.photos_dir / name for name in DEFAULT_PHOTOS]
    missing = [str(p) for p in photos if not Path(p).is_file()]
    if missing:
        print(f"person_face: skipped, photos not found: {', '.join(missing)} (../shared missing?)")
        return 0
    face_model = find_face_model(args.face_model)
    if face_model is None:
        print(
            f"person_face: skipped, no {FACE_MODEL_NAME}: pass --face-model or set ${FACE_MODEL_ENV} "
            "(the mediapipe 0.10.14 wheel has it under mediapipe/modules/face_detection/)"
        )
        return 0
    from stylize_video.person import PersonSegmenter

    if args.model:
        os.environ["STYLIZE_VIDEO_PERSON_MODEL"] = args.model  # masker_factory finds it as `run` does
    try:
        person_model = PersonSegmenter(download=False).model_path
    except StylizeError as exc:
        print(f"person_face: skipped, no person model: {exc}")
        return 0

    from stylize_video.runtime.stylizer import Stylizer

    torch.set_num_threads(args.threads)
    machine = machine_info(torch.device("cpu"))
    detector = FaceDetector(face_model)
    stylizer = Stylizer(STYLE, device="cpu")
    rows: list[dict[str, Any]] = []
    for path in photos:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            print(f"{path.name}: not a readable image, skipped", file=sys.stderr)
            continue
        face = detector(photo)
        if face is None:
            print(f"{path.name}: no face found, skipped", file=sys.stderr)
            continue
        video = talking_head(photo, face, args.frames)
        faces = [detector(f) for f in video]
        for smooth in ("none", "flow"):
            full, _ = run_path(video, stylizer, smooth, "all")
            output, masks = run_path(video, stylizer, smooth, "background")
            row = {"photo": path.name, "smooth": smooth, **score(video, output, full, masks, faces)}
            rows.append(row)
            print(
                f"{path.name} --smooth {smooth}: face {row['face |out-in| mean']:.2f} mean / "
                f"{row['face |out-in| p95']:.1f} p95 grey levels, background kept "
                f"{row['background stylization kept']:.1%}, border {row['band / full']:.2f}x the stylized frame's",
                flush=True,
            )
    if not rows:
        print("person_face: no photo with a face")
        return 1
    text = (
        f"Each clip is a real portrait photo in simulated motion (not a video): {args.frames} frames of "
        f"{SIZE[1]}x{SIZE[0]} at {FPS:g} fps, +-10/5 px sway, +-3% zoom, +-2 degrees roll, +-4% brightness, "
        f"through Pipeline.process with {STYLE} and the RegionStage of `run --region background`."
    )
    _, md, _ = write_results(
        "person_face",
        machine,
        [Section("--region background on a portrait in simulated motion", rows, COLUMNS, text)],
        out_dir=args.out,
        config={
            "command": command_line("person_face", argv),
            "frames": args.frames,
            "style": STYLE,
            "person model": str(person_model),
            "face model": str(face_model),
        },
        notes=[
            "Face box: BlazeFace short range on every input frame, 10% of its size off each side; "
            "differences over every channel, 0-255. Oval: the ellipse inscribed in that box.",
            "Stylization kept: sum |output - input| / sum |fully stylized - input| where the mask < 0.01.",
            "Border: warping error (Lai et al. 2018) within 4 px of the mask's 0.5 contour, non-occluded pixels, "
            "same pixels for the output and the fully stylized frame (same smoothing); ratio <= 1 meets the goal.",
        ],
    )
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
