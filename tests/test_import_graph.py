"""The import graph of ``simulator/``, built with ``ast``: no cycles, and imports point down.

An edge ``a -> b`` means module ``a`` imports module ``b`` when ``a`` itself is imported:
``import x.y``, ``from x.y import z`` and relative imports (``from . import z`` is an edge to
the submodule ``z`` when there is one, else to the package). Imports under ``if TYPE_CHECKING:``
(type hints only) and imports inside functions (run later, on call) are not module-level
edges. Python's implicit import of a module's parent packages is not an edge either: a
package's ``__init__`` importing its own submodules is the normal shape, not a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ("core", "node", "network", "clock", "faults", "distributions", "metrics", "trace", "streams")

Graph = dict[str, set[str]]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], *, functions: bool, in_func: bool = False
             ) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when ``body`` runs (with ``functions``: also those in
    function bodies); never those under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if functions:
                yield from _imports(node.body, functions=functions, in_func=True)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _imports(node.body, functions=functions, in_func=in_func)
            yield from _imports(node.orelse, functions=functions, in_func=in_func)
        else:  # class bodies, try/except, with, for, while, match: all run at import time
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(node, name, None)
                if isinstance(block, list):
                    yield from _imports(block, functions=functions, in_func=in_func)


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package``."""
    out = {}
    for py in sorted((root / package).rglob("*.py")):
        parts = list(py.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = py
    return out


def targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]) -> list[str]:
    """The dotted names ``node`` imports, as seen from module ``importer``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = (importer if is_package else importer.rpartition(".")[0]).split(".")
        base = base[: len(base) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    return [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]


def import_graph(root: Path, package: str = "simulator", *, functions: bool = False,
                 external: bool = False) -> Graph:
    """Module -> the modules it imports at module level (with ``functions``: also on call).
    Only modules of ``package`` are nodes, unless ``external`` keeps every imported name."""
    mods = modules(root, package)
    known = set(mods)
    graph: Graph = {}
    for name, py in mods.items():
        out = graph.setdefault(name, set())
        for node in _imports(ast.parse(py.read_text()).body, functions=functions):
            for t in targets(node, name, py.name == "__init__.py", known):
                if t != name and (external or t in known):
                    out.add(t)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None if it has none.
    Iterative depth-first search (white/grey/black), so deep graphs cannot overflow the stack."""
    colour: dict[str, int] = {}  # absent: unseen; 1: on the current path; 2: done
    for start in sorted(graph):
        if start in colour:
            continue
        path = [start]
        stack = [iter(sorted(graph.get(start, ())))]
        colour[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in colour:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


# -- the cycle finder and the graph builder, on synthetic inputs -------------------------------
@pytest.mark.parametrize(("graph", "cycle"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"a"}}, ["a", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": {"b"}, "d": set()}, ["b", "c", "b"]),
    ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, None),  # a diamond is no cycle
    ({"a": {"b"}, "b": set()}, None),
    ({}, None),
])
def test_find_cycle_on_tiny_graphs(graph: Graph, cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_find_cycle_handles_a_long_chain_without_recursion() -> None:
    n = 5000
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(n)}
    assert find_cycle({**chain, f"m{n}": set()}) is None
    found = find_cycle({**chain, f"m{n}": {"m0"}})
    assert found is not None and len(found) == n + 2 and found[0] == found[-1]


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_synthetic_import_cycle_is_found(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "from .a import A\n",
        "pkg/a.py": "from .sub import b\nA = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from pkg import c\n",       # absolute, names a submodule
        "pkg/c.py": "try:\n    from .a import A\nexcept ImportError:\n    pass\n",  # back to a
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]


def test_type_checking_and_function_imports_are_not_module_level_edges(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .top import Top\n"
                       "def f():\n    from .top import Top\n    return Top\n"),
        "pkg/top.py": "from . import low\nclass Top:\n    import pkg.other\n",
        "pkg/other.py": "",
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.low"] == set() and graph["pkg.top"] == {"pkg.low", "pkg.other"}
    assert find_cycle(graph) is None
    assert find_cycle(import_graph(tmp_path, "pkg", functions=True)) == ["pkg.low", "pkg.top", "pkg.low"]


# -- the real package --------------------------------------------------------------------------
@cache
def _simulator(functions: bool = False, external: bool = False) -> Graph:
    return import_graph(ROOT, functions=functions, external=external)


def test_simulator_has_no_module_level_import_cycle() -> None:
    graph = _simulator()
    assert len(graph) > 50 and "simulator.core" in graph["simulator"]  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_kernel_has_no_cycle_even_counting_imports_inside_functions() -> None:
    # A lazy import is a cycle put off until a call; the kernel has none. (Type-hint-only
    # imports under TYPE_CHECKING remain allowed: they never run.)
    full = _simulator(functions=True)
    kernel = {f"simulator.{k}" for k in KERNEL}
    sub = {m: full[m] & kernel for m in kernel}
    cycle = find_cycle(sub)
    assert cycle is None, "kernel import cycle: " + " -> ".join(cycle or [])


def test_lower_kernel_modules_never_import_the_simulation_that_assembles_them() -> None:
    full = _simulator(functions=True)
    for k in KERNEL:
        if k != "core":
            assert "simulator.core" not in full[f"simulator.{k}"], f"simulator.{k} imports simulator.core"
            assert "simulator" not in full[f"simulator.{k}"], f"simulator.{k} imports the simulator package"


def test_kernel_never_imports_pandas_or_matplotlib_at_module_level() -> None:
    graph = _simulator(external=True)
    for k in KERNEL:
        heavy = sorted(m for m in graph[f"simulator.{k}"] if m.split(".")[0] in ("pandas", "matplotlib"))
        assert not heavy, f"simulator.{k} imports {heavy} at module level"


def test_simulator_never_imports_models_at_module_level() -> None:
    graph = _simulator(external=True)
    assert len(graph["simulator.core"]) > 3  # external names are kept (numpy, simpy, ...)
    bad = sorted((m, t) for m, ts in graph.items() for t in ts if t.split(".")[0] == "models")
    assert not bad, f"simulator imports models: {bad}"
