"""The one process-wide default the package sets: OpenMP threads that yield when idle.

Set on ``import stylize_video`` (and so by the CLI) because OpenMP reads its wait
policy once, when torch loads its runtime: any later is too late.
"""

from __future__ import annotations

import os


def configure_thread_defaults() -> None:
    """Make OpenMP threads yield their core when idle; effective only before torch loads.

    With the default (spinning) wait policy, torch's intra-op threads collapse as soon
    as another process keeps a core busy: each parallel region waits for a spinning
    thread the OS has descheduled. Measured through the Python API, torch backend,
    lite 640x480 on the 2-core CPU beside one busy process: 3.6 fps spinning vs 13.4
    passive (idle 19.7 vs 15.9, a noisy pair; benchmarks/results/omp_wait_api.md).
    The default backend, OpenVINO, has its own pool, and the engine keeps its per-frame
    host work out of OpenMP (see runtime/transfer.py), so it holds up either way. A
    value the user set is kept; child processes (batch workers) inherit it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
