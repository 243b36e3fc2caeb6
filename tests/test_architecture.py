"""Layering and hygiene, checked by walking the imports (ast)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_simulator_never_imports_models_or_experiments():
    for py in (ROOT / "simulator").rglob("*.py"):
        for mod in imports(py):
            assert not mod.startswith(("models", "experiments")), f"{py}: imports {mod}"


def test_no_global_random_anywhere():
    for top in ("simulator", "models", "experiments", "benchmarks"):
        for py in (ROOT / top).rglob("*.py"):
            for mod in imports(py):
                assert mod != "random", f"{py}: imports the global random module"


def test_kernel_hot_modules_do_not_import_pandas_or_matplotlib_at_import_time():
    for name in ("core", "node", "network", "distributions", "clock", "faults", "metrics", "trace"):
        tree = ast.parse((ROOT / "simulator" / f"{name}.py").read_text())
        for node in tree.body:  # module level only; lazy imports inside functions are fine
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.startswith(("pandas", "matplotlib")) for m in mods), f"{name}: {mods}"


def test_experiments_never_import_each_other():
    names = {p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_")}
    for py in (ROOT / "experiments").glob("*.py"):
        for mod in imports(py):
            parts = mod.split(".")
            assert not (parts[0] == "experiments" and len(parts) > 1 and parts[1] in names), f"{py}: imports {mod}"


def test_models_never_import_plots_or_the_runner():
    for py in (ROOT / "models").rglob("*.py"):
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            for m in mods:
                assert not m.startswith(("simulator.plots", "simulator.runner", "matplotlib", "experiments")), \
                    f"{py}: imports {m}"
                assert not (m == "simulator" and "plots" in names), f"{py}: imports simulator.plots"
