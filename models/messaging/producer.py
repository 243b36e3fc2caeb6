"""A producer of queue messages: Poisson sends with a timeout and retries, recorded for the checker.

Each message gets a fresh id from the :class:`~simulator.history.delivery.DeliveryLog` (ids are
unique per history). The producer records ``send`` when it first asks, ``ack`` when the broker
answers ``ok`` (stored), ``fail`` when every attempt ended in a definite refusal. A timeout is
indeterminate (the broker may have stored it): the producer retries with the *same* message id,
so a standard queue may store it twice (a duplicate) and a FIFO queue deduplicates it within
its deduplication window (SQS uses the ``MessageDeduplicationId`` the same way).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from models.resilience.retry import RetryPolicy
from simulator import Exponential, Simulation
from simulator.history.delivery import DeliveryLog

from .queue import SEND

if TYPE_CHECKING:
    from .log import LogCluster


class QueueProducer:
    """Sends ``rate`` messages per second (Poisson) to ``queue`` on ``broker`` (a node name)."""

    def __init__(self, sim: Simulation, name: str, broker: str, queue: str, *, rate: float, log: DeliveryLog,
                 groups: int = 1, timeout_s: float = 1.0, retry: RetryPolicy | None = None,
                 limit: int | None = None, start_at: float = 0.0, stop_at: float = math.inf,
                 op: str = SEND) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of messages per second > 0, got {rate!r}")
        if not (isinstance(groups, int) and groups >= 1):
            raise ValueError(f"groups must be an integer >= 1 (message groups / keys), got {groups!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        if limit is not None and not (isinstance(limit, int) and limit >= 0):
            raise ValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        self.sim, self.name, self.broker, self.queue, self.log = sim, name, broker, queue, log
        self.op = op  # SEND to a queue, or pubsub.PUBLISH to a topic (same payload)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.groups, self.timeout_s = groups, float(timeout_s)
        self.retry = retry or RetryPolicy(max_attempts=3, base_s=0.05)
        self.limit = math.inf if limit is None else limit
        self.stop_at = stop_at
        self.sent = self.acked = self.failed = 0
        self._gap = sim.sampler(Exponential(1.0 / rate), f"producer.{name}.arrivals")
        self._group = sim.uniforms(f"producer.{name}.groups")
        self._u = sim.uniforms(f"producer.{name}.jitter")
        sim.at(start_at + self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if self.sent >= self.limit or sim.now >= self.stop_at:
            return
        sim.at(self._gap(), self._arrive)
        if not self.node.up:
            return  # a crashed producer sends nothing (and records nothing: no send was asked)
        self.sent += 1
        msg_id = self.log.new_id()
        group = int(self._group() * self.groups)
        self.log.send(msg_id, group, sim.now)
        # Tracing on: a "publish" span per message, whose id travels in the message body as its
        # trace context (W3C traceparent's role), so the consumer's processing joins the trace.
        sp = self.node._spans
        ctx = None if sp is None else sp.open(sim.now, "internal", self.name, self.broker, f"publish {self.queue}")
        self._attempt(msg_id, group, 1, 0.0, ctx)

    def _attempt(self, msg_id: int, group: int, attempt: int, prev: float, ctx: int | None = None) -> None:
        sp = self.node._spans

        def done(outcome: str, value) -> None:
            if outcome == "ok":
                self.acked += 1
                self.log.ack(msg_id, group, self.sim.now)
                if ctx is not None:
                    sp.close(ctx, self.sim.now, "ok")
                return
            pol = self.retry
            if attempt < pol.max_attempts and outcome in pol.retry_on:
                sleep = pol.delay(attempt, prev, self._u)
                self.node.after(sleep, lambda: self._attempt(msg_id, group, attempt + 1, sleep, ctx))
            else:
                if outcome != "timeout":
                    self.failed += 1
                    self.log.fail(msg_id, group, self.sim.now)
                if ctx is not None:
                    sp.close(ctx, self.sim.now, outcome)

        if ctx is None:
            self.node.call(self.broker, self.op, (self.queue, msg_id, group, None, None), self.timeout_s, done)
            return
        prev_ctx, sp.current = sp.current, ctx  # the send attempt is a child of the publish span
        try:
            self.node.call(self.broker, self.op, (self.queue, msg_id, group, ("traceparent", ctx), None),
                           self.timeout_s, done)
        finally:
            sp.current = prev_ctx


class LogProducer:
    """A Kafka producer: batches per partition (``batch_size`` records or ``linger_s``), one
    batch in flight per partition (so retries keep order), ``acks`` ``"0"``, ``"1"`` or ``"all"``,
    retries with ``retry_backoff_s`` until ``delivery_timeout_s`` (Kafka's defaults: 100 ms and
    120 s), and with ``idempotent`` a producer id plus per-partition sequence numbers so a retried
    batch the leader already appended is not appended again (``enable.idempotence``).

    Arrivals are Poisson at ``rate``; with ``tick_s`` they are drawn per tick (a Poisson count
    every ``tick_s``, all sent at the tick), which costs one event per tick instead of one per
    message (for throughput benchmarks)."""

    def __init__(self, sim: Simulation, name: str, cluster: LogCluster, topic: str, *, rate: float, log: DeliveryLog,
                 keys: int = 100, acks: str = "all", idempotent: bool = False, linger_s: float = 0.005,
                 batch_size: int = 100, request_timeout_s: float = 1.0, retry_backoff_s: float = 0.1,
                 delivery_timeout_s: float = 120.0, limit: int | None = None, start_at: float = 0.0,
                 stop_at: float = math.inf, tick_s: float | None = None) -> None:
        if acks not in ("0", "1", "all"):
            raise ValueError(f"acks must be '0', '1' or 'all', got {acks!r}")
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of messages per second > 0, got {rate!r}")
        if not (isinstance(keys, int) and keys >= 1):
            raise ValueError(f"keys must be an integer >= 1, got {keys!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        for n, v in (("linger_s", linger_s), ("retry_backoff_s", retry_backoff_s)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{n} must be a number of seconds >= 0, got {v!r}")
        for n, v in (("request_timeout_s", request_timeout_s), ("delivery_timeout_s", delivery_timeout_s)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{n} must be a number of seconds > 0, got {v!r}")
        if tick_s is not None and not (isinstance(tick_s, (int, float)) and tick_s > 0):
            raise ValueError(f"tick_s must be None or a number of seconds > 0, got {tick_s!r}")
        self.sim, self.name, self.cluster, self.topic, self.log = sim, name, cluster, topic, log
        self.node = sim.nodes.get(name) or sim.node(name)
        self.keys, self.acks, self.pid = keys, acks, (name if idempotent else None)
        self.linger_s, self.batch_size = linger_s, batch_size
        self.request_timeout_s, self.retry_backoff_s, self.delivery_timeout_s = \
            request_timeout_s, retry_backoff_s, delivery_timeout_s
        self.limit = math.inf if limit is None else limit
        self.stop_at = stop_at
        n_parts = cluster.partitions(topic)
        self._part_of = [cluster.partition_for(topic, k) for k in range(keys)]
        self._buf: list[list] = [[] for _ in range(n_parts)]
        self._queue: list[list] = [[] for _ in range(n_parts)]  # closed batches waiting for the one in flight
        self._busy = [False] * n_parts
        self._linger = [False] * n_parts
        self._seq = [0] * n_parts
        self.sent = self.acked = self.failed = self.retries = 0
        self._key = sim.uniforms(f"producer.{name}.keys")
        if tick_s is None:
            self._gap = sim.sampler(Exponential(1.0 / rate), f"producer.{name}.arrivals")
            sim.at(start_at + self._gap(), self._arrive)
        else:
            self._tick_s, self._mean = tick_s, rate * tick_s
            self._counts = sim.rng(f"producer.{name}.arrivals")
            self._keys_rng = sim.rng(f"producer.{name}.tick_keys")
            sim.at(start_at + tick_s, self._tick)
        self.node.on_crash(self._crashed)

    def _crashed(self) -> None:
        # the client's buffers and in-flight batches die with it (never acknowledged)
        for p in range(len(self._buf)):
            self._buf[p], self._queue[p], self._busy[p], self._linger[p] = [], [], False, False

    def _arrive(self) -> None:
        if self.sent >= self.limit or self.sim.now >= self.stop_at:
            return
        self.sim.at(self._gap(), self._arrive)
        if self.node.up:
            self._one()

    def _tick(self) -> None:
        if self.sent >= self.limit or self.sim.now >= self.stop_at:
            return
        self.sim.at(self._tick_s, self._tick)
        if self.node.up:
            self._many(min(int(self._counts.poisson(self._mean)), self.limit - self.sent))

    def _many(self, n: int) -> None:
        """``n`` messages at once (tick mode): the same steps as :meth:`_one`, vectorised."""
        if n <= 0:
            return
        log, now = self.log, self.sim.now
        first = log.new_id()
        log.skip_ids(n - 1)
        ids = range(first, first + n)
        keys = self._keys_rng.integers(0, self.keys, n).tolist()
        self.sent += n
        log.extend("send", ids, keys, now)
        part_of, bufs, seq, bs = self._part_of, self._buf, self._seq, self.batch_size
        for msg_id, key in zip(ids, keys):
            p = part_of[key]
            buf = bufs[p]
            buf.append((msg_id, key, seq[p], now))
            seq[p] += 1
            if len(buf) >= bs:
                self._close(p)
            elif not self._linger[p]:
                self._linger[p] = True
                self.node.after(self.linger_s, lambda p=p: self._close(p))

    def _one(self) -> None:
        self.sent += 1
        msg_id = self.log.new_id()
        key = int(self._key() * self.keys)
        now = self.sim.now
        self.log.send(msg_id, key, now)
        p = self._part_of[key]
        buf = self._buf[p]
        buf.append((msg_id, key, self._seq[p], now))
        self._seq[p] += 1
        if len(buf) >= self.batch_size:
            self._close(p)
        elif not self._linger[p]:
            self._linger[p] = True
            self.node.after(self.linger_s, lambda: self._close(p))

    def _close(self, p: int) -> None:
        self._linger[p] = False
        if self._buf[p]:
            self._queue[p].append(self._buf[p])
            self._buf[p] = []
        if not self._busy[p] and self._queue[p]:
            self._busy[p] = True
            self._send(p, self._drain(p), self.sim.now)

    def _send(self, p: int, batch: list, first_at: float) -> None:
        node, log, sim = self.node, self.log, self.sim
        leader = self.cluster.leader(self.topic, p)
        if leader is not None and self.acks == "0":
            node.send(leader, "kafka.produce0", (self.topic, p, "0", self.pid, batch))
            self._acked(p, batch)
            return

        def done(outcome: str, value) -> None:
            if outcome == "ok":
                self._acked(p, batch)
                return
            self.retries += 1
            if sim.now - first_at + self.retry_backoff_s < self.delivery_timeout_s:
                node.after(self.retry_backoff_s, lambda: self._send(p, batch, first_at))
                return
            self.failed += len(batch)
            for msg_id, key, _s, _t in batch:
                log.fail(msg_id, key, sim.now)
            self._next(p)

        if leader is None:
            done("error", "offline")
        else:
            node.call(leader, "kafka.produce", (self.topic, p, self.acks, self.pid, batch), self.request_timeout_s,
                      done)

    def _acked(self, p: int, batch: list) -> None:
        self.log.extend("ack", [r[0] for r in batch], [r[1] for r in batch], self.sim.now)
        self.acked += len(batch)
        self._next(p)

    def _next(self, p: int) -> None:
        self._busy[p] = False
        if self._queue[p]:
            self._busy[p] = True
            self._send(p, self._drain(p), self.sim.now)

    def _drain(self, p: int) -> list:
        """The closed batches waiting for partition ``p``, as one request (Kafka sends every ready
        batch of a broker in one produce request)."""
        q = self._queue[p]
        if len(q) == 1:
            return q.pop()
        out = [r for b in q for r in b]
        q.clear()
        return out
