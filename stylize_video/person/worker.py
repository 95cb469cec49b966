"""The whole mask for one frame, and a thread that computes it beside the style network.

:class:`PersonMasker` chains the stages (model at its small size -> EMA -> guided
upsampling to the frame -> feathering), running the model on every
``model_every``-th frame only and carrying the mask along the flow (or holding it)
in between. :class:`MaskWorker` runs a masker on its own thread: submit a frame
*before* stylizing it, collect the mask after. OpenCV
releases the GIL in its DNN, resize and filter calls, and torch releases it in the
network, so the two overlap on a 2-core CPU.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np

from .refine import MaskSmoother, Motion, refine_mask

#: The model runs on every ``MODEL_EVERY``-th frame by default (see :class:`PersonMasker`).
MODEL_EVERY = 2

#: Where the model's map is at least this, the mask is held at 1 (see
#: :func:`~stylize_video.person.refine.hold_confident`; ``benchmarks/person_face.py``
#: measured it on real talking-head video).
HOLD = 0.98

#: Where the model's map is at most this, the mask is held at 0 (see
#: :func:`~stylize_video.person.refine.release_confident`; measured beside ``HOLD``).
RELEASE = 0.02

#: A frame (uint8 HxWx3 BGR) -> person probability (float32 hxw in [0, 1]) at any small size.
SmallSegment = Callable[[np.ndarray], np.ndarray]


class PersonMasker:
    """Frame -> frame-sized person mask, float32 HxW in [0, 1].

    Keeps the EMA's history: one instance per video stream, frames in order.

    The model is most of the mask's cost, and a person moves little from one frame
    to the next, so it runs on every ``model_every``-th frame only; on the frames in
    between the smoothed small map is carried over (warped along the frame's optical
    flow when a motion is given, held otherwise) and refined against the new frame,
    whose edges the guided upsampling still follows. The first frame, a cut (the
    smoother's own test, or :meth:`reset`) and a motion that reports no flow always
    run the model.

    Args:
        segment: the small-mask model (a :class:`~stylize_video.person.model.PersonSegmenter`,
            or any callable with its signature).
        smoothing: EMA strength of :class:`~stylize_video.person.refine.MaskSmoother` (0: off).
        flow_strength: its weight of the flow-warped history, when a motion is given.
        radius, eps, work_side: :func:`~stylize_video.person.refine.guided_upsample`'s settings.
        feather_sigma: Gaussian sigma in output pixels (0: no feathering).
        model_every: run the model on every n-th frame (1: every frame).
        hold: the model probability above which the mask stays 1 (None: the guided
            filter alone; see :func:`~stylize_video.person.refine.hold_confident`).
        release: the model probability below which the mask stays 0 (None: no limit;
            see :func:`~stylize_video.person.refine.release_confident`).

    Attributes:
        model_runs: frames the model ran on since construction.
    """

    def __init__(
        self,
        segment: SmallSegment,
        *,
        smoothing: float = 0.5,
        flow_strength: float = 0.7,
        radius: int = 4,
        eps: float = 1e-3,
        work_side: int = 160,
        feather_sigma: float = 1.5,
        model_every: int = MODEL_EVERY,
        hold: float | None = HOLD,
        release: float | None = RELEASE,
    ) -> None:
        if model_every < 1:
            raise ValueError(f"model_every must be >= 1, got {model_every}")
        self.segment = segment
        self.smoother = MaskSmoother(smoothing, flow_strength=flow_strength)
        self.radius = radius
        self.eps = eps
        self.work_side = work_side
        self.feather_sigma = feather_sigma
        self.model_every = model_every
        self.hold = hold
        self.release = release
        self.model_runs = 0
        self._since_model = 0  # frames carried since the model last ran

    def reset(self) -> None:
        """Forget the temporal history (a new stream, a seek): the next frame runs the model."""
        self.smoother.reset()

    def small(self, frame: np.ndarray, motion: Motion | None = None) -> np.ndarray:
        """The smoothed small map for ``frame`` (float32 hxw), from the model or carried over."""
        cut = self.smoother.observe(frame)
        if motion is not None:
            flow = motion()  # once: the carry and the EMA below may both want it
            motion = lambda: flow  # noqa: E731
        if not cut and self._since_model + 1 < self.model_every:
            carried = self.smoother.carry(motion)
            if carried is not None:
                self._since_model += 1
                return carried
        self.model_runs += 1
        self._since_model = 0
        return self.smoother(self.segment(frame), None, motion)

    def __call__(self, frame: np.ndarray, motion: Motion | None = None) -> np.ndarray:
        """Shape: uint8 HxWx3 BGR -> float32 HxW in [0, 1] (exactly 0 or 1 within half a grey level).

        ``motion``: the frame's optical flow (the history is warped along it); None: the EMA.
        """
        return self.refine(self.small(frame, motion), frame)

    def refine(self, small: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """A small map made frame-sized with this masker's settings (:func:`~.refine.refine_mask`)."""
        return refine_mask(
            small,
            frame,
            radius=self.radius,
            eps=self.eps,
            work_side=self.work_side,
            feather_sigma=self.feather_sigma,
            hold=self.hold,
            release=self.release,
        )


class MaskWorker:
    """Computes masks on one background thread, in submission order.

    ``submit(frame)`` queues a frame and returns at once; ``result()`` waits for the
    oldest outstanding mask. One thread, so the masker's history sees the frames in
    order. At most ``max_pending`` frames may be outstanding (a caller that never
    collects would otherwise queue frames without bound). A context manager;
    ``close()`` ends the thread.

    Args:
        masker: the per-frame callable (usually a :class:`PersonMasker`). It is
            only ever called from the worker thread.
        max_pending: outstanding frames allowed before ``submit`` refuses.
    """

    def __init__(self, masker: Callable[..., np.ndarray], *, max_pending: int = 2) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.masker = masker
        self.max_pending = max_pending
        self._executor: ThreadPoolExecutor | None = None
        self._pending: collections.deque[Future[np.ndarray]] = collections.deque()

    def submit(self, frame: np.ndarray, motion: Motion | None = None) -> Future[np.ndarray]:
        """Start the mask of ``frame`` (uint8 HxWx3 BGR; not written to until its mask is collected).

        ``motion`` (see :class:`PersonMasker`) is passed on to the masker when given; it
        is called on the worker thread, so it may wait for a flow computed elsewhere.
        """
        if len(self._pending) >= self.max_pending:
            raise RuntimeError(f"{len(self._pending)} masks not collected (max_pending={self.max_pending})")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="person-mask")
        args = (frame,) if motion is None else (frame, motion)
        future = self._executor.submit(self.masker, *args)
        self._pending.append(future)
        return future

    def result(self, timeout: float | None = None) -> np.ndarray:
        """The mask of the oldest submitted frame (waits for it; re-raises its error)."""
        if not self._pending:
            raise RuntimeError("no frame submitted")
        return self._pending.popleft().result(timeout)

    @property
    def pending(self) -> int:
        """Frames submitted and not yet collected."""
        return len(self._pending)

    def close(self) -> None:
        """Drop uncollected masks and stop the thread (waits for the running one)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> MaskWorker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
