"""Batch under signals: workers die with their parent, a stop starts nothing new and loses no record,
and a rerun removes the partial files that killed writers left behind.

The runs that get signals are real processes: ``python -m stylize_video batch`` or a
small driver script (for a worker class that logs when each file starts), with a
local pool of two spawned workers on tiny generated clips.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stylize_video.files import host_tag, partial_owner, pid_alive, remove_stale_partials
from stylize_video.runtime.batch import (
    MANIFEST_NAME,
    SEGMENTS_DIR,
    VIDEO_EXTENSIONS,
    BatchInterrupted,
    BatchRunner,
    BatchSettings,
    InProcessExecutor,
    StopRequest,
    Task,
    plan_jobs,
)
from tests.media import probe, write_clip

ROOT = Path(__file__).resolve().parents[1]

# A worker class for the driver: logs each file it really starts (after the stop
# check), so a test can tell when every file started. "stubborn" ignores stop
# requests: its files finish while the batch is stopping.
_HELPERS = """
import json, os, time
from stylize_video.runtime.batch import BatchWorker

class LoggingWorker(BatchWorker):
    def _convert(self, task):
        with open(os.environ["BATCHSIG_STARTS"], "a") as f:
            f.write(json.dumps({"t": time.time(), "id": task.id, "pid": os.getpid()}) + "\\n")
        return super()._convert(task)

class StubbornWorker(LoggingWorker):
    def _check_stop(self, frame):
        pass
"""

_DRIVER = """
import sys, threading
from batchsig_helpers import LoggingWorker, StubbornWorker
from stylize_video.runtime.batch import BatchInterrupted, BatchRunner, BatchSettings, LocalPoolExecutor, plan_jobs

src, out, style, worker, where = sys.argv[1:6] if __name__ == "__main__" else [""] * 5

def run():
    settings = BatchSettings(style=style, device="cpu", threads=1)
    runner = BatchRunner(plan_jobs(src, out), settings, out)
    cls = {"logging": LoggingWorker, "stubborn": StubbornWorker}[worker]
    try:
        print(runner.run(lambda: LocalPoolExecutor(runner.checkpoint, settings, 2, worker_cls=cls)).summary())
    except BatchInterrupted as stopped:
        print(stopped.report.summary())
        sys.exit(130)

if __name__ == "__main__":  # spawned workers import this file too
    if where == "thread":  # the pool is started by another thread: no kernel death signal, the watchdog alone
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
"""


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "BATCHSIG_STARTS": str(tmp_path / "starts.jsonl")}


def _driver(
    tmp_path: Path, src: Path, out: Path, style: Path, worker: str, where: str = "main"
) -> subprocess.Popen[str]:
    (tmp_path / "batchsig_helpers.py").write_text(_HELPERS)
    (tmp_path / "drive.py").write_text(_DRIVER)
    cmd = [sys.executable, str(tmp_path / "drive.py"), str(src), str(out), str(style), worker, where]
    return subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cli(tmp_path: Path, src: Path, out: Path, style: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "stylize_video", "batch", str(src), "-o", str(out), "-s", str(style)]
    cmd += ["--device", "cpu", "--workers", "2", "--no-progress"]
    return subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _starts(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "starts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for(condition: object, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and proc.poll() is None and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)
    if proc.poll() is not None:
        stdout, stderr = proc.communicate()
        pytest.fail(f"the batch ended before the test could signal it: {stdout[-2000:]} {stderr[-2000:]}")
    assert condition(), "timed out waiting for the batch"  # type: ignore[operator]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(children - found)
            found |= children
    return found


def _workers(pid: int) -> list[int]:
    """The pool's worker processes below ``pid`` (not multiprocessing's resource tracker)."""
    found = []
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                found.append(p)
    return found


def _manifest(out: Path) -> list[dict[str, object]]:
    path = out / MANIFEST_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _partials(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if partial_owner(p) is not None]


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds worker processes through /proc")


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("where", ["main", "thread"])
def test_sigkill_of_the_batch_takes_its_workers_down(tmp_path: Path, tiny_checkpoint: Path, where: str) -> None:
    # "main": the CLI, the kernel's death signal (Linux). "thread": the pool is started
    # by another thread, so only the workers' watchdogs notice that the batch died.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        write_clip(src / name, n_frames=3000, size=(64, 48), audio=False)
    out = tmp_path / "out"
    proc = (
        _cli(tmp_path, src, out, tiny_checkpoint)
        if where == "main"
        else _driver(tmp_path, src, out, tiny_checkpoint, "logging", where)
    )
    workers: set[int] = set()
    try:
        _wait_for(lambda: len(_partials(out)) >= 2, proc)  # both workers are writing
        workers = _descendants(proc.pid)
        assert len(workers) >= 2
        proc.kill()
        proc.wait(timeout=10)
        t0 = time.monotonic()
        # Seconds on an idle machine; a generous bound because a torch-laden process on a
        # loaded 2-core host can take many seconds just to tear down.
        while any(pid_alive(p) for p in workers) and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        alive = [p for p in workers if pid_alive(p)]
        gone_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers | _descendants(proc.pid):  # never leave an orphan behind, whatever failed
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
    assert alive == [], f"orphaned workers still running after {gone_after:.1f}s"
    assert not any((out / n).exists() for n in ("a.mp4", "b.mp4", "c.mp4")), "nothing under a final name"
    if where == "thread":
        assert _partials(out) == [], "an orphaned worker discards its partial file before it exits"
    # Whatever is left is named for this machine and a dead writer: the next run removes it.
    for partial in _partials(out):
        pid, tag = partial_owner(partial)  # type: ignore[misc]
        assert tag == host_tag() and not pid_alive(pid)
    sizes = {p: p.stat().st_size for p in _partials(out)}
    time.sleep(0.5)
    assert {p: p.stat().st_size for p in _partials(out)} == sizes, "nobody writes any more"
    removed = [p for d in (out, *(out / SEGMENTS_DIR).glob("*")) for p in remove_stale_partials(d)]
    assert sorted(removed) == sorted(sizes) and _partials(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("worker", ["logging", "stubborn"])
def test_sigterm_starts_no_queued_file_and_records_every_finished_one(
    tmp_path: Path, tiny_checkpoint: Path, worker: str
) -> None:
    # "stubborn" workers ignore the stop request: their files finish while the batch
    # is stopping, and must be in the manifest all the same.
    src = tmp_path / "in"
    src.mkdir()
    names = [f"clip{i}.mp4" for i in range(7)]
    for name in names:
        write_clip(src / name, n_frames=150, size=(64, 48), audio=False)
    out = tmp_path / "out"
    proc = _driver(tmp_path, src, out, tiny_checkpoint, worker)
    try:
        # Signal with one or more files done, two in progress and the rest queued.
        first = 1 if worker == "logging" else 0
        _wait_for(lambda: len(_starts(tmp_path)) >= first + 2, proc)
        t_signal = time.time()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    starts = _starts(tmp_path)
    # The stop reaches the workers within a poll interval; nothing starts later.
    late = [s for s in starts if float(s["t"]) > t_signal + 0.5]  # type: ignore[arg-type]
    assert late == [], f"files started after the stop: {late}"
    assert len(starts) < len(names), "the batch went on"
    done = {Path(str(r["output"])).name for r in _manifest(out) if r["status"] == "done"}
    outputs = {p.name for p in out.glob("*.mp4")}
    assert outputs == done, "every finished file is in the manifest, and only those"
    started = {Path(str(s["id"])).name for s in starts}
    assert done <= started
    if worker == "stubborn":
        assert done == started, "a file that finished while the batch was stopping is recorded"
    for name in done:
        assert probe(out / name).frames == 150
    assert _partials(out) == [], "dropped files leave nothing behind"
    assert f"{len(done)} done" in stdout and f"stopped with {len(names) - len(done)} file(s) not converted" in stdout


def test_in_process_stop_drops_the_file_and_keeps_the_record(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # One worker in this process (the default on a 2-core machine): SIGTERM to this
    # process while the batch runs in the main thread.
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a_small.mp4", n_frames=10, audio=False)
    write_clip(src / "b_long.mp4", n_frames=3000, audio=False)
    write_clip(src / "c_small.mp4", n_frames=10, audio=False)
    out = tmp_path / "out"
    settings = BatchSettings(style=str(tiny_checkpoint), device="cpu", threads=1)
    runner = BatchRunner(plan_jobs(src, out), settings, out)

    finished = threading.Event()

    def signal_when_long_file_runs() -> None:
        while not list(out.glob(".*b_long*partial*")):
            if finished.wait(0.02):
                return  # the batch ended first: the assertions below say so
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: pytest.fail("the batch's handler was not installed"))
    killer = threading.Thread(target=signal_when_long_file_runs, daemon=True)
    killer.start()
    try:
        with pytest.raises(BatchInterrupted) as stopped:
            runner.run(lambda: InProcessExecutor(runner.checkpoint, settings))  # biggest input first
    finally:
        finished.set()
        killer.join(5)
        signal.signal(signal.SIGTERM, previous)
    report = stopped.value.report
    assert report.interrupted and report.unfinished == 3 and report.files == []
    assert not (out / "b_long.mp4").exists() and _partials(out) == []
    assert not (out / "a_small.mp4").exists() and not (out / "c_small.mp4").exists(), "queued files never started"
    assert _manifest(out) == []
    # The next run does them all.
    again = BatchRunner(plan_jobs(src, out), settings, out)
    (src / "b_long.mp4").unlink()
    write_clip(src / "b_long.mp4", n_frames=12, audio=False)
    assert again.run(lambda: InProcessExecutor(again.checkpoint, settings)).count("done") == 3


def test_stop_requested_before_a_task_starts_nothing(tmp_path: Path, tiny_checkpoint: Path) -> None:
    write_clip(tmp_path / "a.mp4", n_frames=4, audio=False)
    settings = BatchSettings(style=str(tiny_checkpoint), device="cpu", threads=1)
    runner = BatchRunner(plan_jobs(tmp_path / "a.mp4", tmp_path / "out"), settings, tmp_path / "out")
    executor = InProcessExecutor(runner.checkpoint, settings)
    stop = StopRequest()
    stop.request()
    task = Task("a", str(tmp_path / "a.mp4"), str(tmp_path / "out" / "a.mp4"))
    assert list(executor.run([task], stop)) == []
    executor._worker.request_stop()
    result = executor._worker.convert(task)
    assert result.stopped and not result.ok and not (tmp_path / "out" / "a.mp4").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_rerun_removes_stale_partials_of_dead_writers_only(tmp_path: Path, tiny_checkpoint: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=6, audio=False)
    out = tmp_path / "out"
    segs = out / SEGMENTS_DIR / "long-0123456789"
    segs.mkdir(parents=True)
    dead, ours = _dead_pid(), host_tag()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    hour_ago = time.time() - 3600
    try:
        files = {
            # ours, dead writer: removed (a worker killed mid-file, a nested sink file, a staged segment)
            f".a.host-{ours}.partial-{dead}.mp4": False,
            f"..a.host-{ours}.partial-{dead}.partial-{dead}.mp4": False,
            f"{SEGMENTS_DIR}/long-0123456789/.00001.host-{ours}.partial-{dead}.mp4": False,
            # ours, live writer: kept
            f".b.host-{ours}.partial-{live.pid}.mp4": True,
            f".b.host-{ours}.partial-{os.getpid()}.mkv": True,
            # untagged (another machine's PID, maybe): kept while fresh
            f".c.partial-{dead}.mp4": True,
            # another machine's: kept while fresh, even with a PID that is dead here
            f".d.host-00000000.partial-{dead}.mp4": True,
            # not ours at all: a finished segment, other names, another extension
            f"{SEGMENTS_DIR}/long-0123456789/00000.mp4": True,
            f".notes.partial-{dead}.txt": True,
            f"e.partial-{dead}.mp4": True,
            f".f.host-{ours}.mp4": True,
        }
        old = {
            f".g.partial-{dead}.mp4": False,  # untagged, dead here and untouched for an hour
            f".h.host-00000000.partial-{live.pid}.webm": False,  # another machine's, untouched for an hour
            # the PID runs, but started after the file's last change: reused, not the writer
            f".i.host-{ours}.partial-{live.pid}.mp4": False,
        }
        for name in [*files, *old]:
            (out / name).write_bytes(b"x")
        for name in old:
            os.utime(out / name, (hour_ago, hour_ago))
        (out / f".j.host-{ours}.partial-{dead}.mp4").mkdir()  # a folder under a partial name
        os.symlink(out / f"e.partial-{dead}.mp4", out / f".k.host-{ours}.partial-{dead}.mp4")
        settings = BatchSettings(style=str(tiny_checkpoint), device="cpu", threads=1)
        runner = BatchRunner(plan_jobs(src, out), settings, out)
        assert runner.run(lambda: InProcessExecutor(runner.checkpoint, settings)).count("done") == 1
        for name, kept in {**files, **old}.items():
            assert (out / name).exists() == kept, name
        assert (out / f".j.host-{ours}.partial-{dead}.mp4").is_dir()
        assert (out / f".k.host-{ours}.partial-{dead}.mp4").is_symlink()
        assert probe(out / "a.mp4").frames == 6
    finally:
        live.kill()
        live.wait()
    # Once the writer is gone, its file goes too.
    assert {p.name for p in remove_stale_partials(out, suffixes=VIDEO_EXTENSIONS)} == {
        f".b.host-{ours}.partial-{live.pid}.mp4"
    }


@needs_proc
@pytest.mark.slow
def test_ctrl_c_while_workers_start_is_quiet(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # A terminal's Ctrl-C reaches the whole process group, workers still importing torch included.
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=3000, audio=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stylize_video", "batch", str(src), "-o", str(out), "-s", str(tiny_checkpoint)]
    cmd += ["--device", "cpu", "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(
        cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _wait_for(lambda: len(_workers(proc.pid)) >= 1, proc)  # one file: one worker
        time.sleep(0.3)  # the workers are importing torch (a second or more), their model not loaded yet
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "stopped with 1 file(s) not converted" in stdout
    assert not (out / "a.mp4").exists() and _partials(out) == [] if out.exists() else True
