"""Which load balancer copes best with one slow instance?

Setup: a proxy spreads 1000 req/s over 5 backend instances (4 workers each, exponential
10 ms service: 400 req/s each); one instance is 5x slower (a gray failure: alive, passing
health checks, but with a fifth of the capacity). Clients give up after 2 s. Policies, with
the same random streams: random, round robin, least outstanding requests, power of two
choices (P2C).

Lesson: random and round robin keep sending the slow instance its full fifth of the traffic
(200 req/s for 80 req/s of capacity): its queue grows without bound and the tail explodes.
Least-outstanding and P2C see its requests pile up and route around it (it gets ~7% instead
of 20%): every request is answered and p99 stays near 0.1 s instead of the 2 s timeout — P2C
with only two random probes per request.

Reproduces (``validate``): with n single-worker exponential instances at load rho, random
routing splits the Poisson stream into n M/M/1 queues, mean sojourn E[S]/(1 - rho), while P2C
follows Mitzenmacher's supermarket model, sum_i rho^(2^i - 2) E[S] as n grows (Mitzenmacher,
"The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 12(10), 2001; Vvedenskaya,
Dobrushin & Karpelevich 1996): at rho = 0.7, 35 ms against 16 ms plus the network. The limit is
checked where it applies: 100 instances and no network time, so the balancer's in-flight count is
the queue length incl. the job in service, the model's assumption. Measured (issue 24, 8 x 40k
requests each): with no network the excess over the limit falls like 1/n (4.4%, 2.2%, 1.3%, 0.7% at
n = 10, 20, 50, 100); the experiment's ~0.5 ms hops add a further ~1.7% at every n (6.0%, 3.9%,
3.0% at n = 10, 20, 50), because a finished request still counts as outstanding while its reply
travels back, so P2C compares slightly stale queue lengths.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.services import BALANCERS, Call, Endpoint, PoissonClient, Service
from simulator import Constant, Distribution, Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters


@parameters
class Params:
    duration_s: float = param(30.0, unit="s", gt=0, le=86_400, help="simulated time")
    rate: float = param(1000.0, unit="req/s", gt=0, le=1e6, help="requests per second")
    instances: int = param(5, unit="instances", ge=2, le=10_000, help="service instances behind the balancer")
    slow_factor: float = param(5.0, unit="x", ge=1, le=1e6, help="service-time multiplier of the slow instance")
    client_timeout_s: float = param(2.0, unit="s", gt=0, le=3600, help="client timeout")


QUICK = Params(duration_s=8.0, rate=800.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for policy in BALANCERS:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
        backend = Service(sim, "backend", endpoints={"get": Endpoint(work=Exponential(0.01))},
                          instances=p.instances, pools={"default": 4})
        backend.nodes[0].slow_down(p.slow_factor)
        proxy = Service(sim, "proxy", endpoints={"get": Endpoint(calls=(Call("backend"),))},
                        pools={"default": 100_000}, balancer=policy)
        PoissonClient(sim, "clients", proxy.instances, rate=p.rate, timeout_s=p.client_timeout_s,
                      stop_at=p.duration_s)
        sim.run(until=p.duration_s + p.client_timeout_s + 1)
        df = sim.metrics.requests()
        routed = proxy.balancer(proxy.instances[0], "backend").routed
        lat = df.latency.where(df.outcome == "ok", p.client_timeout_s)  # a timeout counts as the wait
        rows.append({"policy": policy, "p50_s": float(lat.quantile(0.5)), "p99_s": float(lat.quantile(0.99)),
                     "ok_fraction": float((df.outcome == "ok").mean()),
                     "share_to_slow": routed["backend-0"] / sum(routed.values())})
    return {"summary": pd.DataFrame(rows)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt
    import numpy as np

    from simulator import plots

    s = results["summary"].groupby("policy", sort=False, as_index=False)[
        ["p50_s", "p99_s", "share_to_slow"]].mean()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    x = np.arange(len(s))
    colors = [plots.color_for(f"lb:{pol}") for pol in s.policy]
    a1.bar(x - 0.2, s.p50_s * 1e3, 0.4, color=colors, alpha=0.5, label="p50")
    a1.bar(x + 0.2, s.p99_s * 1e3, 0.4, color=colors, label="p99")
    a1.set_yscale("log")
    a1.set_xticks(x, s.policy)
    a1.set_ylabel("latency (ms, timeouts count as 2 s)")
    a1.legend()
    a2.bar(x, s.share_to_slow, color=colors)
    a2.axhline(1 / p.instances, color="0.5", ls=":")
    a2.text(-0.4, 1 / p.instances, " fair share", va="bottom", fontsize=8)
    a2.set_xticks(x, s.policy)
    a2.set_ylabel("share of requests sent to the slow instance")
    fig.suptitle("One slow instance: random and round robin feed it anyway; "
                 "least-outstanding and P2C route around it")
    return {"load_balancing": fig}


_SERVICE_S, _NET_MEDIAN_S, _NET_SIGMA = 0.01, 0.0005, 0.3


def supermarket_sojourn(rho: float, d: int = 2) -> float:
    """Mean time in system / mean service of the supermarket model as n -> infinity (Mitzenmacher
    2001, Theorem: s_i = rho^((d^i - 1)/(d - 1)), so E[T] = sum_{i>=1} rho^((d^i - d)/(d - 1)));
    d = 1 is M/M/1's 1/(1 - rho)."""
    if d == 1:
        return 1 / (1 - rho)
    return sum(rho ** ((d ** i - d) / (d - 1)) for i in range(1, 64) if (d ** i - d) / (d - 1) < 2000)


def balanced_sojourn(policy: str, *, instances: int, rho: float, seed: int, duration_s: float,
                     warmup_s: float = 0.5, latency: Distribution | None = None) -> float:
    """Mean client latency (s) of requests through :func:`run`'s proxy to ``instances`` single-worker
    backends (Exponential 10 ms) at utilisation ``rho``, none slow; requests started before
    ``warmup_s`` are left out (the queues start empty). ``latency``: one network hop (default the
    experiment's LogNormal, median 0.5 ms)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=_NET_MEDIAN_S, sigma=_NET_SIGMA) if latency is None else latency)
    Service(sim, "backend", endpoints={"get": Endpoint(work=Exponential(_SERVICE_S))}, instances=instances,
            pools={"default": 1})
    proxy = Service(sim, "proxy", endpoints={"get": Endpoint(calls=(Call("backend"),))},
                    pools={"default": 100_000}, balancer=policy)
    PoissonClient(sim, "clients", proxy.instances, rate=rho * instances / _SERVICE_S, timeout_s=100.0,
                  stop_at=warmup_s + duration_s)
    sim.run(until=warmup_s + duration_s + 5.0)
    df = sim.metrics.requests()
    return float(df[df.start >= warmup_s].latency.mean())


def validate(quick: bool) -> list[Check]:
    """Mean latency at rho = 0.7 through the experiment's proxy and balancers: random against M/M/1
    (Poisson splitting; exact for any n) plus the four network hops (client, proxy, backend and back:
    4 E[one-way]); P2C against the supermarket model's n -> infinity limit (Mitzenmacher 2001;
    Vvedenskaya et al. 1996), measured where that model applies: no network time (the balancer's
    outstanding count is then the backend's queue incl. the job in service) and n = 100, whose
    finite-n excess (~0.7%, falling like 1/n, see the module docstring) is below the tolerance.
    Tolerance: 4 SE of independent replications.
    """
    rho = 0.7
    hops = 4 * _NET_MEDIAN_S * math.exp(_NET_SIGMA ** 2 / 2)
    reps = 3 if quick else 12
    checks = []
    for policy, n, dur, d, net in (("random", 10, 2.5 if quick else 10.0, 1, None),
                                   ("p2c", 100, 0.35 if quick else 2.5, 2, Constant(0.0))):
        xs = [1e3 * balanced_sojourn(policy, instances=n, rho=rho, seed=300 + r, duration_s=dur, latency=net,
                                     warmup_s=0.5 if net is None else 0.2) for r in range(reps)]
        m, ci = mean_ci95(xs)
        se = float(np.std(xs, ddof=1) / math.sqrt(reps))
        h = hops if net is None else 0.0
        src = ("M/M/1 mean sojourn E[S]/(1 - rho) (random routing splits a Poisson stream)" if d == 1 else
               "Mitzenmacher 2001 (IEEE TPDS), supermarket model d = 2: E[T] = sum rho^(2^i - 2) E[S]")
        setup = (f"{policy}, {n} instances x 1 worker, Exponential(10 ms), rho = {rho}; {dur:g} s x {reps} runs "
                 f"after {0.5 if net is None else 0.2:g} s warm-up" + ("" if net is None else "; no network time"))
        checks.append(Check(
            src, setup, "mean latency (ms), incl. 4 network hops" if net is None else "mean latency (ms)",
            round(1e3 * (supermarket_sojourn(rho, d) * _SERVICE_S + h), 4), m, 4 * se,
            f"4 SE of {reps} independent replications", ci))
    return checks
