"""Reusable scenarios that several experiments (and their tests) share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from models.resilience.pipeline import BareCaller, Pipeline, TimeoutConfig
from simulator import Exponential, LogNormal, Simulation, availability

from .service import Call, Endpoint, Service
from .workload import PoissonClient


@dataclass(frozen=True)
class SlowDependencyParams:
    """The parameters of :func:`slow_dependency` that experiments expose (shared base)."""

    duration_s: float = 40.0
    slow_at: float = 10.0
    slow_s: float = 15.0
    slow_factor: float = 50.0
    rate: float = 200.0
    workers: int = 20

    def __post_init__(self) -> None:
        if not (0 <= self.slow_at and self.slow_at + self.slow_s <= self.duration_s):
            raise ValueError("need 0 <= slow_at and slow_at + slow_s <= duration_s")
        if self.rate <= 0 or self.slow_factor < 1:
            raise ValueError(f"rate must be > 0 and slow_factor >= 1, got {self.rate}, {self.slow_factor}")
        if not (isinstance(self.workers, int) and self.workers >= 2):
            raise ValueError(f"workers must be an integer >= 2, got {self.workers!r}")


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


def availability_figure(frames: dict[str, pd.DataFrame], window: tuple[float, float], title: str):
    """Availability over time of endpoints a and b, one line per arm (``arm`` column)."""
    import matplotlib.pyplot as plt

    from simulator import plots

    avail = frames["availability"]
    if "seed" in avail:
        avail = avail.groupby(["arm", "op", "window"], as_index=False)["availability"].mean()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, constrained_layout=True)
    for ax, op, label in zip(axes, ("a", "b"), ("endpoint a (calls the slow db)", "endpoint b (local only)")):
        plots.shade_faults(ax, [(window[0], window[1], "db slow")])
        for i, (arm, g) in enumerate(avail[avail.op == op].groupby("arm", sort=False)):
            # Arms can coincide: vary the dash and width so an overlapped line stays visible.
            ax.step(g["window"], g["availability"], where="post", label=arm, color=plots.color_for(arm),
                    lw=2.6 - 0.7 * i, ls=("-", "--", ":")[i % 3])
        ax.set_title(label)
        ax.set_xlabel("time (s)")
        ax.set_ylim(-0.03, 1.05)
    axes[0].set_ylabel("availability (fraction ok)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    return fig
