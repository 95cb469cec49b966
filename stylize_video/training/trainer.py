"""The training loop of a style network: :class:`Trainer` (setup, step, checkpoint, finish).

Settings come from :mod:`.config`, the resumable state from :mod:`.state` and one
optimisation step from :mod:`.step`; this module owns the order of things, the
progress bar, the samples and the stop policies (interrupt, time limit).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..devices import resolve_device, set_cpu_threads
from ..errors import InputError, StylizeError
from ..files import atomic_output
from ..interrupts import install_handler, restore
from ..models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from ..models.transform_net import PRESETS, NetConfig, TransformNet
from ..models.vgg import VGGFeatures
from .config import TrainConfig, TrainResult
from .data import PhotoSet, load_fixed, load_style_image, position_loader
from .evaluate import validation_losses
from .losses import PerceptualLoss
from .state import _file_sha256, check_start, save_state
from .step import TrainStep, amp_dtype, loss_network, perceptual_loss
from .temporal import Motion, make_pair, motion_generator, validation_temporal

__all__ = ["Trainer"]

log = logging.getLogger(__name__)


class InterruptFlag:
    """Turns the first Ctrl-C (or SIGTERM/SIGHUP) into a flag checked between steps, so
    state is saved whole.

    The first one restores the handlers that were there before, so a second one acts
    as they do: under the CLI it raises at once (``KeyboardInterrupt``); elsewhere a
    second SIGTERM ends the process without saving.
    """

    def __init__(self) -> None:
        self.set = False
        self._previous: list[tuple[int, Any]] | None = None

    def __enter__(self) -> InterruptFlag:
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


def _save_samples(model: TransformNet, images: torch.Tensor, path: Path) -> None:
    """Originals on top, stylizations below, as one PNG."""
    import cv2

    with torch.no_grad():
        out = model(images).float().clamp(0, 1)
    grid = torch.cat([torch.cat(list(images.float().cpu()), dim=2), torch.cat(list(out.cpu()), dim=2)], dim=1)
    rgb = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    with atomic_output(path) as tmp:
        cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1]))


class Trainer:
    """One training run in four phases: :meth:`setup`, :meth:`step` per batch,
    :meth:`checkpoint` (resumable state) and :meth:`finish` (validate, write the checkpoint).

    :meth:`run` drives them with the loop's policies: Ctrl-C/SIGTERM save whole state
    and re-raise ``KeyboardInterrupt``; the time limit ends the loop early and
    finishes as usual. The data order is a pure function of ``(seed, position)``, so
    a resumed run reproduces the losses of an uninterrupted one.

    Args:
        config: the run's settings.
        vgg: a loss network to use instead of loading ``config.loss.vgg_weights``
            (tests pass a small random one).
        arch: an architecture overriding ``config.model.preset`` (tests use tiny nets).
        progress: show a tqdm bar.
        on_step: called after each completed step with ``(iteration, losses)``;
            raising ``KeyboardInterrupt`` there behaves like Ctrl-C.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        vgg: VGGFeatures | None = None,
        arch: NetConfig | None = None,
        progress: bool = True,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.config, self.arch, self.progress, self.on_step = config, arch, progress, on_step
        self._vgg = vgg
        self.history: list[dict[str, float]] = []
        self.start = self.done = 0
        self.timed_out = False
        self._pending: list[torch.Tensor] = []
        # False while a step is half applied: an interrupt then must not save that state.
        self.consistent = True
        self._bar: Any = None  # the tqdm bar, while run() is in its loop
        self._t_start = time.perf_counter()
        self._t_stop: float | None = None

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Check inputs and outputs, build the networks, the loss and the data, restore a resumed state.

        Raises:
            StylizeError: bad inputs or outputs, or ``iterations`` below those already done.
        """
        c = self.config
        state = check_start(c)
        self.device = device = resolve_device(c.run.device)
        set_cpu_threads(c.run.threads)
        self.amp_dtype = amp_dtype(c.optim.amp, device)
        on_cuda = device.type == "cuda"
        if on_cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # channels_last pays off with cuDNN and with oneDNN's bf16 kernels, not with fp32 on CPU.
        fmt = torch.channels_last if on_cuda or self.amp_dtype == torch.bfloat16 else torch.contiguous_format
        self.memory_format = fmt

        self.photos = photos = PhotoSet.scan(c.data.photos, c.data.val_fraction)
        log.info(
            "%d training / %d validation photos, %d skipped", len(photos.train), len(photos.val), len(photos.skipped)
        )
        self.loss_fn = self._build_loss()
        teacher = None
        if c.loss.teacher:
            teacher = load_checkpoint(c.loss.teacher).model.to(device).to(memory_format=fmt).eval()
        self.model, self.init_info = self._build_model(state)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.optim.lr)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        if state is not None:
            try:
                self.model.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
                if state.get("scaler"):
                    self.scaler.load_state_dict(state["scaler"])
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                # Shapes or optimizer groups that do not fit this network: a damaged or foreign state.
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"--resume: training state {str(c.state_path)!r} does not fit: {first}") from None
            self.history = list(state["history"])
            self.start = self.done = int(state["iteration"])
            log.info("resuming %s at iteration %d", c.state_path, self.start)
        if self.start > c.optim.iterations:
            raise StylizeError(f"--iterations {c.optim.iterations} is below the {self.start} already done")

        self.sample_images = load_fixed(photos.val[:4], min(c.data.image_size, 256)).to(device)
        workers = c.data.workers if c.data.workers is not None else (min(8, os.cpu_count() or 1) if on_cuda else 0)
        self.loader = position_loader(
            photos.train,
            c.data.image_size,
            c.data.seed,
            c.data.batch_size,
            range(self.start, c.optim.iterations),
            workers=workers,
            pin_memory=on_cuda,
        )
        self.train_step = TrainStep(
            self.model,
            self.loss_fn,
            self.optimizer,
            self.scaler,
            self.amp_dtype,
            teacher,
            c.loss.distill_weight,
            c.loss.temporal_weight,
        )
        self.motion = Motion()
        self.style_sha256 = _file_sha256(c.loss.style_image)

    def _build_loss(self) -> PerceptualLoss:
        loss = self.config.loss
        vgg, self.vgg_info = loss_network(self._vgg, loss.vgg_weights)
        vgg = vgg.to(self.device).to(memory_format=self.memory_format)
        return perceptual_loss(vgg, load_style_image(loss.style_image, loss.style_size).to(self.device), loss)

    def _build_model(self, state: dict[str, Any] | None) -> tuple[TransformNet, dict[str, Any] | None]:
        c = self.config
        self.net_config = self.arch or PRESETS[c.model.preset]
        torch.manual_seed(c.data.seed)
        model = TransformNet(self.net_config)
        # What a fine-tuned network started from, kept in the state so a resumed run
        # still records it even if the --init file has since been replaced.
        init_info: dict[str, Any] | None = state.get("init_info") if state is not None else None
        if c.model.init and state is None:
            # Fine-tuning (e.g. adding the temporal term to a trained style): start from its weights.
            init = load_checkpoint(c.model.init)
            if init.meta.arch != self.net_config:
                raise InputError(
                    f"--init {c.model.init!r} is a {init.meta.preset or 'custom'} network, "
                    f"not --preset {c.model.preset}"
                )
            model.load_state_dict(init.model.float().state_dict())
            before = init.meta.training.get("total_iterations", init.meta.training.get("iterations_done"))
            init_info = {"name": init.meta.name, "iterations": before}
        return model.to(self.device).to(memory_format=self.memory_format).train(), init_info

    # ------------------------------------------------------------------- loop

    def step(self, batch: torch.Tensor) -> None:
        """Train on one batch (N, 3, H, W) in [0, 1], then save state, samples and
        progress when their intervals come round."""
        c = self.config
        x = batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        pair = None
        if c.loss.temporal_weight > 0:
            pair = make_pair(x, self.motion, motion_generator(c.data.seed, self.done))
            pair.frames = pair.frames.contiguous(memory_format=self.memory_format)
        self.consistent = False
        self._pending.append(self.train_step(x, pair))
        self.done += 1
        self.consistent = True
        done = self.done
        if done % c.run.checkpoint_every == 0 or done == c.optim.iterations:
            self.checkpoint()
        if c.run.sample_every and done % c.run.sample_every == 0 and len(self.sample_images):
            _save_samples(self.model, self.sample_images, c.samples_dir / f"iter_{done:06d}.png")
        if self.on_step is not None or done % 10 == 0 or done == c.optim.iterations:
            self._flush()
            last = self.history[-1]
            self._show(last)
            if self.on_step is not None:
                self.on_step(done, last)

    def _flush(self) -> None:
        # One device sync per flush instead of one per step.
        if self._pending:
            for row in torch.stack(self._pending).tolist():
                self.history.append(dict(zip(TrainStep.KEYS, row, strict=True)))
            self._pending.clear()

    def _show(self, last: dict[str, float]) -> None:
        if self._bar is None:
            return
        shown = {k: f"{last[k]:.3g}" for k in ("total", "content", "style", "distill", "temporal")}
        if not self.config.loss.teacher:
            del shown["distill"]
        if not self.config.loss.temporal_weight:
            del shown["temporal"]
        self._bar.set_postfix(shown | {"img_s": f"{self.images_per_s():.2f}"}, refresh=False)

    def images_per_s(self) -> float:
        """Training throughput of the loop (loading, validation and samples excluded)."""
        elapsed = (self._t_stop or time.perf_counter()) - self._t_start
        return (self.done - self.start) * self.config.data.batch_size / max(elapsed, 1e-9)

    def checkpoint(self) -> None:
        """Save the resumable state after the steps done so far (atomically)."""
        self._flush()
        save_state(
            self.config,
            iteration=self.done,
            model=self.model,
            optimizer=self.optimizer,
            scaler=self.scaler,
            history=self.history,
            init_info=self.init_info,
            style_sha256=self.style_sha256,
        )

    def run(self) -> TrainResult:
        """Set up, train until ``iterations`` (or the time limit), finish.

        Raises:
            StylizeError: bad inputs or outputs. ``KeyboardInterrupt`` is re-raised
                after the resumable state has been saved.
        """
        from tqdm.auto import tqdm

        c = self.config
        self.setup()
        self._bar = tqdm(
            total=c.optim.iterations, initial=self.start, disable=not self.progress, unit="it", dynamic_ncols=True
        )
        self._t_start = time.perf_counter()
        try:
            with InterruptFlag() as interrupt:
                for batch in self.loader:
                    self.step(batch)
                    self._bar.update(1)
                    if interrupt.set:
                        raise KeyboardInterrupt
                    if self._time_is_up():
                        # Finish as a normal run would (validation, checkpoint) and keep the
                        # state, so --resume with the same settings can train on later.
                        self.checkpoint()
                        self.timed_out = True
                        log.warning(
                            "--time-limit %.0f s reached at iteration %d of %d",
                            c.run.time_limit,
                            self.done,
                            c.optim.iterations,
                        )
                        break
        except KeyboardInterrupt:
            self._bar.close()
            self._bar = None
            if self.consistent:
                self.checkpoint()
                log.warning(
                    "interrupted at iteration %d; state saved to %s (continue with --resume)", self.done, c.state_path
                )
            else:
                log.warning("interrupted mid-step; last saved state is the periodic one in %s", c.state_path)
            raise
        self._bar.close()
        self._bar = None
        self._flush()
        self._t_stop = time.perf_counter()
        return self.finish()

    def _time_is_up(self) -> bool:
        limit = self.config.run.time_limit
        return (
            limit is not None
            and self.done < self.config.optim.iterations
            and time.perf_counter() - self._t_start >= limit
        )

    # ----------------------------------------------------------------- finish

    def finish(self) -> TrainResult:
        """Validate on the held-out photos, save the final samples and write the checkpoint."""
        c = self.config
        images_per_s = self.images_per_s()
        model = self.model.eval()
        val = load_fixed(self.photos.val[: c.data.val_images], c.data.image_size)
        batch = c.data.batch_size
        val_losses = validation_losses(model, self.loss_fn, val, batch_size=batch) if len(val) else {}
        if len(val):
            # Reported for every run (with or without the term), on the same fixed motions,
            # so steadiness compares across checkpoints.
            val_losses["temporal"] = validation_temporal(model, val, batch_size=batch)
        if c.run.sample_every and len(self.sample_images):
            _save_samples(model, self.sample_images, c.samples_dir / "final.png")
        training = {k: v for k, v in c.to_dict().items() if k not in ("resume", "overwrite", "output")}
        training.update(
            {
                "vgg": self.vgg_info,
                "iterations_done": self.done,
                "stopped_at_time_limit": self.timed_out,
                "train_images": len(self.photos.train),
                "val_images": len(val),
                "skipped_images": len(self.photos.skipped),
                "device": str(self.device),
                "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "off",
                "images_per_s": round(images_per_s, 3),
                "style_image": Path(c.loss.style_image).name,
            }
        )
        if self.init_info is not None:
            training["init_from"] = self.init_info
            training["total_iterations"] = self.done + int(self.init_info.get("iterations") or 0)
        meta = CheckpointMeta(
            name=c.credit.name or Path(c.run.output).stem,
            arch=self.net_config,
            preset=c.model.preset if self.arch is None else None,
            **c.credit.painting(),
            training=training,
            metrics={f"val_{k}": v for k, v in val_losses.items()},
        )
        path = save_checkpoint(c.run.output, model.float().cpu(), meta)
        return TrainResult(path, self.done, self.history, val_losses, images_per_s, self.photos.skipped)
