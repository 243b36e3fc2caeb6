"""Open-loop Poisson clients with timeouts and retries, recorded in ``sim.metrics``.

Callback driven: an arrival, an attempt, a backoff wait are scheduled callbacks, never a
SimPy process per request, so a client can issue millions of requests cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.resilience.pipeline import Caller
from models.resilience.retry import RetryPolicy
from simulator import Exponential, Simulation


class PoissonClient:
    """Issues ``op`` requests as a Poisson process of ``rate`` per second, each to a target
    chosen uniformly at random from ``targets``, with a per-attempt ``timeout_s`` and a
    ``retry`` policy — or through a ``caller`` (a resilience ``Pipeline``) that owns timeouts
    and retries. Stops issuing after ``limit`` requests or at ``stop_at`` seconds."""

    def __init__(
        self,
        sim: Simulation,
        name: str,
        targets: Sequence[str],
        *,
        rate: float,
        op: str = "get",
        timeout_s: float = 1.0,
        retry: RetryPolicy | None = None,
        limit: int | None = None,
        stop_at: float = math.inf,
        start_at: float = 0.0,
        caller: Caller | None = None,
    ) -> None:
        if caller is not None and retry is not None:
            raise ValueError("give either retry= or caller= (a Pipeline has its own retry policy), not both")
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of requests per second > 0, got {rate!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds (math.inf for none), got {timeout_s!r}")
        if not targets:
            raise ValueError("targets must name at least one node")
        if limit is not None and not (isinstance(limit, int) and limit >= 0):
            raise ValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        self.sim = sim
        self.node = sim.nodes.get(name) or sim.node(name)
        self.name = name
        self.targets = list(targets)
        self.op = op
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.limit = math.inf if limit is None else limit
        self.stop_at = stop_at
        self.caller = caller
        self.issued = 0
        self._gap = sim.sampler(Exponential(1.0 / rate), f"client.{name}.arrivals")
        self._pick = sim.uniforms(f"client.{name}.targets")
        self._u = sim.uniforms(f"client.{name}.jitter")
        self._log = sim.metrics
        sim.at(start_at + self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if self.issued >= self.limit or sim.now >= self.stop_at:
            return
        self.issued += 1
        target = self.targets[int(self._pick() * len(self.targets))]
        rid = self._log.begin(self.name, target, self.op, sim.now)
        if self.caller is None:
            self._attempt(rid, target, 1, 0.0)
        else:
            self.caller.call(self.node, target, self.op, None, lambda o, v: self._done(rid, o), rid=rid)
        sim.at(self._gap(), self._arrive)

    def _attempt(self, rid: int, target: str, attempt: int, prev_sleep: float) -> None:
        def done(outcome: str, value) -> None:
            pol = self.retry
            if outcome != "ok" and attempt < pol.max_attempts and outcome in pol.retry_on:
                sleep = pol.delay(attempt, prev_sleep, self._u)
                nxt = self.targets[int(self._pick() * len(self.targets))]
                self.sim.at(sleep, lambda: self._attempt(rid, nxt, attempt + 1, sleep))
            else:
                self._log.end(rid, self.sim.now, outcome, attempt)

        self.node.call(target, self.op, None, self.timeout_s, done)

    def _done(self, rid: int, outcome: str) -> None:
        log = self._log
        log.end(rid, self.sim.now, outcome, 1 + int(log.get(rid, "retries")))
