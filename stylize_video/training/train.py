"""Train a feed-forward style network (Johnson et al. 2016) on a folder of photos.

``train(TrainConfig(...))`` runs the whole job: scan and split the photos, build the
loss network and targets, optimise with Adam, save samples and resumable state
periodically and on Ctrl-C, and write the final checkpoint with its metadata.

Resume is exact: the state file holds the model, the optimizer (and AMP scaler),
the iteration count and the loss history, and the data order is a pure function of
``(seed, sample position)`` (see ``training.data``), so a resumed run reproduces the
losses of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import cpu_has_fast_bf16, resolve_device, set_cpu_threads
from ..errors import InputError, OutputError, StylizeError
from ..files import atomic_output, file_sha256
from ..interrupts import install_handler, restore
from ..models.checkpoint import CheckpointMeta, load_checkpoint, resolve_checkpoint, save_checkpoint
from ..models.transform_net import PRESETS, NetConfig, TransformNet
from ..models.vgg import VGGFeatures, describe_vgg_source, load_vgg_state
from .data import PhotoSet, PositionDataset, load_fixed
from .evaluate import validation_losses
from .losses import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, PerceptualLoss
from .temporal import (
    DEFAULT_TEMPORAL_WEIGHT,
    FramePair,
    Motion,
    make_pair,
    motion_generator,
    temporal_loss,
    validation_temporal,
)

log = logging.getLogger(__name__)

STATE_SUFFIX = ".train-state.pt"
STATE_VERSION = 1

#: Settings that must agree between a run and its ``--resume``: changing any of them
#: would make the continued run a different run.
_RESUME_KEYS = (
    "preset",
    "image_size",
    "style_size",
    "batch_size",
    "lr",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layer_weights",
    "distill_weight",
    "seed",
    "teacher",
    "val_fraction",
    "temporal_weight",
    "init",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; validated on construction.

    Attributes mirror the ``stylize-video train`` options. ``style_size`` is the
    longer side the painting is scaled to (smaller -> larger brush strokes);
    ``None`` keeps it as is. ``amp``: ``auto`` (bf16 on CUDA when supported, else
    fp16 with loss scaling; bf16 on CPUs with native bf16, else off), ``off``, ``bf16`` or
    ``fp16``.
    """

    style_image: str
    data: str
    output: str
    preset: str = "full"
    vgg_weights: str | None = None
    image_size: int = 256
    style_size: int | None = 512
    batch_size: int = 4
    iterations: int = 20000
    lr: float = 1e-3
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float = DEFAULT_STYLE_WEIGHT
    tv_weight: float = DEFAULT_TV_WEIGHT
    style_layer_weights: tuple[float, ...] | None = None
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    resume: bool = False
    overwrite: bool = False
    threads: int | None = None
    device: str = "auto"
    amp: str = "auto"
    workers: int | None = None
    teacher: str | None = None
    distill_weight: float = 50.0
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    init: str | None = None
    time_limit: float | None = None
    val_fraction: float = 0.05
    val_images: int = 64
    name: str | None = None
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    credit: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise StylizeError(f"unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        if Path(self.output).suffix != ".safetensors":
            raise OutputError(f"output {self.output!r} must end in .safetensors")
        positive = {
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "iterations": self.iterations,
            "checkpoint_every": self.checkpoint_every,
            "val_images": self.val_images,
        }
        for key, value in positive.items():
            if value < 1:
                raise StylizeError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
        if self.image_size < 16:
            raise StylizeError(f"--image-size must be >= 16, got {self.image_size}")
        if self.style_size is not None and self.style_size < 16:
            raise StylizeError(f"--style-size must be >= 16, got {self.style_size}")
        if self.sample_every < 0:
            raise StylizeError(f"--sample-every must be >= 0 (0: never), got {self.sample_every}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise StylizeError(f"--lr must be a positive number, got {self.lr}")
        for key in ("content_weight", "style_weight", "tv_weight", "distill_weight", "temporal_weight"):
            value = getattr(self, key)
            if not (value >= 0 and math.isfinite(value)):
                raise StylizeError(f"--{key.replace('_', '-')} must be >= 0, got {value}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise StylizeError(f"validation fraction must be in [0, 1), got {self.val_fraction}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise StylizeError(f"--amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        if self.style_layer_weights is not None:
            object.__setattr__(self, "style_layer_weights", tuple(float(w) for w in self.style_layer_weights))
            weights = self.style_layer_weights
            if len(weights) != 4 or min(weights) < 0 or not sum(weights) > 0:
                raise StylizeError(f"--style-layer-weights needs 4 numbers >= 0, not all 0, got {list(weights)}")
        if self.seed < 0:
            raise StylizeError(f"--seed must be >= 0, got {self.seed}")
        if self.workers is not None and self.workers < 0:
            raise StylizeError(f"--workers must be >= 0, got {self.workers}")
        if self.time_limit is not None and not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            raise StylizeError(f"--time-limit must be a positive number of seconds, got {self.time_limit}")

    @property
    def state_path(self) -> Path:
        """Resumable state beside the output: ``NAME.safetensors.train-state.pt``."""
        return Path(self.output + STATE_SUFFIX)

    @property
    def samples_dir(self) -> Path:
        """Periodic sample stylizations beside the output: ``NAME_samples/``."""
        out = Path(self.output)
        return out.with_name(out.stem + "_samples")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What a finished run produced."""

    checkpoint: Path
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    skipped: list[str] = field(default_factory=list)


def load_style_image(path: str | os.PathLike[str], size: int | None) -> torch.Tensor:
    """Read a painting as (1, 3, H, W) RGB in [0, 1], longer side scaled to ``size``."""
    import cv2

    from ..io.images import read_image

    bgr = read_image(path)
    if size is not None:
        h, w = bgr.shape[:2]
        s = size / max(h, w)
        if s != 1.0:
            dsize = (max(1, round(w * s)), max(1, round(h * s)))
            bgr = cv2.resize(bgr, dsize, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0).unsqueeze(0).contiguous()


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # On CPUs with AVX512-BF16/AMX, bf16 autocast measured 1.7x faster per training
    # step (full, 256 px, 1 thread); elsewhere bf16 is emulated and slower.
    return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None


class _InterruptFlag:
    """Turns the first Ctrl-C (or SIGTERM/SIGHUP) into a flag checked between steps, so
    state is saved whole.

    The first one restores the handlers that were there before, so a second one acts
    as they do: under the CLI it raises at once (``KeyboardInterrupt``); elsewhere a
    second SIGTERM ends the process without saving.
    """

    def __init__(self) -> None:
        self.set = False
        self._previous: list[tuple[int, Any]] | None = None

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = install_handler(self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.set = True
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            restore(self._previous)
            self._previous = None

    def __exit__(self, *exc: object) -> None:
        self._restore()


class TrainStep:
    """One optimisation step of a style network: forward, perceptual (+ teacher, + temporal) loss, update.

    ``step(x, pair)`` takes a batch (N, 3, H, W) in [0, 1] on the model's device (and,
    when ``temporal_weight`` > 0, its moved second frames) and returns the detached
    loss terms ``KEYS`` as one fp32 tensor (no device sync).
    Under ``amp_dtype`` the networks run in reduced precision while Grams, losses
    and the optimizer stay fp32; fp16 uses the (enabled) ``scaler``.
    """

    KEYS = ("total", "content", "style", "tv", "distill", "temporal")

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: PerceptualLoss,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None = None,
        amp_dtype: torch.dtype | None = None,
        teacher: torch.nn.Module | None = None,
        distill_weight: float = 0.0,
        temporal_weight: float = 0.0,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        device_type = next(model.parameters()).device.type
        self.scaler = scaler or torch.amp.GradScaler(device_type, enabled=False)
        self.teacher, self.distill_weight = teacher, distill_weight
        self.temporal_weight = temporal_weight
        # Picked once so the hot loop has no precision branches.
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
            contextlib.nullcontext if amp_dtype is None else (lambda: torch.autocast(device_type, dtype=amp_dtype))
        )

    def __call__(self, x: torch.Tensor, pair: FramePair | None = None) -> torch.Tensor:
        with self.autocast():
            targets = self.loss_fn.content_targets(x)
            temporal = x.new_zeros((), dtype=torch.float32)
            if pair is not None and self.temporal_weight > 0:
                # Both frames in one batch (InstanceNorm keeps them independent); the
                # VGG loss sees the first frame only, which keeps the extra cost to one
                # more pass of the (cheaper) style network.
                both = self.model(torch.cat([x, pair.frames]))
                y, y2 = both[: len(x)], both[len(x) :]
                temporal = temporal_loss(y, y2, pair) * self.temporal_weight
            else:
                y = self.model(x)
            terms = self.loss_fn(y, targets)
            distill = y.new_zeros((), dtype=torch.float32)
            if self.teacher is not None:
                with torch.no_grad():
                    t = self.teacher(x)
                distill = F.mse_loss(y.float(), t.float()) * self.distill_weight
            total = terms["total"] + distill + temporal
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        losses = [total, terms["content"], terms["style"], terms["tv"], distill, temporal]
        return torch.stack([t.float() for t in losses]).detach()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _save_samples(model: TransformNet, images: torch.Tensor, path: Path) -> None:
    """Originals on top, stylizations below, as one PNG."""
    import cv2

    with torch.no_grad():
        out = model(images).float().clamp(0, 1)
    grid = torch.cat([torch.cat(list(images.float().cpu()), dim=2), torch.cat(list(out.cpu()), dim=2)], dim=1)
    rgb = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    with atomic_output(path) as tmp:
        cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1]))


def _file_sha256(path: str | os.PathLike[str]) -> str:
    return file_sha256(path)


def _check_start(config: TrainConfig) -> dict[str, Any] | None:
    """Validate outputs for a fresh run, or load and check the state of a resumed one."""
    from ..io.paths import check_output

    out, state_path = Path(config.output), config.state_path
    if not Path(config.style_image).is_file():
        raise InputError(f"style image {config.style_image!r} does not exist")
    if config.init and not config.resume:
        try:
            resolve_checkpoint(config.init)  # a style name works, as for --teacher
        except StylizeError as exc:
            raise InputError(f"--init: {exc}") from None
    if config.resume:
        if not state_path.is_file():
            raise InputError(f"--resume: no training state {str(state_path)!r} to continue from")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors of many types all mean "unusable"
            raise InputError(f"--resume: training state {str(state_path)!r} is unreadable: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise InputError(f"--resume: {str(state_path)!r} has state version {state.get('version')!r}")
        saved = state["config"]
        # States written before a setting existed lack its key: read those as its default.
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        diffs = [
            f"{k} {saved.get(k, defaults[k])!r} -> {getattr(config, k)!r}"
            for k in _RESUME_KEYS
            if saved.get(k, defaults[k]) != getattr(config, k)
        ]
        saved_painting = state.get("style_sha256")
        if saved_painting is not None and saved_painting != _file_sha256(config.style_image):
            diffs.append(f"style image {config.style_image!r} is not the painting the run started with")
        if diffs:
            raise InputError(f"--resume: settings differ from the saved run: {'; '.join(diffs)}")
        return dict(state)
    check_output(out, [Path(config.style_image)], overwrite=config.overwrite)
    try:
        # Now, not at the first save: a missing folder must not cost the work done by then.
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {str(out.parent)!r}: {exc.strerror or exc}") from None
    if state_path.exists() and not config.overwrite:
        raise OutputError(
            f"training state {str(state_path)!r} exists: pass --resume to continue it or --overwrite to start over"
        )
    return None


def train(
    config: TrainConfig,
    *,
    vgg: VGGFeatures | None = None,
    arch: NetConfig | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run (or resume) a training job and write ``config.output``.

    Args:
        config: the run's settings.
        vgg: a loss network to use instead of loading ``config.vgg_weights`` (tests
            pass a small random one).
        arch: an architecture overriding ``config.preset`` (tests use tiny nets).
        progress: show a tqdm bar.
        on_step: called after each completed step with ``(iteration, losses)``;
            raising ``KeyboardInterrupt`` there behaves like Ctrl-C.

    Raises:
        StylizeError: bad inputs or outputs. ``KeyboardInterrupt`` is re-raised
            after the resumable state has been saved.
    """
    from tqdm.auto import tqdm

    state = _check_start(config)
    device = resolve_device(config.device)
    set_cpu_threads(config.threads)
    amp_dtype = _amp_dtype(config.amp, device)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # channels_last pays off with cuDNN and with oneDNN's bf16 kernels, not with fp32 on CPU.
    memory_format = torch.channels_last if on_cuda or amp_dtype == torch.bfloat16 else torch.contiguous_format

    photos = PhotoSet.scan(config.data, config.val_fraction)
    log.info("%d training / %d validation photos, %d skipped", len(photos.train), len(photos.val), len(photos.skipped))

    if vgg is None:
        vgg = VGGFeatures(load_vgg_state(config.vgg_weights))
        vgg_info = describe_vgg_source(config.vgg_weights)
    else:
        vgg_info = {"source": "provided"}
    vgg = vgg.to(device).to(memory_format=memory_format)
    style = load_style_image(config.style_image, config.style_size).to(device)
    loss_fn = PerceptualLoss(
        vgg,
        style,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        style_layer_weights=config.style_layer_weights,
    )

    teacher = None
    if config.teacher:
        teacher = load_checkpoint(config.teacher).model.to(device).to(memory_format=memory_format).eval()

    net_config = arch or PRESETS[config.preset]
    torch.manual_seed(config.seed)
    model = TransformNet(net_config)
    # What a fine-tuned network started from, kept in the state so a resumed run
    # still records it even if the --init file has since been replaced.
    init_info: dict[str, Any] | None = state.get("init_info") if state is not None else None
    if config.init and state is None:
        # Fine-tuning (e.g. adding the temporal term to a trained style): start from its weights.
        init = load_checkpoint(config.init)
        if init.meta.arch != net_config:
            raise InputError(
                f"--init {config.init!r} is a {init.meta.preset or 'custom'} network, not --preset {config.preset}"
            )
        model.load_state_dict(init.model.float().state_dict())
        before = init.meta.training.get("total_iterations", init.meta.training.get("iterations_done"))
        init_info = {"name": init.meta.name, "iterations": before}
    model = model.to(device).to(memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    history: list[dict[str, float]] = []
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history = list(state["history"])
        start = int(state["iteration"])
        log.info("resuming %s at iteration %d", config.state_path, start)
    if start > config.iterations:
        raise StylizeError(f"--iterations {config.iterations} is below the {start} already done")

    sample_images = load_fixed(photos.val[:4], min(config.image_size, 256)).to(device)
    workers = config.workers if config.workers is not None else (min(8, os.cpu_count() or 1) if on_cuda else 0)
    loader = torch.utils.data.DataLoader(
        PositionDataset(photos.train, config.image_size, config.seed),
        batch_size=config.batch_size,
        # The sampler *is* the data order: positions start*B .. iterations*B.
        sampler=range(start * config.batch_size, config.iterations * config.batch_size),  # type: ignore[arg-type]
        num_workers=workers,
        pin_memory=on_cuda,
        prefetch_factor=4 if workers else None,
    )
    step = TrainStep(
        model, loss_fn, optimizer, scaler, amp_dtype, teacher, config.distill_weight, config.temporal_weight
    )
    motion = Motion()

    style_sha256 = _file_sha256(config.style_image)

    def save_state(iteration: int) -> None:
        _atomic_torch_save(
            {
                "version": STATE_VERSION,
                "config": config.to_dict(),
                "iteration": iteration,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "history": history,
                "init_info": init_info,
                "style_sha256": style_sha256,  # --resume checks the painting by content, not by path
            },
            config.state_path,
        )

    done = start
    pending: list[torch.Tensor] = []
    keys = TrainStep.KEYS

    def flush() -> None:
        # One device sync per flush instead of one per step.
        if pending:
            for row in torch.stack(pending).tolist():
                history.append(dict(zip(keys, row, strict=True)))
            pending.clear()

    bar = tqdm(total=config.iterations, initial=start, disable=not progress, unit="it", dynamic_ncols=True)
    t_start, rate = time.perf_counter(), 0.0
    consistent = True
    timed_out = False
    try:
        with _InterruptFlag() as interrupt:
            for batch in loader:
                x = batch.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                pair = None
                if config.temporal_weight > 0:
                    pair = make_pair(x, motion, motion_generator(config.seed, done))
                    pair.frames = pair.frames.contiguous(memory_format=memory_format)
                consistent = False
                pending.append(step(x, pair))
                done += 1
                consistent = True
                if done % config.checkpoint_every == 0 or done == config.iterations:
                    flush()
                    save_state(done)
                if config.sample_every and done % config.sample_every == 0 and len(sample_images):
                    _save_samples(model, sample_images, config.samples_dir / f"iter_{done:06d}.png")
                if on_step is not None or done % 10 == 0 or done == config.iterations:
                    flush()
                    elapsed = time.perf_counter() - t_start
                    rate = (done - start) * config.batch_size / max(elapsed, 1e-9)
                    last = history[-1]
                    shown = {k: f"{last[k]:.3g}" for k in ("total", "content", "style", "distill", "temporal")}
                    if not config.teacher:
                        del shown["distill"]
                    if not config.temporal_weight:
                        del shown["temporal"]
                    bar.set_postfix(shown | {"img_s": f"{rate:.2f}"}, refresh=False)
                    if on_step is not None:
                        on_step(done, last)
                bar.update(1)
                if interrupt.set:
                    raise KeyboardInterrupt
                if (
                    config.time_limit is not None
                    and done < config.iterations
                    and time.perf_counter() - t_start >= config.time_limit
                ):
                    # Finish as a normal run would (validation, checkpoint) and keep the
                    # state, so --resume with the same settings can train on later.
                    flush()
                    save_state(done)
                    timed_out = True
                    log.warning(
                        "--time-limit %.0f s reached at iteration %d of %d", config.time_limit, done, config.iterations
                    )
                    break
    except KeyboardInterrupt:
        bar.close()
        if consistent:
            flush()
            save_state(done)
            log.warning(
                "interrupted at iteration %d; state saved to %s (continue with --resume)", done, config.state_path
            )
        else:
            log.warning("interrupted mid-step; last saved state is the periodic one in %s", config.state_path)
        raise
    bar.close()
    flush()
    # Training throughput: the loop only, not the validation and samples below.
    elapsed = time.perf_counter() - t_start
    images_per_s = (done - start) * config.batch_size / max(elapsed, 1e-9)

    model.eval()
    val = load_fixed(photos.val[: config.val_images], config.image_size)
    val_losses = validation_losses(model, loss_fn, val, batch_size=config.batch_size) if len(val) else {}
    if len(val):
        # Reported for every run (with or without the term), on the same fixed motions,
        # so steadiness compares across checkpoints.
        val_losses["temporal"] = validation_temporal(model, val, batch_size=config.batch_size)
    if config.sample_every and len(sample_images):
        _save_samples(model, sample_images, config.samples_dir / "final.png")
    training = {k: v for k, v in config.to_dict().items() if k not in ("resume", "overwrite", "output")}
    training.update(
        {
            "vgg": vgg_info,
            "iterations_done": done,
            "stopped_at_time_limit": timed_out,
            "train_images": len(photos.train),
            "val_images": len(val),
            "skipped_images": len(photos.skipped),
            "device": str(device),
            "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
            "images_per_s": round(images_per_s, 3),
            "style_image": Path(config.style_image).name,
        }
    )
    if init_info is not None:
        training["init_from"] = init_info
        training["total_iterations"] = done + int(init_info.get("iterations") or 0)
    meta = CheckpointMeta(
        name=config.name or Path(config.output).stem,
        arch=net_config,
        preset=config.preset if arch is None else None,
        title=config.title,
        artist=config.artist,
        year=config.year,
        credit=config.credit,
        training=training,
        metrics={f"val_{k}": v for k, v in val_losses.items()},
    )
    path = save_checkpoint(config.output, model.float().cpu(), meta)
    return TrainResult(path, done, history, val_losses, images_per_s, photos.skipped)
