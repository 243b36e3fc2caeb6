"""The causal checker against its definition, the causal+ store and session clients under random
partitions (property tests), and the consistency_ladder lesson on QUICK."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.replication.causal import DEPS_MISSING, CausalClient, CausalStore
from models.replication.eventual import EventualStore
from models.replication.sessions import SessionClient
from simulator import LogNormal, Simulation
from simulator.history import History
from simulator.history.causal import check_causal
from simulator.history.session import session_guarantees


def _thread(post_seen: object) -> History:
    """p0 posts 1; p1 reads it and replies 2; p2 reads the reply, then the post (``post_seen``)."""
    h = History()
    for proc, f, key, val, res, t in [(0, "write", "post", 1, None, 0), (1, "read", "post", None, 1, 2),
                                      (1, "write", "reply", 2, None, 4), (2, "read", "reply", None, 2, 6),
                                      (2, "read", "post", None, post_seen, 8)]:
        i = h.invoke(proc, f, key, val, t)
        h.ok(i, t + 1, res)
    return h


def test_causal_checker_accepts_a_causal_thread() -> None:
    r = check_causal(_thread(1))
    assert r.valid and r.reads == 3


def test_causal_checker_finds_reply_before_post_with_its_witness_chain() -> None:
    r = check_causal(_thread(None))
    assert not r.valid and len(r.violations) == 1
    v = r.violations[0]
    assert v["missing"].value == 1 and v["returned"] is None
    # the chain: post -> read by the replier -> reply -> read by the reader -> the bad read
    assert [(o.process, o.f, o.key) for o in v["chain"]] == [
        (0, "write", "post"), (1, "read", "post"), (1, "write", "reply"), (2, "read", "reply"), (2, "read", "post")]
    assert "reply" in r.explain()


def test_causal_checker_allows_concurrent_writes_in_either_order_but_not_going_back() -> None:
    h = History()
    seq = [(0, "write", "x", 1, None), (1, "write", "x", 2, None),  # concurrent: no order between them
           (2, "read", "x", None, 2), (2, "read", "x", None, 1),  # either order is causal (not linearizable)
           (3, "read", "x", None, 1), (3, "write", "x", 3, None), (3, "read", "x", None, 1)]  # 3 follows 1: back
    for n, (proc, f, key, val, res) in enumerate(seq):
        i = h.invoke(proc, f, key, val, n)
        h.ok(i, n + 0.5, res)
    r = check_causal(h)
    assert len(r.violations) == 1 and r.violations[0]["read"].process == 3


def test_a_failed_write_is_never_a_cause() -> None:
    h = History()
    i = h.invoke(0, "write", "x", 1, 0)
    h.fail(i, 1)
    i = h.invoke(0, "read", "x", None, 2)
    h.ok(i, 3, None)
    assert check_causal(h).valid


# -- property tests: random ops, random partitions ------------------------------------------------
partitions = st.lists(st.tuples(st.floats(0.0, 1.5), st.floats(0.05, 0.8), st.integers(1, 2)), max_size=3)


def _drive(sim: Simulation, clients: list, ops: int, seed_name: str, keys: int = 3) -> History:
    h, counter = History(), [1]
    for pid, cl in enumerate(clients):
        sim.at(0.01 * pid, _client_loop(sim, h, cl, pid, sim.uniforms(f"{seed_name}.{pid}"), ops, keys, counter))
    return h


def _client_loop(sim: Simulation, h: History, cl, pid: int, u, ops: int, keys: int, counter: list):
    """One sequential client: ``ops`` operations, a short random pause between them."""
    left = [ops]

    def step() -> None:
        if left[0] == 0:
            return
        left[0] -= 1
        key = int(u() * keys)
        if u() < 0.4:
            val = counter[0]
            counter[0] += 1
            i = h.invoke(pid, "write", key, val, sim.now)
            cl.write(key, val, lambda o, v: (h.complete(i, o, sim.now), sim.at(u() * 0.05, step)))
        else:
            i = h.invoke(pid, "read", key, None, sim.now)
            cl.read(key, lambda o, v: (h.complete(i, "fail" if o != "ok" else "ok", sim.now,
                                                  v if o == "ok" else None), sim.at(u() * 0.05, step)))
    return step


def _partition(sim: Simulation, replicas: list[str], clients: list[str], parts) -> None:
    for at, length, cut in parts:
        a = replicas[:cut] + clients[: len(clients) // 2]
        b = replicas[cut:] + clients[len(clients) // 2:]
        sim.faults.partition(at=at, heal_at=at + length, groups=[a, b])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), parts=partitions, on_missing=st.sampled_from(["wait", "refuse"]))
def test_causal_store_never_shows_an_effect_before_its_cause(seed, parts, on_missing) -> None:
    """Any client, sticky or hopping between replicas, under any partitions: the history is causal."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5))
    store = CausalStore(sim, 3, replication_interval_s=0.05)
    names = [n.name for n in store.nodes]
    clients = []
    for i in range(4):
        node = sim.node(f"cl{i}")
        u = sim.uniforms(f"hop{i}")
        pick = (lambda i=i: names[i % 3]) if i % 2 == 0 else (lambda u=u: names[int(u() * 3)])
        clients.append(CausalClient(node, pick, timeout_s=0.2, on_missing=on_missing))
    _partition(sim, names, [f"cl{i}" for i in range(4)], parts)
    h = _drive(sim, clients, 40, "causal")
    sim.run(until=6)
    r = check_causal(h)
    assert r.valid, r.explain()
    assert store.converged()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), parts=partitions,
       which=st.sampled_from(["read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads"]))
def test_session_clients_never_violate_the_guarantee_they_enforce(seed, parts, which) -> None:
    """Clients hop between replicas of an eventual store (HLC stamps, clocks in sync) and enforce one
    guarantee, plus monotonic reads for the observers of the write-order guarantees (the session
    checker judges write order by what one session reads)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5))
    store = EventualStore(sim, n=3, r=1, w=1, resolution="hlc", write_delay=0.05, replica_timeout_s=0.3,
                          anti_entropy_interval_s=0.2, hinted_handoff=True, record_versions=True)
    names = [n.name for n in store.nodes]
    on = {which: True}
    if which in ("monotonic_writes", "writes_follow_reads"):
        on["monotonic_reads"] = True
    clients = []
    for i in range(4):
        u = sim.uniforms(f"hop{i}")
        clients.append(SessionClient(sim.node(f"cl{i}"), store, lambda u=u: names[int(u() * 3)], timeout_s=0.2,
                                     **on))
    _partition(sim, names, [f"cl{i}" for i in range(4)], parts)
    h = _drive(sim, clients, 40, "sessions", keys=2)
    sim.run(until=6)
    g = session_guarantees(h)
    assert int(g[g.guarantee == which].violations.sum()) == 0


def test_without_the_guarantee_hopping_clients_do_violate_it() -> None:
    """The control: the same hopping clients with nothing enforced read their writes stale."""
    bad = 0
    for seed in range(3):
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.002, sigma=0.5))
        store = EventualStore(sim, n=3, r=1, w=1, resolution="hlc", write_delay=0.2, replica_timeout_s=0.5,
                              record_versions=True)
        names = [n.name for n in store.nodes]
        clients = [SessionClient(sim.node(f"cl{i}"), store,
                                 lambda u=sim.uniforms(f"hop{i}"), names=names: names[int(u() * 3)]) for i in range(3)]
        h = _drive(sim, clients, 60, "control", keys=1)
        sim.run(until=6)
        g = session_guarantees(h)
        bad += int(g[g.guarantee == "read_your_writes"].violations.sum())
    assert bad > 0


def test_a_client_failing_over_is_refused_or_waits_for_its_context() -> None:
    sim = Simulation(seed=1)
    sim.network(latency=0.001)
    CausalStore(sim, 2, replication_interval_s=1.0)
    target = ["c0"]
    out: list = []
    cl = CausalClient(sim.node("cl"), lambda: target[0], timeout_s=0.3, on_missing="refuse")
    sim.at(0.1, lambda: cl.write("x", 1, lambda o, v: out.append(o)))
    sim.at(0.2, lambda: target.__setitem__(0, "c1"))
    sim.at(0.3, lambda: cl.read("y", lambda o, v: out.append((o, v))))  # c1 has not got x yet
    sim.at(1.5, lambda: cl.read("x", lambda o, v: out.append((o, v))))  # shipped at t = 1.0
    sim.run(until=2)
    assert out == ["ok", ("fail", DEPS_MISSING), ("ok", 1)]


# -- the lesson ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ladder():
    import pandas as pd

    from experiments import consistency_ladder as m

    return pd.concat([m.run(m.QUICK, seed)["summary"].assign(seed=seed) for seed in (1, 2)]).groupby(
        "rung", sort=False).agg({"availability_sticky": "min", "availability_fail_over": "mean",
                                 "latency_p50_ms": "mean", "reply_before_post": "sum", "causal_violations": "sum",
                                 "stale_reads": "sum", "guarantee_waits": "sum"})


def test_ladder_lesson_on_quick(ladder) -> None:
    from experiments.consistency_ladder import RUNGS

    raft, causal, sessions, eventual = (ladder.loc[r] for r in RUNGS)
    # linearizable: refuses the minority side (worst side availability 0), shows no anomaly
    assert raft.availability_sticky == 0 and raft.stale_reads == 0 and raft.causal_violations == 0
    # causal+: every sticky client is served; a client that fails over waits for its context and times out
    assert causal.availability_sticky >= 0.99 and causal.availability_fail_over < 0.9
    assert causal.causal_violations == 0 and causal.reply_before_post == 0 and causal.guarantee_waits > 0
    # the rungs below: answered everyone, and showed replies before their posts
    for r in (sessions, eventual):
        assert r.availability_sticky >= 0.99 and r.availability_fail_over >= 0.99
    assert eventual.reply_before_post + sessions.reply_before_post > 0
    assert eventual.causal_violations > 0
    # the price of the top rung: a leader round trip (and its read-index heartbeat round) on every op
    assert raft.latency_p50_ms > 1.5 * causal.latency_p50_ms


# -- token_expiry_skew ------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [0.5, 0.999, 1.001, 3.0])
def test_token_rejected_at_the_boundaries_iff_offset_exceeds_leeway(d) -> None:
    """Issuer on true time, a service ``d`` ahead (exp boundary) and one ``d`` behind (nbf boundary),
    leeway L = 1 s: a token used just before exp (ahead) or just after iat (behind) is rejected iff d > L."""
    from experiments.token_expiry_skew import accepts

    sim = Simulation(seed=0)
    issuer = sim.node("issuer")
    ahead, behind = sim.node("ahead", clock=dict(offset_s=d)), sim.node("behind", clock=dict(offset_s=-d))
    T, L, eps = 30.0, 1.0, 1e-6
    seen = {}
    sim.at(5.0, lambda: seen.update(iat=issuer.clock.now()))
    sim.at(5.0 + eps, lambda: seen.update(nbf_side=behind.clock.now()))
    sim.at(5.0 + T - eps, lambda: seen.update(exp_side=ahead.clock.now()))
    sim.run(until=40)
    assert accepts(seen["exp_side"], seen["iat"], T, L) == (d <= L)
    assert accepts(seen["nbf_side"], seen["iat"], T, L) == (d <= L)


def test_token_closed_form_matches_its_integral() -> None:
    """(2s - L)^3 / (12 s^2 T) is E[max(0, |d| - L)] / T for d triangular on [-2s, 2s] (grid integral, 1e-4)."""
    import numpy as np

    from experiments.token_expiry_skew import expected_reject_rate

    for s, L, T in [(2.0, 0.0, 30.0), (5.0, 1.0, 60.0), (5.0, 9.0, 30.0), (1.0, 3.0, 10.0)]:
        d = np.linspace(-2 * s, 2 * s, 200_001)
        w = 2 * s - np.abs(d)
        numeric = float((np.maximum(0, np.abs(d) - L) * w).sum() / w.sum() / T)
        assert expected_reject_rate(s, L, T) == pytest.approx(numeric, abs=1e-4)


def test_token_lesson_on_quick() -> None:
    from experiments import token_expiry_skew as m

    s = m.run(m.QUICK, 1)["summary"].set_index(["lifetime_s", "skew_s", "leeway_s"])
    rej, acc = s.wrongly_rejected, s.wrongly_accepted
    assert rej[(30.0, 0.0, 0.0)] == 0 and acc[(30.0, 0.0, 0.0)] == 0  # perfect clocks, no leeway: exact
    assert rej[(30.0, 5.0, 0.0)] > rej[(30.0, 2.0, 0.0)] > 0  # more skew, more wrong rejections
    assert rej[(30.0, 5.0, 0.0)] > 3 * rej[(300.0, 5.0, 0.0)]  # ~1/T: 10x the lifetime, ~1/10 the rate
    # leeway >= 2 x clock bound: none (drift adds < 4 ms between syncs, so allow a stray one)
    assert rej[(30.0, 5.0, 10.0)] <= 0.003 and rej[(30.0, 2.0, 5.0)] <= 0.003
    assert acc[(30.0, 5.0, 10.0)] > acc[(30.0, 5.0, 5.0)] > acc[(30.0, 5.0, 0.0)]  # the price of leeway
    # against the closed form: the issuer's clock error is drawn once per sync (about 20 draws), so the
    # measured rate scatters around it; a factor of 2 either way would mean a wrong model, not noise
    exp = m.expected_reject_rate(5.0, 0.0, 30.0)
    assert 0.5 * exp <= rej[(30.0, 5.0, 0.0)] <= 1.5 * exp
