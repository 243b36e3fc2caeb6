"""Idempotency keys: a service-side store from key to stored response, so retries execute once.

Richardson, "Microservices Patterns" (2018), §3.3.6 "Handling duplicate messages"; Brandur Leach,
"Implementing Stripe-like Idempotency Keys in Postgres" (2017) and Stripe's API reference
("Idempotent requests": keys expire after 24 hours; a request that repeats a key still being
processed gets a 409 conflict). The product brief's ``create_order(order, idempotency_key)``.

:class:`ChargeService` serves ``charge (order_id, amount, key)``. Without a key (or without a
``config``) every request that reaches it is executed. With a key:

- a *completed* key younger than ``ttl_s``: the stored response is returned, nothing executes;
- a key *in progress* (a concurrent duplicate): ``concurrent="reject"`` answers
  ``error "in_progress"`` (definite: this attempt did nothing; the client retries later) and
  ``"wait"`` holds the duplicate and answers it with the first execution's response;
- otherwise (new, or expired): executed; the effect and the stored response are written in one
  local transaction (durable), so a crash cannot keep one without the other. The in-progress
  marker is volatile: a crash loses the work and the marker together, and a retry executes afresh.

:class:`PayingClient` sends requests with a timeout and a :class:`~models.resilience.RetryPolicy`,
reusing one key across all retries of a request (or none: ``use_keys=False``). A lost reply makes
the client retry a charge that already happened: without keys the expected number of executions of
a request whose replies are each lost with probability q is 1 + q + ... + q^(n-1) for n attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.resilience.retry import RetryPolicy
from simulator import NO_REPLY, Distribution, Exponential, Message, RpcError

from .local import LocalStore

if TYPE_CHECKING:
    from simulator import Simulation

CHARGE = "payments.charge"
CONCURRENT = ("reject", "wait")


@dataclass(frozen=True)
class IdempotencyConfig:
    """ttl_s: how long a completed key's response is kept (Stripe: 24 h); concurrent: what a
    duplicate that arrives while its key is in progress gets (``reject`` or ``wait``)."""

    ttl_s: float = 86_400.0
    concurrent: str = "reject"

    def __post_init__(self) -> None:
        if not (isinstance(self.ttl_s, (int, float)) and self.ttl_s > 0 and not math.isnan(self.ttl_s)):
            raise ValueError(f"ttl_s must be a number of seconds > 0, got {self.ttl_s!r}")
        if self.concurrent not in CONCURRENT:
            raise ValueError(f"concurrent must be one of {CONCURRENT}, got {self.concurrent!r}")


class ChargeService:
    """A payment service node with an optional idempotency-key store (see the module docstring)."""

    def __init__(self, sim: Simulation, name: str = "payments", *, config: IdempotencyConfig | None = None,
                 service: Distribution | float = Exponential(0.01)) -> None:
        self.sim, self.name, self.config = sim, name, config
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=True, name="payments")
        self._service = sim.sampler(service, f"payments.{name}.service")
        self.executions: dict[Any, int] = {}  # order id -> times charged (a fact, outside the world)
        self.key_hits = self.in_progress_rejects = self.waited = 0
        self.node.on(CHARGE, self._on_charge)

    @property
    def _running(self) -> dict:
        return self.node.state.setdefault("idem.running", {})  # key -> waiting duplicates (volatile)

    def _on_charge(self, msg: Message) -> Any:
        order_id, amount, key = msg.payload
        cfg = self.config
        if cfg is not None and key is not None:
            stored = self.store.get(("key", key))
            if stored is not None and self.sim.now - stored[0] < cfg.ttl_s:
                self.key_hits += 1
                return stored[1]
            waiting = self._running.get(key)
            if waiting is not None:
                if cfg.concurrent == "reject":
                    self.in_progress_rejects += 1
                    raise RpcError("in_progress")
                self.waited += 1
                waiting.append(msg)
                return NO_REPLY
            self._running[key] = []
        node = self.node

        def execute() -> None:
            response = ("charged", order_id, amount)

            def txn(t) -> None:
                t.write(("charge", order_id), t.read(("charge", order_id), 0.0) + amount)
                if key is not None and cfg is not None:
                    t.write(("key", key), (self.sim.now, response))

            self.store.run(("charge", order_id, self.sim.now), txn)
            self.executions[order_id] = self.executions.get(order_id, 0) + 1
            node.reply(msg, response)
            for m in self._running.pop(key, ()) if key is not None else ():
                node.reply(m, response)

        node.after(self._service() * node.slow_factor, execute)
        return NO_REPLY


class PayingClient:
    """Charges ``requests`` orders, one every ``gap_s`` (Poisson), each with retries reusing its key."""

    def __init__(self, sim: Simulation, target: str, *, requests: int, gap_s: float = 0.1, use_keys: bool = True,
                 retry: RetryPolicy | None = None, timeout_s: float = 0.1, name: str = "client",
                 amount: float = 10.0) -> None:
        if not (isinstance(requests, int) and requests >= 0):
            raise ValueError(f"requests must be an integer >= 0, got {requests!r}")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
        self.sim, self.target, self.name, self.use_keys = sim, target, name, bool(use_keys)
        self.retry = retry or RetryPolicy(max_attempts=3, base_s=0.1, cap_s=2.0)
        self.timeout_s, self.amount, self.requests = float(timeout_s), float(amount), requests
        self.node = sim.nodes.get(name) or sim.node(name)
        self.issued = 0
        self.attempts: dict[int, int] = {}
        self.outcomes: dict[int, str] = {}
        self._gap = sim.sampler(Exponential(gap_s), f"idem.{name}.arrivals")
        self._u = sim.uniforms(f"idem.{name}.jitter")
        sim.at(self._gap(), self._arrive)

    def _arrive(self) -> None:
        if self.issued >= self.requests:
            return
        self.issued += 1
        oid = self.issued
        self.sim.at(self._gap(), self._arrive)
        rid = self.sim.metrics.begin(self.name, self.target, "charge", self.sim.now)
        key = f"{self.name}-{oid}" if self.use_keys else None
        self._attempt(oid, key, rid, 1, 0.0)

    def _attempt(self, oid: int, key: str | None, rid: int, attempt: int, prev: float) -> None:
        self.attempts[oid] = attempt
        pol = self.retry

        def done(outcome: str, value: Any) -> None:
            retryable = outcome in pol.retry_on or (outcome == "error" and value == "in_progress")
            if outcome != "ok" and retryable and attempt < pol.max_attempts:
                sleep = pol.delay(attempt, prev, self._u)
                self.node.after(sleep, lambda: self._attempt(oid, key, rid, attempt + 1, sleep))
                return
            self.outcomes[oid] = outcome
            self.sim.metrics.end(rid, self.sim.now, outcome, attempt)

        self.node.call(self.target, CHARGE, (oid, self.amount, key), self.timeout_s, done)
