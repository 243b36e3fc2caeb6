"""Running experiments: discovery, typed parameters, seeds x grid cells, executors, run folders.

An experiment is a module of the ``experiments`` package keeping the contract written in
``experiments/__init__.py``. A *cell* is one (parameter overrides, seed) pair; a run is a list
of cells executed serially, on a local process pool, or on a Dask cluster — each cell is
deterministic, and results are combined in cell order, so every executor gives the same
tables. Each finished cell is written to the run folder at once, so an interrupted run can be
resumed without redoing finished cells; a cell that raises is recorded (``errors/``,
``cells.csv``) and the others go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import math
import os
import pkgutil
import platform
import subprocess
import time
import traceback
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

if typing.TYPE_CHECKING:
    import pandas as pd

PACKAGE = "experiments"
_extra_modules: dict[str, ModuleType] = {}


class ExperimentError(ValueError):
    """Bad experiment name, parameter, value or run folder (message lists what is allowed)."""


# -- discovery ------------------------------------------------------------------------------------
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


def _module_by_name(name: str) -> ModuleType:
    # Worker processes re-import by module path, so registered test modules work too.
    if name in _extra_modules:
        return _extra_modules[name]
    return importlib.import_module(f"{PACKAGE}.{name}")


def question(mod: ModuleType) -> str:
    """The experiment's question: the first line of its docstring."""
    return (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else "(no docstring)"


# -- parameters -----------------------------------------------------------------------------------
def param_types(mod: ModuleType) -> dict[str, Any]:
    hints = typing.get_type_hints(mod.Params)
    return {f.name: hints.get(f.name, str) for f in dataclasses.fields(mod.Params)}


def describe_params(mod: ModuleType, base: Any | None = None) -> str:
    base = base if base is not None else mod.Params()
    rows = [f"  {n} ({_type_name(t)}) = {getattr(base, n)!r}" for n, t in param_types(mod).items()]
    return "\n".join(rows)


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def coerce(name: str, raw: str, t: Any) -> Any:
    """Turn the text ``raw`` into a value of type ``t`` (int, float, bool, str, tuples …)."""
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    try:
        if origin is typing.Union or (origin is not None and type(None) in args and len(args) == 2):
            inner = [a for a in args if a is not type(None)]
            if raw.lower() in ("none", "null", ""):
                return None
            return coerce(name, raw, inner[0])
        if origin is typing.Literal:
            if raw not in [str(a) for a in args]:
                raise ValueError
            return next(a for a in args if str(a) == raw)
        if origin in (tuple, list):
            inner_t = args[0] if args else str
            items = [coerce(name, x.strip(), inner_t) for x in raw.split(":") if x.strip()]
            return tuple(items) if origin is tuple else items
        if t is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            return int(raw)
        if t is float:
            v = float(raw)
            return v
        if t is str:
            return raw
    except ValueError:
        raise ExperimentError(f"parameter {name}: cannot read {raw!r} as {_type_name(t)}") from None
    raise ExperimentError(f"parameter {name}: type {_type_name(t)} cannot be set from the command line")


def _split_kv(item: str, what: str) -> tuple[str, str]:
    if "=" not in item:
        raise ExperimentError(f"{what} must look like key=value, got {item!r}")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


def parse_overrides(mod: ModuleType, items: Iterable[str]) -> dict[str, Any]:
    """``["rate=100", "loss=0.01"]`` -> typed overrides, checked against ``Params``."""
    types = param_types(mod)
    out: dict[str, Any] = {}
    for item in items:
        k, v = _split_kv(item, "--param")
        if k not in types:
            raise ExperimentError(f"unknown parameter {k!r}; allowed:\n{describe_params(mod)}")
        out[k] = coerce(k, v, types[k])
    return out


def parse_grid(mod: ModuleType, items: Iterable[str]) -> dict[str, list[Any]]:
    """``["rate=100,200", "loss=0,0.01"]`` -> {name: [values]} (the sweep's axes)."""
    types = param_types(mod)
    grid: dict[str, list[Any]] = {}
    for item in items:
        k, v = _split_kv(item, "--grid")
        if k not in types:
            raise ExperimentError(f"unknown parameter {k!r}; allowed:\n{describe_params(mod)}")
        vals = [coerce(k, x.strip(), types[k]) for x in v.split(",") if x.strip()]
        if not vals:
            raise ExperimentError(f"--grid {k}: give at least one value")
        grid[k] = vals
    return grid


def make_params(mod: ModuleType, overrides: dict[str, Any], quick: bool = False) -> Any:
    """``QUICK`` or the defaults, with overrides applied; validation errors are reported."""
    base = mod.QUICK if quick else mod.Params()
    try:
        return dataclasses.replace(base, **overrides)
    except (ValueError, TypeError) as e:
        raise ExperimentError(f"invalid parameters for this experiment: {e}") from None


# -- cells and executors ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    experiment: str
    params: dict
    grid: tuple  # ((name, value), ...): the swept values of this cell
    seed: int

    @property
    def key(self) -> str:
        parts = [f"{k}={_slug(v)}" for k, v in self.grid] + [f"seed={self.seed}"]
        return "_".join(parts)


def _slug(v: Any) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in str(v))


def run_cell(cell: Cell) -> tuple[str, Any]:
    """Run one cell; never raises: returns ("ok", frames) or ("error", traceback text)."""
    try:
        mod = _module_by_name(cell.experiment)
        frames = mod.run(mod.Params(**cell.params), cell.seed)
        if "summary" not in frames:
            raise ExperimentError(f"{cell.experiment}.run returned no 'summary' frame")
        return "ok", frames
    except Exception:  # a crash in one cell is data, not the end of the sweep
        return "error", traceback.format_exc()


Executor = Callable[[list[Cell], Callable[[Cell, str, Any], None]], None]


def serial_executor(cells: list[Cell], done: Callable[[Cell, str, Any], None]) -> None:
    for c in cells:
        done(c, *run_cell(c))


def process_executor(workers: int | None = None) -> Executor:
    def execute(cells: list[Cell], done) -> None:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if len(cells) == 1 or (workers or os.cpu_count() or 1) == 1:
            serial_executor(cells, done)
            return
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(run_cell, c): c for c in cells}
            for f in as_completed(futs):
                done(futs[f], *f.result())

    return execute


def dask_executor(address: str) -> Executor:
    def execute(cells: list[Cell], done) -> None:
        from distributed import Client, as_completed

        with Client(address) as client:
            futs = {client.submit(run_cell, c, pure=False): c for c in cells}
            for f in as_completed(list(futs)):
                done(futs[f], *f.result())

    return execute


# -- run folders ----------------------------------------------------------------------------------
def new_run_dir(experiment: str, payload: dict, out: str | Path | None, resume: bool) -> Path:
    """A fresh folder (never silently reusing one); with ``resume`` an existing one."""
    if out is not None:
        p = Path(out)
        if p.exists() and any(p.iterdir()) and not resume:
            raise ExperimentError(f"output folder {p} exists and is not empty; choose another --out, "
                                  f"or pass --resume to finish an interrupted run there")
        if resume and not (p / "metadata.json").exists():
            raise ExperimentError(f"--resume: {p} holds no earlier run (no metadata.json)")
        p.mkdir(parents=True, exist_ok=True)
        return p
    if resume:
        raise ExperimentError("--resume needs --out DIR naming the run to resume")
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path("runs") / experiment / f"{stamp}-{digest}"
    p = base
    for i in itertools.count(2):
        if not p.exists():
            break
        p = base.with_name(f"{base.name}-{i}")
    p.mkdir(parents=True)
    return p


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("simpy", "numpy", "pandas", "matplotlib", "scipy"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except Exception:
            out[mod] = None
    try:
        from importlib.metadata import version

        out["splitbrain"] = version("splitbrain")
    except Exception:
        out["splitbrain"] = None
    return out


def _git_revision() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None
    except Exception:
        return None


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    # CSV with pandas' shortest round-trip float repr: byte-identical for identical data.
    df.to_csv(path, index=False, lineterminator="\n")


# -- the run --------------------------------------------------------------------------------------
@dataclass
class RunResult:
    folder: Path
    frames: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    summary_ci: pd.DataFrame
    failed: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def run_experiment(
    name: str,
    *,
    overrides: dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | None = None,
    seeds: int = 1,
    seed: int = 1,
    quick: bool = False,
    out: str | Path | None = None,
    resume: bool = False,
    executor: Executor | None = None,
    progress: bool = True,
    plots: bool = True,
    command: Sequence[str] | None = None,
) -> RunResult:
    """Run ``name`` over ``seeds`` seeds (``seed``, ``seed+1``, … as root seeds) and every
    grid cell; write data, summary with 95% confidence intervals, figures and metadata."""
    import pandas as pd

    mod = get(name)
    if not (isinstance(seeds, int) and seeds >= 1):
        raise ExperimentError(f"--seeds must be an integer >= 1, got {seeds!r}")
    if not (isinstance(seed, int) and seed >= 0):
        raise ExperimentError(f"--seed must be an integer >= 0, got {seed!r}")
    overrides = dict(overrides or {})
    grid = dict(grid or {})
    clash = set(grid) & set(overrides)
    if clash:
        raise ExperimentError(f"parameter(s) {sorted(clash)} given both as --param and --grid")
    base = make_params(mod, overrides, quick)
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] if grid else [{}]
    cells = []
    for combo in combos:
        params = make_params(mod, {**overrides, **combo}, quick)  # validates every cell up front
        for s in range(seed, seed + seeds):
            cells.append(Cell(name, dataclasses.asdict(params), tuple(combo.items()), s))
    payload = {"experiment": name, "params": dataclasses.asdict(base), "grid": grid,
               "seeds": [seed, seeds], "quick": quick}
    folder = new_run_dir(name, payload, out, resume)
    if resume:
        old = json.loads((folder / "metadata.json").read_text())
        if {k: old.get(k) for k in ("experiment", "params", "grid", "seeds")} != json.loads(
                json.dumps({k: payload[k] for k in ("experiment", "params", "grid", "seeds")}, default=str)):
            raise ExperimentError(f"--resume: {folder} was run with other parameters; refusing to mix them")
    started = time.time()
    meta = {**json.loads(json.dumps(payload, default=str)), "seed_list": list(range(seed, seed + seeds)),
            "versions": _versions(), "git_revision": _git_revision(),
            "command": list(command) if command is not None else None,
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds")}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))

    cells_dir = folder / "cells"
    todo = [c for c in cells if not (cells_dir / c.key / "_done").exists()]
    status: dict[str, str] = {c.key: "done (resumed)" for c in cells if c not in todo}
    bar = None
    if progress and len(todo) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=name, unit="cell")

    def done(cell: Cell, state: str, value: Any) -> None:
        d = cells_dir / cell.key
        d.mkdir(parents=True, exist_ok=True)
        if state == "ok":
            for fname, df in value.items():
                _write_frame(df, d / f"{fname}.csv")
            (d / "_done").write_text("")
            status[cell.key] = "ok"
        else:
            (folder / "errors").mkdir(exist_ok=True)
            (folder / "errors" / f"{cell.key}.txt").write_text(value)
            status[cell.key] = "error"
        if bar is not None:
            bar.update(1)

    (executor or serial_executor)(todo, done)
    if bar is not None:
        bar.close()
    pd.DataFrame({"cell": [c.key for c in cells], "status": [status[c.key] for c in cells]}).to_csv(
        folder / "cells.csv", index=False, lineterminator="\n")

    frames = _combine(cells, cells_dir)
    (folder / "data").mkdir(exist_ok=True)
    for fname, df in frames.items():
        if fname != "requests" or len(df) < 2_000_000:
            _write_frame(df, folder / "data" / f"{fname}.csv")
    summary = frames.get("summary", pd.DataFrame())
    ci = summarize(summary, list(grid))
    _write_frame(ci, folder / "summary_ci.csv")
    failed = [c.key for c in cells if status[c.key] == "error"]
    figures: list[Path] = []
    if plots and not failed and frames:
        figures = _figures(mod, frames, base, grid, ci, folder)
    meta["wall_time_s"] = round(time.time() - started, 3)
    meta["failed_cells"] = failed
    meta["figures"] = [p.name for p in figures]
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    return RunResult(folder, frames, summary, ci, failed, figures)


def _combine(cells: list[Cell], cells_dir: Path) -> dict[str, pd.DataFrame]:
    """Per-cell frames, read back from disk in cell order, with seed and grid columns."""
    import pandas as pd

    parts: dict[str, list[pd.DataFrame]] = {}
    for c in cells:
        d = cells_dir / c.key
        if not (d / "_done").exists():
            continue
        for f in sorted(d.glob("*.csv")):
            df = pd.read_csv(f)
            for k, v in reversed(c.grid):
                df.insert(0, k, v)
            df.insert(0, "seed", c.seed)
            parts.setdefault(f.stem, []).append(df)
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}


def summarize(summary: pd.DataFrame, grid_keys: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, standard deviation, n and a 95% Student-t confidence interval of every numeric
    column across seeds, per group of the non-numeric columns (and the grid values)."""
    import pandas as pd
    from scipy import stats

    if summary.empty:
        return pd.DataFrame()
    numeric = [c for c in summary.columns
               if c not in ("seed", *grid_keys) and pd.api.types.is_numeric_dtype(summary[c])
               and not pd.api.types.is_bool_dtype(summary[c])]
    keys = [c for c in summary.columns if c not in numeric and c != "seed"]
    rows = []
    groups = summary.groupby(keys, sort=False, dropna=False) if keys else [((), summary)]
    for gk, g in groups:
        gk = gk if isinstance(gk, tuple) else (gk,)
        for col in numeric:
            x = g[col].dropna().to_numpy(dtype=float)
            n = len(x)
            mean = float(x.mean()) if n else math.nan
            sd = float(x.std(ddof=1)) if n > 1 else math.nan
            half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
            rows.append({**dict(zip(keys, gk)), "metric": col, "mean": mean, "std": sd, "n": n,
                         "ci95_low": mean - half, "ci95_high": mean + half})
    return pd.DataFrame(rows)


def _figures(mod, frames, base, grid, ci, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots

    figs: dict[str, Any] = {}
    if not grid:
        figs.update(mod.plot(frames, base))
    else:
        figs.update(plots.sweep_figures(ci, list(grid)))
    paths = []
    (folder / "figures").mkdir(exist_ok=True)
    for fname, fig in figs.items():
        for ext in ("png", "svg"):
            p = folder / "figures" / f"{fname}.{ext}"
            fig.savefig(p, dpi=120, metadata={"Date": None} if ext == "svg" else {})
            if ext == "png":
                paths.append(p)
        plt.close(fig)
    return paths


def quick_mode() -> bool:
    """True when notebooks and scripts should use QUICK parameters (SPLITBRAIN_QUICK=1)."""
    return os.environ.get("SPLITBRAIN_QUICK", "") not in ("", "0", "false")

