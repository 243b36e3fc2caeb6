"""Choreographed sagas, event sourcing (optimistic concurrency, snapshots, replay) and CQRS (read-model
lag against M/M/1, convergence); each experiment's lesson on its QUICK preset."""

from __future__ import annotations

import numpy as np
import pytest

import experiments.cqrs_read_lag as cqrs_exp
import experiments.event_sourcing_replay as es_exp
import experiments.saga_orchestration_vs_choreography as chor_exp
from models.transactions.choreography import build_choreography_world
from models.transactions.cqrs import Customers, build_cqrs, converged
from models.transactions.eventsourcing import (
    COMMAND,
    DEPOSIT,
    AccountService,
    ConcurrencyError,
    EventStore,
    fold_account,
)
from models.transactions.invariants import check_invariants
from models.transactions.shop import ShopConfig
from simulator import LogNormal, Simulation


# -- event sourcing ------------------------------------------------------------------------------------
def test_event_store_optimistic_concurrency_fold_and_snapshots():
    sim = Simulation(seed=1)
    store = EventStore(sim.node("n"), fold=fold_account, initial=float, snapshot_every=3)
    amounts = [5.0, 7.0, -2.0, 4.0, 1.0, -3.0, 6.0]
    for i, a in enumerate(amounts):
        store.append("a", i, [("Deposited", a) if a > 0 else ("Withdrawn", -a)])
    with pytest.raises(ConcurrencyError):  # a writer that decided on version 5 loses to the one that wrote 6, 7
        store.append("a", 5, [("Deposited", 1.0)])
    assert store.version("a") == 7
    assert store.load("a") == (pytest.approx(sum(amounts)), 7)  # state = fold of the events
    assert store.snapshots["a"][0] == 6 and store.since_snapshot("a") == 1  # snapshots at 3 and 6
    assert store.snapshots["a"][1] == pytest.approx(sum(amounts[:6]))


def test_concurrent_commands_on_one_account_conflict_and_retry():
    sim = Simulation(seed=1)
    sim.network(latency=0.001)
    svc = AccountService(sim, service=0.01)
    c = sim.node("c")
    outs = []
    for kind, amt in ((DEPOSIT, 10.0), (DEPOSIT, 5.0), (DEPOSIT, -3.0)):
        sim.at(0.0, lambda kind=kind, amt=amt: c.call("accounts", COMMAND, (1, kind, amt), 1.0,
                                                      lambda o, v: outs.append(o)))
    sim.run(until=1.0)
    # all three read version 0; the first append wins, each retry rereads: conflicts, no lost update
    assert outs == ["ok", "ok", "ok"] and svc.conflicts >= 2
    assert svc.balance(1) == pytest.approx(12.0) and svc.store.version(1) == 3


@pytest.mark.parametrize("k", [None, 5, 50])
def test_recovery_time_is_linear_in_events_since_snapshot(k):
    """recovery = snapshot_load_s × snapshots + replay_s × events since the snapshots (exact: a timer)."""
    sim = Simulation(seed=2)
    sim.network(latency=0.0005)
    svc = AccountService(sim, snapshot_every=k, replay_s=1e-3, snapshot_load_s=5e-3, service=0.0)
    c, u = sim.node("c"), sim.uniforms("t")
    for i in range(400):
        sim.at(i * 0.001, lambda: c.call("accounts", COMMAND, (int(u() * 7), DEPOSIT, 1.0), 1.0, lambda o, v: None))
    sim.faults.crash(1.0, "accounts", recover_at=1.1)
    sim.run(until=3.0)
    r = svc.recoveries[0]
    assert r.total_events == 400
    assert r.duration_s == pytest.approx(5e-3 * r.snapshots_loaded + 1e-3 * r.events_replayed, abs=1e-9)
    if k is None:
        assert r.events_replayed == 400 and r.snapshots_loaded == 0
    else:  # each of the 7 accounts replays fewer than k events
        assert r.events_replayed <= 7 * (k - 1) and r.snapshots_loaded == 7
    assert sum(svc.balance(a) for a in range(7)) == pytest.approx(400.0)  # nothing lost in the crash


def test_commands_refused_while_replaying():
    sim = Simulation(seed=3)
    sim.network(latency=0.0005)
    svc = AccountService(sim, replay_s=0.01, service=0.0)
    c = sim.node("c")
    for i in range(50):
        sim.at(i * 0.001, lambda: c.call("accounts", COMMAND, (0, DEPOSIT, 1.0), 1.0, lambda o, v: None))
    sim.faults.crash(0.2, "accounts", recover_at=0.3)  # replay: 50 × 10 ms = 0.5 s; the refused one is not applied
    outs = []
    sim.at(0.5, lambda: c.call("accounts", COMMAND, (0, DEPOSIT, 1.0), 1.0, lambda o, v: outs.append(v)))
    sim.at(0.9, lambda: c.call("accounts", COMMAND, (0, DEPOSIT, 1.0), 1.0, lambda o, v: outs.append(v)))
    sim.run(until=2.0)
    assert outs == ["recovering", 51] and svc.recoveries[0].duration_s == pytest.approx(0.5)


# -- choreography ----------------------------------------------------------------------------------------
def test_choreography_payment_failure_compensates_by_events():
    sim = Simulation(seed=1)
    sim.network(latency=0.001)
    w = build_choreography_world(sim, shop=ShopConfig(balance=5.0), rate=10.0, stop_at=1.0)  # orders cost 10
    sim.run(until=3.0)
    assert w.client.orders
    for o in w.client.orders:
        assert [k for _t, k in w.service.trace[o.id]] == ["OrderCreated", "InventoryReserved", "PaymentFailed",
                                                           "InventoryReleased", "OrderCancelled"]
    inv = check_invariants(w)
    assert inv["rejected"] == len(w.client.orders) and inv["violations"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_choreography_keeps_invariants_under_random_crashes(seed):
    """Crashes of any service or the broker mid-saga: the messages come back after their visibility
    timeout, handlers deduplicate, so every order ends consistent and nobody is charged twice."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.3))
    w = build_choreography_world(sim, shop=ShopConfig(ship_fail_p=0.2), rate=30.0, stop_at=4.0, visibility_s=0.5)
    rng = sim.rng("test.nemesis")
    for _ in range(4):
        t, who = float(rng.uniform(0.2, 3.5)), ["orders", "payment", "inventory", "shipping", "broker"][
            int(rng.integers(5))]
        sim.faults.crash(t, who, recover_at=t + float(rng.uniform(0.05, 0.5)))
    sim.run(until=20.0)
    inv = check_invariants(w)
    assert inv["violations"] == 0 and inv["unfinished"] == 0, inv
    assert inv["approved"] > 0 and inv["rejected"] > 0


# -- CQRS --------------------------------------------------------------------------------------------------
def _cqrs(lam: float, mu: float = 200.0, seed: int = 1, stop: float = 10.0):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0002, sigma=0.3))
    _b, cmd, proj = build_cqrs(sim, mu=mu)
    Customers(sim, n=50, rate=lam, stop_at=stop)
    sim.run(until=stop + 3.0)
    return cmd, proj


def test_read_model_lag_follows_mm1_and_converges():
    """Mean lag vs the M/M/1 time in system 1/(μ − λ) (λ = 100, μ = 200: 10 ms) plus ~1 ms of relay and
    broker hops; ~1000 events, sojourns autocorrelated, so ±30% (the closed-loop customers also make the
    arrivals slightly smoother than Poisson). Monotone in load; converged after the load stops."""
    lags = []
    for lam in (50.0, 100.0, 160.0):
        cmd, proj = _cqrs(lam)
        assert converged(cmd, proj)
        lags.append(proj.record.lags().mean())
    assert lags[1] == pytest.approx(1 / (200 - 100) + 0.001, rel=0.3)
    assert np.all(np.diff(lags) > 0)


# -- the lessons on QUICK ------------------------------------------------------------------------------------
def test_saga_orchestration_vs_choreography_lesson():
    s = chor_exp.run(chor_exp.QUICK, seed=1)["summary"].set_index("arm")
    o, c = s.loc["orchestrated"], s.loc["choreographed"]
    for r in (o, c):
        assert r.violations == 0 and r.unfinished == 0 and r.rejected > 0  # the outage costs no invariant
    assert c.messages_per_order > 2 * o.messages_per_order
    assert c.latency_p50_s > o.latency_p50_s  # one more broker hop per step
    assert o.places_to_look == 1 and c.places_to_look >= 2 and c.pending_mid_outage > 0


def test_cqrs_read_lag_lesson():
    s = cqrs_exp.run(cqrs_exp.QUICK, seed=1)["summary"]
    assert s.converged_after_drain.all()
    t0 = s[s.think_s == 0]
    for _mu, g in t0.groupby("mu"):
        assert np.all(np.diff(g.sort_values("rho").lag_mean_s) > 0)  # lag grows with load
    # same λ = 60/s: doubling μ from 100 to 200 more than halves the lag (1/(μ − λ): 25 ms -> 7 ms)
    a, b = t0[(t0.mu == 100) & (t0["lambda"] == 60)], t0[(t0.mu == 200) & (t0["lambda"] == 60)]
    assert b.lag_mean_s.iloc[0] < a.lag_mean_s.iloc[0] / 2
    assert (t0.ryw_rate > 0.9).all()  # reading right after ordering misses the order
    waited = s[s.think_s > 0]  # waiting t: P(lag > t) ≈ exp(−(μ − λ)t), within 0.12 (a few hundred reads)
    assert (waited.ryw_rate < t0.ryw_rate.min()).all()
    assert np.allclose(waited.ryw_rate, waited.ryw_theory, atol=0.12)


def test_event_sourcing_replay_lesson():
    s = es_exp.run(es_exp.QUICK, seed=1)["summary"]
    assert np.allclose(s.recovery_s, s.predicted_s)
    none = s[s.snapshot_every == 0].sort_values("events")
    assert np.allclose(none.recovery_s, es_exp.QUICK.replay_s * none.events)  # grows with the history
    k10 = s[s.snapshot_every == 10]
    assert k10.recovery_s.max() < 1.2 * k10.recovery_s.min()  # flat with snapshots
    assert k10.recovery_s.max() < none.recovery_s.max() / 10
