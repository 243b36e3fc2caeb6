"""Fan-out (SNS to SQS) and request/reply over queues, checked against their definitions."""

import pandas as pd
import pytest

from models.messaging import (
    PUBLISH,
    ConsumerConfig,
    HandlerConfig,
    QueueBroker,
    QueueConfig,
    QueueConsumer,
    QueueProducer,
    Requester,
    Responder,
    Topic,
)
from simulator import Constant, Exponential, LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, check_delivery

SUBS = ("billing", "shipping", "analytics")


def fan_out(seed: int, slow: str | None = None, until: float = 12.0):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.3))
    broker = QueueBroker(sim, queues={q: QueueConfig(visibility_timeout_s=5.0) for q in SUBS})
    Topic(broker, "orders", SUBS)
    sent = DeliveryLog()
    QueueProducer(sim, "producer", "broker", "orders", rate=100.0, log=sent, stop_at=8.0, op=PUBLISH)
    logs = {}
    for q in SUBS:
        logs[q] = DeliveryLog()
        service = Exponential(0.02 if q == slow else 0.002)  # the slow one: 100/s offered, 50/s served
        QueueConsumer(sim, f"c-{q}", "broker", q, log=logs[q], handler=HandlerConfig(service=service),
                      config=ConsumerConfig(concurrency=1, wait_s=1.0))
    depth = {q: [] for q in SUBS}

    def sample():
        for q in SUBS:
            depth[q].append(broker.depth(q)[0])
        sim.at(0.5, sample)

    sim.at(0.5, sample)
    sim.run(until=until)
    return sent, logs, depth


def per_subscription(sent: DeliveryLog, log: DeliveryLog) -> dict:
    return check_delivery(pd.concat([sent.frame(), log.frame()], ignore_index=True))


@pytest.mark.parametrize("seed", [1, 2])
def test_every_subscription_gets_every_acknowledged_publish_exactly_once(seed):
    sent, logs, _ = fan_out(seed, until=20.0)
    acked = int((sent.frame()["event"] == "ack").sum())
    assert acked > 700  # ~800 published over 8 s
    for q in SUBS:
        r = per_subscription(sent, logs[q])
        assert r["lost"] == 0 and r["duplicated"] == 0, (q, r)
        assert r["exactly_once"] >= acked


def test_a_slow_subscriber_backs_up_only_its_own_queue():
    """Offered 100/s to each subscription; the slow one serves ~50/s, so its backlog grows
    by ~50/s while the publish lasts; the others stay near empty."""
    _, _, depth = fan_out(3, slow="analytics", until=8.0)
    assert max(depth["analytics"]) > 200  # ~50/s x 8 s = 400, minus what it served early
    for q in ("billing", "shipping"):
        assert max(depth[q]) < 20, (q, max(depth[q]))


def test_topic_refuses_unknown_or_duplicate_subscriptions():
    sim = Simulation(seed=1)
    broker = QueueBroker(sim, queues={"a": QueueConfig()})
    with pytest.raises(ValueError, match="distinct queues"):
        Topic(broker, "t", ["a", "nope"])
    with pytest.raises(ValueError, match="already a queue"):
        Topic(broker, "a", ["a"])


def request_reply(pause_at: float | None = None, pause_s: float = 0.0, seed: int = 1):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.001))
    QueueBroker(sim, queues={"requests": QueueConfig(visibility_timeout_s=10.0), "replies.r1": QueueConfig()})
    Responder(sim, "responder", "broker", "requests", service=Constant(0.005), wait_s=1.0)
    req = Requester(sim, "r1", "broker", "requests", "replies.r1", rate=50.0, timeout_s=0.5, stop_at=6.0, wait_s=1.0)
    if pause_at is not None:
        sim.faults.pause(pause_at, "responder", pause_s)
    sim.run(until=10.0)
    return req, req.frame()


def test_every_request_gets_its_own_reply_after_four_hops_and_the_work():
    """Constant 1 ms one-way: send request (1), receive (long poll answered at once: 1 back),
    work 5 ms, send reply (1 + 1 for the ack), the requester's long poll returns it (1):
    at least 4 one-way hops + 5 ms of work."""
    req, df = request_reply()
    assert len(df) > 250 and (df["outcome"] == "ok").all()
    assert req.late_replies == 0
    assert df["latency"].min() >= 0.004 + 0.005 - 1e-9
    assert df["corr"].is_unique


def test_replies_after_a_timeout_are_late_never_matched_to_another_request():
    """The responder pauses 2 s (a GC pause): requests sent in the pause time out after 0.5 s;
    their replies arrive after the pause and are counted as late, not taken for newer requests."""
    req, df = request_reply(pause_at=2.0, pause_s=2.0)
    timeouts = df[df["outcome"] == "timeout"]
    assert len(timeouts) > 50  # ~50/s x (2 s - the 0.5 s timeout), roughly
    assert req.late_replies >= len(timeouts) - 5  # every timed-out request is answered late (a few still queued)
    ok = df[df["outcome"] == "ok"]
    assert (ok["latency"] <= 0.5 + 1e-9).all()  # a reply is only ever matched within its own timeout
    assert set(ok["corr"]).isdisjoint(set(timeouts["corr"]))


def test_trace_context_travels_through_the_queue():
    """With tracing on, each message's processing span is a child of its publish span (the
    body carries the trace context, as a W3C traceparent header would): one trace per message,
    from producer through broker to consumer; with tracing off the body stays empty."""
    from simulator.observe import enable_spans

    sim = Simulation(seed=4)
    sim.network(latency=Constant(0.001))
    QueueBroker(sim, queues={"q": QueueConfig(visibility_timeout_s=5.0)})
    log = DeliveryLog()
    spans = enable_spans(sim)
    QueueProducer(sim, "p", "broker", "q", rate=50.0, log=log, stop_at=2.0)
    QueueConsumer(sim, "c", "broker", "q", log=log, handler=HandlerConfig(service=Constant(0.002)),
                  config=ConsumerConfig(wait_s=1.0))
    sim.run(until=4.0)
    df = spans.frame()
    pub = df[df["op"] == "publish q"]
    proc = df[df["op"] == "process q"]
    assert len(pub) > 60 and len(proc) == len(pub)  # every message processed once, each traced
    by_row = df.set_index("span_id")
    for _, r in proc.iterrows():
        parent = by_row.loc[r["parent_id"]]
        assert parent["op"] == "publish q" and parent["trace_id"] == r["trace_id"]
        assert r["start"] >= parent["start"]
    assert pub["trace_id"].is_unique
