"""How slow is a user operation making N sequential calls over the internet — and what do composition and caching buy?

Setup: a user operation needs data from N backend services. Users (Poisson, ``rate`` per second)
reach the data centre over a WAN (one-way latency log-normal, median ``wan_ms``); inside it the
services talk over a LAN (median ``lan_ms``); each backend call costs ``work_ms`` (exponential)
of work. Three designs, same seeds:

- **chatty**: the client calls the N services one after the other over the WAN;
- **composed** (API composition / backend-for-frontend): the client makes one call to a BFF,
  which calls the N services in parallel over the LAN and answers when all have;
- **composed + cache**: the BFF keeps each composed answer for ``ttl_s`` (``keys`` distinct
  user views, requested uniformly), so a hit costs one WAN round trip and nothing behind it.

Lesson (Newman, *Building Microservices*, 2nd ed., ch. 4 "chatty communication" and ch. 14
"Backend for Frontend"; Richardson, *Microservices Patterns*, ch. 8 "API composition"; Fowler,
"Microservice Trade-Offs", 2015, on remote calls): the chatty operation costs
``N x (WAN round trip + work)`` — it grows linearly with N — and its tail grows too: the sum of
N random round trips has a p99 that rises with N (and one slow hop delays everything after it).
The composed call pays one WAN round trip plus the *maximum* of N LAN calls, which grows only
slowly with N. A cache in front removes even that for a fraction ``h`` of the operations:
per key, a miss opens a TTL window in which ``λ_k TTL`` hits arrive on average, so
``h = λ_k TTL / (1 + λ_k TTL)`` with ``λ_k = rate / keys``.

Reproduces (``validate``): the chatty operation's mean N x (WAN round trip + work), and the
TTL cache's hit ratio x/(1 + x), x = λ_k TTL (a renewal cycle: one miss, then x hits on average).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("chatty", "composed (BFF)", "composed + cache")
SIGMA = 0.5  # spread of one network hop (log-normal)
TIMEOUT_S = 10.0


@parameters
class Params:
    ns: tuple[int, ...] = param((1, 2, 5, 10, 20), unit="calls", ge=1, le=200, help="backend calls per user operation")
    wan_ms: float = param(20.0, unit="ms", gt=0, le=2000, help="median one-way user <-> data centre latency")
    lan_ms: float = param(0.5, unit="ms", gt=0, le=100, help="median one-way latency inside the data centre")
    work_ms: float = param(2.0, unit="ms", gt=0, le=1000, help="work per backend call (exponential mean)")
    rate: float = param(20.0, unit="ops/s", gt=0, le=2000, help="user operations per second (Poisson)")
    keys: int = param(50, unit="keys", ge=1, le=10**6, help="distinct user views (cache keys), uniform")
    ttl_s: float = param(5.0, unit="s", gt=0, le=86_400, help="how long the BFF keeps a composed answer")
    duration_s: float = param(60.0, unit="s", gt=0, le=86_400, help="simulated time users send operations")


QUICK = Params(ns=(1, 5, 20), duration_s=40.0)


def hit_ratio(p: Params) -> float:
    x = p.rate / p.keys * p.ttl_s
    return x / (1 + x)


def _one_call(p: Params, g: np.random.Generator, size, median_ms: float) -> np.ndarray:
    """Monte Carlo of one call: two one-way log-normal hops plus exponential work (seconds)."""
    m = median_ms / 1e3
    return m * np.exp(SIGMA * g.standard_normal(size)) + m * np.exp(SIGMA * g.standard_normal(size)) + \
        g.exponential(p.work_ms / 1e3, size)


def theory(p: Params, n: int, samples: int = 100_000) -> dict[str, float]:
    """Mean and p99 latency per design: chatty = sum of N WAN calls (mean ``N x (RTT + work)``
    exactly; p99 by Monte Carlo of the sum); composed = one WAN round trip + max of N LAN calls;
    cache = hit ``h``: one WAN round trip, miss: composed."""
    g = np.random.default_rng(np.random.SeedSequence(12345, spawn_key=(n,)))
    rtt_wan = 2 * p.wan_ms / 1e3 * math.exp(SIGMA ** 2 / 2)
    chatty = sum(_one_call(p, g, samples, p.wan_ms) for _ in range(n))
    m = p.wan_ms / 1e3
    wan_only = m * (np.exp(SIGMA * g.standard_normal(samples)) + np.exp(SIGMA * g.standard_normal(samples)))
    lan_max = np.max(np.stack([_one_call(p, g, samples, p.lan_ms) for _ in range(n)]), axis=0)
    composed = wan_only + lan_max
    h = hit_ratio(p)
    cached = np.where(g.random(samples) < h, wan_only, composed)
    return {"chatty_mean_s": n * (rtt_wan + p.work_ms / 1e3), "chatty_p99_s": float(np.quantile(chatty, 0.99)),
            "composed_mean_s": float(composed.mean()), "composed_p99_s": float(np.quantile(composed, 0.99)),
            "cache_mean_s": float(cached.mean()), "cache_p99_s": float(np.quantile(cached, 0.99)), "hit_ratio": h}


def _world(p: Params, seed: int, n: int, arm: str):
    sim = Simulation(seed=seed)
    net = sim.network(latency=LogNormal(median=p.lan_ms / 1e3, sigma=SIGMA))
    wan = LogNormal(median=p.wan_ms / 1e3, sigma=SIGMA)
    user = sim.node("user")
    svcs = [f"svc-{i}" for i in range(n)]
    for s in svcs:
        sim.node(s).serve("get", service=Exponential(p.work_ms / 1e3), workers=256)
    bff = sim.node("bff")
    for s in svcs:
        net.link("user", s, latency=wan)
    net.link("user", "bff", latency=wan)
    cache: dict[int, float] = {}  # key -> expiry
    stats = {"hits": 0, "lookups": 0, "backend_calls": 0}

    def compose(msg):
        key = msg.payload
        if arm == ARMS[2]:
            stats["lookups"] += 1
            if cache.get(key, -1.0) > sim.now:
                stats["hits"] += 1
                return "cached"
        left = [n]
        failed = []

        def joined(outcome, _v):
            left[0] -= 1
            if outcome != "ok":
                failed.append(outcome)
            if left[0] == 0:
                if not failed and arm == ARMS[2]:
                    cache[key] = sim.now + p.ttl_s
                bff.reply(msg, None, "error" if failed else "ok")

        stats["backend_calls"] += n
        for s in svcs:
            bff.call(s, "get", None, TIMEOUT_S, joined)
        return NO_REPLY

    bff.on("op", compose)
    gap = sim.sampler(Exponential(1 / p.rate), "users.arrivals")
    pick = sim.uniforms("users.keys")
    log = sim.metrics

    def arrive():
        if sim.now >= p.duration_s:
            return
        rid = log.begin("user", "bff" if arm != ARMS[0] else svcs[0], "op", sim.now)
        key = int(pick() * p.keys)
        if arm == ARMS[0]:
            def step(i):
                def back(outcome, _v):
                    if outcome != "ok":
                        log.end(rid, sim.now, outcome, i + 1)
                    elif i + 1 < n:
                        step(i + 1)
                    else:
                        log.end(rid, sim.now, "ok", n)
                stats["backend_calls"] += 1
                user.call(svcs[i], "get", None, TIMEOUT_S, back)
            step(0)
        else:
            user.call("bff", "op", key, TIMEOUT_S, lambda o, _v: log.end(rid, sim.now, o, 1))
        sim.at(gap(), arrive)

    sim.at(gap(), arrive)
    return sim, stats


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, lat = [], []
    for n in p.ns:
        th = theory(p, n)
        for arm, key in zip(ARMS, ("chatty", "composed", "cache"), strict=True):
            sim, stats = _world(p, seed, n, arm)
            sim.run(until=p.duration_s + TIMEOUT_S + 1)
            req = sim.metrics.requests()
            ok = req[req.outcome == "ok"]
            rows.append({"arm": arm, "n": n, "operations": len(req), "ok": len(ok),
                         "latency_mean_ms": float(ok.latency.mean() * 1e3),
                         "latency_mean_theory_ms": th[f"{key}_mean_s"] * 1e3,
                         "latency_p99_ms": float(ok.latency.quantile(0.99) * 1e3),
                         "latency_p99_theory_ms": th[f"{key}_p99_s"] * 1e3,
                         "backend_calls_per_op": stats["backend_calls"] / len(req),
                         "hit_ratio": stats["hits"] / stats["lookups"] if stats["lookups"] else math.nan,
                         "hit_ratio_theory": th["hit_ratio"] if arm == ARMS[2] else math.nan})
            lat.append(ok[["latency"]].assign(arm=arm, n=n))
    return {"summary": pd.DataFrame(rows), "latencies": pd.concat(lat, ignore_index=True)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["arm", "n"], as_index=False).mean(numeric_only=True)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    for arm, g in s.groupby("arm", sort=False):
        c = plots.color_for(arm)
        axes[0].plot(g.n, g.latency_mean_ms, "o", color=c, label=f"{arm}: measured")
        axes[0].plot(g.n, g.latency_mean_theory_ms, "--", color=c, lw=1, label=f"{arm}: theory")
        axes[1].plot(g.n, g.latency_p99_ms, "o", color=c, label=f"{arm}: measured")
        axes[1].plot(g.n, g.latency_p99_theory_ms, "--", color=c, lw=1, label=f"{arm}: theory (Monte Carlo)")
    for arm, g in s.groupby("arm", sort=False):
        axes[2].plot(g.n, g.backend_calls_per_op, "o-", color=plots.color_for(arm), label=arm)
    axes[2].plot(list(p.ns), [n * (1 - hit_ratio(p)) for n in p.ns], "k--", lw=1, label="theory cache: N (1 - h)")
    axes[2].set_title("backend load: the cache's real gain", fontsize=9)
    axes[2].set_xlabel("backend calls per user operation N")
    axes[2].set_ylabel("backend calls per user operation")
    axes[2].legend(fontsize=7)
    axes[0].set_title("mean: chatty = N x (WAN round trip + work)", fontsize=9)
    axes[1].set_title("p99: the sum of N random round trips vs one WAN trip + the max of N LAN calls", fontsize=9)
    for ax, what in zip(axes[:2], ("mean", "p99"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("backend calls per user operation N")
        ax.set_ylabel(f"user operation latency, {what} (ms)")
        ax.set_xticks(list(p.ns), [str(n) for n in p.ns])
        ax.legend(fontsize=7)
    fig.suptitle(f"N sequential calls over the WAN cost N round trips, mean and tail; one composed call pays one "
                 f"(plus the slowest of N cheap LAN calls);\na cache (hit ratio {hit_ratio(p):.2f}) saves little more "
                 f"latency once the WAN dominates, but spares the backends that fraction of the calls")
    return {"chatty_services": fig}


def validate(quick: bool) -> list[Check]:
    """:func:`_world`'s chatty design at N = 20 against N x (RTT + work) (exact: a sum of N independent
    calls, no queueing with 256 workers), tolerance 4 SE of the operations (independent); and the
    cache's hit ratio against x/(1 + x), tolerance 4 SE of seeds (hits within a key's TTL window are
    correlated, so seeds, not lookups, are the independent units).
    """
    p = QUICK
    n = 20
    dur = 20.0 if quick else 120.0
    reps = 3 if quick else 10
    q = Params(ns=(n,), duration_s=dur)
    lat = []
    for seed in range(reps):
        sim, _ = _world(q, seed, n, ARMS[0])
        sim.run(until=dur + TIMEOUT_S + 1)
        req = sim.metrics.requests()
        lat.extend(1e3 * req[req.outcome == "ok"].latency)
    rtt = 2 * p.wan_ms * math.exp(SIGMA ** 2 / 2)
    m, ci = mean_ci95(lat)
    checks = [Check("Fowler, 'Microservice Trade-Offs' (2015): remote calls in sequence; mean of a sum",
                    f"chatty, N = {n}, WAN median {p.wan_ms:g} ms one way (sigma {SIGMA}), work {p.work_ms:g} ms; "
                    f"{len(lat)} operations", "mean latency (ms), N x (WAN round trip + work)",
                    round(n * (rtt + p.work_ms), 3), m, 4 * float(np.std(lat, ddof=1) / math.sqrt(len(lat))),
                    f"4 SE of {len(lat)} independent operations", ci)]
    hits = []
    # The renewal ratio is a stationary one: from a cold start, each key's first cycle begins at its
    # first read, which biases a run counted from t = 0 low (0.659 over QUICK's 40 s). Lookups are
    # therefore counted after a warm-up of a few cycles (mean cycle TTL + keys/rate = 7.5 s).
    warm = 20.0
    cq = Params(ns=(1,), duration_s=120.0 if quick else 600.0)
    for seed in range(4 if quick else 20):
        sim, stats = _world(cq, seed, 1, ARMS[2])
        sim.run(until=warm)
        h0, l0 = stats["hits"], stats["lookups"]
        sim.run(until=cq.duration_s + TIMEOUT_S + 1)
        hits.append((stats["hits"] - h0) / (stats["lookups"] - l0))
    m, ci = mean_ci95(hits)
    x = p.rate / p.keys * p.ttl_s
    checks.append(Check("TTL cache renewal: one miss then lambda_k TTL hits per cycle, h = x/(1 + x)",
                        f"{p.keys} uniform keys, {p.rate:g} ops/s, TTL {p.ttl_s:g} s (x = {x:g}), "
                        f"{warm:g}-{cq.duration_s:g} s x {len(hits)} seeds", "composed + cache: hit ratio",
                        round(hit_ratio(p), 5), m, 4 * float(np.std(hits, ddof=1) / math.sqrt(len(hits))),
                        f"4 SE of {len(hits)} seeds", ci))
    return checks
