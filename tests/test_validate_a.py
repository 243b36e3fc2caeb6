"""Group a's reproductions (resilience and services): each experiment's quick ``validate`` rows
pass, and each tolerance is tight enough that a naive wrong formula would miss."""

from __future__ import annotations

import importlib
import math

import pytest


def _checks(name: str):
    checks = importlib.import_module(f"experiments.{name}").validate(True)
    assert checks, name
    for c in checks:
        assert c.passed, c
        assert c.tolerance > 0 or c.measured == c.published, c
    return checks


def _misses(c, wrong: float) -> bool:
    """A naive alternative ``wrong`` lies outside the row's tolerance (so the row could fail)."""
    return abs(wrong - c.measured) > c.tolerance


def test_circuit_breaker_timing_follows_resilience4j_state_machine():
    opening, cycle = _checks("circuit_breaker")
    assert _misses(opening, 0.5)  # naive: opens one timeout after the crash (forgets the count window)
    assert _misses(cycle, 2.0)  # naive: a cycle is just the open wait (forgets the trial calls' timeout)
    assert cycle.published == pytest.approx(2.0 + 5 / 200 + 0.5)


def test_bulkhead_without_a_queue_is_erlang_b():
    from experiments.bulkhead import erlang_b

    isolated, shared, isolation = _checks("bulkhead")
    assert erlang_b(1, 1.0) == pytest.approx(0.5) and erlang_b(2, 1.0) == pytest.approx(0.2)  # textbook values
    assert _misses(isolated, 0.0)  # naive: rho = 0.8 < 1, so nothing is rejected
    assert _misses(isolated, shared.published)  # pooling matters: B(20, 16) is not B(10, 8)
    assert isolation.published == 1.0 and isolation.tolerance < 0.01


def test_timeouts_cut_off_the_exponential_tail():
    from experiments.timeouts import cut_off_fraction

    short, chosen = _checks("timeouts")
    # Without network delay the tail is exactly exp(-T/s); the RTT (~1 ms) shifts it by ~e^0.1.
    assert cut_off_fraction(0.02) / math.exp(-2) == pytest.approx(math.exp(0.1 * math.exp(0.045)), rel=1e-3)
    assert _misses(short, 0.0)  # naive: the mean service (10 ms) is below the timeout, so nothing is cut off
    assert _misses(chosen, 0.01)  # naive: a timeout "at the p99" cuts off 1%; 60 ms is above it


def test_load_balancing_random_is_mm1_and_p2c_is_the_supermarket_model():
    from experiments.load_balancing import supermarket_sojourn

    random, p2c = _checks("load_balancing")
    assert supermarket_sojourn(0.5, 1) == pytest.approx(2.0)
    assert supermarket_sojourn(0.7, 2) == pytest.approx(1 + 0.7 ** 2 + 0.7 ** 6 + 0.7 ** 14 + 0.7 ** 30, rel=1e-6)
    assert _misses(p2c, random.published)  # two choices are not one: the M/M/1 figure is far outside
    assert _misses(random, p2c.published)
    # P2C is measured with no network time (the supermarket model's instantaneous queue lengths):
    # the limit plus the experiment's four ~0.5 ms hops (the old row's figure) is outside the tolerance.
    assert "no network time" in p2c.setup and not p2c.cause
    assert _misses(p2c, p2c.published + 4 * 0.5 * math.exp(0.3 ** 2 / 2))


def test_retry_amplification_is_a_to_the_l():
    every, healthy, top, budget = _checks("retry_amplification")
    assert (every.published, healthy.published, top.published, budget.published) == (81, 1, 3, 1)
    assert _misses(every, 3 * 4)  # naive: retries add up (a x L) rather than multiply
    assert _misses(every, 64)  # the SRE book's 64x counts retries; a^L counts attempts


def test_graceful_degradation_ttl_cache_follows_renewal_theory():
    import dataclasses

    from experiments.graceful_degradation import QUICK, ttl_answered_during

    ttl, both = _checks("graceful_degradation")
    one_hot_key = dataclasses.replace(QUICK, keys=1, rate=1000.0)
    assert ttl_answered_during(one_hot_key) == pytest.approx(QUICK.ttl_s / 2 / QUICK.outage_s, rel=0.02)
    assert _misses(ttl, QUICK.ttl_s / QUICK.outage_s)  # naive: every entry was fresh for a whole ttl at the crash
    assert _misses(ttl, 0.0)  # naive: a TTL cache answers nothing once its origin is down
    assert both.published == 1.0


def test_cache_stampede_xfetch_lead_is_gumbel_and_bursts_are_one_plus_lambda_window():
    xfetch, plain, coalesced = _checks("cache_stampede")
    assert xfetch.published == pytest.approx(0.5772, abs=1e-4)  # Euler's gamma, the Gumbel mean
    assert _misses(xfetch, 1 - 2.3)  # naive: refresh one delta early (lead/delta = 1; ln(100 x 0.1) = 2.3)
    assert _misses(plain, 1.0) and _misses(plain, 1 + 10.0 * 2.0 / 10)  # not 1; not lambda x ttl / keys
    assert coalesced.measured == 1.0


def test_queue_discipline_fifo_is_mmc_then_metastable():
    from experiments.queue_discipline import mmc_sojourn_quantile

    p50, p99, attempts, ok = _checks("queue_discipline")
    assert mmc_sojourn_quantile(0.5, 1, 50.0, 0.01) == pytest.approx(0.02 * math.log(2), rel=1e-6)  # M/M/1: Exp
    assert _misses(p99, 1e3 * 0.02 * math.log(100))  # naive: service time's p99 only, no queueing
    assert _misses(p50, 1e3 * 0.02 * math.log(2))
    assert attempts.published == 2 and ok.published == 0


def test_outlier_detection_follows_envoy_and_the_retry_arithmetic():
    plain, retried, attempts, to_eject, per_ejection, sweep = _checks("outlier_detection")
    assert (plain.published, retried.published, attempts.published) == pytest.approx((0.2, 0.008, 1.24))
    assert _misses(retried, 0.2 / 3)  # naive: retries divide the error rate by the attempts
    assert _misses(to_eject, 5 / 100)  # naive: c errors at the full rate (forgets round robin's 1-in-n)
    assert per_ejection.measured == 5.0 and sweep.measured == 0.0


def test_rolling_deploy_breaking_error_rate_and_cold_timeouts():
    breaking, timeouts, additive = _checks("rolling_deploy")
    assert _misses(breaking, 1 - 0.2) and _misses(breaking, 0.2)  # neither the end state nor the start
    assert _misses(timeouts, 150 * 4 * math.exp(-0.5) / 4)  # naive: one instance's cold share only
    assert _misses(timeouts, 150 * 4 * math.exp(-0.5) * 4)  # naive: every cold instance takes all traffic
    assert additive.measured == 0.0


def test_shared_database_t_star_and_erlang_b_caps():
    shared, reports, orders = _checks("shared_database")
    assert shared.published == pytest.approx(0.5 * 2000 / (300 + 2500 - 2000) / 2.0)
    assert _misses(shared, 1.0)  # naive: the quiet service is unaffected by another's spike
    assert _misses(reports, 1.0) and _misses(reports, 1000 / 2500)  # not lossless; not capacity/offered
    assert orders.published > 0.99


def test_chatty_services_n_round_trips_and_ttl_hit_ratio():
    chatty, hits = _checks("chatty_services")
    rtt = 2 * 20 * math.exp(0.5 ** 2 / 2)
    assert _misses(chatty, 20 * rtt)  # naive: round trips only, forgetting each call's work
    assert _misses(chatty, 20 * 2 * 20)  # naive: the median hop (20 ms) taken for the mean
    assert _misses(hits, 1 - math.exp(-2.0))  # naive: P(another read within a TTL)


def test_distributed_monolith_a_to_the_k_and_latencies_add():
    sync, latency, async_ = _checks("distributed_monolith")
    assert sync.published == pytest.approx(0.95 ** 8, rel=1e-4) and async_.published == 0.95
    assert _misses(sync, 0.95)  # naive: the chain is as available as one service
    assert _misses(latency, latency.published / 8)  # naive: deployed apart, so latency of one hop
