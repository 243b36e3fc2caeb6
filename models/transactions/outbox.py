"""Transactional outbox vs dual write: publishing an event about a state change.

Richardson, "Microservices Patterns" (2018), §3.3.7 "Transactional messaging" (patterns
*Transactional outbox*, *Polling publisher*) and §3.3.6 (*Idempotent consumer*); the messages go
through :class:`models.messaging.QueueBroker` (SQS semantics, at-least-once).

:class:`OrderService` (node ``orders``) answers ``order.create (order_id)`` in one of three modes:

- ``dual_write``: commit the order row, then (``gap_s`` later: serialising, connecting) publish the
  ``OrderCreated`` event, with ``publish_attempts`` tries. A crash in between, or a broker that stays
  unreachable, **loses** the event: the order exists, nobody downstream hears of it.
- ``publish_first``: publish, then commit the row. A crash in between, or a publish that timed out
  but was stored anyway, leaves a **phantom** event for an order that does not exist.
- ``outbox``: the order row and an outbox row commit in *one local transaction*; a relay in the
  same service polls the outbox every ``relay_poll_s``, publishes a batch of rows and deletes the
  acknowledged ones once the whole batch has answered. Nothing is lost or invented; a crash between
  publish and delete publishes again (at least once), so the consumer deduplicates by event id.

Each publish is a new queue message (its own message id; the body is the event id). The
:class:`EventConsumer` receives, applies the event to its own store — with ``dedupe`` in the same
local transaction as an inbox row keyed by event id — and deletes the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.messaging import QueueBroker, QueueConfig
from models.messaging.queue import DELETE, SEND, receive_once
from simulator import NO_REPLY, Exponential, Message

from .local import LocalStore

if TYPE_CHECKING:
    from simulator import Simulation

CREATE = "order.create"
MODES = ("dual_write", "publish_first", "outbox")
QUEUE = "order-events"


@dataclass(frozen=True)
class OutboxConfig:
    """mode: see the module docstring; gap_s: time between the two writes of a dual write;
    publish_timeout_s / publish_attempts: each publish call; relay_poll_s, relay_batch: the relay."""

    mode: str = "outbox"
    gap_s: float = 0.005
    publish_timeout_s: float = 0.2
    publish_attempts: int = 3
    relay_poll_s: float = 0.05
    relay_batch: int = 20

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for n in ("gap_s", "publish_timeout_s", "relay_poll_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number of seconds > 0, got {v!r}")
        for n in ("publish_attempts", "relay_batch"):
            v = getattr(self, n)
            if not (isinstance(v, int) and 1 <= v <= 10_000):
                raise ValueError(f"{n} must be an integer in [1, 10000], got {v!r}")


class OrderService:
    """The order service publishing ``OrderCreated`` events (see the module docstring)."""

    def __init__(self, sim: Simulation, *, broker: str = "broker", name: str = "orders",
                 config: OutboxConfig | None = None) -> None:
        self.sim, self.broker, self.name = sim, broker, name
        self.config = config or OutboxConfig()
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=True, name="orders")
        self.publishes = 0
        self._msg_ids = 0
        self.node.on(CREATE, self._on_create)
        if self.config.mode == "outbox":
            self.node.on_recover(self._relay_start)
            sim.at(0.0, self._relay_start)

    # -- writes ---------------------------------------------------------------------------------
    def _commit_row(self, oid: Any, with_outbox: bool) -> None:
        def txn(t) -> None:
            t.write(("order", oid), "CREATED")
            if with_outbox:
                t.write(("outbox", oid), ("OrderCreated", oid))

        self.store.run(("create", oid), txn)

    def _publish(self, oid: Any, then, attempt: int = 1) -> None:
        """Publish event ``oid`` (a fresh message each try); ``then(ok)`` after an ack or the last try."""
        self._msg_ids += 1
        self.publishes += 1
        mid = (self.name, self.node.epoch, self._msg_ids)

        def done(outcome: str, _v: Any) -> None:
            if outcome == "ok":
                then(True)
            elif attempt < self.config.publish_attempts:
                self._publish(oid, then, attempt + 1)
            else:
                then(False)

        self.node.call(self.broker, SEND, (QUEUE, mid, None, oid, None), self.config.publish_timeout_s, done)

    def _on_create(self, msg: Message) -> Any:
        oid, mode, node = msg.payload, self.config.mode, self.node
        if mode == "outbox":
            self._commit_row(oid, True)
            return "created"
        if mode == "dual_write":
            self._commit_row(oid, False)
            node.after(self.config.gap_s, lambda: self._publish(
                oid, lambda ok: node.reply(msg, "created") if ok else node.reply(msg, "event not published", "error")))
            return NO_REPLY

        def published(ok: bool) -> None:
            if not ok:
                node.reply(msg, "event not published", "error")
                return

            def commit() -> None:
                self._commit_row(oid, False)
                node.reply(msg, "created")

            node.after(self.config.gap_s, commit)

        self._publish(oid, published)
        return NO_REPLY

    # -- the relay (polling publisher) ------------------------------------------------------------
    def _relay_start(self) -> None:
        self.node.state["relay.busy"] = False
        self._relay_tick()

    def _relay_tick(self) -> None:
        """Publish up to ``relay_batch`` rows; when the whole batch has answered, delete the acknowledged
        rows in one local transaction (the polling publisher's "mark as published"). A crash before that
        loses the marks, not the rows: they are published again."""
        node = self.node
        if not node.up:
            return
        if node.state.get("relay.busy"):
            node.after(self.config.relay_poll_s, self._relay_tick)
            return
        rows = [k[1] for k, _v in self.store.items() if k[0] == "outbox"][: self.config.relay_batch]
        if not rows:
            node.after(self.config.relay_poll_s, self._relay_tick)
            return
        node.state["relay.busy"] = True
        acked: list = []
        left = [len(rows)]

        def sent(ok: bool, oid: Any) -> None:
            if ok:
                acked.append(oid)
            left[0] -= 1
            if left[0] == 0:
                self.store.run(("relay", self.sim.now), lambda t: [t.delete(("outbox", o)) for o in acked])
                node.state["relay.busy"] = False
                node.after(self.config.relay_poll_s, self._relay_tick)

        for oid in rows:
            self._publish(oid, lambda ok, oid=oid: sent(ok, oid))

    def exists(self, oid: Any) -> bool:
        """Whether the order service's own store holds order ``oid``."""
        return self.store.get(("order", oid)) is not None


class EventConsumer:
    """Applies ``OrderCreated`` events from the queue; ``dedupe``: an inbox row per event id in the
    same local transaction as the effect (Richardson's idempotent consumer)."""

    def __init__(self, sim: Simulation, *, broker: str = "broker", name: str = "billing", dedupe: bool = True,
                 visibility_s: float = 1.0, service: float = 0.002) -> None:
        self.sim, self.broker, self.name, self.dedupe = sim, broker, name, bool(dedupe)
        self.visibility_s, self.service = float(visibility_s), float(service)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=True, name="billing")
        self.applied: dict[Any, int] = {}  # event id -> times applied (a fact outside the world)
        self.first_applied: dict[Any, float] = {}
        self.node.on_recover(self._poll)
        sim.at(0.0, self._poll)

    def _poll(self) -> None:
        node = self.node
        receive_once(node, self.broker, QUEUE,
                     lambda batch: node.after(self.service * len(batch) * node.slow_factor,
                                              lambda: self._handle(batch)),
                     self._poll, max_messages=10, wait_s=1.0, visibility_s=self.visibility_s, rpc_timeout_s=1.0,
                     backoff_s=0.05, empty_delay_s=0.0)

    def _handle(self, batch: list) -> None:
        for receipt, _mid, _g, oid, _count, _sent in batch:
            def txn(t, oid=oid) -> bool:
                if self.dedupe:
                    if t.read(("inbox", oid)) is not None:
                        return False
                    t.write(("inbox", oid), True)
                t.write(("effect", oid), t.read(("effect", oid), 0) + 1)
                return True

            if self.store.run(("event", oid, receipt), txn):
                self.applied[oid] = self.applied.get(oid, 0) + 1
                self.first_applied.setdefault(oid, self.sim.now)
            self.node.call(self.broker, DELETE, (QUEUE, receipt), 1.0, lambda o, v: None)
        self._poll()


class OrderCreator:
    """Asks ``orders`` to create order 1, 2, … at ``rate`` per second (Poisson), no retries."""

    def __init__(self, sim: Simulation, target: str = "orders", *, rate: float, stop_at: float,
                 name: str = "client", timeout_s: float = 1.0) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of orders per second > 0, got {rate!r}")
        self.sim, self.target, self.stop_at, self.timeout_s = sim, target, stop_at, timeout_s
        self.node = sim.nodes.get(name) or sim.node(name)
        self.name, self.issued = name, 0
        self._gap = sim.sampler(Exponential(1.0 / rate), f"outbox.{name}.arrivals")
        sim.at(self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if sim.now >= self.stop_at:
            return
        sim.at(self._gap(), self._arrive)
        self.issued += 1
        rid = sim.metrics.begin(self.name, self.target, "create", sim.now)
        self.node.call(self.target, CREATE, self.issued, self.timeout_s, lambda o, _v: sim.metrics.end(rid, sim.now, o))


@dataclass
class OutboxWorld:
    """A built outbox world: the simulation, broker, order service, event consumer and order
    client.
    """
    sim: Simulation
    broker: QueueBroker
    service: OrderService
    consumer: EventConsumer
    client: OrderCreator


def build_outbox_world(sim: Simulation, mode: str, *, rate: float = 50.0, stop_at: float = 10.0,
                       dedupe: bool = True, config: OutboxConfig | None = None,
                       store_s: float = 0.01) -> OutboxWorld:
    """Broker (``store_s`` to persist a message before acknowledging it), order service, consumer, client."""
    cfg = config or OutboxConfig(mode=mode)
    if cfg.mode != mode:
        raise ValueError(f"config.mode {cfg.mode!r} differs from mode {mode!r}")
    broker = QueueBroker(sim, "broker", queues={QUEUE: QueueConfig(visibility_timeout_s=1.0)}, durable=True,
                         store_s=store_s)
    svc = OrderService(sim, config=cfg)
    cons = EventConsumer(sim, dedupe=dedupe)
    client = OrderCreator(sim, rate=rate, stop_at=stop_at)
    return OutboxWorld(sim, broker, svc, cons, client)


def check_outbox(world: OutboxWorld) -> dict[str, int]:
    """lost: orders that exist but whose event never took effect; phantom: events applied for orders
    that do not exist; duplicated: events applied more than once (run after the system drains)."""
    svc, applied = world.service, world.consumer.applied
    orders = [oid for oid in range(1, world.client.issued + 1) if svc.exists(oid)]
    return {"requests": world.client.issued, "orders": len(orders),
            "events_applied": len(applied),
            "lost": sum(1 for oid in orders if oid not in applied),
            "phantom": sum(1 for oid in applied if not svc.exists(oid)),
            "duplicated": sum(1 for n in applied.values() if n > 1),
            "publishes": svc.publishes}
