"""Each resilience experiment, run with its QUICK preset, shows the direction of its lesson
(with margins wide enough to hold on any seed), and the closed forms behind two of them."""

import math

import pytest

from experiments import backoff_jitter, bulkhead, circuit_breaker, load_balancing, retry_storm, tail_at_scale, timeouts


def by(df, col):
    return df.set_index(col)


def test_retry_storm_is_metastable_without_backoff_and_recovers_with_it():
    s = by(retry_storm.run(retry_storm.QUICK, seed=3)["summary"], "arm")
    p = retry_storm.QUICK
    assert s.loc["aggressive retries", "goodput_after_spike"] < 0.1 * p.rate  # stuck long after the spike
    assert s.loc["aggressive retries", "attempts_per_request_after"] > 0.9 * p.attempts  # every attempt times out
    assert s.loc["backoff + jitter + budget", "goodput_after_spike"] > 0.9 * p.rate
    assert s.loc["backoff + jitter + budget", "offered_load_x_after"] < 1.2


def test_circuit_breaker_fails_fast_and_sheds_load():
    s = by(circuit_breaker.run(circuit_breaker.QUICK, seed=2)["summary"], "arm")
    no, yes = s.loc["no breaker"], s.loc["circuit breaker + fallback"]
    assert no.mean_latency_during_s == pytest.approx(circuit_breaker.QUICK.timeout_s, rel=0.05)
    assert yes.mean_latency_during_s < 0.2 * no.mean_latency_during_s
    assert yes.calls_to_dependency_during < 0.2 * no.calls_to_dependency_during
    assert yes.answered_during == 1.0 and no.answered_during == 0.0


def test_timeouts_and_bulkheads_contain_a_slow_dependency():
    t = timeouts.run(timeouts.QUICK, seed=1)["summary"].set_index(["arm", "endpoint"])
    assert t.loc[("no timeout", "b"), "availability_during"] < 0.3  # cascading failure
    assert t.loc[("too long (2 s)", "b"), "availability_during"] < 0.3
    assert t.loc[("well-chosen (60 ms)", "b"), "availability_during"] > 0.99
    b = bulkhead.run(bulkhead.QUICK, seed=1)["summary"].set_index(["arm", "endpoint"])
    assert b.loc[("shared pool", "b"), "availability_during"] < 0.3
    assert b.loc[("bulkheads (isolated pools)", "b"), "availability_during"] > 0.99
    for df in (t, b):  # everything recovers after the slow period
        assert (df["availability_after"] > 0.95).all()


def test_load_balancers_route_around_a_slow_instance():
    s = by(load_balancing.run(load_balancing.QUICK, seed=1)["summary"], "policy")
    fair = 1 / load_balancing.QUICK.instances
    assert s.loc["round_robin", "share_to_slow"] == pytest.approx(fair, abs=0.002)
    assert abs(s.loc["random", "share_to_slow"] - fair) < 0.03
    for smart in ("least_outstanding", "p2c"):
        assert s.loc[smart, "share_to_slow"] < 0.6 * fair
        assert s.loc[smart, "ok_fraction"] > 0.999
        assert s.loc[smart, "p99_s"] < 0.25 * s.loc["random", "p99_s"]


def test_backoff_without_jitter_costs_n_n_plus_1_over_2_calls():
    """With a fixed network delay, synchronised retries let exactly one of the k remaining
    clients win each wave, so N clients need N + (N-1) + ... + 1 = N(N+1)/2 calls; with the
    blog's random delays any jitter needs far fewer calls and far less time at N = 100."""
    det = backoff_jitter.Params(clients=(5, 20, 50), trials=1, delay_sd_ms=0, strategies=("exponential",))
    s = backoff_jitter.run(det, seed=1)["summary"].set_index("clients")
    for n in det.clients:
        assert s.loc[n, "calls"] == n * (n + 1) // 2
    q = backoff_jitter.run(backoff_jitter.QUICK, seed=1)["summary"].set_index(["strategy", "clients"])
    for j in ("full_jitter", "equal_jitter", "decorrelated_jitter"):
        assert q.loc[(j, 100), "calls"] < 0.65 * q.loc[("exponential", 100), "calls"]
        assert q.loc[(j, 100), "completion_ms"] < 0.2 * q.loc[("exponential", 100), "completion_ms"]
    assert q["all_finished_once"].all()


def test_tail_at_scale_matches_one_minus_one_minus_p_to_the_n():
    """Fraction of slow fan-outs vs 1-(1-p)^n with p the measured leaf tail; binomial tolerance
    of 4 standard errors over the QUICK preset's requests."""
    p = tail_at_scale.QUICK
    s = tail_at_scale.run(p, seed=1)["summary"]
    plain = s[~s.hedged]
    for _, r in plain.iterrows():
        q = r.theory_slow_fraction
        assert abs(r.slow_fraction - q) < 4 * math.sqrt(q * (1 - q) / p.requests) + 0.005
    h = s[s.hedged].iloc[0]
    base = plain[plain.width == h.width].iloc[0]
    assert h.slow_fraction < 0.1 * base.slow_fraction  # ~1-(1-p^2)^n instead of 1-(1-p)^n
    extra = h.leaf_calls_per_request / base.leaf_calls_per_request - 1
    assert 0.02 < extra < 0.1  # ~5% when hedging after the p95
