"""Service discovery after a crash and probes during a slow start (experiments/service_discovery.py)."""

import dataclasses

import pytest

from experiments import service_discovery as sd
from models.services.probes import ProbeConfig, crash_loop_backoff

P = dataclasses.replace(sd.QUICK, trials=4, rate=3.0)


def test_closed_form_exposure():
    # (k - 1/2) h + R / 2: k = 3, h = 5, R = 30 -> 12.5 + 15
    assert sd.expected_exposure_s(3, 5.0, 30.0) == pytest.approx(27.5)
    assert sd.expected_failed_fraction(sd.QUICK, 5.0, 30.0) == pytest.approx(27.5 / 4 / 60)


def test_lesson_cache_ttl_adds_to_detection_and_matches_the_closed_form():
    short = sd.crash_summary(P, 1, 1.0, "client", 1.0)
    long = sd.crash_summary(P, 1, 1.0, "client", 30.0)
    server = sd.crash_summary(P, 1, 1.0, "server", P.router_refresh_s)
    assert long["failed_fraction"] > 3 * short["failed_fraction"]          # the TTL dominates
    assert server["failed_fraction"] < long["failed_fraction"] / 3
    for r in (short, long, server):
        # exposure: within 4 SE of the uniform phases (+50 ms of round trips)
        assert abs(r["exposure_s"] - r["expected_exposure_s"]) <= 4 * r["exposure_se_s"] + 0.05
        # failed fraction: Poisson noise on the count plus the exposure's noise, 4 SE
        se = (r["expected_failed_fraction"] / r["requests"]) ** 0.5 + r["exposure_se_s"] / P.instances / P.window_s
        assert abs(r["failed_fraction"] - r["expected_failed_fraction"]) <= 4 * se


def test_lesson_readiness_and_the_liveness_restart_loop():
    rows = {a: sd.slow_start(P, 1, a) for a in sd.SLOW_ARMS}
    ok, no_ready, loop = rows["readiness + liveness"], rows["no readiness probe"], rows["liveness delay too short"]
    assert ok["failed"] == 0 and ok["restarts"] == 0
    assert P.startup_s < ok["listed_at_s"] < P.startup_s + 3          # listed at the first check after start-up
    # every request the booting instance gets fails: Poisson count, 4 SE of rate x clients x startup / n
    assert abs(no_ready["failed"] - no_ready["expected_failed"]) <= 4 * no_ready["expected_failed"] ** 0.5
    assert loop["restarts"] == loop["expected_restarts"] >= 3 and loop["requests_to_new"] == 0


def test_probe_rules():
    assert ProbeConfig(initial_delay_s=10, period_s=5, failure_threshold=3).kills_slow_start(40)
    assert not ProbeConfig(initial_delay_s=30, period_s=5, failure_threshold=3).kills_slow_start(40)
    assert [crash_loop_backoff(i) for i in (1, 2, 3, 6, 7)] == [10, 20, 40, 300, 300]
    with pytest.raises(ValueError, match="failure_threshold"):
        ProbeConfig(failure_threshold=0)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="instances"):
        sd.Params(instances=1)
    with pytest.raises(ValueError, match="window_s"):
        sd.Params(window_s=20.0)
