"""Outlier detection with Envoy's consecutive-5xx semantics, and a caller that load-balances around ejected hosts.

Source: Envoy, "Outlier detection" (architecture overview) and ``config.cluster.v3.OutlierDetection``:

- ``consecutive_5xx`` (default 5): after that many 5xx responses in a row from one host, the host is an
  outlier; the check runs *inline*, on the response that completes the streak. A success resets the count.
  Local-origin failures (timeouts, resets, connect failures) count as 5xx unless
  ``split_external_local_origin_errors`` is set: here ``error``, ``rejected``, ``timeout``, ``unreachable``
  and ``crashed`` all count.
- ``max_ejection_percent`` (default 10): an outlier is ejected only if no host is ejected yet, or if
  ejecting it keeps the ejected share at or below the limit (Envoy: "If no hosts have been ejected, Envoy
  will eject the host immediately. Otherwise ... below the allowed threshold").
- ``base_ejection_time`` (default 30 s): the k-th ejection of a host lasts k x base_ejection_time (capped at
  ``max_ejection_time``, default 300 s), "so hosts get ejected for longer and longer periods if they
  continue to fail".
- ``interval`` (default 10 s): the sweep that un-ejects: a host returns to the load-balancing set on the
  first interval tick at or after its ejection time has passed, so an ejection lasts
  ``ceil(k x base / interval) x interval`` when it starts on a tick, at most one interval longer otherwise.

Simplification (said, not hidden): newer Envoy also lowers the ejection multiplier again while a host stays
healthy across intervals; here the multiplier only grows (the schedule the brief and the classic docs give).
Success-rate and failure-percentage detection are not modelled. Panic mode: if every host were ejected the
balancer uses all of them (Envoy's panic threshold, in its extreme form).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.resilience.retry import RetryPolicy
from models.services.balancers import make_balancer
from simulator import Node, Simulation

if TYPE_CHECKING:
    import pandas as pd

FIVE_XX = frozenset({"error", "rejected", "timeout", "unreachable", "crashed"})


@dataclass(frozen=True)
class OutlierDetectionConfig:
    """Envoy's field names and defaults, in seconds."""

    consecutive_5xx: int = 5
    interval_s: float = 10.0
    base_ejection_time_s: float = 30.0
    max_ejection_percent: float = 10.0
    max_ejection_time_s: float = 300.0

    def __post_init__(self) -> None:
        if not (isinstance(self.consecutive_5xx, int) and self.consecutive_5xx >= 1):
            raise ValueError(f"consecutive_5xx must be an integer >= 1, got {self.consecutive_5xx!r}")
        for name in ("interval_s", "base_ejection_time_s", "max_ejection_time_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        if not (0 <= self.max_ejection_percent <= 100):
            raise ValueError(f"max_ejection_percent must be in [0, 100], got {self.max_ejection_percent!r}")


class OutlierDetector:
    """Per-host consecutive-5xx counters and ejection state for one upstream cluster.

    ``record(host, outcome, now)`` after every response; ``tick(now)`` every ``interval_s`` (``start(sim)``
    schedules it). ``events`` lists ``(time, host, "eject" | "uneject", ejection number)``.
    """

    def __init__(self, config: OutlierDetectionConfig, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ValueError("hosts must name at least one host")
        self.config = config
        self.hosts = list(hosts)
        self.consecutive = dict.fromkeys(self.hosts, 0)
        self.times_ejected = dict.fromkeys(self.hosts, 0)
        self.ejected_until: dict[str, float] = {}  # host -> when its ejection time has passed
        self.events: list[tuple[float, str, str, int]] = []
        self.skipped = 0  # outliers not ejected because of max_ejection_percent

    def is_ejected(self, host: str) -> bool:
        """Whether ``host`` is ejected from the load-balancing set now."""
        return host in self.ejected_until

    def healthy(self) -> list[str]:
        """The hosts not ejected, in configuration order."""
        return [h for h in self.hosts if h not in self.ejected_until]

    def record(self, host: str, outcome: str, now: float) -> None:
        """Count one response ``outcome`` from ``host`` at ``now`` (seconds): a success resets its
        streak; the ``consecutive_5xx``-th failure in a row ejects it inline, unless
        ``max_ejection_percent`` forbids (Envoy's outlier detection).
        """
        if host not in self.consecutive:
            return
        if outcome not in FIVE_XX:
            self.consecutive[host] = 0
            return
        self.consecutive[host] += 1
        if self.consecutive[host] >= self.config.consecutive_5xx and host not in self.ejected_until:
            self._eject(host, now)

    def _eject(self, host: str, now: float) -> None:
        c = self.config
        n_ejected = len(self.ejected_until)
        if n_ejected > 0 and 100.0 * (n_ejected + 1) / len(self.hosts) > c.max_ejection_percent:
            self.skipped += 1
            return
        self.consecutive[host] = 0
        self.times_ejected[host] += 1
        k = self.times_ejected[host]
        self.ejected_until[host] = now + min(k * c.base_ejection_time_s, max(c.base_ejection_time_s,
                                                                             c.max_ejection_time_s))
        self.events.append((now, host, "eject", k))

    def tick(self, now: float) -> None:
        """The interval sweep at ``now`` (seconds): return every host whose ejection time has
        passed to the load-balancing set, its streak reset (Envoy's ``interval``).
        """
        for host in [h for h, until in self.ejected_until.items() if now >= until - 1e-9]:
            del self.ejected_until[host]
            self.consecutive[host] = 0
            self.events.append((now, host, "uneject", self.times_ejected[host]))

    def start(self, sim: Simulation) -> None:
        """Run ``tick`` every ``interval_s`` of simulated time from now on."""
        def sweep() -> None:
            self.tick(sim.now)
            sim.at(self.config.interval_s, sweep)

        sim.at(self.config.interval_s, sweep)

    def events_frame(self) -> pd.DataFrame:
        """``events`` as a DataFrame: time (s), host, event ("eject" | "uneject"), ejection number.
        """
        import pandas as pd

        return pd.DataFrame(self.events, columns=["time", "host", "event", "ejection"])


class OutlierCaller:
    """A sidecar-style caller for one cluster: each attempt goes to a host chosen by ``balancer`` among the
    hosts not ejected, its outcome feeds the detector. Optional ``retry`` (Envoy's route retry policy with
    the ``previous_hosts`` predicate: a retry avoids the hosts this request already tried, when it can).
    Implements the ``Caller`` protocol; ``dst`` is the cluster name and is not used for routing."""

    def __init__(self, sim: Simulation, hosts: Sequence[str], *, config: OutlierDetectionConfig | None = None,
                 balancer: str = "round_robin", timeout_s: float = math.inf, retry: RetryPolicy | None = None,
                 name: str = "sidecar", detect: bool = True) -> None:
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.sim = sim
        self.hosts = list(hosts)
        self.detector = OutlierDetector(config or OutlierDetectionConfig(), self.hosts) if detect else None
        self.balancer = make_balancer(balancer, self.hosts, sim.uniforms(f"outlier.{name}.balance"))
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._u = sim.uniforms(f"outlier.{name}.jitter")
        self.attempts = dict.fromkeys(self.hosts, 0)
        sim.metrics.column("retries", "h", 0)
        if self.detector is not None:
            self.detector.start(sim)

    def _pick(self, tried: set[str]) -> str:
        pool = self.detector.healthy() if self.detector is not None else self.hosts
        pool = pool or self.hosts  # panic: everything ejected, use everything
        fresh = [h for h in pool if h not in tried]
        self.balancer.instances = fresh or pool
        return self.balancer.choose()

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callable[[str, Any], None], *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Send ``op`` to a healthy host (``dst`` is ignored) and call ``callback(outcome, value)``
        once, after at most ``retry``'s attempts, each bounded by ``timeout_s`` and the absolute
        ``deadline`` (simulated seconds); every attempt's outcome feeds the detector.
        """
        self._attempt(node, op, payload, callback, rid, deadline, 1, 0.0, set())

    def _attempt(self, node, op, payload, callback, rid, deadline, attempt, prev_sleep, tried) -> None:
        sim = self.sim
        host = self._pick(tried)
        tried.add(host)
        self.attempts[host] += 1
        t = self.timeout_s if deadline is None else min(self.timeout_s, deadline - sim.now)
        if t <= 0:
            callback("timeout", None)
            return

        def done(outcome: str, value: Any) -> None:
            self.balancer.done(host)
            if self.detector is not None:
                self.detector.record(host, outcome, sim.now)
            pol = self.retry
            if outcome != "ok" and attempt < pol.max_attempts and outcome in pol.retry_on:
                sleep = pol.delay(attempt, prev_sleep, self._u)
                if rid is not None:
                    sim.metrics.set(rid, "retries", attempt)
                node.after(sleep, lambda: self._attempt(node, op, payload, callback, rid, deadline, attempt + 1,
                                                        sleep, tried))
                return
            callback(outcome, value)

        node.call(host, op, payload, t, done)
