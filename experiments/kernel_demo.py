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

import pandas as pd

from models.resilience import RetryPolicy
from models.services import PoissonClient
from simulator import Exponential, FaultSchedule, LogNormal, Simulation, availability_by_side, latency_percentiles
from simulator.runner import param, parameters


@parameters
class Params:
    duration_s: float = param(30.0, unit="s", gt=0, le=86_400, help="simulated time")
    rate: float = param(400.0, unit="req/s", gt=0, le=1e6, help="requests per second, per client")
    loss: float = param(0.01, unit="probability", ge=0, le=1, help="per-message loss on every link")
    latency_median_s: float = param(0.002, unit="s", gt=0, le=60, help="median one-way latency (lognormal)")
    service_mean_s: float = param(0.004, unit="s", gt=0, le=60, help="mean service time (exponential)")
    workers: int = param(4, unit="threads", ge=1, le=100_000, help="workers per server")
    timeout_s: float = param(0.05, unit="s", gt=0, le=3600, help="client timeout per attempt")
    max_attempts: int = param(3, unit="attempts", ge=1, le=100, help="attempts per request (1 = no retry)")
    partition_at: float = param(10.0, unit="s", ge=0, help="when the network splits")
    heal_at: float = param(20.0, unit="s", gt=0, help="when it heals")
    window_s: float = param(0.5, unit="s", gt=0, le=3600, help="width of the availability/latency windows")
    faults_json: str = param("", help="a saved fault schedule (JSON) replacing the partition; set by --faults")

    def __post_init__(self) -> None:
        if not self.partition_at < self.heal_at <= self.duration_s:
            raise ValueError(
                f"need partition_at < heal_at <= duration_s, got {self.partition_at}, "
                f"{self.heal_at}, {self.duration_s}")
        if self.window_s > self.duration_s:
            raise ValueError(f"window_s must be <= duration_s, got {self.window_s} > {self.duration_s}")


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
    if p.faults_json:  # a saved schedule (splitbrain run kernel_demo --faults F.json) replaces the split
        sim.faults.extend(FaultSchedule.from_json(p.faults_json))
    else:
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


def validate(quick: bool) -> list:
    """Retries under independent loss: with per-message loss l each way an attempt succeeds with
    q = (1 - l)^2, so n attempts succeed with 1 - (1 - q)^n and take (1 - (1 - q)^n) / q attempts
    on average (a geometric law cut at n) — the arithmetic behind "retries hide loss"."""
    from simulator import Constant
    from simulator.runner import Check

    loss, n, reqs = 0.2, 3, (4_000 if quick else 40_000)
    sim = Simulation(seed=11)
    sim.network(latency=Constant(0.001), loss=loss)
    sim.node("s0").serve("get", service=Constant(0.0001), workers=1000)
    PoissonClient(sim, "c", ["s0"], rate=200.0, timeout_s=0.01, limit=reqs,
                  retry=RetryPolicy(max_attempts=n, backoff="none", jitter="none"))
    sim.run(until=reqs / 200.0 + 5)
    df = sim.metrics.requests()
    q = (1 - loss) ** 2
    ok, att = (df.outcome == "ok").to_numpy(float), df.attempts.to_numpy(float)
    se_ok, se_att = float(ok.std(ddof=1) / len(ok) ** 0.5), float(att.std(ddof=1) / len(att) ** 0.5)
    why = f"4 binomial standard errors of {len(df)} independent requests"
    setup = f"loss {loss} each way, {n} attempts, timeout >> round trip, no backoff"
    return [Check("retries under independent loss: 1-(1-q)^n", setup, "P(request succeeds)",
                  1 - (1 - q) ** n, float(ok.mean()), 4 * se_ok, why,
                  (float(ok.mean()) - 1.96 * se_ok, float(ok.mean()) + 1.96 * se_ok)),
            Check("truncated geometric law: (1-(1-q)^n)/q", setup, "mean attempts per request",
                  (1 - (1 - q) ** n) / q, float(att.mean()), 4 * se_att, why,
                  (float(att.mean()) - 1.96 * se_att, float(att.mean()) + 1.96 * se_att))]
