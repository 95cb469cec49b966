"""Speed and quality benchmarks of stylize-video: scripts, not tests.

Each module runs from the repository root as ``python -m benchmarks.<name>`` and
writes JSON + Markdown under ``benchmarks/results/`` through :mod:`benchmarks.harness`.
"""

# Before any benchmark imports torch: importing the package sets OpenMP's wait policy
# (PASSIVE unless set), which counts only if it precedes torch, as in the product.
import stylize_video  # noqa: F401
