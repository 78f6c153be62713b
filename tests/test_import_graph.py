"""Issue 32: the import graph of ``segstudio`` has no cycles.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:`` (a type-hint import is
still a dependency a reader must follow). ``from pkg import name`` where ``pkg/__init__.py`` re-exports ``name``
from a submodule is an edge to that submodule (the package's ``__init__`` is a table of contents, not a room);
an ``import a.b.c`` is an edge to ``a.b.c`` only (not to the parents Python also runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = "segstudio"


def module_files(pkg_dir: Path, root: str = ROOT) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module under ``pkg_dir`` (a package ``a/b/__init__.py`` is ``a.b``)."""
    out = {}
    for p in sorted(pkg_dir.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        rel = p.relative_to(pkg_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _absolute(node: ast.ImportFrom, mod: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _reexports(mods: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per package: ``{name: submodule it is imported from}`` for the names its ``__init__`` imports."""
    out: dict[str, dict[str, str]] = {}
    for mod, path in mods.items():
        if path.name != "__init__.py":
            continue
        table = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                src = _absolute(node, mod, True)
                for a in node.names:
                    table[a.asname or a.name] = f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src
        out[mod] = table
    return out


def import_graph(pkg_dir: Path, root: str = ROOT) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (see the module docstring for what counts)."""
    mods = module_files(pkg_dir, root)
    reexp = _reexports(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}

    def resolve(target: str) -> str | None:
        while target and target not in mods:
            target = target.rpartition(".")[0]
        return target or None

    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == root]
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(node, mod, is_pkg)
                if src.split(".")[0] != root:
                    continue
                for a in node.names:
                    if f"{src}.{a.name}" in mods:
                        targets.append(f"{src}.{a.name}")
                    elif src in reexp and a.name in reexp[src] and not is_pkg:
                        # follow the package's table of contents to the room that defines the name
                        t = reexp[src][a.name]
                        hops = 0
                        while t in reexp and a.name in reexp[t] and reexp[t][a.name] != t and hops < 8:
                            t, hops = reexp[t][a.name], hops + 1
                        targets.append(t)
                    else:
                        targets.append(src)
            for t in targets:
                r = resolve(t)
                if r and r != mod:
                    graph[mod].add(r)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted; sorted by first name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # iterative enough for a package of ~150 modules
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_segstudio_import_graph_has_no_cycles():
    graph = import_graph(REPO / ROOT)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walker sees the package
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in segstudio:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_catches_function_level_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "segstudio"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import B\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from segstudio.sub import B\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\nclass B: ...\n")
    (pkg / "c.py").write_text("import segstudio.a\n")
    (pkg / "d.py").write_text("from segstudio.sub import B\n")
    graph = import_graph(pkg)
    assert "segstudio.sub.b" in graph["segstudio.a"]  # through the package's re-export
    assert find_cycles(graph) == [["segstudio.a", "segstudio.c", "segstudio.sub.b"]]
    (pkg / "sub" / "b.py").write_text("class B: ...\n")
    assert find_cycles(import_graph(pkg)) == []
