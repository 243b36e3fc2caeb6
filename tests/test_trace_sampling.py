"""Head vs tail trace sampling and log buffers under an incident (experiments/trace_sampling.py,
simulator/observe/sampling.py)."""

import math

import numpy as np
import pytest

from experiments import trace_sampling as ts
from simulator import Simulation
from simulator.observe.sampling import LogBuffer, head_sampled, tail_kept_fraction, tail_sampled


@pytest.fixture(scope="module")
def res():
    return ts.run(ts.QUICK, seed=1)


def test_closed_forms():
    assert tail_kept_fraction(2.0, 50) == pytest.approx(1.0)
    assert tail_kept_fraction(1000.0, 10) == pytest.approx(0.01, rel=1e-6)   # the budget binds: b / mean
    p = ts.QUICK
    assert ts.expected_lost(p) == pytest.approx((500 - 100) * 10 - 500)


def test_head_sampling_is_a_deterministic_ratio_of_trace_ids():
    a = head_sampled(7, 20_000, 0.1)
    assert np.array_equal(a, head_sampled(7, 20_000, 0.1))
    assert abs(a.mean() - 0.1) <= 4 * math.sqrt(0.09 / 20_000)
    assert (head_sampled(7, 20_000, 0.2) >= a).all()                  # consistent: a higher ratio keeps a superset


def test_tail_sampler_spends_the_budget_on_interesting_traces_first():
    start = np.repeat(np.arange(10.0), 100) + 0.5
    hot = np.zeros(1000, dtype=bool)
    hot[::50] = True                                                   # 2 interesting per second
    keep = tail_sampled(start, hot, 10, np.random.default_rng(1).random(1000))
    assert keep[hot].all() and keep.sum() <= 100 and keep.sum() >= 90


def test_lesson_head_keeps_p_of_errors_tail_keeps_all_until_the_budget_binds(res):
    s = res["summary"].set_index(["phase", "sampler"])
    tr = res["traces"]
    err = tr[tr.error]
    q = ts.QUICK.head_ratio
    assert abs(err["head"].mean() - q) <= 4 * math.sqrt(q * (1 - q) / len(err))
    assert s.loc[("normal", "tail"), "errors_kept"] == 1.0 and s.loc[("normal", "tail"), "slow_kept"] == 1.0
    inc = s.loc[("incident", "tail")]
    e = inc.expected_errors_kept
    assert e < 0.5 and abs(inc.errors_kept - e) <= 4 * math.sqrt(e * (1 - e) / inc.errors) + 0.01
    # the same storage: both store ~budget traces per second
    assert s.stored_per_s.between(0.85 * ts.budget(ts.QUICK), 1.1 * ts.budget(ts.QUICK)).all()


def test_lesson_dropping_buffers_lose_the_incident_lines(res):
    lg = res["logs"].set_index("policy")
    assert lg.loc["block", "lost"] == 0
    assert lg.loc["block", "max_delay_s"] == pytest.approx(lg.loc["block", "expected_max_delay_s"], rel=0.1)
    for pol in ("drop_newest", "drop_oldest"):
        r = lg.loc[pol]
        assert r.incident_lost >= r.lost - 2                        # the lost lines are the incident's
        # fluid closed form; the incident's line count is Poisson (sd ~ sqrt(rate x D))
        sd = math.sqrt(ts.QUICK.incident_log_rate * ts.QUICK.incident_s)
        assert abs(r.lost - r.expected_lost) <= 4 * sd
    assert lg.loc["drop_newest", "first_second_kept"] == 1.0 > lg.loc["drop_newest", "last_second_kept"]
    assert lg.loc["drop_oldest", "first_second_kept"] < 0.6 < lg.loc["drop_oldest", "last_second_kept"]


def test_log_buffer_refuses_bad_policies_and_drains_in_order():
    sim = Simulation(seed=1)
    with pytest.raises(ValueError, match="when_full"):
        LogBuffer(sim, 10, 1.0, "drop_random")
    b = LogBuffer(sim, 2, 10.0, "drop_oldest")
    for i in range(4):
        b.emit(i)
    sim.run(until=1)
    assert b.dropped == [0, 1] and sorted(b.delivered) == [2, 3]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="head_ratio"):
        ts.Params(head_ratio=0.0)
    with pytest.raises(ValueError, match="incident_s"):
        ts.Params(incident_s=100.0)
