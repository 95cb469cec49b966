"""Batch conversion: many video files, one style (or blend), on a local process pool or a Ray cluster.

Planning (which files, which outputs, which segments) and reporting happen in the
calling process; workers only turn a :class:`Task` into a :class:`TaskResult`.

* **Idempotent and resumable.** Outputs appear under their final name only when
  complete (encoded under a hidden name, renamed into place), so an existing
  output is a finished one and a rerun skips it. ``manifest.jsonl`` in the output
  folder gets one JSON line per converted or failed file, with the style (and the
  checkpoint's SHA-256) and the settings that made it.
* **One bad file never stops the batch.** A worker returns failures as results with
  the reason; the batch goes on and the final report lists them.
* **Long videos** (``segment_seconds``) are cut at keyframes into segments that are
  converted in parallel and joined by remuxing the encoded packets (no re-encode),
  with the audio copied untouched from the input. A segment's worker never saw the
  frames before it, so temporal smoothing would restart at each join; with
  smoothing on, a few pre-roll frames before each segment are stylized and smoothed
  but not written, which warms the smoother up (benchmarks/batch_scaling.py
  measures the seam: warping error at joins 2.7x elsewhere without pre-roll, 1.1x with 8 frames).
* **Executors.** :class:`InProcessExecutor` (one worker, here),
  :class:`LocalPoolExecutor` (one process per GPU, or a CPU pool) and
  :class:`RayExecutor` (one Ray actor per worker, holding the loaded model; Ray
  places the actors, restarts dead ones and retries their task).
* **Stopping.** Ctrl-C, SIGTERM or SIGHUP: no file starts after it, files in
  progress are dropped, every file that finished is in the manifest; pool workers
  die with the batch process even when it is killed (:mod:`.stopping`), and a run
  removes the partial files that killed writers left behind.

One concern per module: :mod:`.plan` (settings, files, tasks), :mod:`.style` (the
style or blend, loaded once and shipped to workers), :mod:`.worker`
(converting one task), :mod:`.executors` (where tasks run), :mod:`.manifest`
(the record and the report) and :mod:`.runner` (the batch itself). Segments are
joined by :func:`stylize_video.io.segments.join_segments`.
"""

from __future__ import annotations

from ...files import file_sha256
from ...io.segments import join_segments
from .executors import (
    Executor,
    InProcessExecutor,
    LocalPoolExecutor,
    RayExecutor,
    default_workers,
    executor_factory,
    import_ray,
    ray_actor_plan,
)
from .manifest import MANIFEST_NAME, BatchReport, FileReport, Manifest, Status
from .plan import (
    SEGMENTS_DIR,
    VIDEO_EXTENSIONS,
    BatchSettings,
    FileJob,
    Task,
    TaskResult,
    keyframe_splits,
    plan_jobs,
)
from .runner import BatchInterrupted, BatchRunner
from .stopping import StopRequest
from .style import BatchStyle
from .worker import BatchWorker

__all__ = [
    "MANIFEST_NAME",
    "SEGMENTS_DIR",
    "VIDEO_EXTENSIONS",
    "BatchInterrupted",
    "BatchReport",
    "BatchRunner",
    "BatchSettings",
    "BatchStyle",
    "BatchWorker",
    "Executor",
    "FileJob",
    "FileReport",
    "InProcessExecutor",
    "LocalPoolExecutor",
    "Manifest",
    "RayExecutor",
    "Status",
    "StopRequest",
    "Task",
    "TaskResult",
    "default_workers",
    "executor_factory",
    "file_sha256",
    "import_ray",
    "join_segments",
    "keyframe_splits",
    "plan_jobs",
    "ray_actor_plan",
]
