"""Can one service's load spike take down another service that merely shares its database?

Setup: two services, ``orders`` (quiet, ``rate_a`` requests/s throughout) and ``reports``
(``rate_b`` requests/s, spiking to ``peak_b`` from ``spike_at`` for ``spike_s`` seconds), each
request running one query (exponential, mean ``query_ms``) through a database connection pool
(``connections`` in total: a query holds one connection; queries beyond that wait, FIFO). Each
service times its query out after ``db_timeout_s`` (the database does not notice and runs it
anyway). Three designs with the same total connections, same seeds:

- **shared pool**: both services' queries compete for the same ``connections``;
- **database each**: each service owns a database with half the connections;
- **per-service pool limit**: one shared database, but each service's own connection pool
  (HikariCP's ``maximumPoolSize``; a semaphore bulkhead) holds at most half the connections and
  fails fast beyond that.

Lesson (Newman, *Building Microservices*, 2nd ed., ch. 3 "the shared database" pattern and its
coupling; Richardson, *Microservices Patterns*, ch. 2 "Database per service"; Nygard, *Release It!*,
"Bulkheads"): with a shared pool, the spike fills the database's queue and the quiet service's
queries wait behind it — it loses its availability although nothing changed for it. The queue
grows at ``λ_a + peak_b − μ`` (``μ = connections / query time``), so a new query's wait passes
the timeout after ``t* = timeout × μ / (λ_a + peak_b − μ)`` seconds, and the backlog outlives the
spike. Giving each service its own database, or capping each service's share of the pool,
confines the overload to the service that caused it.

Reproduces (``validate``): the shared queue's ``t*`` (first quiet-service timeout); with the
per-service cap, each service's semaphore is an Erlang loss system: the spiking service keeps
1 - B(peak_b x hold, c/2) of its requests, the quiet one 1 - B(rate_a x hold, c/2).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from models.resilience.limits import BulkheadConfig
from models.resilience.pipeline import Pipeline, TimeoutConfig
from models.services import Call, Endpoint, PoissonClient, Service, Spike
from simulator import Exponential, LogNormal, Simulation, availability
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("shared pool", "database each", "per-service pool limit")
USER_TIMEOUT_S = 2.0
HOP_S = 0.0003  # median one-way network latency


@parameters
class Params:
    connections: int = param(20, unit="connections", ge=2, le=10_000, help="database connections in total")
    query_ms: float = param(10.0, unit="ms", gt=0, le=60_000, help="query time (exponential mean)")
    rate_a: float = param(300.0, unit="req/s", gt=0, le=1e5, help="the quiet service's rate (orders)")
    rate_b: float = param(300.0, unit="req/s", gt=0, le=1e5, help="the other service's normal rate (reports)")
    peak_b: float = param(2500.0, unit="req/s", gt=0, le=1e5, help="its rate during the spike")
    spike_at: float = param(5.0, unit="s", ge=0, le=86_400, help="when the spike starts")
    spike_s: float = param(5.0, unit="s", gt=0, le=86_400, help="how long it lasts")
    db_timeout_s: float = param(0.5, unit="s", gt=0, le=60, help="each service's query timeout")
    duration_s: float = param(20.0, unit="s", gt=0, le=86_400, help="simulated time users send requests")
    window_s: float = param(0.5, unit="s", gt=0, le=600, help="width of the availability windows")

    def __post_init__(self) -> None:
        if not self.spike_at + self.spike_s <= self.duration_s:
            raise ValueError(f"need spike_at + spike_s <= duration_s, got {self.spike_at} + {self.spike_s} > "
                             f"{self.duration_s}")
        mu_half = self.connections // 2 / (self.query_ms / 1e3)
        if not (self.rate_a < mu_half and self.rate_b < mu_half):
            raise ValueError(f"rate_a and rate_b must each fit in half the pool (< {mu_half:.0f}/s from connections "
                             "and query_ms), or the designs differ before any spike")


QUICK = Params(duration_s=12.0, spike_at=3.0, spike_s=4.0)


def theory(p: Params) -> dict[str, float]:
    """Shared pool: capacity mu, queue growth during the spike, and ``t*`` (when a new query's
    FIFO wait first exceeds the timeout, from an empty queue)."""
    mu = p.connections / (p.query_ms / 1e3)
    growth = p.rate_a + p.peak_b - mu
    t_star = p.db_timeout_s * mu / growth if growth > 0 else math.inf
    return {"capacity": mu, "growth": growth, "t_star_s": t_star}


def erlang_b(offered: float, servers: int) -> float:
    """Erlang's loss formula B(E, c): the fraction refused by c servers with no queue (M/G/c/c,
    insensitive to the holding-time distribution), by the stable recursion B_k = E B / (k + E B)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def capped_availability(p: Params) -> float:
    """Per-service cap: the spiking service's semaphore (half the connections, no wait) is a loss
    system; a permit is held for a query plus one network round trip (median 0.3 ms one way)."""
    hold = p.query_ms / 1e3 + 2 * HOP_S * math.exp(0.3 ** 2 / 2)
    return 1 - erlang_b(p.peak_b * hold, p.connections // 2)


def _world(p: Params, seed: int, arm: str):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=HOP_S, sigma=0.3))
    query = Endpoint(work=Exponential(p.query_ms / 1e3))
    half = p.connections // 2
    if arm == ARMS[1]:
        Service(sim, "db-orders", endpoints={"query": query}, pools={"default": half})
        Service(sim, "db-reports", endpoints={"query": query}, pools={"default": p.connections - half})
        dbs = {"orders": "db-orders", "reports": "db-reports"}
    else:
        Service(sim, "db", endpoints={"query": query}, pools={"default": p.connections})
        dbs = {"orders": "db", "reports": "db"}
    bulkhead = BulkheadConfig(max_concurrent=half) if arm == ARMS[2] else None
    for svc, rate in (("orders", p.rate_a), ("reports", Spike(p.rate_b, p.peak_b, p.spike_at, p.spike_s))):
        caller = Pipeline(sim, timeout=TimeoutConfig(request_s=p.db_timeout_s), bulkhead=bulkhead, name=f"{svc}->db")
        s = Service(sim, svc, endpoints={"get": Endpoint(work=0.0002, calls=(Call(dbs[svc], "query"),))},
                    pools={"default": 100_000}, caller=caller)
        PoissonClient(sim, f"users-{svc}", s.instances, rate=rate, timeout_s=USER_TIMEOUT_S, stop_at=p.duration_s)
    return sim


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, series = [], []
    th = theory(p)
    t0, t1 = p.spike_at, p.spike_at + p.spike_s
    for arm in ARMS:
        sim = _world(p, seed, arm)
        sim.run(until=p.duration_s + USER_TIMEOUT_S + 0.5)
        df = sim.metrics.requests()
        df["service"] = df.client.astype(str).str.removeprefix("users-")
        av = availability(df, p.window_s, by="service")
        series.append(av.assign(arm=arm))
        row = {"arm": arm, "t_star_theory_s": th["t_star_s"] if arm == ARMS[0] else math.nan,
               "reports_during_theory": capped_availability(p) if arm == ARMS[2] else math.nan}
        for svc in ("orders", "reports"):
            d = df[df.service == svc]
            during = d[(d.start >= t0) & (d.start < t1)]
            before = d[d.start < t0]
            row[f"{svc}_availability_before"] = float((before.outcome == "ok").mean())
            row[f"{svc}_availability_during"] = float((during.outcome == "ok").mean())
            row[f"{svc}_p99_during_ms"] = float(during[during.outcome == "ok"].latency.quantile(0.99) * 1e3)
        o = df[(df.service == "orders") & (df.start >= t0)]
        waited_out = o[(o.outcome != "ok") & (o.latency >= p.db_timeout_s)]  # a query that waited past its timeout
        row["orders_first_timeout_s"] = float(waited_out.start.min() - t0) if len(waited_out) else math.nan
        after = o[(o.start >= t1) & (o.start < t1 + 2.0)]
        row["orders_availability_2s_after"] = float((after.outcome == "ok").mean())
        rows.append(row)
    return {"summary": pd.DataFrame(rows), "availability": pd.concat(series, ignore_index=True)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    av = results["availability"]
    tcol = "window" if "window" in av else av.columns[0]
    if "seed" in av:
        av = av.groupby(["arm", "service", tcol], as_index=False).mean(numeric_only=True)
    ycol = "availability" if "availability" in av else [c for c in av.columns if c not in ("arm", "service", tcol)][0]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True, constrained_layout=True)
    th = theory(p)
    for ax, svc in zip(axes, ("orders", "reports"), strict=True):
        plots.shade_faults(ax, [(p.spike_at, p.spike_at + p.spike_s, "reports spike")])
        for arm, g in av[av.service == svc].groupby("arm", sort=False):
            ax.plot(g[tcol], g[ycol], "-", color=plots.color_for(arm), label=arm)
        ax.set_xlabel("time (s)")
        ax.set_title(f"{svc} ({'the quiet service' if svc == 'orders' else 'the one that spikes'})", fontsize=9)
    axes[0].axvline(p.spike_at + th["t_star_s"], color="k", ls="--", lw=1,
                    label=f"theory: shared queue passes the timeout at +{th['t_star_s']:.2f} s")
    axes[0].set_ylabel("availability (fraction ok per window)")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("On a shared database pool one service's spike takes the quiet one down with it (and the backlog "
                 "outlives the spike);\na database each, or a per-service cap on connections, keeps the overload "
                 "with the service that caused it")
    return {"shared_database": fig}


def _requests(p: Params, seed: int, arm: str, until: float) -> pd.DataFrame:
    sim = _world(p, seed, arm)
    sim.run(until=until)
    df = sim.metrics.requests()
    return df.assign(service=df.client.astype(str).str.removeprefix("users-"))


def validate(quick: bool) -> list[Check]:
    """:func:`_world`'s shared pool and per-service cap against the closed forms, with a 2 s spike
    (t* = 1.25 s fits in it) so each run stays short.

    1. Shared pool: orders' queries succeed until the backlog's wait passes the timeout, ``t*`` after
       the spike starts (:func:`theory`; the queue grows at λ_a + peak_b - μ from ~empty), and none
       after: availability in the spike = t*/spike_s. (The *first* timeout comes earlier than t*: it
       is the first passage of a fluctuating queue, biased early by ~1 SD, ~0.1 s here.) Tolerance
       4 SE of the seeds' mean, the SE from the model (the queue's Poisson fluctuation,
       ~sqrt((λ + μ) t*) queries, over the growth rate; measured SD per seed agrees: ~0.06).
    2-3. Per-service cap: each service's semaphore of c/2 permits without wait is M/G/c/c (Erlang B,
       insensitive to the hold: query + one RTT); the database itself never queues (at most c busy).
       Tolerance 4 binomial SE of the requests in the spike.
    """
    p = dataclasses.replace(QUICK, spike_at=1.0, spike_s=2.0, duration_s=4.0)
    seeds, capped = (range(1), range(2)) if quick else (range(20), range(10))
    t_first, ok_b, n_b, ok_a, n_a = [], 0, 0, 0, 0
    t0, t1 = p.spike_at, p.spike_at + p.spike_s
    for seed in seeds:
        df = _requests(p, seed, ARMS[0], until=t1 + p.db_timeout_s + 0.05)
        o = df[(df.service == "orders") & (df.start >= t0) & (df.start < t1)]
        t_first.append(float((o.outcome == "ok").mean()))
    for seed in capped:
        df = _requests(p, seed, ARMS[2], until=t1 + 0.1)
        d = df[(df.start >= t0) & (df.start < t1)]
        b, a = d[d.service == "reports"], d[d.service == "orders"]
        ok_b, n_b = ok_b + int((b.outcome == "ok").sum()), n_b + len(b)
        ok_a, n_a = ok_a + int((a.outcome == "ok").sum()), n_a + len(a)
    setup = (f"{p.connections} connections x {p.query_ms:g} ms, orders {p.rate_a:g}/s, reports {p.rate_b:g} -> "
             f"{p.peak_b:g}/s for {p.spike_s:g} s, timeout {p.db_timeout_s:g} s")
    m, ci = mean_ci95(t_first) if len(t_first) > 1 else (t_first[0], None)
    th = theory(p)
    # SE from the model, not from a handful of seeds: the crossing moves by the queue's Poisson SD
    # sqrt((lambda + mu) t*) / growth, plus the binomial noise of the orders counted.
    lam = p.rate_a + p.peak_b
    a = th["t_star_s"] / p.spike_s
    sd = math.hypot(math.sqrt((lam + th["capacity"]) * th["t_star_s"]) / th["growth"] / p.spike_s,
                    math.sqrt(a * (1 - a) / (p.rate_a * p.spike_s)))
    checks = [Check("fluid queue: wait = backlog / mu passes the timeout at t* = timeout mu / (lambda - mu)",
                    setup + f", shared pool; {len(seeds)} seeds", "orders' availability in the spike = t*/spike_s",
                    round(a, 4), m, 4 * sd / math.sqrt(len(seeds)),
                    f"4 SE of the mean of {len(seeds)} seeds, SE from the model: the queue's Poisson SD "
                    "sqrt((lambda + mu) t*)/growth moves the crossing, plus binomial noise", ci)]
    hold = p.query_ms / 1e3 + 2 * HOP_S * math.exp(0.3 ** 2 / 2)
    for svc, ok, n, rate in (("reports", ok_b, n_b, p.peak_b), ("orders", ok_a, n_a, p.rate_a)):
        pub = 1 - erlang_b(rate * hold, p.connections // 2)
        se = math.sqrt(max(pub * (1 - pub), 1 / n) / n)
        checks.append(Check("Erlang B formula (Erlang 1917); HikariCP maximumPoolSize as a semaphore bulkhead",
                            setup + f", per-service cap {p.connections // 2}; {len(capped)} seeds",
                            f"{svc}' availability in the spike, 1 - B({rate * hold:.1f}, {p.connections // 2})",
                            round(pub, 5), ok / n, 4 * se, f"4 binomial SE of {n} requests"))
    return checks
