"""Reusable scenarios that several experiments (and their tests) share."""

from __future__ import annotations

import math

import pandas as pd

from models.resilience.pipeline import BareCaller, Pipeline, TimeoutConfig
from simulator import Exponential, LogNormal, Simulation, availability

from .service import Call, Endpoint, Service
from .workload import PoissonClient


def slow_dependency(seed: int, *, duration_s: float, slow_at: float, slow_s: float, slow_factor: float,
                    rate: float, dep_timeout_s: float, pools: dict[str, int], client_timeout_s: float = 1.0,
                    window_s: float = 0.5) -> dict[str, pd.DataFrame]:
    """A frontend with endpoint ``a`` (calls the ``db`` service) and endpoint ``b`` (local
    work only), thread-per-request worker ``pools`` (``{"default": n}`` shared, or
    ``{"a": n, "b": m}`` isolated); ``db`` slows down by ``slow_factor`` from ``slow_at`` for
    ``slow_s``. Clients send ``rate`` req/s to each endpoint. Returns requests and availability
    per endpoint and window."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    Service(sim, "db", endpoints={"get": Endpoint(work=Exponential(0.01))}, instances=2, pools={"default": 8})
    caller = BareCaller() if math.isinf(dep_timeout_s) else Pipeline(
        sim, timeout=TimeoutConfig(request_s=dep_timeout_s), name="fe->db")
    shared = "default" in pools
    fe = Service(sim, "fe", endpoints={
        "a": Endpoint(work=0.001, calls=(Call("db"),), pool="default" if shared else "a"),
        "b": Endpoint(work=0.002, pool="default" if shared else "b")}, pools=pools, caller=caller)
    for op in ("a", "b"):
        PoissonClient(sim, f"client-{op}", fe.instances, op=op, rate=rate, timeout_s=client_timeout_s,
                      stop_at=duration_s)
    for inst in ("db-0", "db-1"):
        sim.faults.slow_down(slow_at, inst, slow_factor, slow_s)
    sim.run(until=duration_s + client_timeout_s + 0.5)
    df = sim.metrics.requests()
    avail = availability(df, window_s, by="op")
    during = df[(df.start >= slow_at) & (df.start < slow_at + slow_s)]
    after = df[df.start >= slow_at + slow_s + 2.0]
    rows = []
    for op in ("a", "b"):
        rows.append({"endpoint": op,
                     "availability_during": float((during[during.op == op].outcome == "ok").mean()),
                     "availability_after": float((after[after.op == op].outcome == "ok").mean()),
                     "availability_overall": float((df[df.op == op].outcome == "ok").mean())})
    return {"requests": df, "availability": avail, "summary": pd.DataFrame(rows)}
