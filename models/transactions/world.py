"""A shop world run by sagas or by 2PC, and the order client that drives it.

``build_world(sim, "saga" | "2pc", ...)`` makes the three participant services
(:class:`~models.transactions.shop.Shop`), the order service (a saga orchestrator or a 2PC
coordinator, node ``orders``) and an :class:`OrderClient` — with the same node names and the same
random streams in both, so the two protocols see the same orders at the same times and the same
fault schedule (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simulator import Exponential, Simulation

from .saga import PLACE, SagaConfig, SagaOrchestrator, SagaStep
from .shop import SERVICES, Order, Shop, ShopConfig
from .twopc import Coordinator, TwoPCConfig, TwoPCParticipant

PROTOCOLS = ("saga", "2pc")


class OrderClient:
    """Places orders at ``rate`` per second (Poisson) on node ``target``; one ``sim.metrics`` request each
    (op ``order``; outcome ``ok`` = accepted (saga) or committed (2PC), ``error``, ``timeout``…)."""

    def __init__(self, sim: Simulation, target: str, shop: ShopConfig, *, rate: float, name: str = "client",
                 amount: float = 10.0, timeout_s: float = 1.0, start_at: float = 0.0, stop_at: float = math.inf,
                 limit: int | None = None) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of orders per second > 0, got {rate!r}")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
        self.sim, self.target, self.shop, self.name = sim, target, shop, name
        self.amount, self.timeout_s, self.stop_at = float(amount), float(timeout_s), stop_at
        self.limit = math.inf if limit is None else limit
        self.node = sim.nodes.get(name) or sim.node(name)
        self.orders: list[Order] = []
        self.rids: dict[int, int] = {}
        self._gap = sim.sampler(Exponential(1.0 / rate), f"orders.{name}.arrivals")
        self._pick = sim.uniforms(f"orders.{name}.picks")
        sim.at(start_at + self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if sim.now >= self.stop_at or len(self.orders) >= self.limit:
            return
        sim.at(self._gap(), self._arrive)
        o = Order(len(self.orders) + 1, int(self._pick() * self.shop.customers), int(self._pick() * self.shop.items),
                  1, self.amount)
        self.orders.append(o)
        rid = sim.metrics.begin(self.name, self.target, "order", sim.now)
        self.rids[o.id] = rid
        self.node.call(self.target, PLACE, o, self.timeout_s, lambda out, _v: sim.metrics.end(rid, sim.now, out))


@dataclass
class TxWorld:
    """A built shop world run by ``protocol`` ("saga" or "2pc"): the shape
    :func:`~models.transactions.invariants.check_invariants` reads.
    """
    sim: Simulation
    protocol: str
    shop: Shop
    service: Any  # SagaOrchestrator | Coordinator
    client: OrderClient
    participants2pc: list[TwoPCParticipant]

    def order_status(self, order_id: int) -> str | None:
        """The order service's status of ``order_id``, or None if unknown."""
        return self.service.order_status(order_id)

    @property
    def services(self) -> tuple[str, ...]:
        """The participant services' node names (payment, inventory, shipping)."""
        return tuple(self.shop.participants)


def build_world(sim: Simulation, protocol: str, *, shop: ShopConfig | None = None, rate: float = 20.0,
                stop_at: float = math.inf, client_timeout_s: float = 1.0, saga: SagaConfig | None = None,
                twopc: TwoPCConfig | None = None, steps: tuple[SagaStep, ...] | None = None,
                limit: int | None = None) -> TxWorld:
    """The shop, the order service running ``protocol``, and an order client (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    shop_cfg = shop or ShopConfig()
    s = Shop(sim, shop_cfg)
    parts: list[TwoPCParticipant] = []
    if protocol == "saga":
        service: Any = SagaOrchestrator(sim, steps or tuple(SagaStep(n) for n in SERVICES), config=saga)
    else:
        cfg = twopc or TwoPCConfig()
        parts = [TwoPCParticipant(p, cfg) for p in s.participants.values()]
        service = Coordinator(sim, list(s.participants), config=cfg)
    client = OrderClient(sim, "orders", shop_cfg, rate=rate, timeout_s=client_timeout_s, stop_at=stop_at, limit=limit)
    return TxWorld(sim, protocol, s, service, client, parts)
