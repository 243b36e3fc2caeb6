"""CQRS: commands append events; a projector builds a denormalized read model from them, asynchronously.

Young, "CQRS Documents" (2010); Richardson, "Microservices Patterns" (2018), ch. 7 (*CQRS views*):
the write side (:class:`CommandService`, node ``orders``) appends ``OrderPlaced`` events to an
:class:`~models.transactions.eventsourcing.EventStore` (one stream per customer) and answers with the
stream's new version. The event store is its own outbox: a relay publishes the global log, in order,
to an SQS-like queue (:class:`models.messaging.QueueBroker`), keeping a durable cursor of the
acknowledged prefix (after a crash it publishes again from the cursor: at least once).

The :class:`Projector` (node ``projector``) receives batches and handles each event in
``Exponential(1/mu)`` seconds, one at a time — a single server, so with Poisson commands at rate
λ < μ the wait is M/M/1-like: mean time in the projector ``1/(μ − λ)`` (plus the relay's and
broker's milliseconds). It applies an event only if its version is newer than the read model's
(duplicates and stale redeliveries are skipped) and records the **lag**: apply time − append time.
It answers queries ``rm.get (customer)`` from the read model at once: a customer who just placed an
order and reads the view before the projector caught up does not see it (a read-your-writes
violation). After the load stops the read model converges to the write model.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models.messaging import QueueBroker, QueueConfig
from models.messaging.queue import DELETE, SEND, receive_once
from simulator import Exponential, Message

from .eventsourcing import Event, EventStore

if TYPE_CHECKING:
    from simulator import Simulation
    from simulator.history import History

PLACE, GET = "cqrs.place", "rm.get"
QUEUE = "order-events"


def fold_orders(state: dict, e: Event) -> dict:
    """The read model's fold (Fowler's event sourcing): one more order and its amount added to the
    customer's ``orders``/``total``.
    """
    return {"orders": state["orders"] + 1, "total": state["total"] + e.data}


class CommandService:
    """The write side: appends ``OrderPlaced`` to the customer's stream; the relay publishes the log."""

    def __init__(self, sim: Simulation, *, name: str = "orders", broker: str = "broker",
                 publish_timeout_s: float = 0.5) -> None:
        self.sim, self.name, self.broker, self.publish_timeout_s = sim, name, broker, publish_timeout_s
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = EventStore(self.node, fold=fold_orders, initial=lambda: {"orders": 0, "total": 0.0})
        self.store.on_append.append(lambda _e: self._pump())
        self.node.on(PLACE, self._on_place)
        self.node.on_recover(self._pump)
        self.publishes = 0

    def _on_place(self, msg: Message) -> Any:
        customer, amount = msg.payload
        return self.store.append(customer, self.store.version(customer), [("OrderPlaced", amount)])[0].version

    # -- relay: publish the global log at least once, in order, pipelined ---------------------------
    @property
    def cursor(self) -> int:
        """The relay's durable cursor: how many events of the global log have been published (at
        least once, in order).
        """
        return self.node.durable.get("relay.cursor", 0)

    def _pump(self) -> None:
        node, st = self.node, self.node.state
        if not node.up:
            return
        acked: set = st.setdefault("relay.acked", set())
        nxt = st.get("relay.next", self.cursor)
        while nxt < len(self.store.log):
            self._publish(nxt, acked)
            nxt += 1
        st["relay.next"] = nxt

    def _publish(self, pos: int, acked: set) -> None:
        e, node = self.store.log[pos], self.node
        self.publishes += 1

        def done(outcome: str, _v: Any) -> None:
            if outcome != "ok":
                node.after(0.05, lambda: self._publish(pos, acked))
                return
            acked.add(pos)
            c = self.cursor
            while c in acked:
                acked.discard(c)
                c += 1
            node.durable["relay.cursor"] = c

        node.call(self.broker, SEND, (QUEUE, (self.name, pos, self.publishes), None, e, None),
                  self.publish_timeout_s, done)


@dataclass
class Projection:
    """Per applied event (measurements): when it was appended and applied."""

    appended: list[float] = field(default_factory=list)
    applied: list[float] = field(default_factory=list)

    def lags(self) -> np.ndarray:
        """Read lag per applied event, in seconds: applied time minus appended time."""
        return np.asarray(self.applied) - np.asarray(self.appended)


class Projector:
    """The read side: a single-server projector and the read model it serves (see the module docstring)."""

    def __init__(self, sim: Simulation, *, mu: float, name: str = "projector", broker: str = "broker",
                 batch: int = 10, visibility_s: float = 30.0) -> None:
        if not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu > 0):
            raise ValueError(f"mu must be a number of events per second > 0, got {mu!r}")
        self.sim, self.name, self.broker, self.mu = sim, name, broker, float(mu)
        self.batch, self.visibility_s = int(batch), float(visibility_s)
        self.node = sim.nodes.get(name) or sim.node(name)
        self._service = sim.sampler(Exponential(1.0 / mu), f"cqrs.{name}.service")
        self.record = Projection()
        self.skipped = 0
        self.node.on(GET, self._on_get)
        self.node.on_recover(self._poll)
        sim.at(0.0, self._poll)

    @property
    def view(self) -> dict[Hashable, dict]:
        """customer -> {"version", "orders", "total"} (durable: a projection survives a crash)."""
        return self.node.durable.setdefault("view", {})

    def _on_get(self, msg: Message) -> Any:
        row = self.view.get(msg.payload)
        return None if row is None else row["version"]

    def _poll(self) -> None:
        receive_once(self.node, self.broker, QUEUE, self._handle, self._poll, max_messages=self.batch, wait_s=1.0,
                     visibility_s=self.visibility_s, rpc_timeout_s=1.0, backoff_s=0.05, empty_delay_s=0.0)

    def _handle(self, batch: list) -> None:
        node = self.node
        if not batch:
            self._poll()
            return
        receipt, _mid, _g, e, _count, _sent = batch[0]

        def apply() -> None:
            row = self.view.get(e.aggregate)
            if row is None or e.version > row["version"]:
                prev = row or {"orders": 0, "total": 0.0}
                self.view[e.aggregate] = {"version": e.version, "orders": prev["orders"] + 1,
                                          "total": prev["total"] + e.data}
                self.record.appended.append(e.at)
                self.record.applied.append(self.sim.now)
            else:
                self.skipped += 1
            node.call(self.broker, DELETE, (QUEUE, receipt), 1.0, lambda o, v: None)
            self._handle(batch[1:])

        node.after(self._service() * node.slow_factor, apply)


def build_cqrs(sim: Simulation, *, mu: float, store_s: float = 0.0) -> tuple[QueueBroker, CommandService, Projector]:
    """A CQRS world: a durable broker (``store_s`` seconds per stored message), the command service
    and a projector serving ``mu`` events per second.
    """
    broker = QueueBroker(sim, "broker", queues={QUEUE: QueueConfig(visibility_timeout_s=30.0)}, durable=True,
                         store_s=store_s)
    return broker, CommandService(sim), Projector(sim, mu=mu)


def converged(cmd: CommandService, proj: Projector) -> bool:
    """The read model holds, for every customer, the write model's version and folded state."""
    for agg in cmd.store.streams:
        state, v = cmd.store.load(agg)
        row = proj.view.get(agg)
        if row is None or row["version"] != v or row["orders"] != state["orders"] \
                or not math.isclose(row["total"], state["total"]):
            return False
    return len(proj.view) == len(cmd.store.streams)


class Customers:
    """``n`` customers, each a session: place an order, wait ``think_s``, read the view of its own
    orders; then the next order after an exponential gap (total rate ≈ ``rate``). Recorded in
    ``history`` as a write (key = customer, value = the new version) and a read (the view's version),
    the shape :func:`simulator.history.session.session_guarantees` checks."""

    def __init__(self, sim: Simulation, *, n: int, rate: float, stop_at: float, think_s: float = 0.0,
                 amount: float = 10.0, history: History | None = None) -> None:
        self.sim, self.n, self.stop_at, self.think_s, self.amount = sim, n, stop_at, think_s, amount
        self.history = history
        self.placed = self.reads = self.stale_reads = 0
        self.versions: dict[int, int] = {}
        self.node = sim.nodes.get("customers") or sim.node("customers")
        self._gap = sim.sampler(Exponential(n / rate), "cqrs.customers.gaps")
        for c in range(n):
            sim.at(self._gap(), lambda c=c: self._place(c))

    def _place(self, c: int) -> None:
        sim, h = self.sim, self.history
        if sim.now >= self.stop_at:
            return
        # the written value is the stream's next version: unique per key, which the session checker
        # needs (each customer is its stream's only writer, so it knows the number in advance)
        op = h.invoke(c, "write", c, self.versions.get(c, 0) + 1, sim.now) if h is not None else None

        def placed(outcome: str, version: Any) -> None:
            if h is not None:
                h.complete(op, "ok" if outcome == "ok" else "info", sim.now)
            if outcome != "ok":
                sim.at(self._gap(), lambda: self._place(c))
                return
            self.placed += 1
            self.versions[c] = version
            sim.at(self.think_s, lambda: self._read(c, version))

        self.node.call("orders", PLACE, (c, self.amount), 1.0, placed)

    def _read(self, c: int, written: int) -> None:
        sim, h = self.sim, self.history
        op = h.invoke(c, "read", c, None, sim.now) if h is not None else None

        def got(outcome: str, v: Any) -> None:
            if h is not None:
                h.complete(op, "ok" if outcome == "ok" else "info", sim.now, v)
            if outcome == "ok":
                self.reads += 1
                self.stale_reads += (v or 0) < written
            sim.at(self._gap(), lambda: self._place(c))

        self.node.call("projector", GET, c, 1.0, got)
