"""Network: loss is Binomial, duplication and reordering happen at their rates, partitions
cut exactly what they say (including messages already in flight), RPC outcomes are distinct,
and late replies are counted, never swallowed by a stale waiter."""

import math

import numpy as np
import pytest

from simulator import NO_REPLY, Constant, LogNormal, RpcError, Simulation, Uniform


def blast(seed, n, **net):
    sim = Simulation(seed=seed)
    sim.network(**net)
    a, b = sim.node("a"), sim.node("b")
    got = []
    b.on("m", lambda msg: got.append(msg.payload))
    for i in range(n):
        a.send("b", "m", i)
    sim.run(until=10)
    return sim, got


def test_loss_is_binomial():
    """Each message is lost independently with p: the count lost over n messages is
    Binomial(n, p). Across 40 seeds the mean must be within 4 standard errors of n p and the
    variance must match n p (1 - p) within a chi-square 99.9% band."""
    n, p, seeds = 5000, 0.1, 40
    lost = np.array([n - len(blast(s, n, loss=p)[1]) for s in range(seeds)])
    mean, var = n * p, n * p * (1 - p)
    assert abs(lost.mean() - mean) < 4 * math.sqrt(var / seeds)
    from scipy.stats import chi2

    stat = (seeds - 1) * lost.var(ddof=1) / var
    assert chi2.ppf(0.0005, seeds - 1) < stat < chi2.ppf(0.9995, seeds - 1)


def test_duplication_rate_and_counters():
    n, p = 20000, 0.05
    sim, got = blast(1, n, duplicate=p)
    extra = len(got) - n
    assert abs(extra - n * p) < 4 * math.sqrt(n * p * (1 - p))
    net = sim.net
    assert net.sent == n + extra and net.delivered == len(got) and net.in_flight == 0


def test_reordering_with_constant_latency():
    """With constant latency a FIFO link never reorders; with reorder=p a fraction of
    messages is delayed and overtaken."""
    _, fifo = blast(1, 2000, latency=Constant(0.001))
    assert fifo == sorted(fifo)
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001), reorder=0.2, reorder_delay=Constant(0.01))
    a, b = sim.node("a"), sim.node("b")
    got = []
    b.on("m", lambda msg: got.append(msg.payload))

    def sender():
        for i in range(2000):
            a.send("b", "m", i)
            yield sim.env.timeout(0.001)

    sim.process(sender())
    sim.run(until=10)
    assert sorted(got) == list(range(2000))
    late = sum(1 for x, y in zip(got, got[1:]) if y < x)
    assert late > 100  # ~400 delayed messages each overtaken by ~10 others


def world(n=4, **net):
    sim = Simulation(seed=2)
    sim.network(latency=Constant(0.01), **net)
    nodes = [sim.node(f"n{i}") for i in range(n)]
    inbox = {nd.name: [] for nd in nodes}
    for nd in nodes:
        nd.on("m", lambda msg, nd=nd: inbox[nd.name].append(msg.src))
    return sim, nodes, inbox


def everyone_sends(sim, nodes):
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.send(b.name, "m")


def test_split_oneway_bridge_isolate_and_heal():
    sim, nodes, inbox = world()
    cut = sim.net.partition([["n0", "n1"], ["n2", "n3"]])
    everyone_sends(sim, nodes)
    sim.run(until=1)
    assert sorted(inbox["n0"]) == ["n1"] and sorted(inbox["n2"]) == ["n3"]
    sim.net.heal(cut)
    for v in inbox.values():
        v.clear()
    sim.net.one_way(["n0"], ["n1"])
    everyone_sends(sim, nodes)
    sim.run(until=2)
    assert "n0" not in inbox["n1"] and "n1" in inbox["n0"]
    sim.net.heal()
    for v in inbox.values():
        v.clear()
    sim.net.bridge(["n0"], ["n1"], bridge="n2")
    everyone_sends(sim, nodes)
    sim.run(until=3)
    assert "n1" not in inbox["n0"] and "n2" in inbox["n0"] and "n2" in inbox["n1"]
    assert sorted(inbox["n2"]) == ["n0", "n1", "n3"]
    sim.net.heal()
    for v in inbox.values():
        v.clear()
    sim.net.isolate("n3")
    everyone_sends(sim, nodes)
    sim.run(until=4)
    assert inbox["n3"] == [] and all("n3" not in inbox[k] for k in ("n0", "n1", "n2"))
    assert sorted(inbox["n0"]) == ["n1", "n2"]


def test_messages_in_flight_across_a_new_cut_are_lost():
    sim, nodes, inbox = world()
    nodes[0].send("n1", "m")  # lands at t = 0.01
    sim.at(0.005, lambda: sim.net.partition([["n0"], ["n1"]]))
    sim.run(until=1)
    assert inbox["n1"] == [] and sim.net.dropped_partition == 1


def test_bad_partitions_raise_before_running():
    sim, nodes, _ = world()
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        sim.net.partition([["n0"], ["zz"]])
    with pytest.raises(ValueError, match="no partition to heal"):
        sim.net.heal()
    with pytest.raises(ValueError, match="disjoint"):
        sim.net.partition([["n0", "n1"], ["n1"]])
    with pytest.raises(ValueError, match="probability in \\[0, 1\\]"):
        sim.network(loss=1.5)
    with pytest.raises(ValueError, match="latency"):
        sim.network(latency=-0.001)
    with pytest.raises(ValueError, match="unknown link parameter"):
        sim.network(jitter=0.1)


def test_fresh_network_of_thousands_of_nodes_has_no_link_table():
    sim = Simulation(seed=0)
    nodes = [sim.node(f"n{i}") for i in range(5000)]
    assert sim.net._links == {}
    nodes[0].send("n4999", "m")
    sim.net.isolate("n17")
    sim.run(until=1)
    assert sim.net._links == {} and sim.net.delivered == 1


def rpc_world(**kw):
    sim = Simulation(seed=4)
    sim.network(latency=Constant(0.01), **kw)
    return sim, sim.node("c"), sim.node("s")


def test_rpc_outcomes_are_distinct():
    sim, c, s = rpc_world()
    s.on("ok", lambda m: m.payload + 1)

    def boom(m):
        raise RpcError("bad key")

    s.on("err", boom)
    s.on("slow", lambda m: (yield sim.env.timeout(1.0)) or "late")
    s.serve("q", service=Constant(1.0), workers=1, queue_limit=0)
    got = {}

    def record(name):
        return lambda outcome, value: got.__setitem__(name, (outcome, value))

    c.call("s", "ok", 1, 0.5, record("ok"))
    c.call("s", "err", None, 0.5, record("err"))
    c.call("s", "slow", None, 0.5, record("slow"))
    c.call("s", "q", None, 5, record("q1"))
    sim.at(0.1, lambda: c.call("s", "q", None, 5, record("q2")))  # queue_limit 0: rejected
    sim.run(until=3)
    assert got["ok"] == ("ok", 2)
    assert got["err"] == ("error", "bad key")
    assert got["slow"] == ("timeout", None)
    assert got["q1"][0] == "ok" and got["q2"] == ("rejected", "overloaded")

    sim, c, s = rpc_world()
    s.on("x", lambda m: 1)
    sim.net.partition([["c"], ["s"]], refuse=True)
    c.call("s", "x", None, 1.0, record("unreach"))
    sim.run(until=1)
    assert got["unreach"] == ("unreachable", None)

    sim, c, s = rpc_world()
    s.refuse_when_down = True
    s.on("x", lambda m: 1)
    s.crash()
    c.call("s", "x", None, 1.0, record("crashed"))
    sim.run(until=1)
    assert got["crashed"] == ("crashed", None)


def test_late_reply_is_counted_and_delivered_not_swallowed():
    sim, c, s = rpc_world()
    s.serve("x", lambda m: "v", service=Constant(0.2), workers=1)
    late = []
    c.on_late_reply = late.append
    results = []

    def client():
        r1 = yield c.call("s", "x", None, timeout_s=0.1)  # times out; its reply comes at 0.22
        r2 = yield c.call("s", "x", None, timeout_s=1.0)  # must get ITS OWN reply, not r1's
        results.extend([r1, r2])

    sim.process(client())
    sim.run(until=2)
    assert results == [("timeout", None), ("ok", "v")]
    assert sim.net.late_replies == 1 and late[0].payload == "v"


def test_deferred_reply_with_no_reply():
    sim, c, s = rpc_world()

    def handler(msg):
        s.after(0.05, lambda: s.reply(msg, "done"))
        return NO_REPLY

    s.on("x", handler)
    out = []
    c.call("s", "x", None, 1.0, lambda o, v: out.append((o, v, sim.now)))
    sim.run(until=1)
    assert out[0][:2] == ("ok", "done") and out[0][2] == pytest.approx(0.07)


def test_per_link_latency_override():
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001))
    a, b, c = sim.node("a"), sim.node("b"), sim.node("c")
    sim.net.link("a", "c", latency=Uniform(0.1, 0.1))
    seen = {}
    for n in (b, c):
        n.on("m", lambda msg, n=n: seen.__setitem__(n.name, sim.now))
    a.send("b", "m")
    a.send("c", "m")
    sim.run(until=1)
    assert seen["b"] == pytest.approx(0.001) and seen["c"] == pytest.approx(0.1)


def test_latency_distribution_is_what_was_asked():
    """Lognormal(median m, sigma s): the median one-way delay is m (within 2%)."""
    sim, got = blast(0, 1, latency=LogNormal(0.002, 0.5))
    link = sim.net._default
    xs = np.array([link.latency() for _ in range(40000)])
    assert np.median(xs) == pytest.approx(0.002, rel=0.02)
