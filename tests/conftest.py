"""Shared fixtures: tiny networks, generated images, seeded RNG, CUDA marker."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from stylize_video.models.transform_net import NetConfig, TransformNet

# A shell starts background jobs (`pytest ... &`) with SIGINT ignored, `nohup` ignores
# SIGHUP, and an ignored signal stays ignored in every child: the stop-signal tests'
# subprocesses would never see theirs and run to the end. Restored here, each child
# starts with the default (the tests of an ignored SIGHUP set it up themselves).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

TINY = NetConfig(channels=(4, 8), res_blocks=1, head_kernel=3, tail_kernel=3)
SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Compiled OpenVINO models and exported graphs go to a per-session folder, not ~/.cache.
    monkeypatch.setenv("STYLIZE_VIDEO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    # Keep random state from leaking between tests; few threads keep the 2-core CI responsive.
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture
def tiny_net() -> TransformNet:
    return TransformNet(TINY).eval()


def make_image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a few shapes: compresses like a photo, not like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.5 * np.sin(xx / 5 + yy / 7)], axis=2) * 255
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, max(4, min(h, w) // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    return img.clip(0, 255).astype(np.uint8)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    import cv2

    p = tmp_path / "photo.png"
    cv2.imwrite(str(p), make_image())
    return p


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, tiny_net: TransformNet) -> Path:
    from stylize_video.models.checkpoint import CheckpointMeta, save_checkpoint

    return save_checkpoint(
        tmp_path / "tiny.safetensors", tiny_net, CheckpointMeta(name="tiny", title="Test", artist="Nobody")
    )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of 8 small generated photos (in a subfolder: discovery is recursive)."""
    import cv2

    d = tmp_path / "photos" / "nested"
    d.mkdir(parents=True)
    for i in range(8):
        cv2.imwrite(str(d / f"p{i}.jpg"), make_image(40 + i, 52, seed=i))
    return d.parent


@pytest.fixture
def style_file(tmp_path: Path) -> Path:
    """A generated stand-in for a painting."""
    import cv2

    p = tmp_path / "painting.png"
    cv2.imwrite(str(p), make_image(40, 60, seed=99))
    return p


@pytest.fixture
def no_threads_left() -> Iterator[None]:
    """Every sink, server and reader a test starts must be gone when it ends.

    Opt-in (``pytestmark = pytest.mark.usefixtures("no_threads_left")``): tests of
    threaded code use it; others start helper threads on purpose.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while (
        left := [t for t in threading.enumerate() if t not in before and t.is_alive()]
    ) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"threads left running: {[t.name for t in left]}"
