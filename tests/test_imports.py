"""The package's imports run one way: no cycle among avqa's modules, deferred (function-level) imports included.

A cycle dodged by moving an import into a function still ties the two modules together; this test sees those too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avqa"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every avqa module `path` imports anywhere in its body (`from avqa.x import y` counts avqa.x.y if y is a
    module, else avqa.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "avqa")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "avqa" \
                and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if is_module(sub) else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {module_name(p): imported_modules(p) for p in PACKAGE.rglob("*.py")}
    return {m: {t for t in targets if t != m} for m, targets in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(node: str) -> list[str] | None:
        colour[node] = "grey"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == "grey":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (cycle := visit(nxt)):
                return cycle
        colour[node] = "black"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_the_detector_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_the_package_and_deferred_imports():
    graph = import_graph()
    assert "avqa.training.train" in graph and "avqa.features.encoders.clip_rn50" in graph
    assert "avqa.training.spec" in graph["avqa.training.train"]
    assert "avqa.models" in graph["avqa.training.spec"]          # imported inside build()


def test_no_import_cycle_inside_avqa():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
