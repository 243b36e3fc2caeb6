"""Distributions: batched samplers reproduce each law's closed-form mean (within 5 standard
errors of the sample mean) and reject bad parameters with a clear message."""

import math

import numpy as np
import pytest

from simulator import Constant, Empirical, Exponential, LogNormal, Mixture, Normal, Pareto, Uniform
from simulator.distributions import Distribution

N = 200_000


@pytest.mark.parametrize("dist", [
    Constant(0.003), Uniform(0.001, 0.005), Exponential(0.004), Normal(0.01, 0.004),
    Normal(0.001, 0.002), LogNormal(0.002, 0.5), Pareto(0.001, 3.5), Empirical([0.001, 0.002, 0.01]),
    Mixture([(0.99, Constant(0.001)), (0.01, Exponential(0.1))]),
])
def test_sample_mean_matches_closed_form(dist):
    rng = np.random.Generator(np.random.PCG64(1))
    s = dist.sampler(rng)
    xs = np.array([s() for _ in range(N)])
    assert (xs >= 0).all()
    sd = xs.std() if xs.std() > 0 else 1e-12
    assert abs(xs.mean() - dist.mean) < 5 * sd / math.sqrt(N) + 1e-15


def test_sampler_keeps_numpy_order():
    d = Exponential(1.0)
    a = d.sampler(np.random.Generator(np.random.PCG64(3)), batch=7)
    b = np.random.Generator(np.random.PCG64(3)).exponential(1.0, 21)
    assert [a() for _ in range(21)] == b.tolist()


def test_pareto_tail():
    """P(X > x) = (scale / x) ** alpha."""
    d = Pareto(1.0, 2.0)
    xs = d.draw(np.random.Generator(np.random.PCG64(2)), N)
    for x in (2.0, 5.0):
        p = (1.0 / x) ** 2
        assert abs((xs > x).mean() - p) < 5 * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("make,msg", [
    (lambda: Exponential(0), "Exponential.mean_s"), (lambda: Uniform(2, 1), "Uniform.high"),
    (lambda: LogNormal(-1, 0.5), "LogNormal.median"), (lambda: Pareto(1, 0), "Pareto.alpha"),
    (lambda: Constant(-0.1), "Constant.value"), (lambda: Empirical([]), "Empirical.samples"),
    (lambda: Mixture([(0, Constant(1))]), "Mixture weights"), (lambda: Normal(-1, 0.1), "Normal.mu/sigma"),
])
def test_bad_parameters(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_round_trip_as_data():
    d = Mixture([(0.9, LogNormal(0.002, 0.5)), (0.1, Pareto(0.01, 1.5))])
    assert Distribution.from_dict(d.to_dict()) == d
