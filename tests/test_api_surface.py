"""The public API is frozen: a name joins or leaves ``stylize_video.__all__`` only on purpose.

Like kornia's API-surface test: the names and the signatures of the public callables
are compared with ``tests/api_surface.txt``. After a deliberate change, regenerate it
with ``python -m tests.test_api_surface > tests/api_surface.txt`` and review the diff.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import stylize_video

STORED = Path(__file__).with_name("api_surface.txt")


def surface() -> list[str]:
    lines = []
    for name in sorted(stylize_video.__all__):
        value = getattr(stylize_video, name)
        if inspect.isclass(value):
            try:
                sig = str(inspect.signature(value))
            except (TypeError, ValueError):
                sig = "(...)"
            lines.append(f"class {name}{sig}")
        elif callable(value):
            lines.append(f"def {name}{inspect.signature(value)}")
        else:
            lines.append(f"{name}: {type(value).__name__}")
    return lines


def test_public_api_matches_the_stored_surface() -> None:
    assert surface() == STORED.read_text().splitlines()


def test_every_public_name_resolves_and_nothing_private_is_exported() -> None:
    for name in stylize_video.__all__:
        assert getattr(stylize_video, name) is not None
        assert not name.startswith("_") or name == "__version__"
    assert "FrameTransfer" not in stylize_video.__all__  # engine internals stay internal


def test_importing_the_package_loads_no_heavy_module() -> None:
    import subprocess
    import sys

    code = "import sys, stylize_video; print(','.join(m for m in ('torch', 'cv2', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


if __name__ == "__main__":
    print("\n".join(surface()))
