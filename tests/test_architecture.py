"""The engine's import graph holds the layout the code claims: no cycles, no Streamlit, a small root.

Why: a cycle means no module of it can be understood (or tested, or moved)
without the others, and the tree of ``memory/`` is meant to be the
architecture diagram. The graph is read from the source with ``ast`` (no
module is imported), counting imports made under ``TYPE_CHECKING`` and inside
functions too: a type-only import still ties two modules' designs together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "memory"
MAX_ROOT_MODULES = 10


def module_name(path: Path) -> str:
    """``memory/stores/fact_store.py`` -> ``memory.stores.fact_store``; a package is its ``__init__``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def engine_modules(root: Path = ENGINE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(root.rglob("*.py"))}


def imported_names(path: Path, name: str, modules: dict[str, Path] | None = None) -> set[str]:
    """Every module name an import statement of ``path`` names, relative imports made absolute.

    ``from . import x`` names the module ``x``, not its package, when ``x`` is one of ``modules``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            submodules = {f"{origin}.{alias.name}" for alias in node.names}
            found.update(submodules)
            if modules is None or not submodules <= modules.keys():
                found.add(origin)
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the engine modules it imports (``from .x import y`` names ``x``, or ``x.y`` when that is a module)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {target for target in imported_names(path, name, modules) if target in modules}
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_engine_has_no_import_cycle() -> None:
    found = cycles(import_graph(engine_modules()))
    assert not found, "import cycles in memory/ (TYPE_CHECKING imports included):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_the_engine_never_imports_streamlit() -> None:
    offenders = sorted(
        name
        for name, path in engine_modules().items()
        if any(t == "streamlit" or t.startswith("streamlit.") for t in imported_names(path, name))
    )
    assert not offenders, f"memory/ must not import streamlit: {offenders}"


def test_the_engine_root_is_small() -> None:
    root_modules = sorted(p.name for p in ENGINE.glob("*.py"))
    assert len(root_modules) <= MAX_ROOT_MODULES, f"{len(root_modules)} modules at memory/'s root: {root_modules}"


def test_no_engine_module_is_named_like_the_standard_library() -> None:
    import sys

    clashes = sorted(p.name for p in ENGINE.glob("*.py") if p.stem in sys.stdlib_module_names)
    assert not clashes, f"these shadow standard-library modules: {clashes}"


def test_the_cycle_finder_finds_a_type_only_cycle(tmp_path: Path) -> None:
    """The check itself can fail: a cycle closed only under TYPE_CHECKING is found."""
    package = tmp_path / "memory"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from memory.a import A\nclass B: ...\n"
    )
    modules = {f"memory.{p.stem}" if p.stem != "__init__" else "memory": p for p in package.glob("*.py")}
    assert cycles(import_graph(modules)) == [["memory.a", "memory.b"]]


@pytest.mark.parametrize("name", ["memory.turn", "memory.lab"])
def test_the_graph_sees_relative_imports(name: str) -> None:
    graph = import_graph(engine_modules())
    assert graph.get(name), f"{name} should import something of the engine"
