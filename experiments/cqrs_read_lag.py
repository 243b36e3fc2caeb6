"""How far behind the write model is a CQRS read model, and does a user who just ordered see the order?

Setup: customers place orders (Poisson, total rate λ) on an event-sourced write side
(``models.transactions.cqrs``); a relay publishes each event through an SQS-like broker to a projector
that applies one event at a time in Exponential(1/μ) seconds to a denormalized read model. Each
customer reads its own orders from the read model ``think_s`` after its order was acknowledged.
Sweep: load ρ = λ/μ for two projector capacities μ; think times. The session checker
(``simulator.history.session.session_guarantees``) counts read-your-writes violations.

Lesson (Young, "CQRS Documents"; Richardson, "Microservices Patterns" §7.2): the read model is a
queue behind the write model. With one projector its lag is M/M/1's time in system, 1/(μ − λ)
(plus milliseconds of relay and broker): it grows without bound as λ → μ, and doubling μ more than
halves it at the same λ. A customer who reads right after ordering almost never sees the order;
waiting t helps only as P(lag > t) = exp(−(μ − λ)t). After the load stops the read model converges.

Reproduces (``validate``): mean lag = M/M/1's 1/(mu - lambda) plus the pipeline's hops
and receive round trips (:func:`pipeline_lag_s`: 22.14 and 12.18 ms at mu = 100 and 200, rho = 0.5),
and, with no network time, P(a read t after the order misses it) = exp(-(mu - lambda) t). Checked
(issue 24, mu = 200, 8 x 120 s): 10.07 +- 0.05 ms with no network time (M/M/1: 10), 12.20 +- 0.08 ms
with constant 0.52 ms hops (derived: 12.18); the first-order "M/M/1 + two hops + a vacation's mean
residual" (11.57) and the old "M/M/1 + at most 4 ms" both fall short of that.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.transactions.cqrs import Customers, build_cqrs, converged
from simulator import Constant, Distribution, LogNormal, Simulation
from simulator.history import History
from simulator.history.session import session_guarantees
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95


@parameters
class Params:
    mus: tuple[float, ...] = param((100.0, 200.0), unit="events/s", gt=0, le=100_000, help="projector capacities")
    loads: tuple[float, ...] = param((0.3, 0.5, 0.7, 0.8, 0.9), unit="rho", gt=0, lt=1, help="λ/μ")
    think_s: tuple[float, ...] = param((0.0, 0.02, 0.05), unit="s", ge=0, le=60,
                                       help="time between an acknowledged order and the customer's read")
    customers: int = param(50, unit="customers", ge=1, le=100_000, help="sessions (each its own stream)")
    load_s: float = param(30.0, unit="s", gt=0, le=3600, help="how long orders arrive")
    drain_s: float = param(10.0, unit="s", gt=0, le=3600, help="time after the load to converge")


QUICK = Params(mus=(100.0, 200.0), loads=(0.3, 0.6, 0.85), think_s=(0.0, 0.02), load_s=10.0, drain_s=5.0)


_NET_MEDIAN_S, _NET_SIGMA = 0.0005, 0.3


def pipeline_lag_s(mu: float, lam: float, median_s: float = _NET_MEDIAN_S, sigma: float = _NET_SIGMA,
                   n_max: int = 120) -> float:
    """Mean read-model lag (s) of ``models.transactions.cqrs``'s pipeline, derived from its parameters
    (Poisson orders at rate ``lam``, Exponential(1/mu) projection, LogNormal(median, sigma) one-way hops
    X of mean h). An event crosses, in order:

    * ``orders -> broker`` (the relay publishes on append: no outbox poll interval): h;
    * a wait at the broker until the projector's receive arrives there (the "gate");
    * ``broker -> projector`` (the receive's answer, shared by its batch): h;
    * the events ahead of it in its batch and its own projection, 1/mu each.

    After a batch the projector sends the next receive, so gate to gate takes C = X + sum_N S + X' for a
    batch of N; if the gate finds the queue empty the long poll parks and the next event opens it at once
    (a batch of 1 that waited nothing). So the batch sizes form a Markov chain, N' = the Poisson(lam C)
    arrivals during C (0 -> 1); with its stationary law, renewal reward gives per event
    E[wait at broker] = lam E[C^2] / (2 E[N]) and E[wait in its batch] = E[N (N - 1)] / (2 mu E[N]).
    With no network time this is exactly M/M/1's 1/(mu - lam) (a test checks it); the projector's
    batch cap (10) is left out (at rho = 0.5 a batch of 10 has probability ~1e-4). The chain is
    solved numerically (the Poisson mixture over the hops by Gauss-Hermite quadrature).
    """
    k = np.arange(n_max)
    lg = np.array([math.lgamma(i) for i in range(1, 2 * n_max + 1)])  # lg[i] = log(i!)
    if median_s > 0:
        z, w = np.polynomial.hermite_e.hermegauss(20)
        x, w = median_s * np.exp(sigma * z), w / w.sum()
        ex, ex2 = float(w @ x), float(w @ x ** 2)
        v, wv = (x[:, None] + x[None, :]).ravel(), (w[:, None] * w[None, :]).ravel()
        m = lam * v[:, None]  # Poisson(lam V) arrivals during the two hops, mixed over V
        p_v = wv @ np.exp(-m + k[None, :] * np.log(m) - lg[k][None, :])
    else:
        ex = ex2 = 0.0
        p_v = (k == 0).astype(float)
    ev, ev2 = 2 * ex, 2 * ex2 + 2 * ex * ex
    trans = np.zeros((n_max, n_max))
    trans[0, 1] = 1.0
    q = mu / (mu + lam)
    for n in range(1, n_max):  # Poisson(lam) arrivals over Gamma(n, mu) projections: negative binomial
        nb = np.exp(lg[n + k - 1] - lg[k] - lg[n - 1] + n * math.log(q) + k * math.log(1 - q))
        pm = np.convolve(p_v, nb)[:n_max]
        pm[1] += pm[0]
        pm[0] = 0.0
        trans[n] = pm / pm.sum()
    a = np.vstack([trans.T - np.eye(n_max), np.ones(n_max)])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(n_max), 1.0], rcond=None)[0]
    n = k.astype(float)
    e_n, e_nn1 = pi @ n, pi @ (n * (n - 1))
    e_c2 = pi @ (ev2 + 2 * ev * n / mu + n * (n + 1) / mu ** 2)
    return float(ex + (lam * e_c2 / 2 + e_nn1 / (2 * mu)) / e_n + ex + 1 / mu)


def order_rate(rate: float, customers: int, think_s: float, round_trips_s: float) -> float:
    """The order rate :class:`~models.transactions.cqrs.Customers` really offer: each customer's next
    order waits for its order's acknowledgment, ``think_s`` and its read (``round_trips_s`` in all)
    before the Exponential gap of mean ``customers / rate``, so the rate is customers / (customers /
    rate + think_s + round_trips_s) — e.g. 49.0/s, not 50/s, for 50 customers reading 20 ms after
    ordering (measured: 48.8-49.9 events/s over 10 seeds)."""
    return customers / (customers / rate + think_s + round_trips_s)


def _cell(p: Params, seed: int, mu: float, rho: float, think: float, latency: Distribution | None = None) -> dict:
    lam = rho * mu
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=_NET_MEDIAN_S, sigma=_NET_SIGMA) if latency is None else latency)
    _b, cmd, proj = build_cqrs(sim, mu=mu)
    h = History()
    cu = Customers(sim, n=p.customers, rate=lam, stop_at=p.load_s, think_s=think, history=h)
    sim.run(until=p.load_s)
    conv_at_stop = converged(cmd, proj)
    sim.run(until=p.load_s + p.drain_s)
    lags = proj.record.lags()
    sg = session_guarantees(h)
    ryw = sg[sg.guarantee == "read_your_writes"]
    checked = int(ryw.checked.sum())
    return {"mu": mu, "rho": rho, "lambda": lam, "think_s": think, "events": len(lags),
            "lag_mean_s": float(lags.mean()), "lag_p99_s": float(np.quantile(lags, 0.99)),
            "mm1_lag_s": 1.0 / (mu - lam),
            "ryw_violations": int(ryw.violations.sum()), "ryw_checked": checked,
            "ryw_rate": int(ryw.violations.sum()) / max(1, checked),
            "ryw_theory": float(np.exp(-(mu - lam) * think)),
            "stale_reads_direct": cu.stale_reads / max(1, cu.reads),
            "converged_at_stop": conv_at_stop, "converged_after_drain": converged(cmd, proj)}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for mu in p.mus:
        for rho in p.loads:
            for think in p.think_s:
                rows.append(_cell(p, seed, mu, rho, think))
    return {"summary": pd.DataFrame(rows)}


def validate(quick: bool) -> list[Check]:
    """The projector as an M/M/1 queue (Kleinrock 1975: time in system ~ Exponential(mu - lambda),
    mean 1/(mu - lambda)); Richardson §7.2 / Young's CQRS documents for the read model as a
    replica that lags the write model. The lag rows add every hop of the pipeline, derived from the
    network's parameters in :func:`pipeline_lag_s` (no allowance, nothing fitted); the read-your-writes
    row runs with no network time, where M/M/1's sojourn tail is the whole story. lambda is the rate the
    closed-loop customers really offer (:func:`order_rate`). Tolerance: 4 SE of independent runs.
    """
    p = Params(load_s=10.0 if quick else 60.0, drain_s=5.0)
    seeds = (1, 2, 3) if quick else tuple(range(1, 11))
    hop = _NET_MEDIAN_S * math.exp(_NET_SIGMA ** 2 / 2)
    rows = []
    for mu, rho, think in ((100.0, 0.5, 0.0), (200.0, 0.5, 0.0)):
        c = [_cell(p, s, mu, rho, think) for s in seeds]
        lag = [x["lag_mean_s"] * 1e3 for x in c]
        m, ci = mean_ci95(lag)
        se = float(np.std(lag, ddof=1) / np.sqrt(len(lag)))
        want = 1e3 * pipeline_lag_s(mu, order_rate(rho * mu, p.customers, think, 4 * hop))
        rows.append(Check("M/M/1 mean time in system 1/(mu - lambda) (Kleinrock 1975); Richardson §7.2; "
                          "plus the pipeline's hops and receive round trips (pipeline_lag_s)",
                          f"projector mu = {mu:g}/s, lambda = {rho * mu:g}/s, {p.load_s:g} s of orders; "
                          f"{len(seeds)} seeds; hops LogNormal(median 0.5 ms, sigma 0.3)",
                          f"mu = {mu:g}: mean read-model lag (ms) = 1/(mu - lambda) + "
                          f"{want - 1e3 / (mu - rho * mu):.2f} ms of pipeline", round(want, 4), m, 4 * se,
                          f"4 SE of {len(seeds)} runs", ci))
    mu, rho, think = 100.0, 0.5, 0.02
    c = [_cell(p, s, mu, rho, think, latency=Constant(0.0)) for s in seeds]
    n = sum(x["ryw_checked"] for x in c)
    rates = [x["ryw_violations"] / x["ryw_checked"] for x in c]
    rate, ci = mean_ci95(rates)
    se = float(np.std(rates, ddof=1) / np.sqrt(len(rates)))
    q = float(np.exp(-(mu - order_rate(rho * mu, p.customers, think, 0.0)) * think))
    rows.append(Check("M/M/1 sojourn tail P(T > t) = exp(-(mu - lambda) t); session checker, read-your-writes",
                      f"mu = {mu:g}/s, lambda = {rho * mu:g}/s, each customer reads {think * 1e3:g} ms after its "
                      f"order's acknowledgment; no network time; {n} reads, {len(seeds)} seeds",
                      f"reads missing the reader's own order (exp(-(mu - lambda) x {think * 1e3:g} ms))",
                      round(q, 6), rate, 4 * se, f"4 SE of {len(seeds)} runs (one run's reads are correlated "
                      "through the queue: ~2x the binomial SE)", ci))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    t0 = s[s.think_s == s.think_s.min()]
    for (mu, g), c in zip(t0.groupby("mu"), ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=False):
        a1.plot(g["lambda"], g.lag_mean_s * 1e3, "o-", color=c, label=f"measured mean lag, μ = {mu:g}/s")
        a1.plot(g["lambda"], g.mm1_lag_s * 1e3, "--", color=c, label=f"M/M/1: 1/(μ − λ), μ = {mu:g}/s")
    a1.set_xlabel("order rate λ (events/s)")
    a1.set_ylabel("read-model lag (ms)")
    a1.set_title("lag = time from append to projection", fontsize=9)
    a1.legend(fontsize=8)
    for (mu, think), g in s.groupby(["mu", "think_s"]):
        line, = a2.plot(g.rho, g.ryw_rate, "o-", label=f"μ = {mu:g}/s, read {think * 1e3:g} ms after the order")
        a2.plot(g.rho, g.ryw_theory, ":", color=line.get_color())
    a2.set_xlabel("load ρ = λ/μ")
    a2.set_ylabel("reads that miss the customer's own order")
    a2.set_ylim(0, 1.05)
    a2.set_title("read-your-writes violations (session checker); dotted: exp(−(μ − λ)·t)", fontsize=9)
    a2.legend(fontsize=7)
    fig.suptitle("A CQRS read model is a queue behind the write model: its lag follows 1/(μ − λ) and explodes near "
        "capacity,\nand a customer reading right after ordering almost never sees the order")
    return {"cqrs_read_lag": fig}
