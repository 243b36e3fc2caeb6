"""Competing consumers of a queue: concurrency, handler times, failures, retries, an idempotent inbox.

A :class:`QueueConsumer` is a node running ``concurrency`` independent slots; each slot
long-polls the broker (``sqs.receive``), runs the handler on each received message, and on
success applies the message's side effect (recorded as ``process`` in the delivery log) and
deletes it. A handler attempt takes a sampled service time (``HandlerConfig.service``, scaled
by the node's ``slow_factor``) and fails with probability ``failure_p`` (transient, independent
per attempt) or always if the message is *poison*. Failed attempts are retried inside the
consumer (``retry``: a :class:`~models.resilience.RetryPolicy`, backoff and jitter included);
when those are used up the consumer nacks (``on_failure="nack"``: visible again at once) or
abandons the message to its visibility timeout (``"abandon"``). Either way the broker's receive
count grows, and its redrive policy moves the message to the DLQ after ``max_receive_count``.

The **idempotent consumer** (Hohpe & Woolf's *Idempotent Receiver*; Richardson's
"Idempotent Consumer" pattern) keeps an :class:`Inbox` of processed message ids in the same
store as its side effects, so "seen?" + "apply" + "remember" is one atomic step: a redelivered
message is deleted without applying its effect again, for as long as its id stays in the inbox
(``ttl_s``). A duplicate delivered after the TTL is applied again.

A crash loses the slots' work in progress (timers die with the node); on recovery the slots
start polling again. A pause freezes them: the visibility timeout keeps running at the broker.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.resilience.retry import RetryPolicy
from simulator import Distribution, Exponential
from simulator.distributions import as_distribution
from simulator.history.delivery import DeliveryLog

from .queue import CHANGE_VISIBILITY, DELETE, receive_once

if TYPE_CHECKING:
    from simulator import Node, Simulation


def _prob(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}")


@dataclass(frozen=True)
class HandlerConfig:
    """What handling one message costs and how it fails."""

    service: Distribution | float = Exponential(0.01)  # seconds per attempt
    failure_p: float = 0.0  # transient failure probability per attempt
    poison: frozenset = frozenset()  # message ids whose handler always fails

    def __post_init__(self) -> None:
        object.__setattr__(self, "service", as_distribution(self.service, "service"))
        _prob("failure_p", self.failure_p)
        object.__setattr__(self, "poison", frozenset(self.poison))


@dataclass(frozen=True)
class ConsumerConfig:
    """How a consumer polls and what it does with a failure."""

    concurrency: int = 1  # slots, each handling one message at a time
    max_messages: int = 1  # per receive (SQS: 1..10)
    wait_s: float = 20.0  # long-poll wait (SQS: 0..20)
    visibility_s: float | None = None  # None: the queue's VisibilityTimeout
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=1))
    on_failure: str = "nack"  # "nack" | "abandon"
    rpc_timeout_s: float = 1.0  # beyond wait_s, for receive; for delete / nack
    idle_backoff_s: float = 0.1  # after a failed receive

    def __post_init__(self) -> None:
        if not (isinstance(self.concurrency, int) and 1 <= self.concurrency <= 100_000):
            raise ValueError(f"concurrency must be an integer in [1, 100000], got {self.concurrency!r}")
        if not (isinstance(self.max_messages, int) and 1 <= self.max_messages <= 10):
            raise ValueError(f"max_messages must be an integer in [1, 10] (SQS), got {self.max_messages!r}")
        if not (isinstance(self.wait_s, (int, float)) and 0 <= self.wait_s <= 20):
            raise ValueError(f"wait_s must be in [0, 20] seconds (SQS long polling), got {self.wait_s!r}")
        if self.visibility_s is not None and not (isinstance(self.visibility_s, (int, float))
                                                  and 0 <= self.visibility_s <= 43_200):
            raise ValueError(f"visibility_s must be None or in [0, 43200] seconds (SQS), got {self.visibility_s!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry must be a RetryPolicy, got {self.retry!r}")
        if self.on_failure not in ("nack", "abandon"):
            raise ValueError(f"on_failure must be 'nack' or 'abandon', got {self.on_failure!r}")
        for n in ("rpc_timeout_s", "idle_backoff_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a number of seconds > 0, got {v!r}")


class Inbox:
    """Processed message ids with the time each was processed; an id is *seen* for ``ttl_s``.

    It stands for a table in the consumer's own database, shared by all consumers of the group:
    checking it and applying the side effect happen in one transaction."""

    def __init__(self, sim: Simulation, ttl_s: float = 3600.0) -> None:
        if not (isinstance(ttl_s, (int, float)) and ttl_s > 0):
            raise ValueError(f"ttl_s must be a number of seconds > 0, got {ttl_s!r}")
        self.sim, self.ttl_s = sim, float(ttl_s)
        self._at: dict = {}
        self.hits = 0

    def first_time(self, msg_id: Hashable) -> bool:
        """Atomically: True (and remember it) unless ``msg_id`` was processed within the TTL."""
        now = self.sim.now
        t = self._at.get(msg_id)
        if t is not None and now - t < self.ttl_s:
            self.hits += 1
            return False
        self._at[msg_id] = now
        return True


class PollingSlots:
    """``config.concurrency`` receive loops on ``queue`` at ``broker`` (the SQS worker pattern), restarted
    when the node recovers: each slot long-polls with :func:`~models.messaging.queue.receive_once` and hands
    the batch to ``_handle(batch, 0)``, which works through it and calls ``_poll`` again at its end.
    Subclasses set ``node``, ``broker``, ``queue`` and ``config`` and define ``_handle``."""

    node: Node
    broker: str
    queue: str
    config: ConsumerConfig

    def _start(self) -> None:
        for _ in range(self.config.concurrency):
            self._poll()

    def _poll(self) -> None:
        c = self.config
        receive_once(self.node, self.broker, self.queue, lambda batch: self._handle(batch, 0), self._poll,
                     max_messages=c.max_messages, wait_s=c.wait_s, visibility_s=c.visibility_s,
                     rpc_timeout_s=c.rpc_timeout_s, backoff_s=c.idle_backoff_s)

    def _handle(self, batch: list, i: int) -> None:
        raise NotImplementedError


class QueueConsumer(PollingSlots):
    """A consumer node with ``config.concurrency`` slots on ``queue`` at ``broker``."""

    def __init__(self, sim: Simulation, name: str, broker: str, queue: str, *, log: DeliveryLog,
                 handler: HandlerConfig | None = None, config: ConsumerConfig | None = None,
                 inbox: Inbox | None = None, start_at: float = 0.0) -> None:
        self.sim, self.name, self.broker, self.queue, self.log = sim, name, broker, queue, log
        self.node = sim.nodes.get(name) or sim.node(name)
        self.handler = handler or HandlerConfig()
        self.config = config or ConsumerConfig()
        self.inbox = inbox
        self._service = sim.sampler(self.handler.service, f"consumer.{name}.service")
        self._fail = sim.uniforms(f"consumer.{name}.failures")
        self._u = sim.uniforms(f"consumer.{name}.jitter")
        # facts for tests and experiments: one tuple per received message
        self.receipts: list[tuple] = []  # (msg_id, sent_at, received_at, receive_count)
        self.attempts = 0  # handler executions (wasted work = attempts - useful ones)
        self.busy_s = 0.0
        self.succeeded = self.failed = self.skipped_duplicates = 0
        self.node.on_recover(self._start)
        sim.at(start_at, self._start)

    # -- one slot ------------------------------------------------------------------------------
    def _handle(self, batch: list, i: int) -> None:
        if i >= len(batch):
            self._poll()
            return
        receipt, msg_id, group, _body, count, sent_at = batch[i]
        self.receipts.append((msg_id, sent_at, self.sim.now, count))
        self._attempt(batch, i, 1, 0.0)

    def _attempt(self, batch: list, i: int, attempt: int, prev: float) -> None:
        receipt, msg_id, group, body = batch[i][:4]
        node = self.node
        t = self._service() * node.slow_factor
        self.attempts += 1
        self.busy_s += t
        sp = node._spans
        span = -1
        if sp is not None and isinstance(body, tuple) and body and body[0] == "traceparent":
            # the producer's trace context: this processing attempt joins the message's trace
            prev_ctx, sp.current = sp.current, body[1]
            span = sp.open(self.sim.now, "internal", self.name, self.broker, f"process {self.queue}",
                           attempt=attempt)
            sp.current = prev_ctx

        def finished() -> None:
            h = self.handler
            bad = msg_id in h.poison or (h.failure_p and self._fail() < h.failure_p)
            if span >= 0:
                sp.close(span, self.sim.now, "error" if bad else "ok")
            if bad:
                pol = self.config.retry
                if attempt < pol.max_attempts:
                    sleep = pol.delay(attempt, prev, self._u)
                    node.after(sleep, lambda: self._attempt(batch, i, attempt + 1, sleep))
                    return
                self.failed += 1
                if self.config.on_failure == "nack":
                    node.call(self.broker, CHANGE_VISIBILITY, (self.queue, receipt, 0.0), self.config.rpc_timeout_s,
                              lambda o, v: None)
                self._handle(batch, i + 1)
                return
            self.succeeded += 1
            if self.inbox is None or self.inbox.first_time(msg_id):
                self.log.process(msg_id, group, self.sim.now)
            else:
                self.skipped_duplicates += 1
            node.call(self.broker, DELETE, (self.queue, receipt), self.config.rpc_timeout_s,
                      lambda o, v: self._handle(batch, i + 1))

        node.after(t, finished)
