"""Moving frames between host memory (uint8 HxWx3 BGR, OpenCV's layout) and device
tensors ((1, 3, H, W) float RGB in [0, 1]).

On CUDA the host side goes through pinned staging buffers that are reused across
frames, and uploads run on a side stream: pinned + ``non_blocking`` lets the copy of
frame N+1 overlap the kernels of frame N. The BGR->RGB swap, the layout change and
the scaling happen on the device, where they are almost free. On the CPU OpenCV does
the channel swap (both ways) and the float -> uint8 conversion of downloads.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from ..errors import InputError

_BGR = [2, 1, 0]


def check_frame(frame: Any) -> np.ndarray:
    """Validate a host frame: uint8, HxWx3 (HxW grayscale and HxWx4 are converted)."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"expected a numpy frame, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"expected a uint8 frame, got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"expected an HxWx3 frame, got shape {frame.shape}")
    return frame


class FrameTransfer:
    """Upload/download stage between numpy frames and device tensors.

    Args:
        device: where tensors live.
        dtype: float dtype of uploaded tensors.
        channels_last: return uploads in channels_last memory format.
        bgr: host frames are BGR (OpenCV); set False for RGB frames.
    """

    def __init__(
        self, device: torch.device, dtype: torch.dtype = torch.float32, channels_last: bool = False, bgr: bool = True
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.channels_last = channels_last
        self.bgr = bgr
        self._cuda = device.type == "cuda"
        self._copy_stream = torch.cuda.Stream(device) if self._cuda else None
        # Two pinned upload slots: while one is being copied to the device the
        # other can be refilled, without waiting for the first copy.
        self._up_slots: list[tuple[torch.Tensor, Any]] = []
        self._up_next = 0
        self._down: torch.Tensor | None = None
        self._down_event: Any = torch.cuda.Event() if self._cuda else None

    def _stream_ctx(self) -> contextlib.AbstractContextManager[Any]:
        return torch.cuda.stream(self._copy_stream) if self._copy_stream is not None else contextlib.nullcontext()

    def _pinned_slot(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Any]:
        if not self._up_slots or tuple(self._up_slots[0][0].shape) != shape:
            self._up_slots = [
                (torch.empty(shape, dtype=torch.uint8, pin_memory=True), torch.cuda.Event()) for _ in range(2)
            ]
        slot = self._up_slots[self._up_next]
        self._up_next = (self._up_next + 1) % len(self._up_slots)
        slot[1].synchronize()  # the copy that last read this buffer must be done
        return slot

    def _upload_cuda(self, frame: np.ndarray) -> torch.Tensor:
        """Copy a host frame into a pinned slot and on to the device as uint8 (1, H, W, 3)."""
        buf, event = self._pinned_slot(tuple(frame.shape))
        buf.numpy()[...] = frame  # the slot is ours: in-place fill of the staging buffer
        with self._stream_ctx():
            dev = buf.to(self.device, non_blocking=True)
            event.record()
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self._copy_stream)  # type: ignore[arg-type]
        dev.record_stream(current)
        return dev.unsqueeze(0)

    def _to_float(self, u8: torch.Tensor, swap: bool) -> torch.Tensor:
        """(1, H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1], channels reversed if ``swap``."""
        if swap:
            u8 = u8[..., _BGR]
        x = u8.permute(0, 3, 1, 2)  # a channels_last view of the HWC data: no copy
        x = x.to(self.dtype).mul_(1.0 / 255.0)  # fresh tensor from .to(): ours to scale in place
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """Host uint8 HxWx3 frame -> device (1, 3, H, W) float RGB in [0, 1]."""
        frame = check_frame(frame)
        if self._cuda:
            # The channel swap runs on the device, where it is almost free.
            return self._to_float(self._upload_cuda(frame), swap=self.bgr)
        # On the CPU torch's fancy-indexed channel swap measured 33 ms per 720p frame;
        # OpenCV's SIMD cvtColor does it in well under 1 ms.
        if self.bgr:
            import cv2

            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if self.dtype == torch.float32:
            return _host_float(frame, self.channels_last)
        return self._to_float(torch.from_numpy(np.ascontiguousarray(frame)).unsqueeze(0), swap=False)

    def download(self, x: torch.Tensor) -> np.ndarray:
        """Device (1, 3, H, W) float RGB in [0, 1] -> new host uint8 HxWx3 frame."""
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"expected (1, 3, H, W), got {tuple(x.shape)}")
        if not self._cuda:
            # HWC view first: for a channels_last x the uint8 result is written in
            # HWC order directly, and OpenCV does the channel swap (as in upload).
            import cv2

            hwc = x[0].permute(1, 2, 0).float().contiguous().numpy()
            # One SIMD pass: scale, round and saturate to uint8 (|v| is v: outputs are >= 0;
            # a stray negative would turn positive, so clip first in that rare case).
            if hwc.size and float(hwc.min()) < 0.0:
                hwc = np.clip(hwc, 0.0, None)
            y8 = cv2.convertScaleAbs(hwc, alpha=255.0)
            return cv2.cvtColor(y8, cv2.COLOR_RGB2BGR) if self.bgr else y8
        y = (x.float() * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)[0]
        if self.bgr:
            y = y[..., _BGR]
        y = y.contiguous()
        if self._down is None or self._down.shape != y.shape:
            self._down = torch.empty(y.shape, dtype=torch.uint8, pin_memory=True)
        self._down.copy_(y, non_blocking=True)
        self._down_event.record()
        self._down_event.synchronize()
        # Copy out of the reused pinned buffer: callers may queue the frame.
        return self._down.numpy().copy()


def _host_float(rgb: np.ndarray, channels_last: bool) -> torch.Tensor:
    """uint8 HxWx3 -> (1, 3, H, W) float32 in [0, 1], computed by numpy on this thread.

    Why not torch: a torch op on a frame this size is an OpenMP parallel region, and
    with OpenMP's default wait policy its worker threads then spin for a while. Beside
    a non-torch backend (OpenVINO runs its own thread pool) those spinning threads take
    the core the backend needs as soon as another process holds the other one: through
    the Python API (no CLI, so no ``OMP_WAIT_POLICY=PASSIVE``) lite 640x480 on 2 threads
    fell from 85 to 28 fps beside one busy process (benchmarks/results/
    peers_cpu_lite_busy1.md). One numpy pass, no parallel region: 0.29 ms (NHWC) and
    0.60-0.62 ms (NCHW) on 640x480 idle or beside a busy process, against torch's
    0.44-0.45 and 0.83-1.04 (benchmarks/results/host_ops.md; another run had torch's
    NHWC at 0.23). Same values as torch's ``.to(float32).mul_(1 / 255)``.
    """
    scale = np.float32(1.0 / 255.0)
    if channels_last:
        hwc = np.multiply(rgb, scale, dtype=np.float32, order="C")  # dense HWC whatever rgb's strides
        return torch.from_numpy(hwc).unsqueeze(0).permute(0, 3, 1, 2)  # NHWC memory, NCHW shape
    # NCHW: the multiply writes the planes directly (one pass, no transposed copy).
    chw = np.empty((3, *rgb.shape[:2]), np.float32)
    np.multiply(rgb.transpose(2, 0, 1), scale, out=chw, dtype=np.float32)
    return torch.from_numpy(chw).unsqueeze(0)
