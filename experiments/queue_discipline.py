"""Which queue discipline lets a server recover from a retry storm, and at what cost in tail latency?

Setup (the metastable retry storm of Bronson et al., "Metastable Failures in Distributed Systems",
HotOS 2021, without the database's thrashing): open-loop Poisson clients at ``load`` of a server's
capacity, each request an attempt plus ``attempts - 1`` immediate retries after a ``timeout_s``
timeout (or after a rejection). The server (``node.serve``: ``workers`` workers, exponential service,
``queue_limit`` waiting) keeps working on attempts whose client has given up. A network latency
``spike`` (+``spike_extra_s`` per message for ``spike_s``) makes every attempt time out for a while;
once the queue's wait exceeds the timeout, every attempt it serves is already abandoned: goodput 0,
every request sends all its attempts, and the server receives ``attempts x load`` > capacity, so the
queue never drains — the storm sustains itself after the spike is gone. The arms differ only in
the server's queue discipline (same seeds, same streams): FIFO; adaptive LIFO (newest first while
more than ``lifo_above`` wait: Maurer, "Fail at Scale", ACM Queue 2015); CoDel (head drop once the
wait has stayed above ``codel_target_s`` for ``codel_interval_s``: Nichols & Jacobson, ACM Queue
2012, RFC 8289); and deadline dropping (the server drops waiting attempts older than the client
timeout). Dropped attempts are answered ``rejected`` (the client may retry them at once).

Lesson: under FIFO the storm outlives the spike: after a 3 s spike at 70% load, under 1% of the
later requests succeed (6 seeds), each sending all its attempts. Every other discipline recovers
(6 of 6 seeds), by two different means. Adaptive LIFO serves attempts whose clients are still
waiting, so goodput is back the moment the spike ends, with no drop and the shortest tail after it
(p99 of ok requests ~0.3 s); its costs are unfairness (the stale bottom of the stack waits until
its clients have left, and is still served: wasted work) and a longer tail in normal bursts
(p99 ~0.13 s vs ~0.11 s). CoDel and deadline dropping shed the stale head instead: CoDel drains the
queue within ~3 s with ~400 drops (p99 ~0.6 s after the spike) and sheds a few requests in normal
bursts (wait above 5 ms for 100 ms with 20 ms service); deadline dropping drops only attempts that
are already abandoned (~200), but the requests that had to retry make its tail the longest (p99
~1.9 s = a timeout plus a retry). (Figures: full preset, seeds 1-6; the shorter QUICK run weights
the recovery transient more, so its LIFO and CoDel tails are both near the timeout.)

Reproduces (``validate``): with no spike every discipline is M/M/c at first, so the FIFO server's
median and p99 latency are the M/M/c sojourn quantiles (Erlang C waiting + exponential service);
after the spike under FIFO, the metastable state of Bronson et al. (HotOS 2021): every request
sends all its attempts and none succeeds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from models.resilience import RetryPolicy
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("fifo", "adaptive_lifo", "codel", "deadline")
_LABEL = {"fifo": "FIFO", "adaptive_lifo": "adaptive LIFO", "codel": "CoDel", "deadline": "deadline drop"}


@parameters
class Params:
    duration_s: float = param(60.0, unit="s", gt=0, le=3600, help="simulated time (clients stop then)")
    load: float = param(0.7, unit="fraction of capacity", gt=0, le=2, help="offered load (first attempts)")
    capacity_qps: float = param(200.0, unit="requests/s", gt=0, le=100_000,
                                help="server capacity = workers / mean service time")
    workers: int = param(4, unit="workers", ge=1, le=10_000, help="requests the server serves at once")
    queue_limit: int = param(1000, unit="requests", ge=0, le=10_000_000, help="waiting attempts past this are rejected")
    attempts: int = param(2, unit="attempts", ge=1, le=20, help="attempts per request (immediate retries)")
    timeout_s: float = param(1.0, unit="s", gt=0, le=60, help="client timeout per attempt")
    spike_at: float = param(10.0, unit="s", ge=0, le=3600, help="latency spike start")
    spike_s: float = param(3.0, unit="s", gt=0, le=600, help="latency spike length")
    spike_extra_s: float = param(0.6, unit="s", ge=0, le=60, help="latency added to every message during the spike")
    lifo_above: int = param(10, unit="requests", ge=0, le=10_000_000,
                            help="adaptive LIFO serves the newest while more than this many wait")
    codel_target_s: float = param(0.005, unit="s", gt=0, le=10, help="CoDel target queueing delay (RFC 8289: 5 ms)")
    codel_interval_s: float = param(0.1, unit="s", gt=0, le=60, help="CoDel interval (RFC 8289: 100 ms)")
    arms: tuple[str, ...] = param(ARMS, choices=ARMS, help="queue disciplines compared")
    window_s: float = param(1.0, unit="s", gt=0, le=60, help="time-series window")
    judge_s: float = param(5.0, unit="s", gt=0, le=600,
                           help="recovered = >= 95% of the requests issued in the last judge_s end ok")

    def __post_init__(self) -> None:
        end = self.spike_at + self.spike_s
        if not end + self.judge_s + self.window_s < self.duration_s:
            raise ValueError(f"need spike_at + spike_s + judge_s + window_s < duration_s, got "
                             f"spike_at={self.spike_at}, spike_s={self.spike_s}, judge_s={self.judge_s}, "
                             f"duration_s={self.duration_s}")

    @property
    def rate(self) -> float:
        return self.load * self.capacity_qps


QUICK = Params(duration_s=25.0, spike_at=4.0, judge_s=4.0)


def run_arm(p: Params, seed: int, discipline: str) -> tuple[pd.DataFrame, dict]:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.3))
    kw: dict = {}
    if discipline == "adaptive_lifo":
        kw = {"lifo_above": p.lifo_above}
    elif discipline == "codel":
        kw = {"target_s": p.codel_target_s, "interval_s": p.codel_interval_s}
    elif discipline == "deadline":
        kw = {"deadline_s": p.timeout_s}
    pool = sim.node("server").serve("get", service=Exponential(p.workers / p.capacity_qps), workers=p.workers,
                                    queue_limit=p.queue_limit, discipline=discipline, **kw)
    sim.faults.latency_spike(p.spike_at, p.spike_s, extra_s=p.spike_extra_s)
    PoissonClient(sim, "clients", ["server"], rate=p.rate, stop_at=p.duration_s, timeout_s=p.timeout_s,
                  retry=RetryPolicy(max_attempts=p.attempts, backoff="none"))
    queue: list[tuple[float, int]] = []

    def sample() -> None:
        queue.append((sim.now, pool.queue_length))
        sim.at(p.window_s, sample)

    sim.at(0.0, sample)
    sim.run(until=p.duration_s + p.attempts * p.timeout_s + 1)
    df = sim.metrics.requests()
    ok = df.outcome == "ok"
    win = (df.start // p.window_s) * p.window_s
    g = df.assign(window=win, good=ok, ok_latency=df.latency.where(ok)).groupby("window")
    s = pd.DataFrame({"goodput": g["good"].sum() / p.window_s,
                      "ok_fraction": g["good"].mean(),
                      "p99_ok_latency_s": g["ok_latency"].quantile(0.99)}).reset_index()
    s = s.merge(pd.DataFrame(queue, columns=["window", "queue"]), on="window", how="left")
    s = s[s.window < p.duration_s].assign(arm=discipline)
    end = p.spike_at + p.spike_s
    before = df[df.start < p.spike_at]
    after = df[df.start >= end]
    judged = df[(df.start >= p.duration_s - p.judge_s) & (df.start < p.duration_s)]
    ok_end = float((judged.outcome == "ok").mean())
    bad = s[(s.window >= end) & (s.ok_fraction < 0.95)]
    recovered = ok_end >= 0.95
    lat_ok_after = after.latency[after.outcome == "ok"]
    row = {"arm": discipline,
           "recovered": bool(recovered),
           "ok_fraction_at_end": ok_end,
           "time_to_recover_s": (float(bad.window.max() + p.window_s - end) if len(bad) else 0.0) if recovered
           else math.nan,
           "ok_fraction_after_spike": float((after.outcome == "ok").mean()),
           "p50_ok_latency_after_s": float(lat_ok_after.quantile(0.5)) if len(lat_ok_after) else math.nan,
           "p99_ok_latency_after_s": float(lat_ok_after.quantile(0.99)) if len(lat_ok_after) else math.nan,
           "p99_ok_latency_before_s": float(before.latency[before.outcome == "ok"].quantile(0.99)),
           "ok_fraction_before_spike": float((before.outcome == "ok").mean()),
           "attempts_per_request_after": float(after.attempts.mean()),
           "dropped": int(pool.dropped), "rejected_on_arrival": int(pool.rejected),
           "max_queue": int(max(q for _, q in queue))}
    return s, row


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, rows = [], []
    for arm in p.arms:
        s, row = run_arm(p, seed, arm)
        series.append(s)
        rows.append(row)
    return {"timeseries": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(rows)}


# -- figures ------------------------------------------------------------------------------------------
def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts = results["timeseries"]
    summ = results["summary"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "window"], as_index=False)[["goodput", "p99_ok_latency_s", "queue"]].mean()
        summ = summ.groupby("arm", as_index=False, sort=False).mean(numeric_only=True)
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True, constrained_layout=True)
    spike = [(p.spike_at, p.spike_at + p.spike_s, f"+{p.spike_extra_s:g} s latency")]
    for ax in (a1, a2, a3):
        plots.shade_faults(ax, spike)
    for arm, g in ts.groupby("arm", sort=False):
        c = plots.color_for(_LABEL[arm])
        a1.plot(g.window, g.goodput, label=_LABEL[arm], color=c, lw=1.8)
        a2.plot(g.window, g.p99_ok_latency_s, color=c, lw=1.6)
        a3.plot(g.window, g.queue, color=c, lw=1.6)
    a1.axhline(p.rate, color="0.5", ls=":", lw=1)
    a1.text(0, p.rate, " offered load", va="bottom", fontsize=8, color="0.4")
    a1.set_ylabel("goodput (ok requests/s)")
    a1.legend(loc="center right", fontsize=8)
    a2.axhline(p.timeout_s, color="0.5", ls=":", lw=1)
    a2.text(0, p.timeout_s, " client timeout", va="bottom", fontsize=8, color="0.4")
    a2.set_yscale("log")
    a2.set_ylabel("p99 latency of ok requests (s)")
    a3.set_yscale("symlog", linthresh=10)
    a3.set_ylim(bottom=0)
    a3.set_ylabel(f"waiting attempts (bound {p.queue_limit:,})")
    a3.set_xlabel("request start time (s)")
    rec = [_LABEL[a] for a, r in zip(summ.arm, summ.recovered, strict=True) if r >= 0.5]
    stuck = [_LABEL[a] for a, r in zip(summ.arm, summ.recovered, strict=True) if r < 0.5]
    head = (f"{' and '.join(stuck)} stay{'s' if len(stuck) == 1 else ''} down after a {p.spike_s:g} s spike"
            if stuck else f"every discipline recovers from a {p.spike_s:g} s latency spike")
    tail = f"; {', '.join(rec)} recover" if rec and stuck else ""
    cost = ", ".join(f"{_LABEL[a]} {t:.2f} s / {int(d)}" for a, t, d, r in
                     zip(summ.arm, summ.p99_ok_latency_after_s, summ.dropped, summ.recovered, strict=True) if r >= 0.5)
    fig.suptitle(f"At {p.load:.0%} load with {p.attempts} attempts, {head}{tail};\n"
                 f"after it, p99 of ok requests / attempts dropped: {cost}", fontsize=10)
    return {"queue_discipline": fig}


def mmc_sojourn_quantile(q: float, workers: int, rate: float, service_mean_s: float) -> float:
    """The q-quantile of M/M/c's FIFO sojourn time: P(T > t) = (1 - C) e^(-mu t) + C P(W' + S > t), with
    C Erlang C's P(wait), W' ~ Exp(c mu - lambda) and S ~ Exp(mu) (Kleinrock 1975, vol. 1, §3.5)."""
    mu, c, a = 1 / service_mean_s, workers, rate * service_mean_s
    if not a < c:
        raise ValueError(f"need rate * service_mean_s < workers, got {a} >= {c}")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    erl_c = b / (1 - (a / c) * (1 - b))
    th = c * mu - rate

    def tail(t: float) -> float:
        if th == mu:
            both = (1 + mu * t) * math.exp(-mu * t)
        else:
            both = (th * math.exp(-mu * t) - mu * math.exp(-th * t)) / (th - mu)
        return (1 - erl_c) * math.exp(-mu * t) + erl_c * both

    lo, hi = 0.0, 100 * service_mean_s / (1 - a / c)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) > 1 - q else (lo, mid)
    return (lo + hi) / 2


def validate(quick: bool) -> list[Check]:
    """:func:`run_arm`'s FIFO server without a spike (``spike_extra_s=0``) against M/M/c's sojourn
    quantiles plus the mean round trip (two 1 ms lognormal hops; their spread, ~0.4 ms, is inside the
    tolerance); then QUICK's spike under FIFO against the metastable state (Bronson et al. 2021):
    attempts x load = 1.4 > 1, each served attempt already abandoned, so every later request sends
    all its attempts (published: ``attempts``) and fails (published: 0). Tolerance: 4 SE of seeds for
    the quantiles; for the storm, 0.05 (a request started just after the spike can still catch the
    queue's last fresh attempt).
    """
    p = QUICK
    seeds = range(16) if quick else range(100)
    calm = dataclasses.replace(p, spike_extra_s=0.0)
    rows = [run_arm(calm, s, "fifo")[1] for s in seeds]
    rtt = 2 * 0.001 * math.exp(0.3 ** 2 / 2)
    svc = p.workers / p.capacity_qps
    setup = (f"M/M/{p.workers}, rho = {p.load:g}, {svc * 1e3:g} ms service, no spike; "
             f"{p.duration_s - p.spike_at - p.spike_s:g} s x {len(seeds)} seeds")
    checks = []
    for q, col in ((0.5, "p50_ok_latency_after_s"), (0.99, "p99_ok_latency_after_s")):
        xs = [1e3 * r[col] for r in rows]
        m, ci = mean_ci95(xs)
        se = float(np.std(xs, ddof=1) / math.sqrt(len(xs)))
        checks.append(Check("M/M/c sojourn distribution (Erlang C; Kleinrock 1975)", setup,
                            f"FIFO latency p{round(q * 100)} (ms), + mean RTT",
                            round(1e3 * (mmc_sojourn_quantile(q, p.workers, p.rate, svc) + rtt), 3), m, 4 * se,
                            f"4 SE of {len(seeds)} seeds", ci))
    storm = [run_arm(p, s, "fifo")[1] for s in (seeds[:2] if quick else seeds[:20])]
    src = "Bronson et al., 'Metastable Failures in Distributed Systems', HotOS 2021 (sustaining retries)"
    sset = (f"QUICK: {p.spike_s:g} s spike of +{p.spike_extra_s:g} s at {p.load:.0%} load, {p.attempts} attempts; "
            f"{len(storm)} seeds")
    checks.append(Check(src, sset, "FIFO after the spike: attempts per request", float(p.attempts),
                        float(np.mean([r["attempts_per_request_after"] for r in storm])), 0.05,
                        "requests just after the spike may still succeed first time"))
    checks.append(Check(src, sset, "FIFO after the spike: share of requests ok", 0.0,
                        float(np.mean([r["ok_fraction_after_spike"] for r in storm])), 0.05,
                        "requests just after the spike may still catch a fresh attempt"))
    return checks
