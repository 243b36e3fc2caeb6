"""The SQS-like queue against closed forms: redrive P(DLQ) = p^m, visibility-timeout redelivery
e^(-mu V), competing consumers as M/M/c (Erlang C, Little's law); FIFO order; durability."""

import math

import numpy as np
import pytest

from experiments.queueing import erlang_c
from models.messaging import (
    ConsumerConfig,
    HandlerConfig,
    Inbox,
    QueueBroker,
    QueueConfig,
    QueueConsumer,
    QueueProducer,
)
from simulator import Constant, Exponential, Simulation
from simulator.history.delivery import DeliveryLog, check_delivery


def world(seed, queues, *, rate, n, handler, config=None, durable=True, consumers=1, inbox_ttl_s=None):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0))
    b = QueueBroker(sim, "b", queues=queues, durable=durable)
    log = DeliveryLog()
    inbox = None if inbox_ttl_s is None else Inbox(sim, inbox_ttl_s)
    QueueProducer(sim, "p", "b", "q", rate=rate, log=log, limit=n, groups=4)
    cs = [QueueConsumer(sim, f"c{i}", "b", "q", log=log, handler=handler, config=config or ConsumerConfig(),
                        inbox=inbox) for i in range(consumers)]
    return sim, b, log, cs


def test_configs_are_checked_at_construction():
    with pytest.raises(ValueError, match="max_receive_count"):
        QueueConfig(max_receive_count=3)
    with pytest.raises(ValueError, match="max_receive_count"):
        QueueConfig(max_receive_count=0, dead_letter_queue="d")
    with pytest.raises(ValueError, match="visibility_timeout_s"):
        QueueConfig(visibility_timeout_s=-1)
    with pytest.raises(ValueError, match="failure_p"):
        HandlerConfig(failure_p=1.5)
    with pytest.raises(ValueError, match="wait_s"):
        ConsumerConfig(wait_s=21)
    with pytest.raises(ValueError, match="dead_letter_queue"):
        QueueBroker(Simulation(), queues={"q": QueueConfig(fifo=True, max_receive_count=2, dead_letter_queue="d"),
                                          "d": QueueConfig()})


@pytest.mark.parametrize("p,m", [(0.5, 3), (0.3, 2)])
def test_dead_letter_probability_is_p_to_the_m(p, m):
    """Each delivery fails independently w.p. p and is nacked; a message is delivered at most m
    times, so P(DLQ) = p^m. Binomial over n messages: |hat - p^m| <= 4 sqrt(p^m(1-p^m)/n)."""
    n = 2500
    sim, b, log, _ = world(3, {"q": QueueConfig(max_receive_count=m, dead_letter_queue="dlq"), "dlq": QueueConfig()},
                           rate=200, n=n, handler=HandlerConfig(service=Exponential(0.002), failure_p=p),
                           config=ConsumerConfig(concurrency=4))
    sim.run(until=n / 200 + 10)
    q = p ** m
    assert b.counters("q")["dead_lettered"] == b.depth("dlq")[0]
    assert abs(b.counters("q")["dead_lettered"] / n - q) <= 4 * math.sqrt(q * (1 - q) / n)
    r = check_delivery(log)
    assert r["lost"] == b.depth("dlq")[0] and r["duplicated"] == 0  # DLQ'd = never processed


def test_visibility_timeout_below_processing_time_redelivers_e_to_the_minus_mu_v():
    """Exponential processing of mean 1/mu = 1 s, V = 1 s: each delivery outlives its visibility
    timeout w.p. e^(-mu V) = 0.368 (plenty of idle slots, zero network). Binomial 4 SE."""
    sim, b, log, cs = world(1, {"q": QueueConfig(visibility_timeout_s=1.0)}, rate=50, n=2000,
                            handler=HandlerConfig(service=Exponential(1.0)), config=ConsumerConfig(concurrency=300))
    sim.run(until=2000 / 50 + 30)
    c = b.counters("q")
    frac, q = c["visibility_expired"] / c["received"], math.exp(-1.0)
    assert abs(frac - q) <= 4 * math.sqrt(q * (1 - q) / c["received"])
    r = check_delivery(log)
    assert r["lost"] == 0 and r["duplicated"] > 0.2 * 2000  # at least once: redeliveries are processed again


def test_idempotent_consumer_removes_the_duplicates_of_a_short_visibility_timeout():
    kw = dict(rate=50, n=600, handler=HandlerConfig(service=Exponential(1.0)), config=ConsumerConfig(concurrency=100))
    sim, b, log, _ = world(2, {"q": QueueConfig(visibility_timeout_s=0.5)}, **kw)
    sim.run(until=40)
    assert check_delivery(log)["duplicated"] > 100
    # same seed and streams, with an inbox shared by the consumers
    sim2, b2, log2, cs2 = world(2, {"q": QueueConfig(visibility_timeout_s=0.5)}, **kw, inbox_ttl_s=3600)
    sim2.run(until=40)
    r = check_delivery(log2)
    assert r["duplicated"] == 0 and r["lost"] == 0 and cs2[0].skipped_duplicates > 100


def test_competing_consumers_are_an_m_m_c_queue():
    """Poisson sends, c = 4 slots, exponential service, long polling over a zero-latency network:
    the wait from send to receive is M/M/c's Wq = C(c, a) / (c mu - lambda) (Erlang C), and the
    time-average visible depth Lq = lambda Wq (Little). 4 SE over independent replications."""
    c, rho, mean, n = 4, 0.7, 0.01, 8000
    lam = rho * c / mean
    wq = erlang_c(c, rho * c) / (c / mean - lam)
    waits, depths = [], []
    for seed in range(6):
        sim, b, log, cs = world(100 + seed, {"q": QueueConfig(visibility_timeout_s=1000)}, rate=lam, n=n,
                                handler=HandlerConfig(service=Exponential(mean)),
                                config=ConsumerConfig(concurrency=c))
        b.sample_every(mean / 2, until=n / lam)
        sim.run(until=n / lam + 5)
        w = np.array([r[2] - r[1] for r in cs[0].receipts])[n // 10:]
        waits.append(w.mean())
        depths.append(b.metrics()["visible"].mean())
    se = np.std(waits, ddof=1) / math.sqrt(len(waits))
    assert abs(np.mean(waits) - wq) <= 4 * se + 0.02 * wq
    se_l = np.std(depths, ddof=1) / math.sqrt(len(depths))
    assert abs(np.mean(depths) - lam * wq) <= 4 * se_l + 0.05 * lam * wq


def test_fifo_keeps_group_order_through_failures_standard_does_not():
    h = HandlerConfig(service=Exponential(0.01), failure_p=0.3)
    cfg = ConsumerConfig(concurrency=8)
    viol = {}
    for fifo in (True, False):
        sim, b, log, _ = world(5, {"q": QueueConfig(fifo=fifo, visibility_timeout_s=5)}, rate=100, n=800,
                               handler=h, config=cfg)
        sim.run(until=30)
        r = check_delivery(log)
        assert r["lost"] == 0
        viol[fifo] = r["order_violations"]
    assert viol[True] == 0 and viol[False] > 0


def test_a_volatile_broker_loses_acknowledged_messages_in_a_crash_a_durable_one_does_not():
    lost = {}
    for durable in (True, False):
        sim, b, log, _ = world(6, {"q": QueueConfig()}, rate=200, n=1000, durable=durable,
                               handler=HandlerConfig(service=Exponential(0.05)), config=ConsumerConfig(concurrency=2))
        sim.at(2.0, lambda sim=sim: sim.nodes["b"].crash())
        sim.at(2.5, lambda sim=sim: sim.nodes["b"].recover())
        sim.run(until=40)
        lost[durable] = check_delivery(log)["lost"]
    assert lost[True] == 0 and lost[False] > 0


def test_long_poll_answers_as_soon_as_a_message_arrives():
    sim, b, log, cs = world(7, {"q": QueueConfig()}, rate=1, n=5, handler=HandlerConfig(service=0.001),
                            config=ConsumerConfig(wait_s=20))
    sim.run(until=30)
    assert [r[2] - r[1] for r in cs[0].receipts] == [0.0] * 5
