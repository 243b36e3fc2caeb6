"""Kubernetes-style container probes: a kubelet that liveness-probes a container and restarts it.

Semantics from the Kubernetes documentation ("Configure Liveness, Readiness and Startup Probes";
"Pod Lifecycle", container restart policy): the kubelet runs the first probe ``initial_delay_s``
after the container starts, then every ``period_s``; a probe that does not answer within
``timeout_s`` fails; after ``failure_threshold`` consecutive failures of the *liveness* probe the
kubelet kills the container and restarts it after an exponential back-off (10 s, 20 s, 40 s, ...
capped at 300 s: CrashLoopBackOff). Defaults are Kubernetes' (initialDelaySeconds 0, periodSeconds
10, timeoutSeconds 1, failureThreshold 3). *Readiness* does not restart anything: it removes the
instance from the endpoints (here: the :class:`~models.services.discovery.Registry` lists an
instance only while its ``ready()`` answers true), so readiness is modelled there, not here.

The container answers the liveness probe as op ``__live__`` (a handler the caller installs: a
container still booting answers nothing, so the probe times out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from simulator import Node, Simulation


@dataclass(frozen=True)
class ProbeConfig:
    """One probe's timings (seconds) and failure threshold, as a Kubernetes probe spec."""

    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_delay_s) and self.initial_delay_s >= 0):
            raise ValueError(f"initial_delay_s must be >= 0 seconds, got {self.initial_delay_s!r}")
        for name in ("period_s", "timeout_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        if not (isinstance(self.failure_threshold, int) and self.failure_threshold >= 1):
            raise ValueError(f"failure_threshold must be an integer >= 1, got {self.failure_threshold!r}")

    def kills_slow_start(self, startup_s: float) -> bool:
        """Whether a container that answers only ``startup_s`` after it starts is killed before it
        does: the ``failure_threshold``-th probe fires at ``initial_delay_s + (threshold - 1) period_s``."""
        return startup_s > self.initial_delay_s + (self.failure_threshold - 1) * self.period_s


def crash_loop_backoff(restart: int, base_s: float = 10.0, cap_s: float = 300.0) -> float:
    """The kubelet's delay before the ``restart``-th restart (1-based): ``base * 2^(restart-1)``, capped."""
    return min(cap_s, base_s * 2 ** (restart - 1))


class Kubelet:
    """Liveness-probes ``container`` (a node) from a kubelet node, restarting it as Kubernetes does.

    ``on_start()`` is called each time the container (re)starts, at construction too: the caller
    resets its boot timer there. ``restarts`` holds the true times of each kill.
    """

    def __init__(self, sim: Simulation, container: Node, liveness: ProbeConfig, *,
                 on_start: Callable[[], None] | None = None, backoff_base_s: float = 10.0,
                 backoff_cap_s: float = 300.0) -> None:
        self.sim, self.container, self.cfg = sim, container, liveness
        self.node = sim.node(f"kubelet-{container.name}")
        self.on_start = on_start
        self.base_s, self.cap_s = backoff_base_s, backoff_cap_s
        self.restarts: list[float] = []
        self.starts: list[float] = []
        self._epoch = 0
        self._start()

    def _start(self) -> None:
        if not self.container.up:
            self.container.recover()
        self._epoch += 1
        self._fails = 0
        self.starts.append(self.sim.now)
        if self.on_start is not None:
            self.on_start()
        ep = self._epoch
        self.node.after(self.cfg.initial_delay_s, lambda: self._probe(ep))

    def _probe(self, ep: int) -> None:
        if ep != self._epoch:
            return
        self.node.call(self.container.name, "__live__", None, self.cfg.timeout_s,
                       lambda o, v: self._probed(ep, o))
        self.node.after(self.cfg.period_s, lambda: self._probe(ep))

    def _probed(self, ep: int, outcome: str) -> None:
        if ep != self._epoch:
            return
        self._fails = 0 if outcome == "ok" else self._fails + 1
        if self._fails >= self.cfg.failure_threshold:
            self._epoch += 1  # stop this container's probes
            self.restarts.append(self.sim.now)
            self.container.crash()
            self.node.after(crash_loop_backoff(len(self.restarts), self.base_s, self.cap_s), self._start)
