"""Logical clocks against their defining properties, on random message-passing executions.

Ground truth: happens-before computed directly from the event graph (program order plus
send -> receive edges, transitively closed as explicit sets of predecessor events), not from
any clock. Then: Lamport (1978) — e -> f implies L(e) < L(f); Fidge/Mattern — e -> f iff
V(e) < V(f), and concurrent iff incomparable; Kulkarni et al. (2014) — HLC (l, c) is strictly
monotonic per node, respects happens-before, l >= the node's physical time, and l never exceeds
the largest physical clock reading in the system at that moment.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.replication.clocks import (
    AFTER,
    BEFORE,
    CONCURRENT,
    EQUAL,
    HybridLogicalClock,
    LamportClock,
    VectorClock,
)

N = 4

steps = st.lists(st.tuples(st.integers(0, N - 1), st.sampled_from(["local", "send", "recv"]),
                           st.integers(0, 10 ** 6), st.floats(0.0, 0.01)), min_size=1, max_size=60)
clock_params = st.lists(st.tuples(st.floats(-0.05, 0.05), st.floats(-2000, 2000)), min_size=N, max_size=N)


def execute(script, params):
    """Run the script; returns a list of events with every clock's stamp and the truth."""
    t = [0.0]

    def phys(i):
        off, ppm = params[i]
        return lambda: off + t[0] * (1 + ppm * 1e-6)

    lam = [LamportClock() for _ in range(N)]
    vc = [VectorClock() for _ in range(N)]
    hlc = [HybridLogicalClock(phys(i)) for i in range(N)]
    last: list[int | None] = [None] * N
    inbox: list[list] = [[] for _ in range(N)]
    events: list[dict] = []
    for node, kind, choice, dt in script:
        t[0] += dt
        preds: set[int] = set()
        if last[node] is not None:
            preds |= events[last[node]]["preds"] | {last[node]}
        if kind == "recv" and inbox[node]:
            msg = inbox[node].pop(choice % len(inbox[node]))
            preds |= events[msg["event"]]["preds"] | {msg["event"]}
            L = lam[node].receive(msg["L"])
            vc[node] = vc[node].merge(msg["V"]).increment(str(node))
            H = hlc[node].receive(msg["H"])
        else:
            L = lam[node].tick()
            vc[node] = vc[node].increment(str(node))
            H = hlc[node].tick()
            if kind == "send":
                dst = choice % N
                inbox[dst].append({"event": len(events), "L": L, "V": vc[node], "H": H})
        events.append({"node": node, "preds": preds, "L": L, "V": vc[node], "H": H,
                       "pt": hlc[node].now(), "max_pt": max(phys(j)() for j in range(N))})
        last[node] = len(events) - 1
    return events


@settings(max_examples=150, deadline=None)
@given(steps, clock_params)
def test_clocks_respect_happens_before(script, params):
    events = execute(script, params)
    for j, f in enumerate(events):
        for i, e in enumerate(events[:j]):
            hb = i in f["preds"]
            assert not hb or e["L"] < f["L"], "Lamport: e -> f must imply L(e) < L(f)"
            rel = e["V"].compare(f["V"])
            assert (rel == BEFORE) == hb, "vector clocks: V(e) < V(f) iff e -> f"
            if not hb:
                assert rel == CONCURRENT, "events with no causal path are concurrent"
                assert f["V"].compare(e["V"]) == CONCURRENT
            else:
                assert f["V"].compare(e["V"]) == AFTER
                assert e["H"] < f["H"], "HLC: e -> f must imply hlc(e) < hlc(f)"
        assert f["H"][0] >= f["pt"], "HLC: l >= the node's physical time"
        assert f["H"][0] <= f["max_pt"], "HLC: l is some physical clock's reading, never beyond the max"


def test_vector_clock_basics():
    a = VectorClock({"x": 1})
    b = a.increment("y")
    assert a.compare(b) == BEFORE and b.compare(a) == AFTER and a.compare(VectorClock({"x": 1})) == EQUAL
    c = a.increment("x")
    assert b.compare(c) == CONCURRENT
    m = b.merge(c)
    assert m.as_dict() == {"x": 2, "y": 1} and m.descends(b) and m.descends(c)
    assert VectorClock({"x": 0}) == VectorClock()  # zero entries are absent entries


def test_hlc_stays_close_to_physical_time_and_counter_resets():
    t = [0.0]
    h = HybridLogicalClock(lambda: t[0])
    assert h.tick() == (0.0, 0)
    assert h.tick() == (0.0, 1)  # same physical reading: the counter breaks the tie
    t[0] = 1.0
    assert h.tick() == (1.0, 0)  # physical time advanced: counter resets
    assert h.receive((5.0, 3)) == (5.0, 4)  # a message from a clock ahead pulls l forward
    t[0] = 6.0
    assert h.tick() == (6.0, 0)  # and physical time catches up
