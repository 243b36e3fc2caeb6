"""The metastable-failure model of experiments/retry_storm (Bronson et al., HotOS 2021, §2.1):
the derived stability threshold r * load < C / f, the retry's load amplification, and the
lesson on the QUICK preset."""

import dataclasses

import pytest

from experiments import retry_storm as rs

P = rs.Params()


def test_stable_threshold_is_capacity_over_retries_times_slowdown():
    """Thrashing DB serves C/f; behind a long queue every attempt times out, so it receives r*load."""
    assert rs.stable_threshold(P) == pytest.approx(1 / (P.attempts * P.overload_factor))  # 1/(2*10) = 5%
    three = dataclasses.replace(P, attempts=3)
    assert rs.stable_threshold(three) == pytest.approx(1 / 30)
    # no work amplification: the classic retry storm, stable only below 1/r of capacity
    assert rs.stable_threshold(dataclasses.replace(P, overload_factor=1.0)) == pytest.approx(0.5)
    # a queue bound whose full queue waits less than the timeout: no attempt times out, no doubling (1/f)
    short = dataclasses.replace(P, queue_limit=10, thrash_above=10)  # 10 queued at C/f = 20 q/s wait 0.5 s < 1 s
    assert rs.stable_threshold(short) == pytest.approx(1 / P.overload_factor)
    # a queue bound below the thrashing point: the DB cannot thrash; 1/r if a full queue (300 at C = 200 q/s:
    # 1.5 s) outwaits the timeout, capacity itself if it cannot (50 queued: 0.25 s)
    assert rs.stable_threshold(dataclasses.replace(P, queue_limit=300, thrash_above=400)) == pytest.approx(0.5)
    assert rs.stable_threshold(dataclasses.replace(P, queue_limit=50)) == pytest.approx(1.0)


def test_trigger_backlog_fluid_formulas():
    lam = 0.1 * P.capacity_qps
    # a pause of D holds the first attempts (lam*D) and the retries sent after T (lam*(D-T))
    assert rs.trigger_backlog(P, "pause", 8.0, 0.1) == pytest.approx(lam * (8 + 7))
    # below 1/r of capacity a spike or an outage adds no backlog beyond the bunching at a spike's end
    assert rs.trigger_backlog(P, "outage", 8.0, 0.4) == 0
    assert rs.trigger_backlog(P, "spike", 8.0, 0.2) == 0
    # the edge of each trigger is where its backlog reaches the thrashing point, never below stable
    for trig in rs.TRIGGERS:
        d = rs.derived_threshold(P, trig)
        assert d >= rs.stable_threshold(P)
    assert rs.derived_threshold(P, "pause") == pytest.approx(0.05)


def test_quick_lesson_spike_sticks_aggressive_retries_and_budget_recovers():
    p = rs.QUICK
    out = rs.run(p, seed=5)
    s = out["summary"].set_index("arm")
    agg, good = s.loc["aggressive retries"], s.loc["backoff + jitter + budget"]
    assert agg.goodput_after_spike < 0.1 * p.rate
    assert agg.attempts_per_request_after == pytest.approx(p.attempts, abs=0.05)  # the retry doubles the load
    assert agg.max_queue >= p.queue_limit  # stuck at the queue bound
    assert good.goodput_after_spike > 0.9 * p.rate
    assert good.max_queue < p.thrash_above  # the budget never lets a backlog reach the thrashing point
    assert good.thrashing_s == 0
    sweep = out["sweep"].set_index("load")
    assert sweep.loc[0.03, "recovered"] and not sweep.loc[0.08, "recovered"]  # either side of 5%


def test_amplification_equals_attempts_in_the_stuck_state():
    p = dataclasses.replace(rs.QUICK, attempts=3, sweep_loads=())
    _, row = rs.run_arm(p, 2, rs.ARMS[0])
    assert row["attempts_per_request_after"] == pytest.approx(3, abs=0.05)


def test_measured_threshold_matches_the_derivation():
    """validate(quick): the largest swept load that recovers after a pause is r*load < C/f within
    grid step + finite-window bias (the tolerance is derived in validate, not fitted)."""
    checks = rs.validate(True)
    for c in checks:
        assert c.passed, c


def test_params_are_checked_at_the_door():
    with pytest.raises(ValueError, match="trigger"):
        rs.Params(trigger="meteor")
    with pytest.raises(ValueError, match="sweep_triggers"):
        rs.Params(sweep_triggers=("pause", "flood"))
    with pytest.raises(ValueError, match="duration_s"):
        rs.Params(duration_s=5.0, trigger_at=4.0)
    with pytest.raises(ValueError, match="attempts"):
        rs.Params(attempts=0)
