"""gridmgr's domain packages depend on one another in one direction only: a newcomer can read
a package knowing only those below it. The graph is built from the source with ``ast`` (every
``import`` of ``gridmgr.<package>``, inside functions too: an import deferred to run time is
still a dependency), and a cycle between packages fails the test, naming the modules."""

from __future__ import annotations

import ast
from pathlib import Path

GRIDMGR = Path(__file__).resolve().parent.parent / "gridmgr"

def domain_packages() -> set[str]:
    return {p.name for p in GRIDMGR.iterdir() if (p / "__init__.py").exists()}


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package → package it imports → the modules (paths) that import it."""
    packages = domain_packages()
    graph: dict[str, dict[str, set[str]]] = {p: {} for p in packages}
    for path in GRIDMGR.rglob("*.py"):
        parts = path.relative_to(GRIDMGR).parts
        if len(parts) < 2 or parts[0] not in packages:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                dotted = name.split(".")
                if (len(dotted) > 1 and dotted[0] == "gridmgr" and dotted[1] in packages
                        and dotted[1] != parts[0]):
                    graph[parts[0]].setdefault(dotted[1], set()).add(
                        str(path.relative_to(GRIDMGR.parent)))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list]:
    """The strongly connected groups of more than one package (Tarjan)."""
    edges = {a: set(targets) for a, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_at_module_level_and_inside_functions():
    graph = import_graph()
    assert "cases" in graph["open311"]  # open311 files a report through cases.intake
    assert "grids" in graph["cases"]


def test_a_cycle_of_two_packages_is_found_and_named():
    graph = {"a": {"b": {"a/x.py"}}, "b": {"c": {"b/y.py"}}, "c": {"a": {"c/z.py"}}, "d": {}}
    assert cycles(graph) == [["a", "b", "c"]]
    graph["c"] = {"d": {"c/z.py"}}
    assert cycles(graph) == []


def test_no_domain_package_depends_on_itself_through_others():
    graph = import_graph()
    unknown = cycles(graph)
    described = []
    for group in unknown:
        for a in group:
            for b in group:
                if b in graph[a]:
                    described.append(f"{a} → {b}: {', '.join(sorted(graph[a][b]))}")
    assert not unknown, "import cycles between domain packages:\n" + "\n".join(described)
