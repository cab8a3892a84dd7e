"""No import cycle between the project's modules (issue 25), counting every import the
source names: at the top, inside functions, and under ``TYPE_CHECKING`` (a cycle there is
still two modules that cannot be read apart; training.pipeline and training.tracking were
one until TrainConfig moved to training.train_config)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "serving", "training", "lifecycle", "monitoring", "bench", "dags")


def modules() -> dict[str, Path]:
    """Dotted name -> file, for the top-level modules and every package module."""
    found = {}
    files = [*ROOT.glob("*.py"), *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
    for path in files:
        if "migrations" in path.parts:  # Alembic loads these by path, never by import
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package importing its own submodules,
    or a submodule its package, is not an edge: Python resolves those in order)."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    edges = {}
    for name, path in mods.items():
        named = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named.add(node.module)
                named.update(f"{node.module}.{alias.name}" for alias in node.names)
        edges[name] = {m for m in map(owner, named)
                       if m and m != name and not name.startswith(m + ".")
                       and not m.startswith(name + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_cycle_even_under_type_checking():
    edges = {"training.pipeline": {"training.tracking"}, "training.tracking":
             {"training.pipeline"}, "training.train_config": set()}
    assert cycles(edges) == [["training.pipeline", "training.tracking"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_tracking_stage_reads_the_config_without_the_pipeline():
    edges = graph(modules())
    assert "training.train_config" in edges["training.tracking"]
    assert "training.pipeline" not in edges["training.tracking"]


def test_no_import_cycle_in_the_project():
    assert cycles(graph(modules())) == []
