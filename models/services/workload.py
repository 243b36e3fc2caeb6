"""Workloads: open-loop Poisson clients (constant or time-varying rate) and closed-loop users
with think time, recorded in ``sim.metrics``.

Callback driven: an arrival, an attempt, a backoff wait are scheduled callbacks, never a
SimPy process per request, so a client can issue millions of requests cheaply. A
time-varying rate is sampled by thinning (Lewis & Shedler 1979): candidate arrivals at the
rate's maximum, each kept with probability rate(t) / max.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.resilience.pipeline import Caller
from models.resilience.retry import RetryPolicy
from simulator import Distribution, Exponential, Simulation
from simulator.distributions import as_distribution


class RateFn:
    """A time-varying request rate: ``rate(t)`` per second, bounded by ``max_rate``."""

    max_rate: float

    def __call__(self, t: float) -> float:  # pragma: no cover
        raise NotImplementedError

    def integral(self, t0: float, t1: float, steps: int = 20_000) -> float:
        """Expected arrivals in [t0, t1] (trapezoid rule unless overridden)."""
        h = (t1 - t0) / steps
        return h * (sum(self(t0 + i * h) for i in range(1, steps)) + (self(t0) + self(t1)) / 2)


def _rate_ok(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a rate >= 0 requests/s, got {v!r}")


@dataclass(frozen=True)
class Steps(RateFn):
    """Piecewise-constant: ``levels = ((t0, r0), (t1, r1), ...)`` — rate r_i from t_i on."""

    levels: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.levels or self.levels[0][0] != 0:
            raise ValueError("levels must start at t = 0, e.g. ((0, 100), (10, 300))")
        ts = [t for t, _ in self.levels]
        if ts != sorted(ts):
            raise ValueError("levels must be in increasing time order")
        for _, r in self.levels:
            _rate_ok("levels rate", r)

    @property
    def max_rate(self) -> float:
        """The highest level's rate, requests per second (the bound thinning needs)."""
        return max(r for _, r in self.levels)

    def __call__(self, t: float) -> float:
        rate = self.levels[0][1]
        for t0, r in self.levels:
            if t >= t0:
                rate = r
        return rate


@dataclass(frozen=True)
class Spike(RateFn):
    """``base`` requests/s, ``peak`` during [at, at + duration)."""

    base: float
    peak: float
    at: float
    duration: float

    def __post_init__(self) -> None:
        _rate_ok("base", self.base)
        _rate_ok("peak", self.peak)
        if self.at < 0 or self.duration <= 0:
            raise ValueError("at must be >= 0 and duration > 0 seconds")

    @property
    def max_rate(self) -> float:
        """The larger of base and peak, requests per second."""
        return max(self.base, self.peak)

    def __call__(self, t: float) -> float:
        return self.peak if self.at <= t < self.at + self.duration else self.base


@dataclass(frozen=True)
class Diurnal(RateFn):
    """``mean + amplitude * sin(2 pi (t - phase) / period)``: a day compressed into ``period_s``."""

    mean: float
    amplitude: float
    period_s: float
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        _rate_ok("mean", self.mean)
        if not 0 <= self.amplitude <= self.mean:
            raise ValueError(f"amplitude must be in [0, mean={self.mean}] (rates are >= 0), got {self.amplitude}")
        if self.period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")

    @property
    def max_rate(self) -> float:
        """``mean + amplitude``, requests per second: the sine's crest."""
        return self.mean + self.amplitude

    def __call__(self, t: float) -> float:
        return self.mean + self.amplitude * math.sin(2 * math.pi * (t - self.phase_s) / self.period_s)


class PoissonClient:
    """Issues ``op`` requests as a Poisson process of ``rate`` per second (a number, or a
    :class:`RateFn` for a time-varying rate), each to a target
    chosen uniformly at random from ``targets``, with a per-attempt ``timeout_s`` and a
    ``retry`` policy — or through a ``caller`` (a resilience ``Pipeline``) that owns timeouts
    and retries. Stops issuing after ``limit`` requests or at ``stop_at`` seconds."""

    def __init__(
        self,
        sim: Simulation,
        name: str,
        targets: Sequence[str],
        *,
        rate: float | RateFn,
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
        self._rate_fn = rate if isinstance(rate, RateFn) else None
        peak = rate.max_rate if isinstance(rate, RateFn) else rate
        if not (isinstance(peak, (int, float)) and math.isfinite(peak) and peak > 0):
            raise ValueError(f"rate must be a number of requests per second > 0 (or a RateFn), got {rate!r}")
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
        self._gap = sim.sampler(Exponential(1.0 / peak), f"client.{name}.arrivals")
        self._thin = sim.uniforms(f"client.{name}.thinning") if self._rate_fn is not None else None
        self._pick = sim.uniforms(f"client.{name}.targets")
        self._u = sim.uniforms(f"client.{name}.jitter")
        self._log = sim.metrics
        sim.at(start_at + self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if self.issued >= self.limit or sim.now >= self.stop_at:
            return
        fn = self._rate_fn
        if fn is not None and self._thin() * fn.max_rate >= fn(sim.now):
            sim.at(self._gap(), self._arrive)  # a thinned-out candidate arrival
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
        log.end(rid, self.sim.now, outcome, 1 + int(log.get(rid, "retries", 0)))


class ClosedLoopUsers:
    """``users`` users, each sending one request, waiting for its outcome, thinking for a
    ``think`` time, and repeating — so the load adapts to the response time (interactive
    response time law: throughput X = N / (R + Z))."""

    def __init__(self, sim: Simulation, name: str, targets: Sequence[str], *, users: int,
                 think: Distribution | float, op: str = "get", timeout_s: float = 1.0,
                 caller: Caller | None = None, stop_at: float = math.inf) -> None:
        if not (isinstance(users, int) and users >= 1):
            raise ValueError(f"users must be an integer >= 1, got {users!r}")
        if not targets:
            raise ValueError("targets must name at least one node")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.sim, self.name, self.targets, self.op = sim, name, list(targets), op
        self.node = sim.nodes.get(name) or sim.node(name)
        self.timeout_s, self.caller, self.stop_at = timeout_s, caller, stop_at
        self._think = sim.sampler(as_distribution(think, "think"), f"users.{name}.think")
        self._pick = sim.uniforms(f"users.{name}.targets")
        self._log = sim.metrics
        self.issued = 0
        for _ in range(users):
            sim.at(self._think(), self._issue)

    def _issue(self) -> None:
        sim = self.sim
        if sim.now >= self.stop_at:
            return
        self.issued += 1
        target = self.targets[int(self._pick() * len(self.targets))]
        rid = self._log.begin(self.name, target, self.op, sim.now)

        def done(outcome: str, value) -> None:
            self._log.end(rid, sim.now, outcome, 1 + int(self._log.get(rid, "retries", 0)))
            sim.at(self._think(), self._issue)

        if self.caller is None:
            self.node.call(target, self.op, None, self.timeout_s, done)
        else:
            self.caller.call(self.node, target, self.op, None, done, rid=rid)
