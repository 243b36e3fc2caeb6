"""The messaging and transactions experiments' ``validate`` rows (issue 24, group c).

Each test asserts that the quick rows pass and that they could fail: the closed form differs from a
naive wrong alternative (or from the other arm of the same run) by more than the stated tolerance.
"""

from __future__ import annotations

import math

import pytest

from experiments import (
    consumer_rebalance,
    cqrs_read_lag,
    delivery_semantics,
    event_sourcing_replay,
    idempotency_keys,
    kafka_acks,
    outbox_vs_dual_write,
    poison_messages,
    queue_vs_http,
    saga_isolation,
    saga_orchestration_vs_choreography,
    saga_vs_2pc,
    visibility_timeout,
)


def _all_pass(checks):
    assert checks
    for c in checks:
        assert c.passed, c
        assert c.tolerance >= 0 and c.why and c.source
    return checks


def test_validate_delivery_semantics_each_arm_meets_the_kafka_definition():
    checks = _all_pass(delivery_semantics.validate(True))
    assert len(checks) == 4 and all(c.published == 0 and c.tolerance == 0 for c in checks)
    # The faults bite: the same run's other commit orders break exactly the guarantee the arm keeps.
    assert delivery_semantics._faulted_arm(1, "after", None)["duplicated"] > 0
    assert delivery_semantics._faulted_arm(1, "before", None)["lost"] > 0


def test_validate_visibility_timeout_is_the_lognormal_tail_not_an_exponential_one():
    checks = _all_pass(visibility_timeout.validate(True))
    assert len(checks) == 3
    # The naive alternative, exponential handling times with the same mean (P = exp(-V/mean)), is off
    # by more than the tolerance at 0.5x and 2x: the rows can tell a tail's shape apart.
    for c, m in ((checks[0], 0.5), (checks[2], 2.0)):
        assert abs(math.exp(-m) - c.published) > c.tolerance


def test_validate_kafka_acks_counts_the_isolated_leaders_writes():
    lost1, lost_all = _all_pass(kafka_acks.validate(True))
    assert lost_all.published == 0 and lost_all.tolerance == 0
    # acks=1 does lose: the row could not pass with "acks=1 is safe" (0), nor with keys spread evenly
    # over the partitions (rate x window / partitions) instead of the hash's actual share.
    p = kafka_acks.Params(rate=400.0, produce_until=7.0, recover_at=8.0, duration_s=11.0)
    even = p.rate * (p.crash_at - p.cut_at) / p.partitions
    assert abs(lost1.published - 0) > lost1.tolerance
    assert abs(lost1.published - even) > lost1.tolerance


def test_validate_queue_vs_http_backlog_and_catch_up():
    rpc, queue, backlog, catch_up = _all_pass(queue_vs_http.validate(True))
    assert (rpc.published, queue.published) == (0.0, 1.0) and rpc.tolerance < 0.5
    th = queue_vs_http.theory(queue_vs_http.Params(rate=60.0, outage_at=5.0, outage_s=10.0, duration_s=26.0))
    # The naive drain time backlog / mu (forgetting that orders keep arriving) is outside the tolerance,
    # and so is a backlog that forgot half the outage.
    assert abs(th["backlog"] / th["capacity"] - catch_up.published) > catch_up.tolerance
    assert abs(th["backlog"] / 2 - backlog.published) > backlog.tolerance


def test_validate_poison_messages_redrive_arithmetic():
    std, fifo, block, loop = _all_pass(poison_messages.validate(True))
    p = poison_messages.QUICK
    assert std.published == fifo.published == p.max_receive_count and std.tolerance == 0
    # An off-by-one redrive rule ((m - 1) x V or (m + 1) x V of blocking) would miss the row.
    assert block.tolerance < p.visibility_s
    # Without a DLQ the loop really runs: many more receives than maxReceiveCount.
    _, _, cons = poison_messages._arm(p, 1, *poison_messages.ARMS["standard, no DLQ"])
    k = poison_messages.poison_id(p)
    assert sum(r[0] == k for r in cons.receipts) > 2 * p.max_receive_count


def test_validate_consumer_rebalance_two_per_long_pause():
    storm, long_session, short_pauses = _all_pass(consumer_rebalance.validate(True))
    joins = long_session.published
    pauses = (storm.published - joins) / 2
    assert pauses >= 3 and long_session.tolerance == short_pauses.tolerance == 0
    # "one rebalance per pause" (eviction only, or a rejoin that does not rebalance) would miss.
    assert abs(joins + pauses - storm.published) > storm.tolerance


def test_close_pairs_counts_only_different_members():
    starts = {"a": [1.0, 1.1], "b": [1.2, 5.0], "c": [9.0]}
    assert consumer_rebalance._close_pairs(starts, 0.3) == 2  # a@1.0-b@1.2, a@1.1-b@1.2; not a-a


def test_validate_saga_vs_2pc_message_counts_and_availability():
    msgs_2pc, msgs_saga, av_2pc, av_saga = _all_pass(saga_vs_2pc.validate(True))
    # Without the acknowledgments (3 per participant) or counting the saga like 2PC, the counts miss.
    assert abs(2 + 3 * 3 - msgs_2pc.published) > msgs_2pc.tolerance
    assert abs(2 + 4 * 3 - msgs_saga.published) > msgs_saga.tolerance
    # 2PC during a one-third outage is not the saga's 1, and not 1 minus the outage counted twice.
    assert abs(1.0 - av_2pc.published) > av_2pc.tolerance and av_saga.published == 1.0
    assert abs(1 / 3 - av_2pc.published) > av_2pc.tolerance


def test_validate_idempotency_keys_geometric_sum():
    checks = _all_pass(idempotency_keys.validate(True))
    no_keys = [c for c in checks if c.quantity.startswith("no keys")]
    q = idempotency_keys.Params().reply_loss
    # The series truncated at n, not its limit 1 / (1 - q) (unbounded retries), at n = 2.
    assert abs(1 / (1 - q) - no_keys[0].published) > no_keys[0].tolerance
    assert idempotency_keys.executions_moments(0.0, 5) == (1.0, 0.0)
    m, var = idempotency_keys.executions_moments(0.5, 2)  # X = 1 or 2 with prob 1/2 each
    assert m == pytest.approx(1.5) and var == pytest.approx(0.25)


def test_validate_outbox_vs_dual_write_crash_window():
    lost, phantom, *outbox = _all_pass(outbox_vs_dual_write.validate(True))
    # An atomic pair of writes (0 lost) is outside the tolerance, and so is the wrong window (the whole
    # mean time between crashes, or twice the gap).
    for c in (lost, phantom):
        assert c.published > c.tolerance
    assert abs(1 - math.exp(-2 * 0.05 / 0.5) - lost.published) > lost.tolerance
    assert all(c.published == 0 and c.tolerance == 0 for c in outbox)


def test_validate_saga_orchestration_message_count_and_completion():
    msgs, *done = _all_pass(saga_orchestration_vs_choreography.validate(True))
    # Forgetting the compensations (8 for every order) misses: the count sees the refused orders.
    assert abs(8.0 - msgs.published) > msgs.tolerance
    assert all(c.published == 0 and c.tolerance == 0 for c in done)
    # The outage really leaves orders mid-saga, so "nothing unfinished after the drain" is not vacuous.
    r = saga_orchestration_vs_choreography._one(saga_orchestration_vs_choreography.QUICK, 1, "choreographed")
    assert r["pending_mid_outage"] > 0


def test_validate_cqrs_read_lag_is_mm1():
    lag100, lag200, ryw = _all_pass(cqrs_read_lag.validate(True))
    # Service time alone (1/mu, no queueing) is outside the tolerance at mu = 100, rho = 0.5; so is
    # "a read after 20 ms always sees the order" (0).
    assert abs(1e3 / 100 - lag100.published) > lag100.tolerance
    assert ryw.published > ryw.tolerance
    # The pipeline is derived, not an allowance: with no network time the chain is exactly M/M/1's
    # 1/(mu - lambda); with the experiment's hops it adds ~2.1 ms, more than two one-way hops (1.05 ms)
    # or two hops plus a vacation's mean residual (1.57 ms): the receive round trip after every batch.
    lag = cqrs_read_lag.pipeline_lag_s
    assert lag(100.0, 50.0, 0.0) == pytest.approx(1 / 50, rel=1e-9)
    assert lag(200.0, 160.0, 0.0) == pytest.approx(1 / 40, rel=1e-9)
    h = 0.0005 * math.exp(0.3 ** 2 / 2)
    assert lag(200.0, 100.0) - 0.01 > 3 * h + 0.0003
    for row, mu in ((lag100, 100.0), (lag200, 200.0)):
        lam = cqrs_read_lag.order_rate(mu / 2, 50, 0.0, 4 * h)  # closed-loop customers: a little under mu / 2
        assert mu / 2 * 0.99 < lam < mu / 2
        assert row.published == pytest.approx(1e3 * lag(mu, lam), abs=1e-3)
        assert row.why.startswith("4 SE") and "hops" not in row.why
    assert ryw.why.startswith("4 SE") and ryw.published == pytest.approx(math.exp(-(100 - 50 / 1.02) * 0.02), abs=1e-6)


def test_validate_event_sourcing_replay_snapshot_arithmetic():
    none, exact, k10, k100 = _all_pass(event_sourcing_replay.validate(True))
    p = event_sourcing_replay.QUICK
    # Forgetting the snapshot loads (accounts x replay_s (k - 1)/2) misses at k = 10, and replaying the
    # whole history despite snapshots is far off at k = 100.
    assert abs(p.accounts * p.replay_s * 9 / 2 - k10.published) > k10.tolerance
    assert abs(none.published - k100.published) > k100.tolerance
    assert exact.tolerance < 1e-6


def test_validate_saga_isolation_countermeasures():
    lock, commutative = _all_pass(saga_isolation.validate(True))
    assert lock.tolerance == commutative.tolerance == 0
    # The same orders without a countermeasure do show both anomalies: a zero is the countermeasure's doing.
    _, inv, _ = saga_isolation.run_arm(saga_isolation.QUICK, 1, "none")
    t = inv.tally()
    assert t["dirty_reads"] > 0 and t["lost_updates"] > 0 and t["stock_error"] != 0
