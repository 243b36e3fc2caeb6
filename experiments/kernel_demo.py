"""What do clients see when a lossy network partitions them from part of a cluster?

Setup: three servers (4 workers each, exponential service) behind a lossy network with
lognormal latency; two clients — one on each side of the coming split — send Poisson
requests with a timeout and retries (exponential backoff, full jitter) to any server.
From ``partition_at`` to ``heal_at`` the network splits {client_a, s0} | {client_b, s1, s2}.

Lesson: retries hide packet loss almost entirely, but a partition shows up at once as
timeouts and a latency tail (retries that wait out their backoff) on the side that can no
longer reach most servers; availability returns the moment the partition heals.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.resilience import RetryPolicy
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation, availability_by_side, latency_percentiles


@dataclass(frozen=True)
class Params:
    duration_s: float = 30.0
    rate: float = 400.0  # requests per second, per client
    loss: float = 0.01
    latency_median_s: float = 0.002
    service_mean_s: float = 0.004
    workers: int = 4
    timeout_s: float = 0.05
    max_attempts: int = 3
    partition_at: float = 10.0
    heal_at: float = 20.0
    window_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if not 0 <= self.partition_at < self.heal_at <= self.duration_s:
            raise ValueError(
                f"need 0 <= partition_at < heal_at <= duration_s, got {self.partition_at}, "
                f"{self.heal_at}, {self.duration_s}")
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 requests/s, got {self.rate}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {self.window_s}")


QUICK = Params(duration_s=6.0, rate=200.0, partition_at=2.0, heal_at=4.0)

SIDES = {"client_a": "minority {client_a, s0}", "client_b": "majority {client_b, s1, s2}"}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5), loss=p.loss)
    servers = [sim.node(f"s{i}") for i in range(3)]
    for s in servers:
        s.serve("get", service=Exponential(p.service_mean_s), workers=p.workers)
    retry = RetryPolicy(max_attempts=p.max_attempts, backoff="exponential", base_s=0.01,
                        cap_s=0.2, jitter="full")
    for c in SIDES:
        PoissonClient(sim, c, [s.name for s in servers], rate=p.rate, timeout_s=p.timeout_s,
                      retry=retry, stop_at=p.duration_s)
    sim.faults.partition(at=p.partition_at, heal_at=p.heal_at,
                         groups=[["client_a", "s0"], ["client_b", "s1", "s2"]])
    sim.run(until=p.duration_s + 1.0)  # one extra second lets the last requests finish
    df = sim.metrics.requests()
    avail = availability_by_side(df, SIDES, window=p.window_s)
    pct = latency_percentiles(df, (0.5, 0.99), window=p.window_s, ok_only=True)
    counts = df.groupby("client", observed=True)["outcome"].value_counts().unstack(fill_value=0)
    summary = pd.DataFrame({
        "side": [SIDES[c] for c in counts.index],
        "requests": counts.sum(axis=1).to_numpy(),
        "availability": (counts.get("ok", 0) / counts.sum(axis=1)).to_numpy(),
        "timeouts": counts.get("timeout", 0).to_numpy(),
        "p99_latency_s": [float(df[(df.client == c) & (df.outcome == "ok")]["latency"].quantile(0.99))
                          for c in counts.index],
    })
    return {"requests": df, "availability": avail, "percentiles": pct, "summary": summary}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    pct, avail = results["percentiles"], results["availability"]
    if "seed" in pct:  # several seeds: the mean per window
        pct = pct.groupby("window", as_index=False)[["p50", "p99"]].mean()
        avail = avail.groupby(["side", "window"], as_index=False)["availability"].mean()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, constrained_layout=True)
    window = [(p.partition_at, p.heal_at, "partition")]
    plots.percentiles_over_time(pct, fault_windows=window, ax=ax1, title="Latency of successful requests")
    plots.availability_over_time(avail, by="side", fault_windows=window, ax=ax2,
                                 title="Availability per side of the partition")
    ax1.set_xlabel("")
    fig.suptitle("Retries hide 1% loss; a partition costs the cut-off side availability until it heals")
    return {"kernel_demo": fig}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/kernel_demo")
    out.mkdir(parents=True, exist_ok=True)
    params = Params()
    res = run(params, seed=1)
    res["requests"].to_csv(out / "requests.csv", index=False)
    for name, fig in plot(res, params).items():
        fig.savefig(out / f"{name}.png", dpi=120)
    print(res["summary"].to_string(index=False))
