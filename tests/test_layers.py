"""Import layering: no module imports from ``commands/`` except the CLI, and no import cycles.

Imports are read from the source (``ast``), including the lazy ones inside functions:
a lazy import still ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stylize_video

PACKAGE = Path(stylize_video.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in modules:  # a name imported from a module -> that module
                t = t.rpartition(".")[0]
            if t and t != name and not (path.name == "__init__.py" and t.startswith(name + ".")):
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_only_the_cli_imports_commands() -> None:
    graph = _graph()
    offenders = sorted(
        (m, t)
        for m, targets in graph.items()
        for t in targets
        if t.startswith("stylize_video.commands")
        and not (m.startswith("stylize_video.commands") or m == "stylize_video.cli")
    )
    assert offenders == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = []
    for start in graph:
        # Depth-first search for a path back to `start`.
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    # Guards the two tests above against passing because the parser saw nothing.
    graph = _graph()
    assert "stylize_video.training.trainer" in graph["stylize_video.training.train"]  # relative, module level
    assert "stylize_video.training.data" in graph["stylize_video.training.evaluate"]  # relative, inside a function
    assert "stylize_video.metrics.evaluation" in graph["stylize_video.commands.evaluate"]
