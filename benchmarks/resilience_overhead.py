"""The resilience pipeline's cost per request, measured against a bare call, side by side.

Scenario (both arms): one client, Poisson 2000 req/s, to 3 servers (4 workers, exponential
4 ms), lognormal 1 ms latency, no loss, so the patterns are exercised but rarely fire. Arm
"bare": ``BareCaller`` (``node.call`` with a 50 ms timeout). Arm "pipeline": ``Pipeline``
with timeout (50 ms request, 1 s total deadline), retry (3 attempts, exponential backoff,
full jitter), retry budget, circuit breaker, bulkhead (100 concurrent) and a fallback. The
arms alternate in one process; the last line reports the extra wall time per request.

    python benchmarks/resilience_overhead.py [--requests 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time


def run(arm: str, n: int, seed: int) -> float:
    from models.resilience import (
        BareCaller,
        BulkheadConfig,
        CircuitBreakerConfig,
        FallbackConfig,
        Pipeline,
        RetryBudgetConfig,
        RetryPolicy,
        TimeoutConfig,
    )
    from models.services import PoissonClient
    from simulator import Exponential, LogNormal, Simulation

    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.5))
    names = [f"s{i}" for i in range(3)]
    for s in names:
        sim.node(s).serve("get", service=Exponential(0.004), workers=4)
    if arm == "bare":
        caller = BareCaller(timeout_s=0.05)
    else:
        caller = Pipeline(sim, timeout=TimeoutConfig(request_s=0.05, total_s=1.0),
                          retry=RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.2, jitter="full"),
                          retry_budget=RetryBudgetConfig(), breaker=CircuitBreakerConfig(),
                          bulkhead=BulkheadConfig(max_concurrent=100), fallback=FallbackConfig(value=None))
    PoissonClient(sim, "client", names, rate=2000, limit=n, caller=caller)
    t0 = time.perf_counter()
    sim.run(until=n / 2000 + 5)
    dt = time.perf_counter() - t0
    assert len(sim.metrics) == n
    return dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    if a.requests < 1 or a.rounds < 1:
        ap.error("--requests and --rounds must be >= 1")
    per: dict[str, list[float]] = {"bare": [], "pipeline": []}
    for r in range(a.rounds):
        for arm in per:
            dt = run(arm, a.requests, seed=r + 1)
            per[arm].append(dt / a.requests)
            us = dt / a.requests * 1e6
            print(f"round {r + 1} {arm:8s}: {a.requests} requests in {dt:6.2f} s = {us:6.2f} µs/request", flush=True)
    bare, pipe = statistics.median(per["bare"]), statistics.median(per["pipeline"])
    print(f"pipeline overhead per request: {(pipe - bare) * 1e6:.2f} µs (ratio pipeline/bare: {pipe / bare:.2f})")


if __name__ == "__main__":
    main()
