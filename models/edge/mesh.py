"""The service mesh's data plane and control loop: a sidecar's retry policy with Envoy's retry budget and
timeouts, application retries stacked on it, and a canary rollout with automated analysis.

Sources:

- Envoy, ``config.route.v3.RetryPolicy``: ``num_retries`` (default 1), ``per_try_timeout``, ``retry_on``
  (``5xx``, ``reset``, ``connect-failure``, ...), exponential back-off with a 25 ms ``base_interval`` and
  "fully jittered" waits; the route ``timeout`` (default 15 s) spans all retries.
- Envoy, ``config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget``: ``budget_percent`` (default 20%)
  "specifies the limit on concurrent retries as a percentage of the sum of active requests and active
  pending requests"; ``min_retry_concurrency`` (default 3): "the limit on the number of active retries may
  never go below this number". A retry over the limit is not sent (``upstream_rq_retry_overflow``). As in
  Envoy's resource manager, a retry holds its slot from the moment it is scheduled — through its back-off —
  until its try ends; here it also counts among the active requests meanwhile.
- Flagger, "Canary analysis" (``analysis.interval``, ``threshold``, ``stepWeights``, metric
  ``request-success-rate`` with ``thresholdRange``) and Argo Rollouts' canary ``steps`` with an
  ``AnalysisRun``: every interval the canary's metric is checked; ``threshold`` failed checks roll back
  (all traffic back to the stable version); passing checks advance the weight to the next step.

Simplifications, said: Envoy counts active requests per cluster and priority; here per sidecar. Pending
requests (waiting for a connection) are not modelled, so the budget's base is the active requests. A check
over an interval without canary requests passes (Flagger would halt: "no values found").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from models.resilience.pipeline import Caller
from models.resilience.retry import RetryPolicy
from simulator import Node, Simulation

Callback = Callable[[str, Any], None]
ENVOY_RETRY_ON = frozenset({"error", "timeout", "unreachable", "crashed", "rejected"})  # 5xx, reset, connect-failure


@dataclass(frozen=True)
class EnvoyRetryBudgetConfig:
    """Envoy's ``RetryBudget``: ``budget_percent`` (default 20) of active requests may be retries at once,
    never fewer than ``min_retry_concurrency`` (default 3)."""

    budget_percent: float = 20.0
    min_retry_concurrency: int = 3

    def __post_init__(self) -> None:
        if not (isinstance(self.budget_percent, (int, float)) and 0 <= self.budget_percent <= 100):
            raise ValueError(f"budget_percent must be in [0, 100], got {self.budget_percent!r}")
        if not (isinstance(self.min_retry_concurrency, int) and self.min_retry_concurrency >= 0):
            raise ValueError(f"min_retry_concurrency must be an integer >= 0, got {self.min_retry_concurrency!r}")


class EnvoyRetryBudget:
    """Counts the active requests and, among them, the active retries; ``allow_retry()`` is Envoy's check."""

    def __init__(self, config: EnvoyRetryBudgetConfig) -> None:
        self.config = config
        self.active = 0
        self.active_retries = 0
        self.overflow = 0

    def limit(self) -> float:
        """The current cap on concurrent retries: max(min_retry_concurrency, budget_percent x active)."""
        return max(self.config.min_retry_concurrency, self.config.budget_percent / 100 * self.active)

    def allow_retry(self) -> bool:
        """Whether one more retry may start now; a refusal counts in ``overflow``."""
        ok = self.active_retries < self.limit()
        self.overflow += not ok
        return ok


class MeshSidecar:
    """An Envoy-style sidecar as a ``Caller``: up to ``retry.max_attempts`` tries (``num_retries + 1``) of
    at most ``per_try_timeout_s`` each, all within ``route_timeout_s`` (Envoy's default 15 s) — and within
    the caller's ``deadline`` only if ``honour_deadline`` (the app sends its remaining time in a header,
    e.g. ``grpc-timeout`` or ``x-envoy-upstream-rq-timeout-ms``). ``attempts`` logs ``(time, rid, try)``
    of every try sent; ``rid`` is the payload's ``"rid"`` when the app passes one."""

    def __init__(self, sim: Simulation, *, retry: RetryPolicy | None = None, per_try_timeout_s: float = math.inf,
                 route_timeout_s: float = 15.0, budget: EnvoyRetryBudgetConfig | None = None,
                 honour_deadline: bool = False, name: str = "sidecar") -> None:
        for n, v in (("per_try_timeout_s", per_try_timeout_s), ("route_timeout_s", route_timeout_s)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{n} must be > 0 seconds (math.inf for none), got {v!r}")
        self.sim = sim
        self.retry = retry or RetryPolicy(max_attempts=2, base_s=0.025, cap_s=0.25, retry_on=ENVOY_RETRY_ON)
        self.per_try_timeout_s, self.route_timeout_s = per_try_timeout_s, route_timeout_s
        self.budget = EnvoyRetryBudget(budget) if budget is not None else None
        self.honour_deadline = honour_deadline
        self._u = sim.uniforms(f"mesh.{name}.jitter")
        self.attempts: list[tuple[float, int, int]] = []

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Route one request to ``dst`` with the sidecar's retries and timeouts; ``callback`` once."""
        end = self.sim.now + self.route_timeout_s
        if self.honour_deadline and deadline is not None:
            end = min(end, deadline)
        tag = payload.get("rid", -1) if isinstance(payload, dict) else -1
        self._try(node, dst, op, payload, callback, end, 1, 0.0, tag)

    def _try(self, node, dst, op, payload, callback, end, attempt, prev_sleep, tag) -> None:
        sim, b = self.sim, self.budget
        t = min(self.per_try_timeout_s, end - sim.now)
        if t <= 0:
            if b is not None and attempt > 1:
                b.active -= 1
                b.active_retries -= 1
            callback("timeout", "504 upstream request timeout")
            return
        retry = attempt > 1
        if b is not None and not retry:
            b.active += 1  # a retry's slot was taken when it was scheduled
        self.attempts.append((sim.now, tag, attempt))

        def done(outcome: str, value: Any) -> None:
            if b is not None:
                b.active -= 1
                b.active_retries -= retry
            pol = self.retry
            if outcome != "ok" and attempt < pol.max_attempts and outcome in pol.retry_on:
                sleep = pol.delay(attempt, prev_sleep, self._u)
                if sim.now + sleep < end and (b is None or b.allow_retry()):
                    if b is not None:  # the retry holds its slot from now, through its back-off
                        b.active += 1
                        b.active_retries += 1
                    node.after(sleep, lambda: self._try(node, dst, op, payload, callback, end, attempt + 1, sleep,
                                                        tag))
                    return
            callback(outcome, value)

        node.call(dst, op, payload, t, done)


class AppRetries:
    """The application's own retry loop around another ``Caller`` (its sidecar): up to
    ``policy.max_attempts`` calls, and a ``deadline_s`` after which the application stops waiting (it
    answers ``timeout`` and ignores whatever comes back later). Each call carries ``{"rid": rid}``."""

    def __init__(self, sim: Simulation, inner: Caller, policy: RetryPolicy, *, deadline_s: float = math.inf,
                 name: str = "app") -> None:
        if not (isinstance(deadline_s, (int, float)) and deadline_s > 0):
            raise ValueError(f"deadline_s must be > 0 seconds (math.inf for none), got {deadline_s!r}")
        self.sim, self.inner, self.policy, self.deadline_s = sim, inner, policy, deadline_s
        self._u = sim.uniforms(f"mesh.{name}.jitter")
        self.given_up: dict[int, float] = {}  # rid -> when the application stopped waiting
        sim.metrics.column("retries", "h", 0)

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Call ``dst`` through the inner caller with the application's retries and deadline."""
        sim = self.sim
        end = sim.now + self.deadline_s
        state = {"done": False}
        tag = -1 if rid is None else rid

        def finish(outcome: str, value: Any) -> None:
            if not state["done"]:
                state["done"] = True
                if rid is not None:
                    sim.metrics.set(rid, "retries", state.get("attempt", 1) - 1)
                callback(outcome, value)

        if self.deadline_s != math.inf:
            def expire() -> None:
                if not state["done"]:
                    self.given_up[tag] = sim.now
                    finish("timeout", "deadline exceeded")
            sim.at(self.deadline_s, expire)

        def attempt(k: int, prev: float) -> None:
            if state["done"]:
                return
            state["attempt"] = k

            def back(outcome: str, value: Any) -> None:
                pol = self.policy
                if outcome != "ok" and k < pol.max_attempts and outcome in pol.retry_on and not state["done"]:
                    sleep = pol.delay(k, prev, self._u)
                    node.after(sleep, lambda: attempt(k + 1, sleep))
                else:
                    finish(outcome, value)

            self.inner.call(node, dst, op, {"rid": tag}, back, rid=None, deadline=end)

        attempt(1, 0.0)


@dataclass(frozen=True)
class CanaryConfig:
    """Flagger-style analysis: the canary's weight walks ``steps`` (percent), one per ``interval_s``; each
    interval's canary error rate is checked against ``max_error_rate``; ``threshold`` failed checks roll
    back."""

    steps: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0)
    interval_s: float = 60.0
    max_error_rate: float = 0.01
    threshold: int = 1

    def __post_init__(self) -> None:
        if not self.steps or any(not (0 < s <= 100) for s in self.steps) or list(self.steps) != sorted(self.steps):
            raise ValueError(f"steps must be increasing percentages in (0, 100], got {self.steps!r}")
        if not (isinstance(self.interval_s, (int, float)) and self.interval_s > 0):
            raise ValueError(f"interval_s must be > 0 seconds, got {self.interval_s!r}")
        if not (0 <= self.max_error_rate < 1):
            raise ValueError(f"max_error_rate must be in [0, 1), got {self.max_error_rate!r}")
        if not (isinstance(self.threshold, int) and self.threshold >= 1):
            raise ValueError(f"threshold must be an integer >= 1, got {self.threshold!r}")
        object.__setattr__(self, "steps", tuple(float(s) for s in self.steps))


class CanaryRollout:
    """A traffic split between ``stable`` and ``canary`` (a ``Caller``: each request goes to the canary with
    probability weight / 100, drawn from a named stream) and the analysis loop that moves the weight.
    ``events`` lists ``(time, weight, "advance" | "rollback" | "promoted", canary requests, errors)``."""

    def __init__(self, sim: Simulation, stable: str, canary: str, config: CanaryConfig, *, start_at: float = 0.0,
                 name: str = "canary") -> None:
        self.sim, self.stable, self.canary, self.config = sim, stable, canary, config
        self.weight = 0.0
        self.step = -1
        self.failed = 0
        self.state = "waiting"
        self._n = self._err = 0
        self.canary_requests = self.canary_errors = 0
        self.events: list[tuple[float, float, str, int, int]] = []
        self._u = sim.uniforms(f"{name}.split")
        sim.at(start_at, self._advance)

    def _advance(self) -> None:
        self.step += 1
        self.weight = self.config.steps[self.step]
        self.state = "progressing"
        self._n = self._err = 0
        self.sim.at(self.config.interval_s, self._analyse)

    def _analyse(self) -> None:
        c, n, e = self.config, self._n, self._err
        if n > 0 and e / n > c.max_error_rate:
            self.failed += 1
        if self.failed >= c.threshold:
            self.weight, self.state = 0.0, "rolled back"
            self.events.append((self.sim.now, 0.0, "rollback", n, e))
            return
        if self.step + 1 >= len(c.steps):
            self.state = "promoted"
            self.events.append((self.sim.now, self.weight, "promoted", n, e))
            return
        self.events.append((self.sim.now, self.config.steps[self.step + 1], "advance", n, e))
        self._advance()

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Send to the canary with probability weight/100, else to the stable version."""
        to_canary = self._u() * 100 < self.weight
        target = self.canary if to_canary else self.stable

        def back(outcome: str, value: Any) -> None:
            if to_canary:
                self.canary_requests += 1
                self.canary_errors += outcome != "ok"
                if self.state == "progressing":
                    self._n += 1
                    self._err += outcome != "ok"
            callback(outcome, value)

        t = math.inf if deadline is None else max(1e-9, deadline - self.sim.now)
        node.call(target, op, payload, t, back)


def canary_exposure(steps: Sequence[float], rate: float, interval_s: float, error_rate: float,
                    max_error_rate: float) -> dict[str, float]:
    """Expected canary requests (and errors) users get before the analysis (threshold 1) rolls back or
    promotes: sum over steps of weight x rate x interval x P(every earlier check passed). Step k's check
    passes iff errors <= max_error_rate x n with n ~ Poisson(w_k rate interval) and errors ~ Binomial(n, e)
    (n = 0 passes). Deterministic limit (e >> threshold): the first step alone, w_1 x rate x interval."""
    import numpy as np
    from scipy.special import bdtr, gammaln  # Binomial CDF; scipy.stats takes far longer to import

    reach, served, p_pass = 1.0, 0.0, []
    for w in steps:
        mu = w / 100 * rate * interval_s
        served += reach * mu
        n = np.arange(int(mu + 12 * math.sqrt(mu) + 20) + 1)
        pois = np.exp(n * math.log(mu) - mu - gammaln(n + 1)) if mu > 0 else (n == 0).astype(float)
        k = np.floor(max_error_rate * n + 1e-9)
        cdf = np.where(n == 0, 1.0, bdtr(k, np.maximum(n, 1), error_rate))
        pp = float(np.sum(pois * cdf))
        p_pass.append(pp)
        reach *= pp
    return {"requests": served, "errors": served * error_rate, "p_promoted": reach, "p_pass": p_pass}
