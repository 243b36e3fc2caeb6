"""The front door: every bad input is refused with one line and exit code 2 before any folder
is made or any simulation starts; sweeps never lose work; outputs people can trust."""

from __future__ import annotations

import json
import os
import signal
import sys
import types

import numpy as np
import pandas as pd
import pytest

from simulator import runner as ex
from simulator.runner import param, parameters
from simulator.runner.cli import main

# -- a controllable experiment with a tuple parameter and a cell that kills its own worker ---------
tup = types.ModuleType("tuple_experiment")
tup.__doc__ = "Do tuple parameters sweep?\n\nSetup: none. Lesson: none."


@parameters
class TupleParams:
    sizes: tuple[int, ...] = param((1, 2), unit="items", ge=1, le=1000, help="sizes")
    ranges_ms: tuple[tuple[float, float], ...] = param(((1.0, 2.0),), unit="ms", ge=0, le=1e4, help="pairs")
    die_on_seed: int = param(-1, ge=-1, le=1000, help="the cell with this seed kills its worker process")
    raise_on_seed: int = param(-1, ge=-1, le=1000, help="the cell with this seed raises")


def tuple_run(p, seed):
    if seed == p.die_on_seed:
        os.kill(os.getpid(), signal.SIGKILL)  # like the OOM killer: no exception, no traceback
    if seed == p.raise_on_seed:
        raise RuntimeError("boom")
    x = np.random.Generator(np.random.PCG64(seed)).random(3)
    return {"summary": pd.DataFrame({"arm": ["a"], "total": [float(sum(p.sizes)) + x.mean()],
                                     "pairs": [len(p.ranges_ms)]})}


tup.Params, tup.QUICK, tup.run, tup.plot = TupleParams, TupleParams(), tuple_run, lambda r, p: {}
sys.modules["tuple_experiment"] = tup
ex.register("tuple_toy", tup)


BAD_RUNS = [  # (argv, words the one-line message must contain)
    (["run", "kernel_demo", "--param", "loss=1.5"], ["loss=1.5", "0 <= loss <= 1"]),
    (["run", "kernel_demo", "--param", "workers=0"], ["workers=0", "1 <= workers"]),
    (["run", "kernel_demo", "--param", "timeout_s=0"], ["timeout_s=0.0", "0 < timeout_s"]),
    (["run", "kernel_demo", "--param", "rate=nan"], ["rate=nan", "NaN is not allowed"]),
    (["run", "kernel_demo", "--param", "duration_s=inf"], ["duration_s=inf", "must be finite"]),
    (["run", "timeouts", "--param", "slow_s=-1"], ["slow_s=-1.0", "0 < slow_s"]),
    (["run", "cap_partition", "--param", "skew_s=nan"], ["skew_s=nan"]),
    (["run", "circuit_breaker", "--param", "rate=nan"], ["rate=nan"]),
    (["run", "load_balancing", "--param", "rate=-3"], ["rate=-3.0"]),
    (["run", "kernel_demo", "--param", "heal_at=1", "--quick"], ["partition_at < heal_at"]),
    (["run", "kernel_demo", "--param", "rate=fast"], ["cannot read 'fast' as float"]),
    (["run", "kernel_demo", "--param", "rat=1"], ["unknown parameter 'rat'", "allowed:"]),
    (["run", "kernel_demo", "--param", "rate=1", "--param", "rate=2"], ["given twice"]),
    (["run", "nope"], ["unknown experiment", "available:"]),
    (["run", "kernel_demo", "--seeds", "0"], ["--seeds"]),
    (["run", "kernel_demo", "--workers", "0"], ["--workers"]),
    (["sweep", "kernel_demo", "--grid", "loss=0.01,1e-2"], ["appears twice", "--seeds"]),
    (["sweep", "kernel_demo", "--grid", "loss=0", "--grid", "loss=0.1"], ["given twice"]),
    (["sweep", "kernel_demo", "--grid", "loss=0,2"], ["loss=2.0", "grid cell"]),
    (["sweep", "kernel_demo"], ["--grid"]),
    (["run", "tuple_toy", "--param", "sizes=1:x"], ["cannot read", "':' between items"]),
    (["run", "tuple_toy", "--param", "ranges_ms=1-2-3"], ["cannot read"]),
    (["run", "tuple_toy", "--param", "sizes=0:1"], ["sizes=(0, 1)", "every item needs 1 <= sizes"]),
    (["run", "kernel_demo", "--faults", "missing.json"], ["--faults"]),
    (["run", "circuit_breaker", "--faults", "missing.json"], ["takes no fault schedule", "kernel_demo"]),
]


@pytest.mark.parametrize("argv,words", BAD_RUNS, ids=[" ".join(a[1:]) for a, _ in BAD_RUNS])
def test_bad_input_is_one_line_exit_2_and_no_folder(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folder would appear under ./runs
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_argparse_errors_are_exit_2_too(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "kernel_demo", "--seeds", "many"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "splitbrain" in capsys.readouterr().out


def test_os_errors_are_one_line_and_leave_no_folder(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["run", "kernel_demo", "--quick", "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["run", "kernel_demo", "--quick", "--out", str(afile / "sub")]) == 2
    assert "cannot write the run folder" in capsys.readouterr().err
    assert afile.read_text() == "x"


def test_dask_missing_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    assert main(["run", "kernel_demo", "--quick", "--dask", "tcp://127.0.0.1:1", "--out", str(tmp_path / "d")]) == 2
    assert 'pip install "splitbrain[dask]"' in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_python_construction_checks_too():
    mod = ex.get("kernel_demo")
    with pytest.raises(ValueError, match="loss=1.5"):
        mod.Params(loss=1.5)
    with pytest.raises(ValueError, match="expected an integer"):
        mod.Params(workers=2.5)
    with pytest.raises(ValueError, match="slow_at \\+ slow_s <= duration_s"):  # inherited cross-field rule
        ex.get("bulkhead").Params(slow_at=30.0, slow_s=20.0)


SHIPPED = [n for n, m in ex.registry().items() if m.__name__.startswith("experiments.")]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_experiment_declares_unit_range_and_help(name):
    import dataclasses

    from simulator.runner.params import spec_of

    mod = ex.get(name)
    mod.QUICK.__class__(**dataclasses.asdict(mod.QUICK))  # QUICK itself passes the checks
    for f in dataclasses.fields(mod.Params):
        s = spec_of(f)
        assert s.help, f"{name}.{f.name}: no help"
        t = ex.param_types(mod)[f.name]
        while getattr(t, "__origin__", None) is tuple:  # bounds apply to the items
            t = t.__args__[0]
        if t in (int, float):
            bounded = s.choices is not None or (s.ge is not None or s.gt is not None)
            assert bounded, f"{name}.{f.name}: no lower bound declared"
    assert "range" in ex.describe_params(mod)


def test_sweeping_tuple_parameters_and_resume(tmp_path):
    out = tmp_path / "t"
    res = ex.run_experiment("tuple_toy", grid={"sizes": [(1, 2), (3,)], "ranges_ms": [((1.0, 2.0),),
                                                                                    ((1.0, 2.0), (3.0, 4.0))]},
                            seeds=2, out=out, progress=False)
    assert not res.failed and len(res.summary) == 8
    assert set(res.summary["sizes"]) == {"1:2", "3"}
    assert set(res.summary_ci["ranges_ms"]) == {"1.0-2.0", "1.0-2.0:3.0-4.0"}
    assert (res.summary_ci["n"] == 2).all()
    with pytest.raises(ex.ExperimentError, match="already complete"):
        ex.run_experiment("tuple_toy", grid={"sizes": [(1, 2), (3,)], "ranges_ms": [((1.0, 2.0),),
                                                                                  ((1.0, 2.0), (3.0, 4.0))]},
                          seeds=2, out=out, resume=True, progress=False)


@pytest.mark.parametrize("name", [n for n, m in ex.registry().items()
                                  if any(getattr(t, "__origin__", None) is tuple for t in ex.param_types(m).values())])
def test_tuple_parameters_of_real_experiments_plan_as_grid_axes(name):
    mod = ex.get(name)
    k, t = next((k, t) for k, t in ex.param_types(mod).items() if getattr(t, "__origin__", None) is tuple)
    v = getattr(mod.QUICK, k)
    text = ex.executors.grid_text(v)
    grid = ex.parse_grid(mod, [f"{k}={text}"])
    assert grid[k] == [v]
    _, cells = ex.plan(name, grid=grid, quick=True)
    assert len(cells) == 1 and cells[0].key


def test_a_worker_that_dies_fails_its_cell_only(tmp_path):
    res = ex.run_experiment("tuple_toy", overrides={"die_on_seed": 2}, seeds=4, out=tmp_path / "k",
                            executor=ex.process_executor(2), progress=False)
    assert res.failed == ["seed=2"]
    assert "worker process running this cell died" in (tmp_path / "k" / "errors" / "seed=2.txt").read_text()
    assert sorted(res.summary["seed"]) == [1, 3, 4]


def test_dry_run_lists_cells_and_makes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "kernel_demo", "--quick", "--grid", "loss=0,0.1", "--seeds", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 cell(s)" in out and "loss=0.1_seed=2" in out
    assert not (tmp_path / "runs").exists()


def test_config_file_and_fault_schedule(tmp_path, capsys):
    from simulator import FaultSchedule

    cfg = tmp_path / "c.toml"
    cfg.write_text('[params]\nrate = 100\nduration_s = 4.0\npartition_at = 1.0\nheal_at = 2.0\n'
                   '[grid]\nloss = [0.0, 0.05]\n')
    assert main(["sweep", "kernel_demo", "--config", str(cfg), "--dry-run"]) == 0
    assert "2 cell(s)" in capsys.readouterr().out
    assert main(["run", "kernel_demo", "--config", str(cfg)]) == 2  # a grid needs sweep
    bad = tmp_path / "bad.toml"
    bad.write_text("[params]\nloss = 7\n")
    assert main(["run", "kernel_demo", "--config", str(bad), "--dry-run"]) == 2
    assert "loss=7" in capsys.readouterr().err

    sched = FaultSchedule()
    sched.crash(1.0, "s1", recover_at=2.0)
    sched.to_json(tmp_path / "f.json")
    out = tmp_path / "run"
    assert main(["run", "kernel_demo", "--quick", "--serial", "--no-plots", "--faults", str(tmp_path / "f.json"),
                 "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert json.loads(meta["params"]["faults_json"])[0]["kind"] == "crash"
    unknown = FaultSchedule()
    unknown.crash(1.0, "nobody")
    unknown.to_json(tmp_path / "u.json")
    assert main(["run", "kernel_demo", "--quick", "--serial", "--faults", str(tmp_path / "u.json"),
                 "--out", str(tmp_path / "u")]) == 1  # unknown node: refused when the world is built
    assert "unknown node 'nobody'" in next((tmp_path / "u" / "errors").glob("*.txt")).read_text()


def test_outputs_parquet_once_metadata_and_identical_svgs(tmp_path):
    a = ex.run_experiment("kernel_demo", quick=True, out=tmp_path / "a", progress=False, command=["x"])
    b = ex.run_experiment("kernel_demo", quick=True, out=tmp_path / "b", progress=False)
    for f in ("figures/kernel_demo.svg", "figures/kernel_demo.png", "data/requests.parquet"):
        assert (a.folder / f).read_bytes() == (b.folder / f).read_bytes(), f
    stored = [p.name for p in a.folder.rglob("*.parquet")]
    assert sorted(stored) == sorted(set(stored)), "a table is stored twice"
    meta = json.loads((a.folder / "metadata.json").read_text())
    assert meta["format"] == "parquet" and meta["complete"] and meta["tables"]["requests"]["rows"] > 1000
    assert set(meta["git"]) >= {"revision", "dirty"} and meta["versions"]["pyarrow"]
    csv = ex.run_experiment("kernel_demo", quick=True, out=tmp_path / "c", progress=False, plots=False, fmt="csv")
    pd.testing.assert_frame_equal(pd.read_csv(csv.folder / "data" / "summary.csv"),
                                  pd.read_parquet(a.folder / "data" / "summary.parquet"), check_dtype=False)


def test_resume_appends_a_record(tmp_path):
    out = tmp_path / "r"
    ex.run_experiment("tuple_toy", overrides={"raise_on_seed": 2}, seeds=3, out=out, progress=False,
                      command=["first"])
    ex.run_experiment("tuple_toy", overrides={"raise_on_seed": 2}, seeds=3, out=out, resume=True, progress=False,
                      command=["second"])
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["command"] == ["first"] and [r["command"] for r in meta["resumes"]] == [["second"]]


def test_consistency_runs_write_histories_that_check_reads(tmp_path, capsys):
    out = tmp_path / "cap"
    assert main(["run", "cap_partition", "--quick", "--serial", "--no-plots", "--out", str(out)]) == 0
    hist = sorted((out / "histories").glob("*.jsonl"))
    assert [h.name for h in hist] == ["seed=1_history_ap.jsonl", "seed=1_history_cp.jsonl"]
    capsys.readouterr()
    assert main(["check", "linearizable", str(hist[1])]) == 0  # Raft
    assert main(["check", "linearizable", str(hist[0])]) == 1  # LWW under a partition


def test_summary_prints_counts_as_integers(tmp_path, capsys):
    main(["run", "kernel_demo", "--param", "rate=2000", "--quick", "--serial", "--no-plots",
          "--out", str(tmp_path / "i")])
    out = capsys.readouterr().out
    assert "e+0" not in out
