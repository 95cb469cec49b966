"""Temporal loss for training: a network that is stable on video by itself.

Per-frame style networks flicker because a tiny change of the input (sensor noise, a
one-pixel pan) re-rolls the texture. Huang et al. 2017 ("Real-time neural style
transfer for videos") and ReCoNet (Gao et al. 2018) add an *output-level temporal
loss*: stylize frames t and t+1, warp the stylization of t along the optical flow, and
penalise its difference from the stylization of t+1 wherever the flow is valid.

They train on video with estimated flow. We synthesize the second frame from each
still training crop instead: a known small motion (random similarity transform plus
a smooth elastic field) and sensor-like noise. Because the motion is known exactly,
no flow has to be estimated, it costs one extra forward/backward of the style
network per crop (the VGG loss is computed on the first frame only), and the
non-occlusion mask is simply "the pixel came from inside the crop".

Randomness comes from a generator seeded by ``(seed, iteration)``, so a resumed run
draws the same motions as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Default weight of the temporal term: off, as in Johnson et al. The term is a masked
#: per-pixel MSE on [0, 1] images (~5e-3 for the networks trained without it), so it
#: needs a large weight to matter beside the normalised perceptual terms (~0.2-1):
#: 30 cut real-clip flicker by a third, 100 by two thirds at a visibly softer style
#: (benchmarks/results/temporal_training_starry_lite.md).
DEFAULT_TEMPORAL_WEIGHT = 0.0


@dataclass(frozen=True)
class Motion:
    """Size of the synthetic motion between the two frames of a training pair.

    Shifts, zoom and elastic amplitude are fractions of the crop size; ``noise`` is
    the standard deviation of the Gaussian noise added to the second frame (on
    [0, 1] pixel values). The defaults move a 256 px crop by at most ~5 pixels.
    """

    max_shift: float = 0.02
    max_rotate_deg: float = 1.5
    max_zoom: float = 0.02
    elastic: float = 0.005
    noise: float = 0.02


@dataclass
class FramePair:
    """The second frame of each crop and how it relates to the first.

    ``grid`` (N, H, W, 2) says where, in normalised coordinates of frame 1, each
    pixel of frame 2 came from (``grid_sample`` convention, ``align_corners=False``);
    ``mask`` (N, 1, H, W) is 1 where that point lies inside frame 1.
    """

    frames: torch.Tensor
    grid: torch.Tensor
    mask: torch.Tensor


def motion_generator(seed: int, iteration: int) -> torch.Generator:
    """A CPU generator that depends only on the run's seed and the iteration."""
    # Large odd multiplier keeps (seed, iteration) pairs from colliding for any
    # realistic number of iterations.
    return torch.Generator().manual_seed((seed * 1_000_003 + iteration) & 0x7FFF_FFFF_FFFF_FFFF)


def random_grid(
    n: int,
    height: int,
    width: int,
    motion: Motion,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Sampling grids (n, H, W, 2) for random small motions, fp32 on ``device``.

    The random numbers (a few per image) are drawn on the CPU from ``generator``;
    only they travel, the full-size grid is built on ``device``.
    """

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2.0 - 1.0

    angle = uniform(n) * math.radians(motion.max_rotate_deg)
    zoom = 1.0 + uniform(n) * motion.max_zoom
    shift = uniform(n, 2) * (2.0 * motion.max_shift)  # normalised coordinates span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # A rotation in *pixel* space, written in normalised coordinates (x spans W, y spans H).
    aspect = width / height
    theta = torch.stack(
        [
            torch.stack([cos, -sin / aspect, shift[:, 0]], dim=1),
            torch.stack([sin * aspect, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta.to(device), [n, 1, height, width], align_corners=False)
    if motion.elastic > 0:
        # A smooth non-rigid component (objects moving differently from the camera):
        # a 4x4 field of random offsets, upsampled bicubically to every pixel.
        coarse = uniform(n, 2, 4, 4) * (2.0 * motion.elastic)
        field = F.interpolate(coarse.to(device), size=(height, width), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return grid


def warp(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample ``images`` (N, C, H, W) at ``grid``; computed in fp32."""
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_pair(images: torch.Tensor, motion: Motion, generator: torch.Generator) -> FramePair:
    """The moved, noisy second frame of each image in a batch (N, 3, H, W) in [0, 1]."""
    n, _, h, w = images.shape
    grid = random_grid(n, h, w, motion, generator, images.device)
    frames = warp(images, grid)
    if motion.noise > 0:
        # Drawn where the frames are, from a device generator seeded by the CPU one:
        # still a function of (seed, iteration), without a frame-sized host->device copy.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        device_rng = torch.Generator(device=images.device).manual_seed(seed)
        noise = torch.randn(frames.shape, generator=device_rng, device=images.device)
        frames = frames + noise * motion.noise
    # A point is valid when it lies at least half a pixel inside frame 1, so the
    # bilinear sample never mixes in the border padding.
    inside = torch.tensor([1.0 - 1.0 / w, 1.0 - 1.0 / h], device=images.device)
    mask = (grid.abs() <= inside).all(dim=-1, keepdim=True).permute(0, 3, 1, 2).float()
    return FramePair(frames.clamp(0.0, 1.0).to(images.dtype), grid, mask)


def temporal_loss(first: torch.Tensor, second: torch.Tensor, pair: FramePair) -> torch.Tensor:
    """Masked MSE between the stylized second frame and the stylized first, warped to it.

    Gradients flow into both stylizations, as in Huang et al. 2017. Returns an fp32 scalar.
    """
    diff = (second.float() - warp(first, pair.grid)) ** 2 * pair.mask
    return diff.sum() / (pair.mask.sum() * first.shape[1]).clamp_min(1.0)


def validation_temporal(
    model: torch.nn.Module,
    images: torch.Tensor,
    motion: Motion | None = None,
    batch_size: int = 4,
    seed: int = 0,
) -> float:
    """Mean temporal loss of ``model`` on fixed synthetic pairs of ``images``.

    Lower is steadier. The pairs depend only on ``seed`` and ``batch_size`` (batch
    ``b`` draws from ``motion_generator(seed, b * batch_size)``), so checkpoints
    scored with the same two compare on the same motions; training scores with its
    own batch size, and ``evaluate_checkpoint`` reuses the recorded one.
    """
    motion = motion or Motion()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device)
            pair = make_pair(x, motion, motion_generator(seed, i))
            out = model(torch.cat([x, pair.frames])).float()
            total += float(temporal_loss(out[: len(x)], out[len(x) :], pair)) * len(x)
            count += len(x)
    return total / max(count, 1)
