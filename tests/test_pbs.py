"""PBS / WARS (Bailis et al., VLDB 2012): the kernel model and the vectorised Monte Carlo against
the closed forms and against each other; strict quorums never stale; the staleness lesson.

Tolerances: a simulated fraction of n independent trials has binomial standard error
sqrt(p(1-p)/n); we allow 4 standard errors (a false failure has probability ~6e-5, and the seeds
are fixed, so a pass is reproducible). Two independent estimates are compared with the combined
error sqrt(se1^2 + se2^2).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiments import staleness  # noqa: E402
from models.replication.pbs import (  # noqa: E402
    MS,
    des_k_staleness,
    des_t_visibility,
    k_staleness,
    miss_probability,
    p_consistent,
    parse_nrw,
    t_at,
    wars_legs,
    wars_streams,
    wars_thresholds,
)
from simulator import Constant, Exponential, Simulation  # noqa: E402


def _se(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / n))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_closed_forms_by_hand():
    assert miss_probability(3, 1, 1) == pytest.approx(2 / 3)
    # the paper's worked numbers (§3): N=3, R=W=1 -> k=2: 0.5(5), k=3: 0.(703); R=1, W=2 -> k=2: 0.(8)
    assert k_staleness(3, 1, 1, 2) == pytest.approx(5 / 9)
    assert k_staleness(3, 1, 1, 3) == pytest.approx(19 / 27)
    assert k_staleness(3, 1, 2, 2) == pytest.approx(8 / 9)
    assert k_staleness(3, 2, 2, 1) == 1.0  # strict
    assert parse_nrw("5-2-3") == (5, 2, 3)
    with pytest.raises(ValueError):
        parse_nrw("3-4-1")


@pytest.mark.parametrize("n, r, w, k", [(3, 1, 1, 2), (3, 1, 2, 1), (5, 2, 2, 3), (5, 1, 1, 4)])
def test_k_staleness_on_the_kernel_matches_the_closed_form(n, r, w, k):
    trials = 2000
    within = des_k_staleness(n, r, w, k, trials, seed=7)
    expect = k_staleness(n, r, w, k)
    assert abs(within.mean() - expect) <= 4 * _se(expect, trials)


@pytest.mark.parametrize("n, r, w", [(3, 1, 1), (5, 1, 2), (5, 2, 2), (4, 2, 1)])
def test_stale_at_commit_is_the_quorum_miss_when_ars_is_negligible(n, r, w):
    """A = R = S = 0: the replicas holding the write at commit are exactly the W fastest, the
    first R responders a choice independent of them, so P(stale at t=0) = C(N-W,R)/C(N,R)."""
    legs = {"W": Exponential(MS), "A": Constant(0.0), "R": Constant(0.0), "S": Constant(0.0)}
    expect = miss_probability(n, r, w)
    trials = 100_000
    T = wars_thresholds(legs, n, r, w, trials, wars_streams(Simulation(seed=3)))
    assert abs((1 - p_consistent(T, [0.0])[0]) - expect) <= 4 * _se(expect, trials)
    des = des_t_visibility(n, r, w, legs, [0.0], 1500, seed=3)
    assert abs(des["stale"].mean() - expect) <= 4 * _se(expect, 1500)


@pytest.mark.parametrize("model, lw, setting", [("lnkd-disk", None, "3-1-1"), ("exponential", 0.5, "3-2-1"),
                                                ("lnkd-ssd", None, "3-1-2")])
def test_kernel_des_and_vectorised_monte_carlo_agree(model, lw, setting):
    n, r, w = parse_nrw(setting)
    legs = wars_legs(model, lw) if model == "exponential" else wars_legs(model)
    t_s = [0.0, 1 * MS, 5 * MS, 20 * MS]
    n_des, n_mc = 2000, 100_000
    des = des_t_visibility(n, r, w, legs, t_s, n_des, seed=11)
    p_des = 1 - des.groupby("t")["stale"].mean().reindex(t_s).to_numpy()
    p_mc = p_consistent(wars_thresholds(legs, n, r, w, n_mc, wars_streams(Simulation(seed=12))), t_s)
    for a, b in zip(p_des, p_mc):
        assert abs(a - b) <= 4 * np.hypot(_se(b, n_des), _se(b, n_mc)), (p_des, p_mc)
    # and the DES write latency is the W-th fastest W+A: its mean matches the Monte Carlo's
    rng = Simulation(seed=13)
    d = {k: legs[k].draw(rng.rng(k), n_mc * n).reshape(n_mc, n) for k in "WA"}
    wt = np.sort(d["W"] + d["A"], axis=1)[:, w - 1]
    lat = des.drop_duplicates("trial")["write_latency"].to_numpy()
    assert abs(lat.mean() - wt.mean()) <= 4 * np.hypot(lat.std() / np.sqrt(len(lat)), wt.std() / np.sqrt(n_mc))


@pytest.mark.parametrize("model", ["exponential", "lnkd-ssd", "lnkd-disk", "ymmr"])
def test_strict_quorums_are_never_stale(model):
    legs = wars_legs(model, 0.1) if model == "exponential" else wars_legs(model)
    for setting in ("3-2-2", "3-1-3", "3-3-1", "5-3-3"):
        n, r, w = parse_nrw(setting)
        T = wars_thresholds(legs, n, r, w, 20_000, wars_streams(Simulation(seed=5)))
        assert (T <= 0).all(), f"{model} {setting}: R+W>N must be consistent at every t >= 0"
    des = des_t_visibility(3, 2, 2, legs, [0.0], 1000, seed=5)
    assert not des["stale"].any()


def test_t_visibility_rises_with_t_and_a_slower_write_leg_is_staler():
    t_s = np.array([0, 0.5, 1, 2, 5, 10, 50]) * MS
    curves = {}
    for lw in (0.1, 1.0, 4.0):
        T = wars_thresholds(wars_legs("exponential", lw), 3, 1, 1, 100_000, wars_streams(Simulation(seed=1)))
        curves[lw] = p_consistent(T, t_s)
        assert (np.diff(curves[lw]) >= 0).all()
    assert curves[0.1][0] < curves[1.0][0] < curves[4.0][0]
    # the paper (§5.5): lambda_W = 4 -> 94% at once; lambda_W = 0.1 -> 41% (ours within sampling + rounding)
    assert abs(curves[4.0][0] - 0.94) < 0.015 and abs(curves[0.1][0] - 0.41) < 0.02


def test_lesson_on_quick():
    res = staleness.run(staleness.QUICK, seed=2)
    s = res["summary"].set_index(["model", "setting"])
    disk, ssd = s.loc[("lnkd-disk", "3-1-1")], s.loc[("lnkd-ssd", "3-1-1")]
    assert disk.p_consistent_t0 < 0.6, "right after a commit, R=W=1 on disks is often stale"
    assert ssd.p_consistent_t0 > 0.95, "short write tail (SSD): almost always consistent at once"
    assert ssd.t_999_ms * 5 < disk.t_999_ms < staleness.QUICK.t_ms[-1], "the write tail sets the window"
    c = res["curves"]
    partial = c[(c["model"] == "lnkd-disk") & (c["setting"] == "3-1-1")].sort_values("t_ms")
    assert partial["p_consistent"].iloc[-1] >= 0.999, "...but it becomes consistent"
    assert (c.loc[c["strict"], "p_consistent"] == 1).all(), "R+W>N always consistent"
    assert set(staleness.plot(res, staleness.QUICK)) == {"staleness"}


def test_same_seed_same_results_and_des_engine_runs():
    a = staleness.run(staleness.QUICK, seed=4)["summary"]
    b = staleness.run(staleness.QUICK, seed=4)["summary"]
    assert a.equals(b)
    p = staleness.Params(latency_models=("exponential",), lambda_w=(0.5,), settings=("3-1-1",),
                         t_ms=(0.0, 5.0, 50.0), trials=500, engine="des")
    s = staleness.run(p, seed=1)["summary"].iloc[0]
    T = wars_thresholds(wars_legs("exponential", 0.5), 3, 1, 1, 100_000, wars_streams(Simulation(seed=1)))
    expect = p_consistent(T, [0.0])[0]
    assert abs(s.p_consistent_t0 - expect) <= 4 * np.hypot(_se(expect, 500), _se(expect, 100_000))
    assert t_at(T, 0.999) / MS <= 50.0


@pytest.mark.parametrize("bad", [dict(settings=("3-4-1",)), dict(t_ms=(-1.0,)), dict(trials=10),
                                 dict(latency_models=("kernel",)), dict(lambda_w=(0.0,)),
                                 dict(engine="des", trials=1_000_000)])
def test_bad_params_are_refused(bad):
    with pytest.raises(ValueError):
        staleness.Params(**bad)


def test_validate_quick_checks_the_formulas():
    checks = staleness.validate(True)
    assert len(checks) >= 20
    assert all(np.isfinite(c.measured) and c.tolerance > 0 for c in checks)
    formula = [c for c in checks if "Eq." in c.source]
    assert len(formula) == 7 and all(c.passed for c in formula)
