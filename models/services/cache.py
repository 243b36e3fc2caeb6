"""A TTL cache in front of a service: a caching ``Caller`` (in-process cache) or a caching proxy node.

Semantics, per key (a payload dict's ``"key"``, else the op):

- **TTL** (``ttl_s``): a value fetched at ``t`` is *fresh* until ``t + ttl`` (``ttl`` optionally jittered
  by ``ttl_jitter``: uniform in ``[(1 - j) ttl, (1 + j) ttl]``, mean ``ttl``, so keys filled together do not
  expire together).
- **stale-while-revalidate** (RFC 5861 §3, Nottingham 2010): for ``stale_while_revalidate_s`` after
  expiry a request is answered at once with the stale value while *one* background fetch refreshes it.
- **stale-if-error** (RFC 5861 §4): when the origin fails (error, timeout, unreachable, …) the cached
  value is served instead, provided it has been stale for at most ``stale_if_error_s``; so a
  served value is never older than ``ttl_s (1 + ttl_jitter) + stale_if_error_s`` (its *age*, since the
  origin made it).
- **default responses** (``default``): answered as ``fallback`` when the origin fails and nothing
  usable is cached (the "static fallback" of Hystrix / resilience4j).
- **request coalescing** (``coalesce``, Go's ``singleflight``, Varnish/nginx ``proxy_cache_lock``):
  concurrent misses for one key wait on one origin call. Without it every miss during the origin's
  latency ``L`` calls the origin: ``1 + λ L`` calls per expiry for a key read at rate λ — the
  *cache stampede* (dog-piling).
- **probabilistic early expiration** (``early_beta``, "XFetch" of Vattani, Chierichetti & Lowenstein,
  "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): a hit refreshes the key in the
  background when ``now - delta * beta * ln(U) >= expiry`` (``delta``: the last fetch's duration), so
  one early request usually refreshes before the expiry and nobody sees a miss.
- **negative caching** (``negative_ttl_s``, RFC 2308 for DNS): an origin "not found" (outcome
  ``error`` with value :data:`NOT_FOUND`, like an HTTP 404) is cached too, so a missing key costs at most
  one origin call per negative TTL.

No eviction (an unbounded cache): entries stay until overwritten; freshness is checked on use.
Outcomes to the caller: ``ok`` (fresh, stale-while-revalidate or stale-if-error value), ``fallback``
(default response), or the origin's failure. Per request (when a ``rid`` is given) the metric columns
``cache`` (a code in :data:`CACHE_RESULTS`) and ``cache_age_s`` (age of the value served, NaN if none)
are recorded; every origin call is logged (:meth:`CachingCaller.origin_calls_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.resilience.pipeline import BareCaller, Caller
from simulator import NO_REPLY, Exponential, Message, Node, Simulation

if TYPE_CHECKING:
    import pandas as pd

Callback = Callable[[str, Any], None]
NOT_FOUND = "not found"
"""An origin replying ``error`` with this value says the key does not exist (cacheable: negative caching)."""
CACHE_RESULTS = ("miss", "hit", "stale_while_revalidate", "stale_if_error", "default", "negative_hit",
                 "coalesced", "error")
_CODE = {r: i for i, r in enumerate(CACHE_RESULTS)}
_FAILED = frozenset({"error", "timeout", "unreachable", "crashed", "rejected", "short_circuited"})


def _seconds(name: str, v: float, *, positive: bool = False) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 if positive
                                                                                         else v >= 0)
    if not ok:
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} seconds (finite), got {v!r}")


@dataclass(frozen=True)
class CacheConfig:
    """``ttl_s``: freshness lifetime; ``stale_while_revalidate_s`` / ``stale_if_error_s``: RFC 5861 windows
    after expiry (0 = off); ``negative_ttl_s``: lifetime of a cached "not found" (0 = off); ``coalesce``:
    single flight per key; ``ttl_jitter``: fraction j in [0, 1), TTLs uniform in [(1 - j) ttl, (1 + j) ttl];
    ``early_beta``: XFetch's beta (0 = off; 1 is Vattani et al.'s optimum); ``default``: the response when
    the origin fails and nothing usable is cached (``use_default`` turns it on, since None is a value)."""

    ttl_s: float
    stale_while_revalidate_s: float = 0.0
    stale_if_error_s: float = 0.0
    negative_ttl_s: float = 0.0
    coalesce: bool = True
    ttl_jitter: float = 0.0
    early_beta: float = 0.0
    use_default: bool = False
    default: Any = None

    def __post_init__(self) -> None:
        _seconds("ttl_s", self.ttl_s, positive=True)
        for name in ("stale_while_revalidate_s", "stale_if_error_s", "negative_ttl_s"):
            _seconds(name, getattr(self, name))
        for name in ("coalesce", "use_default"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        j = self.ttl_jitter
        if not (isinstance(j, (int, float)) and 0 <= j < 1):
            raise ValueError(f"ttl_jitter must be a fraction in [0, 1), got {j!r}")
        b = self.early_beta
        if not (isinstance(b, (int, float)) and math.isfinite(b) and 0 <= b <= 100):
            raise ValueError(f"early_beta must be in [0, 100] (0 = off), got {b!r}")


class _Entry:
    __slots__ = ("value", "fetched_at", "expires_at", "negative", "delta")

    def __init__(self, value, fetched_at: float, expires_at: float, negative: bool, delta: float) -> None:
        self.value, self.fetched_at, self.expires_at = value, fetched_at, expires_at
        self.negative, self.delta = negative, delta


def cache_key(op: str, payload: Any) -> Any:
    """The key a request reads: ``payload["key"]`` if the payload is a dict holding one, else ``op``."""
    if isinstance(payload, dict) and "key" in payload:
        return payload["key"]
    return op


class CachingCaller:
    """A cache in front of ``inner`` (a ``BareCaller`` with the origin timeout, or a resilience
    ``Pipeline``); itself a ``Caller``, so a workload or a service uses it like any other."""

    def __init__(self, sim: Simulation, config: CacheConfig, inner: Caller | None = None, *,
                 name: str = "cache") -> None:
        self.sim, self.cfg, self.name = sim, config, name
        self.inner = inner or BareCaller()
        self.entries: dict[Any, _Entry] = {}
        self._flights: dict[Any, list[tuple[Callback, int | None, str]]] = {}  # key -> waiting misses
        self._refreshing: set[Any] = set()
        self._u = sim.uniforms(f"cache.{name}.jitter")
        self._log = sim.metrics
        self._log.column("cache", "b", -1)
        self._log.column("cache_age_s", "d", math.nan)
        self.counts = dict.fromkeys(CACHE_RESULTS, 0)
        self.inflight = 0
        self.peak_inflight = 0
        # origin call log, as columns: start, end, key, outcome, background
        self._o_start: list[float] = []
        self._o_end: list[float] = []
        self._o_key: list[Any] = []
        self._o_outcome: list[str] = []
        self._o_background: list[bool] = []

    # -- the Caller protocol ---------------------------------------------------------------------
    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Answer ``op`` on ``dst`` from the cache or the origin and call
        ``callback(outcome, value)`` once: fresh hit, stale-while-revalidate and stale-if-error
        (RFC 5861), coalesced or plain miss, XFetch early refresh (VLDB 2015); ``deadline``
        (absolute seconds) bounds the origin call.
        """
        now = self.sim.now
        cfg = self.cfg
        key = cache_key(op, payload)
        e = self.entries.get(key)
        if e is not None and now < e.expires_at:
            if cfg.early_beta > 0 and key not in self._flights and key not in self._refreshing and \
                    now - e.delta * cfg.early_beta * math.log(1.0 - self._u()) >= e.expires_at:
                self._fetch(node, dst, op, payload, key, deadline, background=True)
            self._serve(callback, rid, "negative_hit" if e.negative else "hit", e)
            return
        if e is not None and not e.negative and now < e.expires_at + cfg.stale_while_revalidate_s:
            if key not in self._flights and key not in self._refreshing:
                self._fetch(node, dst, op, payload, key, deadline, background=True)
            self._serve(callback, rid, "stale_while_revalidate", e)
            return
        waiting = self._flights.get(key)
        if cfg.coalesce and waiting is not None:
            waiting.append((callback, rid, "coalesced"))
            return
        if waiting is None:
            self._flights[key] = waiting = []
        me = (callback, rid, "miss")
        waiting.append(me)
        self._fetch(node, dst, op, payload, key, deadline, background=False, mine=me)

    # -- internals -------------------------------------------------------------------------------
    def _serve(self, callback: Callback, rid, result: str, e: _Entry | None, outcome: str = "ok",
               value: Any = None) -> None:
        self.counts[result] += 1
        if rid is not None:
            self._log.set(rid, "cache", _CODE[result])
            if e is not None:
                self._log.set(rid, "cache_age_s", self.sim.now - e.fetched_at)
        if e is not None:
            callback("error", NOT_FOUND) if e.negative else callback(outcome, e.value)
        else:
            callback(outcome, value)

    def _ttl(self, ttl: float) -> float:
        j = self.cfg.ttl_jitter
        return ttl * (1.0 + j * (2.0 * self._u() - 1.0)) if j > 0 else ttl

    def _fetch(self, node: Node, dst: str, op: str, payload: Any, key: Any, deadline, *, background: bool,
               mine: tuple | None = None) -> None:
        started = self.sim.now
        i = len(self._o_start)
        self._o_start.append(started)
        self._o_end.append(math.nan)
        self._o_key.append(key)
        self._o_outcome.append("in_flight")
        self._o_background.append(background)
        self.inflight += 1
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        if background:
            self._refreshing.add(key)
        coalesced = self.cfg.coalesce

        def done(outcome: str, value: Any) -> None:
            now = self.sim.now
            self.inflight -= 1
            self._o_end[i] = now
            self._o_outcome[i] = outcome
            cfg = self.cfg
            if outcome == "ok":
                self.entries[key] = _Entry(value, now, now + self._ttl(cfg.ttl_s), False, now - started)
            elif outcome == "error" and value == NOT_FOUND and cfg.negative_ttl_s > 0:
                self.entries[key] = _Entry(value, now, now + self._ttl(cfg.negative_ttl_s), True, now - started)
            if background:
                self._refreshing.discard(key)
                return
            if coalesced:
                waiters = self._flights.pop(key, [])
            else:  # each miss waits only for its own origin call
                waiters = [mine]
                rest = self._flights.get(key)
                if rest is not None:
                    rest.remove(mine)
                    if not rest:
                        del self._flights[key]
            for cb, rid, how in waiters:
                self._answer(cb, rid, how, key, outcome, value)

        self.inner.call(node, dst, op, payload, done, deadline=deadline)

    def _answer(self, cb: Callback, rid, how: str, key, outcome: str, value: Any) -> None:
        now = self.sim.now
        e = self.entries.get(key)
        if outcome == "ok" or (outcome == "error" and value == NOT_FOUND):
            self._serve(cb, rid, how, None, outcome, value)
            if rid is not None and outcome == "ok":
                self._log.set(rid, "cache_age_s", 0.0)  # fresh from the origin
            return
        cfg = self.cfg
        if outcome in _FAILED and cfg.stale_if_error_s > 0 and e is not None and not e.negative \
                and now <= e.expires_at + cfg.stale_if_error_s:
            self._serve(cb, rid, "stale_if_error", e)
        elif outcome in _FAILED and cfg.use_default:
            self._serve(cb, rid, "default", None, "fallback", cfg.default)
        else:
            self._serve(cb, rid, "error", None, outcome, value)

    # -- views -----------------------------------------------------------------------------------
    def origin_calls_frame(self) -> pd.DataFrame:
        """One row per origin call: start, end, latency, key, outcome, background (a refresh no one waited on)."""
        import pandas as pd

        df = pd.DataFrame({"start": self._o_start, "end": self._o_end, "key": self._o_key,
                           "outcome": self._o_outcome, "background": self._o_background})
        df["latency"] = df["end"] - df["start"]
        return df

    @property
    def origin_calls(self) -> int:
        """How many origin calls were made so far, background refreshes included."""
        return len(self._o_start)


def refill_bursts(calls: pd.DataFrame) -> pd.DataFrame:
    """Group a call log (:meth:`CachingCaller.origin_calls_frame`) into refill bursts, one row per burst.

    A key's burst starts with a miss that calls the origin and lasts until the first call of the burst
    that succeeds returns (the fill): every read of the key that misses meanwhile calls the origin too.
    Columns: ``key``, ``start``, ``window`` (first call's start to the fill; NaN if nothing filled) and
    ``calls``. Without coalescing, reads arriving at rate λ during the window make
    ``E[calls] = 1 + λ E[window]`` (Poisson arrivals see time averages) — the stampede's closed form,
    with the window set by the refilling call, not by the mean origin latency, which the burst's own
    queued calls inflate. Background refreshes (nobody waited) are left out.
    """
    import pandas as pd

    c = calls[~calls["background"].astype(bool)].sort_values(["key", "start"], kind="stable")
    rows = []
    for key, g in c.groupby("key", sort=False):
        start, end = g["start"].to_numpy(), g["end"].to_numpy()
        ok = (g["outcome"] == "ok").to_numpy()
        i, n = 0, len(g)
        while i < n:
            fill, j = math.inf, i
            while j < n and start[j] < fill:
                if ok[j] and end[j] == end[j]:
                    fill = min(fill, end[j])
                j += 1
            rows.append((key, start[i], fill - start[i] if fill < math.inf else math.nan, j - i))
            i = j
    return pd.DataFrame(rows, columns=["key", "start", "window", "calls"])


def origin_concurrency(calls: pd.DataFrame, t0: float = -math.inf, t1: float = math.inf) -> int:
    """Peak number of origin calls outstanding at once, over calls starting in [t0, t1)
    (calls still in flight count until the end)."""
    c = calls[(calls["start"] >= t0) & (calls["start"] < t1)]
    ev = sorted([(s, 1) for s in c["start"]] + [(e, -1) for e in c["end"] if e == e], key=lambda x: (x[0], x[1]))
    peak = cur = 0
    for _, d in ev:
        cur += d
        peak = max(peak, cur)
    return peak


class CacheProxy:
    """A caching reverse proxy node (a Varnish / CDN edge): requests for ``op`` are answered from its
    :class:`CachingCaller` in front of ``origin``; a default response is replied as ``ok``."""

    def __init__(self, sim: Simulation, name: str, origin: str, config: CacheConfig, *,
                 inner: Caller | None = None, ops: Sequence[str] = ("get",)) -> None:
        self.node = sim.node(name)
        self.origin = origin
        self.cache = CachingCaller(sim, config, inner, name=name)
        for op in ops:
            self.node.on(op, self._handle)

    def _handle(self, msg: Message):
        node = self.node

        def reply(outcome: str, value: Any) -> None:
            node.reply(msg, value, "ok" if outcome == "fallback" else outcome)

        self.cache.call(node, self.origin, msg.op, msg.payload, reply)
        return NO_REPLY


class KeyedClient:
    """Open-loop Poisson reads of ``keys`` keys (``key-0`` … by ``weights``, uniform if None) at ``rate``
    per second through ``caller`` to ``target``, recorded in ``sim.metrics`` (the op names the key)."""

    def __init__(self, sim: Simulation, name: str, target: str, caller: Caller, *, rate: float, keys: int = 1,
                 weights: Sequence[float] | None = None, start_at: float = 0.0, stop_at: float = math.inf,
                 op: str = "get") -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be > 0 requests/s, got {rate!r}")
        if not (isinstance(keys, int) and keys >= 1):
            raise ValueError(f"keys must be an integer >= 1, got {keys!r}")
        w = [1.0] * keys if weights is None else [float(x) for x in weights]
        if len(w) != keys or min(w) < 0 or sum(w) <= 0:
            raise ValueError(f"weights must be {keys} non-negative numbers with a positive sum, got {weights!r}")
        total, acc, self._cum = sum(w), 0.0, []
        for x in w:
            acc += x / total
            self._cum.append(acc)
        self.sim, self.name, self.target, self.caller, self.op = sim, name, target, caller, op
        self.node = sim.nodes.get(name) or sim.node(name)
        self.stop_at = stop_at
        self.keys = [f"key-{i}" for i in range(keys)]
        self._gap = sim.sampler(Exponential(1.0 / rate), f"client.{name}.arrivals")
        self._pick = sim.uniforms(f"client.{name}.keys")
        sim.at(start_at + self._gap(), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if sim.now >= self.stop_at:
            return
        u = self._pick()
        i = next((j for j, c in enumerate(self._cum) if u < c), len(self._cum) - 1)
        key = self.keys[i]
        log = sim.metrics
        rid = log.begin(self.name, self.target, key, sim.now)
        self.caller.call(self.node, self.target, self.op, {"key": key},
                         lambda o, v: log.end(rid, sim.now, o), rid=rid)
        sim.at(self._gap(), self._arrive)
