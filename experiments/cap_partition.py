"""When the network splits, what does a CP store give up, and what does an AP store give up?

Setup: five replicas and four clients, two on each side of a partition that cuts off two
replicas (the minority) from three (the majority) between ``partition_at`` and ``heal_at``.
The same workload (Poisson reads, writes and compare-and-set on a few keys; unique values;
500 ms client timeout) runs against a CP store — Raft with read-index reads — and an AP
store — leaderless, last-writer-wins by each node's physical clock (R = W = 1, read repair,
hinted handoff, anti-entropy), whose clocks are skewed by up to ``skew_s``. Clients of the AP
store use a home replica on their side. Both arms share random streams.

Lesson (CAP): during the partition the CP store refuses the minority side (availability
there drops to 0) and stays linearizable; the AP store answers everyone, but serves stale
reads and, through LWW with skewed clocks, silently loses acknowledged writes — and it needs
time after the heal to converge.

Reproduces (``validate``): Gilbert & Lynch 2002 (ACM SIGACT News 33(2), Theorem 1, the proof of
Brewer's CAP conjecture) row by row: during the partition the CP store answers no request on the
minority side and stays linearizable; the AP store answers every request on both sides and is
not linearizable.
"""

from __future__ import annotations

import pandas as pd

from models.replication.consensus import RaftCluster
from models.replication.eventual import EventualStore, superseded_writes
from models.replication.kv import KVWorkload
from simulator import LogNormal, Simulation, availability_by_side
from simulator.history import History
from simulator.runner import Check, param, parameters

ARMS = ("CP: Raft", "AP: LWW eventual")
CLIENTS = {"min_a": "minority side", "min_b": "minority side", "maj_a": "majority side", "maj_b": "majority side"}


@parameters
class Params:
    duration_s: float = param(30.0, unit="s", gt=0, le=3600, help="simulated time")
    partition_at: float = param(10.0, unit="s", ge=0, help="when the network splits")
    heal_at: float = param(20.0, unit="s", gt=0, help="when it heals")
    rate: float = param(20.0, unit="ops/s", gt=0, le=10_000, help="operations per second per client")
    keys: int = param(3, unit="keys", ge=1, le=10_000, help="distinct keys")
    write_ratio: float = param(0.4, unit="fraction", ge=0, le=1, help="share of writes")
    cas_ratio: float = param(0.0, unit="fraction", ge=0, le=1,
                             help="share of compare-and-set (the AP store has none: keep 0 for identical workloads)")
    skew_s: float = param(0.05, unit="s", ge=0, le=3600, help="clock offset between the AP store's replicas")
    window_s: float = param(0.5, unit="s", gt=0, le=3600, help="width of the availability windows")

    def __post_init__(self) -> None:
        if not self.partition_at < self.heal_at < self.duration_s:
            raise ValueError(f"need partition_at < heal_at < duration_s, got {self.partition_at}, "
                             f"{self.heal_at}, {self.duration_s}")
        if self.write_ratio + self.cas_ratio > 1:
            raise ValueError(f"need write_ratio + cas_ratio <= 1, got {self.write_ratio} + {self.cas_ratio}")


QUICK = Params(duration_s=9.0, partition_at=3.0, heal_at=6.0)


def _store(sim: Simulation, arm: str, p: Params):
    if arm == ARMS[0]:
        return RaftCluster(sim, 5, name="r"), None
    offsets = [-p.skew_s / 2 + p.skew_s * i / 4 for i in range(5)]
    store = EventualStore(sim, n=5, r=1, w=1, resolution="lww", clocks=[dict(offset_s=o) for o in offsets],
                          anti_entropy_interval_s=0.5, read_repair=True, hinted_handoff=True, prefix="e",
                          record_versions=True)
    return store, {"min_a": "e0", "min_b": "e1", "maj_a": "e2", "maj_b": "e3"}



def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    from simulator.history.linearizable import check_linearizable
    from simulator.history.staleness import session_guarantees, staleness

    avail, summary, histories = [], [], {}
    for arm in ARMS:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.002, sigma=0.5))
        store, placement = _store(sim, arm, p)
        h = History()
        KVWorkload(sim, store, clients=list(CLIENTS), rate=p.rate, keys=p.keys, write_ratio=p.write_ratio,
                   cas_ratio=p.cas_ratio, timeout_s=0.5, history=h, stop_at=p.duration_s,
                   client_placement=placement, name="kv")
        names = [n.name for n in store.nodes]
        sim.faults.partition(at=p.partition_at, heal_at=p.heal_at,
                             groups=[names[:2] + ["min_a", "min_b"], names[2:] + ["maj_a", "maj_b"]])
        converged: list[float] = []
        if placement is not None:
            _probe(sim, store, converged, p.heal_at)
        sim.run(until=p.duration_s + 1)
        df = sim.metrics.requests()
        a = availability_by_side(df, CLIENTS, window=p.window_s).assign(arm=arm)
        avail.append(a)
        histories["history_" + arm.split(":")[0].lower()] = h  # written to histories/ as JSON Lines
        verdict = check_linearizable(h, time_limit_s=60)
        sessions = session_guarantees(h).groupby("guarantee")["violations"].sum()
        fresh = staleness(h)
        if placement is None:
            lost = store.lost_acked_writes(h)
            conv_time = 0.0  # a committed entry is on a majority at once; others catch up from the log
        else:
            lost = superseded_writes(h, store)[0]
            conv_time = converged[0] - p.heal_at if converged else float("nan")
        during = df[(df.start >= p.partition_at) & (df.start < p.heal_at)]
        for side in ("minority side", "majority side"):
            d = during[during.client.astype(str).map(CLIENTS) == side]
            summary.append({"arm": arm, "side": side, "availability_during": float((d.outcome == "ok").mean())})
        summary.append({"arm": arm, "side": "all", "availability_during": float((during.outcome == "ok").mean()),
                        "linearizable": verdict.valid is True, "stale_reads": int((fresh["k_stale"] > 0).sum()),
                        "reads": len(fresh), "lost_writes": lost,
                        "convergence_after_heal_s": conv_time,
                        "read_your_writes_violations": int(sessions.get("read_your_writes", 0)),
                        "monotonic_reads_violations": int(sessions.get("monotonic_reads", 0))})
    return {"availability": pd.concat(avail, ignore_index=True), "summary": pd.DataFrame(summary), **histories}


GILBERT_LYNCH = ("Gilbert & Lynch 2002, 'Brewer's conjecture and the feasibility of consistent, available, "
                 "partition-tolerant web services', ACM SIGACT News 33(2), Theorem 1")


def validate(quick: bool) -> list[Check]:
    """CAP (Gilbert & Lynch 2002, Theorem 1) as four rows: availability on the minority side and
    linearizability, for the CP and the AP arm, over several seeds.

    Theorem 1: no read/write object is both available (every request to a non-failed node gets a
    response) and atomic in executions that lose messages. Raft picks atomicity: a minority cannot
    elect or commit, so published availability there = 0; the LWW store picks availability
    (published 1) and so cannot be linearizable (published 0). The proof's execution — a write on
    one side, then a read on the other — happens in every seed (two clients per side, 40% writes).
    """
    p = QUICK if quick else Params()
    seeds = (1, 2) if quick else tuple(range(1, 11))
    s = pd.concat([run(p, seed)["summary"].assign(seed=seed) for seed in seeds], ignore_index=True)
    window = p.heal_at - p.partition_at
    late = 0.5 / window  # client timeout 0.5 s: a request started this close to the heal may finish after it
    setup = (f"5 replicas, 2 | 3 partition for {window:g} s, 4 clients at {p.rate:g} ops/s, "
             f"{p.write_ratio:.0%} writes, timeout 0.5 s; {len(seeds)} seeds")

    def avail(arm: str) -> float:
        return float(s[(s.arm == arm) & (s.side == "minority side")].availability_during.mean())

    def lin(arm: str) -> float:
        return float(s[(s.arm == arm) & (s.side == "all")].linearizable.astype(bool).mean())

    checks = []
    for arm, pub in ((ARMS[0], 0.0), (ARMS[1], 1.0)):
        checks.append(Check(
            source=GILBERT_LYNCH, setup=f"{arm}; {setup}",
            quantity="availability on the minority side during the partition", published=pub,
            measured=avail(arm), tolerance=late,
            why=f"a request started within one client timeout (0.5 s) of the heal may be answered after it: at "
                f"most 0.5 / {window:g} s of the side's requests; the other arm sits a full 1.0 away"))
    for arm, pub in ((ARMS[0], 1.0), (ARMS[1], 0.0)):
        checks.append(Check(
            source=GILBERT_LYNCH, setup=f"{arm}; {setup}; check_linearizable on the history",
            quantity="fraction of seeds whose history is linearizable", published=pub, measured=lin(arm),
            tolerance=0.0, why="a verdict, not a sample: every seed must agree with the theorem"))
    return checks


def _probe(sim: Simulation, store, out: list, after: float) -> None:
    """Record the first time after ``after`` at which every replica holds the same state."""
    if not out:
        if sim.now > after and store.converged():
            out.append(sim.now)
        else:
            sim.at(0.05, lambda: _probe(sim, store, out, after))


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    av = results["availability"]
    s = results["summary"]
    if "seed" in av:
        av = av.groupby(["arm", "side", "window"], as_index=False)["availability"].mean()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True, constrained_layout=True)
    for ax, arm in zip(axes, ARMS):
        plots.availability_over_time(av[av.arm == arm], by="side",
                                     fault_windows=[(p.partition_at, p.heal_at, "partition")], ax=ax, title=arm)
        tot = s[(s.arm == arm) & (s.side == "all")]
        lin = "linearizable" if bool(tot.linearizable.all()) else "NOT linearizable"
        ax.text(0.5, 0.45, f"{lin}\nstale reads: {int(tot.stale_reads.sum())}\n"
                f"lost acknowledged writes: {int(tot.lost_writes.sum())}", transform=ax.transAxes, fontsize=10,
                ha="center", va="center", bbox=dict(facecolor="white", alpha=0.9, edgecolor="0.7"))
    fig.suptitle("CAP in one picture: CP refuses the minority side and stays linearizable; "
                 "AP answers everyone but serves stale reads and loses writes")
    return {"cap_partition": fig}
