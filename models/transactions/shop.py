"""The order workload every transaction pattern runs: orders, payment, inventory, shipping.

After Richardson's "Microservices Patterns" (ch. 4, the *Create Order* saga): placing an order
charges the customer (payment), reserves stock (inventory) and schedules a delivery (shipping).
Each service owns its data in a :class:`~models.transactions.local.LocalStore` and exposes one
:class:`Resource`: an ``apply`` and an ``undo`` (its compensation), each one local transaction.
A :class:`Participant` node serves a resource to both protocols:

- sagas (``saga.do`` / ``saga.undo``, payload ``(saga_id, step, order)``): each step runs in one
  local transaction together with a record ``("saga", saga_id, step)`` -> ``done`` or
  ``compensated``, so a repeated ``do`` is answered without applying it again (an idempotency key)
  and a ``do`` that arrives after its ``undo`` is refused — the tombstone that makes compensations
  safe to send for a step that may never have run (Garcia-Molina & Salem, "Sagas", SIGMOD 1987,
  require compensations to be retried until they succeed). ``dedupe=False`` drops the record:
  a retried step then applies twice (the double charge the invariants checker counts);
- two-phase commit (``2pc.*``): see :mod:`models.transactions.twopc`.

Data: payment keys ``("acct", customer)`` -> balance and ``("charge", order)`` -> amount, so money is
conserved iff ``sum(balances) + sum(charges)`` stays the initial total; inventory
``("stock", item)`` -> units and ``("res", order)`` -> units reserved; shipping ``("ship", order)``.
Every applied or undone effect is appended to ``effects`` as ``(time, order_id, service, +1/-1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, Distribution, Exponential, Message, RpcError

from .local import LocalStore, LocalTxn, LockConflict

if TYPE_CHECKING:
    from simulator import Node, Simulation

SAGA_DO, SAGA_UNDO = "saga.do", "saga.undo"
SERVICES = ("payment", "inventory", "shipping")


class BusinessError(Exception):
    """A step the business rules refuse (insufficient funds, out of stock): a definite failure."""


@dataclass(frozen=True)
class Order:
    """One order (Richardson's *Create Order* saga): ``qty`` units of ``item`` for ``customer``,
    costing ``amount``.
    """
    id: int
    customer: int
    item: int
    qty: int
    amount: float


@dataclass(frozen=True)
class ShopConfig:
    """The shop's data and service times.

    customers, items: how many accounts and stock-keeping units; balance: each account's opening
    balance; stock: each item's opening units; service: seconds a participant spends on one
    request (scaled by the node's ``slow_factor``); ship_fail_p: probability that shipping refuses
    an order (a business failure at the last step); durable: the stores survive crashes.
    """

    customers: int = 50
    items: int = 20
    balance: float = 1e6
    stock: int = 1_000_000
    service: Distribution | float = Exponential(0.002)
    ship_fail_p: float = 0.0
    durable: bool = True

    def __post_init__(self) -> None:
        for n in ("customers", "items"):
            v = getattr(self, n)
            if not (isinstance(v, int) and 1 <= v <= 1_000_000):
                raise ValueError(f"{n} must be an integer in [1, 1000000], got {v!r}")
        if not (isinstance(self.balance, (int, float)) and math.isfinite(self.balance) and self.balance >= 0):
            raise ValueError(f"balance must be a finite amount >= 0, got {self.balance!r}")
        if not (isinstance(self.stock, int) and self.stock >= 0):
            raise ValueError(f"stock must be an integer >= 0, got {self.stock!r}")
        if not (isinstance(self.ship_fail_p, (int, float)) and 0 <= self.ship_fail_p <= 1):
            raise ValueError(f"ship_fail_p must be a probability in [0, 1], got {self.ship_fail_p!r}")


class Resource:
    """One service's business step on its own store (subclasses: the three shop services)."""

    name = "resource"

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def apply(self, txn: LocalTxn, order: Order) -> None:  # pragma: no cover
        """The business step for ``order`` inside ``txn``; raises ``BusinessError`` to refuse it.
        """
        raise NotImplementedError

    def undo(self, txn: LocalTxn, order: Order) -> bool:  # pragma: no cover
        """Compensate ``apply``; True if there was something to undo."""
        raise NotImplementedError


class Payment(Resource):
    """The payment service: charges the customer's account (refused on insufficient funds)."""
    name = "payment"

    def apply(self, txn: LocalTxn, o: Order) -> None:
        """Move ``o.amount`` from the customer's account to the order's charge;
        ``insufficient_funds`` if the balance is short.
        """
        bal = txn.read(("acct", o.customer), 0.0)
        if bal < o.amount:
            raise BusinessError("insufficient_funds")
        txn.write(("acct", o.customer), bal - o.amount)
        txn.write(("charge", o.id), txn.read(("charge", o.id), 0.0) + o.amount)

    def undo(self, txn: LocalTxn, o: Order) -> bool:
        """Refund the order's charge to the customer's account; True if there was one."""
        charged = txn.read(("charge", o.id), 0.0)
        if charged:
            txn.write(("acct", o.customer), txn.read(("acct", o.customer), 0.0) + charged)
            txn.delete(("charge", o.id))
        return bool(charged)


class Inventory(Resource):
    """The inventory service: reserves stock for an order (refused when out of stock)."""
    name = "inventory"

    def apply(self, txn: LocalTxn, o: Order) -> None:
        """Reserve ``o.qty`` units of the item for the order; ``out_of_stock`` if fewer are left.
        """
        units = txn.read(("stock", o.item), 0)
        if units < o.qty:
            raise BusinessError("out_of_stock")
        txn.write(("stock", o.item), units - o.qty)
        txn.write(("res", o.id), txn.read(("res", o.id), 0) + o.qty)

    def undo(self, txn: LocalTxn, o: Order) -> bool:
        """Return the order's reserved units to stock; True if any were held."""
        held = txn.read(("res", o.id), 0)
        if held:
            txn.write(("stock", o.item), txn.read(("stock", o.item), 0) + held)
            txn.delete(("res", o.id))
        return bool(held)


class Shipping(Resource):
    """The shipping service: schedules a delivery, refused with probability ``ship_fail_p`` per
    order.
    """
    name = "shipping"

    def apply(self, txn: LocalTxn, o: Order) -> None:
        # One draw per order id so a retried step sees the same verdict (a business rule, not noise).
        """Schedule the order's delivery; ``no_courier`` if the order's one refusal draw says so
        (the same verdict on every retry).
        """
        if self.shop.config.ship_fail_p and self.shop.refused(o.id):
            raise BusinessError("no_courier")
        txn.write(("ship", o.id), txn.read(("ship", o.id), 0) + 1)

    def undo(self, txn: LocalTxn, o: Order) -> bool:
        """Cancel the order's delivery; True if one was scheduled."""
        shipped = txn.read(("ship", o.id), 0)
        if shipped:
            txn.delete(("ship", o.id))
        return bool(shipped)


class Participant:
    """A service node serving its resource to sagas (and, via ``TwoPCParticipant``, to 2PC)."""

    def __init__(self, shop: Shop, resource: Resource, node: Node) -> None:
        self.shop, self.resource, self.node = shop, resource, node
        self.store = LocalStore(node, durable=shop.config.durable)
        self._service = shop.sim.sampler(shop.config.service, f"shop.{node.name}.service")
        self.dedupe = True
        self.applied = 0
        node.on(SAGA_DO, self._saga_do)
        node.on(SAGA_UNDO, self._saga_undo)

    def later(self, msg: Message, fn: Callable[[], Any]) -> Any:
        """Answer ``msg`` with ``fn()`` after one service time (an RpcError answers ``error``)."""
        node = self.node

        def done() -> None:
            try:
                node.reply(msg, fn())
            except RpcError as e:
                node.reply(msg, e.value, "error")

        node.after(self._service() * node.slow_factor, done)
        return NO_REPLY

    def effect(self, order_id: int, delta: int) -> None:
        """Record one applied business effect (``delta`` +1 apply, -1 undo) of ``order_id`` at this
        service, for the invariant checker.
        """
        self.shop.effects.append((self.shop.sim.now, order_id, self.resource.name, delta))

    # -- saga steps ------------------------------------------------------------------------------
    def saga_step(self, msg: Message, apply: Callable[[LocalTxn], None], on_applied: Callable[[], None], *,
                  dedupe: bool | None = None, conflicts: tuple[type[Exception], ...] = (LockConflict,)) -> Any:
        """Serve saga step ``msg`` = ``(sid, step, order)`` in one local transaction: ``apply(txn)`` unless
        the step's status key says it is already done (a retry: answered ``ok`` again, applied once) or
        compensated (a late ``do`` after its ``undo``: refused). With ``dedupe=False`` (default: the
        participant's ``dedupe``) there is no status key and every delivery applies. A ``BusinessError``
        answers ``("business", reason)``, a lock conflict ``"locked"``; ``on_applied()`` runs after a
        commit that applied the step."""
        sid, step, _order = msg.payload
        dedupe = self.dedupe if dedupe is None else dedupe

        def do(txn: LocalTxn) -> str:
            key = ("saga", sid, step)
            st = txn.read(key) if dedupe else None
            if st == "done":
                return "done"
            if st == "compensated":
                raise BusinessError("compensated")
            apply(txn)
            if dedupe:
                txn.write(key, "done")
            return "applied"

        def go() -> str:
            try:
                r = self.store.run(("saga", sid, step), do)
            except BusinessError as e:
                raise RpcError(("business", str(e))) from None
            except conflicts:
                raise RpcError("locked") from None
            if r == "applied":
                on_applied()
            return "ok"

        return self.later(msg, go)

    def _saga_do(self, msg: Message) -> Any:
        order = msg.payload[2]

        def applied() -> None:
            self.applied += 1
            self.effect(order.id, +1)

        return self.saga_step(msg, lambda txn: self.resource.apply(txn, order), applied)

    def _saga_undo(self, msg: Message) -> Any:
        sid, step, order = msg.payload

        def undo(txn: LocalTxn) -> bool:
            key = ("saga", sid, step)
            st = txn.read(key)
            if st == "compensated":
                return False
            txn.write(key, "compensated")  # a tombstone: a late ``do`` of this step is refused
            return self.resource.undo(txn, order)

        def go() -> str:
            try:
                undone = self.store.run(("saga-undo", sid, step), undo)
            except LockConflict:
                raise RpcError("locked") from None
            if undone:
                self.effect(order.id, -1)
            return "ok"

        return self.later(msg, go)


class Shop:
    """The three participant services, their opening data, and the record of effects."""

    def __init__(self, sim: Simulation, config: ShopConfig | None = None, *, prefix: str = "") -> None:
        self.sim, self.config = sim, config or ShopConfig()
        self.effects: list[tuple[float, int, str, int]] = []
        self.negative_stock: list[tuple[float, Hashable, Any]] = []
        self._refusal_u = sim.rng("shop.shipping.refusals")
        self._refused: dict[int, bool] = {}
        self.participants: dict[str, Participant] = {}
        for cls in (Payment, Inventory, Shipping):
            node = sim.node(prefix + cls.name)
            self.participants[cls.name] = Participant(self, cls(self), node)
        c = self.config
        pay, inv = self.participants["payment"].store, self.participants["inventory"].store
        for i in range(c.customers):
            pay.data[("acct", i)] = float(c.balance)
        for i in range(c.items):
            inv.data[("stock", i)] = c.stock
        inv.on_write.append(self._watch_stock)
        self.initial_money = float(c.balance) * c.customers

    def refused(self, order_id: int) -> bool:
        """Whether shipping refuses ``order_id``: one draw per order from the refusal stream,
        remembered.
        """
        r = self._refused.get(order_id)
        if r is None:
            r = self._refused[order_id] = bool(self._refusal_u.random() < self.config.ship_fail_p)
        return r

    def _watch_stock(self, key: Hashable, value: Any) -> None:
        if isinstance(key, tuple) and key[0] == "stock" and value is not None and value < 0:
            self.negative_stock.append((self.sim.now, key, value))

    def node_names(self) -> list[str]:
        """The participant nodes' names."""
        return [p.node.name for p in self.participants.values()]

    def store(self, service: str) -> LocalStore:
        """``service``'s local store."""
        return self.participants[service].store
