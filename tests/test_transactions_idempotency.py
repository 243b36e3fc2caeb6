"""Idempotency keys and the transactional outbox against their formulas and definitions."""

from __future__ import annotations

import numpy as np
import pytest

from models.resilience import RetryPolicy
from models.transactions.idempotency import ChargeService, IdempotencyConfig, PayingClient
from models.transactions.outbox import MODES, OutboxConfig, build_outbox_world, check_outbox
from simulator import LogNormal, Simulation

N = 3000


def charge_world(seed: int, *, q: float, attempts: int, config: IdempotencyConfig | None, keys: bool,
                 service=0.005, timeout_s: float = 0.05, base_s: float = 0.02, backoff: str = "fixed"):
    sim = Simulation(seed=seed)
    sim.network(latency=0.001)
    svc = ChargeService(sim, config=config, service=service)
    cl = PayingClient(sim, "payments", requests=N, gap_s=0.05, use_keys=keys, timeout_s=timeout_s,
                      retry=RetryPolicy(max_attempts=attempts, backoff=backoff, base_s=base_s, cap_s=10.0,
                                        jitter="none"))
    sim.net.link("payments", "client", symmetric=False, loss=q)  # only replies are lost
    sim.run(until=N * 0.05 * 3 + 60)
    return svc, cl, np.array([svc.executions.get(i, 0) for i in range(1, N + 1)])


@pytest.mark.parametrize("q, n", [(0.3, 2), (0.5, 4), (0.8, 5)])
def test_without_keys_a_retried_request_executes_1_plus_q_plus_q2_times(q, n):
    """Every attempt reaches the service; each reply is lost w.p. q; the client retries until a reply
    or n attempts: E[executions] = sum_{i<n} q^i. Tolerance: 4 standard errors of the sample mean."""
    _svc, _cl, ex = charge_world(1, q=q, attempts=n, config=None, keys=False)
    expect = sum(q**i for i in range(n))
    assert abs(ex.mean() - expect) < 4 * ex.std() / np.sqrt(N) + 1e-9, (ex.mean(), expect)


def test_with_keys_every_request_executes_exactly_once():
    svc, cl, ex = charge_world(2, q=0.5, attempts=4, config=IdempotencyConfig(), keys=True)
    assert (ex == 1).all() and svc.key_hits > 0


def test_a_key_that_expires_before_the_last_retry_charges_again():
    """Exponential backoff 0.2, 0.4, 0.8 s: retries 3 and 4 come after a 0.5 s TTL."""
    _s, _c, short = charge_world(3, q=0.5, attempts=4, config=IdempotencyConfig(ttl_s=0.5), keys=True, base_s=0.2,
                                 backoff="exponential")
    _s, _c, long = charge_world(3, q=0.5, attempts=4, config=IdempotencyConfig(ttl_s=60), keys=True, base_s=0.2,
                                backoff="exponential")
    assert (long == 1).all() and (short > 1).mean() > 0.05


@pytest.mark.parametrize("rule", ["reject", "wait"])
def test_concurrent_duplicates_are_rejected_or_wait_and_never_execute_twice(rule):
    """A slow service (p90 > the client's timeout) sees retries while the first attempt runs."""
    svc, cl, ex = charge_world(4, q=0.0, attempts=5, config=IdempotencyConfig(concurrent=rule), keys=True,
                               service=LogNormal(median=0.03, sigma=1.0), timeout_s=0.05, base_s=0.05)
    assert (ex <= 1).all()
    assert (svc.in_progress_rejects if rule == "reject" else svc.waited) > 0
    _s, _c, nokeys = charge_world(4, q=0.0, attempts=5, config=None, keys=False,
                                  service=LogNormal(median=0.03, sigma=1.0), timeout_s=0.05, base_s=0.05)
    assert (nokeys > 1).sum() > 0


def test_idempotency_config_is_checked():
    with pytest.raises(ValueError, match="ttl_s"):
        IdempotencyConfig(ttl_s=0)
    with pytest.raises(ValueError, match="concurrent"):
        IdempotencyConfig(concurrent="queue")
    with pytest.raises(ValueError, match="mode"):
        OutboxConfig(mode="two_phase")


# -- outbox --------------------------------------------------------------------------------------------
def outbox_run(seed: int, mode: str, dedupe: bool = True):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.3))
    w = build_outbox_world(sim, mode, rate=100, stop_at=8, dedupe=dedupe, config=OutboxConfig(mode=mode, gap_s=0.02))
    rng = sim.rng("test.crashes")
    t = 0.5
    while t < 7:
        sim.faults.crash(t, "orders", recover_at=t + 0.2)
        t += rng.exponential(0.5) + 0.3
    sim.faults.crash(3.0, "broker", recover_at=3.5)
    sim.run(until=16)
    return check_outbox(w)


@pytest.mark.parametrize("seed", [1, 2])
def test_outbox_loses_nothing_invents_nothing_and_dual_writes_do(seed):
    r = {m: outbox_run(seed, m) for m in MODES}
    assert r["outbox"]["lost"] == 0 and r["outbox"]["phantom"] == 0 and r["outbox"]["duplicated"] == 0
    assert r["outbox"]["events_applied"] == r["outbox"]["orders"] > 0
    assert r["dual_write"]["lost"] > 0 and r["dual_write"]["phantom"] == 0
    assert r["publish_first"]["phantom"] > 0 and r["publish_first"]["lost"] == 0


def test_outbox_relay_is_at_least_once_so_consumers_must_dedupe():
    r = outbox_run(1, "outbox", dedupe=False)
    assert r["lost"] == 0 and r["duplicated"] > 0
