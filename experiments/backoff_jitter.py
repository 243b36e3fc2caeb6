"""How much do jitter strategies save when many clients contend for one resource?

Setup (after Marc Brooker's "Exponential Backoff And Jitter", AWS Architecture Blog 2015):
N clients start at the same instant, each needing one successful write to a resource with
optimistic concurrency: a write fails with a conflict if another write attempt reached it
less than ``conflict_window_s`` earlier. Clients retry conflicts with capped exponential
backoff (base 10 ms, cap 2 s) and one of four jitter strategies: none, full, equal,
decorrelated. Same random streams for every strategy.

Lesson: without jitter the clients stay synchronised: every retry wave collides again and only
one client wins per wave, so N clients need N(N+1)/2 calls, one (capped) backoff apart.
Any jitter spreads the retries: at 100 clients it cuts the calls about 5x and the time to
completion about 30x; the differences among full, equal and decorrelated jitter are small
next to that (Brooker found full jitter slightly ahead on calls, as here at high N).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.resilience import Pipeline, RetryPolicy
from simulator import LogNormal, RpcError, Simulation

JITTERS = ("none", "full", "equal", "decorrelated")


@dataclass(frozen=True)
class Params:
    clients: tuple[int, ...] = (5, 10, 25, 50, 100)
    conflict_window_s: float = 0.01
    base_s: float = 0.01
    cap_s: float = 2.0
    max_attempts: int = 200

    def __post_init__(self) -> None:
        if not self.clients or any(not isinstance(n, int) or n < 1 for n in self.clients):
            raise ValueError(f"clients must be a non-empty tuple of integers >= 1, got {self.clients!r}")
        if self.conflict_window_s <= 0 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need conflict_window_s > 0, base_s > 0 and cap_s >= base_s")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


QUICK = Params(clients=(5, 20, 50))


def contention(seed: int, n: int, jitter: str, p: Params) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.2))
    resource = sim.node("resource")
    last = [-1.0]

    def write(msg):
        now = sim.now
        conflict = now - last[0] < p.conflict_window_s
        last[0] = now  # every attempt, failed or not, touches the resource
        if conflict:
            raise RpcError("conflict")
        return True

    resource.on("write", write)
    pipe = Pipeline(sim, retry=RetryPolicy(max_attempts=p.max_attempts, backoff="exponential", base_s=p.base_s,
                                           cap_s=p.cap_s, jitter=jitter, retry_on={"error", "timeout"}))
    log = sim.metrics
    for i in range(n):
        node = sim.node(f"client{i}")
        rid = log.begin(node.name, "resource", "write", 0.0)
        pipe.call(node, "resource", "write", None,
                  lambda o, v, rid=rid: log.end(rid, sim.now, o, 1 + int(log.get(rid, "retries"))), rid=rid)
    sim.run(until=3600)
    df = log.requests()
    return {"jitter": jitter, "clients": n, "total_calls": int(df.attempts.sum()),
            "completion_time_s": float(df.end.max()), "all_succeeded": bool((df.outcome == "ok").all())}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = [contention(seed, n, j, p) for j in JITTERS for n in p.clients]
    return {"summary": pd.DataFrame(rows)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby(["jitter", "clients"], as_index=False, sort=False)[
        ["total_calls", "completion_time_s"]].mean()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for j, g in s.groupby("jitter", sort=False):
        c = plots.color_for(f"jitter: {j}")
        a1.plot(g.clients, g.total_calls, "o-", color=c, label=j)
        a2.plot(g.clients, g.completion_time_s, "o-", color=c, label=j)
    a1.set_xlabel("contending clients")
    a1.set_ylabel("total calls (all clients)")
    a2.set_xlabel("contending clients")
    a2.set_ylabel("time until the last client succeeds (s)")
    a1.legend(title="jitter")
    fig.suptitle("Without jitter, retries stay synchronised and collide again; jitter spreads them out")
    return {"backoff_jitter": fig}
