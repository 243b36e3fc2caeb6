"""Retries with backoff and jitter.

Backoff and jitter follow Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture
Blog, 2015): with ``exp = min(cap, base * 2**(n-1))`` before retry ``n``,
``full`` sleeps U(0, exp), ``equal`` sleeps exp/2 + U(0, exp/2), ``decorrelated`` sleeps
min(cap, U(base, 3 * previous_sleep)), ``none`` sleeps exp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

BACKOFFS = ("none", "fixed", "exponential")
JITTERS = ("none", "full", "equal", "decorrelated")
RETRYABLE = frozenset({"timeout", "unreachable", "crashed", "rejected"})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try and how long to wait between tries.

    max_attempts: total attempts including the first (1 = no retry), integer >= 1.
    backoff: ``none`` (retry at once), ``fixed`` (base_s each time) or ``exponential``.
    base_s, cap_s: backoff base and cap in seconds (0 <= base_s <= cap_s).
    jitter: ``none``, ``full``, ``equal`` or ``decorrelated``.
    retry_on: outcomes worth retrying (default: timeout, unreachable, crashed, rejected;
    ``error`` is an application answer and not retried by default).
    """

    max_attempts: int = 1
    backoff: str = "exponential"
    base_s: float = 0.01
    cap_s: float = 1.0
    jitter: str = "full"
    retry_on: frozenset[str] = RETRYABLE

    def __post_init__(self) -> None:
        if not (isinstance(self.max_attempts, int) and self.max_attempts >= 1):
            raise ValueError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.backoff not in BACKOFFS:
            raise ValueError(f"backoff must be one of {BACKOFFS}, got {self.backoff!r}")
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}, got {self.jitter!r}")
        for name in ("base_s", "cap_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, got {v!r}")
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s must be >= base_s ({self.base_s}), got {self.cap_s}")
        object.__setattr__(self, "retry_on", frozenset(self.retry_on))

    def delay(self, retry: int, previous_s: float, u: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); ``u`` draws U[0, 1)."""
        if self.backoff == "none":
            return 0.0
        if self.backoff == "fixed":
            exp = self.base_s
        else:
            exp = min(self.cap_s, self.base_s * 2.0 ** (retry - 1))
        j = self.jitter
        if j == "none":
            return exp
        if j == "full":
            return u() * exp
        if j == "equal":
            return exp / 2 + u() * exp / 2
        prev = previous_s if previous_s > 0 else self.base_s
        return min(self.cap_s, self.base_s + u() * (3 * prev - self.base_s))
