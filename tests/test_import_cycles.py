"""No import cycle in the project (issue 25): imports go one way, from the pages down to
``serving``. Module-level imports only (an import inside a function runs late, by design),
``if TYPE_CHECKING:`` ones included (two modules that name each other's types are one
design), read with ``ast``, so nothing is imported."""

import ast
from pathlib import Path

from helpers import ROOT

PACKAGES = ("app", "serving", "training", "lifecycle", "monitoring")
# training/pipeline.py <-> training/tracking.py: being removed on the `names` branch (issue
# 25); delete this exception when that lands.
KNOWN = {frozenset({"training.pipeline", "training.tracking"})}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if all(part.isidentifier() for part in parts):
                found[".".join(parts)] = path
    return found


def _top_level_imports(tree: ast.Module, package: str) -> list[str]:
    """Modules imported when the module runs (``package``: its own, for relative imports)."""
    names: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return names


def graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = _top_level_imports(ast.parse(path.read_text()), package)
        edges[name] = {m for m in imported if m in modules and m != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return sorted(found)


def test_the_reader_sees_the_imports_it_should():
    edges = graph()
    # Written out: what these modules import at module level today.
    assert {"app.platform.failures", "app.store", "app.store.images"} <= edges["app.intake.intake"]
    assert "app.platform.factory" not in edges["app"]  # imported on use (PEP 562), not at start
    assert {"app.accounts.auth", "app.clinical.predict"} <= edges["app.platform.factory"]


def test_imports_in_functions_are_skipped_and_relative_and_typing_ones_read():
    src = """
from typing import TYPE_CHECKING
from . import sibling
from .. import uncle
if TYPE_CHECKING:
    from x.types import T
def late():
    import x.late
"""
    assert _top_level_imports(ast.parse(src), "pkg.sub") == [
        "typing", "typing.TYPE_CHECKING", "pkg.sub", "pkg.sub.sibling", "pkg", "pkg.uncle",
        "x.types", "x.types.T"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_project():
    found = [c for c in cycles(graph()) if frozenset(c) not in KNOWN]
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
