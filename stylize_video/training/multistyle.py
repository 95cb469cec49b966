"""Distil several single-style networks into one multi-style network (issue 17, requirement 2).

The student starts as :meth:`TransformNet.from_single` of the teachers: the
convolutions of the first teacher and, for every style, the instance-norm scale and
shift of its own teacher. It is then trained so that ``student(x, style=onehot(s))``
reproduces ``teacher_s(x)``: the teachers' outputs are the targets, so no VGG pass is
needed and a step costs one student forward/backward plus one teacher forward per
crop (cheap on a CPU for ``lite``).

Each batch mixes styles: crop ``j`` of step ``i`` is painted in style ``(i * B + j) % N``
(per-image weights, one forward pass), so every style gets the same share of the
updates and a resumed run reproduces an uninterrupted one (the data order and the
style assignment are functions of the position, as in :mod:`.trainer`).

Loss: L1 on RGB plus ``blur_weight`` times L1 on a 4x average-pooled copy (the
colours and large shapes a style is judged by, without chasing the teacher's exact
high-frequency texture), optionally plus the temporal loss of :mod:`.temporal` on
the student alone.

The run keeps a resumable state beside the output (``OUTPUT.train-state.pt``);
Ctrl-C/SIGTERM saves it whole, ``time_limit`` ends the loop early and finishes as
usual. The checkpoint names each style as its teacher and copies its credits, the
loss settings it was trained with and its validation losses; per-style distillation
error on the held-out photos (and, with a VGG and the paintings, the perceptual
losses next to the teacher's: :func:`compare_with_teachers`) go into each style's
metrics.

This module holds the loop (:class:`MultiStyleDistiller`) and its loss; the settings
are in :mod:`.multistyle_config` and the teacher comparison in
:mod:`.multistyle_report` (both re-exported here).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import resolve_device, set_cpu_threads
from ..errors import InputError, StylizeError
from ..files import atomic_output, file_sha256
from ..models.checkpoint import Checkpoint, CheckpointMeta, StyleInfo, load_checkpoint, save_checkpoint
from ..models.transform_net import TransformNet
from .data import PhotoSet, load_fixed, position_loader
from .evaluate import FixedStyle, recorded_loss
from .losses import PerceptualLoss
from .multistyle_config import RESUME_KEYS, STATE_VERSION, DistillConfig, DistillResult
from .multistyle_report import StyleComparison, compare_with_teachers, comparison_markdown, record_comparison
from .state import RESUMABLE_PARTS, check_fresh_start, load_resume_state, setting_diffs
from .step import amp_dtype, autocast_for
from .temporal import Motion, make_pair, motion_generator, temporal_loss, validation_temporal

__all__ = [
    "RESUME_KEYS",
    "STATE_VERSION",
    "DistillConfig",
    "DistillResult",
    "MultiStyleDistiller",
    "StyleComparison",
    "compare_with_teachers",
    "comparison_markdown",
    "distill_loss",
    "record_comparison",
    "style_assignment",
]

log = logging.getLogger(__name__)

#: Teacher training settings each style keeps in its metadata: what ``evaluate-style``
#: needs to score the style exactly as its teacher was scored.
_TEACHER_KEYS = (
    "style_image",
    "style_size",
    "image_size",
    "batch_size",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layer_weights",
    "temporal_weight",
    "vgg",
)


def style_assignment(position: int, batch: int, num_styles: int) -> torch.Tensor:
    """Style index of each crop of the batch starting at sample ``position`` (cycles through the styles)."""
    return torch.arange(position, position + batch) % num_styles


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, blur_weight: float = 1.0) -> torch.Tensor:
    """L1 on RGB plus ``blur_weight`` x L1 on 4x average-pooled copies; fp32 scalar.

    Shape: two (B, 3, H, W) images in [0, 1].
    """
    s, t = student.float(), teacher.float()
    loss = F.l1_loss(s, t)
    if blur_weight > 0 and min(s.shape[-2:]) >= 4:
        loss = loss + blur_weight * F.l1_loss(F.avg_pool2d(s, 4), F.avg_pool2d(t, 4))
    return loss


def _onehot(styles: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    return F.one_hot(styles, n).float().to(device)


def _teacher_outputs(teachers: Sequence[TransformNet], x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Each crop painted by the teacher of its style (one forward per style present)."""
    out = torch.empty_like(x)
    with torch.no_grad():
        for s in styles.unique().tolist():
            idx = (styles == s).nonzero().flatten().to(x.device)
            out[idx] = teachers[s](x[idx]).to(out.dtype)
    return out


def _load_teachers(names: Sequence[str]) -> list[Checkpoint]:
    teachers = [load_checkpoint(t) for t in names]
    for name, ck in zip(names, teachers, strict=True):
        if ck.model.num_styles:
            raise InputError(f"teacher {name!r} is a multi-style network: give single-style checkpoints")
    seen: dict[str, str] = {}
    for name, ck in zip(names, teachers, strict=True):
        if ck.meta.name in seen:
            raise InputError(f"teachers {seen[ck.meta.name]!r} and {name!r} are both named {ck.meta.name!r}")
        seen[ck.meta.name] = name
    base = teachers[0].model.config
    for name, ck in zip(names, teachers, strict=True):
        if ck.model.config != base:
            raise InputError(f"teacher {name!r} has another architecture than {names[0]!r}")
    return teachers


class MultiStyleDistiller:
    """One distillation run: :meth:`setup`, :meth:`step` per batch, :meth:`checkpoint`, :meth:`finish`.

    :meth:`run` drives them (progress bar, Ctrl-C/SIGTERM saves the state and re-raises
    ``KeyboardInterrupt``, ``time_limit`` finishes early).

    Args:
        config: the run's settings.
        progress: show a tqdm bar.
        on_step: called after each step with ``(iteration, losses)``; raising
            ``KeyboardInterrupt`` there behaves like Ctrl-C (tests use it).
        vgg: a loss network to use instead of loading ``config.vgg_weights`` (tests).
    """

    def __init__(
        self,
        config: DistillConfig,
        *,
        progress: bool = True,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        vgg: torch.nn.Module | None = None,
    ) -> None:
        self.config, self.progress, self.on_step = config, progress, on_step
        self._vgg = vgg
        self.history: list[dict[str, float]] = []
        self.start = self.done = 0
        self.timed_out = False
        self._t_start = time.perf_counter()
        self._t_stop: float | None = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Load the teachers, build the student (or restore the saved state), the optimizer and the data.

        Raises:
            StylizeError: bad teachers, data or output; a resume whose settings differ.
        """
        c = self.config
        self.device = resolve_device(c.device)
        set_cpu_threads(c.threads)
        ckpts = _load_teachers(c.teachers)
        self.teacher_ckpts = ckpts
        self.teacher_sha = [file_sha256(ck.path) if ck.path else "" for ck in ckpts]
        state = self._check_start()
        self.teachers = [ck.model.to(self.device).eval() for ck in ckpts]
        self.student = self._initial_student(ckpts).to(self.device).float().train()
        self.student.requires_grad_(True)
        self.amp_dtype = amp_dtype(c.amp, self.device)
        self.autocast = autocast_for(self.amp_dtype, self.device.type)
        self.losses = self._perceptual_losses(ckpts) if c.perceptual_weight > 0 else []
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=c.lr)
        if state is not None:
            self.student.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:
                group["lr"] = c.lr
            self.history = list(state["history"])
            self.start = self.done = int(state["iteration"])
            log.info("resuming %s at iteration %d", c.state_path, self.start)
        if self.start > c.iterations:
            raise StylizeError(f"--iterations {c.iterations} is below the {self.start} already done")
        self.photos = PhotoSet.scan(c.photos, c.val_fraction)
        if not self.photos.train:
            raise InputError(f"{c.photos!r} has no training photos")
        self.loader = position_loader(
            self.photos.train, c.image_size, c.seed, c.batch_size, range(self.start, c.iterations)
        )
        self.motion = Motion()

    def _initial_student(self, ckpts: list[Checkpoint]) -> TransformNet:
        init = self.config.init
        if not init:
            return TransformNet.from_single([ck.model for ck in ckpts])
        start = load_checkpoint(init)
        names = [ck.meta.name for ck in ckpts]
        if start.style_names != names or start.model.config.single() != ckpts[0].model.config:
            raise InputError(
                f"--init {init!r} holds {', '.join(start.style_names)}: it must hold the teachers' styles "
                f"({', '.join(names)}) in that order, with their architecture"
            )
        return start.model

    def _perceptual_losses(self, ckpts: list[Checkpoint]) -> list[PerceptualLoss]:
        """Each style's loss against its own painting, with its teacher's recorded weights."""
        from ..models.vgg import VGGFeatures, load_vgg_state

        c = self.config
        assert c.style_images is not None  # checked by DistillConfig
        vgg = self._vgg if self._vgg is not None else VGGFeatures(load_vgg_state(c.vgg_weights))
        vgg = vgg.to(self.device)
        losses = []
        for ck in ckpts:
            recorded = ck.meta.training.get("style_image")
            path = Path(c.style_images) / str(recorded) if recorded else None
            if path is None or not path.is_file():
                raise InputError(
                    f"teacher {ck.meta.name!r} was trained on {recorded or 'an unrecorded painting'!r}, "
                    f"not found in --style-images {c.style_images!r}"
                )
            losses.append(recorded_loss(vgg, path, ck.meta.training, self.device))  # type: ignore[arg-type]
        return losses

    def _check_start(self) -> dict[str, Any] | None:
        c, state_path = self.config, self.config.state_path
        if not c.resume:
            inputs = [Path(ck.path) for ck in self.teacher_ckpts if ck.path]
            check_fresh_start(Path(c.output), state_path, inputs, overwrite=c.overwrite, what="distillation state")
            return None
        state = load_resume_state(state_path, "distillation state", {**RESUMABLE_PARTS, "teacher_sha256": list})
        if state.get("version") != STATE_VERSION:
            raise InputError(f"--resume: {str(state_path)!r} is not a distillation state")
        # States written before a setting existed lack its key: read those as its default.
        defaults = {f.name: f.default for f in dataclasses.fields(DistillConfig)}
        diffs = setting_diffs(state["config"], c.to_dict(), RESUME_KEYS, defaults)
        if state["teacher_sha256"] != self.teacher_sha:
            diffs.append("the teachers are not the networks the run started with")
        if diffs:
            raise InputError(f"--resume: settings differ from the saved run: {'; '.join(diffs)}")
        return dict(state)

    # ------------------------------------------------------------------- loop
    KEYS = ("total", "distill", "temporal", "content", "style")

    def step(self, batch: torch.Tensor) -> dict[str, float]:
        """One update on a batch (B, 3, H, W) in [0, 1]; returns the loss terms."""
        c = self.config
        n = self.student.num_styles
        x = batch.to(self.device)
        styles = style_assignment(self.done * c.batch_size, len(x), n)
        w = _onehot(styles, n, self.device)
        zero = x.new_zeros((), dtype=torch.float32)
        temporal, content, style = zero, zero, zero
        with self.autocast():
            target = _teacher_outputs(self.teachers, x, styles)
            if c.temporal_weight > 0:
                pair = make_pair(x, self.motion, motion_generator(c.seed, self.done))
                both = self.student(torch.cat([x, pair.frames]), style=torch.cat([w, w]))
                y = both[: len(x)]
                temporal = temporal_loss(y, both[len(x) :], pair) * c.temporal_weight
            else:
                y = self.student(x, style=w)
            distill = distill_loss(y, target, c.blur_weight) * c.distill_weight
            total = distill + temporal
            if self.losses:
                content_targets = self.losses[0].content_targets(x)
                for s in styles.unique().tolist():
                    idx = (styles == s).nonzero().flatten().to(x.device)
                    terms = self.losses[s](y[idx].float(), {k: v[idx] for k, v in content_targets.items()})
                    share = len(idx) / len(x)  # the batch mean, as one loss over the whole batch would be
                    total = total + terms["total"] * (share * c.perceptual_weight)
                    content = content + terms["content"].detach() * share
                    style = style + terms["style"].detach() * share
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        values = torch.stack([t.detach().float() for t in (total, distill, temporal, content, style)]).tolist()
        losses = dict(zip(self.KEYS, values, strict=True))
        self.history.append(losses)
        self.done += 1
        if self.done % c.checkpoint_every == 0 or self.done == c.iterations:
            self.checkpoint()
        return losses

    def checkpoint(self) -> None:
        """Save the resumable state after the steps done so far (atomically)."""
        with atomic_output(self.config.state_path) as tmp:
            torch.save(
                {
                    "version": STATE_VERSION,
                    "config": self.config.to_dict(),
                    "teacher_sha256": self.teacher_sha,
                    "iteration": self.done,
                    "model": self.student.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "history": self.history,
                },
                tmp,
            )

    def images_per_s(self) -> float:
        """Crops per second of the loop (validation excluded)."""
        elapsed = (self._t_stop or time.perf_counter()) - self._t_start
        return (self.done - self.start) * self.config.batch_size / max(elapsed, 1e-9)

    def run(self) -> DistillResult:
        """Set up, train until ``iterations`` or the time limit, finish.

        Raises:
            StylizeError: bad inputs or outputs. ``KeyboardInterrupt`` is re-raised
                after the resumable state has been saved.
        """
        from tqdm.auto import tqdm

        from .trainer import InterruptFlag

        c = self.config
        self.setup()
        bar = tqdm(total=c.iterations, initial=self.start, disable=not self.progress, unit="it", dynamic_ncols=True)
        self._t_start = time.perf_counter()
        try:
            with InterruptFlag() as interrupt:
                for batch in self.loader:
                    losses = self.step(batch)
                    bar.update(1)
                    if self.done % 10 == 0:
                        shown = {k: f"{v:.4g}" for k, v in losses.items() if v}
                        bar.set_postfix(shown | {"img_s": f"{self.images_per_s():.1f}"}, refresh=False)
                    if self.on_step is not None:
                        self.on_step(self.done, losses)
                    if interrupt.set:
                        raise KeyboardInterrupt
                    if c.time_limit is not None and time.perf_counter() - self._t_start >= c.time_limit:
                        if self.done < c.iterations:
                            self.timed_out = True
                            log.warning("--time-limit reached at iteration %d of %d", self.done, c.iterations)
                        self.checkpoint()
                        break
        except KeyboardInterrupt:
            bar.close()
            # step() applies the update and counts it together: the state is whole here.
            self.checkpoint()
            log.warning(
                "interrupted at iteration %d; state saved to %s (continue with --resume)", self.done, c.state_path
            )
            raise
        bar.close()
        self._t_stop = time.perf_counter()
        return self.finish()

    # ----------------------------------------------------------------- finish
    def validate(self, images: torch.Tensor, batch_size: int = 8) -> dict[str, dict[str, float]]:
        """Per style: distillation loss against its teacher and the student's temporal loss on ``images``."""
        student = self.student.eval()
        n = student.num_styles
        out: dict[str, dict[str, float]] = {}
        for s, ck in enumerate(self.teacher_ckpts):
            total = 0.0
            w = _onehot(torch.tensor([s]), n, self.device)
            with torch.no_grad():
                for i in range(0, len(images), batch_size):
                    x = images[i : i + batch_size].to(self.device)
                    total += float(distill_loss(student(x, style=w), self.teachers[s](x), self.config.blur_weight))
            batches = max(1, math.ceil(len(images) / batch_size))
            fixed = FixedStyle(student, w)
            bs = int(ck.meta.training.get("batch_size", 4))
            out[ck.meta.name] = {
                "val_distill": total / batches,
                "val_temporal": validation_temporal(fixed, images, batch_size=bs) if len(images) else float("nan"),
            }
        return out

    def finish(self) -> DistillResult:
        """Validate each style on the held-out photos and write the multi-style checkpoint."""
        c = self.config
        images_per_s = self.images_per_s()
        val = load_fixed(self.photos.val[: c.val_images], c.image_size)
        per_style = self.validate(val) if len(val) else {ck.meta.name: {} for ck in self.teacher_ckpts}
        styles = [
            _style_info(ck, sha, per_style[ck.meta.name])
            for ck, sha in zip(self.teacher_ckpts, self.teacher_sha, strict=True)
        ]
        first = self.teacher_ckpts[0].meta
        training = {k: v for k, v in c.to_dict().items() if k not in ("resume", "overwrite", "output", "name")}
        training.update(
            {
                "method": "distillation from single-style teachers",
                "iterations_done": self.done,
                "stopped_at_time_limit": self.timed_out,
                "train_images": len(self.photos.train),
                "val_images": len(val),
                "device": str(self.device),
                "images_per_s": round(images_per_s, 3),
            }
        )
        mean = {
            "val_distill": sum(m.get("val_distill", 0.0) for m in per_style.values()) / max(len(per_style), 1),
        }
        meta = CheckpointMeta(
            name=c.name or Path(c.output).stem,
            arch=self.student.config,
            preset=first.preset,
            title=f"{len(styles)} styles",
            credit="distilled from " + ", ".join(s.name for s in styles),
            training=training,
            metrics=mean,
            styles=styles,
        )
        path = save_checkpoint(c.output, self.student.float().cpu().eval(), meta)
        self.student.to(self.device)
        val_distill = {k: v.get("val_distill", float("nan")) for k, v in per_style.items()}
        return DistillResult(path, self.done, self.history, val_distill, images_per_s, self.timed_out)


def _style_info(ck: Checkpoint, sha: str, metrics: dict[str, float]) -> StyleInfo:
    """A teacher as one style of the student: its name and credits, the training settings
    ``evaluate-style`` needs, where it came from, and the student's ``metrics`` for it."""
    m = ck.meta
    training = {k: m.training[k] for k in _TEACHER_KEYS if k in m.training}
    training["distilled_from"] = {
        "name": m.name,
        "file": ck.path.name if ck.path else None,
        "sha256": sha[:16],
        "iterations": m.training.get("total_iterations", m.training.get("iterations_done")),
        "metrics": dict(m.metrics),
    }
    return dataclasses.replace(StyleInfo.from_meta(m), training=training, metrics=dict(metrics))
