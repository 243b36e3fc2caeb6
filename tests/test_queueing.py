"""The kernel against queueing theory: M/M/1 and M/M/c built from Node + Network.

Servers are kernel nodes serving with ``node.serve`` (c FIFO workers, exponential service);
clients are Poisson (``PoissonClient``) over a zero-latency, loss-free network, so the
response time a client sees is the sojourn time of the queue.

Tolerance: sojourn times of successive customers are strongly autocorrelated, so the
standard error of one run's mean is not sigma/sqrt(n). We use the method of independent
replications: R runs with different seeds give R independent means; their sample standard
error SE is an honest estimate, and theory must lie within 4 SE of the grand mean (a false
alarm rate below 1e-3 for a t-statistic with R-1 = 11 degrees of freedom is ~4.4 SE; 4 SE
keeps it near 2e-3) — and the SE itself must be small (< 3% of theory), or the test would be
too weak to mean anything.
"""

import math

import numpy as np
import pytest

from models.services import PoissonClient
from simulator import Constant, Exponential, Simulation


def erlang_c(c: int, a: float) -> float:
    """P(an arrival waits) in M/M/c with offered load a = lambda/mu (Erlang C formula)."""
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def run_queue(seed: int, lam: float, mean_s: float, c: int, n: int, warmup: int):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0), loss=0.0)
    pool = sim.node("server").serve("get", service=Exponential(mean_s), workers=c)
    PoissonClient(sim, "client", ["server"], rate=lam, limit=n)
    sim.run(until=n / lam * 3)
    df = sim.metrics.requests()
    assert (df["outcome"] == "ok").all()
    return float(df["latency"].iloc[warmup:].mean()), pool.waited / pool.arrivals


def replicate(lam, mean_s, c, n=20_000, warmup=1_000, reps=12):
    res = np.array([run_queue(seed, lam, mean_s, c, n, warmup) for seed in range(reps)])
    means, waits = res[:, 0], res[:, 1]
    return (means.mean(), means.std(ddof=1) / math.sqrt(reps),
            waits.mean(), waits.std(ddof=1) / math.sqrt(reps))


def test_mm1_mean_response_time():
    lam, mu = 125.0, 250.0  # rho = 0.5, mean service 4 ms
    theory = 1 / (mu - lam)  # M/M/1 mean sojourn time
    mean, se, pwait, se_w = replicate(lam, 1 / mu, c=1)
    assert se < 0.03 * theory
    assert abs(mean - theory) < 4 * se, (mean, theory, se)
    # In M/M/1 an arrival waits iff the server is busy: P = rho (PASTA).
    assert abs(pwait - lam / mu) < 4 * se_w + 1e-9


@pytest.mark.parametrize("c,rho", [(4, 0.75), (3, 0.6)])
def test_mmc_erlang_c(c, rho):
    mu = 250.0
    lam = rho * c * mu
    a = lam / mu
    pw = erlang_c(c, a)
    theory = pw / (c * mu - lam) + 1 / mu  # mean sojourn: Erlang-C wait + service
    mean, se, pwait, se_w = replicate(lam, 1 / mu, c=c)
    assert se < 0.03 * theory
    assert abs(mean - theory) < 4 * se, (mean, theory, se)
    assert abs(pwait - pw) < 4 * se_w, (pwait, pw, se_w)


def test_littles_law_on_the_worker_pool():
    """L = lambda W: time-average number in system equals arrival rate x mean sojourn."""
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.0))
    pool = sim.node("server").serve("get", service=Exponential(0.004), workers=2)
    PoissonClient(sim, "client", ["server"], rate=400.0, stop_at=50.0)
    area = [0.0, 0.0, 0.0]  # integral of N(t), last t

    def sample():
        n = pool.busy + len(pool.queue)
        area[0] += n * 0.001
        sim.at(0.001, sample)

    sim.at(0.0, sample)
    sim.run(until=50.0)
    df = sim.metrics.requests()
    done = df[df["outcome"] == "ok"]
    lam_hat = len(df) / 50.0
    L = area[0] / 50.0
    W = float(done["latency"].mean())
    # Discretised integral (1 ms grid vs 4 ms service) and end effects: allow 3%.
    assert L == pytest.approx(lam_hat * W, rel=0.03)
