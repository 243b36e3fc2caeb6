"""Leaderless eventual consistency: LWW loses updates to clock skew, version vectors and HLC keep
them; anti-entropy, read repair, hinted handoff and sloppy quorums each do their job."""

from __future__ import annotations

import pytest

from models.replication.eventual import EventualStore
from models.replication.kv import KVWorkload
from simulator import Constant, LogNormal, Simulation, random_nemesis


def call(sim, client, target, op, payload, out: list, at: float) -> None:
    node = sim.nodes.get(client) or sim.node(client)
    sim.at(at - sim.now, lambda: node.call(target, op, payload, 1.0, lambda o, v: out.append((o, v))))


def skewed(resolution: str, **kw):
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001))
    # e0's clock is 1 s ahead of e1's
    store = EventualStore(sim, 2, resolution=resolution, clocks=[dict(offset_s=1.0), dict(offset_s=0.0)], **kw)
    return sim, store


@pytest.mark.parametrize("resolution, survivors", [("lww", ("A",)), ("hlc", ("B",)), ("vv", ("B",))])
def test_a_later_write_at_a_slow_clock_is_lost_only_under_lww(resolution, survivors):
    # A is written at e0 and replicated; 0.5 s later (real time, and after e1 has A) B is written
    # at e1, whose clock reads 1 s less: LWW stamps B before A and discards it. HLC stamps B
    # above the A it received; version vectors see that B's context contains A.
    sim, store = skewed(resolution)
    out: list = []
    call(sim, "c", "e0", "kv.write", ("k", "A"), out, 0.0)
    call(sim, "c", "e1", "kv.write", ("k", "B"), out, 0.5)
    call(sim, "c", "e0", "kv.read", ("k",), out, 1.0)
    sim.run(until=2.0)
    assert [o for o, _ in out] == ["ok", "ok", "ok"]
    assert store.final_values("k") == survivors
    assert out[2][1] == (survivors if resolution == "vv" else survivors[0])


def test_version_vectors_keep_concurrent_writes_as_siblings_until_a_write_supersedes_them():
    sim, store = skewed("vv", anti_entropy_interval_s=0.1)
    sim.faults.partition(at=0.0, heal_at=1.0, groups=[["e0", "c0"], ["e1", "c1"]])
    out: list = []
    call(sim, "c0", "e0", "kv.write", ("k", 1), out, 0.1)
    call(sim, "c1", "e1", "kv.write", ("k", 2), out, 0.2)  # concurrent: neither saw the other
    call(sim, "c0", "e0", "kv.read", ("k",), out, 2.0)  # after heal + anti-entropy
    call(sim, "c1", "e1", "kv.write", ("k", 3), out, 2.5)  # context: both siblings
    call(sim, "c0", "e0", "kv.read", ("k",), out, 3.5)
    sim.run(until=4.0)
    assert out[2] == ("ok", (1, 2))
    assert out[4] == ("ok", (3,))
    assert store.converged()


@pytest.mark.parametrize("seed", range(6))
def test_anti_entropy_converges_after_random_faults_and_version_vectors_lose_no_acked_write(seed):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=0.05)
    store = EventualStore(sim, 3, resolution="vv", anti_entropy_interval_s=0.2,
                          clocks=[dict(offset_s=0.01 * i, drift_ppm=100 * i) for i in range(3)])
    versions: dict = {}
    write = store.res.write

    def recording_write(node, local, value):  # remember each value's version vector
        st = write(node, local, value)
        versions[value] = st[0][0]
        return st

    store.res.write = recording_write
    names = [n.name for n in store.nodes]
    wl = KVWorkload(sim, store, clients=3, rate=30, keys=3, write_ratio=0.6, timeout_s=0.3, stop_at=5.0)
    sim.faults.extend(random_nemesis(names, kind="mixed", start=0.5, until=5.0, fault_s=0.7, calm_s=0.3,
                                     seed=seed))
    sim.run(until=5.5)
    for nd in store.nodes:
        if not nd.up:
            nd.recover()
    if sim.net.cuts:
        sim.net.heal()
    sim.run(until=9.0)  # 3.5 s of anti-entropy every 0.2 s with 3 nodes: ample
    assert store.converged()
    h = wl.history
    acked = [(h.key[i], h.value[i]) for i, t in enumerate(h.type) if t == "ok" and h.f[i] == "write"]
    assert acked
    for key, v in acked:
        st = store.merged_state(key)
        # kept as a sibling, or superseded by a version that saw it (its vector descends)
        assert any(vv == versions[v] or vv.descends(versions[v]) for vv, _ in st), (key, v)


def test_read_repair_fixes_a_replica_that_missed_a_write():
    sim = Simulation(seed=2)
    sim.network(latency=Constant(0.001))
    store = EventualStore(sim, 3, r=3, w=1, read_repair=True)
    sim.faults.crash(at=0.0, node="e2", recover_at=0.5)
    out: list = []
    call(sim, "c", "e0", "kv.write", ("k", "v"), out, 0.1)  # e2 is down: it misses the write
    sim.run(until=0.6)
    assert store.nodes[2].durable["kv"].get("k") is None
    call(sim, "c", "e0", "kv.read", ("k",), out, 0.7)
    sim.run(until=1.0)
    assert store.stats["read_repairs"] >= 1
    assert store.nodes[2].durable["kv"]["k"][1] == "v"


def test_hinted_handoff_delivers_a_missed_write_on_recovery():
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.001))
    store = EventualStore(sim, 3, w=2, hinted_handoff=True, handoff_interval_s=0.2)
    sim.faults.crash(at=0.0, node="e2", recover_at=1.0)
    out: list = []
    call(sim, "c", "e0", "kv.write", ("k", "v"), out, 0.1)
    sim.run(until=0.9)
    assert out == [("ok", True)] and ("e2", "k") in store.nodes[0].durable["hints"]
    sim.run(until=1.5)
    assert store.nodes[2].durable["kv"]["k"][1] == "v"
    assert not store.nodes[0].durable["hints"] and store.stats["hints_delivered"] == 1


@pytest.mark.parametrize("sloppy", [False, True])
def test_sloppy_quorum_accepts_writes_a_strict_one_cannot(sloppy):
    # n = 3 of 5 nodes, w = 3, one owner down: a strict quorum cannot collect 3 acks (and two
    # replicas did apply, so the answer is indeterminate); a sloppy one uses a fallback node
    sim = Simulation(seed=4)
    sim.network(latency=Constant(0.001))
    store = EventualStore(sim, 3, w=3, cluster_size=5, sloppy=sloppy, hinted_handoff=True, handoff_interval_s=0.2)
    owners = store.preference_list("k")[:3]
    sim.faults.crash(at=0.0, node=owners[2], recover_at=1.0)
    out: list = []
    call(sim, "c", owners[0], "kv.write", ("k", "v"), out, 0.1)
    sim.run(until=2.0)
    if sloppy:
        assert out == [("ok", True)] and store.stats["sloppy_writes"] == 1
    else:
        assert out[0][0] == "error" and out[0][1][0] == "indeterminate"
    # either way the hint reaches the owner once it is back
    assert store.nodes[int(owners[2][1:])].durable["kv"]["k"][1] == "v"


def test_bad_settings_are_refused():
    sim = Simulation(seed=1)
    with pytest.raises(ValueError, match="sloppy"):
        EventualStore(sim, 3, sloppy=True)
    with pytest.raises(ValueError, match="clocks"):
        EventualStore(sim, 3, clocks=[{}])
    with pytest.raises(ValueError, match="anti_entropy_interval_s"):
        EventualStore(sim, 3, anti_entropy_interval_s=0)
