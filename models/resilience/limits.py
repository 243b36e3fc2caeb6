"""Retry budgets, bulkheads, token buckets and load shedders: the patterns that say "no".

- ``RetryBudget``: gRPC's retry throttling (gRFC A6 "Client Retries", *Throttling Retry
  Attempts*): a token count starting at ``max_tokens``; every failed attempt costs 1 token,
  every success adds ``token_ratio`` (capped at ``max_tokens``); retries are allowed only
  while ``tokens > max_tokens / 2``.
- ``Bulkhead``: resilience4j's SemaphoreBulkhead: at most ``max_concurrent`` calls in flight;
  a further call waits up to ``max_wait_s`` for a permit (FIFO), else it is rejected.
- ``TokenBucket``: ``rate`` tokens per second up to ``burst``; a call takes one or is refused.
- ``LoadShedder``: server-side admission: refuse when the queue is longer than ``max_queue``
  or the oldest queued request has waited longer than ``max_wait_s`` (CoDel's signal: queueing
  delay, not length, is what callers feel).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


def _positive(name: str, v, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    ok = ok and not isinstance(v, bool) and math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} {'>=' if allow_zero else '>'} 0, got {v!r}")


@dataclass(frozen=True)
class RetryBudgetConfig:
    """gRPC retry throttling's two settings (gRFC A6): ``max_tokens`` (the budget, and its start)
    and ``token_ratio`` (tokens a success gives back).
    """
    max_tokens: float = 10.0
    token_ratio: float = 0.1

    def __post_init__(self) -> None:
        _positive("max_tokens", self.max_tokens)
        _positive("token_ratio", self.token_ratio)


class RetryBudget:
    """gRPC's retry throttling (gRFC A6): a token count starting full; retries are allowed only
    while ``tokens > max_tokens / 2``. ``denied`` counts refused retries.
    """
    def __init__(self, config: RetryBudgetConfig) -> None:
        self.config = config
        self.tokens = float(config.max_tokens)
        self.denied = 0

    def on_success(self) -> None:
        """A successful attempt: add ``token_ratio`` tokens, capped at ``max_tokens``."""
        self.tokens = min(self.config.max_tokens, self.tokens + self.config.token_ratio)

    def on_failure(self) -> None:
        """A failed attempt: take one token (never below 0)."""
        self.tokens = max(0.0, self.tokens - 1.0)

    def allow_retry(self) -> bool:
        """Whether a retry may be sent now (``tokens > max_tokens / 2``); a refusal counts in
        ``denied``.
        """
        ok = self.tokens > self.config.max_tokens / 2
        if not ok:
            self.denied += 1
        return ok


@dataclass(frozen=True)
class BulkheadConfig:
    """resilience4j SemaphoreBulkhead's settings and defaults: ``maxConcurrentCalls`` 25,
    ``maxWaitDuration`` 0 s; ``per_dependency``: one bulkhead per destination (isolation) or one
    shared.
    """
    max_concurrent: int = 25  # resilience4j default maxConcurrentCalls
    max_wait_s: float = 0.0  # resilience4j default maxWaitDuration
    per_dependency: bool = True  # one semaphore per destination (isolation) or one shared

    def __post_init__(self) -> None:
        _positive("max_concurrent", self.max_concurrent, integer=True)
        _positive("max_wait_s", self.max_wait_s, allow_zero=True)


class Bulkhead:
    """A semaphore with a bounded FIFO wait. ``schedule(delay, fn)`` runs the wait timeouts."""

    def __init__(self, config: BulkheadConfig, schedule: Callable[[float, Callable[[], None]], None]) -> None:
        self.config = config
        self._schedule = schedule
        self.in_use = 0
        self._waiting: deque[list] = deque()  # [granted_cb, alive]
        self.rejected = 0

    def acquire(self, granted: Callable[[], None], rejected: Callable[[], None]) -> None:
        """Ask for a permit: ``granted()`` at once if one is free, else wait (FIFO) up to
        ``max_wait_s`` seconds for one, else ``rejected()`` (counted in ``rejected``).
        """
        if self.in_use < self.config.max_concurrent:
            self.in_use += 1
            granted()
            return
        if self.config.max_wait_s <= 0:
            self.rejected += 1
            rejected()
            return
        entry = [granted, True]
        self._waiting.append(entry)

        def give_up() -> None:
            if entry[1]:
                entry[1] = False
                self.rejected += 1
                rejected()

        self._schedule(self.config.max_wait_s, give_up)

    def release(self) -> None:
        """Give a permit back: it passes straight to the oldest live waiter, if any."""
        while self._waiting:
            entry = self._waiting.popleft()
            if entry[1]:
                entry[1] = False
                entry[0]()  # the permit passes straight to the next waiter
                return
        self.in_use -= 1


@dataclass(frozen=True)
class TokenBucketConfig:
    """A token bucket: refilled at ``rate`` tokens per second up to ``burst`` tokens (>= 1),
    starting full.
    """
    rate: float  # tokens per second
    burst: float  # bucket size

    def __post_init__(self) -> None:
        _positive("rate", self.rate)
        _positive("burst", self.burst)
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1 (one call needs one token), got {self.burst!r}")


class TokenBucket:
    """A token bucket on explicit time: ``take(now)`` refills for the seconds since the last call,
    then takes a token or refuses (counted in ``refused``).
    """
    def __init__(self, config: TokenBucketConfig, now: float = 0.0) -> None:
        self.config = config
        self.tokens = float(config.burst)
        self._t = now
        self.refused = 0

    def take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens at ``now`` (seconds) after refilling: True if there were enough, else
        False and nothing taken.
        """
        c = self.config
        self.tokens = min(c.burst, self.tokens + (now - self._t) * c.rate)
        self._t = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        self.refused += 1
        return False


@dataclass(frozen=True)
class LoadShedderConfig:
    """When to shed: ``max_queue`` requests already waiting, or the oldest waiting longer than
    ``max_wait_s`` seconds (CoDel's signal: queueing delay); at least one of the two.
    """
    max_queue: int | None = None  # shed when this many requests already wait
    max_wait_s: float | None = None  # shed when the oldest waiting request waited this long

    def __post_init__(self) -> None:
        if self.max_queue is None and self.max_wait_s is None:
            raise ValueError("LoadShedderConfig needs max_queue or max_wait_s (or both)")
        if self.max_queue is not None:
            _positive("max_queue", self.max_queue, integer=True, allow_zero=True)
        if self.max_wait_s is not None:
            _positive("max_wait_s", self.max_wait_s)


class LoadShedder:
    """``admit(now, queue_length, oldest_wait_s)`` — pass it to ``node.serve(..., admit=)``."""

    def __init__(self, config: LoadShedderConfig) -> None:
        self.config = config
        self.shed = 0

    def admit(self, now: float, queue_length: int, oldest_wait_s: float) -> bool:
        """Whether a request arriving at ``now`` is admitted, given ``queue_length`` requests
        waiting and the oldest having waited ``oldest_wait_s`` seconds; a refusal counts in
        ``shed``.
        """
        c = self.config
        if (c.max_queue is not None and queue_length >= c.max_queue) or (
                c.max_wait_s is not None and oldest_wait_s > c.max_wait_s):
            self.shed += 1
            return False
        return True
