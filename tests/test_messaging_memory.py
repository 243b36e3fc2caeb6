"""Issue 23: the log and the delivery checker store columns, not an object per message.

The memory test runs the throughput benchmark's world (12 partitions, replication factor 3, 6
consumers, acks=all) for 25,000 messages under ``tracemalloc`` and bounds the bytes per message
by the layout (models/messaging/logstore.py, simulator/history/delivery.py):

- kept after the run: the partition's record store, 4 typed columns x 8 B = 32 B (once, not per
  replica), plus the delivery log's 3 events (send, ack, process) x 25 B (1 B code, 8 B id,
  8 B key, 8 B time) = 75 B: 107 B/message;
- the checker's peak over that: its table (8 int64/float64 columns + 3 one-byte ones = 67 B) plus
  at most ~6 per-message int64 temporaries alive at once (48 B): 115 B/message.

Each bound allows 25 % (array over-allocation, a batch in flight) plus 1 MiB of fixed cost. Per
message tuples in the replica logs (the old layout: 96 B a tuple and 3 x 32 B of int objects) or a
list of int keys in the delivery log (8 B per event + 32 B per int) break the first bound; a
DataFrame of events or a groupby in the checker (~280 B/message before) the second.

The other tests check the columnar structures against plain-list models of the same operations.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.messaging.logstore import Records, ReplicaLog
from models.messaging.scenarios import log_world
from simulator import Constant
from simulator.history.delivery import DeliveryLog, check_delivery, delivery_table, order_violations

MiB = 2**20


def test_bytes_per_message_of_the_log_and_the_checker_follow_the_columnar_layout():
    n = 25_000
    tracemalloc.start()
    try:
        w = log_world(1, partitions=12, consumers=6, rate=200_000.0, keys=10_000, stop_at=1e9, limit=n,
                      tick_s=0.005, batch_size=1000, max_poll_records=1000, service=Constant(2e-6),
                      session_timeout_s=10.0, heartbeat_interval_s=1.0)
        before = tracemalloc.get_traced_memory()[0]
        w.sim.run(until=n / 200_000 + 2.0)
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        at = tracemalloc.get_traced_memory()[0]
        r = check_delivery(w.log)
        check_peak = tracemalloc.get_traced_memory()[1] - at
    finally:
        tracemalloc.stop()
    assert sum(c.processed for c in w.consumers) == n and r["exactly_once"] == n  # the run did the work
    assert kept < 1.25 * (32 + 75) * n + MiB, f"{kept / n:.0f} B/message kept after the run"
    assert check_peak < 1.25 * (67 + 48) * n + MiB, f"{check_peak / n:.0f} B/message at the checker's peak"


# -- the record store and a replica's runs, against a list of tuples -----------------------------
ops = st.lists(st.one_of(
    st.tuples(st.just("produce"), st.integers(0, 2), st.integers(0, 5)),  # replica, records
    st.tuples(st.just("fetch"), st.integers(0, 2), st.integers(0, 2)),  # follower copies from leader
    st.tuples(st.just("truncate"), st.integers(0, 2), st.integers(0, 30)),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_replica_logs_as_runs_read_like_lists_of_tuples(script):
    store = Records()
    logs, model = [ReplicaLog(store) for _ in range(3)], [[] for _ in range(3)]
    epoch, counter = 0, 0
    for op, i, x in script:
        if op == "produce":
            epoch += 1  # every append at a new epoch, so runs and batch boundaries both matter
            recs = [(counter + j, (counter + j) % 4, counter + j, 0.5 * (counter + j)) for j in range(x)]
            counter += x
            pid = None if x % 2 else "p"
            logs[i].add(*store.append(epoch, pid, *zip(*recs)) if recs else (len(store), len(store)))
            model[i] += [(epoch, m, k, pid, s, t) for m, k, s, t in recs]
        elif op == "fetch":
            src = logs[x]
            start = len(logs[i])
            if start <= len(src) and model[i] == model[x][:start]:
                for lo, hi in src.spans(start, start + 7):
                    logs[i].add(lo, hi)
                model[i] += model[x][start:start + 7]
        else:
            logs[i].truncate(x)
            del model[i][x:]
        for lg, md in zip(logs, model):
            assert len(lg) == len(md) and list(lg) == md and lg[:] == md and lg[2:5] == md[2:5]
            assert [lg.epoch_at(j) for j in range(len(md))] == [e[0] for e in md]
            if md:
                assert lg[-1] == md[-1] and lg.epoch_at(-1) == md[-1][0]
            last = {}
            for e in md:
                if e[3] is not None:
                    last[e[3]] = e[4]
            assert lg.last_seqs() == last


def test_the_store_keeps_values_that_do_not_fit_a_typed_column_as_they_are():
    store = Records()
    lg = ReplicaLog(store)
    lg.add(*store.append(0, None, [1, 2], [3, 4], [0, 1], [0.0, 1.0]))
    lg.add(*store.append(1, "p", ["id-a", 2**70], [True, "k"], [2, 3], [2, 3.5]))
    assert list(lg) == [(0, 1, 3, None, 0, 0.0), (0, 2, 4, None, 1, 1.0),
                        (1, "id-a", True, "p", 2, 2), (1, 2**70, "k", "p", 3, 3.5)]
    assert type(lg[2][2]) is bool and type(lg[2][5]) is int  # not coerced to 1 or 2.0


def test_a_partitions_replicas_share_one_store_and_a_fetch_copies_no_record():
    w = log_world(4, partitions=2, rate=400, stop_at=2, consumers=1)
    w.sim.run(until=4)
    c = w.cluster
    logs = [c.log_of(b, "events", 0) for b in c.names]
    assert len({id(lg.store) for lg in logs}) == 1 and len(logs[0]) > 100
    assert all(len(lg.run_lo) == 1 for lg in logs)  # no failover: each replica is one run
    assert list(logs[0]) == list(logs[1]) == list(logs[2])


# -- the checker's column paths against a plain-Python reference ---------------------------------
def reference(events):
    """Per sent message (send order): acked, processed count, first processing time."""
    rows, seen = {}, []
    for ev, m, _k, _t in events:
        if ev == "send" and m not in rows:
            rows[m] = {"acked": False, "processed": 0, "first": None}
            seen.append(m)
    for ev, m, _k, t in events:
        if m in rows and ev == "ack":
            rows[m]["acked"] = True
        if m in rows and ev == "process":
            r = rows[m]
            r["processed"] += 1
            r["first"] = t if r["first"] is None else min(r["first"], t)
    return seen, rows


def reference_order_violations(events, seen, rows):
    key = {}
    for ev, m, k, _t in events:
        if ev == "send" and m not in key:
            key[m] = k
    done = sorted((rows[m]["first"], i, key[m]) for i, m in enumerate(seen) if rows[m]["first"] is not None)
    best, bad = {}, 0
    for _f, i, k in done:
        bad += i < best.get(k, -1)
        best[k] = max(best.get(k, -1), i)
    return bad


histories = st.lists(st.tuples(st.sampled_from(("send", "ack", "fail", "process")), st.integers(1, 40),
                               st.integers(0, 3), st.integers(0, 20).map(float)), max_size=120)


@settings(max_examples=80, deadline=None)
@given(histories, st.sampled_from(["dense", "sparse", "str"]))
def test_the_column_checker_agrees_with_a_plain_reference(events, ids):
    # dense ids take the lookup array; sparse ones (and duplicate sends) the sorted path; string
    # keys the DataFrame path and pandas' groupby
    if ids == "sparse":
        events = [(e, m * 10**9, k, t) for e, m, k, t in events]
    log = DeliveryLog()
    for e, m, k, t in events:
        log.record(e, m, f"k{k}" if ids == "str" else k, t)
    seen, rows = reference(events)
    tab = delivery_table(log)
    assert tab["msg"].tolist() == seen
    assert tab["acked"].tolist() == [rows[m]["acked"] for m in seen]
    assert tab["processed"].tolist() == [rows[m]["processed"] for m in seen]
    got = [None if np.isnan(x) else x for x in tab["first_processed_at"]]
    assert got == [rows[m]["first"] for m in seen]
    assert order_violations(tab) == reference_order_violations(events, seen, rows)
    frame = delivery_table(pd.DataFrame(events, columns=["event", "msg", "key", "time"]))
    assert frame.drop(columns="key").equals(delivery_table(events).drop(columns="key"))


def test_delivery_log_keys_are_typed_until_a_key_is_not_an_int():
    log = DeliveryLog()
    log.extend("send", [1, 2], [10, 20], 0.0)
    log.record("ack", 1, 10, 0.5)
    assert log.key.typecode == "q" and log.frame()["key"].dtype == np.int64
    log.record("process", 1, True, 1.0)  # a bool is not an int key: from here on a list of objects
    log.extend("process", [2], ["b"], 1.0)
    assert log.key == [10, 20, 10, True, "b"] and type(log.key[3]) is bool
    big = DeliveryLog()
    big.extend("send", [1], [2**70], 0.0)
    assert big.key == [2**70]
    with pytest.raises(ValueError, match="unknown delivery event"):
        check_delivery([("sent", 1, "a", 0.0)])
