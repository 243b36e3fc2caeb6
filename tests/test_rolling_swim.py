"""Rolling deploys (experiments/rolling_deploy.py) and the SWIM failure detector (models/coordination/swim.py)."""

import math

import pytest

from experiments import rolling_deploy as rd


@pytest.fixture(scope="module")
def rolled():
    return rd.run(rd.QUICK, seed=1)


def test_theory_is_the_mismatched_pair_probability():
    # c v2 clients, a fraction f of instances on v2: P(mismatch) = (1 - c) f + c (1 - f)
    assert rd.theory("breaking", 0.2, 0.0) == pytest.approx(0.2)
    assert rd.theory("breaking", 0.2, 1.0) == pytest.approx(0.8)
    assert rd.theory("breaking", 0.2, 0.5) == pytest.approx(0.5)
    assert rd.theory("additive", 0.2, 0.5) == 0.0


def test_lesson_additive_change_has_no_errors(rolled):
    s = rolled["summary"].set_index("arm")
    assert s.loc["additive, readiness check", "failed_rate_rollout"] == 0.0
    assert s.loc["additive, readiness check", "timeouts"] == 0


def test_lesson_breaking_change_fails_mismatched_pairs_within_binomial_se(rolled):
    # Each request's mismatch probability is known from the balancer's membership when it was routed;
    # errors are independent Bernoulli draws, so the rollout's error rate is within 4 SE of their mean.
    s = rolled["summary"].set_index("arm").loc["breaking, readiness check"]
    assert abs(s.error_rate_rollout - s.error_rate_theory) <= 4 * s.error_rate_se
    # every error is exactly a mismatched (client version, instance version) pair
    r = rolled["requests"]
    b = r[r.arm == "breaking, readiness check"]
    assert ((b.outcome == "error") == (b.client_version != b.instance_version)).all()


def test_lesson_breaking_errors_grow_with_the_rollouts_progress(rolled):
    tl = rolled["timeline"]
    b = tl[tl.arm == "breaking, readiness check"]
    p = rd.QUICK
    early = b[b.t < p.start_s].failed_rate.mean()
    late = b[b.t >= rd.rollout_end(p)].failed_rate.mean()
    assert early == pytest.approx(p.v2_clients, abs=0.08)        # only v2 clients fail before the rollout
    assert late == pytest.approx(1 - p.v2_clients, abs=0.08)     # only v1 clients fail after it


def test_lesson_readiness_check_holds_traffic_until_warm(rolled):
    s = rolled["summary"].set_index("arm")
    live, ready = s.loc["additive, liveness only"], s.loc["additive, readiness check"]
    assert ready.timeouts == 0 and live.timeouts > 50
    # Poisson-ish count: within 4 sqrt(theory) of Σ P(routed to a cold instance) x exp(-timeout / cold_s)
    # (+5% for the neglected warm work and network time, which only lengthen a cold request)
    tol = 4 * math.sqrt(live.timeouts_theory) + 0.05 * live.timeouts_theory
    assert abs(live.timeouts - live.timeouts_theory) <= tol
    assert live.latency_p99_ms > 5 * ready.latency_p99_ms  # the cold requests that do succeed are slow


def test_params_refuse_overlapping_restarts():
    with pytest.raises(ValueError, match="step_s"):
        rd.Params(step_s=3.0)


def test_figure(rolled, tmp_path):
    figs = rd.plot(rolled, rd.QUICK)
    assert "rolling_deploy" in figs
    figs["rolling_deploy"].savefig(tmp_path / "rd.png")
