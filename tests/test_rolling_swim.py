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


# -- SWIM -----------------------------------------------------------------------------------------
from models.coordination.swim import SwimConfig, SwimGroup  # noqa: E402
from simulator import LogNormal, Simulation  # noqa: E402

MEMBERS = [f"m{i}" for i in range(8)]


def _swim(seed, config, fault):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5))
    g = SwimGroup(sim, MEMBERS, config)
    fault(sim)
    return sim, g


def test_swim_config_is_checked():
    with pytest.raises(ValueError, match="ping_timeout_s"):
        SwimConfig(period_s=1.0, ping_timeout_s=0.5)
    with pytest.raises(ValueError, match="k must be"):
        SwimGroup(Simulation(seed=1), ["a", "b", "c"], SwimConfig(k=3))


def test_swim_declares_a_crash_failed_within_the_bound():
    # A prober's randomised round robin reaches every member within 2(n-1) - 1 periods (§4.3), the suspicion
    # is raised at the end of that period, and confirmed suspicion_periods x T later: worst case
    # T x (2(n-1) + suspicion_periods) after the crash. The mean first suspicion is about e/(e-1) T (§3.1: the
    # chance that nobody probes a member in a period is (1 - 1/(n-1))^(n-1) ~ 1/e) plus up to one period
    # for the end of the probing period.
    c = SwimConfig(period_s=1.0, suspicion_periods=3.0)
    n = len(MEMBERS)
    sus, fail = [], []
    for seed in range(12):
        sim, g = _swim(seed, c, lambda sim: sim.faults.crash(10.0, "m3"))
        sim.run(until=10.0 + c.period_s * (2 * (n - 1) + c.suspicion_periods) + 6 * math.log2(n))
        fs, ff = g.first("m3", "suspect", 10.0), g.first("m3", "failed", 10.0)
        assert ff - 10.0 <= c.period_s * (2 * (n - 1) + c.suspicion_periods)
        assert ff - fs == pytest.approx(c.suspicion_periods * c.period_s, abs=1e-6)  # unrefuted suspicion
        # dissemination: every live member has learnt it (infection-style, O(log n) periods)
        assert all(g.view(o, "m3") == "failed" for o in MEMBERS if o != "m3")
        # and nobody alive was ever suspected
        assert not [e for e in g.events if e[2] != "m3" and e[3] != "alive"]
        sus.append(fs - 10.0)
        fail.append(ff - 10.0)
    assert sum(sus) / len(sus) <= c.period_s * (math.e / (math.e - 1) + 1)


def test_swim_indirect_probes_save_a_member_behind_one_way_loss():
    def cut(sim):
        sim.faults.one_way(5.0, ["m0"], ["m3"])  # m0's pings never reach m3; everyone else's do

    for k, susp, declared in ((3, 3.0, False), (3, 0.0, False), (0, 0.0, True)):
        sim, g = _swim(1, SwimConfig(k=k, suspicion_periods=susp), cut)
        sim.run(until=40.0)
        failed = [e for e in g.events if e[3] == "failed"]
        if declared:  # a direct-only detector declares the live m3 dead (and gossips it to everyone)
            assert any(e[1] == "m0" and e[2] == "m3" for e in failed)
        else:  # k other members ping m3 for m0 and relay its ack: no suspicion at all
            assert not [e for e in g.events if e[3] != "alive"]


def test_swim_suspicion_lets_a_paused_member_refute():
    # A 2 s pause (GC-like): with no suspicion period the member is declared failed; with 3 periods it
    # hears the suspicion after the pause and refutes it with a higher incarnation.
    def pause(sim):
        sim.faults.pause(10.0, "m3", 2.0)

    for susp, declared in ((0.0, True), (3.0, False)):
        sim, g = _swim(2, SwimConfig(suspicion_periods=susp), pause)
        sim.run(until=30.0)
        assert (g.first("m3", "failed") < math.inf) == declared
        if not declared:
            assert any(e[2] == "m3" and e[3] == "alive" and e[4] >= 1 for e in g.events)  # the refutation
