"""Each transactions experiment, on its QUICK preset, shows its lesson (directions and invariants,
not pinned numbers)."""

from __future__ import annotations

import pytest

import experiments.idempotency_keys as idem
import experiments.outbox_vs_dual_write as outbox
import experiments.saga_vs_2pc as s2


def by_arm(df):
    return df.set_index("arm")


def test_saga_vs_2pc_lesson():
    s = by_arm(s2.run(s2.QUICK, seed=1)["summary"])
    tpc, saga = s.loc["2PC"], s.loc["saga"]
    # 2PC: consistent at the end, but blocks: lower availability, participants in doubt through the
    # coordinator's crash (about fault_s), every order's effects applied together (ms windows).
    assert tpc.violations == 0 and tpc.unfinished == 0
    assert tpc.availability < saga.availability - 0.15
    assert tpc.in_doubt_max_s > 0.5 * s2.QUICK.fault_s and tpc.blocked_txns >= 1
    assert tpc.inconsistent_p99_s < 0.05
    # saga: stays available (only the order service's own crash costs it), pays with seconds of
    # half-done orders, and no violation once drained.
    assert saga.availability > 0.8 and saga.violations == 0 and saga.unfinished == 0
    assert saga.inconsistent_p99_s > 10 * tpc.inconsistent_p99_s and saga.inconsistent_p99_s > 0.5
    assert saga.lock_hold_p99_s == 0


def test_idempotency_keys_lesson():
    s = idem.run(idem.QUICK, seed=1)["summary"]
    p = idem.QUICK
    for _, r in s.iterrows():
        if r.arm == "keys":
            assert r.charges_per_request == 1.0
        elif r.arm == "no keys":  # 1 + q + ... + q^(n-1) within 4 binomial-ish SE (per-request sd <= 1)
            assert r.charges_per_request == pytest.approx(r.theory_no_keys, abs=4 / p.requests ** 0.5)
    short = s[(s.arm == "keys, short TTL") & (s.retry_horizon_s > p.short_ttl_s)]
    assert len(short) and (short.double_charged > 0).all()
    within = s[(s.arm == "keys, short TTL") & (s.retry_horizon_s < p.short_ttl_s)]
    assert (within.charges_per_request == 1.0).all()
    few, many = s[(s.arm == "keys") & (s.attempts == 1)].iloc[0], s[(s.arm == "keys") & (s.attempts == 6)].iloc[0]
    assert many.succeeded > few.succeeded + 0.2  # retries are what make requests succeed


@pytest.mark.parametrize("seed", [1, 2])
def test_outbox_vs_dual_write_lesson(seed):
    """Lost and phantom events appear in every seed tried (1..5); duplicates need a crash while a relay
    batch is in flight (~20% of the time), so a few seeds show none: these two show 18 and 7."""
    s = by_arm(outbox.run(outbox.QUICK, seed=seed)["summary"])
    assert s.loc["dual write (DB, then publish)", "lost"] > 0
    assert s.loc["publish first (then DB)", "phantom"] > 0
    ob = s.loc["outbox + dedupe"]
    assert ob.lost == 0 and ob.phantom == 0 and ob["duplicated"] == 0 and ob.events_applied == ob.orders
    nd = s.loc["outbox, no dedupe"]
    assert nd.lost == 0 and nd.phantom == 0 and nd["duplicated"] > 0
