"""Workloads and discovery against their defining laws: thinning reproduces the integral of
the rate; closed-loop users obey X = N / (R + Z); the registry forgets a dead instance within
ttl + check interval and not before its TTL runs out."""

import math

import pytest

from models.services import (
    ClosedLoopUsers,
    DiscoveryClient,
    DiscoveryConfig,
    Diurnal,
    Endpoint,
    PoissonClient,
    Registry,
    Service,
    Spike,
    Steps,
)
from simulator import Constant, Exponential, Simulation


@pytest.mark.parametrize("rate", [Steps(((0, 50), (10, 200), (20, 20))), Spike(40, 400, 12, 3),
                                  Diurnal(100, 80, period_s=15)])
def test_time_varying_arrivals_match_the_integral_of_the_rate(rate):
    """Arrivals of a nonhomogeneous Poisson process in [a, b] are Poisson with mean
    ∫ rate: the count must be within 4 standard deviations (sqrt of the mean)."""
    sim = Simulation(seed=5)
    sim.network(latency=Constant(0.0))
    sim.node("s").serve("get", service=Constant(0.0), workers=1000)
    PoissonClient(sim, "c", ["s"], rate=rate, stop_at=30)
    sim.run(until=31)
    start = sim.metrics.requests().start
    for a, b in ((0, 10), (10, 20), (12, 15), (0, 30)):
        mean = rate.integral(a, b)
        n = int(((start >= a) & (start < b)).sum())
        assert abs(n - mean) < 4 * math.sqrt(mean), (a, b, n, mean)


def test_closed_loop_users_obey_the_response_time_law():
    sim = Simulation(seed=2)
    sim.network(latency=Constant(0.001))
    svc = Service(sim, "svc", endpoints={"get": Endpoint(work=Exponential(0.02))}, pools={"default": 2})
    ClosedLoopUsers(sim, "users", svc.instances, users=20, think=Exponential(0.2), stop_at=200)
    sim.run(until=201)
    df = sim.metrics.requests()
    done = df[(df.outcome == "ok") & (df.start > 10) & (df.start < 190)]
    X = len(done) / 180
    R = done.latency.mean()
    assert X == pytest.approx(20 / (R + 0.2), rel=0.05)


def test_registry_drops_a_dead_instance_after_ttl_and_not_before():
    cfg = DiscoveryConfig(ttl_s=5.0, check_interval_s=1.0, check_timeout_s=0.2)
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001))
    reg = Registry(sim, config=cfg)
    svc = Service(sim, "api", endpoints={"get": Endpoint()}, instances=3)
    for n in svc.nodes:
        reg.register("api", n)
    views = []
    client = DiscoveryClient(sim.node("caller"), "api", refresh_s=0.5,
                             on_change=lambda xs: views.append((sim.now, tuple(xs))))
    crash_at = 10.0
    sim.at(crash_at, svc.nodes[0].crash)
    seen = {}

    def probe():
        seen[round(sim.now, 3)] = "api-0" in reg.listed("api")
        sim.at(0.25, probe)

    sim.at(0.0, probe)
    sim.run(until=30)
    last_ok_before_crash = max(t for t in range(11) if t <= crash_at)  # checks at 1 s, 2 s, ...
    still_listed = [t for t, v in seen.items() if t > crash_at and v]
    gone = [t for t, v in seen.items() if t > crash_at and not v]
    assert still_listed and max(still_listed) <= last_ok_before_crash + cfg.ttl_s + 1e-6  # stale until TTL
    assert min(gone) <= crash_at + cfg.ttl_s + cfg.check_interval_s
    assert client.instances == ["api-1", "api-2"] and client.refreshes > 40
    assert any("api-0" in v for t, v in views if t > crash_at)  # clients saw the stale entry for a while
