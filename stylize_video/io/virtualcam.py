"""Virtual camera sink: the stylized stream shows up as a webcam in OBS, Zoom, Meet.

Uses pyvirtualcam (optional extra ``virtualcam``), whose backends are v4l2loopback
on Linux, the OBS virtual camera on Windows/macOS and Unity Capture on Windows.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import cv2
import numpy as np

from ..errors import DependencyError, OutputError
from .base import Frame, Sink
from .pacing import Pacer

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'stylize-video[virtualcam]'"


def backend_hint() -> str:
    """How to provide a virtual camera backend on this platform."""
    if sys.platform.startswith("linux"):
        return (
            "load the v4l2loopback kernel module: `sudo modprobe v4l2loopback devices=1` "
            "(package v4l2loopback-dkms on Debian/Ubuntu)"
        )
    if sys.platform == "darwin":
        return "install OBS Studio and start its Virtual Camera once"
    return "install OBS Studio (26+) for its virtual camera, or Unity Capture"


def _import_pyvirtualcam() -> Any:
    try:
        import pyvirtualcam
    except ImportError as exc:
        raise DependencyError(f"the virtual camera needs pyvirtualcam: {INSTALL_HINT}") from exc
    return pyvirtualcam


class VirtualCameraSink(Sink):
    """Send frames to a virtual webcam, paced to the source's timestamps.

    Opens on the first frame (its size becomes the camera's; later frames of
    another size are scaled). Pacing (:class:`~.pacing.Pacer`) follows the source's
    own clock (``frame.time``), so a file plays at its real speed and a camera is not
    slowed down; if the pipeline falls more than ``max_lag`` behind, the schedule
    moves instead of rushing to catch up.

    Args:
        fps: rate announced to the camera; use the source's rate.
        device: backend device (e.g. ``/dev/video2``); None lets pyvirtualcam pick.
        backend: pyvirtualcam backend name; None picks the platform's default.
        pace: sleep to the source's timestamps (turn off for already-paced live sources).
        max_lag: seconds behind schedule after which the clock resynchronises.
    """

    live = True

    def __init__(
        self,
        fps: float = 30.0,
        *,
        device: str | None = None,
        backend: str | None = None,
        pace: bool = True,
        max_lag: float = 0.25,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._pyvirtualcam = _import_pyvirtualcam()  # fail at startup, not on the first frame
        self.fps = float(fps)
        self.device = device
        self.backend = backend
        self.max_lag = max_lag
        self._cam: Any = None
        self._size: tuple[int, int] | None = None
        self.pacer: Pacer | None = Pacer(max_lag=max_lag) if pace else None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        pvc = self._pyvirtualcam
        try:
            self._cam = pvc.Camera(
                width, height, self.fps, fmt=pvc.PixelFormat.BGR, device=self.device, backend=self.backend
            )
        except RuntimeError as exc:
            # pyvirtualcam raises RuntimeError when no backend/device is available.
            raise OutputError(f"no virtual camera available ({exc}); {backend_hint()}") from exc
        self._size = (width, height)
        log.info("virtual camera %s %dx%d @ %.2f fps", self._cam.device, width, height, self.fps)

    def write(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        if self._cam is None:
            self._open(w, h)
        assert self._size is not None
        image = frame.image
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self.pacer is not None:
            self.pacer.wait(frame.time, frame.cut)
        self._cam.send(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None

    def __enter__(self) -> VirtualCameraSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
