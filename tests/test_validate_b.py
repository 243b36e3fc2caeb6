"""Group b's reproductions (replication, consistency, coordination, observability): each quick
``validate`` row passes, and its tolerance is narrower than the gap to a naive wrong answer, so
the row could fail."""

from __future__ import annotations

import math


def _rows(module):
    checks = module.validate(True)
    assert checks, "no rows"
    for c in checks:
        assert math.isfinite(c.measured) and c.tolerance >= 0 and c.why and c.source, c
        assert c.passed, c
    return checks


def test_cap_partition_rows_follow_gilbert_lynch():
    from experiments import cap_partition

    rows = _rows(cap_partition)
    avail = [c for c in rows if "availability" in c.quantity]
    lin = [c for c in rows if "linearizable" in c.quantity]
    assert [c.published for c in avail] == [0.0, 1.0] and [c.published for c in lin] == [1.0, 0.0]
    # the wrong answer (the other arm's figure) lies outside each row's tolerance
    for c, other in ((avail[0], avail[1]), (avail[1], avail[0]), (lin[0], lin[1]), (lin[1], lin[0])):
        assert abs(other.published - c.published) > c.tolerance


def test_pacelc_latency_is_the_quorum_order_statistic():
    import numpy as np

    from experiments import pacelc

    rows = _rows(pacelc)
    assert len(rows) == 6
    p = pacelc.QUICK
    for c in rows:
        n, k = int(c.quantity.split(" of ")[1].split()[0]), int(c.quantity.split(", ")[1].split()[0])
        delay = p.write_delay_mean_s if "write" in c.quantity else 0.0
        # the wrong order statistic (one replica more or fewer) lies outside the tolerance
        for wrong in (k - 1, k + 1):
            if 1 <= wrong <= n:
                alt = pacelc.quorum_latency(n, wrong, p.latency_median_s, p.latency_sigma, delay)[0] * 1e3
                assert abs(alt - c.published) > c.tolerance, (c, wrong)
    # the integrator against a plain Monte Carlo of the same model
    rng = np.random.default_rng(0)
    legs = rng.lognormal(np.log(0.002), 0.6, size=(400_000, 6))
    remote = legs[:, 2:4] + legs[:, 4:6] + rng.exponential(0.005, size=(400_000, 2))
    mc = legs[:, 0] + legs[:, 1] + np.sort(remote, axis=1)[:, 0]  # 2 of 3: the faster remote
    mean, sd = pacelc.quorum_latency(3, 2, 0.002, 0.6, 0.005)
    assert abs(mc.mean() - mean) < 4 * mc.std() / np.sqrt(len(mc)) and abs(mc.std() - sd) < 0.01 * sd


def test_cap_frontier_rows_follow_the_quorum_rule():
    from experiments import cap_frontier

    rows = _rows(cap_frontier)
    assert len(rows) == 2 + 4 * 5  # raft's minority, and both sides x both ops for five N-R-W configs
    assert {c.published for c in rows} == {0.0, 1.0}
    for c in rows:  # the opposite verdict is outside the tolerance
        assert abs((1 - c.published) - c.published) > c.tolerance, c
    # R + W <= N configurations serve reads and writes on the minority side; 5-3-3 serves neither
    minority = {(c.setup.split(",")[0], c.quantity.split()[0]): c.published for c in rows if "minority" in c.quantity}
    assert minority[("5-2-2", "read")] == minority[("5-2-2", "write")] == 1.0
    assert minority[("5-3-3", "read")] == minority[("5-3-3", "write")] == 0.0


def test_clock_skew_lww_lost_fraction_matches_the_closed_form():
    import numpy as np

    from experiments import clock_skew_lww

    rows = _rows(clock_skew_lww)
    lww = [c for c in rows if "LWW" in c.quantity]
    assert len(lww) == 2 and lww[0].published < lww[1].published
    p = clock_skew_lww.QUICK
    for c, skew in zip(lww, (0.02, 0.2)):
        rate = float(c.setup.split(" writes/s")[0].rsplit(" ", 1)[1])
        naive = 1 - np.exp(-rate * skew)  # "a write is lost if any write came within the skew before it"
        assert abs(naive - c.published) > c.tolerance, c
    # the closed form: no skew, no loss; one coordinator ahead by d with no network: 1 - exp(-rate d)
    assert clock_skew_lww.lww_lost_fraction([0.0, 0.0], [0.5, 0.5], 20.0, p.latency_median_s) == 0.0
    one = clock_skew_lww.lww_lost_fraction([0.0, 0.05], [0.5, 0.5], 20.0, 1e-12)
    assert abs(one - 0.5 * (1 - np.exp(-20.0 * 0.5 * 0.05))) < 1e-9


def test_crdt_convergence_is_strongly_eventually_consistent_and_converges_in_t_over_3():
    from experiments import crdt_convergence

    rows = _rows(crdt_convergence)
    assert [c.published for c in rows[:2]] == [1.0, 0.0]
    conv = rows[2]
    t = crdt_convergence.QUICK.gossip_interval_s
    # naive: wait for one given replica's next round (T/2), or a whole interval (T)
    for wrong in (conv.published + t / 2 - t / 3, conv.published + t - t / 3):
        assert abs(wrong - conv.published) > conv.tolerance


def test_consistency_ladder_rows_follow_the_hat_table():
    from experiments import consistency_ladder as cl

    rows = _rows(cl)
    assert len(rows) == 6
    assert [c.published for c in rows] == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    for c in rows:  # the opposite class is outside the tolerance
        assert abs(1 - 2 * c.published) > c.tolerance, c
    assert rows[0].setup.startswith(cl.RUNGS[0]) and rows[-1].setup.startswith(cl.RUNGS[1])


def test_token_expiry_skew_matches_its_closed_forms():
    import re

    from experiments import token_expiry_skew as tes

    rows = _rows(tes)
    rejected = [c for c in rows if "rejected" in c.quantity]
    accepted = [c for c in rows if "accepted" in c.quantity]
    assert len(rejected) == 6 and len(accepted) == 6
    for c in rows:
        T, s, L = (float(x) for x in re.match(r"lifetime (\S+) s, clocks within \+-(\S+) s .* leeway (\S+) s",
                                              c.setup).groups())
        if c in rejected:
            naive = (2 * s - L) / T  # "the worst-case skew beyond the leeway over the lifetime"
        elif L == 0:
            naive = 0.0  # "without leeway no expired token is accepted" (ignores the clocks ahead)
        else:
            continue
        assert abs(naive - c.published) > c.tolerance, c


def test_failure_detectors_phi_fires_on_ten_to_the_minus_phi_of_the_gaps():
    import math

    from experiments import failure_detectors as fd

    (row,) = _rows(fd)
    assert row.published == 0.1
    # naive readings: phi as a natural log (e^-1), or "phi = 1 suspects every other gap" (0.5)
    for wrong in (math.exp(-1), 0.5, 0.01):
        assert abs(wrong - row.published) > row.tolerance


def test_fencing_tokens_rows_are_exact_and_their_counterparts_fail():
    import re

    from experiments import fencing_tokens as ft

    rows = _rows(ft)
    assert len(rows) == 1 + len(ft.QUICK.drifts_ppm) and all(c.published == 0.0 for c in rows)
    # the same runs without fencing apply stale writes, and a margin without the drift writes outside the lease
    assert int(re.search(r"without fencing: (\d+) stale", rows[0].setup).group(1)) > 0
    worst = rows[-1]
    assert "5.0%" in worst.setup and int(re.search(r": (\d+) outside", worst.setup).group(1)) > 0


def test_slo_burn_alerts_detect_after_b_b_w_over_e():
    from experiments import slo_burn_alerts as sba

    rows = _rows(sba)
    det = [c for c in rows if c.quantity.startswith("detection")]
    budget = [c for c in rows if "budget" in c.quantity]
    assert [round(c.published, 2) for c in det] == [8.64, 21.6, 0.72] and [c.published for c in budget] == [0.02]
    for c in det:  # naive: "a windowed alert detects after its window" (60, 360 or 5 min)
        name = c.quantity.split("fired by ")[1].split(" at ")[0].removeprefix("page ").split("/")[0]
        window_min = {"1h": 60, "6h": 360, "5m": 5}[name]
        assert abs(window_min - c.published) > c.tolerance, c
    assert abs(0.05 - budget[0].published) > budget[0].tolerance  # the other Table 5-8 row


def test_debugging_with_traces_blames_the_db_and_fails_at_the_timeout_tail():
    from experiments import debugging_with_traces as dwt

    blame, share, match = _rows(dwt)
    assert blame.published == 1.0 and match.published == 0.0
    # naive: "a 100x slower db fails every request" / "a median at the timeout fails none"
    for wrong in (1.0, 0.0):
        assert abs(wrong - share.published) > share.tolerance
    assert 0.5 < share.published < 0.52  # the query's median equals the timeout; the round trip tips it over half
