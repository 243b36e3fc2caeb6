"""Can a short latency spike leave a system down after the spike is gone (a metastable failure)?

Setup: one server (8 workers, exponential 10 ms service: capacity 800 req/s) behind an
open-loop Poisson load of 600 req/s (75% utilisation); clients time out after 100 ms. For
``spike_s`` seconds the network adds ``spike_extra_s`` of latency, so every attempt times out.
Arms (same random streams): *aggressive* retries (5 attempts, no backoff, no budget) vs
*backoff + jitter + budget* (3 attempts, exponential backoff with full jitter, and gRPC-style
retry throttling).

Lesson: aggressive retries multiply the offered load by up to 5x while requests time out.
The queue grows past the timeout, so even after the spike every request times out and is
retried: the system stays overloaded with goodput near zero long after its trigger is gone
(Bronson et al., "Metastable Failures in Distributed Systems", HotOS 2021). Backoff, jitter
and a retry budget keep the load near 1x and the system recovers as soon as the spike ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.resilience import Pipeline, RetryBudgetConfig, RetryPolicy, TimeoutConfig
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation

ARMS = ("aggressive retries", "backoff + jitter + budget")


@dataclass(frozen=True)
class Params:
    duration_s: float = 60.0
    rate: float = 600.0
    workers: int = 8
    service_mean_s: float = 0.01
    timeout_s: float = 0.1
    spike_at: float = 10.0
    spike_s: float = 2.0
    spike_extra_s: float = 0.15
    window_s: float = 1.0

    def __post_init__(self) -> None:
        if not (0 <= self.spike_at and self.spike_at + self.spike_s < self.duration_s):
            raise ValueError("need 0 <= spike_at and spike_at + spike_s < duration_s")
        for name in ("rate", "service_mean_s", "timeout_s", "spike_s", "window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {self.workers}")


QUICK = Params(duration_s=20.0, spike_at=4.0)


def _pipeline(sim: Simulation, arm: str, p: Params) -> Pipeline:
    t = TimeoutConfig(request_s=p.timeout_s)
    if arm == ARMS[0]:
        return Pipeline(sim, timeout=t, retry=RetryPolicy(max_attempts=5, backoff="none"), name="client")
    return Pipeline(sim, timeout=t, name="client",
                    retry=RetryPolicy(max_attempts=3, backoff="exponential", base_s=0.05, cap_s=1.0, jitter="full"),
                    retry_budget=RetryBudgetConfig(max_tokens=10, token_ratio=0.1))


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary = [], []
    for arm in ARMS:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.001, sigma=0.3))
        pool = sim.node("server").serve("get", service=Exponential(p.service_mean_s), workers=p.workers,
                                        queue_limit=20_000)
        PoissonClient(sim, "clients", ["server"], rate=p.rate, stop_at=p.duration_s, caller=_pipeline(sim, arm, p))
        sim.faults.latency_spike(p.spike_at, p.spike_s, extra_s=p.spike_extra_s)
        queue = []
        _sample(sim, pool, queue, p.window_s)  # samples now, then every window
        sim.run(until=p.duration_s + 2)
        df = sim.metrics.requests()
        w = (df.start // p.window_s) * p.window_s
        g = df.assign(window=w, good=df.outcome == "ok").groupby("window")
        s = pd.DataFrame({"goodput": g["good"].sum() / p.window_s,
                          "attempts_per_s": g["attempts"].sum() / p.window_s}).reset_index()
        q = pd.DataFrame(queue, columns=["window", "queue"])
        s = s.merge(q, on="window", how="left").assign(arm=arm)
        series.append(s)
        recovered = s[(s.window >= p.spike_at + p.spike_s + 5) & (s.window < p.duration_s - p.window_s)]
        summary.append({"arm": arm,
                        "goodput_after_spike": float(recovered.goodput.mean()) if len(recovered) else float("nan"),
                        "offered_load_x_after": float(recovered.attempts_per_s.mean() / p.rate),
                        "ok_fraction": float((df.outcome == "ok").mean()),
                        "max_queue": int(s["queue"].max())})
    return {"timeseries": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(summary)}


def _sample(sim: Simulation, pool, out: list, every: float) -> None:
    out.append((sim.now, pool.queue_length))
    sim.at(every, lambda: _sample(sim, pool, out, every))


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts = results["timeseries"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "window"], as_index=False)[["goodput", "queue", "attempts_per_s"]].mean()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, constrained_layout=True)
    spike = [(p.spike_at, p.spike_at + p.spike_s, "latency spike")]
    for ax in (a1, a2):
        plots.shade_faults(ax, spike)
    for arm, g in ts.groupby("arm", sort=False):
        c = plots.color_for(arm)
        a1.plot(g.window, g.goodput, label=arm, color=c, lw=1.8)
        a2.plot(g.window, g.queue, label=arm, color=c, lw=1.8)
    a1.axhline(p.rate, color="0.5", ls=":", lw=1)
    a1.text(0, p.rate, " offered load", va="bottom", fontsize=8, color="0.4")
    a1.set_ylabel("goodput (ok requests/s)")
    a1.legend(loc="center right", fontsize=8)
    a2.set_ylabel("server queue length (limit 20,000)")
    a2.set_xlabel("time (s)")
    fig.suptitle("Aggressive retries turn a 2 s latency spike into a lasting outage; "
                 "backoff + jitter + a budget recover")
    return {"retry_storm": fig}
