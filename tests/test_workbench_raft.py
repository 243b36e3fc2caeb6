"""Our own Raft served as a lin-kv node: the workbench tests and hunts it as it does a learner's node."""

import json

import pytest

from models.workbench import SERVICES, reference
from simulator.runner.cli import main
from simulator.workbench.harness import TestOptions, TestRun


def _run(variant, seed, nemesis=("partition", "kill")):
    o = TestOptions(workload="lin-kv", node=reference("lin-kv", variant), time_limit=15, rate=20, latency_ms=10,
                    nemesis=nemesis, nemesis_interval=3, seed=seed, trace=False)
    return TestRun(o, services={k: SERVICES[k] for k in ("lin-kv", "lww-kv")}).run().results()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_raft_is_linearizable_under_partitions_and_kills(seed):
    res = _run("raft", seed)
    assert res["workload"]["valid"] is True, res["workload"]
    assert res["perf"]["ok"] > 50 and res["faults"] >= 1
    assert res["net"]["msgs_per_op"] > 1  # heartbeats, appends and forwards are counted as server messages
    assert res["not_initialized"] == []


def test_follower_reads_are_caught_even_without_faults():
    res = _run("raft-follower-read", 1, nemesis=())
    assert res["workload"]["valid"] is False and res["workload"]["anomaly"] == "not-linearizable"


def test_the_one_hunt_hunts_raft_too(tmp_path, capsys):
    base = ["hunt", "-w", "lin-kv", "--time-limit", "10", "--rate", "20", "--latency", "10", "--nemesis",
            "partition,kill", "--nemesis-interval", "3", "--seeds", "6", "--serial", "--json"]
    assert main([*base, "--node", "reference:raft"]) == 0
    assert json.loads(capsys.readouterr().out)["failing"] == []
    assert main([*base, "--node", "reference:raft-follower-read", "--save", str(tmp_path / "m.json")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert len(out["failing"]) >= 3 and out["minimal"] is not None


@pytest.mark.parametrize("code,valid", [(11, True), (22, False)])
def test_only_a_cas_refused_for_its_precondition_tells_the_checker_anything(code, valid):
    """The bug the Raft hunt found in the checker: a cas refused with 11 (no leader) never ran, so
    it must not count as "the value differed from 'from'"; one refused with 22 was evaluated."""
    from simulator.history import History
    from simulator.workbench.kv import check_lin_kv

    h = History()
    w = h.invoke(0, "write", 1, 4, 0.0)
    h.ok(w, 1.0)
    c = h.invoke(1, "cas", 1, (4, 1), 2.0)
    h.fail(c, 3.0, {"error": code, "text": "refused"})
    assert check_lin_kv(h)["valid"] is valid
