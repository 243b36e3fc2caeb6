"""Where does each replication setting sit between partition availability, anomalies and normal-case latency?

Setup: five replicas and four clients, two on each side of a partition that cuts off two replicas (the minority)
from three (the majority) for ``partition_s`` seconds, after ``partition_at`` seconds without faults. Each
configuration serves the same workload (Poisson reads and writes on a few keys, unique values, ``timeout_s`` client
timeout) in its own fresh ``Simulation(seed)`` with the same stream names and the same fault: common random numbers,
so the differences between points are the configuration, not the noise (a client that is still busy skips an
arrival, so the k-th operation of each client is the same read or write of the same key in every configuration,
though not always at the same time). ``raft`` is a Raft cluster with read-index reads (CP). ``N-R-W`` is a
Dynamo-style leaderless store (``models.replication.eventual``): N owners per key on the five nodes, replies after R
read / W write acks, last-writer-wins by each coordinator's physical clock — the clocks spread evenly over
``skew_s`` — with read repair, hinted handoff and anti-entropy; each client uses a home replica on its own side. No
sloppy quorum: with N = 5 there is no node outside the preference list to take a hint, so a W that a side cannot
reach with its own owners is refused there (Dynamo's "always writeable" needs spare nodes, DeCandia et al. 2007
§4.6). Measured per configuration: availability (ok / issued) per side for operations issued during the partition;
stale reads (an ok read that returned a version certainly older than a write acknowledged before the read began,
``simulator.history.staleness``); lost writes (acknowledged writes that are not in Raft's committed log, or that
LWW orders before a write that completed earlier); and, in the fault-free stretch before the partition, latency
p50/p99 of ok operations and the stale-read rate. Every replica takes ``apply_mean_s`` (exponential) to persist a
write: Raft's fsync, the leaderless store's write delay. Linearizability is not checked (its search time is not
bounded for the stale histories; ``splitbrain check linearizable`` reads the saved histories).

Lesson: Brewer's CAP and Abadi's PACELC (IEEE Computer 2012) are arithmetic here. A side with s replicas serves
reads iff R <= s and writes iff W <= s; a minority of 2 can do both only if R + W <= 4 < N, so every configuration
that stays available on the minority side gives up the R + W > N intersection, and its reads go stale there (Raft
refuses the minority instead and loses nothing). Else — no partition — the same choice is latency against
consistency: R = W = 1 answers from the home replica and is the fastest and stalest; larger quorums and Raft wait
for more replicas.
Clock skew erodes even R + W > N: LWW by skewed clocks can order a later write before an earlier one, so a quorum
read returns the older value and the later write is lost; only with skew_s = 0 is R + W > N never stale and LWW
never loses an acknowledged write.

Reproduces (``validate``): the quorum arithmetic of the lesson row by row — a side of s replicas
serves reads iff R <= s and writes iff W <= s (Gifford, SOSP 1979; DeCandia et al. 2007 §4.5;
Gilbert & Lynch 2002 for Raft's minority) — as availability 1 or 0 of every operation issued on
each side during the partition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.replication.consensus import RaftCluster
from models.replication.eventual import EventualStore, superseded_writes
from models.replication.kv import KVWorkload
from models.replication.pbs import parse_nrw
from simulator import Exponential, LogNormal, Simulation
from simulator.history import History
from simulator.runner import Check, param, parameters

REPLICAS = 5
MINORITY = 2  # replicas cut off; the other REPLICAS - MINORITY are the majority
CLIENTS = {"min_a": "minority", "min_b": "minority", "maj_a": "majority", "maj_b": "majority"}
HOMES = {"min_a": 0, "min_b": 1, "maj_a": 2, "maj_b": 3}  # home replica index of each client (AP configs)


@parameters
class Params:
    configs: tuple[str, ...] = param(("raft", "5-1-1", "5-2-2", "5-3-3", "5-1-5", "5-5-1"), unit="config",
                                     help="'raft' (CP) or 'N-R-W' leaderless LWW with 1 <= R, W <= N <= 5")
    partition_at: float = param(5.0, unit="s", gt=0, le=3600, help="fault-free time before the split (PACELC else)")
    partition_s: float = param(5.0, unit="s", gt=0, le=3600, help="how long the 2 | 3 split lasts")
    duration_s: float = param(15.0, unit="s", gt=0, le=3600, help="simulated time (the workload stops then)")
    skew_s: float = param(0.01, unit="s", ge=0, le=3600, help="spread of clock offsets among the leaderless replicas")
    rate: float = param(20.0, unit="ops/s", gt=0, le=10_000, help="operations per second per client (4 clients)")
    keys: int = param(3, unit="keys", ge=1, le=10_000, help="distinct keys")
    write_ratio: float = param(0.4, unit="fraction", gt=0, lt=1, help="share of writes (the rest are reads)")
    timeout_s: float = param(0.5, unit="s", gt=0, le=60, help="client timeout per attempt")
    apply_mean_s: float = param(0.005, unit="s", ge=0, le=10, help="mean time a replica takes to persist a write "
                                "(exponential): Raft's fsync, the leaderless store's write_delay")
    latency_median_s: float = param(0.002, unit="s", gt=0, le=10, help="median one-way network latency (lognormal)")

    def __post_init__(self) -> None:
        if len(set(self.configs)) != len(self.configs):
            raise ValueError(f"parameter configs={self.configs!r}: each configuration at most once")
        for c in self.configs:
            if c == "raft":
                continue
            try:
                n, _, _ = parse_nrw(c)
            except ValueError as e:
                raise ValueError(f"parameter configs={self.configs!r}: {c!r} is neither 'raft' nor valid N-R-W "
                                 f"({e})") from None
            if n > REPLICAS:
                raise ValueError(f"parameter configs={self.configs!r}: {c!r} has N = {n} > {REPLICAS} replicas")
        if not self.partition_at + self.partition_s < self.duration_s:
            raise ValueError(f"need partition_at + partition_s < duration_s (time to heal and settle), got "
                             f"{self.partition_at} + {self.partition_s} >= {self.duration_s}")


QUICK = Params(partition_at=2.0, partition_s=2.0, duration_s=5.0)



def _apply(p: Params) -> Exponential | None:
    return Exponential(p.apply_mean_s) if p.apply_mean_s > 0 else None


def _store(sim: Simulation, config: str, p: Params):
    """The store and the clients' home replicas (None: Raft clients follow the leader hint)."""
    if config == "raft":
        return RaftCluster(sim, REPLICAS, name="r", fsync=_apply(p)), None
    n, r, w = parse_nrw(config)
    offsets = [-p.skew_s / 2 + p.skew_s * i / (REPLICAS - 1) for i in range(REPLICAS)]
    store = EventualStore(sim, n=n, r=r, w=w, resolution="lww", cluster_size=REPLICAS,
                          clocks=[dict(offset_s=o) for o in offsets], write_delay=_apply(p) or 0.0,
                          anti_entropy_interval_s=0.5, read_repair=True, hinted_handoff=True, prefix="e",
                          record_versions=True)
    return store, {c: f"e{i}" for c, i in HOMES.items()}


def _ok_share(d: pd.DataFrame) -> float:
    return float((d.outcome == "ok").mean()) if len(d) else float("nan")


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    from simulator.history.staleness import staleness

    heal_at = p.partition_at + p.partition_s
    rows, ops, histories = [], [], {}
    for config in p.configs:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5))
        store, placement = _store(sim, config, p)
        h = History()
        KVWorkload(sim, store, clients=list(CLIENTS), rate=p.rate, keys=p.keys, write_ratio=p.write_ratio,
                   timeout_s=p.timeout_s, history=h, stop_at=p.duration_s, client_placement=placement, name="kv")
        names = [nd.name for nd in store.nodes]
        sim.faults.partition(at=p.partition_at, heal_at=heal_at,
                             groups=[names[:MINORITY] + ["min_a", "min_b"], names[MINORITY:] + ["maj_a", "maj_b"]])
        # every attempt ends within (redirects + 1) timeouts of the stop
        sim.run(until=p.duration_s + 4 * p.timeout_s + 1)
        df = sim.metrics.requests()
        # history invokes and metrics requests are begun together, in the same order: the key joins them
        df = df.assign(key=[h.key[i] for i, t in enumerate(h.type) if t == "invoke"], config=config,
                       side=df.client.astype(str).map(CLIENTS))
        ops.append(df[["config", "client", "side", "op", "key", "start", "end", "outcome", "latency"]])
        histories[f"history_{config}"] = h  # histories/*.jsonl, for splitbrain check
        fresh = staleness(h)
        lost = store.lost_acked_writes(h) if placement is None else superseded_writes(h, store)[0]
        during = df[(df.start >= p.partition_at) & (df.start < heal_at)]
        before = df[df.start < p.partition_at]
        ok_before = before[before.outcome == "ok"].latency.to_numpy() * 1e3
        fresh_before = fresh[fresh.invoke < p.partition_at]
        stale = int((fresh.k_stale > 0).sum())
        row = dict(config=config, cp=config == "raft", ops=len(df))
        for side in ("minority", "majority"):
            d = during[during.side == side]
            row[f"availability_{side}"] = _ok_share(d)
            row[f"read_availability_{side}"] = _ok_share(d[d.op == "read"])
            row[f"write_availability_{side}"] = _ok_share(d[d.op == "write"])
        row.update(stale_reads=stale, reads_ok=len(fresh), stale_read_rate=stale / len(fresh) if len(fresh) else 0.0,
                   lost_writes=int(lost), anomalies_per_1000_ops=1000.0 * (stale + lost) / max(len(df), 1),
                   latency_p50_ms=float(np.quantile(ok_before, 0.5)) if len(ok_before) else float("nan"),
                   latency_p99_ms=float(np.quantile(ok_before, 0.99)) if len(ok_before) else float("nan"),
                   stale_read_rate_no_partition=float((fresh_before.k_stale > 0).mean()) if len(fresh_before)
                   else 0.0)
        rows.append(row)
    return {"summary": pd.DataFrame(rows), "ops": pd.concat(ops, ignore_index=True), **histories}


def validate(quick: bool) -> list[Check]:
    """Per configuration, side and operation: availability against the quorum rule (1 iff the
    side holds the R or W replicas the operation waits for; Raft: 0 on the minority, whose two
    replicas cannot form a majority of five).

    Measured over operations issued from ``partition_at`` until one client timeout before the
    heal (a later one may be answered after the heal, which the rule says nothing about), so the
    rule is exact for every operation: tolerance = half an operation of the side's count.
    """
    p = QUICK if quick else Params()
    seeds = (1,) if quick else (1, 2, 3)
    ops = pd.concat([run(p, seed)["ops"] for seed in seeds], ignore_index=True)
    heal_at = p.partition_at + p.partition_s
    d = ops[(ops.start >= p.partition_at) & (ops.start < heal_at - p.timeout_s)]
    checks = []
    for config in p.configs:
        sides = {"minority": MINORITY, "majority": REPLICAS - MINORITY}
        for side, size in sides.items():
            for op in ("read", "write"):
                if config == "raft":
                    if side == "majority":
                        continue  # an election may be needed first: no exact rule for that side
                    need, pub = "a majority (3)", 0.0
                else:
                    _, r, w = parse_nrw(config)
                    q = r if op == "read" else w
                    need, pub = f"{'R' if op == 'read' else 'W'} = {q}", float(q <= size)
                x = d[(d.config == config) & (d.side == side) & (d.op == op)]
                checks.append(Check(
                    source="Gifford, SOSP 1979; DeCandia et al., Dynamo, SOSP 2007 §4.5 (no sloppy quorum)"
                    if config != "raft" else "Gilbert & Lynch 2002, Theorem 1; Ongaro & Ousterhout 2014 (majority)",
                    setup=f"{config}, {REPLICAS} replicas split {MINORITY} | {REPLICAS - MINORITY}, {side} side "
                          f"({size} replicas), needs {need}; {len(x)} {op}s over {len(seeds)} seed(s)",
                    quantity=f"{op} availability on the {side} side (1 iff it holds the quorum)",
                    published=pub, measured=_ok_share(x), tolerance=0.5 / max(len(x), 1),
                    why="the rule holds for every operation issued at least one timeout before the heal: less "
                        "than one operation of the side's count"))
    return checks


def pareto_front(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Indices of the points no other point beats (higher-or-equal x and lower-or-equal y, one strictly), by x."""
    front = [i for i in range(len(x))
             if not any((x[j] >= x[i] and y[j] <= y[i]) and (x[j] > x[i] or y[j] < y[i]) for j in range(len(x)))]
    return sorted(front, key=lambda i: (x[i], y[i]))


def _label(config: str) -> str:
    """The config, and what a minority side of MINORITY replicas can still do with it."""
    if config == "raft":
        return config
    _, r, w = parse_nrw(config)
    can = [op for op, q in (("reads", r), ("writes", w)) if q <= MINORITY]
    return f"{config} ({' + '.join(can) or 'nothing'})" if len(can) < 2 else config


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"]
    if "seed" in s:
        s = s.groupby("config", as_index=False, sort=False)[
            ["availability_minority", "anomalies_per_1000_ops", "latency_p50_ms", "stale_read_rate_no_partition",
             "lost_writes"]].mean()
    colors = plots.policy_colors(list(s.config))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    panels = ((left, "availability_minority", 100, "anomalies_per_1000_ops", 1),
              (right, "latency_p50_ms", 1, "stale_read_rate_no_partition", 100))
    for ax, xc, xs, yc, ys in panels:
        x, y = s[xc].to_numpy(float) * xs, s[yc].to_numpy(float) * ys
        dx, dy = 0.07 * (np.ptp(x) or 1.0), 0.05 * (np.ptp(y) or 1.0)
        for i, c in enumerate(s.config):
            ax.scatter(x[i], y[i], s=130 if c == "raft" else 70, color=colors[c], edgecolor="black", lw=0.6,
                       zorder=3, marker="s" if c == "raft" else "o")
            near = sum(1 for j in range(i) if abs(x[j] - x[i]) < dx and abs(y[j] - y[i]) < dy)  # stack labels
            ax.annotate(_label(c) if ax is left else c, (x[i], y[i]), textcoords="offset points",
                        xytext=(6, 5 + 12 * near), fontsize=9)
        ax.grid(alpha=0.3)
        ax.margins(x=0.15, y=0.12)
    x = s.availability_minority.to_numpy(float) * 100
    y = s.anomalies_per_1000_ops.to_numpy(float)
    front = pareto_front(x, y)
    left.step(x[front], y[front], where="post", color="0.3", lw=1.2, ls="--", zorder=2, label="Pareto frontier")
    left.legend(loc="upper left", fontsize=8)
    left.set_xlabel("minority-side availability during the partition (% of ops ok)")
    left.set_ylabel("anomalies: (stale reads + lost writes) per 1000 ops")
    left.set_title(f"Partition ({p.partition_s:g} s, 2 | 3): reads and writes on the minority need\n"
                   "R+W <= N — and R+W <= N reads go stale", fontsize=10)
    right.set_xlabel("p50 latency with no partition (ms)")
    right.set_ylabel("stale reads with no partition (% of ok reads)")
    right.set_title(f"Else (no partition, clock skew {p.skew_s * 1e3:g} ms): R=W=1 is fastest and stalest;\n"
                    "waiting for more replicas costs latency", fontsize=10)
    fig.suptitle("CAP/PACELC frontier: no configuration serves both reads and writes on the minority side "
                 "without stale reads, and none avoids them without waiting")
    return {"cap_frontier": fig}
