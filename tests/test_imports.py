"""Imports point one way: no module of the package imports, even for type checking, a module
that imports it back, and the emulator imports nothing from the client side."""

from __future__ import annotations

import ast
import itertools
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import legnext_async

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: module -> {imported module: line of the first such import}
Graph = dict[str, dict[str, int]]

PACKAGE = "legnext_async"
EMULATOR = "legnext_async.emulator"


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its own)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(root: Path, package: str) -> Graph:
    """Which modules of the package each one imports: at run time, inside functions, or
    under ``if TYPE_CHECKING:`` alike (a cycle of type names is a cycle of layers)."""
    modules = modules_of(root, package)
    graph: Graph = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(part for part in (base, node.module or "") if part)
                # ``from pkg import name`` imports the submodule pkg.name if there is one.
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                found = _innermost_module(target, modules)
                if found is not None and found != name:
                    edges[found] = min(edges.get(found, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def _innermost_module(dotted: str, modules: Mapping[str, Path]) -> str | None:
    """The module ``dotted`` names, or the package holding it (``import a.b`` of an attribute)."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def cycle_edges(graph: Graph) -> set[tuple[str, str]]:
    """Every edge that lies on a cycle: its target reaches its source again."""
    return {
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if _path(graph, target, source) is not None
    }


def _path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A shortest import path from ``start`` to ``goal`` (breadth first), or ``None``."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            if module == goal:
                path = [module]
                while (step := previous[path[-1]]) is not None:
                    path.append(step)
                return path[::-1]
            for target in sorted(graph.get(module, {})):
                if target not in previous:
                    previous[target] = module
                    following.append(target)
        frontier = following
    return None


def describe_cycles(graph: Graph, edges: Iterable[tuple[str, str]]) -> str:
    """One line per edge: the shortest cycle through it, each step with its line number."""
    lines = []
    for source, target in sorted(edges):
        rest = _path(graph, target, source)
        assert rest is not None
        cycle = [source, *rest]
        steps = [f"{module}:{graph[module][after]}" for module, after in itertools.pairwise(cycle)]
        lines.append(" -> ".join(steps) + f" -> {source}")
    return "\n".join(lines)


GRAPH = import_graph(Path(legnext_async.__file__).parent, PACKAGE)


def test_the_package_has_no_import_cycle() -> None:
    """No module imports, even for type checking, a module that imports it back."""
    cycles = cycle_edges(GRAPH)
    assert not cycles, "import cycles (module:line of each import):\n" + describe_cycles(
        GRAPH, cycles
    )


def test_the_emulator_imports_nothing_from_the_client() -> None:
    """The emulator stands alone: its modules import only one another (and other packages)."""
    leaks = {
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        if module == EMULATOR or module.startswith(EMULATOR + ".")
        for target, line in targets.items()
        if not (target == EMULATOR or target.startswith(EMULATOR + "."))
    }
    assert not leaks, sorted(leaks)


def test_the_graph_covers_every_module_of_the_package() -> None:
    """Modules in sub-packages are read too, not only the top level."""
    assert {PACKAGE, EMULATOR, f"{EMULATOR}._app", f"{PACKAGE}._client"} <= GRAPH.keys()


# --- the checker itself, on a package written for it -------------------------------------


def _write_package(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "pkg"


def test_a_cycle_through_type_checking_imports_is_found(tmp_path: Path) -> None:
    """A lower module naming a higher one only for type checking still closes a cycle."""
    root = _write_package(
        tmp_path,
        {
            "__init__.py": "from ._high import High\n",
            "_high.py": "from ._low import Low\n",
            "_low.py": (
                """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from ._high import High
                """
            ),
        },
    )
    graph = import_graph(root, "pkg")
    assert cycle_edges(graph) == {("pkg._high", "pkg._low"), ("pkg._low", "pkg._high")}
    assert describe_cycles(graph, [("pkg._low", "pkg._high")]) == (
        "pkg._low:3 -> pkg._high:1 -> pkg._low"
    )


def test_relative_absolute_and_submodule_imports_are_all_edges(tmp_path: Path) -> None:
    """``from . import sub``, ``from ..x import y``, ``import pkg.a`` and imports made inside
    functions all count, each resolved to the module it loads."""
    root = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "import pkg.sub.b\n",
            "sub/__init__.py": "from . import b\n",
            "sub/b.py": "def f():\n    from ..a import thing\n",
            "sub/c.py": "from pkg.sub import b\nimport os\n",
        },
    )
    assert import_graph(root, "pkg") == {
        "pkg": {},
        "pkg.a": {"pkg.sub.b": 1},
        "pkg.sub": {"pkg.sub.b": 1},
        "pkg.sub.b": {"pkg.a": 2},
        "pkg.sub.c": {"pkg.sub.b": 1},
    }
