"""CRDTs: merge is a join (commutative, associative, idempotent, inflationary), OR-set adds win,
and a gossiping CRDTStore converges after partitions, crashes and loss without losing any
acknowledged increment (Shapiro et al. 2011)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.replication.crdt import CounterClients, CRDTStore, GCounter, LWWRegister, ORSet, PNCounter
from simulator import LogNormal, Simulation, random_nemesis

REPLICAS = ("a", "b", "c")
ops = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["up", "down", "merge"]),
                         st.integers(0, 4)), max_size=40)


def build(kind: str, script) -> list:
    """Three replica states after a random mix of local updates and pairwise merges."""
    states = [{"g": GCounter, "pn": PNCounter, "or": ORSet, "lww": LWWRegister}[kind]() for _ in REPLICAS]
    for step, (i, op, arg) in enumerate(script):
        r = REPLICAS[i]
        s = states[i]
        if op == "merge":
            states[i] = s.merge(states[arg % 3])
        elif kind == "g":
            s.increment(r, arg)
        elif kind == "pn":
            s.increment(r, arg if op == "up" else -arg)
        elif kind == "or":
            s.add(arg, (r, step)) if op == "up" else s.remove(arg)
        else:
            s.set(arg, float(step), r)  # distinct timestamps per replica
    return states


def value(s):
    return s.value


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["g", "pn", "or", "lww"]), ops)
def test_merge_is_a_join(kind, script):
    a, b, c = build(kind, script)
    assert a.merge(b) == b.merge(a), "commutative"
    assert a.merge(b).merge(c) == a.merge(b.merge(c)), "associative"
    assert a.merge(a) == a, "idempotent"
    ab = a.merge(b)
    assert ab.merge(a) == ab and ab.merge(b) == ab, "merge is an upper bound (inflationary)"
    # whatever order the replicas exchange states in, they end equal
    assert value(a.merge(b).merge(c)) == value(c.merge(a).merge(b)) == value(b.merge(c).merge(a))


@settings(max_examples=60, deadline=None)
@given(ops)
def test_counters_count_every_increment_once(script):
    # the merged G-counter equals the sum of every replica's own increments, however often merged
    states = build("g", script)
    own = {r: 0 for r in REPLICAS}
    for i, op, arg in script:
        if op != "merge":
            own[REPLICAS[i]] += arg
    merged = states[0].merge(states[1]).merge(states[2])
    assert merged.value <= sum(own.values())
    # a replica's own entry is exact: merges take maxima, never add
    for r, s in zip(REPLICAS, states):
        assert s.counts.get(r, 0) == own[r]


def test_or_set_add_wins_over_a_concurrent_remove():
    a, b = ORSet(), ORSet()
    a.add("x", ("a", 1))
    b = b.merge(a)
    b.remove("x")  # b removes the add it observed ...
    a.add("x", ("a", 2))  # ... while a adds x again concurrently
    assert "x" in a.merge(b) and "x" in b.merge(a)
    b.remove("x")
    assert "x" in b.merge(a), "b never observed tag 2, so its remove cannot cancel it"
    assert "x" not in b.merge(a).merge(ORSet(removed={("a", 2)}))


def test_g_counter_refuses_decrements_and_lww_breaks_ties_by_replica():
    with pytest.raises(ValueError, match="amount"):
        GCounter().increment("a", -1)
    x, y = LWWRegister(), LWWRegister()
    x.set("from-a", 1.0, "a")
    y.set("from-b", 1.0, "b")
    assert x.merge(y).value == y.merge(x).value == "from-b"


@pytest.mark.parametrize("seed", range(12))
def test_store_converges_after_faults_without_losing_acknowledged_increments(seed):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.005, sigma=0.5), loss=0.05)
    store = CRDTStore(sim, n=4, kind="pncounter" if seed % 2 else "gcounter", gossip_interval_s=0.1)
    names = [n.name for n in store.nodes]
    clients = [f"cl{i}" for i in range(4)]
    cc = CounterClients(sim, store, clients=clients, homes=names, rate=25, timeout_s=0.1, stop_at=6.0)
    # partitions, isolations and crashes (crdt state is durable) among replicas and clients
    sim.faults.extend(random_nemesis(names + clients, kind="mixed", start=0.5, until=6.0,
                                     fault_s=0.8, calm_s=0.3, seed=seed))
    sim.run(until=6.5)
    if sim.net.cuts:
        sim.net.heal()
    for node in store.nodes:
        if not node.up:
            node.recover()
    # after heal: with 5% loss, 4 replicas and push-pull gossip every 0.1 s, 4 s (40 rounds)
    # is far more than the O(log n) rounds an epidemic needs
    sim.run(until=10.5)
    assert store.converged(), store.values()
    total = store.values()[0]
    assert cc.acked > 0
    assert cc.acked <= total <= cc.acked + cc.maybe, (cc.acked, cc.maybe, total)
