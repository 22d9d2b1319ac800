"""The package's imports run one way: no cycle among avqa's modules, and no floor imports a higher floor.

A cycle dodged by moving an import into a function still ties the two modules together; these tests see deferred
(function-level) imports too. The floors are written once, here (FLOORS); docs/pipeline.md says why.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "avqa"

# The floors, lowest first: a module imports its own floor and the floors below it, never one above. Storage and
# identity (Zarr stores, content digests and stable hashes, the answer vocabulary, the results layout, the stage
# specs, errors, atomic writes, devices) underlie everything; data makes annotations, features read videos and
# write stores, models are built from specs, training runs them over the data, reporting reads only the results;
# the Snakefile helpers (workflow) and the command line (cli) sit on top.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("storage and identity", ("avqa", "avqa.errors", "avqa.atomic", "avqa.paths", "avqa.runtime", "avqa.specs",
                              "avqa.store", "avqa.digest", "avqa.vocab")),
    ("data", ("avqa.data",)),
    ("features", ("avqa.features",)),
    ("models", ("avqa.models",)),
    ("training", ("avqa.training",)),
    ("reporting", ("avqa.reporting",)),
    ("entry points", ("avqa.workflow", "avqa.cli", "avqa.__main__")),
)
# The one deliberate exception: a stage command run by hand with `--config FILE` (avqa.specs.spec_from_args)
# builds its spec with avqa.workflow's builder for that stage, the one place a spec is built from config. The
# import sits inside the command's function, so importing a stage module (or running it from the pipeline, which
# passes --spec) never loads the workflow helpers.
BY_HAND_CONFIG = "avqa.workflow"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_with_depth(path: Path) -> set[tuple[str, bool]]:
    """(avqa module, deferred) for every avqa import of `path`; deferred: inside a function body."""
    found = set()

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            found.update((a.name, deferred) for a in node.names if a.name.split(".")[0] == "avqa")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "avqa" \
                and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add((sub if is_module(sub) else node.module, deferred))
        inner = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the avqa modules it imports, the by-hand --config builder's deferred import (BY_HAND_CONFIG)
    aside: that one closes a cycle through avqa.specs on purpose."""
    graph = {module_name(p): {t for t, deferred in imports_with_depth(p) if not (deferred and t == BY_HAND_CONFIG)}
             for p in PACKAGE.rglob("*.py")}
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


# --- floors ---------------------------------------------------------------------------------------------------
def floor_of(module: str) -> int | None:
    """The floor index of a module: its longest listed prefix (the package root `avqa` only by its own name)."""
    best = None
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or (prefix != "avqa" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return None if best is None else best[0]


def floor_violations(edges: dict[str, set[tuple[str, bool]]]) -> list[str]:
    """"importer (floor) -> imported (floor)" for every import of a higher floor, the by-hand exception aside."""
    found = []
    for module, targets in sorted(edges.items()):
        for target, deferred in sorted(targets):
            if deferred and target == BY_HAND_CONFIG:
                continue
            low, high = floor_of(module), floor_of(target)
            if low is not None and high is not None and high > low:
                found.append(f"{module} ({FLOORS[low][0]}) -> {target} ({FLOORS[high][0]})")
    return found


def test_the_floor_check_flags_an_upward_import_and_only_that():
    assert floor_of("avqa.data.dataset") == 1 and floor_of("avqa.store") == 0 and floor_of("avqa.workflow") == 6
    assert floor_of("avqa.somewhere_new") is None                  # a new top-level module must be given a floor
    assert floor_violations({"avqa.data.x": {("avqa.models", False)}}) == ["avqa.data.x (data) -> avqa.models (models)"]
    assert floor_violations({"avqa.data.x": {("avqa.models", True)}})          # deferred is still an import
    assert floor_violations({"avqa.models.x": {("avqa.data", False), ("avqa.store", False)}}) == []
    assert floor_violations({"avqa.data.x": {(BY_HAND_CONFIG, True)}}) == []    # the by-hand --config builder
    assert floor_violations({"avqa.data.x": {(BY_HAND_CONFIG, False)}})         # ... only from inside a function


def test_every_module_has_a_floor_and_no_floor_imports_a_higher_one():
    edges = {module_name(p): imports_with_depth(p) for p in PACKAGE.rglob("*.py")}
    unplaced = sorted(m for m in edges if floor_of(m) is None)
    assert not unplaced, f"modules on no floor (add them to FLOORS in tests/test_imports.py): {unplaced}"
    violations = floor_violations(edges)
    assert not violations, "imports of a higher floor:\n" + "\n".join(violations)


# --- the Snakefile parses without torch ------------------------------------------------------------------------
HEAVY = ("torch", "open_clip", "torchvggish", "torchvision", "decord")
DRY_RUN = """
import atexit, json, sys
atexit.register(lambda: print("LOADED " + json.dumps(sorted(m for m in {heavy} if m in sys.modules))))
from avqa import workflow as W
config = W.load_config("config.yaml")
for encoder in W.ENCODERS:   # the extract rule's params: evaluated once the shards checkpoint has run, not here
    if encoder in W.encoder_pattern().split("|"):
        W.extract_spec(config, encoder)
from snakemake.cli import main
main(["-n", "--quiet", "all", "--cores", "1", "-s", {snakefile}, "--directory", {workdir}])
"""


def test_the_snakefile_plans_the_default_run_without_importing_torch(tmp_path):
    """A dry run of the default config (every rule's input, params and resources functions of the planned jobs
    evaluated) in a fresh process loads none of the heavy libraries: the workflow helpers are torch-free."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    code = DRY_RUN.format(heavy=HEAVY, snakefile=repr(str(ROOT / "Snakefile")), workdir=repr(str(tmp_path)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    loaded = [line for line in proc.stdout.splitlines() if line.startswith("LOADED ")]
    assert proc.returncode == 0 and loaded, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads(loaded[-1].removeprefix("LOADED ")) == []
