"""The experiment registry, and turning user input (``--param``, ``--grid``, a TOML config) into
checked ``Params`` — every cell validated before any folder is made or simulation started."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from .params import ExperimentError, coerce, describe, field_types

PACKAGE = "experiments"
_extra_modules: dict[str, ModuleType] = {}


def _is_experiment(mod: ModuleType) -> bool:
    return all(hasattr(mod, a) for a in ("Params", "QUICK", "run", "plot"))


def registry() -> dict[str, ModuleType]:
    """Every experiment module by name (sorted), plus any registered with :func:`register`."""
    pkg = importlib.import_module(PACKAGE)
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{PACKAGE}.{info.name}")
        if _is_experiment(mod):
            found[info.name] = mod
    found.update(_extra_modules)
    return dict(sorted(found.items()))


def register(name: str, module: ModuleType) -> None:
    """Make an experiment module available under ``name`` (tests, plugins)."""
    if not _is_experiment(module):
        raise ExperimentError(f"module {module.__name__} lacks Params, QUICK, run or plot")
    _extra_modules[name] = module


def get(name: str) -> ModuleType:
    reg = registry()
    if name not in reg:
        raise ExperimentError(f"unknown experiment {name!r}; available: {', '.join(reg) or '(none)'}")
    return reg[name]


def module_by_name(name: str) -> ModuleType:
    # Worker processes re-import by module path, so registered test modules work too.
    if name in _extra_modules:
        return _extra_modules[name]
    return importlib.import_module(f"{PACKAGE}.{name}")


def question(mod: ModuleType) -> str:
    """The experiment's question: the first line of its docstring."""
    return (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else "(no docstring)"


def param_types(mod: ModuleType) -> dict[str, Any]:
    return field_types(mod.Params)


def describe_params(mod: ModuleType, base: Any | None = None) -> str:
    """A table of the parameters: name, type, default, unit, allowed range, help."""
    rows = describe(mod.Params, base if base is not None else mod.Params())
    cols = ("name", "type", "default", "unit", "range")
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  " + "  ".join(c.ljust(width[c]) for c in cols) + "  help"]
    for r in rows:
        lines.append("  " + "  ".join(r[c].ljust(width[c]) for c in cols) + f"  {r['help']}".rstrip())
    return "\n".join(lines)


def _split_kv(item: str, what: str) -> tuple[str, str]:
    if "=" not in item:
        raise ExperimentError(f"{what} must look like key=value, got {item!r}")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


def _known(mod: ModuleType, k: str) -> Any:
    types = param_types(mod)
    if k not in types:
        raise ExperimentError(f"unknown parameter {k!r}; allowed: {', '.join(types)} "
                              f"(see: splitbrain show {mod.__name__.rsplit('.', 1)[-1]})")
    return types[k]


def parse_overrides(mod: ModuleType, items: Iterable[str]) -> dict[str, Any]:
    """``["rate=100", "loss=0.01"]`` -> typed overrides (a parameter given twice is refused)."""
    out: dict[str, Any] = {}
    for item in items:
        k, v = _split_kv(item, "--param")
        if k in out:
            raise ExperimentError(f"--param {k} given twice; give each parameter once")
        out[k] = coerce(k, v, _known(mod, k))
    return out


def parse_grid(mod: ModuleType, items: Iterable[str]) -> dict[str, list[Any]]:
    """``["rate=100,200", "loss=0,0.01"]`` -> {name: [values]} (the sweep's axes). A repeated
    axis and duplicate values (``loss=0.01,1e-2``: fake replication) are refused."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        k, v = _split_kv(item, "--grid")
        t = _known(mod, k)
        if k in grid:
            raise ExperimentError(f"--grid {k} given twice; list all its values in one flag: "
                                  f"--grid {k}=a,b,c")
        grid[k] = check_axis(k, [coerce(k, x.strip(), t) for x in v.split(",") if x.strip()])
    return grid


def check_axis(k: str, vals: list[Any]) -> list[Any]:
    if not vals:
        raise ExperimentError(f"--grid {k}: give at least one value")
    seen: list[Any] = []
    for x in vals:
        if any(_same(x, y) for y in seen):
            raise ExperimentError(f"--grid {k}: value {x!r} appears twice; a repeated value fakes "
                                  f"replication (use --seeds N to replicate)")
        seen.append(x)
    return vals


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def read_config(mod: ModuleType, path: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A TOML file of parameters and grids::

        [params]
        loss = 0.02
        ranges_ms = [[150, 151], [150, 300]]
        [grid]
        rate = [100, 200, 400]
    """
    import tomllib

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ExperimentError(f"--config: no such file: {path}") from None
    except IsADirectoryError:
        raise ExperimentError(f"--config: {path} is a directory, not a TOML file") from None
    except OSError as e:
        raise ExperimentError(f"--config {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"--config {path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ExperimentError(f"--config {path}: not a text file ({e.reason} at byte {e.start})") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or inline tables
        raise ExperimentError(f"--config {path}: TOML nested too deeply to read") from None
    extra = set(doc) - {"params", "grid"}
    if extra:
        raise ExperimentError(f"--config {path}: unknown table(s) {sorted(extra)}; allowed: [params], [grid]")
    for table in ("params", "grid"):
        if not isinstance(doc.get(table, {}), dict):
            raise ExperimentError(f"--config {path}: {table} must be a table ([{table}]), "
                                  f"got {type(doc[table]).__name__}")
    overrides = {k: coerce(k, v, _known(mod, k)) for k, v in doc.get("params", {}).items()}
    grid = {}
    for k, vals in doc.get("grid", {}).items():
        t = _known(mod, k)
        if not isinstance(vals, list):
            raise ExperimentError(f"--config {path}: grid.{k} must be a list of values")
        grid[k] = check_axis(k, [coerce(k, v, t) for v in vals])
    return overrides, grid


def read_faults(path: str) -> tuple[str, Any]:
    """``--faults FILE`` (run, sweep, hunt): the file's text and its ``FaultSchedule``, checked the
    schedule's own way (kinds, fields, types, times), or one ``--faults FILE: ...`` error."""
    from simulator.faults import FaultSchedule

    try:
        return FaultSchedule.read(path)
    except OSError as e:
        raise ExperimentError(f"--faults {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ExperimentError(f"--faults {path}: {str(e).splitlines()[0]}") from None


def make_params(mod: ModuleType, overrides: dict[str, Any], quick: bool = False) -> Any:
    """``QUICK`` or the defaults, with overrides applied; a refused value is an ExperimentError."""
    base = mod.QUICK if quick else mod.Params()
    try:
        return dataclasses.replace(base, **overrides)
    except (ValueError, TypeError) as e:
        raise ExperimentError(str(e) if str(e).startswith("parameter ") else f"invalid parameters: {e}") from None


def grid_cells(mod: ModuleType, overrides: dict[str, Any], grid: dict[str, list[Any]],
               quick: bool) -> list[tuple[dict[str, Any], Any]]:
    """Every grid combination with its checked ``Params`` (raises on the first bad cell)."""
    clash = set(grid) & set(overrides)
    if clash:
        raise ExperimentError(f"parameter(s) {sorted(clash)} given both as a fixed value and as a grid axis")
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] if grid else [{}]
    out = []
    for combo in combos:
        try:
            out.append((combo, make_params(mod, {**overrides, **combo}, quick)))
        except ExperimentError as e:
            where = ", ".join(f"{k}={v!r}" for k, v in combo.items())
            raise ExperimentError(f"{e}" + (f" (in the grid cell {where})" if where else "")) from None
    return out
