"""A message queue broker with Amazon SQS semantics (RabbitMQ's ack/nack map onto the same calls).

Sources: Amazon SQS Developer Guide — "Amazon SQS visibility timeout", "Using dead-letter queues
in Amazon SQS" (redrive policy: ``maxReceiveCount``), "Amazon SQS short and long polling",
"Exactly-once processing in Amazon SQS" (FIFO: message groups, 5-minute deduplication
interval) and the ``CreateQueue`` attributes (``VisibilityTimeout`` default 30 s,
``MessageRetentionPeriod`` default 4 days, ``ReceiveMessageWaitTimeSeconds`` 0..20 s).

Semantics modelled (RPC ops on the broker node; payloads are tuples):

- ``sqs.send (queue, msg_id, group, body, dedup_id)``: stored (after ``store_s``, the time to
  persist), then answered ``ok``: an acknowledgment means stored. A crash while storing loses
  the message and sends no answer (the producer times out: indeterminate).
- ``sqs.receive (queue, max_messages, wait_s, visibility_s)``: up to ``max_messages``
  visible messages ``(receipt, msg_id, group, body, receive_count, sent_at)``; each becomes
  invisible for the visibility timeout and visible again if not deleted in time (redelivery).
  With ``wait_s > 0`` (long polling) an empty queue holds the request until a message becomes
  visible or ``wait_s`` passes (then ``[]``). A receipt is ``(msg_id, receive_count)``.
- ``sqs.delete (queue, receipt)``: removes the message if ``receipt`` is its latest receive
  (SQS: "provide the most recently received receipt handle"); ``False`` for a stale receipt.
- ``sqs.change_visibility (queue, receipt, timeout_s)``: ``0`` is a nack/requeue (visible now).
- Redrive: a receive that finds a message already received ``max_receive_count`` times moves
  it to ``dead_letter_queue`` instead of delivering it, so a message is delivered at most
  ``max_receive_count`` times (P(DLQ) = p^m when each delivery fails independently w.p. p).
- Standard queues deliver at least once and may reorder (a redelivered message goes to the
  back). FIFO queues deliver each message group in order: a group is locked while one of its
  messages is in flight; sends repeating a ``dedup_id`` within ``deduplication_window_s`` are
  acknowledged but not stored again.
- Retention: messages older than ``retention_s`` are dropped when met.
- Durability: ``durable=True`` keeps stored messages across a broker crash (in-flight ones come
  back visible: receipts do not survive a restart); ``durable=False`` loses everything stored.

Not modelled: SQS's rare standard-queue duplicate deliveries from its own replication, delay
queues, message size limits, batching APIs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, Distribution, RpcError

if TYPE_CHECKING:
    import pandas as pd

    from simulator import Message, Node, Simulation

SEND, RECEIVE, DELETE, CHANGE_VISIBILITY = "sqs.send", "sqs.receive", "sqs.delete", "sqs.change_visibility"


def _seconds(name: str, v: Any, *, positive: bool = False, finite: bool = True) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) and (
        v > 0 if positive else v >= 0) and (math.isfinite(v) or not finite)
    if not ok:
        raise ValueError(f"{name} must be a number of seconds {'> 0' if positive else '>= 0'}, got {v!r}")


@dataclass(frozen=True)
class QueueConfig:
    """One queue's attributes (names and defaults after SQS's ``CreateQueue``)."""

    fifo: bool = False
    visibility_timeout_s: float = 30.0
    max_receive_count: int | None = None  # redrive policy; None: no dead-letter queue
    dead_letter_queue: str | None = None
    retention_s: float = 345_600.0  # 4 days
    receive_wait_s: float = 0.0  # default long-poll wait when a receive does not say
    deduplication_window_s: float = 300.0  # FIFO only

    def __post_init__(self) -> None:
        _seconds("visibility_timeout_s", self.visibility_timeout_s)
        _seconds("retention_s", self.retention_s, positive=True, finite=False)
        _seconds("receive_wait_s", self.receive_wait_s)
        _seconds("deduplication_window_s", self.deduplication_window_s)
        if (self.max_receive_count is None) != (self.dead_letter_queue is None):
            raise ValueError("max_receive_count and dead_letter_queue must be given together (a redrive policy)")
        if self.max_receive_count is not None and not (
                isinstance(self.max_receive_count, int) and 1 <= self.max_receive_count <= 1000):
            raise ValueError(f"max_receive_count must be an integer in [1, 1000] (SQS), got {self.max_receive_count!r}")


class _Msg:
    __slots__ = ("id", "group", "body", "sent_at", "receive_count", "token", "seq")

    def __init__(self, id, group, body, sent_at: float, seq: int) -> None:
        self.id, self.group, self.body, self.sent_at, self.seq = id, group, body, sent_at, seq
        self.receive_count = 0
        self.token = 0  # bumped by every visibility change: stale timers compare it


class _Queue:
    """One queue: the stored messages (``msgs``, insertion = send order) and derived indices."""

    def __init__(self, name: str, cfg: QueueConfig) -> None:
        self.name, self.cfg = name, cfg
        self.msgs: dict[Any, _Msg] = {}
        self.dedup: dict[Any, float] = {}
        self.counters = dict.fromkeys(("sent", "deduplicated", "received", "deleted", "visibility_expired",
                                       "nacked", "dead_lettered", "retention_expired", "lost_in_crash"), 0)
        self.reset_indices()

    def reset_indices(self) -> None:
        self.ready: deque[_Msg] = deque()  # standard: visible messages (may hold stale entries)
        self.groups: dict[Any, deque[_Msg]] = {}  # FIFO: per group, in send order
        self.ready_groups: deque[Any] = deque()  # FIFO: unlocked groups with messages
        self.in_flight: dict[Any, int] = {}  # msg id -> token of its current receive
        self.waiters: deque[list] = deque()  # long polls: [request, max_n, visibility_s, open]


class QueueBroker:
    """A broker node holding named queues (see the module docstring for the semantics)."""

    def __init__(self, sim: Simulation, name: str = "broker", *, queues: Mapping[str, QueueConfig],
                 durable: bool = True, store_s: Distribution | float = 0.0) -> None:
        if not queues:
            raise ValueError("queues must name at least one queue")
        for qn, cfg in queues.items():
            if not isinstance(cfg, QueueConfig):
                raise ValueError(f"queues[{qn!r}] must be a QueueConfig, got {cfg!r}")
            dlq = cfg.dead_letter_queue
            if dlq is not None and (dlq not in queues or dlq == qn or queues[dlq].fifo != cfg.fifo):
                raise ValueError(f"queues[{qn!r}].dead_letter_queue must be another queue of the same type "
                                 f"(SQS: a FIFO queue's DLQ is FIFO), got {dlq!r}")
        self.sim, self.name, self.durable = sim, name, bool(durable)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.queues = {qn: _Queue(qn, cfg) for qn, cfg in queues.items()}
        self._store = None if store_s == 0 else sim.sampler(store_s, f"sqs.{name}.store")
        self._seq = 0
        self.samples: list[tuple] = []
        n = self.node
        n.on(SEND, self._on_send)
        n.on(RECEIVE, self._on_receive)
        n.on(DELETE, self._on_delete)
        n.on(CHANGE_VISIBILITY, self._on_change_visibility)
        n.on_crash(self._crashed)
        n.on_recover(self._recovered)

    # -- crash and recovery ----------------------------------------------------------------
    def _crashed(self) -> None:
        for q in self.queues.values():
            if not self.durable:
                q.counters["lost_in_crash"] += len(q.msgs)
                q.msgs, q.dedup = {}, {}
            q.reset_indices()

    def _recovered(self) -> None:
        for q in self.queues.values():  # everything stored is visible again, in send order
            for m in q.msgs.values():
                m.token += 1
                self._make_visible(q, m, pump=False)

    # -- handlers ----------------------------------------------------------------------------
    def _queue(self, name: str) -> _Queue:
        q = self.queues.get(name)
        if q is None:
            raise RpcError(("no_such_queue", name))
        return q

    def _on_send(self, msg: Message):
        qname, msg_id, group, body, dedup_id = msg.payload
        q = self._queue(qname)
        now = self.sim.now
        if q.cfg.fifo:
            d = msg_id if dedup_id is None else dedup_id
            seen = q.dedup.get(d)
            if seen is not None and now - seen < q.cfg.deduplication_window_s:
                q.counters["deduplicated"] += 1
                return True
        if self._store is None:
            self._stored(q, msg_id, group, body, dedup_id, now)
            return True
        self.node.after(self._store(), lambda: (self._stored(q, msg_id, group, body, dedup_id, now),
                                                self.node.reply(msg, True)))
        return NO_REPLY

    def store_copies(self, msg: Message, queues: Iterable[str], msg_id: Hashable, group: str | None,
                     body: Any) -> Any:
        """Store one copy of a message in each of ``queues`` in a single step (a topic's fan-out,
        see :mod:`models.messaging.pubsub`) and answer ``msg`` once all are stored."""
        qs = [self._queue(qn) for qn in queues]
        now = self.sim.now

        def store() -> None:
            for q in qs:
                self._stored(q, msg_id, group, body, None, now)

        if self._store is None:
            store()
            return True
        self.node.after(self._store(), lambda: (store(), self.node.reply(msg, True)))
        return NO_REPLY

    def _stored(self, q: _Queue, msg_id, group, body, dedup_id, sent_at: float) -> None:
        self._seq += 1
        m = _Msg(msg_id, group, body, sent_at, self._seq)
        self._put(q, m)
        if q.cfg.fifo:
            q.dedup[msg_id if dedup_id is None else dedup_id] = self.sim.now
        q.counters["sent"] += 1

    def _put(self, q: _Queue, m: _Msg) -> None:
        q.msgs[m.id] = m
        if q.cfg.fifo:
            g = q.groups.get(m.group)
            if g is None:
                g = q.groups[m.group] = deque()
            g.append(m)
            if len(g) == 1:
                q.ready_groups.append(m.group)
        else:
            q.ready.append(m)
        self._pump(q)

    def _on_receive(self, msg: Message):
        qname, max_n, wait_s, vis = msg.payload
        q = self._queue(qname)
        wait_s = q.cfg.receive_wait_s if wait_s is None else wait_s
        vis = q.cfg.visibility_timeout_s if vis is None else vis
        got = self._take(q, max_n, vis)
        if got or wait_s <= 0:
            return got
        w = [msg, max_n, vis, True]
        q.waiters.append(w)
        self.node.after(wait_s, lambda: self._poll_expired(q, w))
        return NO_REPLY

    def _poll_expired(self, q: _Queue, w: list) -> None:
        if w[3]:
            w[3] = False
            self.node.reply(w[0], [])

    def _pump(self, q: _Queue) -> None:
        """Hand newly visible messages to waiting long polls, oldest poll first."""
        while q.waiters:
            w = q.waiters[0]
            if not w[3]:
                q.waiters.popleft()
                continue
            got = self._take(q, w[1], w[2])
            if not got:
                return
            q.waiters.popleft()
            w[3] = False
            self.node.reply(w[0], got)

    def _next_visible(self, q: _Queue) -> _Msg | None:
        now, fifo, retention = self.sim.now, q.cfg.fifo, q.cfg.retention_s
        while True:
            if fifo:
                if not q.ready_groups:
                    return None
                gname = q.ready_groups.popleft()
                g = q.groups.get(gname)
                while g and g[0].id not in q.msgs:
                    g.popleft()
                if not g:
                    q.groups.pop(gname, None)
                    continue
                m = g[0]
            else:
                if not q.ready:
                    return None
                m = q.ready.popleft()
                if q.msgs.get(m.id) is not m or m.id in q.in_flight:
                    continue  # deleted, or a stale entry
            if now - m.sent_at > retention:
                q.counters["retention_expired"] += 1
                self._remove(q, m)
                continue
            mrc = q.cfg.max_receive_count
            if mrc is not None and m.receive_count >= mrc:
                q.counters["dead_lettered"] += 1
                self._remove(q, m)
                dlq = self.queues[q.cfg.dead_letter_queue]
                self._seq += 1
                self._put(dlq, _Msg(m.id, m.group, m.body, m.sent_at, self._seq))
                continue
            return m

    def _take(self, q: _Queue, max_n: int, vis: float) -> list:
        out = []
        while len(out) < max_n:
            m = self._next_visible(q)
            if m is None:
                break
            m.receive_count += 1
            m.token += 1
            q.in_flight[m.id] = m.token
            q.counters["received"] += 1
            tok = m.token
            self.node.after(vis, lambda m=m, tok=tok: self._visibility_expired(q, m, tok))
            out.append(((m.id, m.receive_count), m.id, m.group, m.body, m.receive_count, m.sent_at))
        return out

    def _visibility_expired(self, q: _Queue, m: _Msg, tok: int) -> None:
        if q.in_flight.get(m.id) == tok and q.msgs.get(m.id) is m:
            q.counters["visibility_expired"] += 1
            self._make_visible(q, m)

    def _make_visible(self, q: _Queue, m: _Msg, pump: bool = True) -> None:
        q.in_flight.pop(m.id, None)
        if q.cfg.fifo:
            g = q.groups.get(m.group)
            if g is None:
                g = q.groups[m.group] = deque()
            if not g or g[0] is not m:
                if m not in g:
                    g.append(m)  # rebuilding after a restart: send order is insertion order
            if len(g) and g[0] is m and m.group not in q.ready_groups:
                q.ready_groups.append(m.group)
        else:
            q.ready.append(m)
        if pump:
            self._pump(q)

    def _remove(self, q: _Queue, m: _Msg) -> None:
        q.msgs.pop(m.id, None)
        q.in_flight.pop(m.id, None)
        if q.cfg.fifo:
            g = q.groups.get(m.group)
            if g and g[0] is m:
                g.popleft()
            if g and m.group not in q.ready_groups and g[0].id not in q.in_flight:
                q.ready_groups.append(m.group)
            elif not g:
                q.groups.pop(m.group, None)

    def _current(self, q: _Queue, receipt) -> _Msg | None:
        msg_id, count = receipt
        m = q.msgs.get(msg_id)
        return m if m is not None and m.receive_count == count else None

    def _on_delete(self, msg: Message) -> bool:
        qname, receipt = msg.payload
        q = self._queue(qname)
        m = self._current(q, receipt)
        if m is None:
            return False
        q.counters["deleted"] += 1
        self._remove(q, m)
        self._pump(q)
        return True

    def _on_change_visibility(self, msg: Message) -> bool:
        qname, receipt, timeout_s = msg.payload
        q = self._queue(qname)
        m = self._current(q, receipt)
        if m is None or m.id not in q.in_flight:
            return False
        m.token += 1
        if timeout_s <= 0:
            q.counters["nacked"] += 1
            self._make_visible(q, m)
        else:
            q.in_flight[m.id] = tok = m.token
            self.node.after(timeout_s, lambda: self._visibility_expired(q, m, tok))
        return True

    # -- observation -------------------------------------------------------------------------
    def depth(self, queue: str) -> tuple[int, int]:
        """``(visible, in_flight)`` messages stored in ``queue`` now (SQS's
        ApproximateNumberOfMessages and ...NotVisible)."""
        q = self.queues[queue]
        return len(q.msgs) - len(q.in_flight), len(q.in_flight)

    def oldest_age_s(self, queue: str) -> float:
        """ApproximateAgeOfOldestMessage: seconds since the oldest stored message was sent."""
        q = self.queues[queue]
        return self.sim.now - min(m.sent_at for m in q.msgs.values()) if q.msgs else 0.0

    def sample_every(self, every_s: float, until: float = math.inf) -> None:
        """Record ``(time, queue, visible, in_flight, oldest_age_s)`` every ``every_s`` seconds
        (taken from outside the broker: a crashed broker reports 0 stored when volatile)."""
        _seconds("every_s", every_s, positive=True)

        def tick() -> None:
            for qn in self.queues:
                vis, fl = self.depth(qn)
                self.samples.append((self.sim.now, qn, vis, fl, self.oldest_age_s(qn)))
            if self.sim.now + every_s <= until:
                self.sim.at(every_s, tick)

        self.sim.at(0.0, tick)

    def metrics(self) -> pd.DataFrame:
        """The samples as a DataFrame (time, queue, visible, in_flight, oldest_age_s)."""
        import pandas as pd

        return pd.DataFrame(self.samples, columns=["time", "queue", "visible", "in_flight", "oldest_age_s"])

    def counters(self, queue: str) -> dict[str, int]:
        """A copy of ``queue``'s event counters (sent, received, deleted, deduplicated, ...)."""
        return dict(self.queues[queue].counters)


def receive_once(node: Node, broker: str, queue: str, handle: Callable[[list[Any]], None],
                 again: Callable[[], None], *, max_messages: int = 1, wait_s: float = 20.0,
                 visibility_s: float | None = None, rpc_timeout_s: float = 1.0, backoff_s: float = 0.1,
                 empty_delay_s: float | None = None) -> None:
    """One long-poll receive on ``queue`` — the step of every consumer loop: a non-empty batch
    goes to ``handle(batch)`` (which calls ``again()`` when it is done), an empty answer calls
    ``again()`` (after ``empty_delay_s`` if given), a failed receive calls it after
    ``backoff_s``. A crashed node does nothing (its recovery hook restarts the loop)."""
    if not node.up:
        return

    def got(outcome: str, value) -> None:
        if outcome != "ok":
            node.after(backoff_s, again)
        elif not value:
            if empty_delay_s is None:
                again()
            else:
                node.after(empty_delay_s, again)
        else:
            handle(list(value))

    node.call(broker, RECEIVE, (queue, max_messages, wait_s, visibility_s), wait_s + rpc_timeout_s, got)
