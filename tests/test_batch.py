"""Batch conversion: planning, manifest, skip-on-rerun, a corrupt file, segments, the CLI, Ray."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from stylize_video.cli import main
from stylize_video.errors import InputError, OutputError
from stylize_video.models.checkpoint import load_checkpoint
from stylize_video.runtime.batch import (
    MANIFEST_NAME,
    SEGMENTS_DIR,
    BatchReport,
    BatchRunner,
    BatchSettings,
    BatchWorker,
    InProcessExecutor,
    LocalPoolExecutor,
    Task,
    TaskResult,
    join_segments,
    keyframe_splits,
    plan_jobs,
    ray_actor_plan,
)
from tests.media import probe, write_clip


def _library(root: Path) -> Path:
    """Three inputs: two small clips (one in a subfolder) and one corrupt file."""
    (root / "sub").mkdir(parents=True)
    write_clip(root / "a.mp4", n_frames=20)
    write_clip(root / "sub" / "b.mov", n_frames=24, audio=False)
    (root / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 40)
    (root / "notes.txt").write_text("not a video")
    return root


def _settings(checkpoint: Path, **kw: object) -> BatchSettings:
    options: dict[str, object] = {"device": "cpu", "threads": 1, **kw}
    return BatchSettings(style=str(checkpoint), **options)  # type: ignore[arg-type]


def _run(jobs_dir: Path, out: Path, checkpoint: Path, **kw: object) -> tuple[BatchReport, list[int]]:
    """Batch ``jobs_dir`` into ``out`` in this process; returns the report and how many executors started."""
    settings = _settings(checkpoint)
    runner = BatchRunner(plan_jobs(jobs_dir, out), settings, out, **kw)  # type: ignore[arg-type]
    started: list[int] = []

    def make() -> InProcessExecutor:
        started.append(1)
        return InProcessExecutor(runner.checkpoint, settings)

    return runner.run(make), started


def test_plan_mirrors_layout_and_ignores_outputs(tmp_path: Path) -> None:
    src = _library(tmp_path / "in")
    out = src / "styled"  # an output folder inside the input folder
    out.mkdir()
    write_clip(out / "a.mp4", n_frames=2, audio=False)  # an earlier output: never an input
    jobs = plan_jobs(src, out)
    assert sorted(j.name for j in jobs) == ["a.mp4", "bad.mp4", "sub/b.mov"]
    assert {j.output for j in jobs} == {out.resolve() / "a.mp4", out.resolve() / "bad.mp4", out.resolve() / "sub/b.mp4"}
    # A glob mirrors the tree below its fixed prefix.
    globbed = plan_jobs(f"{src}/**/*.mov", tmp_path / "o2")
    assert [j.output for j in globbed] == [(tmp_path / "o2").resolve() / "sub" / "b.mp4"]
    with pytest.raises(InputError, match="no video files"):
        plan_jobs(tmp_path / "in" / "sub" / "*.mkv", tmp_path / "o3")
    # Files as a shell expands an unquoted glob, one named twice: one job each.
    listed = plan_jobs([src / "a.mp4", src / "sub" / "b.mov", src / "a.mp4"], tmp_path / "o5")
    assert [j.output.name for j in listed] == ["a.mp4", "b.mp4"]
    write_clip(src / "a.mkv", n_frames=2, audio=False)
    with pytest.raises(InputError, match="would both write"):
        plan_jobs(src, tmp_path / "o4")


def test_local_batch_manifest_corrupt_file_and_rerun(
    tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _library(tmp_path / "in")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="stylize_video.runtime.batch"):
        report, started = _run(src, out, tiny_checkpoint)
    # The failure names the worker that hit it (host:pid:device: where to look on a cluster).
    assert any("bad.mp4" in r.getMessage() and f":{os.getpid()}:cpu)" in r.getMessage() for r in caplog.records)
    by_name = {Path(f.input).name: f for f in report.files}
    assert by_name["a.mp4"].status == "done" and by_name["b.mov"].status == "done"
    assert by_name["bad.mp4"].status == "failed" and "bad.mp4" in by_name["bad.mp4"].reason
    assert probe(out / "a.mp4").frames == 20 and probe(out / "a.mp4").audio_streams == 1
    assert probe(out / "sub" / "b.mp4").frames == 24
    assert not (out / "bad.mp4").exists()
    assert not [p for p in out.rglob(".*") if p.is_file()], "no partial files left behind"
    records = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert sorted((Path(r["input"]).name, r["status"]) for r in records) == [
        ("a.mp4", "done"),
        ("b.mov", "done"),
        ("bad.mp4", "failed"),
    ]
    assert all(r["style_name"] == "tiny" and len(r["style_sha256"]) == 64 for r in records)
    assert records[0]["settings"]["codec"] == "h264"
    mtime = (out / "a.mp4").stat().st_mtime_ns

    # Rerun: the done files are skipped, the bad one is tried (and reported) again.
    again, _ = _run(src, out, tiny_checkpoint)
    statuses = {Path(f.input).name: (f.status, f.reason) for f in again.files}
    assert statuses["a.mp4"] == ("skipped", "done earlier")
    assert statuses["b.mov"] == ("skipped", "done earlier")
    assert statuses["bad.mp4"][0] == "failed"
    assert (out / "a.mp4").stat().st_mtime_ns == mtime
    assert len((out / MANIFEST_NAME).read_text().splitlines()) == 4

    # Nothing to do at all: no worker is started.
    (src / "bad.mp4").unlink()
    idle, started = _run(src, out, tiny_checkpoint)
    assert started == [] and idle.count("skipped") == 2


def test_segments_match_single_pass(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    # mpeg4's default GOP of 12 frames gives keyframes at 0, 1 and 2 s.
    write_clip(src / "long.mp4", n_frames=36, fps=12, codec="mpeg4")
    with av.open(str(src / "long.mp4")) as c:
        tb = c.streams.video[0].time_base
    assert tb is not None
    assert [float(pts * tb) for pts in keyframe_splits(src / "long.mp4", 1.0)] == [1.0, 2.0]
    single, _ = _run(src, tmp_path / "single", tiny_checkpoint)
    split, _ = _run(src, tmp_path / "split", tiny_checkpoint, segment_seconds=1.0)
    assert [f.status for f in single.files] == ["done"]
    (file_report,) = split.files
    assert file_report.status == "done" and file_report.segments == 3
    a, b = probe(tmp_path / "single" / "long.mp4"), probe(tmp_path / "split" / "long.mp4")
    assert b.frames == a.frames == 36
    assert b.pts_seconds == a.pts_seconds
    assert b.audio_streams == 1 and b.audio_codecs == ["aac"]
    assert b.audio_packets == a.audio_packets
    assert b.audio_duration == pytest.approx(a.audio_duration, abs=1e-6)
    assert not (tmp_path / "split" / SEGMENTS_DIR).exists(), "segments are removed once joined"


def test_segment_preroll_hides_the_smoothing_restart(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "long.mp4", n_frames=36, fps=12, codec="mpeg4", audio=False)
    settings = _settings(tiny_checkpoint, smooth="ema", smooth_strength=0.8)

    def convert(out: Path, **kw: object) -> list[np.ndarray]:
        runner = BatchRunner(plan_jobs(src, out), settings, out, **kw)  # type: ignore[arg-type]
        assert runner.run(lambda: InProcessExecutor(runner.checkpoint, settings)).count("done") == 1
        return probe(out / "long.mp4", keep_images=True).images

    single = convert(tmp_path / "single")
    restarted = convert(tmp_path / "cold", segment_seconds=1.0, preroll_frames=0)
    warm = convert(tmp_path / "warm", segment_seconds=1.0, preroll_frames=8)
    assert len(single) == len(restarted) == len(warm) == 36

    def gap(images: list[np.ndarray], t: int) -> float:
        return float(np.abs(images[t].astype(np.float32) - single[t].astype(np.float32)).mean())

    # At the segment starts (frames 12 and 24) a restarted EMA departs from the single pass; a warm one stays close.
    cold_gap = gap(restarted, 12) + gap(restarted, 24)
    warm_gap = gap(warm, 12) + gap(warm, 24)
    assert warm_gap < 0.5 * cold_gap, (warm_gap, cold_gap)


def test_join_refuses_segments_that_do_not_fit(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "00000.mp4", n_frames=4, size=(64, 48), audio=False)
    b = write_clip(tmp_path / "00001.mp4", n_frames=4, size=(32, 24), audio=False)
    with pytest.raises(OutputError, match="other headers"):
        join_segments([a, b], tmp_path / "joined.mp4", None)
    with pytest.raises(OutputError, match="overlaps"):
        join_segments([a, a], tmp_path / "joined.mp4", None)  # same timestamps twice
    assert not list(tmp_path.glob("*joined*")), "a failed join leaves no file"


def test_segments_resume_after_partial_run(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "long.mp4", n_frames=36, fps=12, codec="mpeg4", audio=False)
    out = tmp_path / "out"
    settings = _settings(tiny_checkpoint)
    runner = BatchRunner(plan_jobs(src, out), settings, out, segment_seconds=1.0)
    calls: list[str] = []

    class FailLast(InProcessExecutor):
        def run(self, tasks, stop=None):  # type: ignore[no-untyped-def]
            for task in tasks:
                calls.append(task.id)
                if task.id.endswith("#2") and len(calls) <= 3:
                    yield TaskResult(task.id, False, "simulated worker failure")
                else:
                    yield from super().run([task], stop)

    first = runner.run(lambda: FailLast(runner.checkpoint, settings))
    assert first.files[0].status == "failed" and first.files[0].reason == "simulated worker failure"
    assert not (out / "long.mp4").exists()
    second = BatchRunner(plan_jobs(src, out), settings, out, segment_seconds=1.0)
    report = second.run(lambda: FailLast(second.checkpoint, settings))
    assert report.files[0].status == "done"
    assert calls[3:] == [f"{out.resolve() / 'long.mp4'}#2"], "only the missing segment is redone"
    assert probe(out / "long.mp4").frames == 36


def test_cli_batch_with_pool_and_exit_status(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _library(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["batch", str(src), "-o", str(out), "-s", str(tiny_checkpoint), "--device", "cpu", "--no-progress"]
    assert main([*argv, "--workers", "2"]) == 1  # two spawned worker processes; one file failed
    text = capsys.readouterr().out
    assert "2 done, 1 failed, 0 skipped" in text and "with 2 worker(s)" in text
    assert "failed: " in text and "bad.mp4" in text
    assert probe(out / "a.mp4").frames == 20
    (src / "bad.mp4").unlink()
    assert main(argv) == 0
    assert "0 done, 0 failed, 2 skipped" in capsys.readouterr().out


def test_ray_actor_plan_one_gpu_per_actor_or_cpu_threads(tiny_checkpoint: Path) -> None:
    settings = _settings(tiny_checkpoint, device="auto", threads=None)
    options, workers, worker_settings = ray_actor_plan({"CPU": 64.0, "GPU": 8.0}, settings)
    assert options == {"num_gpus": 1, "num_cpus": 1} and workers == 8 and worker_settings.device == "auto"
    options, workers, worker_settings = ray_actor_plan({"CPU": 16.0}, dataclasses.replace(settings, threads=4))
    assert options == {"num_cpus": 4} and workers == 4 and worker_settings.device == "cpu"
    forced_cpu = dataclasses.replace(settings, device="cpu")
    assert ray_actor_plan({"CPU": 2.0, "GPU": 1.0}, forced_cpu, workers=2)[:2] == ({"num_cpus": 1}, 2)


class _CrashOnceWorker(BatchWorker):
    """Kills its own process on the first attempt at each file (as an OOM kill or a lost node would)."""

    def convert(self, task: Task) -> TaskResult:
        marker = Path(task.source + ".crashed")
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return super().convert(task)


def test_pool_worker_death_is_retried(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "one.mp4", n_frames=8, audio=False)
    out = tmp_path / "out"
    settings = _settings(tiny_checkpoint)
    runner = BatchRunner(plan_jobs(src, out), settings, out)
    report = runner.run(lambda: LocalPoolExecutor(runner.checkpoint, settings, 1, worker_cls=_CrashOnceWorker))
    assert (src / "one.mp4.crashed").exists(), "the first attempt did kill its worker process"
    assert report.files[0].status == "done" and probe(out / "one.mp4").frames == 8


def test_ray_batch_three_clips_one_corrupt(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ray = pytest.importorskip("ray")
    from stylize_video.runtime.batch import RayExecutor

    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "one.mp4", n_frames=20)
    write_clip(src / "two.mp4", n_frames=24, audio=False)
    (src / "three.mp4").write_bytes(b"\x00garbage" * 200)
    out = tmp_path / "out"
    settings = _settings(tiny_checkpoint)
    checkpoint = load_checkpoint(tiny_checkpoint)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        runner = BatchRunner(plan_jobs(src, out), settings, out, checkpoint=checkpoint)
        report = runner.run(lambda: RayExecutor(checkpoint, settings, workers=2))
        assert report.workers == 2
        status = {Path(f.input).name: f for f in report.files}
        assert status["one.mp4"].status == "done" and status["two.mp4"].status == "done"
        assert status["three.mp4"].status == "failed" and "three.mp4" in status["three.mp4"].reason
        assert probe(out / "one.mp4").frames == 20 and probe(out / "two.mp4").frames == 24
        # Rerun: the done ones are skipped.
        rerun = BatchRunner(plan_jobs(src, out), settings, out, checkpoint=checkpoint)
        again = rerun.run(lambda: RayExecutor(checkpoint, settings, workers=2))
        assert sorted(f.status for f in again.files) == ["failed", "skipped", "skipped"]

        # A worker process that dies mid-file is restarted by Ray and the file retried.
        write_clip(src / "four.mp4", n_frames=12, audio=False)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
        crashy = BatchRunner(plan_jobs(src, out), settings, out, checkpoint=checkpoint)
        retried = crashy.run(lambda: RayExecutor(checkpoint, settings, workers=1, worker_cls=_CrashOnceWorker))
        assert (src / "four.mp4.crashed").exists(), "the first attempt did crash its worker"
        four = next(f for f in retried.files if f.input.endswith("four.mp4"))
        assert four.status == "done" and probe(out / "four.mp4").frames == 12
    finally:
        ray.shutdown()


def test_sigterm_stops_pool_workers_mid_file(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # SIGTERM reaches the batch process only (not its workers, unlike Ctrl-C in a
    # terminal): the workers must be interrupted too, not left to finish their files.
    import signal
    import subprocess
    import time

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_clip(src / name, n_frames=3000, size=(64, 48), fps=25, audio=False)
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "stylize_video", "batch", str(src), "-o", str(out), "-s", str(tiny_checkpoint)]
    proc = subprocess.Popen(
        [*cmd, "--device", "cpu", "--workers", "2", "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        # Both workers are converting once their partial outputs exist.
        while len(list(out.glob(".*partial*"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert not (out / "a.mp4").exists() and not (out / "b.mp4").exists(), "workers finished instead of stopping"
    assert not [p for p in out.rglob(".*") if p.is_file() and p.suffix == ".mp4"], "half-done files left behind"


def test_settings_carry_encoder_options_whole_and_keep_the_manifest_record_flat() -> None:
    from stylize_video.io.specs import EncoderOptions

    s = BatchSettings(style="x", encoder=EncoderOptions(codec="hevc", crf=20), backend="onnxruntime")
    record = s.output_record()
    # The flat keys written by earlier versions, so their manifests still match on rerun.
    assert record["codec"] == "hevc" and record["crf"] == 20 and record["bitrate"] is None
    assert "encoder" not in record and "backend" not in record and "device" not in record
    assert BatchSettings(style="x", backend="torch").output_record() == BatchSettings(style="x").output_record()


def test_a_truncated_input_is_recorded_as_truncated_and_skipped_on_rerun(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from .test_robustness_media import _cut, _faststart

    src = tmp_path / "in"
    src.mkdir()
    full = _faststart(write_clip(tmp_path / "full.mp4", n_frames=60, audio=False), tmp_path / "fs.mp4")
    _cut(full, 0.5).rename(src / "clip.mp4")
    out = tmp_path / "out"
    report, _ = _run(src, out, tiny_checkpoint)
    (only,) = report.files
    assert only.status == "truncated" and "ends early" in only.reason
    assert 0 < probe(out / "clip.mp4").frames < 60
    assert "1 truncated" in report.summary() and "truncated: " in report.summary()
    again, started = _run(src, out, tiny_checkpoint)
    assert [f.status for f in again.files] == ["skipped"] and not started
