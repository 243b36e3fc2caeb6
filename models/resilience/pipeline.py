"""Composing resilience patterns around an RPC: the ``Caller`` protocol and ``Pipeline``.

Order, outermost first (as resilience4j's Decorators recommend):

    fallback ⟶ retry (+ budget) ⟶ circuit breaker ⟶ rate limiter ⟶ bulkhead ⟶ hedge ⟶ timeout ⟶ call

Why: the fallback sees the final verdict after every retry; each retry attempt passes the
breaker (so a retry into an open breaker is short-circuited cheaply, and the breaker counts
attempts, not requests); the bulkhead bounds concurrent *attempts* and is released as soon as
one ends; hedging sends its copies inside one bulkhead permit; the timeout bounds each attempt
and never outlives the request's deadline, which is propagated to the callee in the payload's
envelope (see ``deadline``).

Outcomes beyond the RPC ones: ``short_circuited`` (breaker open), ``rejected`` (bulkhead
full, rate limited), ``fallback`` (a fallback answered). Decisions are recorded per request
in metric columns when a ``rid`` is given: ``retries`` (attempts - 1), ``short_circuited``,
``bulkhead_rejected``, ``rate_limited``, ``budget_denied``, ``hedged``, ``fallback``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from simulator import Node, Simulation

from .breaker import CircuitBreaker, CircuitBreakerConfig
from .limits import Bulkhead, BulkheadConfig, RetryBudget, RetryBudgetConfig, TokenBucket, TokenBucketConfig
from .retry import RetryPolicy

if TYPE_CHECKING:
    import pandas as pd

Callback = Callable[[str, Any], None]
COLUMNS = ("retries", "short_circuited", "bulkhead_rejected", "rate_limited", "budget_denied", "hedged",
           "fallback")


class Caller(Protocol):
    """Anything that makes an RPC from ``node`` to ``dst`` and reports its outcome once: a bare
    ``node.call``, a ``Pipeline`` of resilience patterns, a sidecar.
    """
    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Call ``op`` with ``payload`` on ``dst`` and call ``callback(outcome, value)`` exactly
        once; ``rid`` names the request's metric row, ``deadline`` (absolute simulated seconds)
        bounds every attempt.
        """
        ...


@dataclass(frozen=True)
class TimeoutConfig:
    """request_s: per attempt; total_s: the whole request incl. retries (a deadline, also
    propagated downstream); connect_s: the connection handshake, when no connection is open."""

    request_s: float = math.inf
    total_s: float = math.inf
    connect_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("request_s", "total_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds (math.inf for none), got {v!r}")
        if self.connect_s is not None and not (math.isfinite(self.connect_s) and self.connect_s > 0):
            raise ValueError(f"connect_s must be > 0 seconds or None, got {self.connect_s!r}")


@dataclass(frozen=True)
class HedgeConfig:
    """Send one more copy after ``delay_s`` if no reply yet (Dean & Barroso, "The Tail at
    Scale", 2013); the first ``ok`` wins and the others are cancelled (ignored)."""

    delay_s: float
    max_copies: int = 2

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise ValueError(f"delay_s must be >= 0 seconds, got {self.delay_s!r}")
        if not (isinstance(self.max_copies, int) and self.max_copies >= 2):
            raise ValueError(f"max_copies must be an integer >= 2, got {self.max_copies!r}")


@dataclass(frozen=True)
class FallbackConfig:
    """Answer ``value`` (a cached or default response) when the call finally fails."""

    value: Any = None
    on: frozenset[str] = frozenset({"error", "timeout", "unreachable", "crashed", "rejected", "short_circuited"})


class BareCaller:
    """``node.call`` with an optional per-call timeout: the baseline."""

    def __init__(self, timeout_s: float = math.inf) -> None:
        self.timeout_s = timeout_s

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """``node.call`` bounded by ``timeout_s`` and the ``deadline`` (absolute seconds); an
        expired deadline answers ``timeout`` without sending. ``rid`` is not used.
        """
        t = self.timeout_s
        if deadline is not None:
            t = min(t, deadline - node.env.now)
            if t <= 0:
                callback("timeout", None)
                return
        node.call(dst, op, payload, t, callback)


class Pipeline:
    """Resilience patterns around ``node.call``, in the documented order. One breaker,
    bulkhead and budget per destination (``per_dependency``) or shared."""

    def __init__(self, sim: Simulation, *, timeout: TimeoutConfig | None = None, retry: RetryPolicy | None = None,
                 retry_budget: RetryBudgetConfig | None = None, breaker: CircuitBreakerConfig | None = None,
                 rate_limit: TokenBucketConfig | None = None, bulkhead: BulkheadConfig | None = None,
                 hedge: HedgeConfig | None = None, fallback: FallbackConfig | None = None,
                 name: str = "pipeline") -> None:
        self.sim = sim
        self.name = name
        self.timeout = timeout or TimeoutConfig()
        self.retry = retry or RetryPolicy()
        self.budget_cfg, self.breaker_cfg, self.bulkhead_cfg = retry_budget, breaker, bulkhead
        self.rate_cfg, self.hedge, self.fallback = rate_limit, hedge, fallback
        self.breakers: dict[str, CircuitBreaker] = {}
        self.bulkheads: dict[str, Bulkhead] = {}
        self.budgets: dict[str, RetryBudget] = {}
        self.limiters: dict[str, TokenBucket] = {}
        self._connected: set[tuple[str, str]] = set()
        self._u = sim.uniforms(f"pipeline.{name}.jitter")
        self._log = sim.metrics
        for col in COLUMNS:
            self._log.column(col, "h", 0)

    # -- per-dependency state --------------------------------------------------------------------
    def breaker(self, dst: str) -> CircuitBreaker | None:
        """The circuit breaker guarding calls to ``dst`` (made on first use), or None without a
        breaker config.
        """
        if self.breaker_cfg is None:
            return None
        b = self.breakers.get(dst)
        if b is None:
            b = self.breakers[dst] = CircuitBreaker(self.breaker_cfg, name=f"{self.name}->{dst}",
                                                    schedule=self.sim.at)
        return b

    def _get(self, store: dict, cfg, dst: str, make):
        if cfg is None:
            return None
        key = dst if getattr(cfg, "per_dependency", True) else "*"
        obj = store.get(key)
        if obj is None:
            obj = store[key] = make()
        return obj

    def breaker_transitions(self) -> pd.DataFrame:
        """Every breaker's transitions in one DataFrame: time (s), from_state, to_state, breaker.
        """
        import pandas as pd

        frames = [b.transitions_frame() for b in self.breakers.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["time", "from_state", "to_state", "breaker"])

    # -- the call ----------------------------------------------------------------------------------
    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Call ``op`` on ``dst`` through the patterns, outermost first: fallback, retry (+
        budget), breaker, rate limiter, bulkhead, hedge, timeout; ``callback(outcome, value)``
        gets the final verdict once. A total timeout becomes a ``deadline`` (absolute seconds),
        propagated in a dict payload.
        """
        now = self.sim.now
        if self.timeout.total_s != math.inf:
            d = now + self.timeout.total_s
            deadline = d if deadline is None else min(deadline, d)
        if deadline is not None and (payload is None or isinstance(payload, dict)):
            payload = {**(payload or {}), "deadline": deadline}  # propagated to the callee
        budget = self._get(self.budgets, self.budget_cfg, dst, lambda: RetryBudget(self.budget_cfg))
        sp = node._spans
        if sp is None:
            self._attempt(node, dst, op, payload, callback, rid, deadline, budget, 1, 0.0)
            return
        # Traced: this call is a logical span; its attempts are its children, its decisions its events.
        s = sp.open(now, "internal", node.name, dst, op, request=-1 if rid is None else rid)
        if rid is not None and sp.parent[s] < 0:
            self._log.trace_id[rid] = sp.trace[s]

        def closing(outcome: str, value: Any, _cb=callback) -> None:
            sp.close(s, self.sim.now, outcome)
            _cb(outcome, value)

        prev, sp.current = sp.current, s
        try:
            self._attempt(node, dst, op, payload, closing, rid, deadline, budget, 1, 0.0)
        finally:
            sp.current = prev

    def _mark(self, rid, col, value=1) -> None:
        if rid is not None:
            self._log.set(rid, col, value)

    def _attempt(self, node, dst, op, payload, callback, rid, deadline, budget, attempt, prev_sleep) -> None:
        sim = self.sim
        sp = node._spans

        def done(outcome: str, value: Any) -> None:
            if budget is not None:
                budget.on_success() if outcome == "ok" else budget.on_failure()
            pol = self.retry
            if outcome != "ok" and attempt < pol.max_attempts and outcome in pol.retry_on:
                sleep = pol.delay(attempt, prev_sleep, self._u)
                late = deadline is not None and sim.now + sleep >= deadline
                if not late and (budget is None or budget.allow_retry()):
                    self._mark(rid, "retries", attempt)
                    if sp is not None:
                        sp.event(sp.current, sim.now, "retry scheduled",
                                 f"attempt {attempt + 1} after {outcome}, backoff {sleep * 1e3:.1f} ms")
                    node.after(sleep, lambda: self._attempt(node, dst, op, payload, callback, rid, deadline,
                                                            budget, attempt + 1, sleep))
                    return
                if not late:
                    self._mark(rid, "budget_denied")
                if sp is not None:
                    sp.event(sp.current, sim.now, "deadline exceeded" if late else "retry budget denied",
                             f"no attempt {attempt + 1} after {outcome}")
            self._finish(outcome, value, callback, rid, sp)

        br = self.breaker(dst)
        if br is not None and not br.try_acquire(sim.now):
            self._mark(rid, "short_circuited")
            if sp is not None:
                sp.event(sp.current, sim.now, "short circuited", f"breaker {br.name} {br.state}")
            done("short_circuited", None)
            return
        limiter = self._get(self.limiters, self.rate_cfg, dst, lambda: TokenBucket(self.rate_cfg, sim.now))
        if limiter is not None and not limiter.take(sim.now):
            self._mark(rid, "rate_limited")
            if sp is not None:
                sp.event(sp.current, sim.now, "rate limited", f"attempt {attempt} to {dst}")
            self._release_breaker(br)
            done("rejected", "rate limited")
            return
        bh = self._get(self.bulkheads, self.bulkhead_cfg, dst, lambda: Bulkhead(self.bulkhead_cfg, sim.at))
        started = sim.now

        def finished(outcome: str, value: Any) -> None:
            if bh is not None:
                bh.release()
            if br is not None:
                before = br.state
                br.on_result(sim.now, outcome, sim.now - started)
                if sp is not None and br.state != before:
                    sp.event(sp.current, sim.now, "breaker transition", f"{br.name}: {before} -> {br.state}")
            done(outcome, value)

        def granted() -> None:
            if sp is not None:
                sp.next_attempt = attempt
            self._send(node, dst, op, payload, finished, rid, deadline)

        def refused() -> None:
            self._mark(rid, "bulkhead_rejected")
            if sp is not None:
                sp.event(sp.current, sim.now, "bulkhead rejected", f"attempt {attempt} to {dst}")
            if br is not None:
                br.on_result(sim.now, "rejected", 0.0)
            done("rejected", "bulkhead full")

        if bh is None:
            granted()
        elif sp is None:
            bh.acquire(granted, refused)
        else:  # a permit may come later, from another request's release: keep this request's context
            bh.acquire(sp.bind(granted), sp.bind(refused))

    @staticmethod
    def _release_breaker(br: CircuitBreaker | None) -> None:
        # A half-open trial permit that never reached the network is handed back.
        if br is not None and br.state == "half_open":
            br._half_permits += 1

    def _finish(self, outcome: str, value: Any, callback: Callback, rid, sp=None) -> None:
        fb = self.fallback
        if outcome != "ok" and fb is not None and outcome in fb.on:
            self._mark(rid, "fallback")
            if sp is not None:
                sp.event(sp.current, self.sim.now, "fallback", f"answered instead of {outcome}")
            callback("fallback", fb.value)
        else:
            callback(outcome, value)

    # -- hedge + timeout + connection -----------------------------------------------------------------
    def _timeout_for(self, deadline) -> float:
        t = self.timeout.request_s
        if deadline is not None:
            t = min(t, deadline - self.sim.now)
        return t

    def _send(self, node, dst, op, payload, callback, rid, deadline) -> None:
        cs = self.timeout.connect_s
        if cs is not None and (node.name, dst) not in self._connected:
            def connected(outcome, value):
                if outcome == "ok":
                    self._connected.add((node.name, dst))
                    self._send(node, dst, op, payload, callback, rid, deadline)
                else:
                    callback("unreachable" if outcome == "timeout" else outcome, value)

            node.call(dst, "__connect__", None, min(cs, self._timeout_for(deadline)), connected)
            return
        t = self._timeout_for(deadline)
        sp = node._spans
        if t <= 0:
            if sp is not None:
                sp.event(sp.current, self.sim.now, "deadline exceeded", "no time left for the attempt")
            callback("timeout", None)
            return
        cb = self._closing(node, dst, callback)
        h = self.hedge
        if h is None:
            node.call(dst, op, payload, t, cb)
            return
        attempt = sp.next_attempt if sp is not None else 1
        # Hedging: copies at 0, d, 2d, ... (up to max_copies) while no reply; all copies share the
        # attempt's timeout. The first ok wins; the rest are cancelled (their replies ignored).
        # If every copy sent so far has failed, the attempt fails (retries handle failures).
        end = self.sim.now + t
        st = {"done": False, "outstanding": 0, "copies": 0}

        def copy_done(outcome, value):
            if st["done"]:
                return
            st["outstanding"] -= 1
            if outcome == "ok" or st["outstanding"] == 0:
                st["done"] = True
                cb(outcome, value)

        def send_copy():
            if st["done"] or self.sim.now >= end:
                return
            st["copies"] += 1
            st["outstanding"] += 1
            if st["copies"] > 1:
                self._mark(rid, "hedged", st["copies"] - 1)
            if sp is not None:
                sp.next_attempt, sp.next_hedge = attempt, st["copies"] > 1
            node.call(dst, op, payload, end - self.sim.now, copy_done)
            if st["copies"] < h.max_copies:
                node.after(h.delay_s, send_copy)

        send_copy()

    def _closing(self, node, dst, callback):
        if self.timeout.connect_s is None:
            return callback
        key = (node.name, dst)

        def cb(outcome, value):
            if outcome not in ("ok", "error", "rejected"):
                self._connected.discard(key)  # a broken connection is re-established next time
            callback(outcome, value)

        return cb
