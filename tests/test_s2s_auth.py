"""Credential rotation for service-to-service auth (experiments/s2s_auth.py, models/edge/auth.py)."""

import math

import pytest

from experiments import s2s_auth as sa
from models.edge.auth import (
    Certificate,
    CertificateAuthority,
    expected_jwks_rejection_s,
    expected_not_yet_valid_s,
)
from simulator import Simulation


@pytest.fixture(scope="module")
def certs():
    return {a: sa.cert_arm(sa.QUICK, 1, a) for a in sa.CERT_ARMS}


def test_closed_forms():
    assert expected_jwks_rejection_s(30.0, 0.0) == pytest.approx(15.0)      # TTL/2
    assert expected_jwks_rejection_s(30.0, 15.0) == pytest.approx(3.75)     # (t - o)^2 / 2t
    assert expected_jwks_rejection_s(30.0, 30.0) == 0.0
    assert expected_not_yet_valid_s(8.0, 5.0) == pytest.approx(5.5)         # s - reload/2
    assert expected_not_yet_valid_s(2.0, 5.0) == pytest.approx(0.4)         # s^2 / 2 reload
    assert Certificate(1, 10.0, 20.0).valid_at(10.0) and not Certificate(1, 10.0, 20.0).valid_at(9.99)


def test_ca_stamps_its_own_clock_and_backdates():
    sim = Simulation(seed=1)
    node = sim.node("ca", clock=dict(offset_s=3.0))
    c = CertificateAuthority(node.clock, 60.0, backdate_s=10.0).issue()
    assert (c.not_before, c.not_after) == (pytest.approx(-7.0), pytest.approx(63.0))


def test_lesson_overlap_and_backdating_remove_rejections(certs):
    no, ov, slow, back = (certs[a] for a in sa.CERT_ARMS)
    assert ov["rejected_fraction"] == 0 and back["rejected_fraction"] == 0
    assert no["rejected_fraction"] > 0.01 and slow["rejected_fraction"] > 0.01
    # only the slow verifier rejects in the slow-clock arm: all its rejections come from one quarter of the calls
    assert slow["slow_verifier_rejected"] == pytest.approx(slow["rejected_fraction"] * sa.QUICK.verifiers, rel=0.15)
    for r in (no, slow):  # given this run's reload phases the windows are exact: Poisson noise only (+drift)
        se = math.sqrt(r["expected_given_phase"] / r["requests"])
        assert abs(r["rejected_fraction"] - r["expected_given_phase"]) <= 4 * se + 0.001


def test_lesson_jwks_rejections_follow_ttl_and_overlap():
    p = sa.QUICK
    rows = [sa.jwks_arm(p, 1, t, f * t) for t in (10.0, 60.0) for f in (0.0, 0.5, 1.0)]
    for r in rows:
        assert abs(r["rejected_fraction"] - r["expected_rejected_fraction"]) <= 4 * r["se"] + 1e-9
    assert rows[3]["rejected_fraction"] > 4 * rows[0]["rejected_fraction"]    # longer TTL, longer window
    assert rows[2]["rejected_fraction"] == rows[5]["rejected_fraction"] == 0.0  # overlap >= TTL: none


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="renew_before_s"):
        sa.Params(renew_before_s=60.0)
    with pytest.raises(ValueError, match="verifiers"):
        sa.Params(verifiers=0)
