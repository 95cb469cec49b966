"""Training throughput: our trainer's step against a pytorch/examples-style loop.

The baseline re-creates, in our own words, the training step of pytorch/examples
``fast_neural_style``: its transformer network (reflection-pad modules,
``nn.InstanceNorm2d``, nearest upsample + conv, 0..255 linear output), inputs scaled
to 0..255 and normalised per batch, VGG16 run to relu4_3 on *both* the output and the
input, Gram matrices via ``bmm``, MSE content (relu2_2) and style losses, Adam 1e-3,
fp32 eager. Ours is :class:`stylize_video.training.train.TrainStep` exactly as
``stylize-video train`` runs it: fp32, and bf16 autocast + channels_last (the
``--amp auto`` choice on CPUs with AVX512-BF16/AMX).

Both see the same photo crops already in memory (data loading is excluded: it is
<1% of a CPU step), use the same VGG weights, and run interleaved, one step each in
turn, so other processes' load hits all alike. We report images/s from the median
step time.

    python -m benchmarks.train_speed --vgg-weights ../shared/weights/vgg16_imagenet_relu4_3.safetensors \\
        --data ../shared/data/photos --threads 2 --sizes 256 128 --presets full lite
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.harness import command_line, every_round, interleaved, machine_info, spread, write_results
from stylize_video.devices import cpu_has_fast_bf16
from stylize_video.models.transform_net import PRESETS, TransformNet
from stylize_video.models.vgg import VGGFeatures, load_vgg_state
from stylize_video.training.losses import PerceptualLoss
from stylize_video.training.train import TrainStep, load_style_image

# ------------------------------------------------------------------ baseline


class _ExConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv(self.pad(x))


class _ExResidual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1, self.n1 = _ExConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.c2, self.n2 = _ExConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.n2(self.c2(F.relu(self.n1(self.c1(x)))))


class ExamplesTransformer(nn.Module):
    """The pytorch/examples transformer network layout (0..255 in, 0..255 out)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.ModuleList([_ExConv(3, 32, 9), _ExConv(32, 64, 3, 2), _ExConv(64, 128, 3, 2)])
        self.down_norms = nn.ModuleList(nn.InstanceNorm2d(c, affine=True) for c in (32, 64, 128))
        self.res = nn.Sequential(*(_ExResidual(128) for _ in range(5)))
        self.up = nn.ModuleList([_ExConv(128, 64, 3, upsample=2), _ExConv(64, 32, 3, upsample=2)])
        self.up_norms = nn.ModuleList(nn.InstanceNorm2d(c, affine=True) for c in (64, 32))
        self.out = _ExConv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.down, self.down_norms, strict=True):
            x = F.relu(norm(conv(x)))
        x = self.res(x)
        for conv, norm in zip(self.up, self.up_norms, strict=True):
            x = F.relu(norm(conv(x)))
        return self.out(x)


def _examples_normalize(batch: torch.Tensor) -> torch.Tensor:
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    return (batch / 255.0 - mean) / std


def _examples_gram(y: torch.Tensor) -> torch.Tensor:
    b, ch, h, w = y.size()
    f = y.view(b, ch, w * h)
    return f.bmm(f.transpose(1, 2)) / (ch * h * w)


class ExamplesStep:
    """A pytorch/examples-style training step: all four VGG slices on output *and* input."""

    def __init__(self, vgg: VGGFeatures, style: torch.Tensor) -> None:
        self.net = ExamplesTransformer()
        self.opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        self.features = vgg.features
        self.layers = (3, 8, 15, 22)
        with torch.no_grad():
            self.gram_style = [_examples_gram(f) for f in self._vgg(_examples_normalize(style * 255.0))]

    def _vgg(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                out.append(x)
        return out

    def __call__(self, x01: torch.Tensor) -> float:
        x = x01 * 255.0
        self.opt.zero_grad()
        y = self.net(x)
        fy = self._vgg(_examples_normalize(y))
        fx = self._vgg(_examples_normalize(x))
        content = 1e5 * F.mse_loss(fy[1], fx[1])
        style = sum(
            (F.mse_loss(_examples_gram(a), g.expand(len(x), -1, -1)) for a, g in zip(fy, self.gram_style, strict=True)),
            start=torch.zeros(()),
        )
        total = content + 1e10 * style
        total.backward()
        self.opt.step()
        return float(total.detach())


# ----------------------------------------------------------------------- ours


def ours_step(preset: str, vgg: VGGFeatures, style: torch.Tensor, bf16: bool) -> Callable[[torch.Tensor], Any]:
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = TransformNet(PRESETS[preset]).to(memory_format=fmt).train()
    # A private copy: Module.to() converts in place and the baseline shares `vgg`.
    loss_fn = PerceptualLoss(copy.deepcopy(vgg).to(memory_format=fmt), style)
    step = TrainStep(model, loss_fn, torch.optim.Adam(model.parameters(), 1e-3), None, torch.bfloat16 if bf16 else None)

    def run(x: torch.Tensor) -> Any:
        return step(x.contiguous(memory_format=fmt)).tolist()

    return run


def _timed(step: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
    """Seconds one training step takes."""
    t0 = time.perf_counter()
    step(x)
    return time.perf_counter() - t0


def _photo_batch(data: str | None, size: int, batch: int) -> torch.Tensor:
    if data is None:
        return torch.rand(batch, 3, size, size)
    from stylize_video.training.data import list_images, load_fixed

    return load_fixed(list_images(data)[:batch], size)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--data", default=None, help="photo folder (default: random images)")
    p.add_argument("--style-image", default=None, help="painting (default: random image)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256])
    p.add_argument("--presets", nargs="+", default=["full"], choices=["full", "lite"])
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps per contender (after 1 warm-up)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)

    vgg = VGGFeatures(load_vgg_state(args.vgg_weights))
    style = load_style_image(args.style_image, 512) if args.style_image else torch.rand(1, 3, 400, 512)
    use_bf16 = [False, True] if cpu_has_fast_bf16() else [False]
    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.sizes:
            x = _photo_batch(args.data, size, args.batch_size)
            contenders: dict[str, Callable[[torch.Tensor], Any]] = {}
            if not args.no_baseline:
                contenders["pytorch/examples-style full fp32"] = ExamplesStep(vgg, style)
            for preset in args.presets:
                for bf16 in use_bf16:
                    contenders[f"ours {preset} {'bf16+channels_last' if bf16 else 'fp32'}"] = ours_step(
                        preset, vgg, style, bf16
                    )
            for fn in contenders.values():  # warm-up (allocator, oneDNN primitive cache)
                fn(x)

            times = interleaved({k: every_round(_timed, fn, x) for k, fn in contenders.items()}, args.steps)
            base = spread(times["pytorch/examples-style full fp32"])["median"] if not args.no_baseline else None
            for name, ts in times.items():
                med = spread(ts)["median"]
                row = {
                    "contender": name,
                    "threads": threads,
                    "size": size,
                    "batch": args.batch_size,
                    "s_per_step": med,
                    "images_per_s": args.batch_size / med,
                    "vs_examples": (base / med) if base else None,
                }
                rows.append(row)
                print(
                    f"threads {threads} size {size}: {name:<34} {med:7.2f} s/step {args.batch_size / med:6.2f} img/s",
                    flush=True,
                )
    notes = [
        "ours = stylize_video.training.train.TrainStep (what `stylize-video train` runs); "
        "the baseline re-creates pytorch/examples fast_neural_style's step",
        "ours computes the content target only up to relu2_2 and keeps Grams in fp32 under bf16",
    ]
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        notes.append(
            f"the machine was oversubscribed (load {load:.1f} on {os.cpu_count()} CPUs): compare contenders "
            "within one thread count (they ran interleaved), not absolute numbers or thread counts"
        )
    cols = ["contender", "threads", "size", "batch", "s_per_step", "images_per_s", "vs_examples"]
    _, md, _ = write_results(
        "train_speed",
        machine_info(),
        [("Training throughput (median of interleaved steps)", rows, cols)],
        out_dir=args.out_dir,
        config={"command": command_line("train_speed", argv)},
        notes=notes,
    )
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
