"""Circuit breaker with resilience4j's semantics.

Source: resilience4j CircuitBreaker documentation ("CircuitBreaker" page, resilience4j.readme.io).
- States ``closed``, ``open``, ``half_open`` (plus ``disabled`` and ``forced_open``).
- In ``closed``, call outcomes go into a sliding window: *count based* (the last
  ``sliding_window_size`` calls) or *time based* (calls of the last ``sliding_window_size``
  seconds, aggregated in 1-second buckets).
- Rates are evaluated only once ``minimum_number_of_calls`` calls are recorded (for a count
  window, at most its size). If the failure rate **or** the slow-call rate is ``>=`` its
  threshold (percent), the breaker opens.
- In ``open`` every call is rejected (``short_circuited``) for ``wait_duration_in_open_s``;
  then it moves to ``half_open`` by itself (``automatic_transition=True``) or on the first
  call after the wait.
- In ``half_open`` only ``permitted_calls_in_half_open`` trial calls go through; the rest are
  rejected. When all of them have completed, their failure and slow-call rates decide:
  ``>=`` a threshold → ``open`` again, else ``closed`` with a fresh window. With
  ``max_wait_in_half_open_s > 0`` the breaker re-opens if the trials take longer than that.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FAILURES = frozenset({"error", "timeout", "unreachable", "crashed", "rejected"})
STATES = ("closed", "open", "half_open", "disabled", "forced_open")


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Defaults are resilience4j's (window 100 calls, 50% thresholds, 60 s slow call,
    60 s open, 10 trial calls) except where noted."""

    sliding_window_type: str = "count"  # "count" | "time"
    sliding_window_size: int = 100  # calls (count) or seconds (time)
    minimum_number_of_calls: int = 100
    failure_rate_threshold: float = 50.0  # percent, (0, 100]
    slow_call_rate_threshold: float = 100.0  # percent, (0, 100]
    slow_call_duration_s: float = 60.0
    wait_duration_in_open_s: float = 60.0
    permitted_calls_in_half_open: int = 10
    automatic_transition: bool = False  # resilience4j's automaticTransitionFromOpenToHalfOpenEnabled
    max_wait_in_half_open_s: float = 0.0  # 0 = wait for all trial calls
    record_as_failure: frozenset[str] = FAILURES

    def __post_init__(self) -> None:
        if self.sliding_window_type not in ("count", "time"):
            raise ValueError(f"sliding_window_type must be 'count' or 'time', got {self.sliding_window_type!r}")
        for name in ("sliding_window_size", "minimum_number_of_calls", "permitted_calls_in_half_open"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 100):
                raise ValueError(f"{name} must be a percentage in (0, 100], got {v!r}")
        for name in ("slow_call_duration_s", "wait_duration_in_open_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")
        if not (math.isfinite(self.max_wait_in_half_open_s) and self.max_wait_in_half_open_s >= 0):
            raise ValueError(f"max_wait_in_half_open_s must be >= 0 seconds, got {self.max_wait_in_half_open_s!r}")
        object.__setattr__(self, "record_as_failure", frozenset(self.record_as_failure))


class _CountWindow:
    """The last ``size`` calls, with running totals (O(1) per call, like resilience4j's ring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: deque[tuple[bool, bool]] = deque()
        self.failed = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        if len(self.calls) == self.size:
            f, s = self.calls.popleft()
            self.failed -= f
            self.slow -= s
        self.calls.append((failed, slow))
        self.failed += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return len(self.calls), self.failed, self.slow


class _TimeWindow:
    """Calls of the last ``size`` seconds in 1-second buckets (resilience4j's aggregation)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buckets: deque[list] = deque()  # [second, calls, failures, slow]

    def _expire(self, now: float) -> None:
        oldest = math.floor(now) - self.size + 1
        while self.buckets and self.buckets[0][0] < oldest:
            self.buckets.popleft()

    def record(self, now: float, failed: bool, slow: bool) -> None:
        sec = math.floor(now)
        self._expire(now)
        if not self.buckets or self.buckets[-1][0] != sec:
            self.buckets.append([sec, 0, 0, 0])
        b = self.buckets[-1]
        b[1] += 1
        b[2] += failed
        b[3] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        self._expire(now)
        return (sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets),
                sum(b[3] for b in self.buckets))


class CircuitBreaker:
    """One breaker (per dependency). ``try_acquire(now)`` before a call; ``on_result(now,
    outcome, duration_s)`` after it. ``transitions`` lists (time, from, to)."""

    def __init__(self, config: CircuitBreakerConfig, *, name: str = "breaker",
                 schedule: Callable[[float, Callable[[], None]], None] | None = None) -> None:
        self.config = config
        self.name = name
        self._schedule = schedule  # for automatic open -> half_open (sim.at)
        self.state = "closed"
        self.transitions: list[tuple[float, str, str]] = []
        self._window = self._new_window()
        self._opened_at = -math.inf
        self._half_permits = 0
        self._half_results: list[tuple[bool, bool]] = []
        self._half_started = 0.0
        self._generation = 0
        self.not_permitted = 0

    def _new_window(self):
        c = self.config
        return _CountWindow(c.sliding_window_size) if c.sliding_window_type == "count" else _TimeWindow(
            c.sliding_window_size)

    # -- transitions -------------------------------------------------------------------------
    def _to(self, now: float, state: str) -> None:
        if state == self.state:
            return
        self.transitions.append((now, self.state, state))
        self.state = state
        self._generation += 1
        if state == "closed":
            self._window = self._new_window()
        elif state == "open":
            self._opened_at = now
            if self.config.automatic_transition and self._schedule is not None:
                gen = self._generation
                self._schedule(self.config.wait_duration_in_open_s,
                               lambda: self._generation == gen and self._to_half_open(
                                   now + self.config.wait_duration_in_open_s))
        elif state == "half_open":
            self._half_permits = self.config.permitted_calls_in_half_open
            self._half_results = []
            self._half_started = now

    def _to_half_open(self, now: float) -> None:
        self._to(now, "half_open")

    def transition_to(self, now: float, state: str) -> None:
        """Force a state (``disabled``, ``forced_open`` or back to ``closed``)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        self._to(now, state)

    # -- calls ---------------------------------------------------------------------------------
    def try_acquire(self, now: float) -> bool:
        """Whether a call may go through at ``now`` (seconds): always when closed or disabled; in
        open only once ``wait_duration_in_open_s`` has passed (it moves to half_open); in
        half_open while trial permits remain (resilience4j's ``tryAcquirePermission``). A
        refusal counts in ``not_permitted``.
        """
        s = self.state
        if s in ("closed", "disabled"):
            return True
        if s == "open":
            if now - self._opened_at >= self.config.wait_duration_in_open_s:
                self._to(now, "half_open")  # first call after the wait (no automatic transition)
            else:
                self.not_permitted += 1
                return False
        if self.state == "half_open":
            mw = self.config.max_wait_in_half_open_s
            if mw > 0 and now - self._half_started >= mw and self._half_results is not None:
                self._to(now, "open")
                self.not_permitted += 1
                return False
            if self._half_permits > 0:
                self._half_permits -= 1
                return True
        self.not_permitted += 1
        return False

    def on_result(self, now: float, outcome: str, duration_s: float) -> None:
        """Record a permitted call's ``outcome`` and ``duration_s`` (seconds) at ``now``: in closed
        it enters the sliding window and may open the breaker; in half_open the trials' rates,
        once all are in, close or re-open it (resilience4j's ``onSuccess``/``onError``).
        """
        c = self.config
        failed = outcome in c.record_as_failure
        slow = duration_s >= c.slow_call_duration_s
        if self.state == "closed":
            self._window.record(now, failed, slow)
            n, f, sl = self._window.totals(now)
            need = c.minimum_number_of_calls
            if c.sliding_window_type == "count":
                need = min(need, c.sliding_window_size)
            if n >= need and self._over(n, f, sl):
                self._to(now, "open")
        elif self.state == "half_open":
            self._half_results.append((failed, slow))
            if len(self._half_results) >= c.permitted_calls_in_half_open:
                n = len(self._half_results)
                f = sum(x for x, _ in self._half_results)
                sl = sum(y for _, y in self._half_results)
                self._to(now, "open" if self._over(n, f, sl) else "closed")
        # results arriving in open/disabled/forced_open are not recorded (as in resilience4j)

    def _over(self, n: int, failures: int, slow: int) -> bool:
        c = self.config
        return (100.0 * failures / n >= c.failure_rate_threshold
                or 100.0 * slow / n >= c.slow_call_rate_threshold)

    def failure_rate(self, now: float) -> float:
        """The failure rate of the closed-state window at ``now``, in percent (NaN while it is
        empty).
        """
        n, f, _ = self._window.totals(now)
        return 100.0 * f / n if n else math.nan

    def transitions_frame(self) -> pd.DataFrame:
        """``transitions`` as a DataFrame: time (s), from_state, to_state, breaker (this name)."""
        import pandas as pd

        return pd.DataFrame(self.transitions, columns=["time", "from_state", "to_state"]).assign(breaker=self.name)
