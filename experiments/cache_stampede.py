"""When hot keys expire, how hard does the cache hit the origin — and what prevents the stampede?

Setup: an app reads ``keys`` hot keys (uniformly, ``rate`` req/s in all) through an in-process cache with
TTL ``ttl_s`` in front of an origin with ``workers`` workers (``service_ms`` each) and a ``timeout_s``
origin timeout. The cache starts cold, so every key is filled — and expires — at about the same time.
Arms (same random streams): plain TTL; TTL jittered by ``jitter`` (uniform in ``ttl * (1 ± jitter)``);
request coalescing (single flight); coalescing + jitter; probabilistic early expiration (XFetch,
beta = 1, without coalescing). Measured after the first ``warmup_s`` seconds: peak origin concurrency,
origin calls per second, origin latency, and the share of reads that timed out.

Lesson: without coalescing each expiry of a key read at λ costs ``1 + λ L`` origin calls, ``L`` the time
until the refilling call returns (measured per burst: ``calls_per_refill_burst`` against
``theory_1_plus_lambda_window``) — and since ten keys' bursts queue together at the origin, later keys'
refills wait behind earlier keys' calls, ``L`` grows and so do the bursts: the stampede feeds itself into
timeouts. Jittered TTLs spread the keys' expiries (smaller, desynchronised
bursts) but leave each hot key's own stampede; coalescing makes it one call per key per expiry;
XFetch refreshes a hot key early, before readers see the expiry (Vattani, Chierichetti & Lowenstein,
"Optimal Probabilistic Cache Stampede Prevention", VLDB 2015; Go's ``singleflight``; nginx
``proxy_cache_lock``).

Reproduces (``validate``): XFetch's early refresh (Vattani et al. 2015): a read at time x before
expiry refreshes with probability exp(-x/(beta delta)), so with Poisson reads at λ the lead x is
Gumbel, E[x/(beta delta)] - ln(λ beta delta) = Euler's gamma = 0.5772; a plain TTL expiry costs
1 + λ E[window] calls; coalescing costs exactly one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.resilience.pipeline import BareCaller
from models.services.cache import CacheConfig, CachingCaller, KeyedClient, origin_concurrency, refill_bursts
from simulator import Constant, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("plain TTL", "jittered TTL", "coalescing", "coalescing + jitter", "XFetch (early refresh)")


@parameters
class Params:
    duration_s: float = param(40.0, unit="s", gt=0, le=86_400, help="simulated time")
    warmup_s: float = param(3.0, unit="s", ge=0, help="ignored at the start (the cold fill)")
    rate: float = param(1000.0, unit="req/s", gt=0, le=1e5, help="reads per second over all keys")
    keys: int = param(10, unit="keys", ge=1, le=10_000, help="hot keys")
    ttl_s: float = param(2.0, unit="s", gt=0, le=86_400, help="cache TTL")
    jitter: float = param(0.5, unit="fraction", ge=0, lt=1, help="TTL jitter (share of the TTL)")
    workers: int = param(16, unit="workers", ge=1, le=10_000, help="origin workers")
    service_ms: float = param(100.0, unit="ms", gt=0, le=60_000, help="origin service time per call")
    timeout_s: float = param(0.5, unit="s", gt=0, le=3600, help="origin call timeout")
    bin_s: float = param(0.05, unit="s", gt=0, le=60, help="bin of the origin-concurrency time series")

    def __post_init__(self) -> None:
        if not self.warmup_s < self.duration_s:
            raise ValueError(f"need warmup_s < duration_s, got {self.warmup_s} >= {self.duration_s}")


QUICK = Params(duration_s=12.0)


def _config(arm: str, p: Params) -> CacheConfig:
    return {"plain TTL": CacheConfig(ttl_s=p.ttl_s, coalesce=False),
            "jittered TTL": CacheConfig(ttl_s=p.ttl_s, coalesce=False, ttl_jitter=p.jitter),
            "coalescing": CacheConfig(ttl_s=p.ttl_s, coalesce=True),
            "coalescing + jitter": CacheConfig(ttl_s=p.ttl_s, coalesce=True, ttl_jitter=p.jitter),
            "XFetch (early refresh)": CacheConfig(ttl_s=p.ttl_s, coalesce=False, early_beta=1.0)}[arm]


def _burst_theory(cfg: CacheConfig, per_key: float, bursts: pd.DataFrame) -> float:
    """1 with coalescing (by design); 1 + λ E[window] without; none for early refresh (its refreshes are
    not misses: readers keep being served the cached value meanwhile)."""
    if cfg.coalesce:
        return 1.0
    if cfg.early_beta or not len(bursts):
        return float("nan")
    return 1 + per_key * float(bursts["window"].mean())


def _concurrency_series(calls: pd.DataFrame, p: Params) -> pd.DataFrame:
    """Origin calls outstanding at each bin edge (sampled), from the call log."""
    t = np.arange(0.0, p.duration_s, p.bin_s)
    end = calls["end"].fillna(np.inf).to_numpy()
    start = np.sort(calls["start"].to_numpy())
    ends = np.sort(end)
    return pd.DataFrame({"time": t, "outstanding": np.searchsorted(start, t, "right")
                         - np.searchsorted(ends, t, "right")})


def simulate(p: Params, seed: int, arm: str) -> tuple[Simulation, CachingCaller]:
    """One arm's run: the simulation (ended at ``duration_s``) and its cache (with the origin call log)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    origin = sim.node("origin")
    origin.serve("get", lambda m, sim=sim: sim.now, service=Constant(p.service_ms / 1e3), workers=p.workers)
    cache = CachingCaller(sim, _config(arm, p), BareCaller(p.timeout_s), name="app")
    KeyedClient(sim, "app", "origin", cache, rate=p.rate, keys=p.keys)
    sim.run(until=p.duration_s)
    return sim, cache


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary = [], []
    per_key = p.rate / p.keys
    for arm in ARMS:
        sim, cache = simulate(p, seed, arm)
        calls = cache.origin_calls_frame()
        df = sim.metrics.requests()
        series.append(_concurrency_series(calls, p).assign(arm=arm))
        late = calls[calls["start"] >= p.warmup_s]
        done = late[late["outcome"] != "in_flight"]
        reads = df[(df["start"] >= p.warmup_s) & (df["start"] < p.duration_s - p.timeout_s)]
        lat = done["latency"]
        bursts = refill_bursts(late)
        bursts = bursts[bursts["window"].notna()]
        mean_l = float(lat.mean()) if len(lat) else float("nan")
        summary.append({
            "arm": arm,
            "peak_origin_concurrency": origin_concurrency(late),
            "origin_calls_per_s": len(late) / (p.duration_s - p.warmup_s),
            "origin_calls_per_key_expiry": len(late) / max(1.0, (p.duration_s - p.warmup_s) / p.ttl_s * p.keys),
            # per refill burst: the calls of one key from a miss to the fill; without coalescing
            # E[calls] = 1 + λ E[window], the window set by the refilling call (not the mean origin
            # latency, which the burst's own queued calls inflate); coalescing makes it 1 by design
            "calls_per_refill_burst": float(bursts["calls"].mean()) if len(bursts) else float("nan"),
            "fill_window_mean_s": float(bursts["window"].mean()) if len(bursts) else float("nan"),
            "theory_1_plus_lambda_window": _burst_theory(_config(arm, p), per_key, bursts),
            "origin_latency_mean_s": mean_l,
            "origin_latency_p99_s": float(lat.quantile(0.99)) if len(lat) else float("nan"),
            "origin_timeouts": int((done["outcome"] == "timeout").sum()),
            "reads_failed": float((reads["outcome"] != "ok").mean()),
            "reads_waiting_p99_s": float(reads["latency"].quantile(0.99)),
        })
    return {"series": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator.plots import policy_colors

    s, sm = results["series"], results["summary"].set_index("arm")
    colors = policy_colors(ARMS)
    fig, axes = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [1.7, 1]})
    ax = axes[0]
    for arm, d in s.groupby("arm", sort=False):
        ax.plot(d["time"], d["outstanding"], color=colors[arm], label=arm, lw=1.2,
                drawstyle="steps-post")
    ax.axhline(p.workers, color="grey", ls=":", lw=1)
    ax.text(p.warmup_s, p.workers, f" origin workers ({p.workers})", ha="left", va="bottom", fontsize=8,
            color="grey")
    ax.axvspan(0, p.warmup_s, color="grey", alpha=0.1, lw=0)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, None)
    ax.text(p.warmup_s / 2, 0.5, "cold fill\n(not in summary)", ha="center", fontsize=7, color="grey")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("origin calls outstanding")
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[1]
    y = np.arange(len(sm))
    ax.barh(y, sm["peak_origin_concurrency"], color=[colors[a] for a in sm.index])
    for i, a in enumerate(sm.index):
        ax.text(sm.loc[a, "peak_origin_concurrency"], i,
                f" {sm.loc[a, 'peak_origin_concurrency']:.0f} peak, {sm.loc[a, 'origin_calls_per_s']:.0f} calls/s,"
                f" origin p99 {sm.loc[a, 'origin_latency_p99_s'] * 1e3:.0f} ms, {sm.loc[a, 'reads_failed']:.1%} reads"
                " failed", va="center", fontsize=8)
    ax.set_yticks(y, sm.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, sm["peak_origin_concurrency"].max() * 300)
    ax.set_xlabel(f"peak origin concurrency after {p.warmup_s:g} s")
    fig.suptitle("A hot key's expiry without coalescing sends 1 + λL calls to the origin and feeds on itself; "
                 "single flight or early refresh make it one call")
    fig.tight_layout()
    return {"cache_stampede": fig}


_SRC = "Vattani, Chierichetti & Lowenstein, 'Optimal Probabilistic Cache Stampede Prevention', VLDB 2015 (XFetch)"
EULER_GAMMA = 0.5772156649015329


def xfetch_leads(calls: pd.DataFrame, ttl_s: float, after_s: float) -> pd.DataFrame:
    """Per background (early) refresh started after ``after_s``: its lead before the entry's expiry and
    the entry's delta (the filling call's duration), from a call log (``origin_calls_frame``)."""
    rows = []
    for _key, g in calls.sort_values("start", kind="stable").groupby("key", sort=False):
        ok = g[g.outcome == "ok"]
        for r in g[g.background.astype(bool) & (g.start >= after_s)].itertuples():
            prev = ok[ok.end < r.start]
            if len(prev):
                last = prev.loc[prev.end.idxmax()]
                rows.append({"lead_s": float(last.end + ttl_s - r.start), "delta_s": float(last.end - last.start)})
    return pd.DataFrame(rows, columns=["lead_s", "delta_s"])


def validate(quick: bool) -> list[Check]:
    """Three rows on the experiment's own arms (:func:`simulate`).

    1. XFetch (beta = 1): a read x seconds before expiry refreshes iff -beta delta ln U >= x, i.e. with
       probability exp(-x/(beta delta)); Poisson reads at λ per key make the first refresh's lead a
       Gumbel variable, P(lead > x) = exp(-λ beta delta e^(-x/(beta delta))), so the mean of
       lead/(beta delta) - ln(λ beta delta) is Euler's gamma. Tolerance 4 SE of the refreshes (Gumbel SD
       pi/sqrt 6 each).
    2. Plain TTL: calls per refill burst = 1 + λ E[window] (reads arriving in the window see time
       averages; the window is set by the first, FIFO-queued call), window measured. Tolerance 4 SE of
       calls - 1 - λ window per burst.
    3. Coalescing: one origin call per burst (single flight), tolerance 0.
    """
    p = QUICK if quick else Params(duration_s=60.0)
    lam = p.rate / p.keys
    seeds = (1, 2) if quick else range(1, 9)
    leads, diffs, pub_burst, coal = [], [], [], []
    for seed in seeds:
        calls = simulate(p, seed, "XFetch (early refresh)")[1].origin_calls_frame()
        x = xfetch_leads(calls, p.ttl_s, p.warmup_s)
        leads.extend(x.lead_s / x.delta_s - np.log(lam * x.delta_s))
        late = simulate(p, seed, "plain TTL")[1].origin_calls_frame()
        b = refill_bursts(late[late.start >= p.warmup_s]).dropna()
        diffs.extend(b.calls - 1 - lam * b.window)
        pub_burst.append((b.calls.mean(), 1 + lam * b.window.mean()))
        late = simulate(p, seed, "coalescing")[1].origin_calls_frame()
        coal.extend(refill_bursts(late[late.start >= p.warmup_s]).dropna().calls)
    setup = (f"{p.keys} keys x {lam:g} reads/s, ttl {p.ttl_s:g} s, origin {p.workers} workers x "
             f"{p.service_ms:g} ms; {p.duration_s - p.warmup_s:g} s after warm-up x {len(seeds)} seeds")
    m, ci = mean_ci95(leads)
    se = float(np.std(leads, ddof=1) / math.sqrt(len(leads)))
    checks = [Check(_SRC, setup + f"; {len(leads)} early refreshes, beta = 1",
                    "XFetch lead: mean of lead/delta - ln(lambda delta) (Gumbel mean)", round(EULER_GAMMA, 4), m,
                    4 * se, f"4 SE of {len(leads)} refreshes", ci)]
    se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs)))
    calls_m = float(np.mean([c for c, _ in pub_burst]))
    pub = float(np.mean([t for _, t in pub_burst]))
    checks.append(Check("stampede closed form 1 + λ E[window] (PASTA: Wolff 1982)", setup + f"; {len(diffs)} "
                        "bursts", "plain TTL: origin calls per refill burst", round(pub, 4), calls_m, 4 * se,
                        f"4 SE of calls - 1 - λ window over {len(diffs)} bursts (the window is measured)"))
    checks.append(Check("Go singleflight / nginx proxy_cache_lock (request coalescing)", setup + f"; {len(coal)} "
                        "bursts", "coalescing: origin calls per refill burst", 1.0, float(np.mean(coal)), 0.0,
                        "deterministic: one flight per key"))
    return checks
