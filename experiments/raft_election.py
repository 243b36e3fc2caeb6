"""How long does Raft take to elect a new leader after its leader crashes, and why randomize?

Setup: a five-node Raft cluster (2 ms median one-way latency); every ``crash_every_s`` the
current leader crashes and recovers ``down_s`` later. We time each crash → next leader
elected, for election timeouts drawn uniformly from ranges of different widths (150–151 ms
up to 150–300 ms, as in Fig. 16 of the Raft paper), and count split votes (terms in which
some node stood for election but nobody won).

Lesson: with a narrow range, followers time out almost together, split the vote, and must
time out again — elections take several rounds and vary widely. A little randomness (a range
of a few tens of ms, far more than the message latency) makes one node usually time out
first and win in a single round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.replication.consensus import RaftCluster, RaftConfig
from simulator import LogNormal, Simulation


@dataclass(frozen=True)
class Params:
    ranges_ms: tuple[int, ...] = (151, 155, 175, 200, 300)  # upper ends; the lower end is 150 ms
    duration_s: float = 120.0
    crash_every_s: float = 2.0
    down_s: float = 1.0
    latency_median_s: float = 0.002

    def __post_init__(self) -> None:
        if not self.ranges_ms or any(not isinstance(r, int) or r < 150 for r in self.ranges_ms):
            raise ValueError(f"ranges_ms must be integers >= 150 (the upper end of 150..x ms), got {self.ranges_ms}")
        if not (0 < self.down_s < self.crash_every_s < self.duration_s):
            raise ValueError("need 0 < down_s < crash_every_s < duration_s")
        if self.latency_median_s <= 0:
            raise ValueError(f"latency_median_s must be > 0, got {self.latency_median_s}")


QUICK = Params(ranges_ms=(151, 200, 300), duration_s=30.0)


def trial(seed: int, hi_ms: int, p: Params) -> tuple[list[float], int, int]:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5))
    c = RaftCluster(sim, 5, config=RaftConfig(election_timeout=(0.150, hi_ms / 1000), heartbeat_s=0.05))
    crashes: list[float] = []

    def crash_leader() -> None:
        lead = c.leader()
        if lead is not None:
            node = sim.nodes[lead]
            node.crash()
            crashes.append(sim.now)
            sim.at(p.down_s, node.recover)
        sim.at(p.crash_every_s, crash_leader)

    sim.at(p.crash_every_s, crash_leader)
    sim.run(until=p.duration_s)
    times = []
    won = [t for t, _, _ in c.elections]
    for t in crashes:
        after = [w for w in won if w > t]
        if after and after[0] - t < p.crash_every_s:
            times.append(after[0] - t)
    if c.violations:
        raise AssertionError(f"Raft safety violated: {c.violations[:3]}")
    return times, c.split_votes(until=p.duration_s - 1), len(c.elections)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, summary = [], []
    for hi in p.ranges_ms:
        times, splits, elections = trial(seed, hi, p)
        label = f"150–{hi} ms"
        rows += [{"range": label, "election_time_s": t} for t in times]
        arr = np.array(times)
        summary.append({"range": label, "width_ms": hi - 150, "mean_election_s": float(arr.mean()),
                        "p95_election_s": float(np.quantile(arr, 0.95)), "elections": elections,
                        "split_votes": splits, "split_votes_per_election": splits / max(elections, 1)})
    return {"elections": pd.DataFrame(rows), "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    e, s = results["elections"], results["summary"]
    s = s.groupby("range", sort=False, as_index=False)[["split_votes_per_election"]].mean()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    for label, g in e.groupby("range", sort=False):
        x = np.sort(g.election_time_s.to_numpy() * 1e3)
        a1.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=label, color=plots.color_for(label))
    a1.set_xscale("log")
    a1.set_xlabel("time from leader crash to new leader (ms)")
    a1.set_ylabel("fraction of elections ≤ x")
    a1.legend(title="election timeout", fontsize=8)
    a2.bar(s["range"], s["split_votes_per_election"], color=[plots.color_for(x) for x in s["range"]])
    a2.set_ylabel("split votes per successful election")
    a2.set_xlabel("election timeout range")
    fig.suptitle("Narrow election-timeout ranges cause split votes and slow elections; a little randomness fixes it")
    return {"raft_election": fig}
