"""API versioning, N-1 support and feature-flag rollouts (experiments/api_versioning.py, models/services/flags.py)."""

import math

import pytest

from experiments import api_versioning as av
from models.edge import ApiGateway, Route
from models.services.flags import FeatureFlag, bucket
from simulator import Constant, Simulation


@pytest.fixture(scope="module")
def res():
    return av.run(av.QUICK, seed=1)


def test_closed_forms():
    assert av.not_upgraded(30.0, 30.0) == pytest.approx(math.exp(-1))
    # a short window's average tends to the instantaneous fraction
    assert av.failing_after_removal(30.0, 30.0, 1e-6) == pytest.approx(math.exp(-1), rel=1e-5)


def test_lesson_removing_v1_fails_the_clients_not_yet_upgraded(res):
    sw = res["removal_sweep"]
    assert (abs(sw.failed_fraction - sw.expected) <= 4 * sw.se).all()
    assert sw.failed_fraction.is_monotonic_decreasing          # longer N-1 support, fewer failures


def test_lesson_header_default_latest_breaks_old_clients_additive_breaks_none(res):
    s = res["summary"].set_index("arm")
    url, hdr, add = (s.loc[a] for a in av.ARMS[:3])
    assert add.errors == 0
    assert hdr.errors > 5 * url.errors
    for row in (url, hdr):  # Poisson counts: 4 sqrt(expected) plus the clients' binomial share
        assert abs(row.errors - row.expected_errors) <= 4 * math.sqrt(row.expected_errors) + 0.05 * row.expected_errors
    assert (s.errors == s.errors_old_clients).all()             # only clients still on v1 ever fail


def test_lesson_gradual_flag_limits_the_damage_to_its_first_stage(res):
    s = res["summary"].set_index("arm")
    full, grad = s.loc["flag, all at once"], s.loc["flag, gradual"]
    assert full.flag_halted_at_s == grad.flag_halted_at_s == av.QUICK.release_at + av.QUICK.stage_s
    assert abs(full.errors - full.expected_errors) <= 4 * math.sqrt(full.expected_errors)
    assert grad.errors < full.errors / 30
    assert grad.errors <= grad.expected_errors + 4 * math.sqrt(grad.expected_errors) + 5


def test_flag_is_sticky_and_deterministic():
    f = FeatureFlag("x", [(0.0, 10.0), (5.0, 50.0)])
    on_early = {k for k in map(str, range(2000)) if f.enabled(k, 1.0)}
    on_late = {k for k in map(str, range(2000)) if f.enabled(k, 6.0)}
    assert on_early <= on_late and 150 < len(on_early) < 250 and 900 < len(on_late) < 1100
    assert bucket("a", "x") == bucket("a", "x") != bucket("a", "y")


def test_gateway_routes_on_a_version_header():
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001))
    for v in ("a1", "a2"):
        sim.node(v).on("get", lambda msg, v=v: v)
    ApiGateway(sim, {"s1": ["a1"], "s2": ["a2"]}, [Route("/v1", service="s1"), Route("/v2", service="s2")],
               version_header="Accept-Version", default_version="v1")
    got = []
    c = sim.node("c")
    c.call("gateway", "request", {"path": "/x", "headers": {"Accept-Version": "v2"}}, 1.0, lambda o, v: got.append(v))
    c.call("gateway", "request", {"path": "/x"}, 1.0, lambda o, v: got.append(v))
    sim.run(until=1)
    assert sorted(got) == ["a1", "a2"]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="tau_s"):
        av.Params(tau_s=0.0)
    with pytest.raises(ValueError, match="remove_after_s"):
        av.Params(remove_after_s=200.0)
