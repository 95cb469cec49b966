"""The person-segmentation model: MediaPipe's Selfie Segmentation, run by OpenCV's DNN module.

Why this model and this runtime (measured on this project's shared 2-core CPU under
load, so compare within a row; ``benchmarks/person_mask.py`` reruns the costs):

* **MediaPipe Selfie Segmentation** (Google, Apache-2.0) is the model behind
  MediaPipe's selfie/background solution: a MobileNetV3-like net of 250 KB with a
  256x256 ("general") or 144x256 ("landscape") RGB input in [0, 1] and a person
  probability map at the same size. It is made for people in front of a camera,
  i.e. calls and streams, our users' case. One forward pass at 144x256 took 7 ms
  on one thread where torchvision's LR-ASPP MobileNetV3 (the other candidate, its
  architecture timed with random weights) took 44 ms at the same size and 240 ms at
  640x480, more than a whole ``lite`` style frame; LR-ASPP also needs a 13 MB
  download and is trained on COCO images labelled with VOC's 20 categories, not
  on people in calls.
* **OpenCV's DNN module runs it** (``cv2.dnn.readNetFromTFLite``, OpenCV >= 4.8):
  we already depend on OpenCV, so there is no new runtime. Its output matches
  Google's own LiteRT interpreter to 1e-4 (max abs, on real frames). LiteRT with
  XNNPACK was 20-50% faster on one thread, but it is a 60 MB wheel for ~1-3 ms;
  MediaPipe's own wheels pin ``opencv-contrib-python`` (a second ``cv2``),
  ``protobuf<5``, jax and matplotlib, which fight our dependencies.
* **Landscape by default**: its forward pass is about 40% cheaper than the square
  model's (3.4 vs 5.5 ms in one back-to-back run) and, on the real 16:9 clips with
  people in the project's test footage (Chaplin), it found both walking figures
  where the square model lost one; MediaPipe recommends it for video calls
  (its ``model_selection=1``).

Where the file comes from, in order: an explicit path, the
``STYLIZE_VIDEO_PERSON_MODEL`` environment variable, an installed ``mediapipe``
wheel (0.10.x wheels carry both files; found without importing mediapipe), the
cache (``$XDG_CACHE_HOME/stylize-video/models``, default ``~/.cache/...``), and
finally a download from MediaPipe's asset bucket, checked against the SHA-256
that MediaPipe's own build pins (``third_party/external_files.bzl``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DependencyError, InputError
from ..files import atomic_output, file_sha256

log = logging.getLogger(__name__)

#: Environment variable naming a model file (overrides the mediapipe wheel and the cache).
MODEL_ENV = "STYLIZE_VIDEO_PERSON_MODEL"


@dataclass(frozen=True)
class SegmentationModel:
    """One model file: where it is published and what it expects.

    Attributes:
        name: short name (``landscape``, ``general``).
        filename: file name in the cache and in the mediapipe wheel.
        input_size: (height, width) of the network's input and output.
        url: download address (MediaPipe's asset bucket, generation-pinned).
        sha256: hex digest the downloaded bytes must have.
    """

    name: str
    filename: str
    input_size: tuple[int, int]
    url: str
    sha256: str


_ASSETS = "https://storage.googleapis.com/mediapipe-assets"
#: The models, by name. Digests and generations from MediaPipe's
#: ``third_party/external_files.bzl``; they match the files in the mediapipe 0.10.14 wheel.
MODELS: dict[str, SegmentationModel] = {
    "landscape": SegmentationModel(
        "landscape",
        "selfie_segmentation_landscape.tflite",
        (144, 256),
        f"{_ASSETS}/selfie_segmentation_landscape.tflite?generation=1683332561312022",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    ),
    "general": SegmentationModel(
        "general",
        "selfie_segmentation.tflite",
        (256, 256),
        f"{_ASSETS}/selfie_segmentation.tflite?generation=1683332563830600",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
}
DEFAULT_MODEL = "landscape"


def cache_dir() -> Path:
    """Folder downloaded models are kept in: ``$XDG_CACHE_HOME/stylize-video/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stylize-video" / "models"


def _from_mediapipe(spec: SegmentationModel) -> Path | None:
    # find_spec locates the package without running its __init__ (which imports
    # protobuf, cv2 from opencv-contrib, ...): we want one data file, not the library.
    try:
        found = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    for root in (found.submodule_search_locations or []) if found is not None else []:
        candidate = Path(root) / "modules" / "selfie_segmentation" / spec.filename
        if candidate.is_file():
            return candidate
    return None


def _download(spec: SegmentationModel, target: Path, timeout: float) -> None:
    log.info("downloading %s to %s", spec.url, target)
    with atomic_output(target) as tmp:
        with urllib.request.urlopen(spec.url, timeout=timeout) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)
        digest = file_sha256(tmp)
        if digest != spec.sha256:
            raise DependencyError(f"downloaded {spec.filename} has SHA-256 {digest}, expected {spec.sha256}")


def find_model(
    model: str = DEFAULT_MODEL,
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    timeout: float = 30.0,
    spec: SegmentationModel | None = None,
) -> Path:
    """Path of the model file, downloading it into the cache on first use.

    Args:
        model: a key of :data:`MODELS`.
        path: an explicit file (wins over everything else; must exist).
        download: allow the download when no local copy is found.
        timeout: seconds for the download's connection.
        spec: use this description instead of ``MODELS[model]`` (tests, mirrors).

    Raises:
        InputError: ``path`` (or the environment variable) names a missing file.
        DependencyError: no local copy and the download is off or failed; the
            message says how to get the file.
    """
    if spec is None:
        if model not in MODELS:
            raise InputError(f"unknown person model {model!r} (choose {', '.join(MODELS)})")
        spec = MODELS[model]
    explicit = path if path is not None else os.environ.get(MODEL_ENV) or None
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise InputError(f"person model file not found: {p}")
        return p
    wheel = _from_mediapipe(spec)
    if wheel is not None:
        return wheel
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return cached
    how = f"download {spec.url.split('?')[0]} to {cached}, or set {MODEL_ENV}=PATH"
    if not download:
        raise DependencyError(f"the person mask needs MediaPipe's {spec.filename}: {how}")
    try:
        _download(spec, cached, timeout)
    except OSError as exc:  # URLError, timeouts and disk errors are all OSErrors
        raise DependencyError(f"could not download the person model ({exc}); {how}") from exc
    return cached


class PersonSegmenter:
    """Person probability at the model's small size for one frame.

    Not thread-safe (one OpenCV ``Net`` holds per-call buffers): use one instance per
    thread; :class:`~stylize_video.person.worker.MaskWorker` owns one on its thread.

    Args:
        model: a key of :data:`MODELS`, or a :class:`SegmentationModel`.
        path: an explicit model file (see :func:`find_model`).
        download: allow downloading the model on first use.
    """

    def __init__(
        self,
        model: str | SegmentationModel = DEFAULT_MODEL,
        path: str | os.PathLike[str] | None = None,
        *,
        download: bool = True,
    ) -> None:
        import cv2

        spec = model if isinstance(model, SegmentationModel) else None
        name = model.name if isinstance(model, SegmentationModel) else model
        self.model_path = find_model(name, path, download=download, spec=spec)
        self.spec = spec or MODELS[name]
        h, w = self.spec.input_size
        try:
            self._net: Any = cv2.dnn.readNetFromTFLite(str(self.model_path))
            # One run on zeros: a file for another input size fails here, not mid-stream,
            # and the first real frame does not pay OpenCV's lazy set-up.
            self.segment_small(np.zeros((h, w, 3), np.float32))
        except cv2.error as exc:
            reason = str(exc).strip().rpartition("error: ")[2]
            raise InputError(f"cannot run {self.model_path} as the {self.spec.name} person model: {reason}") from exc

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the masks :meth:`__call__` returns."""
        return self.spec.input_size

    def small_rgb(self, frame: np.ndarray) -> np.ndarray:
        """The model's input: the frame resized to :attr:`input_size`, RGB float32 HxWx3 in [0, 1]."""
        import cv2

        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected a uint8 HxWx3 BGR frame, got {frame.dtype} {frame.shape}")
        from .refine import area_shrink

        h, w = self.input_size
        # Area averaging: a 1280 px frame shrinks 5x, where bilinear would alias.
        small = area_shrink(frame, (w, h))
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1 / 255)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Shape: uint8 HxWx3 BGR (any size; stretched, as MediaPipe does) -> float32 hxw in [0, 1]
        at :attr:`input_size`."""
        return self.segment_small(self.small_rgb(frame))

    def segment_small(self, rgb: np.ndarray) -> np.ndarray:
        """Run the net on an input already made by :meth:`small_rgb`."""
        # OpenCV's TFLite importer takes NCHW and transposes for the NHWC graph itself.
        self._net.setInput(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None])
        out = np.asarray(self._net.forward(), np.float32)
        h, w = self.input_size
        return np.clip(out.reshape(h, w), 0.0, 1.0)
