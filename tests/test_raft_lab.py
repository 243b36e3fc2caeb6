"""Notebook 09's Raft election lab: the reference keeps Election Safety under partitions and kills, the
double-vote variant breaks it, the starter never elects, and the downtime after a leader crash matches
the closed form and the project's own Raft."""

import numpy as np
import pytest

from models.workbench import raft_lab, reference
from simulator.runner.raft_lab import election_downtime, election_safety
from simulator.runner.teach import NotQuite
from simulator.runner.workbench_cmd import build
from simulator.workbench.harness import TestOptions


def _safety(node, seed):
    o = TestOptions(workload="lin-kv", node=node, time_limit=10, rate=5, latency_ms=10, nemesis=("partition", "kill"),
                    nemesis_interval=2, seed=seed, trace=False)
    return election_safety(build(o).run())


def test_reference_is_safe_and_the_double_vote_is_caught():
    assert all(_safety(raft_lab.RaftElection, s)["valid"] for s in range(8))
    assert sum(bool(_safety(raft_lab.RaftElectionDoubleVote, s)["violations"]) for s in range(8)) >= 3


def test_the_starter_never_elects():
    from simulator.runner.raft_lab import check_election, run_election_lab

    with pytest.raises(NotQuite, match="no server ever became leader"):
        check_election(run_election_lab(raft_lab.RaftElectionStarter))


def test_downtime_matches_the_closed_form_and_the_projects_raft():
    def mean(node):
        return 1000 * np.mean([election_downtime(TestOptions(workload="lin-kv", node=node, time_limit=6, rate=5,
                                                             latency_ms=10, seed=s, trace=False)) for s in range(30)])

    closed = 150 + 150 / 5 - 50 / 2 + 2 * 10  # first of 4 U[150, 300] timeouts, after half a heartbeat, + votes
    lab, ours = mean(raft_lab.RaftElection), mean(reference("lin-kv", "raft"))
    assert abs(lab - closed) < 0.15 * closed and abs(ours - closed) < 0.15 * closed, (lab, ours, closed)


def test_the_replicated_store_is_linearizable_with_safe_logs_and_local_reads_are_caught():
    from simulator.runner.raft_lab import check_raft_kv, log_safety, run_kv_lab

    for seed in (1, 2, 3):
        t = run_kv_lab(raft_lab.RaftKV, seed=seed)
        check_raft_kv(t)  # linearizable, logs safe, a quarter served
        assert min(log_safety(t)["committed"].values()) > 50
    with pytest.raises(NotQuite, match="not linearizable"):
        check_raft_kv(run_kv_lab(raft_lab.RaftKVLocalReads, seed=1))
    with pytest.raises(NotQuite, match="operations succeeded"):
        check_raft_kv(run_kv_lab(raft_lab.RaftElection, seed=1))  # elections alone serve nothing


def test_log_safety_notices_diverging_committed_logs():
    from types import SimpleNamespace

    from simulator.runner.raft_lab import log_safety

    def host(log, commit):
        return SimpleNamespace(node=SimpleNamespace(entries=log, commit_index=commit))

    same = [[0, None], [1, {"f": "write"}], [1, {"f": "read"}]]
    other = [[0, None], [1, {"f": "write"}], [2, {"f": "cas"}]]
    ok = SimpleNamespace(hosts={"n1": host(same, 2), "n2": host(same, 2)}, nodes=["n1", "n2"])
    bad = SimpleNamespace(hosts={"n1": host(same, 2), "n2": host(other, 2)}, nodes=["n1", "n2"])
    assert log_safety(ok)["valid"] is True
    assert log_safety(bad)["valid"] is False and "state machine safety" in log_safety(bad)["violations"][0]
