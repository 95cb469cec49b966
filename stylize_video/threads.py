"""The one process-wide default the package sets: OpenMP threads that yield when idle.

Set on ``import stylize_video`` (and so by the CLI) because OpenMP reads its wait
policy once, when torch loads its runtime: any later is too late. Whether that
happened in time is recorded here, so the torch backend can say so and benchmarks
can record it.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

#: The user's own ``OMP_WAIT_POLICY`` when the package was imported (None: unset or empty,
#: which OpenMP treats as unset).
USER_POLICY = os.environ.get("OMP_WAIT_POLICY") or None

#: Whether torch (and with it OpenMP) was already loaded when the package was imported.
TORCH_LOADED_FIRST = "torch" in sys.modules

_warned = False


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
    if not os.environ.get("OMP_WAIT_POLICY"):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def openmp_spins() -> bool:
    """True when torch's OpenMP threads spin: torch loaded before the package, no policy set."""
    return TORCH_LOADED_FIRST and USER_POLICY is None


def warn_if_openmp_spins() -> None:
    """Say once, for torch on the CPU, that spinning threads will collapse under load."""
    global _warned
    if _warned or not openmp_spins():
        return
    _warned = True
    log.warning(
        "torch was imported before stylize_video, so its OpenMP threads spin while idle: "
        "the torch backend can run several times slower when another program is busy. "
        "Import stylize_video first or set OMP_WAIT_POLICY=PASSIVE before starting Python "
        "(the default OpenVINO backend is not affected)"
    )
