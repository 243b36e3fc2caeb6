"""SLOs, error budgets and burn-rate alerts against the closed forms of the Google SRE Workbook
("Alerting on SLOs"), on deterministic synthetic request streams and on simulated runs.

Synthetic streams space requests evenly at ``rate`` per second and place errors so that any
interval holds its error ratio to within one request; alerts are evaluated every ``step``.
So a window's error count is off by at most one error (errors come every ``1/(e·rate)`` s), its
request count by one request per edge, and the evaluation by one step: a measured detection or
reset time may differ from the formula by ``1/(e·rate) + 2/rate + step``.
"""

from __future__ import annotations

import math

import pytest

from simulator.observe import SLO, BurnRateAlert, alert_series, budget_consumed, episodes, red_by, score
from simulator.observe.slo import (
    DAY,
    HOUR,
    MINUTE,
    budget_fraction,
    detection_time,
    reset_time,
    synthetic_requests,
    workbook_policy,
)

RATE, STEP = 2.0, 1.0


def tol(e: float, rate: float = RATE, step: float = STEP) -> float:
    return 1 / (e * rate) + 2 / rate + step
SLO999 = SLO(target=0.999, window_s=30 * DAY)


def _episodes(df, alert, **kw):
    s = alert_series(df, SLO999, [alert], step=STEP, **kw)
    return episodes(s, [alert.name])


@pytest.mark.parametrize("e,w,burn", [(0.1, HOUR, 14.4), (1.0, HOUR, 14.4), (0.05, 6 * HOUR, 6.0),
                                      (0.02, 5 * MINUTE, 14.4), (0.003, 6 * HOUR, 1.0)])
def test_detection_time_is_B_b_w_over_e(e, w, burn):
    t0 = w  # a clean window before the errors start
    df = synthetic_requests(t0 + w + 10, RATE, [(t0, t0 + w + 10, e)])
    eps = _episodes(df, BurnRateAlert("a", w, burn))
    expected = detection_time(e, SLO999.budget, w, burn)
    assert expected == pytest.approx(burn * 0.001 * w / e)
    assert len(eps) == 1
    assert eps["fired_at"][0] - t0 == pytest.approx(expected, abs=tol(e))


def test_never_fires_when_e_below_B_b():
    w, burn = HOUR, 14.4
    e = 0.95 * burn * SLO999.budget
    df = synthetic_requests(4 * w, RATE, [(w, 4 * w, e)])
    assert len(_episodes(df, BurnRateAlert("a", w, burn))) == 0
    assert detection_time(e, SLO999.budget, w, burn) == math.inf


def test_reset_long_window_about_w_short_window_soon():
    """After an outage longer than the window stops, a single window stays firing for
    w(1 - Bb/e) ≈ w; the multiwindow alert resets after its short window's w_s(1 - Bb/e)."""
    e, burn, w, ws = 0.2, 14.4, HOUR, 5 * MINUTE
    t0, t1 = HOUR, 3 * HOUR
    df = synthetic_requests(5 * HOUR, RATE, [(t0, t1, e)])
    single = _episodes(df, BurnRateAlert("1h", w, burn))
    multi = _episodes(df, BurnRateAlert("1h/5m", w, burn, short_s=ws))
    assert len(single) == len(multi) == 1
    assert single["reset_at"][0] - t1 == pytest.approx(reset_time(e, 0.001, w, burn), abs=tol(e))
    assert reset_time(e, 0.001, w, burn) > 0.9 * w
    assert multi["reset_at"][0] - t1 == pytest.approx(reset_time(e, 0.001, ws, burn), abs=tol(e))
    # the short window never delays detection here: the long window is the slower one
    assert multi["fired_at"][0] == pytest.approx(single["fired_at"][0], abs=tol(e))


def test_budget_consumed_is_e_d_over_bW_with_time_scale():
    """A 30-day window on 600 simulated seconds (time_scale = 4320): an outage of d at ratio e
    spends e·d/(b·W) of the budget, whatever the scale."""
    ts = 30 * DAY / 600
    e, d = 0.005, 60.0  # simulated seconds
    df = synthetic_requests(600, 50.0, [(100, 100 + d, e)])
    b = budget_consumed(df, SLO999, step=1.0, time_scale=ts, rate=50.0)
    expected = budget_fraction(e, d * ts, SLO999)
    assert expected == pytest.approx(e * d / (0.001 * 600))
    assert b["consumed"].iloc[-1] == pytest.approx(expected, abs=1 / (0.001 * 50 * 600))


def test_time_scale_maps_detection_times():
    """The same outage in SLO time and scaled into simulated time is detected at the same SLO time."""
    ts = 3600.0
    e, burn, w = 0.1, 14.4, HOUR
    df = synthetic_requests(6.0, 2000.0, [(2.0, 6.0, e)])   # 1 simulated s = 1 SLO hour
    s = alert_series(df, SLO999, [BurnRateAlert("a", w, burn)], step=0.001, time_scale=ts)
    eps = episodes(s, ["a"])
    assert (eps["fired_at"][0] - 2.0) * ts == pytest.approx(detection_time(e, 0.001, w, burn),
                                                              abs=tol(e, 2000, 0.001) * ts)


def test_workbook_policy_budget_fractions():
    pol = workbook_policy()
    assert [a.burn_rate for a in pol] == pytest.approx([14.4, 6.0, 1.0])
    assert [a.short_s for a in pol] == pytest.approx([5 * MINUTE, 30 * MINUTE, 6 * HOUR])
    assert [a.budget_at_fire(SLO999) for a in pol] == pytest.approx([0.02, 0.05, 0.10])
    assert [a.severity for a in pol] == ["page", "page", "ticket"]
    # a 7-day window keeps the fractions: 1 h at 2 % of 7 days is burn 3.36
    assert workbook_policy(7 * DAY)[0].burn_rate == pytest.approx(0.02 * 7 * 24)


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="target"):
        SLO(target=1.0)
    with pytest.raises(ValueError, match="latency_threshold_s"):
        SLO(sli="latency")
    with pytest.raises(ValueError, match="window_s"):
        SLO(window_s=math.inf)
    with pytest.raises(ValueError, match="short_s"):
        BurnRateAlert("x", HOUR, 14.4, short_s=2 * HOUR)
    with pytest.raises(ValueError, match="severity"):
        BurnRateAlert("x", HOUR, 14.4, severity="email")


def test_latency_sli_counts_slow_and_failed_requests_bad():
    df = synthetic_requests(10, 1.0, [(0, 2, 1.0)])
    df["latency"] = [0.05] * 5 + [0.5] * 5
    slo = SLO(sli="latency", latency_threshold_s=0.1)
    assert slo.bad(df).tolist() == [True, True] + [False] * 3 + [True] * 5


def test_multiwindow_ignores_a_short_spike_a_short_window_pages():
    """A 40 s total outage spends 40/(0.001·30 d) = 1.5 % of the budget: under 1 h at 14.4
    (needs >= 51.8 s), so the Workbook's alert stays quiet; a lone 5-minute window pages."""
    df = synthetic_requests(4 * HOUR, RATE, [(2 * HOUR, 2 * HOUR + 40, 1.0)])
    assert detection_time(40 / HOUR, 0.001, HOUR, 14.4) == math.inf
    s = alert_series(df, SLO999, [*workbook_policy(), BurnRateAlert("5m", 5 * MINUTE, 14.4, severity="ticket")],
                     step=STEP)
    assert len(episodes(s, ["page"])) == 0
    short = episodes(s, ["5m"])
    assert len(short) == 1
    sc = score(short, [(HOUR, 1.5 * HOUR)])  # the only real incident is elsewhere
    assert sc["false_episodes"] == 1 and sc["precision"] == 0 and sc["recall"] == 0


def test_red_by_groups_per_endpoint():
    a = synthetic_requests(10, 10.0, [(0, 10, 0.1)], op="read")
    b = synthetic_requests(10, 5.0, op="write")
    import pandas as pd

    df = pd.concat([a, b], ignore_index=True)
    for c in ("target", "op", "client"):
        df[c] = df[c].astype("category")
    r = red_by(df, window=10.0).set_index("op")
    assert r.loc["read", "rate"] == pytest.approx(10.0) and r.loc["write", "rate"] == pytest.approx(5.0)
    assert r.loc["read", "error_rate"] == pytest.approx(0.1) and r.loc["read", "errors"] == 10
    assert r.loc["write", "errors"] == 0


def test_simulated_run_lesson_and_fast_burn_detection():
    """One simulated run (QUICK): the lesson, and the Workbook's detection time for the fast burn.
    Detection needs ~B·b·rate·w ≈ 58 errors in the 1 h window at QUICK's 4000 req/h; Poisson noise
    on that count is ~1/sqrt(58) ≈ 13 %, so 40 % (3 sigma) tolerance, plus the 1-min evaluation step."""
    from experiments import slo_burn_alerts as m

    p = m.QUICK
    s = m.run(p, 1)["summary"].set_index("arm")
    short, long_, multi = s.index
    # multiwindow: pages for both burns, not for the spike, no false page
    assert multi.startswith("multiwindow")
    assert s.loc[multi, ["fast_paged", "slow_paged"]].all() and not s.loc[multi, "harmless_paged"]
    assert s.loc[multi, "false_pages"] == 0 and s.loc[multi, "recall"] == 1
    expected = detection_time(p.fast_ratio, 1 - p.target, HOUR, 14.4) / MINUTE
    assert s.loc[multi, "fast_detect_min"] == pytest.approx(expected, rel=0.4, abs=1)
    # single short window pages on the harmless spike
    assert s.loc[short, "harmless_paged"] and s.loc[short, "false_pages"] >= 1
    # single long window: no spike page, but detects later and resets much later than the multiwindow
    assert not s.loc[long_, "harmless_paged"]
    assert s.loc[long_, "fast_detect_min"] > 1.5 * s.loc[multi, "fast_detect_min"]
    assert s.loc[long_, "fast_reset_min"] > 5 * s.loc[multi, "fast_reset_min"]
    # long-window reset after a 30-min outage: until the outage leaves the 6 h window, less the
    # part that keeps it above 6x: w - d·(1 - ...) — within 10 % of 6 h
    assert s.loc[long_, "fast_reset_min"] == pytest.approx(6 * 60, rel=0.1)
