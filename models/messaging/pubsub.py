"""Publish/subscribe fan-out and request/reply, both over the queue broker.

**Fan-out** (Amazon SNS Developer Guide, "Fanout to Amazon SQS queues"): a :class:`Topic` on a
:class:`~models.messaging.queue.QueueBroker` stores a copy of every published message in each
subscribed queue, in one step on the broker, and acknowledges the publisher once all copies are
stored. Each subscription then has its own consumers and its own backlog: a slow or broken
subscriber never slows the others down (it only grows its own queue). Publish with
``QueueProducer(..., queue=TOPIC_NAME, op=PUBLISH)``.

**Request/reply** (Hohpe & Woolf, *Enterprise Integration Patterns*, 2003: Request-Reply,
Return Address, Correlation Identifier): a :class:`Requester` sends each request to a request
queue with its own reply queue (the return address) and a fresh correlation id, and waits up to
``timeout_s`` for a reply carrying that id on its reply queue; a :class:`Responder` consumes the
request queue, does the work and sends the reply to the address in the request. A reply that
arrives after its request timed out is a **late reply**: counted, deleted, and never matched to
another request (the correlation id says whose it is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulator import Distribution, Exponential, RpcError

from .queue import DELETE, RECEIVE, SEND, QueueBroker, receive_once

if TYPE_CHECKING:
    import pandas as pd

    from simulator import Message, Simulation

PUBLISH = "sns.publish"


class Topic:
    """A topic on ``broker`` fanning out to the queues in ``subscriptions``."""

    def __init__(self, broker: QueueBroker, name: str, subscriptions: Sequence[str]) -> None:
        subs = tuple(subscriptions)
        if not subs:
            raise ValueError(f"topic {name!r}: subscriptions must name at least one queue")
        unknown = [q for q in subs if q not in broker.queues]
        if unknown or len(set(subs)) != len(subs):
            raise ValueError(f"topic {name!r}: subscriptions must be distinct queues of the broker, got {subs!r} "
                             f"(queues: {sorted(broker.queues)})")
        if name in broker.queues or name in getattr(broker, "topics", {}):
            raise ValueError(f"topic name {name!r} is already a queue or topic on {broker.name}")
        self.broker, self.name, self.subscriptions = broker, name, subs
        if not hasattr(broker, "topics"):
            broker.topics = {}
            broker.node.on(PUBLISH, lambda msg: _on_publish(broker, msg))
        broker.topics[name] = self
        self.published = 0


def _on_publish(broker: QueueBroker, msg: Message):
    topic, msg_id, group, body, _dedup = msg.payload
    t = broker.topics.get(topic)
    if t is None:
        raise RpcError(("no_such_topic", topic))
    t.published += 1
    return broker.store_copies(msg, t.subscriptions, msg_id, group, body)


class Responder:
    """Consumes ``request_queue``: each request ``(reply_to, corr_id, body)`` takes a sampled
    ``service`` time, then the reply ``(corr_id, body)`` is sent to ``reply_to`` and the
    request deleted (a crash in between redelivers it: the reply may be sent twice)."""

    def __init__(self, sim: Simulation, name: str, broker: str, request_queue: str, *,
                 service: Distribution | float = Exponential(0.01), concurrency: int = 1,
                 rpc_timeout_s: float = 1.0, wait_s: float = 20.0) -> None:
        if not (isinstance(concurrency, int) and concurrency >= 1):
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        self.sim, self.name, self.broker, self.queue = sim, name, broker, request_queue
        self.node = sim.nodes.get(name) or sim.node(name)
        self._service = sim.sampler(service, f"responder.{name}.service")
        self.rpc_timeout_s, self.wait_s, self.concurrency = rpc_timeout_s, wait_s, concurrency
        self.replied = 0
        self.node.on_recover(self._start)
        sim.at(0.0, self._start)

    def _start(self) -> None:
        for _ in range(self.concurrency):
            self._poll()

    def _poll(self) -> None:
        node = self.node

        def handle(batch: list) -> None:
            receipt, msg_id, group, body = batch[0][:4]
            node.after(self._service() * node.slow_factor, lambda: self._reply(receipt, msg_id, group, body))

        receive_once(node, self.broker, self.queue, handle, self._poll, wait_s=self.wait_s,
                     rpc_timeout_s=self.rpc_timeout_s, backoff_s=0.1)

    def _reply(self, receipt, msg_id, group, body) -> None:
        reply_to, corr, _payload = body
        node = self.node

        def sent(outcome: str, value) -> None:
            if outcome == "ok":
                self.replied += 1
                node.call(self.broker, DELETE, (self.queue, receipt), self.rpc_timeout_s, lambda o, v: self._poll())
            else:  # not stored: leave the request to its visibility timeout (it comes back)
                self._poll()

        node.call(self.broker, SEND, (reply_to, ("reply", corr), group, (corr, "done"), None), self.rpc_timeout_s, sent)


class Requester:
    """Sends ``rate`` requests per second (Poisson) to ``request_queue`` and waits ``timeout_s``
    for each reply on its own ``reply_queue``. ``outcomes``: one ``(corr_id, start, end,
    outcome)`` per request, outcome ``ok`` | ``timeout`` | ``refused`` (the send itself failed)
    | ``in_flight``; ``late_replies`` counts replies whose request had already timed out."""

    def __init__(self, sim: Simulation, name: str, broker: str, request_queue: str, reply_queue: str, *,
                 rate: float, timeout_s: float = 1.0, stop_at: float = math.inf, rpc_timeout_s: float = 1.0,
                 wait_s: float = 20.0) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of requests per second > 0, got {rate!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.sim, self.name, self.broker = sim, name, broker
        self.request_queue, self.reply_queue = request_queue, reply_queue
        self.node = sim.nodes.get(name) or sim.node(name)
        self.timeout_s, self.stop_at, self.rpc_timeout_s, self.wait_s = timeout_s, stop_at, rpc_timeout_s, wait_s
        self._gap = sim.sampler(Exponential(1.0 / rate), f"requester.{name}.arrivals")
        self._open: dict[int, float] = {}  # corr id -> start
        self.outcomes: list[tuple[int, float, float, str]] = []
        self.late_replies = 0
        self._next = 0
        sim.at(self._gap(), self._arrive)
        sim.at(0.0, self._listen)
        self.node.on_recover(self._listen)

    def _arrive(self) -> None:
        sim = self.sim
        if sim.now >= self.stop_at:
            return
        sim.at(self._gap(), self._arrive)
        if not self.node.up:
            return
        corr = self._next
        self._next += 1
        self._open[corr] = sim.now
        self.node.after(self.timeout_s, lambda: self._expire(corr))

        def sent(outcome: str, value) -> None:
            if outcome != "ok" and outcome != "timeout" and corr in self._open:
                self._finish(corr, "refused")

        self.node.call(self.broker, SEND, (self.request_queue, ("req", self.name, corr), corr % 1_000_003,
                                           (self.reply_queue, corr, None), None), self.rpc_timeout_s, sent)

    def _expire(self, corr: int) -> None:
        if corr in self._open:
            self._finish(corr, "timeout")

    def _finish(self, corr: int, outcome: str) -> None:
        start = self._open.pop(corr)
        self.outcomes.append((corr, start, self.sim.now, outcome))

    def _listen(self) -> None:
        node = self.node
        if not node.up:
            return

        def got(outcome: str, value) -> None:
            if outcome != "ok":
                node.after(0.1, self._listen)
                return
            for receipt, _msg_id, _group, body, *_ in value or ():
                corr = body[0]
                if corr in self._open:
                    self._finish(corr, "ok")
                else:
                    self.late_replies += 1  # its request already timed out: never matched to another
                node.call(self.broker, DELETE, (self.reply_queue, receipt), self.rpc_timeout_s, lambda o, v: None)
            self._listen()

        node.call(self.broker, RECEIVE, (self.reply_queue, 10, self.wait_s, None), self.wait_s + self.rpc_timeout_s,
                  got)

    def frame(self) -> pd.DataFrame:
        """One row per request: corr, start, end and latency (s; NaN while in flight), outcome."""
        import pandas as pd

        rows = self.outcomes + [(c, s, math.nan, "in_flight") for c, s in self._open.items()]
        df = pd.DataFrame(rows, columns=["corr", "start", "end", "outcome"])
        return df.assign(latency=df["end"] - df["start"])
