"""The batch itself: plan the files, run their tasks on an executor, join segments, keep the manifest."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import StylizeError
from ...files import atomic_output, remove_stale_partials
from ...io.segments import join_segments
from ...models.checkpoint import Checkpoint
from .executors import Executor
from .manifest import MANIFEST_NAME, BatchReport, FileReport, Manifest
from .plan import SEGMENTS_DIR, VIDEO_EXTENSIONS, BatchSettings, FileJob, Task, TaskResult, keyframe_splits
from .stopping import StopRequest
from .style import BatchStyle

log = logging.getLogger(__name__)


class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C, SIGTERM or SIGHUP, after recording every file that finished.

    A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it; ``report`` says
    what was done before the stop.
    """

    def __init__(self, report: BatchReport) -> None:
        super().__init__("batch stopped")
        self.report = report


@dataclass
class _FilePlan:
    job: FileJob
    tasks: list[Task]
    seg_dir: Path | None = None
    results: dict[str, TaskResult] = field(default_factory=dict)
    #: Every segment of the file, in order (done earlier or not): what gets joined.
    parts: list[Path] = field(default_factory=list)


class BatchRunner:
    """Plan a batch, run its tasks on an executor, join segments, keep the manifest.

    Stopping (Ctrl-C, SIGTERM, SIGHUP while :meth:`run` runs in the main thread): no
    file starts after the signal, files in progress are dropped (nothing under their
    names), and every file that finishes before the workers have stopped is recorded;
    then :class:`BatchInterrupted` is raised. A second signal stops at once. Partial
    files of writers that were killed (this batch's, or an earlier run's) are removed
    at the start and the end of every run (:func:`~stylize_video.files.remove_stale_partials`).

    Args:
        jobs: from :func:`plan_jobs`.
        settings: conversion settings.
        out_dir: the output folder (manifest and segment scratch space live there).
        checkpoint: the loaded style, or a blend as a :class:`BatchStyle` (None: loaded
            from ``settings.style``, a spec as ``run -s`` takes it). Kept as the
            :class:`BatchStyle` in :attr:`checkpoint`, what the executors take.
        segment_seconds: split files longer than about 1.5x this at keyframes (None: never).
        preroll_frames: with smoothing on, frames before each segment start that are
            stylized and smoothed but not written, so the smoother is warm at the join
            (it would restart there otherwise); costs up to one extra GOP of decoding.
        overwrite: redo outputs that exist.
        progress: show a progress bar (over tasks, for the whole cluster).
    """

    def __init__(
        self,
        jobs: Sequence[FileJob],
        settings: BatchSettings,
        out_dir: str | os.PathLike[str],
        *,
        checkpoint: Checkpoint | BatchStyle | None = None,
        segment_seconds: float | None = None,
        preroll_frames: int = 8,
        overwrite: bool = False,
        progress: bool = False,
    ) -> None:
        if preroll_frames < 0:
            raise StylizeError(f"pre-roll must be >= 0 frames, got {preroll_frames}")
        if segment_seconds is not None and segment_seconds <= 0:
            raise StylizeError(f"segment length must be > 0 s, got {segment_seconds}")
        self.jobs = list(jobs)
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.checkpoint = BatchStyle.of(checkpoint) if checkpoint is not None else BatchStyle.load(settings.style)
        shas = self._shas = self.checkpoint.sha256s()
        self._style_key = self.checkpoint.key_record(shas)
        self.style_sha256 = self.checkpoint.digest(shas)
        self.segment_seconds = segment_seconds
        # Without smoothing every frame is stylized alone: pre-roll would change nothing.
        self.preroll = preroll_frames if settings.smooth != "none" else 0
        self.overwrite = overwrite
        self.progress = progress
        self.manifest = Manifest(self.out_dir / MANIFEST_NAME)
        # One style: {"style_sha256": ...} as before blends, so older manifests still match.
        record = {**self._style_key, **settings.output_record()}
        self.settings_key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]

    def run(self, make_executor: Callable[[], Executor]) -> BatchReport:
        """Convert every job that is not done yet; never raises for one bad file.

        Args:
            make_executor: builds the executor, only when there is work (a rerun
                with everything done starts no workers); closed at the end.
        """
        t0 = time.perf_counter()
        report = BatchReport()
        stop = StopRequest()
        with stop.catching_signals():
            self._remove_stale_partials()
            plans, early = self._plan(stop)
            report.files.extend(early)
            self._execute(plans, make_executor, report, stop)
            # Workers killed on the way (one that crashed, or a stop that could not wait) left theirs.
            self._remove_stale_partials()
        report.files.sort(key=lambda f: f.input)
        report.wall = time.perf_counter() - t0
        report.unfinished = len(self.jobs) - len(report.files)
        if stop.requested:
            report.interrupted = True
            raise BatchInterrupted(report)
        return report

    def _execute(
        self, plans: list[_FilePlan], make_executor: Callable[[], Executor], report: BatchReport, stop: StopRequest
    ) -> None:
        tasks = {t.id: p for p in plans for t in p.tasks}
        pending = {id(p): len(p.tasks) for p in plans}
        ordered = sorted((t for p in plans for t in p.tasks), key=_task_cost, reverse=True)
        for plan in plans:
            if not plan.tasks:  # every segment was converted by an earlier run
                report.files.append(self._finish(plan))
        if ordered and not stop.requested:
            executor = make_executor()
            report.workers = executor.workers
            bar = self._bar(len(ordered))
            try:
                for result in executor.run(ordered, stop):
                    plan = tasks[result.id]
                    if result.stopped:  # never started, or dropped half-way: the next run does it
                        continue
                    plan.results[result.id] = result
                    if not result.ok:
                        # On a cluster the worker (host:pid:device) says where to look.
                        where = f" (worker {result.worker})" if result.worker else ""
                        log.warning("%s: %s%s", plan.job.name, result.reason, where)
                    pending[id(plan)] -= 1
                    if pending[id(plan)] == 0:
                        # Recorded even while stopping: a finished file is always in the manifest.
                        report.files.append(self._finish(plan))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"{report.count('failed')} failed")
            finally:
                if bar is not None:
                    bar.close()
                executor.close()

    def _output_folders(self) -> set[Path]:
        """The folders this batch writes into: its outputs' folders and its segment folders."""
        folders = {job.output.parent for job in self.jobs}
        seg_root = self.out_dir / SEGMENTS_DIR
        with contextlib.suppress(OSError):
            folders.update(p for p in seg_root.iterdir() if p.is_dir() and not p.is_symlink())
        return folders

    def _remove_stale_partials(self) -> None:
        for folder in sorted(self._output_folders()):
            removed = remove_stale_partials(folder, suffixes=VIDEO_EXTENSIONS)
            if removed:
                log.info("removed %d partial file(s) of stopped runs from %s", len(removed), folder)

    def _bar(self, total: int) -> Any:
        if not self.progress or total == 0:
            return None
        import sys

        from tqdm import tqdm

        return tqdm(total=total, unit="task", dynamic_ncols=True, disable=None, file=sys.stderr)

    def _plan(self, stop: StopRequest | None = None) -> tuple[list[_FilePlan], list[FileReport]]:
        latest = self.manifest.latest()
        plans: list[_FilePlan] = []
        early: list[FileReport] = []  # skipped, or failed before any work
        for job in self.jobs:
            if stop is not None and stop.requested:
                break  # nothing has started: planning more files would only delay the stop
            if job.output.exists() and not self.overwrite:
                early.append(self._skip(job, latest.get(str(job.output))))
                continue
            try:
                plans.append(self._plan_file(job))
            except StylizeError as exc:
                report = FileReport(str(job.source), str(job.output), "failed", str(exc))
                self._record(report)
                early.append(report)
        return plans, early

    def _skip(self, job: FileJob, record: dict[str, Any] | None) -> FileReport:
        if record is not None and record.get("status") in ("done", "truncated"):
            same = record.get("settings_key") == self.settings_key
            reason = "done earlier" if same else "exists, made with other settings (--overwrite to redo)"
        else:
            reason = "exists (not made by a batch here; --overwrite to redo)"
        return FileReport(str(job.source), str(job.output), "skipped", reason)

    def _plan_file(self, job: FileJob) -> _FilePlan:
        splits = keyframe_splits(job.source, self.segment_seconds) if self.segment_seconds else []
        src = str(job.source)
        if not splits:
            return _FilePlan(job, [Task(f"{job.output}", src, str(job.output))])
        # The split points and the input's size/mtime are part of the key: segments cut
        # at other points (another --segment-seconds) or from an older version of the
        # input must never be taken as done.
        stat = job.source.stat()
        key = f"{job.source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.settings_key}|{self.preroll}|{splits}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        seg_dir = self.out_dir / SEGMENTS_DIR / f"{job.output.stem}-{digest}"
        seg_dir.mkdir(parents=True, exist_ok=True)
        bounds = [None, *splits, None]
        tasks = []
        for i in range(len(bounds) - 1):
            part = seg_dir / f"{i:05d}{self.settings.extension}"
            task = Task(f"{job.output}#{i}", src, str(part), bounds[i], bounds[i + 1], self.preroll, audio=False)
            tasks.append(task)
        # Resume: segments finished by an earlier run are already in place.
        done = {t.id for t in tasks if Path(t.output).exists()}
        return _FilePlan(
            job,
            [t for t in tasks if t.id not in done],
            seg_dir,
            {i: TaskResult(i, True, "resumed") for i in done},
            [Path(t.output) for t in tasks],
        )

    def _finish(self, plan: _FilePlan) -> FileReport:
        job = plan.job
        results = list(plan.results.values())
        failures = [r.reason for r in results if not r.ok]
        report = FileReport(
            str(job.source),
            str(job.output),
            "done",
            frames=sum(r.frames for r in results),
            seconds=sum(r.seconds for r in results),
            segments=max(1, len(results)),
        )
        if failures:
            report.status, report.reason = "failed", failures[0]
        elif plan.seg_dir is not None:
            parts = plan.parts
            try:
                # join_segments drops the audio itself when the source has none. Its
                # output is staged under a host-tagged name, like the workers' outputs.
                with atomic_output(job.output, host=True) as staged:
                    join_segments(parts, staged, str(job.source))
            except StylizeError as exc:
                report.status, report.reason = "failed", f"joining segments: {exc}"
            else:
                for p in parts:
                    p.unlink(missing_ok=True)
                _rmdir_quiet(plan.seg_dir)
        corrupt = sum(r.corrupt for r in results)
        if report.status == "done" and corrupt:
            report.reason = f"{corrupt} corrupt packets skipped"
        if report.status == "done" and any(r.truncated for r in results):
            report.status = "truncated"
            report.reason = f"the input ends early: {report.frames} frames decoded and converted" + (
                f"; {report.reason}" if report.reason else ""
            )
        self._record(report)
        return report

    def _record(self, report: FileReport) -> None:
        record = dataclasses.asdict(report)
        style = self.checkpoint
        first = style.checkpoints[0]
        record.update(
            input_path=str(Path(report.input).resolve()),
            segment_preroll=self.preroll if report.segments > 1 else None,
            style=self.settings.style,
            style_path=None if style.blended or first.path is None else str(first.path.resolve()),
            style_name=style.text if style.blended else first.meta.name,
            style_sha256=self.style_sha256,
            settings=self.settings.output_record(),
            settings_key=self.settings_key,
            finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        if style.blended:
            record["style_blend"] = [
                {"name": name, "weight": weight, "sha256": sha, "path": str(ck.path.resolve()) if ck.path else None}
                for (name, weight), ck, sha in zip(style.spec, style.checkpoints, self._shas, strict=True)
            ]
        self.manifest.append(record)


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()
        path.parent.rmdir()  # .segments itself, once empty
    except OSError:
        pass  # other files still use it


def _task_cost(task: Task) -> int:
    """Ordering key: big inputs first, so the last file to finish is a short one."""
    try:
        return os.path.getsize(task.source)
    except OSError:
        return 0
