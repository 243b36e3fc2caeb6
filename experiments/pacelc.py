"""Without any partition, what does a stronger quorum cost? (the "ELC" of PACELC)

Setup: a Dynamo-style quorum store with no faults at all: lognormal network latency and an
exponential apply delay at each remote replica. Clients (one home coordinator each) read and
write a few hot keys. For each N/R/W setting: the mean and p99 latency of successful
operations, and the stale-read rate — the fraction of successful reads that returned a value
certainly ordered before a write that had completed before the read began
(``simulator.history.staleness.staleness``: ``k_stale > 0``). All settings share seeds and stream names.

Lesson: Abadi's PACELC (IEEE Computer 2012): *else* — when there is no partition — a
replicated system still trades latency against consistency. Waiting for more replicas (larger
R and W) removes stale reads (none at all once R + W > N) but every operation waits for the
slower of more replicas, so mean and tail latency grow; R = W = 1 is fastest and stalest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.replication.kv import KVWorkload
from models.replication.pbs import parse_nrw
from models.replication.quorum import QuorumStore
from simulator import Exponential, LogNormal, Simulation
from simulator.history.staleness import staleness
from simulator.runner import param, parameters


@parameters
class Params:
    settings: tuple[str, ...] = param(("3-1-1", "3-1-2", "3-2-1", "3-2-2", "3-1-3", "3-3-1", "3-3-3",
                                       "5-1-1", "5-2-2", "5-3-3"), unit="N-R-W",
                                      help="quorum settings, each 'N-R-W' with 1 <= R, W <= N")
    duration_s: float = param(20.0, unit="s", gt=0, le=3600, help="simulated time")
    clients: int = param(6, unit="clients", ge=1, le=1000, help="workload clients")
    rate: float = param(100.0, unit="ops/s", gt=0, le=100_000, help="operations per second per client")
    keys: int = param(5, unit="keys", ge=1, le=100_000, help="distinct keys")
    write_ratio: float = param(0.3, unit="fraction", gt=0, lt=1, help="share of writes")
    latency_median_s: float = param(0.002, unit="s", gt=0, le=60, help="median one-way latency (lognormal)")
    latency_sigma: float = param(0.6, unit="lognormal shape", gt=0, le=3, help="spread of the one-way latency")
    write_delay_mean_s: float = param(0.005, unit="s", ge=0, le=60, help="mean extra time a replica takes to apply "
                                                                      "a write (exponential)")

    def __post_init__(self) -> None:
        for s in self.settings:
            try:
                parse_nrw(s)
            except ValueError as e:
                raise ValueError(f"parameter settings={self.settings!r}: {e}") from None


QUICK = Params(duration_s=4.0, settings=("3-1-1", "3-2-2", "3-3-3"))


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, histories = [], {}
    for s in p.settings:
        n, r, w = parse_nrw(s)
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=p.latency_median_s, sigma=p.latency_sigma))
        delay = Exponential(p.write_delay_mean_s) if p.write_delay_mean_s > 0 else 0.0
        store = QuorumStore(sim, n=n, r=r, w=w, write_delay=delay, replica_timeout_s=1.0)
        wl = KVWorkload(sim, store, clients=p.clients, rate=p.rate, keys=p.keys, write_ratio=p.write_ratio,
                        timeout_s=2.0, stop_at=p.duration_s)
        sim.run(until=p.duration_s + 2.5)
        df = sim.metrics.requests()
        ok = df[df["outcome"] == "ok"]
        fresh = staleness(wl.history)
        histories[f"history_{s}"] = wl.history  # histories/*.jsonl, for splitbrain check
        lat = ok["latency"].to_numpy()
        rd = ok[ok["op"] == "read"]["latency"].to_numpy()
        wr = ok[ok["op"] == "write"]["latency"].to_numpy()
        rows.append(dict(setting=s, n=n, r=r, w=w, strict=r + w > n, ops=len(df), ok=len(ok),
                         mean_latency_s=float(lat.mean()), p99_latency_s=float(np.quantile(lat, 0.99)),
                         read_mean_s=float(rd.mean()), write_mean_s=float(wr.mean()),
                         stale_read_rate=float((fresh["k_stale"] > 0).mean()), reads=len(fresh)))
    return {"summary": pd.DataFrame(rows), **histories}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["setting", "n", "r", "w", "strict"], as_index=False)[
            ["mean_latency_s", "p99_latency_s", "stale_read_rate"]].mean()
    from simulator import plots

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5), sharey=True, constrained_layout=True)
    colors = plots.policy_colors(list(s["setting"]))
    for ax, col, name in ((axes[0], "mean_latency_s", "mean"), (axes[1], "p99_latency_s", "p99")):
        for _, row in s.iterrows():
            label = f"N={row.n} R={row.r} W={row.w}" + ("  R+W>N" if row.strict else "")
            ax.scatter(row[col] * 1e3, row.stale_read_rate * 100, marker="s" if row.strict else "o", s=60,
                       color=colors[row.setting], edgecolor="black", lw=0.5, label=label, zorder=3)
        ax.set_xlabel(f"{name} latency of successful operations (ms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("stale reads (% of successful reads)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="circle: partial, square: strict",
                   fontsize=8, title_fontsize=8)
    fig.suptitle("PACELC, no partition: stronger quorums cost latency even without partitions; "
                 "R+W>N reads are never stale")
    return {"pacelc": fig}
