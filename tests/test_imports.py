"""No import circles in src/miad: every import (top-level or inside a function) is read from the source with ast,
and the module graph must have no cycle. A circle hidden by function-local imports still ties the modules
together; it shows here with the modules and the arrows that close it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package __init__)."""
    found = {}
    for path in sorted((SRC / "miad").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _owner(name: str, known: dict) -> str | None:
    """The module (or package) of the source tree that `name` names, or None outside it."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, package: bool, known: dict) -> set[str]:
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {_owner(a.name, known) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                anchor = module if package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import sub` imports the sub-module; `from mod import name` the module
            targets |= {_owner(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, known)
                        for a in node.names}
    return {t for t in targets if t and t != module}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(m, path, package, known) for m, (path, package) in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_hidden_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_function_local_and_relative_imports_are_read(tmp_path):
    known = {"miad.x": None, "miad.y": None, "miad": None}
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from miad import y\n    from . import y as z\n")
    assert imports_of("miad.x", source, False, known) == {"miad.y"}


def test_src_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 100 and "miad.bench.runner" in graph["miad.bench.worker"]  # the graph is read
    found = cycles(graph)
    detail = "; ".join(" <-> ".join(c) + " (" + ", ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) + ")"
                       for c in found)
    assert not found, f"import circles: {detail}"
