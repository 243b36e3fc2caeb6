"""A feature flag with a percentage rollout: sticky per user, in stages, halted by an error guard.

Feature-flag services bucket a user by hashing a stable key (Unleash's "gradual rollout" strategy
hashes ``groupId:userId`` with murmur3 into 1..100; LaunchDarkly's percentage rollouts hash the context
key the same way), so a user keeps the same answer as the percentage grows. Here the hash is 64-bit
blake2b (deterministic across processes). ``stages`` is the rollout plan: ``((t0, pct0), (t1, pct1),
...)``: from ``t_i`` on, ``pct_i`` percent of users see the feature. A guard (a progressive-delivery
controller's analysis step, as in Argo Rollouts or Flagger) halts the rollout — percentage back to 0 —
when, at the end of an analysis interval (``analyse(now)``, called every ``window_s``), the error rate
among the interval's flagged requests exceeds ``max_error_rate`` (and it saw ``min_requests``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence


def bucket(key: str, salt: str = "") -> float:
    """A user's stable position in [0, 1) for ``salt`` (the flag's name)."""
    h = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2 ** 64


class FeatureFlag:
    """``enabled(key, now)``: whether user ``key`` sees the feature at time ``now``; report each flagged
    request's result with ``record(ok)`` and call ``analyse(now)`` every ``window_s`` so the guard can
    halt the rollout."""

    def __init__(self, name: str, stages: Sequence[tuple[float, float]], *, window_s: float = 10.0,
                 max_error_rate: float | None = None, min_requests: int = 20) -> None:
        if not stages:
            raise ValueError("stages must hold at least one (time, percent) pair")
        for t, pct in stages:
            if not (math.isfinite(t) and 0 <= pct <= 100):
                raise ValueError(f"stage ({t!r}, {pct!r}): need a finite time and a percent in [0, 100]")
        if max_error_rate is not None and not 0 <= max_error_rate <= 1:
            raise ValueError(f"max_error_rate must be in [0, 1] or None, got {max_error_rate!r}")
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be > 0 seconds, got {window_s!r}")
        self.name, self.stages = name, sorted(stages)
        self.window_s, self.max_error_rate, self.min_requests = window_s, max_error_rate, min_requests
        self.halted_at: float | None = None
        self._n = self._bad = 0

    def percent(self, now: float) -> float:
        """The rollout percentage at ``now`` (0 once halted)."""
        if self.halted_at is not None and now >= self.halted_at:
            return 0.0
        pct = 0.0
        for t, p in self.stages:
            if now >= t:
                pct = p
        return pct

    def enabled(self, key: str, now: float) -> bool:
        """Whether user ``key`` sees the feature at ``now``: its stable bucket is below the percentage."""
        return bucket(key, self.name) * 100 < self.percent(now)

    def record(self, ok: bool) -> None:
        """A flagged request's result, counted in the current analysis interval."""
        self._n += 1
        self._bad += not ok

    def analyse(self, now: float) -> bool:
        """End an analysis interval (call every ``window_s``): halt the rollout if the interval's error
        rate among flagged requests exceeds the guard; returns whether the rollout is halted."""
        if self.max_error_rate is not None and self.halted_at is None and self._n >= self.min_requests \
                and self._bad / self._n > self.max_error_rate:
            self.halted_at = now
        self._n = self._bad = 0
        return self.halted_at is not None
