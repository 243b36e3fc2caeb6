"""Do isolated worker pools (bulkheads) contain a slow dependency?

Setup: the frontend of the ``timeouts`` experiment, with no timeout on its db call: endpoint
``a`` calls the db, endpoint ``b`` does local work only, 200 req/s each; the db slows down
50x for a while. Arms: one shared pool of 20 workers, or isolated pools of 10 per endpoint
(Hystrix's thread-pool bulkhead).

Lesson: with a shared pool the requests stuck on the db take every worker and endpoint ``b``
fails with ``a``. With bulkheads only ``a``'s pool is exhausted; ``b`` stays fully
available — the failure is contained to the compartment that depends on the slow service.

Reproduces (``validate``): a bulkhead without a queue (Hystrix's default thread pool,
``maxQueueSize = -1``: a SynchronousQueue) is Erlang's loss system, so its rejection rate is
Erlang B; one pool of 2c workers shared by two endpoints rejects less than two pools of c
(the price of isolation); and with bulkheads endpoint b keeps all its requests during the slowdown.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments._common import SlowDependencyParams
from models.services import Endpoint, PoissonClient, Service
from models.services.scenarios import slow_dependency
from simulator import Exponential, LogNormal, Simulation
from simulator.plots import availability_by_arm
from simulator.runner import Check, mean_ci95, parameters


@parameters
class Params(SlowDependencyParams):
    """The workers are split in two pools of half each in the bulkhead arm."""


QUICK = Params(duration_s=12.0, slow_at=3.0, slow_s=5.0, rate=150.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    arms = {"shared pool": {"default": p.workers},
            "bulkheads (isolated pools)": {"a": p.workers // 2, "b": p.workers - p.workers // 2}}
    out: dict[str, list[pd.DataFrame]] = {}
    for arm, pools in arms.items():
        res = slow_dependency(seed, duration_s=p.duration_s, slow_at=p.slow_at, slow_s=p.slow_s,
                              slow_factor=p.slow_factor, rate=p.rate, dep_timeout_s=math.inf, pools=pools)
        for k in ("availability", "summary"):
            out.setdefault(k, []).append(res[k].assign(arm=arm))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    return {"bulkhead": availability_by_arm(
        results, (p.slow_at, p.slow_at + p.slow_s),
        "A shared pool lets a slow db take down endpoint b; bulkheads contain the failure")}


def erlang_b(servers: int, offered: float) -> float:
    """Erlang B: P(all ``servers`` busy) for Poisson arrivals of ``offered`` erlangs, no queue (Erlang 1917)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def loss_pool(seed: int, *, pools: dict[str, int], rate: float, holding_s: float, duration_s: float) -> float:
    """Fraction of requests a frontend's pools reject on arrival (``queue_limit=0``: no queue), with
    endpoints ``a`` and ``b`` each at ``rate`` req/s holding a worker for Exponential(``holding_s``)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    shared = "default" in pools
    fe = Service(sim, "fe", endpoints={op: Endpoint(work=Exponential(holding_s), pool="default" if shared else op)
                                       for op in ("a", "b")}, pools=pools, queue_limit=0)
    for op in ("a", "b"):
        PoissonClient(sim, f"client-{op}", fe.instances, op=op, rate=rate, timeout_s=10.0, stop_at=duration_s)
    sim.run(until=duration_s + 1.0)
    st = fe.pool_stats()
    return float(st.rejected.sum() / (st.rejected.sum() + st.served.sum()))


def validate(quick: bool) -> list[Check]:
    """Erlang B (Erlang 1917) for the bulkhead's worker pools with no queue — Hystrix's default thread
    pool (Hystrix wiki, Configuration: ``maxQueueSize`` -1 = SynchronousQueue, coreSize 10) — measured
    on the ``Service`` pools this experiment runs in, at 8 erlangs per endpoint; Erlang B holds for any
    holding-time distribution (insensitivity). Plus isolation: b's availability during the db slowdown
    in :func:`run`'s bulkhead arm, against 1 (its pool of 10 serves 0.3 erlangs: Erlang C puts the
    chance of even waiting near 1e-10). Tolerance: 4 SE of independent replications, or for the
    availability the resolution of one request in the window.
    """
    p = QUICK
    c = p.workers // 2
    holding = 8.0 / p.rate  # 8 erlangs per endpoint
    dur, reps = (20.0, 4) if quick else (100.0, 16)
    checks = []
    for label, pools, servers, load in (("bulkheads: 2 pools of 10", {"a": c, "b": c}, c, 8.0),
                                        ("one shared pool of 20", {"default": 2 * c}, 2 * c, 16.0)):
        xs = [loss_pool(1000 * k + 7, pools=pools, rate=p.rate, holding_s=holding, duration_s=dur)
              for k in range(reps)]
        m, ci = mean_ci95(xs)
        se = float(np.std(xs, ddof=1) / math.sqrt(reps))
        checks.append(Check(
            "Erlang B formula (Erlang 1917); Hystrix wiki, Configuration (maxQueueSize -1: no queue)",
            f"{label}, no queue; 2 endpoints x {p.rate:g} req/s x {holding * 1e3:.1f} ms exponential hold; "
            f"{dur:g} s x {reps} runs", f"rejected fraction, B({servers}, {load:g})",
            round(erlang_b(servers, load), 5), m, 4 * se, f"4 SE of {reps} independent replications", ci))
    s = run(p, seed=1)["summary"]
    b = s[(s.arm == "bulkheads (isolated pools)") & (s.endpoint == "b")].availability_during.iloc[0]
    n_b = p.rate * p.slow_s
    checks.append(Check(
        "Hystrix wiki, How it Works: Isolation (a latent dependency saturates only its own pool)",
        f"run(QUICK): db {p.slow_factor:g}x slower for {p.slow_s:g} s, no timeout, pools of {c}",
        "endpoint b's availability during the slowdown (bulkheads)", 1.0, float(b), round(1 / n_b, 5),
        f"one request of the ~{n_b:.0f} b sends in the window (Erlang C: P(wait) ~ 1e-10)"))
    return checks
