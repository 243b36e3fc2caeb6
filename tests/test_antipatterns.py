"""The anti-pattern experiments: their formulas (a^k, k x RTT, N x RTT, hit ratios, queue growth)
and each lesson on its QUICK preset. Each experiment runs once per module (cached fixtures)."""

import math

import pytest

from experiments import chatty_services as cs
from experiments import distributed_monolith as dm
from experiments import shared_database as sd


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


@pytest.fixture(scope="module")
def chatty():
    return cs.run(cs.QUICK, seed=3)["summary"]


def test_chatty_latency_is_n_round_trips(chatty):
    """Mean = N x (WAN RTT + work) within 6 % (~800 operations; a single WAN round trip has a
    coefficient of variation ~0.35, so the N = 1 sample mean has an SE ~1.2 %: 6 % is ~5 SE, less
    relative noise for larger N)."""
    c = chatty[chatty.arm == cs.ARMS[0]]
    for r in c.itertuples():
        assert r.latency_mean_theory_ms == pytest.approx(r.n * (2 * cs.QUICK.wan_ms * math.exp(cs.SIGMA ** 2 / 2)
                                                                + cs.QUICK.work_ms))
        assert abs(r.latency_mean_ms - r.latency_mean_theory_ms) <= 0.06 * r.latency_mean_theory_ms, r


def test_chatty_tail_grows_with_n_composed_tail_does_not(chatty):
    """p99 of the sum of N round trips vs its Monte Carlo within 15 % (an empirical p99 of ~800
    samples rests on ~8 points); it rises with N, while one WAN trip + max of N LAN calls barely moves."""
    c = chatty[chatty.arm == cs.ARMS[0]].set_index("n")
    comp = chatty[chatty.arm == cs.ARMS[1]].set_index("n")
    for r in chatty.itertuples():
        assert abs(r.latency_p99_ms - r.latency_p99_theory_ms) <= 0.15 * r.latency_p99_theory_ms, r
    assert c.latency_p99_ms.is_monotonic_increasing
    lo, hi = min(cs.QUICK.ns), max(cs.QUICK.ns)
    assert c.loc[hi, "latency_p99_ms"] > 5 * c.loc[lo, "latency_p99_ms"]
    assert comp.loc[hi, "latency_p99_ms"] < 1.3 * comp.loc[lo, "latency_p99_ms"]
    assert c.loc[hi, "latency_mean_ms"] > 10 * comp.loc[hi, "latency_mean_ms"]  # the lesson: compose


def test_cache_hit_ratio_and_backend_load(chatty):
    """Per key, a miss opens a TTL window with rate/keys x TTL hits on average:
    h = x / (1 + x); binomial SE over ~800 lookups ~0.017, tolerance 0.05."""
    k = chatty[chatty.arm == cs.ARMS[2]]
    for r in k.itertuples():
        assert abs(r.hit_ratio - cs.hit_ratio(cs.QUICK)) <= 0.05
        assert r.backend_calls_per_op == pytest.approx(r.n * (1 - r.hit_ratio))
        assert r.latency_mean_ms < chatty[(chatty.arm == cs.ARMS[1]) & (chatty.n == r.n)].latency_mean_ms.iloc[0]


@pytest.fixture(scope="module")
def shared():
    return sd.run(sd.QUICK, seed=3)["summary"].set_index("arm")


def test_shared_pool_spike_takes_the_quiet_service_down_and_the_fixes_do_not(shared):
    sh, each, cap = (shared.loc[a] for a in sd.ARMS)
    assert sh.orders_availability_before == 1.0
    assert sh.orders_availability_during < 0.5 and sh.orders_availability_2s_after < 0.5  # the backlog outlives it
    assert each.orders_availability_during >= 0.99 and cap.orders_availability_during >= 0.99
    for r in (sh, each, cap):
        assert r.reports_availability_during < 0.5  # the spiking service is overloaded in every design


def test_shared_pool_queue_passes_the_timeout_at_t_star(shared):
    """Queue grows at lambda_a + peak_b - mu; a new query's FIFO wait Q/mu passes the timeout at
    t* = timeout x mu / growth. The first query to wait it out comes a little earlier (waits
    scatter around Q/mu): 25 % tolerance."""
    r = shared.loc[sd.ARMS[0]]
    assert r.t_star_theory_s == pytest.approx(0.5 * 2000 / (300 + 2500 - 2000))
    assert abs(r.orders_first_timeout_s - r.t_star_theory_s) <= 0.25 * r.t_star_theory_s


def test_per_service_cap_is_an_erlang_loss_system(shared):
    """The capped, spiking service's semaphore (c = connections/2, no wait) refuses Erlang B of
    its offered load; ~10,000 spike requests: binomial SE ~0.005, tolerance 0.03 (the first
    milliseconds of the spike are a transient)."""
    assert sd.erlang_b(2.0, 2) == pytest.approx(0.4)  # E^c/c! / sum_k E^k/k! = 2 / 5
    r = shared.loc[sd.ARMS[2]]
    assert abs(r.reports_availability_during - r.reports_during_theory) <= 0.03
    assert r.reports_p99_during_ms < 1e3 * sd.QUICK.db_timeout_s / 2  # it fails fast instead of queueing
