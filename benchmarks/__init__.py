"""Speed and quality benchmarks of stylize-video: scripts, not tests.

Each module runs from the repository root as ``python -m benchmarks.<name>`` and
writes JSON + Markdown under ``benchmarks/results/`` through :mod:`benchmarks.harness`.
"""
