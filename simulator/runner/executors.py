"""Cells and the executors that run them: serial, a local process pool, a Dask cluster.

A cell is one (parameters, seed) pair. Each executor calls ``done(cell, state, value)`` once
per cell, where ``state`` is ``"ok"`` or ``"error"``. Local workers write their cell's tables
themselves (the writing is spread over the cores instead of queueing in the parent, and big
frames are never pickled back); on Dask, where workers may not share our disk, frames come
back and the parent writes them — the same writer either way, so every executor gives
byte-identical files.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import module_by_name
from .params import ExperimentError


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


def grid_text(v: Any) -> Any:
    """A grid value as a table cell: scalars as they are, tuples in the CLI's ``a:b`` form."""
    if isinstance(v, (tuple, list)):
        return ":".join("-".join(map(str, x)) if isinstance(x, (tuple, list)) else str(x) for x in v)
    return v


def _slug(v: Any) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in str(grid_text(v)))


def write_frames(cell: Cell, frames: dict, folder: Path, fmt: str) -> None:
    """Write a cell's frames (with its seed and grid columns) and mark the cell done."""
    from simulator.history import History

    d = folder / "cells" / cell.key
    d.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        if isinstance(df, History):  # a recorded history: JSON Lines, for `splitbrain check`
            (folder / "histories").mkdir(exist_ok=True)
            df.save_jsonl(folder / "histories" / f"{cell.key}_{name}.jsonl")
            continue
        df = df.copy(deep=False)
        for k, v in reversed(cell.grid):
            df.insert(0, k, grid_text(v))
        df.insert(0, "seed", cell.seed)
        write_table(df, d / f"{name}.{fmt}")
    (d / "_done").write_text("")


def write_table(df, path: Path) -> None:
    if path.suffix == ".parquet":
        # No index, fixed row-group size: the bytes depend on the data (and pyarrow's version) only.
        df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
    else:  # pandas' shortest round-trip float repr: byte-identical for identical data
        df.to_csv(path, index=False, lineterminator="\n")


def run_cell(cell: Cell, folder: str | None = None, fmt: str = "parquet") -> tuple[str, Any]:
    """Run one cell; never raises. With ``folder`` the frames are written there and ``("ok",
    None)`` returned; without, ``("ok", frames)``. A crash returns ``("error", traceback)``."""
    try:
        mod = module_by_name(cell.experiment)
        frames = mod.run(mod.Params(**cell.params), cell.seed)
        if "summary" not in frames:
            raise ExperimentError(f"{cell.experiment}.run returned no 'summary' frame")
        if folder is None:
            return "ok", frames
        write_frames(cell, frames, Path(folder), fmt)
        return "ok", None
    except Exception:  # a crash in one cell is data, not the end of the sweep
        return "error", traceback.format_exc()


Done = Callable[[Cell, str, Any], None]
Executor = Callable[..., None]  # (cells, done, folder, fmt) -> None


def serial_executor(cells: list[Cell], done: Done, folder: Path | None = None, fmt: str = "parquet") -> None:
    for c in cells:
        done(c, *run_cell(c, str(folder) if folder else None, fmt))


def _watch_parent() -> None:
    """Worker initializer: exit when the parent dies, so a killed run leaves no orphans."""
    parent = os.getppid()

    def watch() -> None:
        import time

        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


DIED = ("the worker process running this cell died (killed by the OS - out of memory? - or crashed "
        "in native code); it was run again alone in a fresh worker and died again")


def process_executor(workers: int | None = None) -> Executor:
    """Cells on a local process pool. A worker that dies (OOM kill, segfault) breaks the pool:
    the cells it may have been running are retried each alone in a fresh one-worker pool, and
    a cell that kills that one too is recorded as failed with the cause; the rest go on."""

    def execute(cells: list[Cell], done: Done, folder: Path | None = None, fmt: str = "parquet") -> None:
        n = workers or os.cpu_count() or 1
        if len(cells) == 1 or n == 1:
            serial_executor(cells, done, folder, fmt)
            return
        suspects = _pool_run(cells, n, done, folder, fmt)
        for c in suspects:
            if _pool_run([c], 1, done, folder, fmt):
                done(c, "error", DIED)

    execute.local_workers = workers or os.cpu_count() or 1  # the run may use them for figures too
    return execute


def _pool_run(cells: list[Cell], n: int, done: Done, folder: Path | None, fmt: str) -> list[Cell]:
    """Run ``cells`` on an ``n``-worker pool; return the cells lost to a broken pool."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    lost: list[Cell] = []
    with ProcessPoolExecutor(max_workers=n, initializer=_watch_parent) as ex:
        futs = {ex.submit(run_cell, c, str(folder) if folder else None, fmt): c for c in cells}
        for f in as_completed(futs):
            try:
                state, value = f.result()
            except BrokenProcessPool:
                lost.append(futs[f])
                continue
            done(futs[f], state, value)
    return sorted(lost, key=cells.index)


def dask_executor(address: str) -> Executor:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ExperimentError('--dask needs the Dask extra: pip install "splitbrain[dask]" '
                              '(or pip install "dask[distributed]")') from None

    def execute(cells: list[Cell], done: Done, folder: Path | None = None, fmt: str = "parquet") -> None:
        from distributed import Client, as_completed

        try:
            client = Client(address, timeout="10s")
        except OSError as e:
            raise ExperimentError(f"--dask {address}: cannot reach the scheduler ({e}); start one with "
                                  f"'dask scheduler' and 'dask worker {address}'") from None
        with client:
            futs = {client.submit(run_cell, c, pure=False): c for c in cells}
            for f in as_completed(list(futs)):
                done(futs[f], *f.result())

    return execute
