"""How available is a request that must pass synchronously through k services — and what do queues buy?

Setup: k services ``svc-1 .. svc-k``, each crashing and recovering independently: up for an
exponential time (mean ``MTTF``), down for an exponential time (mean ``mttr_s``), so each is up a
fraction ``availability = MTTF / (MTTF + MTTR)`` of the time (a two-state Markov process, started
in its stationary state). Users send requests (Poisson, ``rate`` per second). Two wirings of the
same k steps, same seeds and the same outage schedule:

- **synchronous chain** (``RpcStage``): svc-1 calls svc-2 ... calls svc-k; each answers ``ok``
  only when its callee did — the "distributed monolith": deployed apart, failing together;
- **asynchronous hand-offs** (``QueueFrontDoor`` → ``QueueRelay`` ... → ``QueueConsumer`` over an
  SQS-like broker, modelled as always up): svc-1 answers once the broker stored the work; the
  other services consume, work and pass it on at their own pace.

Lesson (Newman, *Building Microservices*, 2nd ed., ch. 4 "Synchronous blocking" and ch. 12
"Resiliency"; Richardson, *Microservices Patterns*, §3.4 "Using asynchronous messaging to improve
availability"; Nygard, *Release It!*, "Integration points"): availabilities multiply along a
synchronous chain — ``a^k`` (0.999^10 = 0.990, 0.95^8 = 0.66) — and latencies add up:
``k x (work + round trip)``. With asynchronous hand-offs the user-facing path depends on one
service (availability ``a``, latency of one hop, whatever k is); the others' outages become
*delay* (work waits in a queue) instead of errors. The price: the user is told "done" before
the last service applied the work (staleness grows with k and the outages).

The ``a^k`` test's tolerance is the standard error of a Poisson sample of an on/off process: the
binomial term ``p(1-p)/n`` plus the term from the outages' autocorrelation (requests close in
time see the same outage): ``Var = [p(1-p) + 2 rate ∫Cov(τ)dτ] / n`` with
``∫Cov = a^{2k} (1/ν) Σ_j C(k, j) r^j / j``, ``r = (1-a)/a``, ``ν = 1/MTTF + 1/MTTR``.

Reproduces (``validate``): a^k availability and k x (work + RTT) latency along the synchronous
chain (k = 8), availability a for the asynchronous hand-offs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.messaging import ConsumerConfig, HandlerConfig, QueueBroker, QueueConfig, QueueConsumer
from models.messaging.flow import QueueFrontDoor, QueueRelay, RpcStage
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, delivery_table
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("synchronous chain", "asynchronous (queue)")
SIGMA = 0.3  # log-normal spread of one network hop
STAGE_TIMEOUT_S = 0.25
USER_TIMEOUT_S = 1.0
DRAIN_S = 5.0  # after the last request: in-flight requests end, queues drain


@parameters
class Params:
    ks: tuple[int, ...] = param((1, 2, 4, 8), unit="services", ge=1, le=30, help="chain lengths compared")
    availability: float = param(0.95, unit="fraction", ge=0.5, le=0.99999,
                                help="each service's up fraction MTTF/(MTTF+MTTR)")
    mttr_s: float = param(0.2, unit="s", gt=0, le=3600, help="mean time to recover (exponential)")
    rate: float = param(50.0, unit="req/s", gt=0, le=2000, help="user request rate (Poisson)")
    work_ms: float = param(0.5, unit="ms", gt=0, le=1000, help="local work per service (exponential mean)")
    hop_ms: float = param(0.25, unit="ms", gt=0, le=1000, help="median one-way network latency (log-normal)")
    duration_s: float = param(400.0, unit="s", gt=0, le=86_400, help="simulated time users send requests")

    def __post_init__(self) -> None:
        if len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must not repeat a chain length, got {self.ks}")
        if max(self.ks) * (self.work_ms + 4 * self.hop_ms) / 1e3 >= STAGE_TIMEOUT_S / 2:
            raise ValueError(f"max(ks) x (work_ms + round trip) must stay well under the {STAGE_TIMEOUT_S} s stage "
                             "timeout, or slow requests, not outages, decide availability")


QUICK = Params(ks=(1, 2, 4, 8), duration_s=120.0, rate=30.0)


def mttf(p: Params) -> float:
    return p.mttr_s * p.availability / (1 - p.availability)


def rtt_mean(p: Params) -> float:
    return 2 * p.hop_ms / 1e3 * math.exp(SIGMA ** 2 / 2)


def theory(p: Params, k: int, arm: str = ARMS[0]) -> dict[str, float]:
    """Availability (``a^k`` sync, ``a`` async), mean latency (``k x (work + RTT)`` sync; one
    service's work and two round trips async: user → svc-1 → broker) and the standard error of
    the measured availability over ``rate x duration_s`` requests (binomial and with the
    outages' autocorrelation, see the module docstring)."""
    a = p.availability
    n_dep = k if arm == ARMS[0] else 1
    avail = a ** n_dep
    w, rtt = p.work_ms / 1e3, rtt_mean(p)
    latency = k * (w + rtt) if arm == ARMS[0] else w + 2 * rtt
    n = p.rate * p.duration_s
    r, nu = (1 - a) / a, 1 / mttf(p) + 1 / p.mttr_s
    cov_integral = a ** (2 * n_dep) / nu * sum(math.comb(n_dep, j) * r ** j / j for j in range(1, n_dep + 1))
    se_binomial = math.sqrt(avail * (1 - avail) / n)
    se = math.sqrt((avail * (1 - avail) + 2 * p.rate * cov_integral) / n)
    return {"availability": avail, "latency_s": latency, "se_binomial": se_binomial, "se": se}


def _outages(sim: Simulation, p: Params, node: str, until: float) -> float:
    """Schedule ``node``'s crash/recover cycles (exponential up/down times, stationary start);
    returns its scheduled up time within [0, ``p.duration_s``]."""
    g = sim.rng(f"outages.{node}")
    up_mean, t = mttf(p), 0.0
    up = g.random() < p.availability
    down_total = 0.0
    while t < until:
        if up:
            t += g.exponential(up_mean)
        else:
            end = t + g.exponential(p.mttr_s)
            if t < until:
                sim.faults.crash(t, node, recover_at=end)
            down_total += max(0.0, min(end, p.duration_s) - min(t, p.duration_s))
            t = end
        up = not up
    return 1 - down_total / p.duration_s


def _world(p: Params, seed: int, k: int, arm: str):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.hop_ms / 1e3, sigma=SIGMA))
    log = DeliveryLog()
    work = Exponential(p.work_ms / 1e3)
    names = [f"svc-{i}" for i in range(1, k + 1)]
    if arm == ARMS[0]:
        for i, name in enumerate(names):
            nxt = names[i + 1] if i + 1 < k else None
            RpcStage(sim, name, "op", work=work, next_node=nxt, next_op="op" if nxt else None,
                     timeout_s=STAGE_TIMEOUT_S, log=log, first=i == 0)
    else:
        queues = {f"q{i}": QueueConfig(visibility_timeout_s=1.0) for i in range(1, k)}
        QueueBroker(sim, "broker", queues=queues)
        QueueFrontDoor(sim, names[0], "op", "broker", "q1", log=log, work=work, timeout_s=STAGE_TIMEOUT_S)
        cfg = ConsumerConfig(concurrency=4, max_messages=10)
        for i in range(2, k):
            QueueRelay(sim, names[i - 1], "broker", f"q{i - 1}", f"q{i}", handler=HandlerConfig(work), config=cfg)
        QueueConsumer(sim, names[-1], "broker", f"q{k - 1}", log=log, handler=HandlerConfig(work), config=cfg)
    until = p.duration_s + DRAIN_S
    up = [_outages(sim, p, n, until) for n in names]
    PoissonClient(sim, "users", [names[0]], op="op", rate=p.rate, timeout_s=USER_TIMEOUT_S, stop_at=p.duration_s)
    return sim, log, up


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, lat = [], []
    for arm in ARMS:
        for k in p.ks:
            if arm == ARMS[1] and k < 2:
                continue  # one service: nothing to hand off
            sim, log, up = _world(p, seed, k, arm)
            sim.run(until=p.duration_s + DRAIN_S)
            req = sim.metrics.requests()
            ok = req[req.outcome == "ok"]
            tab = delivery_table(log)
            acked = tab[tab.acked]
            stale = (acked.first_processed_at - acked.acked_at).clip(lower=0.0)
            th = theory(p, k, arm)
            avail = float((req.outcome == "ok").mean())
            rows.append({"arm": arm, "k": k, "requests": len(req), "availability": avail,
                         "availability_theory": th["availability"], "se_binomial": th["se_binomial"],
                         "se": th["se"], "z": (avail - th["availability"]) / th["se"],
                         "measured_up_product": float(np.prod(up)) if arm == ARMS[0] else float(up[0]),
                         "latency_mean_ms": float(ok.latency.mean() * 1e3),
                         "latency_theory_ms": th["latency_s"] * 1e3,
                         "latency_p99_ms": float(ok.latency.quantile(0.99) * 1e3),
                         "acked_not_applied": int((acked.processed == 0).sum()),
                         "staleness_p50_ms": float(stale.quantile(0.5) * 1e3),
                         "staleness_p99_ms": float(stale.quantile(0.99) * 1e3)})
            lat.append(ok[["latency"]].assign(arm=arm, k=k))
    return {"summary": pd.DataFrame(rows), "latencies": pd.concat(lat, ignore_index=True)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["arm", "k"], as_index=False).mean(numeric_only=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5), constrained_layout=True)
    kk = np.arange(1, max(p.ks) + 1)
    for arm, g in s.groupby("arm", sort=False):
        c = plots.color_for(arm)
        axes[0].errorbar(g.k, g.availability, yerr=2 * g.se, fmt="o", color=c, label=f"{arm} (measured, ±2 SE)")
        axes[1].plot(g.k, g.latency_mean_ms, "o-", color=c, label=f"{arm}: mean")
        axes[1].plot(g.k, g.latency_p99_ms, "s:", color=c, label=f"{arm}: p99")
        if arm == ARMS[1]:
            axes[2].plot(g.k, g.staleness_p99_ms, "o-", color=c, label="p99")
            axes[2].plot(g.k, g.staleness_p50_ms, "s:", color=c, label="p50")
    axes[0].plot(kk, p.availability ** kk, "k--", lw=1, label=f"theory sync: a^k (a = {p.availability})")
    axes[0].axhline(p.availability, color="0.5", ls=":", lw=1, label="theory async: a (one service)")
    axes[0].set_xlabel("services in the chain k")
    axes[0].set_ylabel("user-facing availability")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].plot(kk, [theory(p, int(k))["latency_s"] * 1e3 for k in kk], "k--", lw=1,
                 label="theory sync: k x (work + RTT)")
    axes[1].set_xlabel("services in the chain k")
    axes[1].set_ylabel("user latency of ok requests (ms)")
    axes[1].legend(fontsize=7)
    axes[2].set_xlabel("services in the chain k")
    axes[2].set_ylabel("async: time from the user's 'ok'\nto the last service applying it (ms)")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=7)
    fig.suptitle("A synchronous chain is as available as the product of its services (a^k) and as slow as their sum;"
                 "\nqueues keep the user on one service — the other outages turn into staleness, not errors")
    return {"distributed_monolith": fig}


def validate(quick: bool) -> list[Check]:
    """:func:`_world` against :func:`theory`: the synchronous chain of k = 8 (availability a^k, mean
    latency k x (work + RTT)) and the asynchronous hand-offs (availability a; k = 2 keeps the run
    short: the user-facing path is svc-1 alone whatever k). Tolerance: 4 SE, the availability's SE
    from the on/off outages' autocorrelation (module docstring), the latency's from the operations.
    """
    p = Params(ks=(8,), duration_s=120.0 if quick else 400.0, rate=30.0)
    seeds = range(1) if quick else range(5)
    src = ("availability of a series system a^k (Newman, Building Microservices ch. 4/12; Nygard, Release It!); "
           "two-state Markov outages")
    checks = []
    for arm, k in ((ARMS[0], 8), (ARMS[1], 2)):
        av, lat = [], []
        for seed in seeds:
            sim, _log, _up = _world(p, seed, k, arm)
            sim.run(until=p.duration_s + DRAIN_S)
            req = sim.metrics.requests()
            av.append(float((req.outcome == "ok").mean()))
            lat.extend(1e3 * req[req.outcome == "ok"].latency)
        th = theory(p, k, arm)
        m, ci = mean_ci95(av) if len(av) > 1 else (av[0], None)
        setup = (f"{arm}, k = {k}, a = {p.availability}, MTTR {p.mttr_s:g} s, {p.rate:g} req/s x "
                 f"{p.duration_s:g} s x {len(seeds)} seeds")
        checks.append(Check(src, setup, "availability, " + ("a^k" if arm == ARMS[0] else "a (only svc-1 on the path)"),
                            round(th["availability"], 5), m, 4 * th["se"] / math.sqrt(len(seeds)),
                            "4 SE: binomial plus the outages' autocorrelation (module docstring)", ci))
        if arm == ARMS[0]:
            m, ci = mean_ci95(lat)
            checks.append(Check("latencies of synchronous calls add up: k x (work + round trip)", setup,
                                "mean latency of ok requests (ms)", round(th["latency_s"] * 1e3, 4), m,
                                4 * float(np.std(lat, ddof=1) / math.sqrt(len(lat))),
                                f"4 SE of {len(lat)} operations", ci))
    return checks
