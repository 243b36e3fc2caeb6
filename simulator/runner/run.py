"""Running an experiment: seeds x grid cells, run folders, combined tables, summary with CIs.

A run is a list of cells (see :mod:`.executors`) executed serially, on a local process pool
or on a Dask cluster — each cell is deterministic and results are combined in cell order, so
every executor gives the same bytes. Each finished cell is written to the run folder at once,
so an interrupted run is resumed (``resume=True``) without redoing finished cells; a cell that
raises or whose worker dies is recorded (``errors/``, ``cells.csv``) and the others go on.

Everything that can be refused is refused before the folder is made: parameters of every
cell, seeds, the output folder, the data format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .catalog import get, grid_cells
from .executors import Cell, Executor, serial_executor, write_frames, write_table
from .params import ExperimentError

if typing.TYPE_CHECKING:
    import pandas as pd

FORMATS = ("parquet", "csv")


@dataclass
class RunResult:
    folder: Path
    frames: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    summary_ci: pd.DataFrame
    failed: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def plan(name: str, *, overrides: dict | None = None, grid: dict | None = None, seeds: int = 1,
         seed: int = 1, quick: bool = False) -> tuple[Any, list[Cell]]:
    """The base ``Params`` and every cell of a run, all checked (nothing is written)."""
    mod = get(name)
    if isinstance(seeds, bool) or not (isinstance(seeds, int) and 1 <= seeds <= 100_000):
        raise ExperimentError(f"--seeds must be an integer in 1..100000, got {seeds!r}")
    if isinstance(seed, bool) or not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ExperimentError(f"--seed must be an integer in 0..2**63-1, got {seed!r}")
    overrides, grid = dict(overrides or {}), dict(grid or {})
    base = grid_cells(mod, overrides, {}, quick)[0][1]
    cells = [Cell(name, dataclasses.asdict(params), tuple(combo.items()), s)
             for combo, params in grid_cells(mod, overrides, grid, quick)
             for s in range(seed, seed + seeds)]
    return base, cells


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
    fmt: str = "parquet",
    announce: Callable[[Path], None] | None = None,
) -> RunResult:
    """Run ``name`` over ``seeds`` seeds (``seed``, ``seed+1``, … as root seeds) and every
    grid cell; write data, summary with 95% confidence intervals, figures and metadata."""
    import pandas as pd

    if fmt not in FORMATS:
        raise ExperimentError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    mod = get(name)
    grid = dict(grid or {})
    base, cells = plan(name, overrides=overrides, grid=grid, seeds=seeds, seed=seed, quick=quick)
    payload = {"experiment": name, "params": dataclasses.asdict(base), "grid": grid,
               "seeds": [seed, seeds], "quick": quick, "format": fmt}
    folder, created = new_run_dir(name, payload, out, resume)
    try:
        meta = _start_metadata(folder, payload, command, resume, seed, seeds)
    except OSError as e:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise ExperimentError(_os_advice(folder, e)) from None
    if announce is not None:
        announce(folder)
    started = time.time()

    cells_dir = folder / "cells"
    todo = [c for c in cells if not (cells_dir / c.key / "_done").exists()]
    status: dict[str, str] = {c.key: "done (resumed)" for c in cells if c not in todo}
    bar = None
    if progress and len(todo) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=name, unit="cell")

    def done(cell: Cell, state: str, value: Any) -> None:
        if state == "ok":
            if value is not None:  # frames came back (Dask): write them here
                write_frames(cell, value, folder, fmt)
            status[cell.key] = "ok"
        else:
            (folder / "errors").mkdir(exist_ok=True)
            (folder / "errors" / f"{cell.key}.txt").write_text(value)
            status[cell.key] = "error"
        if bar is not None:
            bar.update(1)

    (executor or serial_executor)(todo, done, folder, fmt)
    if bar is not None:
        bar.close()
    pd.DataFrame({"cell": [c.key for c in cells], "status": [status[c.key] for c in cells]}).to_csv(
        folder / "cells.csv", index=False, lineterminator="\n")

    frames = _combine(cells, cells_dir, fmt)
    (folder / "data").mkdir(exist_ok=True)
    sizes = {}
    for fname, df in frames.items():
        write_table(df, folder / "data" / f"{fname}.{fmt}")
        sizes[fname] = len(df)
    summary = frames.get("summary", pd.DataFrame())
    ci = summarize(summary, list(grid))
    write_table(ci, folder / "summary_ci.csv")
    failed = [c.key for c in cells if status[c.key] == "error"]
    if not failed:  # every table is now in data/: the per-cell copies would store it twice
        for c in cells:
            for f in (cells_dir / c.key).glob(f"*.{fmt}"):
                f.unlink()
    figures: list[Path] = []
    if plots and not failed and frames:
        figures = _draw(mod, frames, base, grid, ci, folder, parallel=getattr(executor, "local_workers", 1) > 1)
    meta["wall_time_s"] = round(time.time() - started, 3)
    meta["failed_cells"] = failed
    meta["complete"] = not failed
    meta["tables"] = {k: {"rows": v, "file": f"data/{k}.{fmt}"} for k, v in sizes.items()}
    meta["figures"] = [p.name for p in figures]
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    return RunResult(folder, frames, summary, ci, failed, figures)


# -- run folders ----------------------------------------------------------------------------------
def new_run_dir(experiment: str, payload: dict, out: str | Path | None, resume: bool) -> tuple[Path, bool]:
    """A fresh folder (never silently reusing one), or with ``resume`` an earlier run's folder
    holding the same parameters. Returns (folder, created-by-us)."""
    if out is None:
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
    else:
        p = Path(out)
    if p.exists() and not p.is_dir():
        raise ExperimentError(f"--out {p} is a file, not a folder; choose another --out")
    existed = p.exists()
    if existed and not resume and any(p.iterdir()):
        raise ExperimentError(f"output folder {p} exists and is not empty; choose another --out, "
                              f"or pass --resume to finish an interrupted run there")
    if resume:
        meta = p / "metadata.json"
        if not meta.exists():
            raise ExperimentError(f"--resume: {p} holds no earlier run (no metadata.json)")
        old = _read_json(meta, "--resume")
        keys = ("experiment", "params", "grid", "seeds")
        if {k: old.get(k) for k in keys} != json.loads(json.dumps({k: payload[k] for k in keys}, default=str)):
            raise ExperimentError(f"--resume: {p} was run with other parameters; refusing to mix them")
        if old.get("format", "csv") != payload["format"]:
            raise ExperimentError(f"--resume: {p} was written as {old.get('format', 'csv')}; "
                                  f"pass --format {old.get('format', 'csv')}")
        if old.get("complete"):
            raise ExperimentError(f"--resume: the run in {p} is already complete; nothing to resume")
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        if not existed:
            shutil.rmtree(p, ignore_errors=True)
        raise ExperimentError(_os_advice(p, e)) from None
    return p, not existed


def _os_advice(p: Path, e: OSError) -> str:
    import errno

    fix = {errno.ENOSPC: "free some disk space or choose --out on another disk",
           errno.EACCES: "choose an --out you may write to",
           errno.EROFS: "the disk is read-only: choose --out on a writable disk",
           errno.ENOTDIR: "a part of the path is a file: choose another --out"}.get(e.errno, "choose another --out")
    return f"cannot write the run folder {p}: {e.strerror or e} ({fix})"


def _read_json(path: Path, flag: str) -> dict:
    """A run folder's JSON object (metadata.json), or one ExperimentError naming ``flag`` and the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ExperimentError(f"{flag}: {path}: cannot read it as JSON ({e})") from None
    except RecursionError:  # json recurses once per nesting level
        raise ExperimentError(f"{flag}: {path}: cannot read it as JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{flag}: {path} is not a splitbrain run's metadata (not a JSON object)")
    return data


def _start_metadata(folder: Path, payload: dict, command, resume: bool, seed: int, seeds: int) -> dict:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    cmd = list(command) if command is not None else None
    if resume:
        meta = _read_json(folder / "metadata.json", "--resume")
        meta.setdefault("resumes", []).append({"started_utc": now, "command": cmd, "git": _git()})
    else:
        meta = {**json.loads(json.dumps(payload, default=str)), "seed_list": list(range(seed, seed + seeds)),
                "versions": _versions(), "git": _git(), "command": cmd, "started_utc": now}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    return meta


def _versions() -> dict:
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for mod in ("simpy", "numpy", "pandas", "matplotlib", "scipy", "pyarrow"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except Exception:
            out[mod] = None
    try:
        out["splitbrain"] = version("splitbrain")
    except PackageNotFoundError:
        out["splitbrain"] = None
    return out


def _git() -> dict:
    """The project's own revision and dirty flag — only if the code runs from a splitbrain
    checkout (installed inside some other repository, that repository's HEAD is not ours)."""
    root = Path(__file__).resolve().parents[2]
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        if not top or Path(top).resolve() != root or not (root / "simulator" / "core.py").exists():
            return {"revision": None, "dirty": None, "note": "not running from a splitbrain git checkout"}
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"revision": rev or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None, "note": "git not available"}


# -- combining and summarizing ----------------------------------------------------------------------
def _combine(cells: list[Cell], cells_dir: Path, fmt: str) -> dict[str, pd.DataFrame]:
    """Per-cell frames (already carrying seed and grid columns), read back in cell order."""
    import pandas as pd

    parts: dict[str, list[pd.DataFrame]] = {}
    for c in cells:
        d = cells_dir / c.key
        if not (d / "_done").exists():
            continue
        for f in sorted(d.glob(f"*.{fmt}")):
            parts.setdefault(f.stem, []).append(pd.read_parquet(f) if fmt == "parquet" else pd.read_csv(f))
    return {k: pd.concat(v, ignore_index=True) if len(v) > 1 else v[0] for k, v in parts.items()}


def summarize(summary: pd.DataFrame, grid_keys: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, standard deviation, n and a 95% Student-t confidence interval of every numeric
    column across seeds, per group of the non-numeric columns (and the grid values)."""
    import pandas as pd
    from scipy.special import stdtrit  # Student t quantiles; scipy.stats takes 3x longer to import

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
            half = float(stdtrit(n - 1, 0.975) * sd / math.sqrt(n)) if n > 1 else math.nan
            rows.append({**dict(zip(keys, gk)), "metric": col, "mean": mean, "std": sd, "n": n,
                         "ci95_low": mean - half, "ci95_high": mean + half})
    return pd.DataFrame(rows)


def _draw(mod, frames, base, grid, ci, folder: Path, parallel: bool) -> list[Path]:
    """Draw and save the figures. With local cores to spare, a forked child saves the PNGs while
    this process saves the SVGs (the same code, so the same bytes; no data is pickled)."""
    # Each format is drawn on a freshly built figure: a layout pass for one format nudges the
    # coordinates of the next, so the bytes would depend on the order (and on the executor).
    if not parallel or not hasattr(os, "fork"):
        _figures(mod, frames, base, grid, ci, folder, ("svg",))
        return _figures(mod, frames, base, grid, ci, folder, ("png",))
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(
        target=_figures, args=(mod, frames, base, grid, ci, folder, ("png",)), daemon=True)
    child.start()
    _figures(mod, frames, base, grid, ci, folder, ("svg",))
    child.join()
    if child.exitcode != 0:  # the child failed: draw the PNGs here, so a figure is never missing
        _figures(mod, frames, base, grid, ci, folder, ("png",))
    return sorted((folder / "figures").glob("*.png"))


def _figures(mod, frames, base, grid, ci, folder: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from simulator import plots

    figs: dict[str, Any] = {}
    if not grid:
        figs.update(mod.plot(frames, base))
    else:
        figs.update(plots.sweep_figures(ci, list(grid)))
    paths = []
    (folder / "figures").mkdir(exist_ok=True)
    # Fixed hash salt and no date: identical runs give byte-identical SVGs.
    with matplotlib.rc_context({"svg.hashsalt": "splitbrain"}):
        for fname, fig in figs.items():
            for ext in formats:
                p = folder / "figures" / f"{fname}.{ext}"
                fig.savefig(p, dpi=120, metadata={"Date": None} if ext == "svg" else {"Software": None})
                if ext == "png":
                    paths.append(p)
            plt.close(fig)
    return paths


def quick_mode() -> bool:
    """True when notebooks and scripts should use QUICK parameters (SPLITBRAIN_QUICK=1)."""
    return os.environ.get("SPLITBRAIN_QUICK", "") not in ("", "0", "false")
