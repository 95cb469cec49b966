"""Cost of the person mask, against a lite style frame, and its border's steadiness on a real clip.

Run: ``python -m benchmarks.person_mask [--model PATH] [--clip VIDEO] [--frames N]``.
The model file is found as the library finds it (``STYLIZE_VIDEO_PERSON_MODEL``, a
mediapipe wheel, the cache; ``--model`` wins); nothing is downloaded.

1. **Cost** per 640x480 and 1280x720 frame: the model (resize + net), the
   refinement (EMA + guided upsampling + feathering: :func:`~stylize_video.person.refine_mask`
   and, for comparison, the full-size chain it replaced) and the whole masker per
   frame with the model on every frame, every 2nd and every 3rd (the others carry
   the mask); medians over interleaved rounds, so load drifting on a shared machine
   hits every row alike. Against ``starry-night-lite`` on a 640x480 frame on the
   default backend, alone and with the mask computed beside it on
   :class:`~stylize_video.person.MaskWorker`'s thread: the mask's share of a lite
   frame serially, and the extra wall time overlapped, which is what issue 18's goal
   (<= 15% of a lite frame) is about.
2. **Steadiness** on a clip with people: the warping error (Lai et al. 2018, as in
   :mod:`stylize_video.metrics.temporal`) of ``--region background`` output inside
   the mask's edge band, against the same error over the fully stylized background;
   for the refined mask and for the raw model output upsampled bilinearly. With
   ``--smooth flow`` (the pipeline's flow smoother on the stylized frames), the mask's
   history either as an EMA or warped along the flow smoother's own flow (what the
   pipeline does then); and the warping error of the mask itself in its edge band
   (0..1 scale squared), the border's flicker with no style in the way. The refined
   masks run the model on every ``--model-every``-th frame (the library's default);
   how far they depart from masks with the model on every frame, in the edge band,
   is the accuracy that carrying costs.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from stylize_video.person import (
    MODEL_EVERY,
    MaskWorker,
    PersonMasker,
    PersonSegmenter,
    bilinear_upsample,
    composite,
    feather,
    guide_gray,
    guided_upsample,
)

if TYPE_CHECKING:
    from stylize_video.metrics.temporal import WarpField

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "videos" / "moviepy_chaplin.mp4"
SIZES = ((480, 640), (720, 1280))


def _frame(h: int, w: int) -> np.ndarray:
    """A photo-like test frame: smooth colour gradients and a bright figure."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 23 + yy / 31)], axis=2) * 200
    img[((xx - w / 2) / (w / 6)) ** 2 + ((yy - h * 0.6) / (h / 2.5)) ** 2 < 1] = (180, 170, 200)
    return img.astype(np.uint8)


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 2)


def cost(seg: PersonSegmenter, rounds: int, reps: int, everies: tuple[int, ...] = (1, 2, 3)) -> dict[str, object]:
    """Median ms per frame of each stage, and the mask against a lite frame, over interleaved rounds.

    A masker that runs the model on every n-th frame is timed over whole cycles of n
    frames (the model frame and the carried ones) and divided by n: its mean cost
    per frame, which is what throughput pays. The lite frame runs on the default
    backend (``auto``), alone and with the mask on :class:`MaskWorker`'s thread, both
    per cycle too; the ratios pair the rows within each round.
    """
    from stylize_video.runtime.stylizer import Stylizer

    stylizer = Stylizer("starry-night-lite", device="cpu")
    frames = {f"{w}x{h}": _frame(h, w) for h, w in SIZES}
    vga = frames["640x480"]

    def refine_old(name: str) -> Callable[[], object]:
        # The full-size chain the masker ran before refine_mask (and the EMA), on a fixed model output.
        small, frame, m = seg(frames[name]), frames[name], PersonMasker(seg)
        return lambda: feather(
            guided_upsample(
                m.smoother(small, frame), guide_gray(frame), radius=m.radius, eps=m.eps, work_side=m.work_side
            ),
            m.feather_sigma,
        )

    def refine_new(name: str) -> Callable[[], object]:
        small, frame, m = seg(frames[name]), frames[name], PersonMasker(seg)
        return lambda: m.refine(m.smoother(small, frame), frame)

    def cycle(fn: Callable[[], object], n: int) -> Callable[[], object]:
        def run() -> None:
            for _ in range(n):
                fn()

        return run

    # (job, frames per call): a sample is the call's time over its frames.
    jobs: dict[str, tuple[Callable[[], object], int]] = {}
    for name, frame in frames.items():
        jobs[f"model {name}"] = (functools.partial(seg, frame), 1)
        jobs[f"refine, full-size chain (before) {name}"] = (refine_old(name), 1)
        jobs[f"refine, refine_mask {name}"] = (refine_new(name), 1)
        for n in everies:
            masker = PersonMasker(seg, model_every=n)
            jobs[f"mask per frame, model every {n} {name}"] = (cycle(functools.partial(masker, frame), n), n)
    workers = {n: MaskWorker(PersonMasker(seg, model_every=n)) for n in everies}

    def overlapped(worker: MaskWorker) -> object:
        worker.submit(vga)
        out = stylizer(vga)
        return worker.result(), out

    n_max = max(everies)
    jobs["lite 640x480"] = (cycle(lambda: stylizer(vga), n_max), n_max)
    for n, worker in workers.items():
        jobs[f"lite + mask on its thread, model every {n} 640x480"] = (
            cycle(functools.partial(overlapped, worker), n_max),
            n_max,
        )
    samples: dict[str, list[float]] = {k: [] for k in jobs}
    try:
        for job, _ in jobs.values():  # warm-up: OpenCV's and torch's lazy set-up
            job()
        for _ in range(rounds):
            for name, (job, per) in jobs.items():
                for _ in range(reps if not name.startswith("lite") else 1):
                    t0 = time.perf_counter()
                    job()
                    samples[name].append((time.perf_counter() - t0) / per)
    finally:
        for worker in workers.values():
            worker.close()
    out: dict[str, object] = {"backend": stylizer.backend.name}
    out.update({k: _median_ms(v) for k, v in samples.items()})
    # Paired per round (the lite rows run back to back), so load that drifts between
    # rounds on a shared machine cancels out of the ratios.
    alone = samples["lite 640x480"]
    for n in everies:
        mask = samples[f"mask per frame, model every {n} 640x480"]
        per_round = [statistics.median(mask[i * reps : (i + 1) * reps]) for i in range(rounds)]
        both = samples[f"lite + mask on its thread, model every {n} 640x480"]
        out[f"mask / lite frame, model every {n}, serial"] = round(
            statistics.median(m / a for m, a in zip(per_round, alone, strict=True)), 3
        )
        out[f"mask / lite frame, model every {n}, overlapped (extra wall time)"] = round(
            statistics.median((b - a) / a for a, b in zip(alone, both, strict=True)), 3
        )
    return out


def _read(clip: Path, frames: int, max_side: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    out: list[np.ndarray] = []
    while len(out) < frames:
        ok, f = cap.read()
        if not ok:
            break
        scale = min(1.0, max_side / max(f.shape[:2]))
        if scale < 1:
            f = cv2.resize(f, (round(f.shape[1] * scale), round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        out.append(f)
    cap.release()
    return out


def edge_band(mask: np.ndarray, half_width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The border's pixels and the background's interior, as float32 HxW weights in {0, 1}.

    The band: within ``half_width`` px of the mask's 0.5 contour (where the border can
    flicker); the interior: farther than ``3 * half_width`` px outside it.
    """
    kernel = np.ones((2 * half_width + 1, 2 * half_width + 1), np.uint8)
    hard = (mask > 0.5).astype(np.uint8)
    band = (cv2.dilate(hard, kernel) - cv2.erode(hard, kernel)).astype(np.float32)
    interior = 1.0 - cv2.dilate(hard, kernel, iterations=3).astype(np.float32)
    return band, interior


def band_warping_error(
    out: np.ndarray, before: np.ndarray, field: WarpField, weight: np.ndarray, min_weight: float = 50.0
) -> float | None:
    """The warping error (Lai et al. 2018) of one pair inside ``weight`` (HxW, 0..1).

    ``out``/``before``: uint8 HxWx3 frames, or float HxW masks in 0..1 (one channel).
    None when fewer than ``min_weight`` pixels count (no person, or no consistent flow).
    """
    from stylize_video.metrics.temporal import as_float
    from stylize_video.runtime.flow import warp_normalized

    total = float(weight.sum())
    if total < min_weight:
        return None
    if out.ndim == 2:
        a = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))[None, None]
        b = torch.from_numpy(np.ascontiguousarray(before, dtype=np.float32))[None, None]
    else:
        a, b = as_float(out), as_float(before)
    sq = (a - warp_normalized(b, field.nflow)).square().sum(1)[0] * torch.from_numpy(weight)
    return float(sq.sum()) / (a.shape[1] * total)


def _flow_smoothed(
    seg: PersonSegmenter, video: list[np.ndarray], styled: list[np.ndarray], smoothing: float, model_every: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``--smooth flow`` as the pipeline runs it: the stylized frames smoothed by a
    FlowSmoother, and the masks with an EMA history and with the history warped along
    that smoother's flow (shared through ``pending_flow``, no second flow); the last
    also with the model on every frame (the reference the carried masks are held to)."""
    from stylize_video.runtime.flow_smoother import FlowSmoother
    from stylize_video.runtime.transfer import FrameTransfer

    transfer = FrameTransfer(torch.device("cpu"))
    smoother = FlowSmoother()
    ema = PersonMasker(seg, smoothing=smoothing, model_every=model_every)
    warped = PersonMasker(seg, smoothing=smoothing, model_every=model_every)
    fresh = PersonMasker(seg, smoothing=smoothing, model_every=1)
    fresh_masks: list[np.ndarray] = []
    out: list[np.ndarray] = []
    ema_masks: list[np.ndarray] = []
    flow_masks: list[np.ndarray] = []
    try:
        for frame, s in zip(video, styled, strict=True):
            smoother.prepare(frame)
            flow_masks.append(warped(frame, smoother.pending_flow()))
            fresh_masks.append(fresh(frame, smoother.pending_flow()))
            ema_masks.append(ema(frame))
            x, y = transfer.upload(frame), transfer.upload(s)
            out.append(transfer.download(smoother(y, x, frame)))
    finally:
        smoother.close()
    return out, ema_masks, flow_masks, fresh_masks


def steadiness(
    seg: PersonSegmenter, clip: Path, frames: int, smoothing: float, model_every: int = MODEL_EVERY
) -> dict[str, float | int]:
    """Warping error of ``--region background`` output in the mask's edge band, with references.

    Every edge-band row scores the same pixels (within 4 px of the refined mask's
    0.5 contour, where the flow is consistent), so the rows compare: the original
    frames and the fully stylized frames there say how much error the band has
    without any compositing (motion boundaries are where flow fails first).
    """
    from stylize_video.metrics.temporal import InputMotion
    from stylize_video.runtime.stylizer import Stylizer

    video = _read(clip, frames, 640)
    stylizer = Stylizer("starry-night-lite", device="cpu")
    refined = PersonMasker(seg, smoothing=smoothing, model_every=model_every)
    refined_masks = [refined(f) for f in video]
    every_frame = PersonMasker(seg, smoothing=smoothing, model_every=1)
    every_frame_masks = [every_frame(f) for f in video]
    raw_masks = [bilinear_upsample(seg(f), f.shape[:2]) for f in video]
    styled = [stylizer(f) for f in video]
    smoothed, ema_masks, flow_masks, fresh_flow_masks = _flow_smoothed(seg, video, styled, smoothing, model_every)
    outputs: dict[str, list[np.ndarray]] = {
        "edge band: region=background, refined mask": [
            composite(f, s, m, "background") for f, s, m in zip(video, styled, refined_masks, strict=True)
        ],
        "edge band: region=background, raw model mask (bilinear, no EMA)": [
            composite(f, s, m, "background") for f, s, m in zip(video, styled, raw_masks, strict=True)
        ],
        "edge band: fully stylized frame (reference)": styled,
        "edge band: original frame (reference)": video,
        "background interior: fully stylized (reference)": styled,
        "--smooth flow, edge band: region=background, EMA mask history": [
            composite(f, s, m, "background") for f, s, m in zip(video, smoothed, ema_masks, strict=True)
        ],
        "--smooth flow, edge band: region=background, mask history warped along the flow": [
            composite(f, s, m, "background") for f, s, m in zip(video, smoothed, flow_masks, strict=True)
        ],
        "--smooth flow, edge band: fully stylized frame (reference)": smoothed,
        "--smooth flow, background interior: fully stylized (reference)": smoothed,
        "mask itself, edge band: raw model mask": raw_masks,
        "mask itself, edge band: EMA history": ema_masks,
        "mask itself, edge band: history warped along the flow": flow_masks,
    }
    motion = InputMotion()
    errors: dict[str, list[float]] = {k: [] for k in outputs}
    for i, frame in enumerate(video):
        field = motion.update(frame)
        if field is None:
            continue
        valid = field.mask(frame.shape[:2])[0, 0].numpy()
        band, interior = edge_band(refined_masks[i])
        for key, seq in outputs.items():
            weight = valid * (interior if "background interior" in key else band)
            err = band_warping_error(seq[i], seq[i - 1], field, weight)
            if err is not None:
                errors[key].append(err)
    result: dict[str, float | int] = {
        "frames": len(video),
        "model every": model_every,
        "pairs scored": len(errors[next(iter(errors))]),
    }
    result.update({k: round(float(np.mean(v)), 5) for k, v in errors.items() if v})
    # What carrying costs in accuracy: how far the masks depart, in the edge band, from
    # masks with the model run on every frame (0 when --model-every is 1).
    for key, carried, fresh_seq in (
        ("mask vs model on every frame, edge band mean |diff|: EMA", refined_masks, every_frame_masks),
        ("mask vs model on every frame, edge band mean |diff|: along the flow", flow_masks, fresh_flow_masks),
    ):
        bands = [edge_band(f)[0] > 0 for f in fresh_seq]
        diffs = [
            float(np.abs(c - f)[band].mean())
            for c, f, band in zip(carried, fresh_seq, bands, strict=True)
            if band.sum() >= 50  # a frame with nobody in it has no border to compare
        ]
        if diffs:
            result[key] = round(float(np.mean(diffs)), 5)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the .tflite file (default: found as the library finds it)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video with people for the steadiness part")
    parser.add_argument("--frames", type=int, default=60, help="frames of the clip to score (0: skip the part)")
    parser.add_argument("--smoothing", type=float, default=0.5, help="the mask EMA's strength for the steadiness part")
    parser.add_argument(
        "--model-every", type=int, default=MODEL_EVERY, help="the masker's model_every for the steadiness part"
    )
    parser.add_argument("--rounds", type=int, default=7, help="cost rounds (0: skip the part)")
    parser.add_argument("--reps", type=int, default=5, help="mask cycles per round (the style rows run once)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    seg = PersonSegmenter(path=args.model, download=False)
    figures: dict[str, object] = {"model": str(seg.model_path), "cv2 threads": cv2.getNumThreads()}
    if args.rounds:
        figures["cost ms"] = costs = cost(seg, args.rounds, args.reps)
        print("| stage | ms per frame (ratios: of a lite frame) |\n|---|---|")
        for k, v in costs.items():
            print(f"| {k} | {v} |")
    if args.frames and args.clip.is_file():
        figures["steadiness"] = steady = steadiness(seg, args.clip, args.frames, args.smoothing, args.model_every)
        print(f"\nwarping error on {args.clip.name} (lower is steadier):")
        for k, v in steady.items():
            print(f"  {k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
