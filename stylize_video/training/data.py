"""Training photos: discovery (folder or tar), a fixed validation split, deterministic crops.

Determinism is by *position*, not by RNG state: sample ``p`` of a run (0, 1, 2, ...)
is file ``perm_e[p % n]`` of epoch ``e = p // n`` (a permutation seeded by
``seed`` and ``e``), cropped with an RNG seeded by ``(seed, p)``. A resumed run that
starts at position ``k * batch`` therefore sees exactly the batches an uninterrupted
run would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    """Where one image's encoded bytes are: a file, or a byte range of a tar."""

    name: str
    path: str
    offset: int = 0
    size: int = -1

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            if self.size < 0:
                return f.read()
            f.seek(self.offset)
            return f.read(self.size)


def decode(data: bytes) -> np.ndarray | None:
    """Encoded image bytes -> RGB uint8 HxWx3, or ``None`` when undecodable."""
    import cv2

    if not data:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or min(img.shape[:2]) < 2:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def list_images(source: str | os.PathLike[str]) -> list[ImageRecord]:
    """All images under a folder (recursive) or inside a ``.tar``, sorted by name.

    Raises:
        InputError: the source does not exist or holds no image files.
    """
    src = Path(source)
    if not src.exists():
        raise InputError(f"training data {str(src)!r} does not exist")
    records: list[ImageRecord] = []
    if src.is_dir():
        for p in src.rglob("*"):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                records.append(ImageRecord(p.relative_to(src).as_posix(), str(p)))
    elif tarfile.is_tarfile(src):
        # Uncompressed tar: members are read by byte range, no extraction needed and
        # every DataLoader worker can seek independently.
        with tarfile.open(src, "r:") as tar:
            for m in tar.getmembers():
                if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES:
                    records.append(ImageRecord(m.name, str(src), m.offset_data, m.size))
    else:
        raise InputError(f"training data {str(src)!r} is neither a folder nor an uncompressed .tar")
    if not records:
        raise InputError(f"training data {str(src)!r} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(records, key=lambda r: r.name)


def is_validation(name: str, fraction: float) -> bool:
    """Fixed split by a hash of the file name: stable across machines and runs."""
    h = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:4], "big")
    return h / 2**32 < fraction


def filter_readable(records: Sequence[ImageRecord], threads: int = 4) -> tuple[list[ImageRecord], list[str]]:
    """Decode every image once; return the readable ones and the names of the others."""

    def ok(r: ImageRecord) -> bool:
        try:
            return decode(r.read_bytes()) is not None
        except OSError:
            return False

    # cv2 releases the GIL while decoding, so threads scale.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        flags = list(pool.map(ok, records))
    good = [r for r, f in zip(records, flags, strict=True) if f]
    bad = [r.name for r, f in zip(records, flags, strict=True) if not f]
    for name in bad:
        log.warning("skipping unreadable image %s", name)
    return good, bad


@dataclass
class PhotoSet:
    """A training source split into train/validation, unreadable files removed."""

    train: list[ImageRecord]
    val: list[ImageRecord]
    skipped: list[str]

    @classmethod
    def scan(cls, source: str | os.PathLike[str], val_fraction: float = 0.05, threads: int = 4) -> PhotoSet:
        records, skipped = filter_readable(list_images(source), threads)
        val = [r for r in records if is_validation(r.name, val_fraction)]
        train = [r for r in records if not is_validation(r.name, val_fraction)]
        if not val and len(train) > 1:
            val = [train.pop()]  # tiny folders still get one validation image
        if not train:
            raise InputError(f"training data {str(source)!r} has no readable training images ({len(skipped)} skipped)")
        return cls(train, val, skipped)


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


def random_resized_crop(
    rgb: np.ndarray, size: int, rng: np.random.Generator, scale: tuple[float, float] = (0.5, 1.0)
) -> np.ndarray:
    """A random square crop covering ``scale`` of the short side's square, resized to ``size``, random h-flip."""
    import cv2

    h, w = rgb.shape[:2]
    short = min(h, w)
    side = max(2, round(float(short * np.sqrt(rng.uniform(*scale)))))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = rgb[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    out = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and take the central square."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y : y + size, x : x + size]


class PositionDataset(torch.utils.data.Dataset[torch.Tensor]):
    """Index = global sample position in the run; returns (3, S, S) float in [0, 1].

    Any non-negative index is valid (epochs repeat with fresh permutations), so a
    sampler over ``range(start, stop)`` defines the run's data order exactly.
    """

    def __init__(self, records: Sequence[ImageRecord], size: int, seed: int) -> None:
        self.records = list(records)
        self.size = size
        self.seed = seed
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records)

    def _perm(self, epoch: int) -> np.ndarray:
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(len(self.records))
            self._perms = {epoch: perm}  # one epoch at a time is all a sequential sampler needs
        return perm

    def __getitem__(self, position: int) -> torch.Tensor:
        n = len(self.records)
        record = self.records[int(self._perm(position // n)[position % n])]
        rgb = decode(record.read_bytes())
        if rgb is None:
            # Scanned as readable at start: the file changed under us.
            raise InputError(f"training image {record.name!r} became unreadable during training")
        rng = np.random.default_rng([self.seed, position])
        return _to_tensor(random_resized_crop(rgb, self.size, rng))


def position_loader(
    records: Sequence[ImageRecord],
    size: int,
    seed: int,
    batch_size: int,
    steps: range,
    *,
    workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader[torch.Tensor]:
    """Batches of :class:`PositionDataset` crops for the steps ``steps`` of a run.

    The sampler *is* the data order (positions ``steps.start * batch_size`` to
    ``steps.stop * batch_size``), so a run resumed at step ``k`` sees the batches an
    uninterrupted one would. Train, learn-style and distill-styles all load this way.
    """
    return torch.utils.data.DataLoader(
        PositionDataset(records, size, seed),
        batch_size=batch_size,
        sampler=range(steps.start * batch_size, steps.stop * batch_size),  # type: ignore[arg-type]
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
    )


def load_fixed(records: Sequence[ImageRecord], size: int) -> torch.Tensor:
    """Center crops of ``records`` as one (N, 3, size, size) batch (validation, samples)."""
    images = []
    for r in records:
        rgb = decode(r.read_bytes())
        if rgb is None:
            raise InputError(f"validation image {r.name!r} is not readable")
        images.append(_to_tensor(center_crop(rgb, size)))
    return torch.stack(images) if images else torch.empty(0, 3, size, size)


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
