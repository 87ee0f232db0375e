"""The layers: stage packages import only `core`, orchestration sits above them, and no cycle.

Every import counts, a function-local one too (a lazy import is a cycle in disguise).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CORE = "core"
STAGES = {"validation", "training", "serving", "scoring", "deploy"}
ORCHESTRATION = "orchestration"
# What each package may import besides itself. Above orchestration: the tools that drive the
# running system from outside, and the benchmarks.
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    **{stage: {CORE} for stage in STAGES},
    ORCHESTRATION: {CORE, *STAGES},
    "tools": {CORE, *STAGES, ORCHESTRATION},
    "bench": {CORE, *STAGES, ORCHESTRATION, "tools"},
}


def package_imports(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """Map each of our packages to the other packages it imports, with the files that do."""
    graph: dict[str, dict[str, list[str]]] = {}
    packages = {p.parent.name for p in root.glob("*/__init__.py")}
    for package in sorted(packages):
        edges: dict[str, list[str]] = {}
        for source in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in packages and top != package:
                        edges.setdefault(top, []).append(str(source.relative_to(root)))
        graph[package] = edges
    return graph


@cache
def repository_imports() -> dict[str, dict[str, list[str]]]:
    """The repository's own graph, parsed once for all the tests below (every .py file, tests too)."""
    return package_imports()


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """Return one cycle of the package graph as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_package_has_a_layer() -> None:
    unknown = set(repository_imports()) - set(ALLOWED) - {"tests"}
    assert not unknown, f"packages with no layer in tests/repo/test_layers.py: {sorted(unknown)}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    graph = repository_imports()
    forbidden = {
        other: files
        for other, files in graph.get(package, {}).items()
        if other not in ALLOWED[package]  # `tests` too: shipped code never imports the tests
    }
    assert not forbidden, f"{package} imports {forbidden} (allowed: {sorted(ALLOWED[package])})"


def test_no_cycle_between_packages() -> None:
    graph = dict(repository_imports())
    graph.pop("tests", None)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages: " + " → ".join(cycle or [])


def test_the_guard_sees_a_cycle_made_by_a_function_local_import(tmp_path: Path) -> None:
    for name, body in {
        "alpha": "def f() -> None:\n    from beta.x import g\n",
        "beta": "from gamma import h\n",
        "gamma": "import alpha.y\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "m.py").write_text(body)
    graph = package_imports(tmp_path)
    assert graph["alpha"] == {"beta": ["alpha/m.py"]}
    assert find_cycle(graph) == ["alpha", "beta", "gamma", "alpha"]
