"""Service discovery: a registry with health checks and TTLs, and clients with cached views.

The registry is a node. It probes every registered instance over the network every
``check_interval_s`` (``__health__``: a reply at all means *live*; its value says *ready*),
and lists an instance while its last successful ready check is younger than ``ttl_s``.
Clients ask the registry (``__lookup__``) every ``refresh_s`` and route with the cached list
in between — so a crashed instance stays listed (stale) for up to ttl + check interval, plus
a client's refresh interval, and a flapping instance drifts in and out of the list
(as with Consul/Eureka TTL checks and client caches).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from simulator import Node, Simulation


@dataclass(frozen=True)
class DiscoveryConfig:
    """Registry timings, in seconds: an instance is listed while its last ready health check is
    younger than ``ttl_s``; checks every ``check_interval_s``, each waiting ``check_timeout_s``
    (as Consul's TTL and HTTP checks).
    """
    ttl_s: float = 10.0
    check_interval_s: float = 2.0
    check_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("ttl_s", "check_interval_s", "check_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")


class Registry:
    """A service registry node: it health-checks every registered instance (``__health__``) and
    answers ``__lookup__`` with the instances listed now.
    """
    def __init__(self, sim: Simulation, name: str = "registry", config: DiscoveryConfig | None = None) -> None:
        self.sim, self.config = sim, config or DiscoveryConfig()
        self.node = sim.nodes.get(name) or sim.node(name)
        self.services: dict[str, list[str]] = {}
        self.last_ok: dict[str, float] = {}
        self.node.on("__lookup__", lambda msg: tuple(self.listed(msg.payload)))
        self.node.after(self.config.check_interval_s, self._check_all)

    def register(self, service: str, node: Node, ready: Callable[[], bool] | None = None, *,
                 listed_at_once: bool = True) -> None:
        """Add ``node`` under ``service``; ``ready()`` (default: always) answers readiness.
        ``listed_at_once``: registration counts as a first heartbeat (else the instance is listed
        only after its first ready check, as a Kubernetes endpoint with a readiness probe)."""
        node.on("__health__", lambda msg: bool(ready()) if ready is not None else True)
        self.services.setdefault(service, []).append(node.name)
        if listed_at_once:
            self.last_ok[node.name] = self.sim.now

    def listed(self, service: str) -> list[str]:
        """``service``'s instances whose last successful ready check is at most ``ttl_s`` seconds
        old.
        """
        now, ttl = self.sim.now, self.config.ttl_s
        return [i for i in self.services.get(service, []) if now - self.last_ok.get(i, -math.inf) <= ttl]

    def _check_all(self) -> None:
        for insts in self.services.values():
            for inst in insts:
                self.node.call(inst, "__health__", None, self.config.check_timeout_s,
                               lambda o, ready, inst=inst: self._checked(inst, o, ready))
        self.node.after(self.config.check_interval_s, self._check_all)

    def _checked(self, inst: str, outcome: str, ready) -> None:
        if outcome == "ok" and ready:
            self.last_ok[inst] = self.sim.now


class DiscoveryClient:
    """A caller's cached view of ``service``'s instances, refreshed every ``refresh_s``;
    ``on_change(instances)`` is called with each refreshed list (e.g. a balancer's
    ``set_instances``). A failed lookup keeps the old (possibly stale) list."""

    def __init__(self, node: Node, service: str, *, registry: str = "registry", refresh_s: float = 5.0,
                 on_change: Callable[[list[str]], None] | None = None) -> None:
        if not (math.isfinite(refresh_s) and refresh_s > 0):
            raise ValueError(f"refresh_s must be > 0 seconds, got {refresh_s!r}")
        self.node, self.service, self.registry, self.refresh_s = node, service, registry, refresh_s
        self.instances: list[str] = []
        self.on_change = on_change
        self.refreshes = 0
        self._refresh()

    def _refresh(self) -> None:
        self.node.call(self.registry, "__lookup__", self.service, self.refresh_s, self._got)
        self.node.after(self.refresh_s, self._refresh)

    def _got(self, outcome: str, value) -> None:
        if outcome == "ok":
            self.refreshes += 1
            self.instances = list(value)
            if self.on_change is not None:
                self.on_change(self.instances)
