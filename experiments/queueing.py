"""How does waiting grow as a server fills up, and does the kernel agree with queueing theory?

Setup: one server node with ``workers`` FIFO workers (``node.serve``), Poisson clients over a
zero-latency, loss-free network, so a client's response time is the queue's sojourn time.
Four textbook systems at a range of utilisations rho = lambda / (c mu): M/M/1, M/D/1
(constant service), M/M/c, and the loss system M/M/c/c (no queue: ``queue_limit=0``), each
replicated with independent seeds. Closed forms (Kleinrock, *Queueing Systems* vol. 1, 1975):
M/M/1 W = 1/(mu - lambda); M/D/1 (Pollaczek-Khinchine) W = 1/mu + rho / (2 mu (1 - rho));
M/M/c W = C(c, a) / (c mu - lambda) + 1/mu with Erlang's C formula; M/M/c/c blocking =
Erlang's B formula B(c, a) = (a^c / c!) / sum_k<=c a^k / k! (Erlang 1917); and Little's law
L = lambda W (Little 1961), with L measured independently as the time average of the number
in the system.

Lesson: waiting is not linear in load. At rho = 0.5 an M/M/1 request spends 2 service times in
the system, at 0.9 ten, and the curve is vertical at 1; constant service halves the wait
(M/D/1), and pooling c workers behind one queue (M/M/c) waits far less than c separate
queues at the same utilisation. Keep utilisation well below 1 or pay in tail latency.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.services import PoissonClient
from simulator import Constant, Exponential, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

MODELS = ("M/M/1", "M/D/1", "M/M/c", "M/M/c/c")


@parameters
class Params:
    rhos: tuple[float, ...] = param((0.2, 0.4, 0.6, 0.8, 0.9), unit="utilisation", gt=0, lt=1,
                                    help="server utilisations lambda/(c mu) to run")
    workers: int = param(4, unit="workers", ge=2, le=256, help="c, the workers of M/M/c and M/M/c/c")
    service_mean_s: float = param(0.004, unit="s", gt=0, le=10, help="mean service time 1/mu")
    customers: int = param(20_000, unit="requests", ge=500, le=5_000_000, help="requests per replication")
    warmup: int = param(1_000, unit="requests", ge=0, le=1_000_000, help="first requests discarded")
    replications: int = param(8, unit="runs", ge=2, le=1000, help="independent replications per point")

    def __post_init__(self) -> None:
        if self.warmup >= self.customers // 2:
            raise ValueError(f"need warmup < customers / 2, got warmup={self.warmup}, customers={self.customers}")


QUICK = Params(rhos=(0.5, 0.8), customers=6_000, warmup=500, replications=4)


# -- closed forms ---------------------------------------------------------------------------------
def erlang_b(c: int, a: float) -> float:
    """P(an arrival is blocked) in M/M/c/c with offered load a = lambda/mu (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """P(an arrival waits) in M/M/c with offered load a = lambda/mu, a < c."""
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def theory(model: str, rho: float, c: int, mean_s: float) -> dict[str, float]:
    """Mean sojourn time W (s) and, for M/M/c/c, the blocking probability."""
    mu = 1 / mean_s
    if model == "M/M/1":
        return {"W": 1 / (mu - rho * mu), "block": 0.0}
    if model == "M/D/1":
        return {"W": 1 / mu + rho / (2 * mu * (1 - rho)), "block": 0.0}
    lam, a = rho * c * mu, rho * c
    if model == "M/M/c":
        return {"W": erlang_c(c, a) / (c * mu - lam) + 1 / mu, "block": 0.0}
    return {"W": 1 / mu, "block": erlang_b(c, a)}  # M/M/c/c: the admitted are served at once


# -- simulation -----------------------------------------------------------------------------------
def replication_seed(seed: int, *key: int) -> int:
    """An independent root seed for replication ``key`` of cell ``seed`` (SeedSequence mixing,
    never ``seed + i``)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, np.uint64)[0] >> 1)


def one_queue(seed: int, model: str, rho: float, p: Params) -> dict[str, float]:
    c = 1 if model in ("M/M/1", "M/D/1") else p.workers
    mu = 1 / p.service_mean_s
    lam = rho * c * mu
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0), loss=0.0)
    service = Constant(p.service_mean_s) if model == "M/D/1" else Exponential(p.service_mean_s)
    pool = sim.node("server").serve("get", service=service, workers=c,
                                    queue_limit=0 if model == "M/M/c/c" else None)
    horizon, t_warm = p.customers / lam, p.warmup / lam
    PoissonClient(sim, "client", ["server"], rate=lam, stop_at=horizon)
    area = [0.0]  # integral of N(t) dt over [t_warm, horizon)

    def sample(dt: float = 0.25 * p.service_mean_s) -> None:
        if t_warm <= sim.now < horizon:
            area[0] += (pool.busy + len(pool.queue)) * dt
        if sim.now < horizon:
            sim.at(dt, sample)

    sim.at(0.0, sample)
    sim.run(until=horizon * 1.5 + 100 * p.service_mean_s)  # let the last arrivals finish
    df = sim.metrics.requests()
    df = df[(df["start"] >= t_warm) & (df["start"] < horizon)]
    ok = df[df["outcome"] == "ok"]
    return {"W": float(ok["latency"].mean()), "block": float((df["outcome"] == "rejected").mean()),
            "L": area[0] / (horizon - t_warm), "lambda_hat": len(ok) / (horizon - t_warm)}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for mi, model in enumerate(MODELS):
        for ri, rho in enumerate(p.rhos):
            th = theory(model, rho, p.workers, p.service_mean_s)
            for r in range(p.replications):
                m = one_queue(replication_seed(seed, mi, ri, r), model, rho, p)
                rows.append({"model": model, "rho": rho, "replication": r, **m,
                             "W_theory": th["W"], "block_theory": th["block"]})
    points = pd.DataFrame(rows)
    summary = []
    for (model, rho), g in points.groupby(["model", "rho"], sort=False):
        w, (lo, hi) = mean_ci95(g["W"])
        summary.append({"model": model, "rho": rho, "W_s": w, "W_ci95_low": lo, "W_ci95_high": hi,
                        "W_theory_s": g["W_theory"].iloc[0], "W_over_service": w / p.service_mean_s,
                        "block": g["block"].mean(), "block_theory": g["block_theory"].iloc[0],
                        "little_L": g["L"].mean(), "little_lambda_W": (g["lambda_hat"] * g["W"]).mean()})
    return {"points": points, "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    pts = results["points"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    grid = np.linspace(0.02, 0.97, 120)
    for model in ("M/M/1", "M/D/1", "M/M/c"):
        col = plots.color_for(model)
        a1.plot(grid, [theory(model, r, p.workers, 1.0)["W"] for r in grid], color=col, lw=1.2, ls="--")
        g = pts[pts.model == model].groupby("rho")["W"]
        m, sd, n = g.mean(), g.std(), g.count()
        a1.errorbar(m.index, m / p.service_mean_s, yerr=1.96 * sd / np.sqrt(n) / p.service_mean_s, fmt="o",
                    color=col, label=f"{model}" + (f" (c={p.workers})" if model == "M/M/c" else ""), capsize=3)
    a1.set_yscale("log")
    a1.set_xlim(0, 1)
    a1.set_xlabel("utilisation ρ")
    a1.set_ylabel("mean time in system / mean service time")
    a1.legend(title="simulated (dots, 95% CI)\ntheory (dashed)", fontsize=8)
    loads = np.linspace(0.1, 0.97, 60) * p.workers
    a2.plot(loads, [erlang_b(p.workers, a) for a in loads], "--", color="0.3", label="Erlang B")
    b = pts[pts.model == "M/M/c/c"].groupby("rho")["block"].mean()
    a2.plot(b.index * p.workers, b.values, "o", color=plots.color_for("M/M/c/c"), label="simulated")
    a2.set_xlabel(f"offered load a = λ/μ (erlangs, c = {p.workers} workers, no queue)")
    a2.set_ylabel("fraction of requests blocked")
    a2.legend(fontsize=8)
    fig.suptitle("Waiting explodes as utilisation nears 1 (M/M/1: 10 service times at ρ = 0.9); "
                 "the kernel matches the closed forms")
    return {"queueing": fig}


# -- splitbrain validate ----------------------------------------------------------------------------
def validate(quick: bool) -> list[Check]:
    """The closed forms above, each within 4 standard errors of independent replications."""
    p = Params(rhos=(0.5,), customers=8_000 if quick else 40_000, warmup=800 if quick else 2_000,
               replications=6 if quick else 20)
    mu = 1 / p.service_mean_s
    checks = []
    why = ("4 SE of {n} independent replications (sojourn times are autocorrelated: replications give an "
           "honest SE)")
    specs = [("M/M/1", 0.5, "Kleinrock 1975, M/M/1 mean sojourn 1/(mu-lambda)"),
             ("M/D/1", 0.5, "Pollaczek-Khinchine formula, M/D/1"),
             ("M/M/c", 0.75, "Erlang C formula, M/M/c mean sojourn")]
    for k, (model, rho, src) in enumerate(specs):
        reps = [one_queue(replication_seed(7, 99, k, r), model, rho, p) for r in range(p.replications)]
        w, ci = mean_ci95([x["W"] / p.service_mean_s for x in reps])
        se = float(np.std([x["W"] / p.service_mean_s for x in reps], ddof=1) / math.sqrt(len(reps)))
        c = 1 if model != "M/M/c" else p.workers
        checks.append(Check(src, f"rho={rho}, c={c}, Poisson arrivals, {p.customers} requests x "
                                 f"{p.replications} runs", "mean sojourn / mean service",
                            theory(model, rho, p.workers, p.service_mean_s)["W"] * mu, w,
                            4 * se, why.format(n=p.replications), ci))
        if model == "M/M/c":
            L, lw = [x["L"] for x in reps], [x["lambda_hat"] * x["W"] for x in reps]
            d = np.array(L) - np.array(lw)
            checks.append(Check("Little's law L = lambda W (Little 1961)", f"M/M/{c}, rho={rho}; L sampled every "
                                "1/4 service time", "L - lambda W (requests)", 0.0, float(d.mean()),
                                max(4 * float(d.std(ddof=1) / math.sqrt(len(d))), 0.01 * float(np.mean(L))),
                                "4 SE of the replications, or 1% of L for the time-sampling grid",
                                mean_ci95(d)[1]))
    reps = [one_queue(replication_seed(7, 98, r), "M/M/c/c", 0.75, p)["block"] for r in range(p.replications)]
    b, ci = mean_ci95(reps)
    se = float(np.std(reps, ddof=1) / math.sqrt(len(reps)))
    checks.append(Check("Erlang B formula (Erlang 1917)", f"M/M/{p.workers}/{p.workers}, a = {0.75 * p.workers} "
                        "erlangs", "blocking probability", erlang_b(p.workers, 0.75 * p.workers), b, 4 * se,
                        f"4 SE of {p.replications} independent replications", ci))
    return checks
