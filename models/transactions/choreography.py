"""Choreographed sagas: no orchestrator; each service reacts to events on the broker and publishes the next.

Richardson, "Microservices Patterns" (2018), §4.2.1 *Choreography-based sagas*; Garcia-Molina &
Salem (1987) for the compensations. The same shop (:mod:`.shop`: payment, inventory, shipping, with
their local stores) and the same order service node ``orders`` (op ``order.place``, so the
:class:`~models.transactions.world.OrderClient` drives both styles), but the steps are chained by
events, each service subscribing to what concerns it (SNS-to-SQS fan-out: one queue per service on
one :class:`models.messaging.QueueBroker`):

    OrderCreated      -> inventory reserves  -> InventoryReserved | InventoryFailed
    InventoryReserved -> payment charges     -> PaymentCharged    | PaymentFailed
    PaymentCharged    -> shipping schedules  -> ShipmentScheduled | ShipmentFailed
    ShipmentScheduled -> orders: APPROVED    (OrderApproved)
    compensation by events:
    PaymentFailed     -> inventory releases  -> InventoryReleased -> orders: REJECTED (OrderCancelled)
    ShipmentFailed    -> payment refunds     -> PaymentRefunded   -> inventory releases -> InventoryReleased -> ...
    InventoryFailed   -> orders: REJECTED (OrderCancelled)

Each service handles a message in one local transaction that applies the effect and records
``("chor", order, event) -> the events it produced`` (an idempotent consumer: a redelivered event
re-publishes the recorded answer without applying it again), publishes those events, and only when
the broker has acknowledged them deletes the incoming message — so a crash anywhere loses nothing
(the message comes back after its visibility timeout) and duplicates are absorbed. ``order.place``
writes the order ``PENDING`` and an outbox row in one local transaction and answers at once; the
row is published (again after a crash) and then deleted.

What is given up against the orchestrator: nobody holds an order's progress. It is spread over the
order service, every participant's store and the messages in the broker —
:meth:`Choreography.places_to_look` counts them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.messaging import QueueBroker, QueueConfig
from models.messaging.queue import DELETE, SEND, receive_once
from simulator import Message

from .local import LocalStore
from .saga import PLACE, SagaRecord
from .shop import BusinessError, Order, Shop

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulator import Node, Simulation

    from .shop import ShopConfig

# event -> the services whose queues receive it
SUBSCRIBERS = {"OrderCreated": ("inventory",), "InventoryReserved": ("payment",), "InventoryFailed": ("orders",),
               "PaymentCharged": ("shipping",), "PaymentFailed": ("inventory",), "ShipmentScheduled": ("orders",),
               "ShipmentFailed": ("payment",), "PaymentRefunded": ("inventory",), "InventoryReleased": ("orders",)}
# (service, incoming event) -> (action, event on success, event on a business refusal)
REACTIONS = {("inventory", "OrderCreated"): ("apply", "InventoryReserved", "InventoryFailed"),
             ("payment", "InventoryReserved"): ("apply", "PaymentCharged", "PaymentFailed"),
             ("shipping", "PaymentCharged"): ("apply", "ShipmentScheduled", "ShipmentFailed"),
             ("inventory", "PaymentFailed"): ("undo", "InventoryReleased", None),
             ("payment", "ShipmentFailed"): ("undo", "PaymentRefunded", None),
             ("inventory", "PaymentRefunded"): ("undo", "InventoryReleased", None),
             ("orders", "ShipmentScheduled"): ("APPROVED", "OrderApproved", None),
             ("orders", "InventoryFailed"): ("REJECTED", "OrderCancelled", None),
             ("orders", "InventoryReleased"): ("REJECTED", "OrderCancelled", None)}
SERVICES = ("orders", "inventory", "payment", "shipping")


def queue_of(service: str) -> str:
    """The name of ``service``'s inbound queue on the broker: ``{service}.in``."""
    return f"{service}.in"


class _Subscriber:
    """One service's loop: receive a batch from its queue, handle each message, delete it."""

    def __init__(self, chor: Choreography, service: str, node, store: LocalStore) -> None:
        self.chor, self.service, self.node, self.store = chor, service, node, store
        self._service_time = chor.sim.sampler(chor.shop.config.service, f"chor.{service}.service")
        node.on_recover(self._poll)
        chor.sim.at(0.0, self._poll)

    def _poll(self) -> None:
        receive_once(self.node, self.chor.broker, queue_of(self.service), self._next, self._poll, max_messages=10,
                     wait_s=1.0, visibility_s=self.chor.visibility_s, rpc_timeout_s=1.0, backoff_s=0.05,
                     empty_delay_s=0.0)

    def _next(self, batch: list) -> None:
        if not batch:
            self._poll()
            return
        receipt, _mid, _g, (kind, order), _count, _sent = batch[0]
        node = self.node

        def handle() -> None:
            out = self._react(kind, order)
            self.chor.publish(node, out, order, lambda: self._delete(receipt, batch))

        node.after(self._service_time() * node.slow_factor, handle)

    def _delete(self, receipt: Any, batch: list) -> None:
        self.node.call(self.chor.broker, DELETE, (queue_of(self.service), receipt), 1.0, lambda o, v: None)
        self._next(batch[1:])

    def _react(self, kind: str, order: Order) -> list[str]:
        """Apply the reaction in one local transaction with its dedupe record; the events to publish."""
        action, ok_event, refused_event = REACTIONS[(self.service, kind)]
        key = ("chor", order.id, kind)
        applied = [0]

        def txn(t) -> list[str]:
            done = t.read(key)
            if done is not None:
                return list(done)
            if action in ("APPROVED", "REJECTED"):
                t.write(("order", order.id), action)
                out = [ok_event]
            else:
                res = self.chor.shop.participants[self.service].resource
                try:
                    if action == "apply":
                        res.apply(t, order)
                        applied[0] = +1
                    elif res.undo(t, order):
                        applied[0] = -1
                    out = [ok_event]
                except BusinessError:
                    out = [refused_event]
            t.write(key, tuple(out))
            return out

        out = self.store.run(key, txn)
        if applied[0]:
            self.chor.shop.participants[self.service].effect(order.id, applied[0])
        if action in ("APPROVED", "REJECTED"):
            rec = self.chor.records[order.id]
            if math.isnan(rec.finished):
                rec.status, rec.finished = action, self.chor.sim.now
        return out


class Choreography:
    """The broker, the order service's ``order.place`` and the four subscribers (module docstring)."""

    def __init__(self, sim: Simulation, shop: Shop, *, broker: str = "broker", name: str = "orders",
                 visibility_s: float = 2.0, publish_timeout_s: float = 0.5, store_s: float = 0.0) -> None:
        self.sim, self.shop, self.broker, self.name = sim, shop, broker, name
        self.visibility_s, self.publish_timeout_s = float(visibility_s), float(publish_timeout_s)
        self.queues = QueueBroker(sim, broker, queues={queue_of(s): QueueConfig(visibility_timeout_s=visibility_s)
                                                       for s in SERVICES}, durable=True, store_s=store_s)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=True, name="orders")
        self.records: dict[Any, SagaRecord] = {}
        self.trace: dict[Any, list[tuple[float, str]]] = defaultdict(list)  # order -> first publish of each event
        self.publishes = 0
        self._ids = 0
        self.node.on(PLACE, self._on_place)
        self.node.on_recover(self._relay)
        self.subscribers = [_Subscriber(self, "orders", self.node, self.store)]
        for s in ("inventory", "payment", "shipping"):
            p = shop.participants[s]
            self.subscribers.append(_Subscriber(self, s, p.node, p.store))

    # -- publishing ------------------------------------------------------------------------------------
    def publish(self, node: Node, events: list[str], order: Order, then: Callable[[], None]) -> None:
        """Send each event to its subscribers' queues (retrying until acknowledged); then ``then()``."""
        sends = [(e, s) for e in events for s in SUBSCRIBERS.get(e, ())]
        for e in events:
            if e not in (k for _t, k in self.trace[order.id]):
                self.trace[order.id].append((self.sim.now, e))
        left = [len(sends)]
        if not sends:
            then()
            return

        def one(event: str, svc: str) -> None:
            self._ids += 1
            self.publishes += 1
            mid = (node.name, node.epoch, self._ids)

            def done(outcome: str, _v: Any) -> None:
                if outcome != "ok":
                    node.after(0.05, lambda: one(event, svc))
                    return
                left[0] -= 1
                if left[0] == 0:
                    then()

            node.call(self.broker, SEND, (queue_of(svc), mid, None, (event, order), None), self.publish_timeout_s,
                      done)

        for e, s in sends:
            one(e, s)

    # -- the order service -------------------------------------------------------------------------------
    def _on_place(self, msg: Message) -> Any:
        order: Order = msg.payload
        if self.store.get(("order", order.id)) is None:
            def txn(t) -> None:
                t.write(("order", order.id), "PENDING")
                t.write(("outbox", order.id), order)

            self.store.run(("place", order.id), txn)
            self.records[order.id] = SagaRecord(order, self.sim.now)
            self._send_outbox(order)
        return ("accepted", order.id)

    def _send_outbox(self, order: Order) -> None:
        self.publish(self.node, ["OrderCreated"], order,
                     lambda: self.store.run(("relay", order.id), lambda t: t.delete(("outbox", order.id))))

    def _relay(self) -> None:
        for k, order in list(self.store.items()):
            if k[0] == "outbox":
                self._send_outbox(order)

    # -- observing --------------------------------------------------------------------------------------
    def order_status(self, order_id: Any) -> str | None:
        """The order service's status of ``order_id``: "PENDING", "APPROVED" or "REJECTED", or None
        if it has no record.
        """
        return self.store.get(("order", order_id))

    def places_to_look(self, order_id: Any) -> int:
        """Components holding a fact about the order now: the order service, each participant whose store
        has a record of it, and each queue holding a message about it."""
        n = int(self.store.get(("order", order_id)) is not None)
        for s in ("inventory", "payment", "shipping"):
            n += any(isinstance(k, tuple) and k[:2] == ("chor", order_id) for k in self.shop.store(s).data)
        for q in self.queues.queues.values():
            n += any(m.body[1].id == order_id for m in q.msgs.values())
        return n


@dataclass
class ChoreoWorld:
    """The shape :func:`~models.transactions.invariants.check_invariants` reads."""

    sim: Any
    shop: Shop
    service: Choreography
    client: Any
    protocol: str = "choreography"
    participants2pc: tuple = ()

    def order_status(self, order_id: int) -> str | None:
        """The order service's status of ``order_id``, or None if unknown."""
        return self.service.order_status(order_id)

    @property
    def services(self) -> tuple[str, ...]:
        """The participant services' node names (payment, inventory, shipping)."""
        return tuple(self.shop.participants)


def build_choreography_world(sim: Simulation, *, shop: ShopConfig | None = None, rate: float = 20.0,
                             stop_at: float = math.inf, client_timeout_s: float = 1.0, visibility_s: float = 2.0,
                             limit: int | None = None) -> ChoreoWorld:
    """Shop, broker, choreography and an order client: the same nodes and streams as ``build_world``."""
    from .shop import ShopConfig
    from .world import OrderClient

    cfg = shop or ShopConfig()
    s = Shop(sim, cfg)
    chor = Choreography(sim, s, visibility_s=visibility_s)
    client = OrderClient(sim, "orders", cfg, rate=rate, timeout_s=client_timeout_s, stop_at=stop_at, limit=limit)
    return ChoreoWorld(sim, s, chor, client)
