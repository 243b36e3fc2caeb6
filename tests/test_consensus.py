"""Raft (models.replication.consensus) against its safety properties, under random faults:
election safety (at most one leader per term), leader completeness (every elected leader holds
every entry committed before), state machine safety (no two nodes apply different entries at
one index), and a linearizable client history (checked by the WGL checker)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.replication.consensus import RaftCluster, RaftConfig
from models.replication.kv import KVWorkload
from simulator import LogNormal, Simulation, random_nemesis
from simulator.history import History
from simulator.history.linearizable import check_linearizable


def cluster(seed, n=5, loss=0.0, **cfg):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=loss)
    return sim, RaftCluster(sim, n, **cfg)


def test_elects_one_leader_and_serves_linearizable_ops_without_faults():
    sim, c = cluster(1)
    h = History()
    KVWorkload(sim, c, clients=4, rate=40, keys=2, write_ratio=0.5, cas_ratio=0.2, timeout_s=1.0, history=h,
               stop_at=5)
    sim.run(until=6)
    e = c.elections_frame()
    assert len(e) == 1 and e.time[0] < 3 * c.config.election_timeout[1]
    counts = sim.metrics.counts()
    assert counts["ok"] > 0.9 * sum(counts.values())
    assert c.violations == []
    assert check_linearizable(h).valid is True


def test_a_new_leader_after_the_leader_crashes_and_nothing_committed_is_lost():
    sim, c = cluster(2)
    h = History()
    KVWorkload(sim, c, clients=3, rate=30, keys=2, write_ratio=0.6, timeout_s=0.5, history=h, stop_at=8)
    sim.run(until=2)
    old = c.leader()
    committed = dict(c.committed)
    sim.nodes[old].crash()
    sim.run(until=4)
    new = c.leader()
    assert new is not None and new != old
    log = c.replicas[new].log
    assert all(log[i] == e for i, e in committed.items())
    sim.nodes[old].recover()
    sim.run(until=9)
    assert c.violations == [] and check_linearizable(h).valid is True
    # the recovered node caught up: it applied the same prefix as everyone
    r = c.replicas[old]
    assert r.last_applied > max(committed)


def test_followers_redirect_and_bad_config_is_refused():
    sim, c = cluster(3)
    sim.run(until=2)
    follower = next(n for n in c.names if n != c.leader())
    out = []
    client = sim.node("cl")
    client.call(follower, "kv.write", ("x", 1), 1.0, lambda o, v: out.append((o, v)))
    sim.run(until=3)
    assert out == [("error", ("not_leader", c.leader()))]
    with pytest.raises(ValueError, match="heartbeat_s"):
        RaftConfig(heartbeat_s=0.5)
    with pytest.raises(ValueError, match="election_timeout"):
        RaftConfig(election_timeout=(0.3, 0.1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), kind=st.sampled_from(["halves", "majorities_ring", "isolate", "crash", "mixed"]),
       loss=st.sampled_from([0.0, 0.05]), read_mode=st.sampled_from(["read_index", "log"]))
def test_safety_under_random_partitions_crashes_and_loss(seed, kind, loss, read_mode):
    sim, c = cluster(seed, loss=loss, read_mode=read_mode)
    h = History()
    KVWorkload(sim, c, clients=4, rate=30, keys=2, write_ratio=0.5, cas_ratio=0.2, timeout_s=0.4, history=h,
               stop_at=6)
    sim.faults.extend(random_nemesis(c.names, kind=kind, start=0.5, until=5, fault_s=0.8, calm_s=0.4, seed=seed))
    sim.run(until=7)
    assert c.violations == []
    terms = [t for _, t, _ in c.elections]
    assert len(terms) == len(set(terms))  # election safety
    assert check_linearizable(h).valid is True
