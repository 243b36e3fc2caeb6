"""Orchestrated sagas: a sequence of local transactions with compensations, driven from a durable log.

Garcia-Molina & Salem, "Sagas" (SIGMOD 1987): a saga T1..Tn either runs to the end or, if Tk
fails, runs the compensations C(k-1)..C1 of the completed steps in reverse order; compensations
are retried until they succeed (the paper's "backward recovery"), so they must be idempotent.
Richardson, "Microservices Patterns" (2018), ch. 4: an *orchestrator* tells each participant what
to do; steps are *compensatable* (before the pivot), the *pivot* (the go/no-go step: once it
succeeds the saga will complete) and *retriable* (after the pivot: retried until they succeed,
never compensated).

:class:`SagaOrchestrator` is a node (the order service). ``order.place`` writes the order as
``PENDING`` and the saga's entry in its durable log in one local transaction and answers at once
(``ok`` = accepted): the client does not wait for the saga. Then, for step i:

- ``ok``: logged done, next step;
- a business refusal (``error`` ``("business", reason)``, definite): the saga fails at step i and
  compensates the completed steps before it — exactly k-1 compensations for a failure at step k;
- anything else (timeout: it *may* have run; unreachable, crashed, locked: it did not) is retried
  with ``config.step_retry``'s backoff while the saga is younger than ``saga_timeout_s`` and
  attempts remain, then the saga fails there; a step that timed out is compensated too
  (participants keep a tombstone, so a compensation for a step that never ran is harmless and
  refuses the late step). A pivot that may have run cannot be compensated: it is retried until a
  definite answer. Retriable steps and compensations are retried forever (capped exponential
  backoff, full jitter).

A crash of the orchestrator loses its timers and outstanding calls; on recovery it reads its log
and resumes every unfinished saga where it was (re-sending the step in flight: participants
deduplicate it). Facts for analysis are in ``orchestrator.records`` (outside the simulated world).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models.resilience.retry import RetryPolicy
from simulator import Message

from .local import LocalStore
from .shop import SAGA_DO, SAGA_UNDO

if TYPE_CHECKING:
    from simulator import Simulation

PLACE = "order.place"
STEP_KINDS = ("compensatable", "pivot", "retriable")


@dataclass(frozen=True)
class SagaStep:
    """One step: ``saga.do``/``saga.undo`` of the participant node ``service``."""

    service: str
    kind: str = "compensatable"
    name: str = ""  # the step's key at the participant (default: ``service``); lets one service serve two steps

    @property
    def key(self) -> str:
        """The step's key at its participant: ``name`` if given, else the service."""
        return self.name or self.service

    def __post_init__(self) -> None:
        if not (isinstance(self.service, str) and self.service):
            raise ValueError(f"service must be a node name, got {self.service!r}")
        if self.kind not in STEP_KINDS:
            raise ValueError(f"kind must be one of {STEP_KINDS}, got {self.kind!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string (empty: the service's name), got {self.name!r}")


def check_steps(steps: tuple[SagaStep, ...]) -> None:
    """Compensatable steps, then at most one pivot, then retriable steps (Richardson, ch. 4)."""
    order = {k: i for i, k in enumerate(STEP_KINDS)}
    ranks = [order[s.kind] for s in steps]
    if not steps or ranks != sorted(ranks) or ranks.count(1) > 1:
        raise ValueError("steps must be compensatable steps, then at most one pivot, then retriable steps; got "
                         f"{[s.kind for s in steps]}")


@dataclass(frozen=True)
class SagaConfig:
    """step_timeout_s: each step call's timeout; saga_timeout_s: after this age a saga stops retrying a
    failing step before its pivot and compensates; step_retry: backoff and attempts for a failing
    step; comp_base_s / comp_cap_s: capped exponential backoff for compensations and retriable steps."""

    step_timeout_s: float = 0.5
    saga_timeout_s: float = 30.0
    step_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=1000, base_s=0.05, cap_s=1.0))
    comp_base_s: float = 0.05
    comp_cap_s: float = 1.0

    def __post_init__(self) -> None:
        for n in ("step_timeout_s", "saga_timeout_s", "comp_base_s", "comp_cap_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number of seconds > 0, got {v!r}")
        if self.comp_cap_s < self.comp_base_s:
            raise ValueError(f"comp_cap_s must be >= comp_base_s ({self.comp_base_s}), got {self.comp_cap_s}")
        if not isinstance(self.step_retry, RetryPolicy):
            raise ValueError(f"step_retry must be a RetryPolicy, got {self.step_retry!r}")


@dataclass
class SagaRecord:
    """What happened to one saga (a measurement, not simulated state)."""

    order: Any
    started: float
    finished: float = math.nan
    status: str = "PENDING"
    failed_step: int = -1  # 1-based; -1: none
    compensations: int = 0
    step_calls: int = 0


class SagaOrchestrator:
    """The order service as saga orchestrator (see the module docstring)."""

    def __init__(self, sim: Simulation, steps: tuple[SagaStep, ...] | list[SagaStep], *, name: str = "orders",
                 config: SagaConfig | None = None, durable: bool = True) -> None:
        steps = tuple(steps)
        check_steps(steps)
        self.sim, self.steps, self.name = sim, steps, name
        self.config = config or SagaConfig()
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=durable, name="orders")
        self.pivot = next((i for i, s in enumerate(steps) if s.kind == "pivot"), -1)
        self.records: dict[Any, SagaRecord] = {}
        self.on_finish: list = []  # ``fn(saga_id, status)`` after a saga ends (e.g. release a semantic lock)
        self._u = sim.uniforms(f"saga.{name}.jitter")
        self.node.on(PLACE, self._on_place)
        self.node.on_recover(self._resume_all)

    @property
    def log(self) -> dict:
        """The orchestrator's durable saga log, saga id -> record; it survives crashes and drives
        recovery.
        """
        return self.node.durable.setdefault("saga.log", {})

    # -- starting ---------------------------------------------------------------------------------
    def _on_place(self, msg: Message) -> Any:
        order = msg.payload
        self.start(order)
        return ("accepted", order.id)

    def start(self, order: Any) -> None:
        """Accept ``order`` (idempotent by ``order.id``) and start its saga."""
        sid = order.id
        if sid in self.log:
            return
        now = self.sim.now
        self.store.run(("place", sid), lambda t: t.write(("order", sid), "PENDING"))
        # the same local transaction logs the saga (both live in this node's durable store)
        self.log[sid] = {"order": order, "phase": "forward", "step": 0, "done": [], "maybe": set(),
                         "deadline": now + self.config.saga_timeout_s, "undo": []}
        self.records[sid] = SagaRecord(order, now)
        self._forward(sid, 1, 0.0)

    def _resume_all(self) -> None:
        for sid, e in self.log.items():
            if e["phase"] == "forward":
                if e["step"] < len(self.steps):
                    e["maybe"].add(e["step"])  # it was in flight: it may have run
                self._forward(sid, 1, 0.0)
            elif e["phase"] == "compensate":
                self._compensate(sid, 1)

    # -- forward ------------------------------------------------------------------------------------
    def _forward(self, sid: Any, attempt: int, prev: float) -> None:
        e, node, cfg = self.log[sid], self.node, self.config
        i = e["step"]
        if i >= len(self.steps):
            self._finish(sid, "APPROVED")
            return
        step = self.steps[i]
        rec = self.records[sid]

        def done(outcome: str, value: Any) -> None:
            if outcome == "ok":
                e["done"].append(i)
                e["step"] = i + 1
                self._forward(sid, 1, 0.0)
                return
            business = outcome == "error" and isinstance(value, tuple) and value[0] == "business"
            if outcome == "timeout":
                e["maybe"].add(i)
            pivot_done = 0 <= self.pivot < i
            if step.kind == "retriable" or pivot_done or (step.kind == "pivot" and i in e["maybe"] and not business):
                node.after(self._capped(attempt), lambda: self._forward(sid, attempt + 1, 0.0))
                return
            if business:
                e["maybe"].discard(i)  # a definite refusal: the step did not run (a run would be deduplicated)
                self._fail(sid, i)
                return
            pol = cfg.step_retry
            if attempt < pol.max_attempts and self.sim.now < e["deadline"]:
                sleep = pol.delay(attempt, prev, self._u)
                node.after(sleep, lambda: self._forward(sid, attempt + 1, sleep))
            else:
                self._fail(sid, i)

        rec.step_calls += 1
        node.call(step.service, SAGA_DO, (sid, step.key, e["order"]), cfg.step_timeout_s, done)

    def _capped(self, attempt: int) -> float:
        c = self.config
        return self._u() * min(c.comp_cap_s, c.comp_base_s * 2.0 ** (attempt - 1))

    def _fail(self, sid: Any, i: int) -> None:
        e = self.log[sid]
        undo = [j for j in e["done"] if self.steps[j].kind == "compensatable"]
        if i in e["maybe"] and self.steps[i].kind == "compensatable":
            undo.append(i)
        e["phase"], e["undo"] = "compensate", sorted(undo, reverse=True)
        self.records[sid].failed_step = i + 1
        self._compensate(sid, 1)

    # -- backward -----------------------------------------------------------------------------------
    def _compensate(self, sid: Any, attempt: int) -> None:
        e = self.log[sid]
        if not e["undo"]:
            self._finish(sid, "REJECTED")
            return
        j = e["undo"][0]
        step = self.steps[j]

        def done(outcome: str, value: Any) -> None:
            if outcome == "ok":
                e["undo"].pop(0)
                self.records[sid].compensations += 1
                self._compensate(sid, 1)
            else:
                self.node.after(self._capped(attempt), lambda: self._compensate(sid, attempt + 1))

        self.node.call(step.service, SAGA_UNDO, (sid, step.key, e["order"]), self.config.step_timeout_s, done)

    def _finish(self, sid: Any, status: str) -> None:
        e = self.log[sid]
        self.store.run(("finish", sid), lambda t: t.write(("order", sid), status))
        e["phase"] = "done"
        rec = self.records[sid]
        rec.status, rec.finished = status, self.sim.now
        for fn in self.on_finish:
            fn(sid, status)

    def order_status(self, order_id: Any) -> str | None:
        """The order service's status of ``order_id``, or None if unknown."""
        return self.store.get(("order", order_id))

