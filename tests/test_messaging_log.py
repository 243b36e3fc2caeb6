"""The Kafka-like log: acks and leader failover, the idempotent producer, per-partition order,
group assignment, and the three commit policies' guarantees under random faults (hypothesis)."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.messaging import GroupConfig, LogConfig, TopicConfig, assign
from models.messaging.scenarios import log_world
from simulator import LogNormal
from simulator.history.delivery import check_delivery


def test_configs_are_checked_at_construction():
    with pytest.raises(ValueError, match="min_insync_replicas"):
        TopicConfig(replication_factor=2, min_insync_replicas=3)
    with pytest.raises(ValueError, match="heartbeat_interval_s"):
        GroupConfig(session_timeout_s=1, heartbeat_interval_s=2)
    with pytest.raises(ValueError, match="commit"):
        GroupConfig(commit="exactly")
    with pytest.raises(ValueError, match="replica_lag_time_max_s"):
        LogConfig(replica_lag_time_max_s=0)


def test_range_and_round_robin_assignment():
    assert assign(["b", "a"], 5, "range") == {"a": [0, 1, 2], "b": [3, 4]}
    assert assign(["a", "b"], 5, "roundrobin") == {"a": [0, 2, 4], "b": [1, 3]}
    assert assign(["a", "b", "c"], 2, "range") == {"a": [0], "b": [1], "c": []}


def leader_cut_then_crash(acks: str, min_isr: int, seed: int = 1):
    """The leader of partition 0 (kafka-b0) is cut off from its followers but not from clients
    at 2 s, crashes at 5 s (before replica.lag.time.max: followers are still in the ISR), recovers at 8 s."""
    w = log_world(seed, acks=acks, min_insync_replicas=min_isr, partitions=3, rate=300, stop_at=10, consumers=1)
    sim = w.sim
    sim.faults.partition(2.0, [["kafka-b0"], ["kafka-b1", "kafka-b2"]], heal_at=5.0)
    sim.faults.crash(5.0, "kafka-b0", recover_at=8.0)
    sim.run(until=20)
    return check_delivery(w.log), w


def test_acks_1_loses_acknowledged_messages_across_leader_failover_acks_all_does_not():
    r1, w1 = leader_cut_then_crash("1", 1)
    ra, wa = leader_cut_then_crash("all", 2)
    assert w1.cluster.elections >= 1 and r1["lost"] > 50  # ~3 s of partition 0's acknowledged writes
    assert ra["lost"] == 0 and ra["acked"] == ra["sent"]
    # the truncated suffix is gone from every replica: the logs agree after recovery
    logs = [[e[1] for e in w1.cluster.log_of(b, "events", 0)] for b in ("kafka-b0", "kafka-b1", "kafka-b2")]
    assert logs[0] == logs[1] == logs[2]


@pytest.mark.parametrize("idempotent", [True, False])
def test_idempotent_producer_dedupes_retries(idempotent):
    """Requests time out (70 ms) more often than not over a 50 ms-median network, so batches are
    retried after being appended; only sequence numbers keep the log free of copies."""
    w = log_world(2, idempotent=idempotent, latency=LogNormal(0.03, 0.5), request_timeout_s=0.07, rate=200,
                  stop_at=3, partitions=2, consumers=1)
    w.sim.run(until=30)
    assert w.producer.retries > 10
    copies = Counter(e[1] for p in range(2) for e in w.cluster.log_of(w.cluster.leader("events", p), "events", p))
    dup = sum(1 for c in copies.values() if c > 1)
    assert (dup == 0) if idempotent else (dup > 0)
    assert check_delivery(w.log)["lost"] == 0


def test_per_partition_order_holds_with_one_consumer_per_partition():
    w = log_world(3, partitions=4, consumers=4, rate=800, keys=40, stop_at=4)
    w.sim.run(until=8)
    r = check_delivery(w.log)
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["order_violations"] == 0
    assert sorted(len(c.owned) for c in w.consumers) == [1, 1, 1, 1]


@st.composite
def nemeses(draw):
    """Consumer crashes, pauses (some past the 1 s session timeout), a consumer or the coordinator
    cut off, and a broker crash (leader failover) — all within [0.3, 3] s."""
    faults = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["crash", "pause", "isolate", "broker"]))
        at = draw(st.floats(0.3, 3.0))
        node = f"consumer{draw(st.integers(0, 2))}"
        if kind == "crash":
            faults.append(("crash", at, node, at + draw(st.floats(0.1, 1.5))))
        elif kind == "pause":
            faults.append(("pause", at, node, draw(st.floats(0.2, 2.0))))
        elif kind == "isolate":
            faults.append(("isolate", at, draw(st.sampled_from([node, "coordinator"])), at + draw(st.floats(0.2, 1.5))))
        else:
            faults.append(("crash", at, f"kafka-b{draw(st.integers(0, 2))}", at + draw(st.floats(0.5, 2.0))))
    return faults


def run_with(commit: str, faults, seed: int):
    w = log_world(seed, commit=commit, partitions=4, consumers=3, rate=300, stop_at=3.5, session_timeout_s=1.0,
                  heartbeat_interval_s=0.2, max_poll_records=20, service=0.001)
    f = w.sim.faults
    for kind, at, node, x in faults:
        if kind == "crash":
            f.crash(at, node, recover_at=x)
        elif kind == "pause":
            f.pause(at, node, x)
        else:
            f.isolate(at, node, heal_at=x)
    w.sim.run(until=12)
    return check_delivery(w.log)


SETTINGS = settings(max_examples=6, deadline=None, derandomize=True)


@SETTINGS
@given(faults=nemeses(), seed=st.integers(0, 2**32 - 1))
def test_at_most_once_never_duplicates(faults, seed):
    assert run_with("before", faults, seed)["duplicated"] == 0


@SETTINGS
@given(faults=nemeses(), seed=st.integers(0, 2**32 - 1))
def test_at_least_once_never_loses_an_acknowledged_message(faults, seed):
    assert run_with("after", faults, seed)["lost"] == 0


@SETTINGS
@given(faults=nemeses(), seed=st.integers(0, 2**32 - 1))
def test_effectively_once_neither_loses_nor_duplicates(faults, seed):
    r = run_with("transactional", faults, seed)
    assert r["lost"] == 0 and r["duplicated"] == 0
