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
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device, set_cpu_threads
from ..errors import CheckpointError, InputError, OutputError, StylizeError
from ..files import atomic_output, file_sha256
from ..models.checkpoint import (
    Checkpoint,
    CheckpointMeta,
    StyleInfo,
    base_fingerprint,
    load_checkpoint,
    save_checkpoint,
    save_style_vector,
    search_dirs,
    style_refs,
)
from ..models.transform_net import TransformNet
from ..models.vgg import VGGFeatures, describe_vgg_source, load_vgg_state
from .config import DataConfig, LossConfig, OptimConfig, RunConfig, StyleCredit
from .data import PhotoSet, PositionDataset, load_fixed, load_style_image
from .evaluate import validation_losses
from .losses import PerceptualLoss
from .state import RESUMABLE_PARTS, load_resume_state
from .step import TrainStep, amp_dtype
from .temporal import Motion, make_pair, motion_generator, validation_temporal
from .trainer import _InterruptFlag

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

#: Suffix of the resumable state written beside the output.
LEARN_STATE_SUFFIX = ".learn-state.pt"
STATE_VERSION = 1
#: The single-style network used as the base when no multi-style network is installed:
#: the most trained of the shipped ``full`` networks (4,338 iterations).
DEFAULT_SINGLE_BASE = "starry-night"
#: Held-out photos the starting style is chosen on (cheap: one forward pass per style).
_INIT_PHOTOS = 4

#: Settings that must agree between a run and its resume.
_RESUME_KEYS = (
    "image_size",
    "style_size",
    "batch_size",
    "seed",
    "val_fraction",
    "lr",
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layer_weights",
    "temporal_weight",
    "full_finetune",
    "finetune_lr",
)


@dataclass(frozen=True)
class LearnStyleConfig:
    """Everything a ``learn-style`` run needs; each group validates itself.

    ``loss.style_image`` is the painting: an image file or a folder of images of one
    style. ``optim.iterations`` caps the vector phase (``run.time_limit`` may end it
    sooner); ``full_finetune`` whole-network steps at ``finetune_lr`` follow it.
    ``base`` is a network name or path (None: :func:`default_base`).
    """

    data: DataConfig
    loss: LossConfig
    run: RunConfig
    # A row of norm scales/shifts (values ~1) tolerates a far larger step than conv
    # weights: 3e-2 beat 1e-2 in 5 CPU minutes (benchmarks/results/learn_style.md).
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(iterations=1000, lr=3e-2))
    base: str | None = None
    full_finetune: int = 0
    finetune_lr: float = 1e-3
    credit: StyleCredit = field(default_factory=StyleCredit)

    def __post_init__(self) -> None:
        if self.full_finetune < 0:
            raise StylizeError(f"--full-finetune must be >= 0, got {self.full_finetune}")
        if not self.finetune_lr > 0:
            raise StylizeError(f"--finetune-lr must be a positive number, got {self.finetune_lr}")
        if self.loss.teacher:
            raise StylizeError("learn-style takes no teacher network")

    @property
    def state_path(self) -> Path:
        """Resumable state beside the output: ``NAME.safetensors.learn-state.pt``."""
        return Path(self.run.output + LEARN_STATE_SUFFIX)

    @property
    def name(self) -> str:
        """The new style's name: ``credit.name`` or the output's stem."""
        return self.credit.name or Path(self.run.output).stem

    def to_dict(self) -> dict[str, Any]:
        """Flat settings, as stored in the state file and the output's ``training`` metadata."""
        d = self.data
        loss = self.loss
        return {
            "painting": loss.style_image,
            "data": d.photos,
            "base": self.base,
            "vgg_weights": loss.vgg_weights,
            "image_size": d.image_size,
            "style_size": loss.style_size,
            "batch_size": d.batch_size,
            "seed": d.seed,
            "val_fraction": d.val_fraction,
            "val_images": d.val_images,
            "iterations": self.optim.iterations,
            "lr": self.optim.lr,
            "amp": self.optim.amp,
            "content_weight": loss.content_weight,
            "style_weight": loss.style_weight,
            "tv_weight": loss.tv_weight,
            "style_layer_weights": list(loss.style_layer_weights) if loss.style_layer_weights else None,
            "temporal_weight": loss.temporal_weight,
            "full_finetune": self.full_finetune,
            "finetune_lr": self.finetune_lr,
            "time_limit": self.run.time_limit,
            "device": self.run.device,
            "threads": self.run.threads,
        }


@dataclass
class LearnStyleResult:
    """What a finished run produced.

    ``kind`` is ``"vector"`` (a style-vector file attached to ``base``) or
    ``"network"`` (a standalone checkpoint, after ``full_finetune``).
    """

    output: Path
    kind: str
    base: str
    init_style: str
    iterations: int
    finetune_iterations: int
    seconds: float
    val_losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    timed_out: bool = False


def painting_files(painting: str | Path) -> list[Path]:
    """The image files of a painting: the file itself, or every image in a folder (recursive, sorted).

    Raises:
        InputError: the path does not exist, or a folder holds no images.
    """
    from ..io.images import IMAGE_SUFFIXES

    p = Path(painting)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise InputError(f"painting folder {str(p)!r} holds no images")
        return files
    raise InputError(f"painting {str(p)!r} does not exist")


def default_base() -> str:
    """The network a new style is learned on when ``--base`` is not given.

    An installed multi-style network (the shipped gallery; ``full`` before ``lite``,
    then by name) when there is one, else :data:`DEFAULT_SINGLE_BASE`, a single-style
    network seen as a one-style conditional network. A multi-style base is the better
    choice: its convolutions serve many styles, and the new style blends with all of them.
    """
    networks: dict[Path, str] = {}
    for ref in style_refs().values():
        if ref.kind == "multi" and ref.path not in networks:
            try:
                networks[ref.path] = load_checkpoint(ref.path).meta.preset or ""
            except CheckpointError:
                continue
    if not networks:
        return DEFAULT_SINGLE_BASE
    order = {"full": 0, "lite": 1}
    return str(min(networks, key=lambda p: (order.get(networks[p], 2), p.stem)))


def _conditional(ck: Checkpoint) -> tuple[TransformNet, list[str]]:
    """The base as a conditional network (fp32, frozen) and its style names by row."""
    net = ck.model.float()
    names = ck.meta.style_names
    if not net.num_styles:
        net = TransformNet.from_single([net])
    return net.eval().requires_grad_(False), names


def _view(base: TransformNet, vector: dict[str, torch.Tensor]) -> TransformNet:
    """A single-style network computing what ``base`` computes with style row ``vector``."""
    net = TransformNet(base.config.single())
    state = {k: vector.get(k, v) for k, v in base.state_dict().items()}
    net.load_state_dict(state)
    return net


def _mean_vector(base: TransformNet) -> dict[str, torch.Tensor]:
    rows = [base.get_style_vector(i) for i in range(base.num_styles)]
    return {k: torch.stack([r[k] for r in rows]).mean(dim=0) for k in rows[0]}


def _painting_loss(
    vgg: VGGFeatures, paintings: list[torch.Tensor], loss: LossConfig, device: torch.device
) -> PerceptualLoss:
    """The perceptual loss against one painting (1, 3, H, W), or the mean Gram statistics of several."""
    fns = [
        PerceptualLoss(
            vgg,
            image.to(device),
            content_weight=loss.content_weight,
            style_weight=loss.style_weight,
            tv_weight=loss.tv_weight,
            style_layer_weights=loss.style_layer_weights,
        )
        for image in paintings
    ]
    first = fns[0]
    if len(fns) > 1:
        # Averaged Grams: the style of the set as a whole (a folder of one artist's
        # details). The normalisers follow from the averaged Gram, as for one image.
        with torch.no_grad():
            for name in first.style_layers:
                g = torch.stack([getattr(f, f"gram_{name}") for f in fns]).mean(dim=0)
                getattr(first, f"gram_{name}").copy_(g)
                getattr(first, f"style_norm_{name}").copy_(g.square().mean().clamp_min(1e-12))
            for name in first.content_layers:
                norm = torch.stack([getattr(f, f"content_norm_{name}") for f in fns]).mean()
                getattr(first, f"content_norm_{name}").copy_(norm)
    return first


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
        self.base, self.base_styles = _conditional(ck)
        self.base_preset = ck.meta.preset
        if c.name in self.base_styles:
            raise InputError(f"the base {self.base_name!r} already has a style named {c.name!r}: choose another name")
        self.fingerprint = base_fingerprint(self.base)
        self._warn_if_base_unreachable()

        self.photos = PhotoSet.scan(c.data.photos, c.data.val_fraction)
        if self._vgg is None:
            vgg = VGGFeatures(load_vgg_state(c.loss.vgg_weights))
            self.vgg_info: dict[str, Any] = describe_vgg_source(c.loss.vgg_weights)
        else:
            vgg, self.vgg_info = self._vgg, {"source": "provided"}
        self.loss_fn = _painting_loss(vgg.to(device), paintings, c.loss, device)

        if state is not None:
            if state["base_sha256"] != self.fingerprint:
                raise InputError(f"--resume: the base {self.base_name!r} has changed since the run started")
            self.init_style = str(state["init_style"])
            self.init_scores = dict(state["init_scores"])
        else:
            self.init_style, self.init_scores = self._nearest_style()
        start_vector = (
            _mean_vector(self.base)
            if self.init_style == "(mean)"
            else self.base.get_style_vector(self.base_styles.index(self.init_style))
        )
        self.model = _view(self.base, start_vector).to(device)
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
        from ..io.paths import check_output

        c = self.config
        out, state_path = Path(c.run.output), c.state_path
        if c.run.resume:
            parts = {**RESUMABLE_PARTS, "base_sha256": str, "base_path": str, "init_style": str}
            state = load_resume_state(
                state_path, "learn-style state", parts | {"init_scores": dict, "phase": str, "vector_iterations": int}
            )
            if state.get("version") != STATE_VERSION:
                raise InputError(f"--resume: {str(state_path)!r} is not a learn-style state of this version")
            saved, now = state["config"], c.to_dict()
            diffs = [f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in _RESUME_KEYS if saved.get(k) != now[k]]
            if state.get("painting_sha256") != self._painting_sha256():
                diffs.append(f"painting {c.loss.style_image!r} is not the one the run started with")
            if c.base is not None and state.get("base_name") not in (c.base, Path(c.base).stem):
                diffs.append(f"base {state.get('base_name')!r} -> {c.base!r}")
            if diffs:
                raise InputError(f"--resume: settings differ from the saved run: {'; '.join(diffs)}")
            # Resume on the base the run started on, even if another network is installed since.
            self._resume_base = str(state["base_path"])
            return dict(state)
        check_output(out, self.files, overwrite=c.run.overwrite)
        if Path(c.run.output).suffix != ".safetensors":
            raise OutputError(f"output {c.run.output!r} must end in .safetensors")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {str(out.parent)!r}: {exc.strerror or exc}") from None
        if state_path.exists() and not c.run.overwrite:
            raise OutputError(f"state {str(state_path)!r} exists: pass --resume to continue it or --overwrite")
        return None

    def _painting_sha256(self) -> str:
        # By content, not path: --resume must refuse a painting replaced under the same name.
        if self._painting_hash is None:
            h = hashlib.sha256()
            for f in self.files:
                h.update(file_sha256(f).encode())
            self._painting_hash = h.hexdigest()
        return self._painting_hash

    def _warn_if_base_unreachable(self) -> None:
        # A vector file names its base by stem, found beside the vector or in the styles folders.
        out_dir = Path(self.config.run.output).resolve().parent
        dirs = [out_dir, *(d.resolve() for d in search_dirs())]
        if not any((d / self.base_path.name).is_file() for d in dirs) and not self.config.full_finetune:
            log.warning(
                "the base network %s is neither beside %s nor in a styles folder: copy it there to load the style",
                self.base_path,
                self.config.run.output,
            )

    def _nearest_style(self) -> tuple[str, dict[str, float]]:
        """The base style (or the mean of all) whose output is nearest the painting in style loss."""
        photos = self.photos.val[:_INIT_PHOTOS] or self.photos.train[:_INIT_PHOTOS]
        images = load_fixed(photos, self.config.data.image_size).to(self.device)
        candidates: dict[str, dict[str, torch.Tensor]] = {
            name: self.base.get_style_vector(i) for i, name in enumerate(self.base_styles)
        }
        if self.base.num_styles > 1:
            candidates["(mean)"] = _mean_vector(self.base)
        scores: dict[str, float] = {}
        for name, vector in candidates.items():
            net = _view(self.base, vector).to(self.device).eval()
            scores[name] = validation_losses(net, self.loss_fn, images)["style"]
        best = min(scores, key=lambda k: scores[k])
        log.info("starting from %s (style loss %.3g)", best, scores[best])
        return best, scores

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
        batch = c.data.batch_size
        total = c.optim.iterations if self.phase == "vector" else c.full_finetune
        # The data order is a pure function of (seed, position): a resumed run sees the
        # same crops. The whole-network phase continues after the vector phase's crops.
        offset = 0 if self.phase == "vector" else self.vector_iterations
        self.total = total
        self.loader = torch.utils.data.DataLoader(
            PositionDataset(self.photos.train, c.data.image_size, c.data.seed),
            batch_size=batch,
            sampler=range((offset + self.done) * batch, (offset + total) * batch),  # type: ignore[arg-type]
            num_workers=0,
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

    def _loop(self, bar: Any, interrupt: _InterruptFlag) -> None:
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
                with _InterruptFlag() as interrupt:
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
        credit = c.credit
        model = self.model.eval().float().cpu()
        if finetuned:
            meta = CheckpointMeta(
                name=c.name,
                arch=model.config,
                preset=self.base_preset,
                title=credit.title,
                artist=credit.artist,
                year=credit.year,
                credit=credit.credit,
                training=training | {"init_from": {"name": self.base_name, "style": "learned vector"}},
                metrics=metrics,
            )
            path = save_checkpoint(c.run.output, model, meta)
        else:
            info = StyleInfo(
                name=c.name,
                title=credit.title,
                artist=credit.artist,
                year=credit.year,
                credit=credit.credit,
                training=training,
                metrics=metrics,
            )
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
