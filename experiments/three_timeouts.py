"""Connect, request and idle timeouts: what does each protect against — and why does an idle-timeout mismatch give 502s?

Setup, part 1 (idle timeouts): a proxy (an AWS ALB, nginx, a client pool) keeps one persistent connection to a
backend and sends it Poisson requests at ``rate`` per second; it closes the connection after ``lb_idle_s``
idle (ALB default 60 s); the backend closes it after ``keep_alive_s`` idle (Node.js ``keepAliveTimeout``
default 5 s). A request the proxy writes on a connection the backend has already closed gets a TCP RST and
the user a 502 (``models.edge.keepalive``; the race with a one-way delay ``d``: the request fails iff its idle
gap ``g`` satisfies ``K - 2d < g <= I``). Arms, same seeds: the *mismatch* (I = 60 s > K = 5 s); the fix AWS
documents (the backend's keep-alive longer than the proxy's idle timeout: K = ``fixed_keep_alive_s`` > I);
the other fix (the proxy's idle timeout below the backend's: I = ``fixed_idle_s`` < K).

Closed form: idle gaps are exponential (Poisson arrivals, memoryless), so a request meets a closed connection
with ``q = e^{-r(K-2d)} - e^{-rI}`` given that one is open, and per request ``π = q / (1 + q)`` (the request
after a 502 opens a fresh connection); for small q, ``π ≈ q ≈ e^{-rK} - e^{-rI}``. It peaks at
``r* = ln(I/K) / (I - K)`` — a quiet service (a request every ~20 s) fails the most; a busy one rarely idles
for K. With I < K - 2d the window is empty: no 502 at any rate.

Setup, part 2 (connect vs request timeout): the client calls three hosts — healthy, *unreachable* (its packets
are dropped: a dead host or a blackholing firewall, no RST) and *slow* (accepts connections — the kernel
completes the handshake — but answers after ``slow_s``). Arms: a request timeout only (``request_timeout_s``),
plus a connect timeout (``connect_timeout_s``), plus a tight request timeout (``tight_request_s``).

Lesson: a connect timeout bounds the time to learn that a host is unreachable (one round trip is enough, so it
can be tight — but above the SYN retransmission time, 1 s on Linux, if a lost SYN should not fail a call); a
request timeout bounds the time a reachable host may take and must sit above its legitimate tail; an idle
timeout must be *shorter on the side that reuses the connection* than on the side that closes it, or quiet
traffic meets closed connections (AWS ALB docs, "Connection idle timeout"; RFC 9112 §9.6, "Tear-down":
a client "SHOULD ... be prepared to retry" when the server closes an idle connection).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.edge import KeepAliveBackend, KeepAlivePool, stale_connection_probability
from models.resilience import Pipeline, TimeoutConfig
from models.services import PoissonClient
from simulator import Constant, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check

ARMS = ("mismatch: LB idle > keep-alive", "fix: keep-alive > LB idle", "fix: LB idle < keep-alive")
TIMEOUT_ARMS = ("request timeout only", "+ connect timeout", "+ connect + tight request timeout")
HOSTS = ("healthy", "unreachable", "slow")


@parameters
class Params:
    lb_idle_s: float = param(60.0, unit="s", gt=0, le=86_400, help="the proxy's idle timeout I (ALB default 60 s)")
    keep_alive_s: float = param(5.0, unit="s", gt=0, le=86_400, help="the backend's keep-alive K (Node.js: 5 s)")
    fixed_keep_alive_s: float = param(65.0, unit="s", gt=0, le=86_400, help="fix 1: the backend's K, above I")
    fixed_idle_s: float = param(4.0, unit="s", gt=0, le=86_400, help="fix 2: the proxy's I, below K")
    rates: tuple[float, ...] = param((0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0), unit="req/s", gt=0,
                                     le=1000, help="request rates on the connection")
    requests: int = param(3000, unit="requests", ge=50, le=10_000_000, help="requests per rate point")
    one_way_ms: float = param(0.5, unit="ms", ge=0, le=10_000, help="one-way network delay d (constant)")
    connect_timeout_s: float = param(0.2, unit="s", gt=0, le=600, help="part 2: the connect timeout")
    request_timeout_s: float = param(10.0, unit="s", gt=0, le=3600, help="part 2: a generous request timeout")
    tight_request_s: float = param(1.0, unit="s", gt=0, le=3600, help="part 2: a tight request timeout")
    slow_s: float = param(5.0, unit="s", gt=0, le=3600, help="part 2: the slow host's response time")
    calls: int = param(20, unit="calls", ge=1, le=100_000, help="part 2: calls per host")

    def __post_init__(self) -> None:
        if not self.fixed_keep_alive_s > self.lb_idle_s:
            raise ValueError(f"fixed_keep_alive_s must exceed lb_idle_s ({self.lb_idle_s}), got "
                             f"{self.fixed_keep_alive_s}")
        if not self.fixed_idle_s < self.keep_alive_s:
            raise ValueError(f"fixed_idle_s must be below keep_alive_s ({self.keep_alive_s}), got {self.fixed_idle_s}")


QUICK = Params(rates=(0.005, 0.02, 0.05, 0.2, 1.0), requests=1500, calls=10)


def timers(p: Params, arm: str) -> tuple[float, float]:
    """(I, K): the proxy's idle timeout and the backend's keep-alive in this arm."""
    return {ARMS[0]: (p.lb_idle_s, p.keep_alive_s), ARMS[1]: (p.lb_idle_s, p.fixed_keep_alive_s),
            ARMS[2]: (p.fixed_idle_s, p.keep_alive_s)}[arm]


def peak_rate(p: Params) -> float:
    """The rate at which e^{-rK} - e^{-rI} peaks: ln(I/K) / (I - K)."""
    I, K = p.lb_idle_s, p.keep_alive_s
    return math.log(I / K) / (I - K)


def idle_point(p: Params, seed: int, arm: str, rate: float) -> dict:
    """One proxy connection at ``rate``: the 502 rate measured and from the closed form."""
    I, K = timers(p, arm)
    sim = Simulation(seed=seed)
    d = p.one_way_ms / 1e3
    sim.network(latency=Constant(d))
    backend = KeepAliveBackend(sim, "backend", keep_alive_s=K)
    pool = KeepAlivePool(sim, idle_timeout_s=I)
    PoissonClient(sim, "users", ["backend"], op="http", rate=rate, caller=pool, limit=p.requests)
    sim.run(until=p.requests / rate * 3 + 60)
    df = sim.metrics.requests()
    q, pi = stale_connection_probability(rate, K, I, d)
    return {"arm": arm, "rate": rate, "lb_idle_s": I, "keep_alive_s": K, "requests": len(df),
            "bad_gateway_rate": float((df.outcome == "error").mean()), "theory": pi, "q": q,
            "resets": backend.resets, "connects_per_request": pool.connects / max(1, len(df))}


def timeout_point(p: Params, seed: int, arm: str) -> list[dict]:
    """Part 2: the three hosts behind one timeout policy; how long each call takes to end, and how."""
    sim = Simulation(seed=seed)
    net = sim.network(latency=Constant(p.one_way_ms / 1e3))
    for h in HOSTS:
        sim.node(h).serve("get", service={"healthy": 0.005, "unreachable": 0.005, "slow": p.slow_s}[h], workers=1000)
    cfg = {TIMEOUT_ARMS[0]: TimeoutConfig(request_s=p.request_timeout_s),
           TIMEOUT_ARMS[1]: TimeoutConfig(request_s=p.request_timeout_s, connect_s=p.connect_timeout_s),
           TIMEOUT_ARMS[2]: TimeoutConfig(request_s=p.tight_request_s, connect_s=p.connect_timeout_s)}[arm]
    for h in HOSTS:
        # one pipeline (one connection cache) per client, so every client opens its own connection
        PoissonClient(sim, f"client-{h}", [h], rate=1.0, limit=p.calls, caller=Pipeline(sim, timeout=cfg, name=h))
    net.one_way([f"client-{HOSTS[1]}"], [HOSTS[1]])  # packets to the unreachable host vanish (no RST)
    sim.run(until=p.calls * 20 + p.request_timeout_s + p.slow_s + 10)
    df = sim.metrics.requests()
    rows = []
    for h in HOSTS:
        d = df[df.target == h]
        rows.append({"arm": arm, "host": h, "calls": len(d), "mean_time_s": float(d.latency.mean()),
                     "outcome": d.outcome.mode().iloc[0], "ok": float((d.outcome == "ok").mean()),
                     "theory_s": expected_time(p, arm, h)})
    return rows


def expected_time(p: Params, arm: str, host: str) -> float:
    """How long a call lasts: an unreachable host costs the connect timeout (or the request timeout without
    one); a slow host min(request timeout, its response time); the healthy host its work (plus a
    round trip, plus a handshake on the first call only)."""
    rtt = 2 * p.one_way_ms / 1e3
    req = p.tight_request_s if arm == TIMEOUT_ARMS[2] else p.request_timeout_s
    if host == "unreachable":
        return p.request_timeout_s if arm == TIMEOUT_ARMS[0] else p.connect_timeout_s
    if host == "slow":
        return min(req, p.slow_s + rtt)
    return 0.005 + rtt


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = [idle_point(p, seed, arm, r) for arm in ARMS for r in p.rates]
    t = [row for arm in TIMEOUT_ARMS for row in timeout_point(p, seed, arm)]
    return {"summary": pd.DataFrame(rows), "timeouts": pd.DataFrame(t)}


def validate(quick: bool) -> list[Check]:
    """The 502 rate at its peak rate against π = q / (1 + q), q = e^{-r(K-2d)} - e^{-rI}."""
    p = Params(requests=2000 if quick else 40_000)
    r = peak_rate(p)
    m = idle_point(p, 1, ARMS[0], r)
    se = math.sqrt(m["theory"] * (1 - m["theory"]) / m["requests"])
    f = idle_point(p, 1, ARMS[1], r)
    return [
        Check(source="AWS ALB docs (idle timeout vs the target's keep-alive); Poisson idle gaps",
              setup=f"LB idle {p.lb_idle_s:g} s > keep-alive {p.keep_alive_s:g} s, {r:.4f} req/s "
                    f"(the peak, ln(I/K)/(I-K)), d = {p.one_way_ms:g} ms, {p.requests} requests",
              quantity="502s per request: q/(1+q), q = e^{-r(K-2d)} - e^{-rI}", published=m["theory"],
              measured=m["bad_gateway_rate"], tolerance=4 * se,
              why="4 binomial standard errors (successive gaps are independent exponentials)"),
        Check(source="AWS ALB docs: backend keep-alive > LB idle timeout",
              setup=f"keep-alive {p.fixed_keep_alive_s:g} s > LB idle {p.lb_idle_s:g} s, same rate",
              quantity="502s per request (the window (K - 2d, I] is empty)", published=0.0,
              measured=f["bad_gateway_rate"], tolerance=0.0, why="exact: no gap can fall in an empty window"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby(["arm", "rate"], sort=False, as_index=False).mean(numeric_only=True)
    t = results["timeouts"].groupby(["arm", "host"], sort=False, as_index=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4.8), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1.4, 1]})
    grid = np.geomspace(min(p.rates), max(p.rates), 200)
    for arm, mk, ms in zip(ARMS, "oso", (6, 10, 5), strict=True):
        d = s[s.arm == arm]
        col = plots.color_for(f"idle:{arm}")
        I, K = timers(p, arm)
        a1.plot(d.rate, d.bad_gateway_rate * 100, mk, ms=ms, color=col, label=f"{arm} (I = {I:g} s, K = {K:g} s)")
        th = [stale_connection_probability(r, K, I, p.one_way_ms / 1e3)[1] * 100 for r in grid]
        a1.plot(grid, th, "-", color=col, lw=1)
    a1.axvline(peak_rate(p), color="0.5", ls=":", lw=1)
    a1.text(peak_rate(p), 2, " peak: ln(I/K)/(I-K)", fontsize=8)
    a1.set_xscale("log")
    a1.set_xlabel("requests per second on the connection")
    a1.set_ylabel("502s (% of requests)")
    a1.text(0.02, 0.97, "lines: closed form q / (1 + q),\nq = exp(-r(K - 2d)) - exp(-rI)", transform=a1.transAxes,
            fontsize=8, va="top")
    a1.set_title("idle timeouts: a request written on a connection the backend just closed", fontsize=9)
    a1.legend(fontsize=8, loc="upper right")
    w = 0.27
    for i, arm in enumerate(TIMEOUT_ARMS):
        d = t[t.arm == arm].set_index("host").reindex(list(HOSTS))
        x = np.arange(len(HOSTS)) + (i - 1) * w
        a2.bar(x, d.mean_time_s, w, color=plots.color_for(f"timeouts:{arm}"), label=arm)
        for xi, (_, r) in zip(x, d.iterrows(), strict=True):
            a2.text(xi, r.mean_time_s, f"{r.mean_time_s:.2g}s\n{'ok' if r.ok > 0.5 else 'fail'}", ha="center",
                    va="bottom", fontsize=7)
    a2.set_xticks(np.arange(len(HOSTS)), [f"{h} host" for h in HOSTS])
    a2.set_yscale("log")
    a2.set_ylabel("time until the call ends (s)")
    a2.set_title(f"connect timeout ({p.connect_timeout_s:g} s) vs request timeout ({p.request_timeout_s:g} s / "
                 f"{p.tight_request_s:g} s); slow host answers in {p.slow_s:g} s", fontsize=9)
    a2.legend(fontsize=8, loc="upper left")
    a2.set_ylim(1e-3, 2e3)
    fig.suptitle("Three timeouts, three jobs: an idle timeout longer on the side that reuses the connection gives 502s "
                 "(quiet traffic worst);\na connect timeout catches an unreachable host in one round trip, only a "
                 "request timeout bounds a slow one")
    return {"three_timeouts": fig}
