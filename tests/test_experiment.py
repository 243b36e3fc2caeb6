"""The experiment runner: determinism across executors, resume, crash isolation, CI tables."""

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import runner as ex

# A tiny experiment defined here, registered for the tests that need a controllable one.
toy = types.ModuleType("toy_experiment")
toy.__doc__ = "Does the toy experiment work?\n\nSetup: none. Lesson: none."
toy.calls = []


@dataclass(frozen=True)
class ToyParams:
    mean: float = 1.0
    crash_seed: int = -1

    def __post_init__(self):
        if self.mean <= 0:
            raise ValueError(f"mean must be > 0, got {self.mean}")


def toy_run(p, seed):
    toy.calls.append(seed)
    if seed == p.crash_seed:
        raise RuntimeError("boom in cell")
    x = np.random.Generator(np.random.PCG64(seed)).exponential(p.mean, 50)
    return {"summary": pd.DataFrame({"arm": ["a"], "mean": [x.mean()]})}


toy.Params, toy.QUICK, toy.run = ToyParams, ToyParams(mean=2.0), toy_run
toy.plot = lambda results, p: {}
sys.modules["toy_experiment"] = toy
ex.register("toy", toy)


def read_all(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_same_seed_identical_data_files(tmp_path):
    a = ex.run_experiment("kernel_demo", quick=True, out=tmp_path / "a", progress=False, plots=False)
    b = ex.run_experiment("kernel_demo", quick=True, out=tmp_path / "b", progress=False, plots=False)
    fa, fb = read_all(a.folder), read_all(b.folder)
    assert fa.keys() == fb.keys() and "data/requests.parquet" in fa
    assert fa == fb


def test_executors_give_the_same_table(tmp_path):
    kw = dict(quick=True, seeds=2, grid={"loss": [0.0, 0.05]}, progress=False)
    serial = ex.run_experiment("kernel_demo", out=tmp_path / "s", executor=ex.serial_executor, **kw)
    pool = ex.run_experiment("kernel_demo", out=tmp_path / "p", executor=ex.process_executor(2), **kw)
    pd.testing.assert_frame_equal(serial.summary_ci, pool.summary_ci)
    assert read_all(serial.folder) == read_all(pool.folder)
    # Figures too: the pool draws PNG and SVG in two processes, serially they are drawn in turn.
    figs = sorted(p.name for p in (serial.folder / "figures").iterdir())
    assert figs == ["sweep.png", "sweep.svg"]
    for f in figs:
        assert (serial.folder / "figures" / f).read_bytes() == (pool.folder / "figures" / f).read_bytes(), f


def test_dask_executor_on_a_local_cluster(tmp_path):
    from distributed import LocalCluster

    kw = dict(quick=True, seeds=2, progress=False, plots=False)
    serial = ex.run_experiment("kernel_demo", out=tmp_path / "s", executor=ex.serial_executor, **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        executor = ex.dask_executor(cluster.scheduler_address)
        dask = ex.run_experiment("kernel_demo", out=tmp_path / "d", executor=executor, **kw)
    pd.testing.assert_frame_equal(serial.summary_ci, dask.summary_ci)
    assert read_all(serial.folder) == read_all(dask.folder)


def test_crash_in_one_cell_is_recorded_and_resume_skips_finished_cells(tmp_path):
    toy.calls.clear()
    out = tmp_path / "run"
    res = ex.run_experiment("toy", overrides={"crash_seed": 3}, seeds=4, out=out, progress=False)
    assert res.failed == ["seed=3"]
    assert "boom in cell" in (out / "errors" / "seed=3.txt").read_text()
    status = pd.read_csv(out / "cells.csv")
    assert status.set_index("cell")["status"].to_dict() == {
        "seed=1": "ok", "seed=2": "ok", "seed=3": "error", "seed=4": "ok"}
    assert sorted(res.summary["seed"]) == [1, 2, 4]
    # Resuming redoes only the failed cell (still failing: the parameters say so).
    toy.calls.clear()
    ex.run_experiment("toy", overrides={"crash_seed": 3}, seeds=4, out=out, resume=True, progress=False)
    assert toy.calls == [3]


def test_refuses_to_overwrite_or_mix_runs(tmp_path):
    out = tmp_path / "run"
    ex.run_experiment("toy", seeds=2, out=out, progress=False)
    with pytest.raises(ex.ExperimentError, match="exists and is not empty"):
        ex.run_experiment("toy", seeds=2, out=out, progress=False)
    with pytest.raises(ex.ExperimentError, match="other parameters"):
        ex.run_experiment("toy", seeds=3, out=out, resume=True, progress=False)


def test_confidence_interval_is_student_t():
    from scipy import stats

    s = pd.DataFrame({"seed": [1, 2, 3, 4], "arm": ["a"] * 4, "x": [1.0, 2.0, 3.0, 4.0]})
    ci = ex.summarize(s).iloc[0]
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert ci["mean"] == 2.5 and ci["n"] == 4
    assert ci["ci95_high"] - ci["mean"] == pytest.approx(half)


def test_typed_parameters():
    mod = ex.get("kernel_demo")
    assert ex.parse_overrides(mod, ["rate=50", "workers=2"]) == {"rate": 50.0, "workers": 2}
    with pytest.raises(ex.ExperimentError, match=r"unknown parameter 'rat'; allowed: .*rate"):
        ex.parse_overrides(mod, ["rat=50"])
    with pytest.raises(ex.ExperimentError, match="cannot read 'abc' as float"):
        ex.parse_overrides(mod, ["rate=abc"])
    with pytest.raises(ex.ExperimentError, match="cannot read '2.5' as int"):
        ex.parse_overrides(mod, ["workers=2.5"])
    with pytest.raises(ex.ExperimentError, match=r"parameter rate=-1.0 is not allowed: need 0 < rate <= 1000000"):
        ex.make_params(mod, {"rate": -1.0})
    assert ex.parse_grid(mod, ["loss=0,0.01"]) == {"loss": [0.0, 0.01]}
