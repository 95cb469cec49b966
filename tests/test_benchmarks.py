"""The benchmarks package: every script imports and answers --help, none patches
sys.path, and the shared harness (sizes, interleaving, writers) behaves."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmarks
from benchmarks import harness
from benchmarks.harness import Column, Section, Timing

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "harness")


def test_every_known_script_is_found() -> None:
    # A floor, so a broken discovery cannot make the parametrized tests below vacuous.
    assert {"model_speed", "peers", "end_to_end", "latency", "temporal", "batch_scaling"} <= set(SCRIPTS)
    assert len(SCRIPTS) >= 11


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports_and_answers_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_no_script_patches_sys_path(path: Path) -> None:
    tree = ast.parse(path.read_text())
    patched = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert patched == [], f"{path.name} uses sys.path on lines {patched}"


def test_runs_as_a_module_from_the_repository_root() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.model_speed", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


# ------------------------------------------------------------------ harness


def test_parse_size_uses_the_library_rules() -> None:
    assert harness.parse_size("640x360") == (640, 360)
    assert harness.parse_size("1280X720") == (1280, 720)
    with pytest.raises(argparse.ArgumentTypeError, match="'64'"):
        harness.parse_size("64")
    with pytest.raises(argparse.ArgumentTypeError, match="8x8"):
        harness.parse_size("8x8")


def test_bad_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import latency

    with pytest.raises(SystemExit) as exc:
        latency.main(["--size", "big"])
    assert exc.value.code == 2
    assert "'big'" in capsys.readouterr().err


def test_interleaved_takes_turns_and_passes_the_round() -> None:
    calls: list[tuple[str, int]] = []
    rounds_done: list[int] = []

    def contender(name: str) -> Callable[[int], str]:
        def run(r: int) -> str:
            calls.append((name, r))
            return f"{name}{r}"

        return run

    out = harness.interleaved({"a": contender("a"), "b": contender("b")}, 2, after_round=rounds_done.append)
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert out == {"a": ["a0", "a1"], "b": ["b0", "b1"]}
    assert rounds_done == [0, 1]
    with pytest.raises(ValueError, match="0"):
        harness.interleaved({"a": contender("a")}, 0)


def test_every_round_binds_its_arguments_now() -> None:
    contenders = {}
    for k in ("x", "y"):
        contenders[k] = harness.every_round(str.upper, k)  # the loop variable moves on; the binding must not
    assert harness.interleaved(contenders, 2) == {"x": ["X", "X"], "y": ["Y", "Y"]}


def test_spread_and_timing_extend() -> None:
    assert harness.spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert harness.spread([])["n"] == 0
    t = Timing([1.0], [0.5])
    t.extend(Timing([3.0, 2.0], [1.0, 1.5]))
    assert t.samples_ms == [1.0, 3.0, 2.0] and t.cpu_ms == [0.5, 1.0, 1.5]
    assert t.median_ms == 2.0 and t.n == 3


def test_machine_info_describes_the_machine() -> None:
    info = harness.machine_info(torch.device("cpu"))
    for key in ("date_utc", "cpu", "logical_cpus", "torch", "torch_threads", "load_average_1m", "gpu"):
        assert key in info
    assert info["device"] == "cpu"
    assert info["torch"] == torch.__version__
    line = harness.machine_line(info)
    assert f"torch {torch.__version__}" in line and "load average" in line


def test_write_results_json_and_markdown(tmp_path: Path) -> None:
    rows = [{"name": "a", "ratio": 0.984, "fps": 12.345, "missing": None}]
    cols = ["name", Column("ratio", "file / model", ".0%"), Column("fps", fmt=".1f"), "missing"]
    json_path, md_path, text = harness.write_results(
        "demo",
        harness.machine_info(),
        [Section("Table one", rows, cols, "Why these numbers."), ("Plain", [{"x": 1234.5}], ["x"])],
        out_dir=tmp_path,
        config={"command": harness.command_line("demo", ["--quick"])},
        notes=["a note"],
        extra={"raw": [1, 2]},
    )
    assert json_path == tmp_path / "demo.json" and md_path == tmp_path / "demo.md"
    data = json.loads(json_path.read_text())
    assert data["sections"]["Table one"][0]["ratio"] == 0.984
    assert data["raw"] == [1, 2]
    assert data["config"]["command"] == "python -m benchmarks.demo --quick"
    assert md_path.read_text() == text
    assert "| name | file / model | fps | missing |" in text
    assert "| a | 98% | 12.3 | - |" in text
    assert "## Table one\n\nWhy these numbers.\n\n| name" in text
    assert "| 1234 |" in text  # default format: no decimals from 100 up
    assert "- a note" in text


def test_find_clips(tmp_path: Path) -> None:
    for name in ("b.mp4", "A.MKV", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in harness.find_clips(tmp_path)] == ["A.MKV", "b.mp4"]
    assert harness.find_clips(tmp_path / "missing") == []


# --------------------------------------------------------- tiny smoke calls


def test_temporal_time_smoothers_smoke() -> None:
    from benchmarks.temporal import time_smoothers
    from stylize_video.runtime.smoothing import EmaSmoother, NoSmoother

    frames = harness.synthetic_frames(32, 24, count=3)
    rows = time_smoothers(frames, 4, {"none": NoSmoother(), "ema": EmaSmoother(0.5)}, torch.device("cpu"))
    assert [r["smoother"] for r in rows] == ["none", "ema"]
    assert all(r["size"] == "32x24" and r["n"] > 0 and r["median ms"] >= 0 for r in rows)


def test_peers_naive_network_smoke() -> None:
    from benchmarks.peers import NaiveFullNet, naive_stylize

    frame = harness.synthetic_frames(16, 12, count=1)[0]
    out = naive_stylize(NaiveFullNet().eval(), frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
