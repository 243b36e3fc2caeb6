"""Dynamo quorums against the intersection formula, and strict quorums never read stale."""

from __future__ import annotations

from math import comb, sqrt

import pytest

from models.replication.kv import KVWorkload
from models.replication.quorum import QuorumStore, miss_probability
from simulator import Constant, LogNormal, Simulation


def sequential(sim: Simulation, client: str, target: str, script: list[tuple], done: list) -> None:
    """Run ``script`` ops (op, payload) one after another from ``client``; collect (outcome, value)."""
    node = sim.nodes.get(client) or sim.node(client)
    it = iter(script)

    def step(outcome=None, value=None) -> None:
        if outcome is not None:
            done.append((outcome, value))
        nxt = next(it, None)
        if nxt is not None:
            node.call(target, nxt[0], nxt[1], 1.0, step)

    sim.at(0.0, step)


@pytest.mark.parametrize("n, r, w", [(3, 1, 1), (3, 1, 2), (5, 2, 2), (5, 1, 3), (4, 2, 1), (3, 2, 2), (5, 3, 3)])
def test_random_read_quorum_misses_the_latest_write_with_the_hypergeometric_probability(n, r, w):
    # Bailis et al. 2012 Eq. 1: P(miss) = C(n-w, r) / C(n, r); 0 whenever r + w > n.
    trials = 1200
    sim = Simulation(seed=11 + n * 100 + r * 10 + w)
    sim.network(latency=Constant(0.001))
    store = QuorumStore(sim, n=n, r=r, w=w, selection="random")
    script = []
    for k in range(trials):  # a fresh key per trial: a miss is a read that finds nothing
        script += [("kv.write", (k, k + 1)), ("kv.read", (k,))]
    done: list = []
    sequential(sim, "client", store.nodes[0].name, script, done)
    sim.run(until=trials * 0.01 + 1)
    assert len(done) == 2 * trials and all(o == "ok" for o, _ in done)
    reads = [v for _, v in done[1::2]]
    misses = sum(v is None for v in reads)
    assert all(v is None or v == k + 1 for k, v in enumerate(reads))
    p = comb(n - w, r) / comb(n, r)
    assert miss_probability(n, r, w) == pytest.approx(p)
    if r + w > n:
        assert p == 0 and misses == 0
    else:
        # binomial: 4.5 standard errors is a false-alarm rate below 1e-5 per case
        assert abs(misses / trials - p) <= 4.5 * sqrt(p * (1 - p) / trials), (misses / trials, p)


def stale_reads(history) -> tuple[int, int]:
    """(stale, total) ok reads. A read is stale if it returned (or found nothing, instead of) a
    write w0 while some write w1 completed before the read began and began after w0 completed —
    i.e. the read missed a write that real time says it must see."""
    ops: dict = {}
    done = []
    for i, t in enumerate(history.type):
        p = history.process[i]
        if t == "invoke":
            ops[p] = dict(f=history.f[i], value=history.value[i], start=history.time[i])
        else:
            o = ops.pop(p)
            o.update(type=t, end=history.time[i], result=history.value[i])
            done.append(o)
    writes = {o["value"]: o for o in done if o["f"] == "write"}
    acked = [o for o in done if o["f"] == "write" and o["type"] == "ok"]
    stale = total = 0
    for rd in (o for o in done if o["f"] == "read" and o["type"] == "ok"):
        total += 1
        w0 = writes.get(rd["result"])
        if any(w1["end"] < rd["start"] and (w0 is None or w1["start"] > w0["end"]) for w1 in acked):
            stale += 1
    return stale, total


def run_quorum(n, r, w, seed, write_delay=0.0):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5))
    store = QuorumStore(sim, n=n, r=r, w=w, write_delay=write_delay)
    wl = KVWorkload(sim, store, clients=4, rate=100, keys=1, write_ratio=0.3, timeout_s=0.5, stop_at=4.0)
    sim.run(until=5.0)
    return stale_reads(wl.history)


@pytest.mark.parametrize("seed", range(3))
def test_strict_quorums_never_read_stale(seed):
    # r + w > n and perfect clocks (LWW stamps follow real time): every read quorum meets the
    # quorum of the latest completed write, and the newest stamp wins
    stale, total = run_quorum(3, 2, 2, seed, write_delay=0.005)
    assert total > 100 and stale == 0


def test_partial_quorums_read_stale_when_propagation_is_slow():
    stale, total = run_quorum(3, 1, 1, seed=1, write_delay=0.02)
    # with 20 ms to apply at the two other replicas and ~6 writes/s... reads at a replica that
    # has not applied yet are stale: direction only, with a wide margin (theory: several %)
    assert total > 100 and stale / total > 0.01


@pytest.mark.parametrize("kw, field", [(dict(r=0), "r"), (dict(w=4), "w"), (dict(n=0), "n"),
                                       (dict(selection="some"), "selection"),
                                       (dict(resolution="newest"), "resolution"),
                                       (dict(replica_timeout_s=0), "replica_timeout_s")])
def test_bad_quorum_settings_are_refused(kw, field):
    with pytest.raises(ValueError, match=field):
        QuorumStore(Simulation(seed=1), **kw)
