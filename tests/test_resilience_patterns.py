"""Retries, budgets, bulkheads, rate limits, shedding, hedging, fallbacks and deadlines,
each checked against its arithmetic or its defining invariant."""

import math

import numpy as np
import pytest

from models.resilience import (
    BareCaller,
    Bulkhead,
    BulkheadConfig,
    FallbackConfig,
    HedgeConfig,
    LoadShedder,
    LoadShedderConfig,
    Pipeline,
    RetryBudget,
    RetryBudgetConfig,
    RetryPolicy,
    TimeoutConfig,
    TokenBucket,
    TokenBucketConfig,
)
from models.services import PoissonClient
from simulator import Constant, Mixture, Simulation


@pytest.mark.parametrize("p,n", [(0.2, 3), (0.1, 4), (0.3, 1)])
def test_retries_under_independent_loss_match_the_formulas(p, n):
    """Loss p each way: an attempt succeeds with q = (1-p)^2. With up to n attempts:
    P(success) = 1 - (1-q)^n and E[attempts] = (1 - (1-q)^n) / q. Tolerance: 4 standard
    errors of N independent requests (no queueing: instant service, low rate)."""
    N = 20_000
    sim = Simulation(seed=n)
    sim.network(latency=Constant(0.001), loss=p)
    sim.node("s").serve("get", service=Constant(0.0), workers=1000)
    PoissonClient(sim, "c", ["s"], rate=200, timeout_s=0.01, limit=N,
                  retry=RetryPolicy(max_attempts=n, backoff="none"))
    sim.run(until=N / 200 + 5)
    df = sim.metrics.requests()
    q = (1 - p) ** 2
    ps = 1 - (1 - q) ** n
    ok = (df.outcome == "ok").mean()
    assert abs(ok - ps) < 4 * math.sqrt(ps * (1 - ps) / N) + 1e-9
    attempts = df.attempts.to_numpy()
    e_att = (1 - (1 - q) ** n) / q
    assert abs(attempts.mean() - e_att) < 4 * attempts.std() / math.sqrt(N) + 1e-9
    assert attempts.max() <= n


def test_backoff_and_jitter_ranges():
    u = np.random.Generator(np.random.PCG64(0)).random
    exp = RetryPolicy(max_attempts=9, backoff="exponential", base_s=0.1, cap_s=1.0, jitter="none")
    assert [exp.delay(k, 0, u) for k in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    full = RetryPolicy(max_attempts=9, base_s=0.1, cap_s=1.0, jitter="full")
    xs = [full.delay(3, 0, u) for _ in range(20000)]
    assert 0 <= min(xs) and max(xs) <= 0.4 and np.mean(xs) == pytest.approx(0.2, rel=0.03)
    equal = RetryPolicy(max_attempts=9, base_s=0.1, cap_s=1.0, jitter="equal")
    xs = [equal.delay(3, 0, u) for _ in range(20000)]
    assert 0.2 <= min(xs) and max(xs) <= 0.4 and np.mean(xs) == pytest.approx(0.3, rel=0.03)
    dec = RetryPolicy(max_attempts=9, base_s=0.1, cap_s=1.0, jitter="decorrelated")
    xs = [dec.delay(3, 0.5, u) for _ in range(20000)]
    assert 0.1 <= min(xs) and max(xs) <= 1.0  # U(base, 3 * 0.5) capped at 1.0
    with pytest.raises(ValueError, match="jitter must be one of"):
        RetryPolicy(jitter="some")
    with pytest.raises(ValueError, match="cap_s must be >= base_s"):
        RetryPolicy(base_s=2, cap_s=1)


def test_retry_budget_arithmetic_grpc_throttling():
    b = RetryBudget(RetryBudgetConfig(max_tokens=10, token_ratio=0.5))
    for _ in range(4):
        b.on_failure()
    assert b.tokens == 6 and b.allow_retry()  # 6 > 5
    b.on_failure()
    assert b.tokens == 5 and not b.allow_retry()  # retries need tokens > max/2
    b.on_success()
    assert b.tokens == 5.5 and b.allow_retry()
    for _ in range(100):
        b.on_success()
    assert b.tokens == 10  # capped


def test_bulkhead_bounds_concurrency_and_waits_fifo():
    timers = []
    bh = Bulkhead(BulkheadConfig(max_concurrent=2, max_wait_s=1.0), lambda d, fn: timers.append(fn))
    log = []
    for i in range(4):
        bh.acquire(lambda i=i: log.append(("go", i)), lambda i=i: log.append(("no", i)))
    assert log == [("go", 0), ("go", 1)] and bh.in_use == 2
    bh.release()
    assert log[-1] == ("go", 2) and bh.in_use == 2  # the permit passed to the first waiter
    timers[1]()  # waiter 3 gives up after max_wait
    assert log[-1] == ("no", 3)
    bh.release(), bh.release()
    assert bh.in_use == 0
    none = Bulkhead(BulkheadConfig(max_concurrent=1, max_wait_s=0), lambda d, fn: None)
    none.acquire(lambda: None, lambda: None)
    out = []
    none.acquire(lambda: out.append("go"), lambda: out.append("no"))
    assert out == ["no"]


def test_token_bucket_admits_burst_plus_rate_times_time():
    tb = TokenBucket(TokenBucketConfig(rate=10, burst=5))
    t = np.arange(0, 10, 0.001)  # demand of 1000/s for 10 s
    admitted = sum(tb.take(x) for x in t)
    assert admitted == pytest.approx(5 + 10 * 10, abs=1)


def test_load_shedder_on_a_server_queue():
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.0))
    shed = LoadShedder(LoadShedderConfig(max_queue=5))
    sim.node("s").serve("get", service=Constant(0.01), workers=1, admit=shed.admit)
    PoissonClient(sim, "c", ["s"], rate=500, limit=2000)  # 5x capacity
    sim.run(until=10)
    df = sim.metrics.requests()
    ok = df[df.outcome == "ok"]
    assert shed.shed > 0 and (df.outcome == "rejected").sum() == shed.shed
    # At most 5 wait, so no accepted request waits longer than 5 services + its own.
    assert ok.latency.max() <= 6 * 0.01 + 1e-9


def server_world(service, seed=1, **pipe):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.001))
    sim.node("s").serve("get", service=service, workers=64)
    c = sim.node("c")
    return sim, c, Pipeline(sim, **pipe)


def test_hedging_cuts_the_tail_for_a_little_extra_load():
    """Service: 95% fast (5 ms), 5% slow (200 ms), independent per copy. Hedging after 20 ms
    sends a second copy for ~5% of requests, and a request is slow only if both copies are:
    P = 0.05^2, so the 99th percentile drops from ~200 ms to ~25 ms."""
    svc = Mixture([(0.95, Constant(0.005)), (0.05, Constant(0.2))])
    results = {}
    for hedge in (None, HedgeConfig(delay_s=0.02)):
        sim, c, pipe = server_world(svc, hedge=hedge, timeout=TimeoutConfig(request_s=1.0))
        PoissonClient(sim, "cl", ["s"], rate=200, limit=20000, caller=pipe)
        sim.run(until=200)
        df = sim.metrics.requests()
        served = sim.nodes["s"]._pools["get"].arrivals
        results[hedge is not None] = (df.latency.quantile(0.99), served / len(df), (df.hedged > 0).mean())
    assert results[False][0] > 0.19 and results[True][0] < 0.03
    extra = results[True][1] - 1
    assert abs(extra - 0.05) < 0.01 and abs(results[True][2] - 0.05) < 0.01


def test_fallback_deadline_and_connect_timeout():
    sim, c, pipe = server_world(Constant(0.5), fallback=FallbackConfig(value="cached"),
                                timeout=TimeoutConfig(request_s=0.1, total_s=0.25),
                                retry=RetryPolicy(max_attempts=10, backoff="none"))
    out = []
    pipe.call(c, "s", "get", None, lambda o, v: out.append((o, v, sim.now)))
    sim.run(until=2)
    assert out[0][:2] == ("fallback", "cached")
    assert out[0][2] == pytest.approx(0.25)  # the deadline, not 10 x 0.1 s

    sim, c, pipe = server_world(Constant(0.0), timeout=TimeoutConfig(request_s=1.0, connect_s=0.05))
    sim.net.partition([["c"], ["s"]])
    out = []
    pipe.call(c, "s", "get", None, lambda o, v: out.append((o, sim.now)))
    sim.run(until=2)
    assert out == [("unreachable", pytest.approx(0.05))]

    bare, got = BareCaller(timeout_s=0.01), []
    sim, c, _ = server_world(Constant(0.5))
    bare.call(c, "s", "get", None, lambda o, v: got.append(o))
    sim.run(until=1)
    assert got == ["timeout"]


def test_breaker_in_a_pipeline_short_circuits_a_failing_dependency():
    from models.resilience import CircuitBreakerConfig

    sim = Simulation(seed=2)
    sim.network(latency=Constant(0.001))
    s = sim.node("s")
    s.serve("get", service=Constant(0.001), workers=8)
    pipe = Pipeline(sim, timeout=TimeoutConfig(request_s=0.05),
                    breaker=CircuitBreakerConfig(sliding_window_size=20, minimum_number_of_calls=10,
                                                 wait_duration_in_open_s=1.0, permitted_calls_in_half_open=3))
    PoissonClient(sim, "c", ["s"], rate=100, stop_at=10, caller=pipe)
    sim.at(2.0, s.crash)
    sim.at(6.0, s.recover)
    sim.run(until=11)
    df = sim.metrics.requests()
    down = df[(df.start > 2.5) & (df.start < 6)]
    assert (down.outcome == "short_circuited").mean() > 0.8
    after = df[df.start > 7.5]
    assert (after.outcome == "ok").all()
    states = [t for _, _, t in pipe.breakers["s"].transitions]
    assert states[:3] == ["open", "half_open", "open"] and states[-1] == "closed"
