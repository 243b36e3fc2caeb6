"""The anti-pattern experiments: their formulas (a^k, k x RTT, N x RTT, hit ratios, queue growth)
and each lesson on its QUICK preset. Each experiment runs once per module (cached fixtures)."""

import pytest

from experiments import distributed_monolith as dm


@pytest.fixture(scope="module")
def monolith():
    return dm.run(dm.QUICK, seed=3)["summary"]


def test_sync_chain_availability_is_the_product_of_the_services(monolith):
    """a^k within 3 standard errors; the SE counts the binomial term and the outages'
    autocorrelation (requests close in time share an outage), see ``dm.theory``."""
    sync = monolith[monolith.arm == dm.ARMS[0]]
    for r in sync.itertuples():
        assert abs(r.availability - dm.QUICK.availability ** r.k) <= 3 * r.se, r
    # the formula's first ingredient: each service's scheduled up fraction is a, the product a^k
    assert abs(sync.set_index("k").loc[8, "measured_up_product"] - dm.QUICK.availability ** 8) < 0.1


def test_sync_latency_adds_up_async_does_not(monolith):
    """Mean latency of ok requests = k x (work + RTT) within 5 % (sample mean of thousands of
    requests: its SE is ~1 %); the async front door costs one work and two round trips, any k."""
    for r in monolith.itertuples():
        assert abs(r.latency_mean_ms - r.latency_theory_ms) <= 0.05 * r.latency_theory_ms, r
    sync = monolith[monolith.arm == dm.ARMS[0]].set_index("k")
    assert sync.loc[8, "latency_mean_ms"] > 3.5 * sync.loc[2, "latency_mean_ms"]


def test_async_user_path_depends_on_one_service(monolith):
    a = monolith[monolith.arm == dm.ARMS[1]].set_index("k")
    sync = monolith[monolith.arm == dm.ARMS[0]].set_index("k")
    for _k, r in a.iterrows():
        assert abs(r.availability - dm.QUICK.availability) <= 3 * r.se  # a, not a^k
    assert a.loc[8, "availability"] - sync.loc[8, "availability"] > 0.2  # 0.95 vs 0.66
    # the price: the downstream work lags the user's 'ok' (outages become delay), more with k
    assert a.loc[8, "staleness_p99_ms"] > 100 and a.loc[8, "staleness_p50_ms"] > a.loc[2, "staleness_p50_ms"]


def test_theory_standard_error_reduces_to_binomial_without_correlation():
    """With outages far shorter than the gap between requests, the autocorrelation term
    vanishes: SE -> binomial sqrt(p(1-p)/n)."""
    p = dm.Params(mttr_s=1e-6, rate=1.0, ks=(4,))
    th = dm.theory(p, 4)
    assert th["se"] == pytest.approx(th["se_binomial"], rel=1e-3)
    assert th["availability"] == pytest.approx(0.95 ** 4)
