"""The splitbrain command: listing, running, and clear errors (exit code 2) on bad input."""

import json

from simulator.runner.cli import main


def test_list_and_show(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "kernel_demo" in out and "partition" in out
    assert main(["show", "kernel_demo"]) == 0
    out = capsys.readouterr().out
    assert "Lesson" in out
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("rate "))
    assert row[:5] == ["rate", "float", "400.0", "req/s", "0"] and "1000000" in row


def test_run_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "kernel_demo", "--quick", "--serial", "--seeds", "2", "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["experiment"] == "kernel_demo" and meta["seed_list"] == [1, 2]
    assert meta["versions"]["simpy"] and "revision" in meta["git"] and meta["failed_cells"] == []
    for f in ("data/requests.parquet", "data/summary.parquet", "summary_ci.csv", "figures/kernel_demo.png",
              "figures/kernel_demo.svg", "cells.csv"):
        assert (out / f).exists(), f
    assert "ci95_low" in capsys.readouterr().out


def test_sweep_draws_ci_figures(tmp_path):
    out = tmp_path / "s"
    assert main(["sweep", "kernel_demo", "--quick", "--serial", "--grid", "loss=0,0.1", "--out", str(out)]) == 0
    assert (out / "figures" / "sweep.png").exists()


def test_bad_input_exit_code_2_and_says_what_is_allowed(tmp_path, capsys):
    assert main(["run", "nope"]) == 2
    assert "available: " in capsys.readouterr().err
    assert main(["run", "kernel_demo", "--param", "rat=1"]) == 2
    assert "allowed:" in capsys.readouterr().err
    assert main(["run", "kernel_demo", "--param", "rate=fast"]) == 2
    assert "cannot read 'fast' as float" in capsys.readouterr().err
    assert main(["run", "kernel_demo", "--param", "heal_at=1", "--quick"]) == 2
    assert "partition_at < heal_at" in capsys.readouterr().err
    assert main(["run", "kernel_demo", "--seeds", "0"]) == 2
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", "kernel_demo", "--quick", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_check_linearizable_verdicts_and_exit_codes(tmp_path, capsys):
    from simulator.history import History

    good, bad = History(), History()
    for h, read in ((good, 1), (bad, None)):
        w = h.invoke(0, "write", "x", 1, 0.0)
        h.ok(w, 1.0)
        r = h.invoke(1, "read", "x", None, 2.0)
        h.ok(r, 3.0, read)
    good.save_jsonl(tmp_path / "good.jsonl")
    bad.save_jsonl(tmp_path / "bad.jsonl")
    assert main(["check", "linearizable", str(tmp_path / "good.jsonl")]) == 0
    assert main(["check", "linearizable", str(tmp_path / "bad.jsonl")]) == 1
    assert "not linearizable" in capsys.readouterr().out.lower()
    assert main(["check", "linearizable", str(tmp_path / "missing.jsonl")]) == 2


def test_readme_lists_every_experiment_and_documents_the_front_door():
    from pathlib import Path

    from simulator.runner import registry

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| experiment | the question |"):]
    for name, mod in registry().items():
        if not mod.__name__.startswith("experiments."):
            continue  # registered by a test
        assert f"| `{name}` |" in table, f"README's experiment table lacks {name}"
    for words in ("--config", "--dry-run", "--dask", "Exit codes", "splitbrain validate", '".[dask]"'):
        assert words in readme, words
