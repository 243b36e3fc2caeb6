"""``splitbrain test``: Maelstrom's flags, a run folder with everything, exit codes, shrinking, bad input."""

import json

import pytest

from simulator.history.edn import load_history
from simulator.runner.cli import main

BROADCAST = ["test", "-w", "broadcast", "--node-count", "5", "--time-limit", "20", "--nemesis", "partition",
             "--latency", "100"]


def test_reference_broadcast_is_valid_and_leaves_a_full_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*BROADCAST, "--node", "reference", "--out", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("valid: everything looks good (broadcast, 5 nodes")
    res = json.loads((out / "results.json").read_text())
    assert res["valid"] is True and res["workload"]["lost_count"] == 0 and res["deterministic"] is True
    assert res["net"]["msgs_per_op"] > 1 and res["faults"] >= 1
    for f in ("history.jsonl", "history.edn", "faults.json", "metadata.json", "report.html",
              "figures/space-time.png", "figures/latency.png", "figures/rate.png"):
        assert (out / f).stat().st_size > 0, f
    jsonl = (out / "history.jsonl").read_text().splitlines()
    hist, _ = load_history(out / "history.edn")  # Jepsen's format, read back by the EDN loader
    assert len(hist) == len(jsonl) == 2 * res["perf"]["ops"]
    page = (out / "report.html").read_text()
    assert "valid: everything looks good" in page and "data:image/png;base64," in page


def test_no_retry_is_caught_and_shrunk_to_a_replayable_minimal_schedule(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*BROADCAST, "--node", "reference:no-retry", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("INVALID: broadcast checker: lost")
    res = json.loads((out / "results.json").read_text())
    minimal = res["minimal"]
    assert 1 <= len(minimal["faults"]) <= 3 and len(minimal["faults"]) <= minimal["original_faults"]
    assert (out / "figures" / "space-time-minimal.png").exists()
    # the replay command fails again, with just the minimal schedule
    argv = minimal["replay"].split()[1:]
    assert argv[-2] == "--faults"
    assert main([*argv, "--out", str(tmp_path / "replay"), "--no-shrink"]) == 1
    again = json.loads((tmp_path / "replay" / "results.json").read_text())
    assert again["faults"] == len(minimal["faults"]) and again["workload"]["anomaly"] == "lost"


def test_a_users_file_node_runs(tmp_path):
    node = tmp_path / "echo.py"
    node.write_text("from simulator.workbench import Node\n\n\nclass Echo(Node):\n"
                    "    def on_echo(self, msg):\n        self.reply(msg, {**msg.body, 'type': 'echo_ok'})\n")
    assert main(["test", "-w", "echo", "--node", f"{node}:Echo", "--time-limit", "5", "--out",
                 str(tmp_path / "r")]) == 0
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["perf"]["ok"] == res["perf"]["ops"] > 10


def test_same_seed_same_results(tmp_path):
    def once(name):
        assert main(["test", "-w", "g-counter", "--node", "reference", "--time-limit", "5", "--nemesis", "partition",
                     "--seed", "3", "--out", str(tmp_path / name), "--no-shrink"]) == 0
        res = json.loads((tmp_path / name / "results.json").read_text())
        res.pop("wall_s"), res.pop("sim_s_per_wall_s")
        return res, (tmp_path / name / "history.jsonl").read_bytes()

    assert once("a") == once("b")


@pytest.mark.parametrize("args,needle", [
    (["-w", "nope", "--node", "reference"], "--workload 'nope' is not a workload"),
    (["-w", "echo", "--node", "reference", "--node-count", "0"], "--node-count=0"),
    (["-w", "echo", "--node", "reference", "--rate", "-1"], "--rate=-1"),
    (["-w", "echo", "--node", "reference", "--time-limit", "nan"], "--time-limit must be a finite number"),
    (["-w", "echo", "--node", "reference", "--nemesis", "flood"], "--nemesis='flood'"),
    (["-w", "echo", "--node", "reference", "--availability", "most"], "--availability 'most'"),
    (["-w", "echo", "--node", "reference:nope"], "--node reference:nope"),
    (["-w", "echo", "--node", "missing.py:Echo"], "no such file missing.py"),
    (["-w", "echo", "--node", "simulator.workbench:Nope"], "has no class 'Nope'"),
    (["-w", "echo", "--node", "simulator.workbench:Message"], "not a subclass"),
    (["-w", "echo"], "exactly one of them"),
    (["-w", "echo", "--node", "reference", "--faults", "missing.json"], "--faults missing.json"),
])
def test_bad_input_is_refused_in_one_line_before_any_work(args, needle, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["test", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("splitbrain: error:") and needle in err and "\n" not in err
    assert not out.exists()


def test_an_existing_run_folder_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["test", "-w", "echo", "--node", "reference", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


HUNT = ["hunt", "-w", "broadcast", "--time-limit", "10", "--nemesis", "partition", "--latency", "100",
        "--seeds", "30", "--serial", "--json"]


def test_hunt_finds_no_retry_seeds_and_its_minimal_schedule_replays(tmp_path, capsys):
    save = tmp_path / "min.json"
    assert main([*HUNT, "--node", "reference:no-retry", "--save", str(save)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert len(out["failing"]) >= 5 and not out["errors"]
    m = out["minimal"]
    assert 1 <= len(m["faults"]) <= 3 and save.exists()
    argv = m["replay"].split()[1:]
    assert main([*argv, "--out", str(tmp_path / "replay"), "--no-shrink"]) == 1
    capsys.readouterr()
    # a failing seed's own replay command fails too (same seed, same nemesis: deterministic)
    argv = out["failing"][-1]["replay"].split()[1:]
    assert main([*argv, "--out", str(tmp_path / "seed"), "--no-shrink"]) == 1


def test_hunt_of_the_reference_finds_nothing(capsys):
    assert main([*HUNT, "--node", "reference"]) == 0
    assert json.loads(capsys.readouterr().out)["failing"] == []


def test_hunt_refuses_an_external_program_and_a_missing_target(capsys):
    assert main(["hunt", "-w", "echo", "--bin", "/bin/cat"]) == 2
    assert "deterministic node" in capsys.readouterr().err
    assert main(["hunt", "--seeds", "3"]) == 2
    assert "hunt what?" in capsys.readouterr().err


def test_the_docs_example_nodes_behave_as_docs_workbench_md_says(tmp_path, capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ex = root / "docs" / "examples"
    assert main(["test", "-w", "echo", "--node", f"{ex / 'echo.py'}:Echo", "--node-count", "1",
                 "--time-limit", "10", "--out", str(tmp_path / "e")]) == 0
    assert main([*BROADCAST, "--node", f"{ex / 'broadcast.py'}:Broadcast", "--out", str(tmp_path / "b")]) == 0
    assert main([*BROADCAST, "--node", f"{ex / 'broadcast.py'}:FireAndForget", "--out", str(tmp_path / "f")]) == 1
    out = capsys.readouterr().out
    import re

    def steady(text):  # the shrinker's wall-clock seconds differ from run to run
        return re.sub(r"runs, [0-9.]+ s\)", "runs, _ s)", text)

    doc = steady((root / "docs" / "workbench.md").read_text())
    for line in out.splitlines():  # the verdict lines quoted in the doc are the ones the code prints
        if line.startswith(("valid:", "INVALID:", "shrunk to", "  partition")):
            assert steady(line) in doc, line


def test_bin_runs_an_external_program_and_says_it_is_not_deterministic(tmp_path, capsys):
    import sys
    from pathlib import Path

    prog = Path(__file__).resolve().parent / "bin" / "echo.py"
    out = tmp_path / "x"
    assert main(["test", "-w", "echo", "--bin", sys.executable, str(prog), "--node-count", "2", "--time-limit", "1",
                 "--rate", "10", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("valid:") and "NOT deterministic" in text
    res = json.loads((out / "results.json").read_text())
    assert res["deterministic"] is False and res["perf"]["ok"] == res["perf"]["ops"] > 3
    assert json.loads((out / "metadata.json").read_text())["node"].startswith("bin:")


def test_a_replayed_schedule_naming_other_nodes_is_refused_before_any_work(tmp_path, capsys):
    f = tmp_path / "f.json"
    f.write_text('[{"kind": "crash", "at": 1.0, "node": "raft0", "recover_at": 2.0}]')
    for node in (["--node", "reference"], ["--bin", "/bin/cat"]):
        assert main(["test", "-w", "echo", *node, "--faults", str(f), "--out", str(tmp_path / "never")]) == 2
        err = capsys.readouterr().err
        assert "unknown node 'raft0'" in err and "this test's nodes: n1, n2" in err
        assert not (tmp_path / "never").exists()
