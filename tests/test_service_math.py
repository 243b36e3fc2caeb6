"""Services against queueing math, load balancers against their definitions."""

import math

import numpy as np

from models.services import Endpoint, PoissonClient, Service, fan_out_theory, make_balancer
from simulator import Constant, Exponential, Simulation


def test_single_worker_service_is_mm1():
    """One instance, one worker, Poisson arrivals, exponential work: mean response time
    1/(mu - lambda). Independent replications; theory within 4 standard errors (see
    test_queueing for the reasoning)."""
    lam, mu = 100.0, 200.0
    means = []
    for seed in range(10):
        sim = Simulation(seed=seed)
        sim.network(latency=Constant(0.0))
        svc = Service(sim, "svc", endpoints={"get": Endpoint(work=Exponential(1 / mu))}, pools={"default": 1})
        PoissonClient(sim, "c", svc.instances, rate=lam, limit=15000)
        sim.run(until=400)
        df = sim.metrics.requests()
        assert (df.outcome == "ok").all()
        means.append(df.latency.iloc[500:].mean())
    means = np.array(means)
    se = means.std(ddof=1) / math.sqrt(len(means))
    theory = 1 / (mu - lam)
    assert se < 0.04 * theory and abs(means.mean() - theory) < 4 * se


def test_round_robin_is_exactly_even_and_p2c_avoids_the_busy():
    u = np.random.Generator(np.random.PCG64(0)).random
    rr = make_balancer("round_robin", ["a", "b", "c"], u)
    for _ in range(300):
        rr.done(rr.choose())
    assert rr.routed == {"a": 100, "b": 100, "c": 100}
    # P2C never picks the instance with the most outstanding requests when two differ.
    p2c = make_balancer("p2c", ["a", "b"], u)
    p2c.outstanding["a"] = 5
    assert [p2c.choose() for _ in range(5)] == ["b"] * 5  # until b has as many in flight as a
    lor = make_balancer("least_outstanding", ["a", "b", "c"], u)
    lor.outstanding.update({"a": 3, "b": 1, "c": 2})
    assert lor.choose() == "b"


def test_fan_out_formula_and_validation():
    assert fan_out_theory(0.01, 100) == 1 - 0.99 ** 100
    import pytest

    with pytest.raises(ValueError):
        fan_out_theory(1.5, 3)
    sim = Simulation(seed=0)
    with pytest.raises(ValueError, match="pool"):
        Service(sim, "x", endpoints={"get": Endpoint(pool="nope")})
    with pytest.raises(ValueError, match="instances"):
        Service(sim, "y", endpoints={"get": Endpoint()}, instances=0)
