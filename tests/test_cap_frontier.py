"""cap_frontier: CAP as quorum arithmetic on the QUICK preset, what clock skew does to R + W > N, common random
numbers across configurations, determinism, and the door check on ``configs``."""

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest

from experiments import cap_frontier as cf
from models.replication.pbs import parse_nrw

matplotlib.use("Agg")

SIDES = {"minority": cf.MINORITY, "majority": cf.REPLICAS - cf.MINORITY}


@pytest.fixture(scope="module")
def quick():
    return cf.run(cf.QUICK, seed=1)


def _leaderless(summary: pd.DataFrame):
    for _, row in summary[summary.config != "raft"].iterrows():
        yield row, parse_nrw(row.config)


def test_raft_refuses_the_minority_serves_the_majority_and_loses_nothing(quick):
    raft = quick["summary"].set_index("config").loc["raft"]
    # a minority leader can neither commit (needs 3 of 5 acks) nor confirm a read index: nothing succeeds there
    assert raft.availability_minority == 0.0
    # the majority may need one election (150-300 ms) plus a client timeout (0.5 s) if the old leader was cut
    # off: at most ~0.8 s of the 2 s partition lost, so > 0.5 even then (it is ~1 when the leader stays)
    assert raft.availability_majority > 0.5
    assert raft.stale_reads == 0 and raft.lost_writes == 0


def test_a_side_serves_an_operation_iff_its_quorum_fits_on_that_side(quick):
    """N = 5 owners on 5 nodes, no sloppy quorum: a side of s replicas serves reads iff R <= s, writes iff W <= s."""
    for row, (n, r, w) in _leaderless(quick["summary"]):
        assert n == cf.REPLICAS
        for side, s in SIDES.items():
            for op, q in (("read", r), ("write", w)):
                got = row[f"{op}_availability_{side}"]
                if q <= s:  # all answers come from the client's own side within a few ms; the timeout is 0.5 s
                    assert got >= 0.99, (row.config, side, op, got)
                else:  # fewer than q replicas can ever answer: refused (or indeterminate), never ok
                    assert got == 0.0, (row.config, side, op, got)


def test_serving_reads_and_writes_on_the_minority_forces_r_plus_w_at_most_n_and_stale_reads(quick):
    s = quick["summary"]
    full = [(row.config, r + w) for row, (n, r, w) in _leaderless(s)
            if row.read_availability_minority >= 0.99 and row.write_availability_minority >= 0.99]
    assert {c for c, _ in full} == {"5-1-1", "5-2-2"}
    assert all(rw <= 2 * cf.MINORITY < cf.REPLICAS for _, rw in full)
    # a minority read cannot see the majority's writes: with 3 keys and ~6 majority writes/s, the 2 s partition
    # makes stale reads there all but certain
    by = s.set_index("config")
    assert by.loc["5-1-1", "stale_reads"] > 0 and by.loc["5-2-2", "stale_reads"] > 0
    assert by.loc["5-1-1", "anomalies_per_1000_ops"] > by.loc["5-3-3", "anomalies_per_1000_ops"]


def test_else_branch_r1_w1_is_the_fastest(quick):
    """With no partition every 5-1-1 op is one client round trip to the home replica; every other config adds at
    least one replica round trip (or a leader's) to the writes or the reads that make up the median."""
    p50 = quick["summary"].set_index("config").latency_p50_ms
    assert (p50.drop("5-1-1") > p50["5-1-1"]).all()
    assert np.isfinite(quick["summary"].latency_p99_ms).all()


def test_without_skew_strict_quorums_are_never_stale_and_lww_loses_nothing():
    """skew_s = 0: a write acknowledged before another began has the smaller timestamp (stamped by the true time),
    so LWW loses none; with R + W > N a read meets a replica holding every acknowledged earlier write."""
    s = cf.run(replace(cf.QUICK, skew_s=0.0), seed=2)["summary"]
    for row, (n, r, w) in _leaderless(s):
        assert row.lost_writes == 0, row.config
        if r + w > n:
            assert row.stale_reads == 0, row.config


def test_clock_skew_makes_lww_lose_writes_even_with_strict_quorums():
    """100 ms of skew against ~10 writes/s per key from four coordinators: a later write stamped before an earlier
    one happens several times a run (pinned seed, a lesson not a formula)."""
    s = cf.run(replace(cf.QUICK, skew_s=0.1), seed=1)["summary"]
    strict = [row.lost_writes for row, (n, r, w) in _leaderless(s) if r + w > n]
    assert sum(strict) > 0


def test_common_random_numbers_same_ops_in_every_config(quick):
    ops = quick["ops"]
    for client in cf.CLIENTS:
        seqs = {c: list(zip(d.op, d.key)) for c, d in ops[ops.client == client].sort_values("start")
                .groupby("config", sort=False)}
        firsts = {c: d.start.min() for c, d in ops[ops.client == client].groupby("config")}
        assert len(set(firsts.values())) == 1, firsts  # the same first arrival
        m = min(len(v) for v in seqs.values())
        assert m > 20
        ref = next(iter(seqs.values()))[:m]
        assert all(v[:m] == ref for v in seqs.values()), client  # the k-th op: same kind, same key


def test_same_seed_same_summary():
    a = cf.run(cf.QUICK, seed=3)["summary"]
    b = cf.run(cf.QUICK, seed=3)["summary"]
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("configs", [("raft", "paxos"), ("5-6-1",), ("6-3-3",), ("raft", "raft"), ("5-0-1",)])
def test_bad_configs_are_refused_naming_the_parameter(configs):
    with pytest.raises(ValueError, match="configs"):
        cf.Params(configs=configs)


def test_partition_must_end_before_the_run():
    with pytest.raises(ValueError, match="partition_s"):
        cf.Params(partition_at=5, partition_s=10, duration_s=15)


def test_pareto_front():
    x = np.array([0.0, 60.0, 100.0, 100.0, 40.0])
    y = np.array([0.0, 0.0, 70.0, 100.0, 5.0])
    assert cf.pareto_front(x, y) == [1, 2]  # (0,0) and (40,5) are beaten by (60,0); (100,100) by (100,70)


def test_plot_states_the_lesson(quick):
    figs = cf.plot(quick, cf.QUICK)
    fig = figs["cap_frontier"]
    assert "frontier" in fig._suptitle.get_text()
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)
