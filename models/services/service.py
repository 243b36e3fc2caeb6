"""Microservices: instances with bounded worker pools that do local work and call dependencies.

Thread-per-request model: a request holds a worker from the moment it starts until its reply
is sent — through its local work *and* its dependency calls. That is what lets one slow
dependency exhaust a pool (and what bulkheads and timeouts are for). Each endpoint names the
worker pool it runs in: one shared pool, or one pool per endpoint — the thread-pool bulkhead
of Hystrix ("separate worker pools per dependency").

Dependencies are called through a ``Caller`` (a resilience ``Pipeline`` or ``BareCaller``)
after a client-side load balancer picks the instance. A request payload that is a dict with a
``deadline`` (absolute true time) is propagated: the service refuses work whose deadline has
passed and passes the deadline on to its own calls.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.resilience.pipeline import BareCaller, Caller
from simulator import NO_REPLY, Distribution, Message, Node, Simulation
from simulator.distributions import as_distribution

from .balancers import make_balancer

if TYPE_CHECKING:
    import pandas as pd

    from models.resilience.limits import LoadShedder

    from .balancers import Balancer

_DIRECTORY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Call:
    """A dependency call: ``op`` on service ``service``."""

    service: str
    op: str = "get"


@dataclass(frozen=True)
class Endpoint:
    """``work``: local service time; ``calls``: dependencies, serially or in parallel
    (``fan_out``: wait for all); ``pool``: the worker pool it runs in."""

    work: Distribution | float = 0.0
    calls: tuple[Call, ...] = ()
    fan_out: bool = False
    pool: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "work", as_distribution(self.work, "Endpoint.work"))
        object.__setattr__(self, "calls", tuple(c if isinstance(c, Call) else Call(c) for c in self.calls))


@dataclass
class _Pool:
    workers: int
    queue_limit: int | None
    busy: int = 0
    queue: deque = field(default_factory=deque)  # (msg, arrival time)
    served: int = 0
    rejected: int = 0


class Service:
    """``instances`` nodes named ``{name}-{i}``, each with its own worker pools."""

    def __init__(self, sim: Simulation, name: str, *, endpoints: dict[str, Endpoint],
                 instances: int = 1, pools: dict[str, int] | None = None, queue_limit: int | None = None,
                 balancer: str = "round_robin", caller: Caller | None = None, shedder: LoadShedder | None = None,
                 slow_factor: float = 1.0) -> None:
        if not (isinstance(instances, int) and instances >= 1):
            raise ValueError(f"instances must be an integer >= 1, got {instances!r}")
        pools = dict(pools or {"default": 8})
        for p, w in pools.items():
            if not (isinstance(w, int) and w >= 1):
                raise ValueError(f"pools[{p!r}] must be an integer >= 1 workers, got {w!r}")
        if queue_limit is not None and not (isinstance(queue_limit, int) and queue_limit >= 0):
            raise ValueError(f"queue_limit must be an integer >= 0 or None, got {queue_limit!r}")
        if not endpoints:
            raise ValueError("endpoints must define at least one endpoint")
        for op, ep in endpoints.items():
            if ep.pool not in pools:
                raise ValueError(f"endpoint {op!r} runs in pool {ep.pool!r}, not one of {sorted(pools)}")
        directory = _DIRECTORY.setdefault(sim, {})
        if name in directory:
            raise ValueError(f"service name {name!r} is already used")
        directory[name] = self
        self.sim, self.name, self.endpoints = sim, name, dict(endpoints)
        self.balancer_kind = balancer
        self.caller = caller or BareCaller()
        self.shedder = shedder
        self.nodes: list[Node] = [sim.node(f"{name}-{i}") for i in range(instances)]
        self._pools: dict[str, dict[str, _Pool]] = {}
        self._work = {op: sim.sampler(ep.work, f"service.{name}.{op}.work") for op, ep in endpoints.items()}
        self._balancers: dict[tuple[str, str], Balancer] = {}
        self._u = sim.uniforms(f"service.{name}.balance")
        for node in self.nodes:
            self._pools[node.name] = {p: _Pool(w, queue_limit) for p, w in pools.items()}
            for op in endpoints:
                node.on(op, lambda msg, node=node: self._arrive(node, msg))
            node.on_crash(lambda node=node: self._reset(node))
            if slow_factor != 1.0:
                node.slow_down(slow_factor)

    @property
    def instances(self) -> list[str]:
        """The names of this service's instance nodes, ``{name}-{i}``."""
        return [n.name for n in self.nodes]

    @staticmethod
    def lookup(sim: Simulation, name: str) -> Service:
        """The service called ``name`` in ``sim``; ValueError listing the known ones if there is
        none.
        """
        svc = _DIRECTORY.get(sim, {}).get(name)
        if svc is None:
            raise ValueError(f"unknown service {name!r}; known: {sorted(_DIRECTORY.get(sim, {}))}")
        return svc

    def balancer(self, caller_node: str, dep: str) -> Balancer:
        """The caller instance's balancer over ``dep``'s instances (client-side LB)."""
        key = (caller_node, dep)
        b = self._balancers.get(key)
        if b is None:
            b = self._balancers[key] = make_balancer(self.balancer_kind, Service.lookup(self.sim, dep).instances,
                                                     self._u)
        return b

    def pool_stats(self) -> pd.DataFrame:
        """One row per instance and worker pool: served, rejected, busy workers, queued requests.
        """
        import pandas as pd

        rows = [{"instance": n, "pool": p, "served": x.served, "rejected": x.rejected, "busy": x.busy,
                 "queued": len(x.queue)} for n, ps in self._pools.items() for p, x in ps.items()]
        return pd.DataFrame(rows)

    # -- request path ------------------------------------------------------------------------------
    def _reset(self, node: Node) -> None:
        for p in self._pools[node.name].values():
            p.busy = 0
            p.queue.clear()

    def _arrive(self, node: Node, msg: Message):
        pool = self._pools[node.name][self.endpoints[msg.op].pool]
        if pool.busy < pool.workers:
            pool.busy += 1
            self._start(node, pool, msg)
        else:
            now = self.sim.now
            full = pool.queue_limit is not None and len(pool.queue) >= pool.queue_limit
            shed = self.shedder is not None and not self.shedder.admit(
                now, len(pool.queue), now - pool.queue[0][1] if pool.queue else 0.0)
            if full or shed:
                pool.rejected += 1
                node.reply(msg, "overloaded", "rejected")
            else:
                pool.queue.append((msg, now))
        return NO_REPLY

    def _start(self, node: Node, pool: _Pool, msg: Message) -> None:
        node.resume(msg)  # picked up from the pool's queue: the work belongs to this request's trace
        deadline = msg.payload.get("deadline") if isinstance(msg.payload, dict) else None
        if deadline is not None and self.sim.now >= deadline:
            self._finish(node, pool, msg, "error", "deadline exceeded")
            return
        ep = self.endpoints[msg.op]
        node.after(self._work[msg.op]() * node.slow_factor, lambda: self._calls(node, pool, msg, ep, deadline))

    def _calls(self, node: Node, pool: _Pool, msg: Message, ep: Endpoint, deadline) -> None:
        calls = ep.calls
        if not calls:
            self._finish(node, pool, msg, "ok", None)
            return
        payload = None if deadline is None else {"deadline": deadline}

        def one(call: Call, then) -> None:
            b = self.balancer(node.name, call.service)
            inst = b.choose()

            def back(outcome, value):
                b.done(inst)
                then(outcome)

            self.caller.call(node, inst, call.op, payload, back, deadline=deadline)

        if ep.fan_out:
            left = [len(calls)]
            failed = []

            def joined(outcome):
                left[0] -= 1
                if outcome not in ("ok", "fallback"):
                    failed.append(outcome)
                if left[0] == 0:
                    self._finish(node, pool, msg, "error" if failed else "ok",
                                 f"dependency {failed[0]}" if failed else None)

            for c in calls:
                one(c, joined)
            return

        def step(i: int):
            def then(outcome):
                if outcome not in ("ok", "fallback"):
                    self._finish(node, pool, msg, "error", f"dependency {outcome}")
                elif i + 1 < len(calls):
                    step(i + 1)
                else:
                    self._finish(node, pool, msg, "ok", None)
            one(calls[i], then)

        step(0)

    def _finish(self, node: Node, pool: _Pool, msg: Message, outcome: str, value) -> None:
        if not node.up:
            return
        pool.served += outcome == "ok"
        node.reply(msg, value, outcome)
        if pool.queue:
            nxt, _ = pool.queue.popleft()
            self._start(node, pool, nxt)
        else:
            pool.busy -= 1


def fan_out_theory(p_slow_leaf: float, n: int) -> float:
    """P(a fan-out of n leaves, waiting for all, is slow) = 1 - (1 - p)^n."""
    if not (0 <= p_slow_leaf <= 1) or n < 1:
        raise ValueError("need 0 <= p_slow_leaf <= 1 and n >= 1")
    return 1 - (1 - p_slow_leaf) ** n

