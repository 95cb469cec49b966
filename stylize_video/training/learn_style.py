"""Learn a new style for a frozen network: one style vector, in minutes on a CPU.

In a conditional-instance-norm network (Dumoulin et al. 2017) a style is one row of
every norm's scale and shift table (about 3,200 numbers for ``full``). A new painting
becomes a new row, trained against the same perceptual loss as a whole network
(:class:`~stylize_video.training.losses.PerceptualLoss`, plus the temporal term of
:mod:`.temporal`) while every convolution stays frozen: far fewer numbers to fit, so
it converges in a few hundred steps instead of thousands.

How it runs:

* the base is a multi-style network (the shipped gallery when one is installed) or a
  single-style network, seen as a one-style conditional network
  (:meth:`TransformNet.from_single`);
* the new row starts from the base's style whose output is nearest to the painting
  (style loss on a few held-out photos), or from the mean of all rows when that is
  nearer;
* training runs on a *single-style view*: the base's convolutions with the new row
  as its only norm affine, everything but the norms frozen. That is exactly
  the base network computing with the new row, so the ordinary training step
  (:class:`~stylize_video.training.step.TrainStep`), validation and data order are
  reused unchanged;
* a painting may be a folder of images of one style: their Gram matrices are
  averaged into one target;
* the result is a style-vector file (:func:`save_style_vector`): loading it attaches
  the row to its base network, so it works wherever ``-s`` does and blends with the
  base's styles at no cost per frame. With ``full_finetune`` > 0 the whole network is
  then trained for that many more steps, and the result is a standalone single-style
  checkpoint instead (not blendable within the base network).

State is saved every ``checkpoint_every`` steps and on Ctrl-C/SIGTERM beside the
output (``NAME.safetensors.learn-state.pt``); ``resume`` continues it exactly.

This module holds the learner (:class:`StyleLearner`: setup, loop, output); the
settings are in :mod:`.learn_style_config` and the base network, starting row and
painting loss in :mod:`.learn_style_base` (their public names are re-exported here).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device, set_cpu_threads
from ..errors import CheckpointError, InputError
from ..files import atomic_output
from ..models.checkpoint import (
    CheckpointMeta,
    StyleInfo,
    base_fingerprint,
    load_checkpoint,
    save_checkpoint,
    save_style_vector,
)
from ..models.transform_net import TransformNet
from ..models.vgg import VGGFeatures
from .data import PhotoSet, load_fixed, load_style_image, position_loader
from .evaluate import validation_losses
from .learn_style_base import (
    DEFAULT_SINGLE_BASE,
    conditional_base,
    default_base,
    mean_style_vector,
    nearest_style,
    painting_files,
    painting_loss,
    painting_sha256,
    single_style_view,
    warn_if_unreachable,
)
from .learn_style_config import LEARN_STATE_SUFFIX, RESUME_KEYS, STATE_VERSION, LearnStyleConfig, LearnStyleResult
from .state import RESUMABLE_PARTS, check_fresh_start, load_resume_state, setting_diffs
from .step import TrainStep, amp_dtype, loss_network
from .temporal import Motion, make_pair, motion_generator, validation_temporal
from .trainer import InterruptFlag

__all__ = [
    "DEFAULT_SINGLE_BASE",
    "LEARN_STATE_SUFFIX",
    "LearnStyleConfig",
    "LearnStyleResult",
    "StyleLearner",
    "default_base",
    "learn_style",
    "painting_files",
]

log = logging.getLogger(__name__)

#: Held-out photos the starting style is chosen on (cheap: one forward pass per style).
_INIT_PHOTOS = 4


class StyleLearner:
    """One ``learn-style`` run: :meth:`setup`, the vector phase, the optional
    whole-network phase, :meth:`finish`. :meth:`run` drives them.

    Args:
        config: the run's settings.
        vgg: a loss network to use instead of loading ``config.loss.vgg_weights``
            (tests pass a small random one).
        progress: show a tqdm bar.
        on_step: called after each step with ``(iteration, losses)``; raising
            ``KeyboardInterrupt`` there behaves like Ctrl-C.
    """

    def __init__(
        self,
        config: LearnStyleConfig,
        *,
        vgg: VGGFeatures | None = None,
        progress: bool = True,
        on_step: Any = None,
    ) -> None:
        self.config, self.progress, self.on_step = config, progress, on_step
        self._vgg = vgg
        self.history: list[dict[str, float]] = []
        self.done = 0  # steps in the current phase
        self.phase = "vector"
        self.timed_out = False
        self.vector_iterations = 0
        self._pending: list[torch.Tensor] = []
        self._resume_base: str | None = None
        self._painting_hash: str | None = None
        self.vector_val: dict[str, float] = {}
        self.consistent = True

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Check inputs and outputs, load the base and the loss, pick the starting style, restore a resumed state.

        Raises:
            StylizeError: bad painting, base, data or output.
        """
        c = self.config
        self.files = painting_files(c.loss.style_image)
        # Read now: an unreadable painting is an error before minutes of loading.
        paintings = [load_style_image(f, c.loss.style_size) for f in self.files]
        state = self._check_start()
        self.device = device = resolve_device(c.run.device)
        set_cpu_threads(c.run.threads)
        self.amp_dtype = amp_dtype(c.optim.amp, device)

        base_arg = self._resume_base or c.base or default_base()
        try:
            ck = load_checkpoint(base_arg)
        except CheckpointError as exc:
            raise InputError(f"--base: {exc}") from None
        if ck.meta.base is not None or ck.path is None or ck.path.suffix != ".safetensors":
            raise InputError(f"--base {base_arg!r} must be a .safetensors style network, not a style vector")
        self.base_name = ck.path.stem
        self.base_path = ck.path
        self.base, self.base_styles = conditional_base(ck)
        self.base_preset = ck.meta.preset
        if c.name in self.base_styles:
            raise InputError(f"the base {self.base_name!r} already has a style named {c.name!r}: choose another name")
        self.fingerprint = base_fingerprint(self.base)
        if not c.full_finetune:  # the output is a vector file, which needs its base to load
            warn_if_unreachable(self.base_path, c.run.output)

        self.photos = PhotoSet.scan(c.data.photos, c.data.val_fraction)
        vgg, self.vgg_info = loss_network(self._vgg, c.loss.vgg_weights)
        self.loss_fn = painting_loss(vgg.to(device), paintings, c.loss, device)

        if state is not None:
            if state["base_sha256"] != self.fingerprint:
                raise InputError(f"--resume: the base {self.base_name!r} has changed since the run started")
            self.init_style = str(state["init_style"])
            self.init_scores = dict(state["init_scores"])
        else:
            photos = self.photos.val[:_INIT_PHOTOS] or self.photos.train[:_INIT_PHOTOS]
            images = load_fixed(photos, c.data.image_size).to(device)
            self.init_style, self.init_scores = nearest_style(self.base, self.base_styles, self.loss_fn, images)
        start_vector = (
            mean_style_vector(self.base)
            if self.init_style == "(mean)"
            else self.base.get_style_vector(self.base_styles.index(self.init_style))
        )
        self.model = single_style_view(self.base, start_vector).to(device)
        if state is not None:
            self.vector_val = dict(state.get("vector_val") or {})
            self.phase = str(state["phase"])
            self.vector_iterations = int(state["vector_iterations"])
            self.history = list(state["history"])
            self.done = int(state["iteration"])
        self._build_phase(state)
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            log.info("resuming %s: %s phase at iteration %d", c.state_path, self.phase, self.done)
        self.motion = Motion()

    def _check_start(self) -> dict[str, Any] | None:
        c, state_path = self.config, self.config.state_path
        if not c.run.resume:
            check_fresh_start(
                Path(c.run.output), state_path, self.files, overwrite=c.run.overwrite, what="learn-style state"
            )
            return None
        parts = {**RESUMABLE_PARTS, "base_sha256": str, "base_path": str, "init_style": str}
        state = load_resume_state(
            state_path, "learn-style state", parts | {"init_scores": dict, "phase": str, "vector_iterations": int}
        )
        if state.get("version") != STATE_VERSION:
            raise InputError(f"--resume: {str(state_path)!r} is not a learn-style state of this version")
        diffs = setting_diffs(state["config"], c.to_dict(), RESUME_KEYS)
        if state.get("painting_sha256") != self._painting_sha256():
            diffs.append(f"painting {c.loss.style_image!r} is not the one the run started with")
        if c.base is not None and state.get("base_name") not in (c.base, Path(c.base).stem):
            diffs.append(f"base {state.get('base_name')!r} -> {c.base!r}")
        if diffs:
            raise InputError(f"--resume: settings differ from the saved run: {'; '.join(diffs)}")
        # Resume on the base the run started on, even if another network is installed since.
        self._resume_base = str(state["base_path"])
        return dict(state)

    def _painting_sha256(self) -> str:
        if self._painting_hash is None:
            self._painting_hash = painting_sha256(self.files)
        return self._painting_hash

    def _build_phase(self, state: dict[str, Any] | None) -> None:
        """Freeze what this phase does not train; a fresh optimizer over what it does."""
        c = self.config
        self.model.train()
        if self.phase == "vector":
            self.model.requires_grad_(False)
            params = self.model.style_params()
            for p in params:
                p.requires_grad_(True)
            lr = c.optim.lr
        else:
            self.model.requires_grad_(True)
            params = list(self.model.parameters())
            lr = c.finetune_lr
        self.optimizer = torch.optim.Adam(params, lr=lr)
        # A fresh loss scale per phase (and per resume): fp16 only, where it settles in a few steps.
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.train_step = TrainStep(
            self.model, self.loss_fn, self.optimizer, scaler, self.amp_dtype, temporal_weight=c.loss.temporal_weight
        )
        total = c.optim.iterations if self.phase == "vector" else c.full_finetune
        # The data order is a pure function of (seed, position): a resumed run sees the
        # same crops. The whole-network phase continues after the vector phase's crops.
        offset = 0 if self.phase == "vector" else self.vector_iterations
        self.total = total
        self.loader = position_loader(
            self.photos.train,
            c.data.image_size,
            c.data.seed,
            c.data.batch_size,
            range(offset + self.done, offset + total),
        )

    # ------------------------------------------------------------------- loop

    def _flush(self) -> None:
        if self._pending:
            for row in torch.stack(self._pending).tolist():
                entry = dict(zip(TrainStep.KEYS, row, strict=True))
                del entry["distill"]
                self.history.append(entry | {"phase": 0.0 if self.phase == "vector" else 1.0})
            self._pending.clear()

    def checkpoint(self) -> None:
        """Save the resumable state after the steps done so far (atomically)."""
        self._flush()
        c = self.config
        state = {
            "version": STATE_VERSION,
            "config": c.to_dict(),
            "phase": self.phase,
            "iteration": self.done,
            "vector_iterations": self.vector_iterations,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "base_name": self.base_name,
            "base_path": str(self.base_path),
            "base_sha256": self.fingerprint,
            "init_style": self.init_style,
            "init_scores": self.init_scores,
            "vector_val": self.vector_val,
            "painting_sha256": self._painting_sha256(),
        }
        with atomic_output(c.state_path) as tmp:
            torch.save(state, tmp)

    def _loop(self, bar: Any, interrupt: InterruptFlag) -> None:
        c = self.config
        t0 = time.perf_counter()
        for batch in self.loader:
            x = batch.to(self.device)
            pair = None
            if c.loss.temporal_weight > 0:
                offset = 0 if self.phase == "vector" else self.vector_iterations
                pair = make_pair(x, self.motion, motion_generator(c.data.seed, offset + self.done))
            self.consistent = False
            self._pending.append(self.train_step(x, pair))
            self.done += 1
            self.consistent = True
            bar.update(1)
            if self.done % c.run.checkpoint_every == 0:
                self.checkpoint()
            if self.on_step is not None or self.done % 5 == 0:
                self._flush()
                last = self.history[-1]
                bar.set_postfix({k: f"{last[k]:.3g}" for k in ("style", "content", "temporal")}, refresh=False)
                if self.on_step is not None:
                    self.on_step(self.done, last)
            if interrupt.set:
                raise KeyboardInterrupt
            limit = c.run.time_limit
            if self.phase == "vector" and limit is not None and time.perf_counter() - t0 >= limit:
                if self.done < self.total:
                    self.timed_out = True
                    log.warning("--time-limit %.0f s reached at iteration %d of %d", limit, self.done, self.total)
                break

    def run(self) -> LearnStyleResult:
        """Set up, learn the vector (then the whole network), write the output.

        Raises:
            StylizeError: bad inputs or outputs. ``KeyboardInterrupt`` is re-raised
                after the resumable state has been saved.
        """
        from tqdm.auto import tqdm

        t_start = time.perf_counter()
        self.setup()
        c = self.config
        self.consistent = True
        while True:
            desc = "style vector" if self.phase == "vector" else "whole network"
            bar = tqdm(
                total=self.total, initial=self.done, disable=not self.progress, unit="it", dynamic_ncols=True, desc=desc
            )
            try:
                with InterruptFlag() as interrupt:
                    self._loop(bar, interrupt)
            except KeyboardInterrupt:
                bar.close()
                if self.consistent:
                    self.checkpoint()
                    log.warning(
                        "interrupted at %s iteration %d; state saved to %s (continue with --resume)",
                        self.phase,
                        self.done,
                        c.state_path,
                    )
                raise
            bar.close()
            self._flush()
            if self.phase == "vector" and c.full_finetune > 0:
                self.vector_iterations = self.done
                self.vector_val = self._validate()
                self.phase, self.done = "finetune", 0
                self._build_phase(None)
                self.checkpoint()
                continue
            if self.phase == "vector":
                self.vector_iterations = self.done
            break
        self.checkpoint()
        return self.finish(time.perf_counter() - t_start)

    # ----------------------------------------------------------------- finish

    def _validate(self) -> dict[str, float]:
        c = self.config
        model = self.model.eval()
        val = load_fixed(self.photos.val[: c.data.val_images], c.data.image_size)
        batch = c.data.batch_size
        losses = validation_losses(model, self.loss_fn, val, batch_size=batch) if len(val) else {}
        if len(val):
            losses["temporal"] = validation_temporal(model, val, batch_size=batch)
        model.train()
        return losses

    def finish(self, seconds: float) -> LearnStyleResult:
        """Validate on the held-out photos and write the style vector (or, after a full fine-tune, the network)."""
        c = self.config
        val = self._validate()
        finetuned = self.phase == "finetune"
        training: dict[str, Any] = {k: v for k, v in c.to_dict().items() if k not in ("painting",)}
        training.update(
            {
                "learn_style": True,
                "style_image": ", ".join(f.name for f in self.files),
                "base_name": self.base_name,
                "init_style": self.init_style,
                "init_style_losses": {k: round(v, 5) for k, v in self.init_scores.items()},
                "iterations_done": self.vector_iterations,
                "finetune_iterations_done": self.done if finetuned else 0,
                "stopped_at_time_limit": self.timed_out,
                "seconds": round(seconds, 1),
                "vgg": self.vgg_info,
                "train_images": len(self.photos.train),
                "val_images": min(len(self.photos.val), c.data.val_images),
                "device": str(self.device),
                "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "off",
            }
        )
        metrics = {f"val_{k}": v for k, v in val.items()}
        if finetuned:
            metrics |= {f"vector_val_{k}": v for k, v in self.vector_val.items()}
        model = self.model.eval().float().cpu()
        info = StyleInfo(name=c.name, **c.credit.painting(), training=training, metrics=metrics)
        if finetuned:
            init_from = {"init_from": {"name": self.base_name, "style": "learned vector"}}
            meta = CheckpointMeta.from_style(
                info, arch=model.config, preset=self.base_preset, training=training | init_from
            )
            path = save_checkpoint(c.run.output, model, meta)
        else:
            path = save_style_vector(c.run.output, TransformNet.from_single([model]), 0, info, base=self.base_name)
        return LearnStyleResult(
            output=path,
            kind="network" if finetuned else "vector",
            base=self.base_name,
            init_style=self.init_style,
            iterations=self.vector_iterations,
            finetune_iterations=self.done if finetuned else 0,
            seconds=seconds,
            val_losses=val,
            history=self.history,
            timed_out=self.timed_out,
        )


def learn_style(config: LearnStyleConfig, *, vgg: VGGFeatures | None = None, progress: bool = True) -> LearnStyleResult:
    """Learn a style vector for ``config``'s painting on a frozen network (see the module docstring)."""
    return StyleLearner(config, vgg=vgg, progress=progress).run()
