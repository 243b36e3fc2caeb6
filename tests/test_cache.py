"""The TTL cache (models/services/cache.py) against its definitions and the stampede arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.resilience.pipeline import BareCaller
from models.services.cache import NOT_FOUND, CacheConfig, CachingCaller, KeyedClient, origin_concurrency, refill_bursts
from simulator import Constant, RpcError, Simulation


def world(seed: int, cfg: CacheConfig, *, rate: float, service_s: float, timeout_s: float = math.inf,
          workers: int = 10_000, handler=None, keys: int = 1):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0))
    origin = sim.node("origin")
    origin.serve("get", handler or (lambda m: sim.now), service=Constant(service_s), workers=workers)
    cache = CachingCaller(sim, cfg, BareCaller(timeout_s))
    KeyedClient(sim, "app", "origin", cache, rate=rate, keys=keys)
    return sim, origin, cache


def bursts(starts, gap: float) -> list[int]:
    """Sizes of groups of origin calls whose starts are closer than ``gap`` to the previous one."""
    sizes, last = [], -math.inf
    for s in sorted(starts):
        if s - last > gap:
            sizes.append(0)
        sizes[-1] += 1
        last = s
    return sizes


def test_config_is_validated_at_construction():
    for kw, field in ((dict(ttl_s=0), "ttl_s"), (dict(ttl_s=math.inf), "ttl_s"),
                      (dict(ttl_s=1, stale_if_error_s=-1), "stale_if_error_s"),
                      (dict(ttl_s=1, ttl_jitter=1.0), "ttl_jitter"), (dict(ttl_s=1, coalesce=1), "coalesce"),
                      (dict(ttl_s=1, early_beta=math.nan), "early_beta")):
        with pytest.raises(ValueError, match=field):
            CacheConfig(**kw)


def test_hit_ratio_of_one_key_is_lambda_t_over_one_plus_lambda_t():
    """Poisson reads at λ, TTL T, origin latency ~0: each expiry costs one miss, then λT hits on
    average (memorylessness: the next read after expiry is the miss), so hit ratio = λT / (1 + λT).
    λ = 10/s, T = 0.5 s: 5/6. ~3,300 cycles: the ratio's standard error is ~0.003; tolerance 0.01."""
    lam, ttl = 10.0, 0.5
    sim, _, cache = world(1, CacheConfig(ttl_s=ttl, coalesce=False), rate=lam, service_s=1e-5)
    sim.run(until=2000)
    df = sim.metrics.requests()
    hits = (df["cache"] == 1).sum()
    assert hits / len(df) == pytest.approx(lam * ttl / (1 + lam * ttl), abs=0.01)
    assert cache.origin_calls == (df["cache"] == 0).sum()  # every miss, and only misses, reach the origin


@pytest.mark.parametrize("rate", [50.0, 1000.0])
def test_coalescing_makes_one_origin_call_per_expiry_whatever_the_concurrency(rate):
    """Single flight: every miss during the origin's latency L waits on the one call, so origin calls never
    overlap and there is one per cycle of length T + L (+ the gap to the next read, ~1/λ)."""
    ttl, lat, dur = 1.0, 0.05, 20.0
    sim, _, cache = world(2, CacheConfig(ttl_s=ttl, coalesce=True), rate=rate, service_s=lat)
    sim.run(until=dur)
    calls = cache.origin_calls_frame()
    assert cache.peak_inflight == 1 and origin_concurrency(calls) == 1
    cycles = dur / (ttl + lat + 1 / rate)
    assert abs(len(calls) - cycles) <= 1.5
    df = sim.metrics.requests()
    assert df["outcome"].isin(["ok", "in_flight"]).all()  # waiting at the end of the run, or served


def test_without_coalescing_an_expiry_costs_one_plus_lambda_l_origin_calls():
    """The stampede: the first read after expiry misses and calls the origin (latency L); every read in the
    next L misses too: 1 + λL calls per expiry. λ = 1000/s, L = 50 ms: 51. ~19 expiries, Poisson(50) each:
    the mean's standard error is ~1.6; tolerance 15 % (~5 standard errors)."""
    lam, lat, ttl = 1000.0, 0.05, 1.0
    sim, _, cache = world(3, CacheConfig(ttl_s=ttl, coalesce=False), rate=lam, service_s=lat)
    sim.run(until=20.0)
    sizes = bursts(cache.origin_calls_frame()["start"], ttl / 2)
    assert np.mean(sizes) == pytest.approx(1 + lam * lat, rel=0.15)
    assert cache.peak_inflight == pytest.approx(1 + lam * lat, rel=0.5)


def test_stale_if_error_never_serves_a_value_older_than_ttl_plus_its_window():
    """The origin is down from t = 5 s to the end: values are served while stale for at most
    stale_if_error_s (age <= ttl + stale_if_error_s), then the failure is passed on."""
    ttl, sie = 1.0, 3.0
    sim, origin, _ = world(4, CacheConfig(ttl_s=ttl, stale_if_error_s=sie), rate=50, service_s=0.01,
                           timeout_s=0.2)
    sim.faults.crash(at=5.0, node="origin")
    sim.run(until=15.0)
    df = sim.metrics.requests()
    served = df[df["outcome"] == "ok"]
    assert served["cache_age_s"].max() <= ttl + sie + 1e-9
    assert (df["cache"] == 3).sum() > 50  # stale-if-error was used
    assert served["cache_age_s"].max() > ttl + sie - 0.3  # ... right up to its limit
    late = df[(df["start"] > 5.0 + ttl + sie + 0.5) & (df["start"] < 14.7)]  # not in flight at the end
    assert len(late) > 100 and (late["outcome"] == "timeout").all()


def test_default_response_when_nothing_usable_is_cached():
    sim, _, _ = world(5, CacheConfig(ttl_s=1.0, use_default=True, default="placeholder"), rate=50,
                      service_s=0.01, timeout_s=0.2)
    sim.faults.crash(at=3.0, node="origin")
    sim.run(until=8.0)
    df = sim.metrics.requests()
    assert (df[df["start"].between(4.5, 7.7)]["outcome"] == "fallback").all()
    assert (df[df["start"] < 2.9]["outcome"] == "ok").all()


def test_stale_while_revalidate_serves_at_once_and_refreshes_in_the_background():
    """After the first fill no read waits for the origin (a hot key is read before its SWR window ends):
    every answer is immediate, no value served is older than ttl + swr, and refreshes are background."""
    ttl, swr = 1.0, 2.0
    sim, _, cache = world(6, CacheConfig(ttl_s=ttl, stale_while_revalidate_s=swr), rate=200, service_s=0.05)
    sim.run(until=20.0)
    df = sim.metrics.requests()
    warm = df[df["start"] > 0.2]
    assert (warm["latency"] == 0).all() and warm["cache_age_s"].max() <= ttl + swr
    calls = cache.origin_calls_frame()
    assert calls["background"].iloc[1:].all() and len(calls) == pytest.approx(20.0 / (ttl + 0.05), abs=2)


def test_negative_caching_caps_origin_calls_for_a_missing_key_at_one_per_ttl():
    def missing(msg):
        raise RpcError(NOT_FOUND)

    neg, dur = 1.0, 10.0
    sim, _, cache = world(7, CacheConfig(ttl_s=5.0, negative_ttl_s=neg), rate=100, service_s=0.01, handler=missing)
    sim.run(until=dur)
    assert cache.origin_calls <= dur / neg + 1
    assert (sim.metrics.requests()["cache"] == 5).sum() > 800  # negative hits
    sim2, _, cache2 = world(7, CacheConfig(ttl_s=5.0), rate=100, service_s=0.01, handler=missing)
    sim2.run(until=dur)
    assert cache2.origin_calls > 500  # without it, a miss per burst of reads (coalesced, not cached)


def test_jitter_spreads_expiries_and_xfetch_refreshes_before_expiry():
    """ttl_jitter = j draws TTLs uniformly in [(1 - j) T, (1 + j) T] (mean T, sd jT/sqrt(3)), looked at on the
    first fill (before any expiry: later, long TTLs are over-represented, the inspection paradox); ~45 keys:
    the mean's standard error is ~0.04 (tolerance 0.15), the sd's ~10 % (tolerance 30 %).
    XFetch (beta = 1) refreshes hot keys early, so after warm-up almost no read waits for the origin."""
    sim, _, cache = world(8, CacheConfig(ttl_s=1.0, ttl_jitter=0.5), rate=500, service_s=0.01, keys=50)
    sim.run(until=0.49)
    ttls = [e.expires_at - e.fetched_at for e in cache.entries.values()]
    assert len(ttls) >= 40 and min(ttls) >= 0.5 and max(ttls) <= 1.5
    assert np.mean(ttls) == pytest.approx(1.0, abs=0.15) and np.std(ttls) == pytest.approx(0.5 / 3**0.5, rel=0.3)
    sim, _, cache = world(9, CacheConfig(ttl_s=1.0, early_beta=1.0), rate=1000, service_s=0.05)
    sim.run(until=20.0)
    df = sim.metrics.requests()
    assert (df[df["start"] > 0.2]["cache"] == 0).sum() <= 3
    assert cache.origin_calls_frame()["background"].sum() >= 15


def test_graceful_degradation_lesson_on_quick():
    from experiments import graceful_degradation as g

    p = g.QUICK
    s = g.run(p, seed=1)["summary"].set_index("policy")
    assert s.loc["no cache", "answered_during"] < 0.01  # the outage is the users' outage
    assert s.loc["TTL cache", "data_during"] < 0.2  # a TTL cache covers only its first TTL
    assert s.loc["TTL cache", "data_during"] < s.loc["stale-while-revalidate", "data_during"] < 0.5
    assert s.loc["stale-if-error", "data_during"] > 0.95  # available ...
    assert s.loc["stale-if-error", "age_max_during_s"] <= p.ttl_s + p.sie_s  # ... with bounded staleness
    assert s.loc["stale-if-error", "age_mean_during_s"] > 2 * s.loc["TTL cache", "age_mean_during_s"]  # ... old
    assert s.loc["default response", "answered_during"] == 1.0  # answered, but mostly without data
    assert s.loc["default response", "default_during"] > 0.8
    assert s.loc["stale-if-error + default", "answered_during"] == 1.0
    assert (s["data_after"] > 0.99).all() and (s["data_before"] > 0.99).all()


def test_cache_stampede_lesson_on_quick():
    from experiments import cache_stampede as c

    p = c.QUICK
    s = c.run(p, seed=1)["summary"].set_index("arm")
    plain, co = s.loc["plain TTL"], s.loc["coalescing"]
    assert plain.peak_origin_concurrency > 3 * p.workers  # the stampede overruns the origin's workers ...
    assert plain.origin_latency_p99_s > 4 * p.service_ms / 1e3  # ... its latency balloons (to the timeout)
    assert plain.origin_timeouts > 0
    assert co.peak_origin_concurrency <= p.keys  # single flight: at most one call per key at once
    assert co.origin_calls_per_key_expiry <= 1.05  # one call per key per expiry (cycles are T + L long)
    assert co.origin_latency_p99_s < 1.2 * p.service_ms / 1e3 + 0.01
    assert s.loc["jittered TTL", "peak_origin_concurrency"] < plain.peak_origin_concurrency  # desynchronised
    assert s.loc["coalescing + jitter", "peak_origin_concurrency"] < co.peak_origin_concurrency
    x = s.loc["XFetch (early refresh)"]
    assert x.peak_origin_concurrency < 0.1 * plain.peak_origin_concurrency and x.reads_waiting_p99_s < 0.01
    assert (s.drop(index=["plain TTL", "jittered TTL"])["reads_failed"] == 0).all()


def test_refill_bursts_end_at_the_first_successful_fill():
    import pandas as pd

    calls = pd.DataFrame({"key": [1, 1, 1, 1, 2, 1],
                          "start": [0.0, 0.05, 0.12, 0.3, 0.0, 5.0],
                          "end": [0.1, 0.2, 0.22, 0.4, 0.5, 5.1],
                          "outcome": ["timeout", "ok", "ok", "ok", "ok", "ok"],
                          "background": [False] * 6})
    b = refill_bursts(calls).set_index(["key", "start"])
    # key 1: the first call timed out, so reads kept missing until the 0.05 call filled at 0.2
    assert b.loc[(1, 0.0), "calls"] == 3 and math.isclose(b.loc[(1, 0.0), "window"], 0.2)
    assert b.loc[(1, 0.3), "calls"] == 1 and b.loc[(1, 5.0), "calls"] == 1
    assert b.loc[(2, 0.0), "calls"] == 1 and math.isclose(b.loc[(2, 0.0), "window"], 0.5)


def test_cache_stampede_bursts_follow_one_plus_lambda_window():
    """Poisson reads at λ per key during the refill window W: E[calls per burst] = 1 + λ E[W]."""
    from experiments import cache_stampede as c

    p = c.QUICK
    s = c.run(p, seed=1)["summary"].set_index("arm")
    lam = p.rate / p.keys
    for arm in ("plain TTL", "jittered TTL"):
        r = s.loc[arm]
        n_bursts = (p.duration_s - p.warmup_s) / p.ttl_s * p.keys          # about one burst per key per TTL
        se = math.sqrt(lam * r.fill_window_mean_s / n_bursts)             # Poisson count per burst
        assert abs(r.calls_per_refill_burst - r.theory_1_plus_lambda_window) < 4 * se + 0.5, (arm, r)
    assert (s.loc[["coalescing", "coalescing + jitter"], "calls_per_refill_burst"] == 1).all()
