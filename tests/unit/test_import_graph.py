"""The import graph of the project's own modules: no cycles, arrows run one way.

Layers, top to bottom: ``cli`` -> ``pipelines`` -> ``steps`` -> ``components`` ->
``har_runtime`` (the torch-free ONNX Runtime runtime that the Bento, the edge bundle and the
library share). A module may import from its own layer or from a layer below it, never from
one above. ``deployment`` (``service.py``, ``rehearsal/``, ``cluster_lock.py``) sits beside the
stack: it may use ``har_runtime``, and nothing in the stack imports it.

The graph is read statically with ``ast`` from every ``import`` / ``from ... import`` in our
packages, function-local ones included, so an import hidden in a function still counts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# top-level import name -> folder that holds it
PACKAGES: dict[str, Path] = {
    "cli": REPO_ROOT / "cli",
    "pipelines": REPO_ROOT / "pipelines",
    "steps": REPO_ROOT / "steps",
    "components": REPO_ROOT / "components",
    "deployment": REPO_ROOT / "deployment",
    "har_runtime": REPO_ROOT / "har_runtime",
}

# package -> the packages it must not import
FORBIDDEN: dict[str, set[str]] = {
    "components": {"pipelines", "steps", "deployment", "cli"},
    "steps": {"pipelines", "cli", "deployment"},
    "pipelines": {"cli", "deployment"},
    "har_runtime": {"cli", "pipelines", "steps", "components", "deployment"},
}

# (importer package prefix, imported package) -> why it cannot be fixed now. Keep it short.
ALLOWED_LAYER_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    """Dotted import name of a source file in one of PACKAGES."""
    for top, root in sorted(PACKAGES.items(), key=lambda kv: -len(kv[1].parts)):
        if root in path.parents or path.parent == root:
            rel = path.relative_to(root).with_suffix("")
            parts = [top, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise ValueError(f"{path} is in none of {sorted(PACKAGES)}")


def source_files() -> Iterator[Path]:
    for root in PACKAGES.values():
        if root.is_dir():
            yield from sorted(root.rglob("*.py"))


def resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that ``name`` names or lies inside (None: not ours)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import in the file, at any depth, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                # `from pkg import mod` imports the submodule when there is one
                yield f"{prefix}.{alias.name}", node.lineno


def build_graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    files = {module_name(p): p for p in source_files()}
    modules = set(files)
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, line in imported_names(tree, mod, path.name == "__init__.py"):
            target = resolve(name, modules)
            if target is not None and target != mod and not mod.startswith(target + "."):
                # a module importing its own parent package is Python's normal loading order
                graph[mod].setdefault(target, line)
    return graph, files


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [cycle_path(graph, comp) for comp in sccs]


def cycle_path(graph: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, that module repeated at the end."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {comp}")


GRAPH, FILES = build_graph()


def describe(graph: dict[str, dict[str, int]], files: dict[str, Path], cycle: list[str]) -> str:
    hops = [
        f"{a} -> {b} ({files[a].relative_to(REPO_ROOT)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)
    ]
    return "  " + "\n  ".join(hops)


def test_the_scan_sees_the_packages():
    """Guards the test itself: a scan that found nothing would pass everything."""
    assert {m.split(".")[0] for m in GRAPH} >= {"cli", "pipelines", "steps", "components", "deployment", "har_runtime"}
    assert "components.cli" not in GRAPH, "the CLI lives in cli/, not components/"
    assert GRAPH["pipelines.train_pipeline"], "pipelines.train_pipeline imports nothing of ours?"


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles between our modules:\n" + "\n".join(describe(GRAPH, FILES, c) for c in cycles)


def package_graph(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The graph between subsystems: ``components.<sub>`` (a subpackage or a top-level module),
    and each module of the other packages as it is (their modules are the units there)."""

    def unit(mod: str) -> str:
        parts = mod.split(".")
        return ".".join(parts[:2]) if parts[0] == "components" else mod

    out: dict[str, dict[str, int]] = {}
    for mod, targets in graph.items():
        edges = out.setdefault(unit(mod), {})
        for target in targets:
            if unit(target) != unit(mod):
                edges.setdefault(unit(target), 0)
    for targets in list(out.values()):
        for t in targets:
            out.setdefault(t, {})
    return out


def test_no_cycles_between_library_subpackages():
    """``components.evaluation`` may use ``components.training``, or the reverse, not both."""
    packages = package_graph(GRAPH)
    cycles = find_cycles(packages)
    details = []
    for cycle in cycles:
        hops = []
        for a, b in zip(cycle, cycle[1:], strict=False):
            pairs = [
                f"{m} -> {t} ({FILES[m].relative_to(REPO_ROOT)}:{line})"
                for m, ts in sorted(GRAPH.items())
                for t, line in sorted(ts.items())
                if (m == a or m.startswith(a + ".")) and (t == b or t.startswith(b + "."))
            ]
            more = f" (+{len(pairs) - 3} more)" if len(pairs) > 3 else ""
            hops.append(f"{a} -> {b}: " + "; ".join(pairs[:3]) + more)
        details.append("  " + "\n  ".join(hops))
    assert not cycles, "import cycles between library subpackages:\n" + "\n".join(details)


def layer_violations(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    out = []
    for mod, targets in sorted(graph.items()):
        top = mod.split(".")[0]
        for target, line in sorted(targets.items()):
            target_top = target.split(".")[0]
            if target_top not in FORBIDDEN.get(top, set()):
                continue
            if any(mod == pre or mod.startswith(pre + ".") for pre, t in ALLOWED_LAYER_EDGES if t == target_top):
                continue
            out.append((mod, target, line))
    return out


def test_layers_point_down():
    bad = layer_violations(GRAPH)
    assert not bad, "imports against the layering (cli -> pipelines -> steps -> components):\n" + "\n".join(
        f"  {m} imports {t} ({FILES[m].relative_to(REPO_ROOT)}:{line})" for m, t, line in bad
    )


def test_allow_list_is_still_needed():
    """An allow-listed edge that no longer exists must be removed from the list."""
    for (pre, target_top), _why in ALLOWED_LAYER_EDGES.items():
        used = any(
            (mod == pre or mod.startswith(pre + ".")) and any(t.split(".")[0] == target_top for t in targets)
            for mod, targets in GRAPH.items()
        )
        assert used, f"allow-listed {pre} -> {target_top} is no longer imported: drop it from ALLOWED_LAYER_EDGES"


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}, [["a", "b", "c", "a"]]),
        ({"a": {"b": 1}, "b": {}}, []),
        ({"a": {"b": 1}, "b": {"a": 1}, "c": {"a": 1}}, [["a", "b", "a"]]),
    ],
)
def test_cycle_finder(edges, expected):
    assert find_cycles(edges) == expected


def test_detectors_catch_a_planted_violation():
    graph = {"components.x": {"pipelines.p": 3}, "pipelines.p": {"components.x": 1}}
    assert layer_violations(graph) == [("components.x", "pipelines.p", 3)]
    assert find_cycles(graph) == [["components.x", "pipelines.p", "components.x"]]
    subpackages = {"components.a.x": {"components.b.y": 1}, "components.b.z": {"components.a.w": 2}}
    subpackages.update({m: {} for m in ("components.b.y", "components.a.w")})
    assert find_cycles(subpackages) == []  # no module-level cycle ...
    assert find_cycles(package_graph(subpackages)) == [["components.a", "components.b", "components.a"]]  # ... but a/b


def test_the_cli_loads_no_heavy_stack_at_import():
    """``har --help`` and ``har edge ...`` import cli.main: no torch, ZenML, MLflow, pandas or
    pipelines there (the commands that need them import them inside the function)."""
    heavy = ["torch", "zenml", "mlflow", "dvc", "pandas", "matplotlib", "bentoml", "pipelines", "steps"]
    code = f"import sys, cli.main; print(sorted(set({heavy!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing cli.main loads {out.stdout.strip()}"
