"""experiments/mesh_retries.py and models/edge/mesh.py: app x sidecar retries multiply (a x b); Envoy's retry
budget caps the sidecar near 1/(1-β); a route timeout longer than the app's deadline sends tries nobody waits for;
a canary with automated rollback exposes users to Σ w_k rate interval P(reached k)."""

import pytest

from experiments import mesh_retries as m
from models.edge import CanaryConfig, EnvoyRetryBudget, EnvoyRetryBudgetConfig, canary_exposure


@pytest.fixture(scope="module")
def quick():
    return m.run(m.QUICK, seed=2)


def test_stacked_retries_multiply_and_a_budget_caps_them(quick):
    s = quick["summary"].set_index("arm")
    p = m.QUICK
    for arm in m.ARMS:
        # the window holds ~400 requests; its ends cut a few trees: 0.3 calls of slack (0.15 with a budget)
        assert s.loc[arm, "calls_per_request"] == pytest.approx(m.theory_calls(p, arm),
                                                                 abs=0.15 if arm == m.ARMS[3] else 0.3)
    assert s.loc[m.ARMS[2], "calls_per_request"] > 2.5 * s.loc[m.ARMS[0], "calls_per_request"]
    assert s.loc[m.ARMS[3], "calls_per_request"] <= p.app_attempts / (1 - p.budget_percent / 100) + 0.05
    assert s.loc[m.ARMS[3], "overflow"] > 0


def test_envoy_budget_limit():
    b = EnvoyRetryBudget(EnvoyRetryBudgetConfig(budget_percent=20, min_retry_concurrency=3))
    b.active = 100
    assert b.limit() == 20
    b.active = 5
    assert b.limit() == 3  # never below min_retry_concurrency
    b.active_retries = 3
    assert not b.allow_retry() and b.overflow == 1


def test_mesh_timeout_longer_than_the_deadline_wastes_tries(quick):
    d = quick["deadline"].set_index("arm")
    long, aligned = m.TIMEOUT_ARMS
    assert d.loc[long, "wasted_per_request"] == pytest.approx(m.wasted_theory(m.QUICK, long), abs=0.02)
    assert d.loc[long, "wasted_per_request"] == pytest.approx(1.0, abs=0.02)  # the 3rd try starts after 1 s
    assert d.loc[aligned, "wasted_per_request"] == 0


def test_canary_exposure(quick):
    c = quick["canary"]
    p = m.QUICK
    clear, subtle = (c[c.version == v] for v in m.VERSIONS)
    assert (c.outcome == "rolled back").all()
    th = m.canary_theory(p, m.VERSIONS[0])
    se = clear.canary_requests.std(ddof=1) / len(clear) ** 0.5
    assert clear.canary_requests.mean() == pytest.approx(th["requests"], abs=4 * se)
    # a clear regression mostly dies at the first step: about w_1 x rate x interval requests
    assert (clear.steps_reached == 1).mean() > 0.6
    assert subtle.canary_requests.mean() > 2 * clear.canary_requests.mean()  # caught later, at a larger weight
    assert subtle.steps_reached.mean() > clear.steps_reached.mean()


def test_canary_exposure_closed_form_limits():
    # an error rate of 1 fails the first check surely: only the first step's traffic is exposed
    r = canary_exposure((1, 5, 25), rate=100, interval_s=10, error_rate=1.0, max_error_rate=0.01)
    assert r["requests"] == pytest.approx(10.0, rel=1e-3) and r["p_promoted"] < 1e-9  # (an empty interval passes)
    ok = canary_exposure((1, 5, 25), rate=100, interval_s=10, error_rate=1e-9, max_error_rate=0.01)
    assert ok["requests"] == pytest.approx(310.0, rel=1e-3) and ok["p_promoted"] > 0.999


def test_validate_rows_pass():
    rows = m.validate(True)
    assert all(c.passed for c in rows), [(c.quantity, c.published, c.measured) for c in rows]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="budget_percent"):
        m.Params(budget_percent=0)
    with pytest.raises(ValueError, match="steps"):
        CanaryConfig(steps=(50.0, 5.0))
