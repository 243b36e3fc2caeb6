"""The replication experiments' QUICK runs point the way their lessons say."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiments import clock_skew_lww, crdt_convergence, pacelc, staleness  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_pacelc_stronger_quorums_cost_latency_and_remove_stale_reads():
    res = pacelc.run(pacelc.QUICK, seed=2)
    s = res["summary"].set_index("setting")
    assert (s.loc[s["strict"], "stale_read_rate"] == 0).all(), "R+W>N never reads stale"
    assert s.loc["3-1-1", "stale_read_rate"] > 0.005
    # waiting for more replicas costs latency, no partition needed (~5 / 9 / 13 ms)
    assert s.loc["3-1-1", "mean_latency_s"] * 1.3 < s.loc["3-2-2", "mean_latency_s"]
    assert s.loc["3-2-2", "mean_latency_s"] < s.loc["3-3-3", "mean_latency_s"]
    assert set(pacelc.plot(res, pacelc.QUICK)) == {"pacelc"}


def test_staleness_partial_quorums_become_consistent_with_time_strict_always_are():
    res = staleness.run(staleness.QUICK, seed=2)
    c = res["curves"].dropna(subset=["p_consistent"])
    strict = c[c["setting"] == "3-2-2"]
    assert (strict["p_consistent"] == 1).all()
    partial = c[(c["setting"] == "3-1-1") & (c["reads"] >= 20)].sort_values("t")
    first, late = partial.iloc[0], partial[partial["t"] > 0.04]
    assert first["p_consistent"] < 0.9, "right after a commit, R=W=1 reads are often stale"
    assert np.average(late["p_consistent"], weights=late["reads"]) > first["p_consistent"] + 0.05
    assert set(staleness.plot(res, staleness.QUICK)) == {"staleness"}


def test_clock_skew_lww_loses_writes_vector_clocks_do_not():
    res = clock_skew_lww.run(clock_skew_lww.QUICK, seed=2)
    s = res["summary"].set_index(["skew_ms", "resolution"])["lost_fraction"]
    assert s[(0.0, "lww")] == 0
    assert s[(200.0, "lww")] > 0.1, "with 200 ms skew and ~50 ms between writes LWW drops many"
    assert all(s[(k, "vv")] == 0 for k in clock_skew_lww.QUICK.skews_ms)
    assert s[(200.0, "hlc")] < s[(200.0, "lww")] / 5
    assert res["summary"]["converged"].all()
    assert set(clock_skew_lww.plot(res, clock_skew_lww.QUICK)) == {"clock_skew_lww"}


def test_crdt_convergence_sides_diverge_then_agree_without_losing_acked_increments():
    res = crdt_convergence.run(crdt_convergence.QUICK, seed=2)
    row = res["summary"].iloc[0]
    assert row.max_spread_during_partition > 0
    assert row.all_equal and row.within_bounds and row.lost_acked == 0
    assert set(crdt_convergence.plot(res, crdt_convergence.QUICK)) == {"crdt_convergence"}


@pytest.mark.parametrize("mod, bad", [(pacelc, dict(settings=("3-4-1",))), (staleness, dict(t_ms=(-1.0,))),
                                      (clock_skew_lww, dict(skews_ms=(-1.0,))),
                                      (crdt_convergence, dict(heal_at=0.5, partition_at=1.0))])
def test_bad_params_are_refused(mod, bad):
    with pytest.raises(ValueError):
        mod.Params(**bad)


def test_same_seed_same_results():
    a = clock_skew_lww.run(clock_skew_lww.QUICK, seed=3)["summary"]
    b = clock_skew_lww.run(clock_skew_lww.QUICK, seed=3)["summary"]
    assert a.equals(b)
