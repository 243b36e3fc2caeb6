"""An API gateway: routing by path prefix, per-client rate limits, per-route timeouts, and request
aggregation with partial responses.

The shapes follow what gateways document: Envoy's route table (a request goes to the route with the
longest matching path ``prefix``; each route has its own ``timeout``, 15 s by default in Envoy, answered
with 504 when it fires), a local rate limit per API key as a token bucket (Envoy's
``local_ratelimit`` / Kong's ``rate-limiting`` keyed by consumer: ``rate`` tokens per second up to
``burst``; a refusal is a 429, here outcome ``rejected``), and the API-composition / backend-for-frontend
pattern (Richardson, *Microservices Patterns*, ch. 8): one client request fans out to several services and
the gateway answers with whatever came back, marking the answer ``partial`` when a part is missing.

Versioning: URL versioning is a route per version prefix (``/v1``, ``/v2``); header versioning is
``version_header=`` (e.g. ``"Accept-Version"``): the header's value, or ``default_version`` when the
request has none, is prepended to the path before matching (Envoy matches routes on headers the same
way), so ``{"path": "/orders", "headers": {"Accept-Version": "v2"}}`` takes the ``/v2`` route.

A request is ``gateway.node.call("gateway", "request", {"path": ..., "api_key": ...})``. Outcomes:
``ok`` (value: the backend's value, or for an aggregate ``{"parts": {...}, "partial": bool,
"missing": [...]}``), ``rejected`` (rate limited), ``error`` (no route, or every part of an aggregate
failed, or the backend's error), ``timeout`` (the route's timeout fired: a 504). Every request the gateway
receives is one row of ``gateway.requests()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models.resilience.limits import TokenBucket, TokenBucketConfig
from simulator import NO_REPLY, Message, Simulation

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Route:
    """Requests whose path starts with ``prefix`` go to ``service`` (a single upstream) or, when
    ``aggregate`` names several services, to all of them at once. ``timeout_s`` bounds each upstream call."""

    prefix: str
    service: str = ""
    aggregate: tuple[str, ...] = ()
    timeout_s: float = 15.0  # Envoy's default route timeout
    op: str = "get"

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/', got {self.prefix!r}")
        if bool(self.service) == bool(self.aggregate):
            raise ValueError(f"route {self.prefix!r} needs exactly one of service= or aggregate=")
        if not (isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0):
            raise ValueError(f"timeout_s of route {self.prefix!r} must be > 0 seconds (math.inf for none), "
                             f"got {self.timeout_s!r}")
        object.__setattr__(self, "aggregate", tuple(self.aggregate))


@dataclass
class _Log:
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    api_key: list[str] = field(default_factory=list)
    route: list[str] = field(default_factory=list)
    outcome: list[str] = field(default_factory=list)
    partial: list[bool] = field(default_factory=list)


class ApiGateway:
    """A gateway node ``name`` in front of ``upstreams`` (service name -> instance node names, balanced
    round robin). ``rate_limit``: the token bucket every API key gets (None: no limit); ``key_limits``
    overrides it per key (a paid tier)."""

    def __init__(self, sim: Simulation, upstreams: dict[str, Sequence[str]], routes: Sequence[Route], *,
                 name: str = "gateway", rate_limit: TokenBucketConfig | None = None,
                 key_limits: dict[str, TokenBucketConfig] | None = None, version_header: str | None = None,
                 default_version: str = "") -> None:
        if not routes:
            raise ValueError("routes must hold at least one Route")
        for r in routes:
            for s in (r.aggregate or (r.service,)):
                if not upstreams.get(s):
                    raise ValueError(f"route {r.prefix!r} names service {s!r}, which has no instances in "
                                     f"upstreams {sorted(upstreams)}")
        self.sim, self.name = sim, name
        self.upstreams = {s: list(h) for s, h in upstreams.items()}
        self.routes = sorted(routes, key=lambda r: -len(r.prefix))  # longest prefix first
        self.rate_limit, self.key_limits = rate_limit, dict(key_limits or {})
        self.version_header, self.default_version = version_header, default_version
        self.buckets: dict[str, TokenBucket] = {}
        self._rr = dict.fromkeys(self.upstreams, 0)
        self.log = _Log()
        self.node = sim.nodes.get(name) or sim.node(name)
        self.node.on("request", self._handle)

    def match(self, path: str) -> Route | None:
        """The route for ``path``: the one with the longest matching prefix (Envoy's route table),
        or None.
        """
        for r in self.routes:
            if path.startswith(r.prefix):
                return r
        return None

    def _admit(self, key: str) -> bool:
        cfg = self.key_limits.get(key, self.rate_limit)
        if cfg is None:
            return True
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = TokenBucket(cfg, self.sim.now)
        return b.take(self.sim.now)

    def _host(self, service: str) -> str:
        hosts = self.upstreams[service]
        i = self._rr[service]
        self._rr[service] = i + 1
        return hosts[i % len(hosts)]

    def _handle(self, msg: Message):
        p = msg.payload if isinstance(msg.payload, dict) else {}
        path, key = str(p.get("path", "/")), str(p.get("api_key", ""))
        if self.version_header is not None:
            v = (p.get("headers") or {}).get(self.version_header) or self.default_version
            path = f"/{v}{path}" if v else path
        log, now = self.log, self.sim.now
        i = len(log.start)
        log.start.append(now)
        log.end.append(math.nan)
        log.api_key.append(key)
        log.route.append("")
        log.outcome.append("")
        log.partial.append(False)

        def finish(outcome: str, value: Any, partial: bool = False) -> None:
            log.end[i], log.outcome[i], log.partial[i] = self.sim.now, outcome, partial
            self.node.reply(msg, value, outcome)

        if not self._admit(key):
            finish("rejected", "429 rate limited")
            return NO_REPLY
        route = self.match(path)
        if route is None:
            finish("error", f"404 no route for {path!r}")
            return NO_REPLY
        log.route[i] = route.prefix
        body = {k: v for k, v in p.items() if k != "api_key"}
        if not route.aggregate:
            self.node.call(self._host(route.service), route.op, body, route.timeout_s,
                           lambda o, v: finish(o, v))
            return NO_REPLY
        parts: dict[str, Any] = {}
        missing: list[str] = []
        left = [len(route.aggregate)]

        def joined(service: str, outcome: str, value: Any) -> None:
            (parts.__setitem__(service, value) if outcome == "ok" else missing.append(service))
            left[0] -= 1
            if left[0] == 0:
                if not parts:
                    finish("error", {"parts": {}, "partial": True, "missing": sorted(missing)}, True)
                else:
                    finish("ok", {"parts": parts, "partial": bool(missing), "missing": sorted(missing)},
                           bool(missing))

        for s in route.aggregate:
            self.node.call(self._host(s), route.op, body, route.timeout_s,
                           lambda o, v, s=s: joined(s, o, v))
        return NO_REPLY

    def requests(self) -> pd.DataFrame:
        """One row per request the gateway received: start, end, api_key, route, outcome, partial."""
        import pandas as pd

        lg = self.log
        return pd.DataFrame({"start": lg.start, "end": lg.end, "api_key": lg.api_key, "route": lg.route,
                             "outcome": lg.outcome, "partial": lg.partial})
