"""During a dependency outage, what do users see under each caching policy: how available, and how stale?

Setup: an app reads ``keys`` keys (Zipf popularity, exponent ``zipf_s``) at ``rate`` req/s from an origin
(20 ms service, many workers) through an in-process cache (``models.services.cache``) with a TTL of
``ttl_s`` and a 500 ms origin timeout. The origin hangs (crashes silently) from ``outage_at`` for
``outage_s`` seconds. Policies (same random streams): no cache; a plain TTL cache; stale-while-revalidate
(RFC 5861 §3, window ``swr_s``); stale-if-error (RFC 5861 §4, window ``sie_s``); default responses (the
Hystrix/resilience4j static fallback); stale-if-error + default. Measured during the outage: the fraction
answered with data, with a default, or failed, and the age of the data served (time since the origin
produced it).

Lesson: without a cache (or with a plain TTL cache, once its entries expire) the outage is the users'
outage, and every read waits the full timeout. Stale-while-revalidate rides out only its short window.
Stale-if-error keeps serving every key that was cached — availability bought with staleness that grows
with the outage, bounded by ``ttl + stale_if_error`` — and a default answers the cold keys it cannot
cover: "available" then means "degraded", which is a product decision (Nygard, *Release It!*, 2nd ed.,
ch. 5 on fallbacks; Nottingham, RFC 5861, 2010).

Reproduces (``validate``): the TTL cache's share of outage reads answered, from renewal theory
(an entry is fresh a fraction ttl/(ttl + 1/r + fetch) of the time, with a uniform residual life:
sum_k r_k^2 ttl^2 / (2 (1 + r_k (ttl + fetch)))/(rate x outage)); and stale-if-error + default
answering every read (RFC 5861 §4 and a static fallback).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from models.resilience.pipeline import BareCaller
from models.services.cache import CacheConfig, CachingCaller, KeyedClient
from simulator import Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

POLICIES = ("no cache", "TTL cache", "stale-while-revalidate", "stale-if-error", "default response",
            "stale-if-error + default")


@parameters
class Params:
    duration_s: float = param(90.0, unit="s", gt=0, le=86_400, help="simulated time")
    rate: float = param(200.0, unit="req/s", gt=0, le=1e5, help="reads per second")
    keys: int = param(100, unit="keys", ge=1, le=100_000, help="distinct keys read")
    zipf_s: float = param(1.0, unit="exponent", ge=0, le=5, help="Zipf popularity exponent (0 = uniform)")
    ttl_s: float = param(5.0, unit="s", gt=0, le=86_400, help="cache TTL")
    swr_s: float = param(10.0, unit="s", ge=0, le=86_400, help="stale-while-revalidate window")
    sie_s: float = param(60.0, unit="s", ge=0, le=86_400, help="stale-if-error window")
    timeout_s: float = param(0.5, unit="s", gt=0, le=3600, help="origin call timeout")
    outage_at: float = param(30.0, unit="s", ge=0, help="when the origin goes down")
    outage_s: float = param(40.0, unit="s", gt=0, help="how long it stays down")
    window_s: float = param(1.0, unit="s", gt=0, le=3600, help="width of the time-series windows")

    def __post_init__(self) -> None:
        if not self.outage_at + self.outage_s < self.duration_s:
            raise ValueError(f"need outage_at + outage_s < duration_s, got {self.outage_at} + {self.outage_s} >= "
                             f"{self.duration_s}")


QUICK = Params(duration_s=32.0, rate=100.0, keys=50, ttl_s=2.0, swr_s=3.0, sie_s=20.0, outage_at=10.0,
               outage_s=15.0)


def _config(policy: str, p: Params) -> CacheConfig | None:
    return {"no cache": None,
            "TTL cache": CacheConfig(ttl_s=p.ttl_s),
            "stale-while-revalidate": CacheConfig(ttl_s=p.ttl_s, stale_while_revalidate_s=p.swr_s),
            "stale-if-error": CacheConfig(ttl_s=p.ttl_s, stale_if_error_s=p.sie_s),
            "default response": CacheConfig(ttl_s=p.ttl_s, use_default=True, default="default"),
            "stale-if-error + default": CacheConfig(ttl_s=p.ttl_s, stale_if_error_s=p.sie_s, use_default=True,
                                                    default="default")}[policy]


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary = [], []
    weights = [1.0 / (i + 1) ** p.zipf_s for i in range(p.keys)]
    t0, t1 = p.outage_at, p.outage_at + p.outage_s
    for policy in POLICIES:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.001, sigma=0.3))
        origin = sim.node("origin")
        origin.serve("get", lambda m, sim=sim: sim.now, service=Exponential(0.02), workers=1000)
        cfg = _config(policy, p)
        bare = BareCaller(p.timeout_s)
        caller = bare if cfg is None else CachingCaller(sim, cfg, bare, name="app")
        KeyedClient(sim, "app", "origin", caller, rate=p.rate, keys=p.keys, weights=weights)
        sim.faults.crash(at=t0, node="origin", recover_at=t1)
        sim.run(until=p.duration_s)
        df = sim.metrics.requests()
        df = df[df["start"] < p.duration_s - 2 * p.timeout_s]  # every request counted has ended
        if "cache_age_s" not in df:
            df = df.assign(cache_age_s=np.where(df["outcome"] == "ok", 0.0, np.nan))
        df = df.assign(data=df["outcome"] == "ok", default=df["outcome"] == "fallback",
                       window=(df["start"] // p.window_s) * p.window_s)
        g = df.groupby("window")
        series.append(pd.DataFrame({"data": g["data"].mean(), "answered": (g["data"].sum() + g["default"].sum())
                                    / g.size(), "age_p95_s": g["cache_age_s"].quantile(0.95)})
                      .reset_index().assign(policy=policy))
        during = df[(df["start"] >= t0) & (df["start"] < t1)]
        ages = during.loc[during["data"], "cache_age_s"]
        summary.append({
            "policy": policy,
            "answered_during": float((during["data"] | during["default"]).mean()),
            "data_during": float(during["data"].mean()),
            "default_during": float(during["default"].mean()),
            "failed_during": float(1 - (during["data"] | during["default"]).mean()),
            "age_mean_during_s": float(ages.mean()) if len(ages) else float("nan"),
            "age_max_during_s": float(ages.max()) if len(ages) else float("nan"),
            "p99_latency_during_s": float(during["latency"].quantile(0.99)),
            "data_before": float(df[df["start"] < t0 - p.timeout_s]["data"].mean()),
            "data_after": float(df[df["start"] >= t1 + p.timeout_s]["data"].mean()),
        })
    return {"series": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator.plots import policy_colors, shade_faults

    s, sm = results["series"], results["summary"].set_index("policy")
    colors = policy_colors(POLICIES)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    win = [(p.outage_at, p.outage_at + p.outage_s, "origin down")]
    for pol, d in s.groupby("policy", sort=False):
        axes[0].plot(d["window"], d["data"], color=colors[pol], label=pol, lw=1.6)
        if (d["answered"] > d["data"] + 1e-9).any():
            axes[0].plot(d["window"], d["answered"], color=colors[pol], ls="--", lw=1.2,
                         label=f"{pol}: data or default")
        axes[1].plot(d["window"], d["age_p95_s"], color=colors[pol], label=pol, lw=1.6)
    for ax, yl in ((axes[0], "share answered with data"), (axes[1], "p95 age of data served (s)")):
        shade_faults(ax, win)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(yl)
    axes[1].axhline(p.ttl_s + p.sie_s, color="grey", ls=":", lw=1)
    axes[1].text(0, p.ttl_s + p.sie_s, " ttl + stale_if_error", va="bottom", fontsize=8, color="grey")
    axes[0].legend(fontsize=7, loc="center left")
    ax = axes[2]
    y = np.arange(len(sm))
    ax.barh(y, sm["data_during"], color=[colors[x] for x in sm.index], label="with data")
    ax.barh(y, sm["default_during"], left=sm["data_during"], color="lightgrey", hatch="//", label="default")
    for i, pol in enumerate(sm.index):
        a = sm.loc[pol, "age_mean_during_s"]
        if sm.loc[pol, "answered_during"] == 0:
            ax.text(0.01, i, "all failed (timeouts)", va="center", fontsize=8)
        elif a == a:
            ax.text(min(sm.loc[pol, "answered_during"], 0.98), i, f" mean age {a:.1f} s", va="center", fontsize=8,
                    ha="right" if sm.loc[pol, "answered_during"] > 0.5 else "left")
    ax.set_yticks(y, sm.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of reads during the outage")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.suptitle("In an outage a cache buys availability with staleness: stale-if-error serves old data, "
                 "defaults cover the cold keys, TTL alone does not help")
    fig.tight_layout()
    return {"graceful_degradation": fig}


_ORIGIN_S, _NET_MEDIAN_S, _NET_SIGMA = 0.02, 0.001, 0.3  # run()'s origin service and network


def ttl_answered_during(p: Params) -> float:
    """Share of reads in the outage a plain TTL cache answers (renewal theory, outage >= ttl).

    Key k is read at r_k = rate w_k (Poisson). Its entry cycles: fresh for ttl, then empty until the
    next read (Exp(r_k)), then a fetch of mean d (origin service + RTT). At the crash, key k is fresh
    with probability ttl / (ttl + 1/r_k + d), and its residual freshness is uniform on (0, ttl): it
    answers r_k ttl/2 reads in expectation, and none after (no stale serving, origin down).
    """
    if p.outage_s < p.ttl_s:
        raise ValueError(f"ttl_answered_during needs outage_s >= ttl_s, got {p.outage_s} < {p.ttl_s}")
    w = np.array([1.0 / (i + 1) ** p.zipf_s for i in range(p.keys)])
    r = p.rate * w / w.sum()
    d = _ORIGIN_S + 2 * _NET_MEDIAN_S * math.exp(_NET_SIGMA ** 2 / 2)
    hits = np.sum(r * p.ttl_s / (p.ttl_s + 1 / r + d) * p.ttl_s / 2)
    return float(hits / (p.rate * p.outage_s))


def validate(quick: bool) -> list[Check]:
    """:func:`run`'s TTL cache against the renewal closed form of :func:`ttl_answered_during`; and the
    stale-if-error + default policy answering every read of the outage (RFC 5861 §4 serves a stale
    entry on error; the rest get the default after the timeout), against 1. Tolerance: 4 SE of
    independent seeds for the first; 0 for the second (no read can end otherwise).
    """
    p = QUICK
    seeds = range(4) if quick else range(60)
    # The closed form takes the crash at a random phase of each key's cycle; a hot key's cycle is
    # nearly periodic (ttl + 1/r + fetch), so a fixed crash time would pin its residual life. The
    # crash time is therefore stratified over one ttl across the seeds.
    sums = [run(dataclasses.replace(p, outage_at=p.outage_at + p.ttl_s * (s + 0.5) / len(seeds)),
                seed=s)["summary"].set_index("policy") for s in seeds]
    ttl = [x.loc["TTL cache", "answered_during"] for x in sums]
    both = [x.loc["stale-if-error + default", "answered_during"] for x in sums]
    m, ci = mean_ci95(ttl)
    se = float(np.std(ttl, ddof=1) / math.sqrt(len(ttl)))
    setup = (f"{p.keys} Zipf({p.zipf_s:g}) keys at {p.rate:g} req/s, ttl {p.ttl_s:g} s, origin down "
             f"{p.outage_s:g} s from {p.outage_at:g} s + a phase stratified over one ttl; {len(seeds)} seeds")
    return [
        Check("renewal theory: fresh fraction ttl/(ttl + 1/r + fetch), uniform residual life (Cox 1962)",
              setup, "TTL cache: share of outage reads answered", round(ttl_answered_during(p), 5), m, 4 * se,
              f"4 SE of {len(seeds)} seeds (iid formula: conservative for stratified crash phases)", ci),
        Check("RFC 5861 §4 (stale-if-error) + a static fallback (Nygard, Release It!, ch. 5)", setup,
              "stale-if-error + default: share of outage reads answered", 1.0, float(min(both)), 0.0,
              "deterministic: every read gets stale data or, after the timeout, the default (worst seed shown)"),
    ]
