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
"""

from __future__ import annotations

import pandas as pd

from models.services import BALANCERS, Call, Endpoint, PoissonClient, Service
from simulator import Exponential, LogNormal, Simulation
from simulator.runner import param, parameters


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
