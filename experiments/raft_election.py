"""How long does Raft take to elect a new leader after its leader crashes, and why randomize?

Setup (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", USENIX ATC
2014, §9.3 and Fig. 16): five servers; in each trial the leader has just sent a synchronized
heartbeat (every follower's election timer restarts together) and crashes uniformly at random
within its heartbeat interval, which is half the minimum election timeout. "To generate a
worst-case scenario, the servers in each trial had different log lengths, so some candidates were
not eligible to become leader": here ``stale_followers`` (default 2) of the four survivors lack the
leader's last entry, so only the two others can win (with all-distinct log lengths it is also
exactly two of four that are eligible). Election timeouts are uniform on each ``min–max`` range; the
paper's broadcast time is "roughly 15 ms". Each trial is a fresh simulation seeded from
``SeedSequence(seed, spawn_key=(hash("raft_election.trial"), trial))``: trial ``i`` sees the same
random numbers in every range (common random numbers). Measured: the time from the crash until the
new leader is recognised by a majority — the moment its first AppendEntries has reached enough
followers that the leader plus they form a majority (3 of 5), i.e. when the cluster can commit
again (``all_ms``: until all four survivors heard it). A trial with no leader recognised within
``horizon_s`` is censored: counted and reported, never dropped.

Broadcast time → model (§5.6: "the average time it takes a server to send RPCs in parallel to
every server in the cluster and receive their responses"): ``broadcast = 2 × one-way + fsync``.
A responder writes to disk (term/vote, log entries) before it answers, a candidate writes its vote
for itself before asking; one-way latency is log-normal with mean ``(broadcast_ms − fsync_ms)/2``
and shape ``latency_sigma``; fsync is constant ``fsync_ms``. How 15 ms splits between network and
disk is not stated in the paper: it is a parameter (default: all network).

Lesson: with no or little randomness the survivors time out together, split the vote and do it
again (150–150 ms never elects here, the paper saw > 10 s); a few ms of randomness, more than the
time a RequestVote takes to arrive, makes one node usually time out first and win, and a wider
range bounds the worst case. Shorter timeouts cut downtime down to the point where the broadcast
time stops being small beside them (12–24 ms).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from models.replication.consensus import RaftCluster, RaftConfig
from simulator import Constant, LogNormal, Simulation
from simulator.core import name_key
from simulator.runner import Check, param, parameters

TOP = ((150.0, 150.0), (150.0, 151.0), (150.0, 155.0), (150.0, 175.0), (150.0, 200.0), (150.0, 300.0))
BOTTOM = ((12.0, 24.0), (25.0, 50.0), (50.0, 100.0), (100.0, 200.0), (150.0, 300.0))
N = 5


@parameters
class Params:
    ranges_ms: tuple[tuple[float, float], ...] = param(
        TOP + BOTTOM[:-1], unit="ms", ge=1, le=10_000,
        help="election-timeout ranges min-max (uniform); Fig. 16 top: 150-x, bottom: short ranges")
    trials: int = param(1000, unit="trials", ge=1, le=100_000, help="leader crashes per range (paper: 1000)")
    broadcast_ms: float = param(15.0, unit="ms", gt=0, le=10_000,
                                help="mean RPC round trip = 2 x one-way network + fsync (paper: roughly 15 ms)")
    fsync_ms: float = param(0.0, unit="ms", ge=0, le=10_000,
                            help="durable-write time before each reply; the rest of broadcast_ms is network")
    overlap_self_vote: bool = param(False, help="with fsync: a candidate asks for votes while writing its own "
                                                "vote (takes office once it is durable); false: writes, then asks")
    separate_term_write: bool = param(False, help="with fsync: a voter writes a higher term, then its vote: two "
                                                  "writes before it answers (LogCabin); false: one (Figure 2)")
    timeout_quantum_ms: float = param(0.0, unit="ms", ge=0, le=100,
                                      help="election timeouts rounded to multiples of this (LogCabin: 1, whole "
                                           "milliseconds); 0: continuous")
    latency_sigma: float = param(0.25, unit="log-normal shape", ge=0, le=2,
                                 help="spread of the one-way network latency (0: constant)")
    stale_followers: int = param(2, unit="followers", ge=0, le=2,
                                 help="survivors lacking the leader's last entry (cannot become leader)")
    horizon_s: float = param(12.0, unit="s", gt=0, le=600,
                             help="simulated time after which a trial without a new leader is censored")

    def __post_init__(self) -> None:
        bad = [r for r in self.ranges_ms if len(r) != 2 or r[0] > r[1]]
        if bad:
            raise ValueError(f"parameter ranges_ms: each range needs min <= max, got {bad}")
        if len(set(self.ranges_ms)) != len(self.ranges_ms):
            raise ValueError(f"parameter ranges_ms: ranges must be distinct, got {self.ranges_ms}")
        if not self.fsync_ms < self.broadcast_ms:
            raise ValueError(f"parameters fsync_ms={self.fsync_ms} and broadcast_ms={self.broadcast_ms}: "
                             "need fsync_ms < broadcast_ms (the rest is network round trip)")


QUICK = Params(ranges_ms=((150.0, 151.0), (150.0, 155.0), (150.0, 300.0), (12.0, 24.0), (50.0, 100.0)),
               trials=40, horizon_s=2.0)


def label(r: tuple[float, float]) -> str:
    return f"{r[0]:g}–{r[1]:g} ms"


def trial_seed(seed: int, i: int) -> int:
    """The simulation seed of trial ``i``: derived by SeedSequence, never ``seed + i``."""
    a = np.random.SeedSequence(seed, spawn_key=(name_key("raft_election.trial"), i)).generate_state(2)
    return int(a[0]) | (int(a[1]) << 32)


def trial(p: Params, lo_ms: float, hi_ms: float, seed: int, i: int) -> dict:
    """One leader crash in a fresh five-node cluster; times in ms from the crash."""
    sim = Simulation(seed=trial_seed(seed, i))
    one_way = (p.broadcast_ms - p.fsync_ms) / 2 / 1e3
    sim.network(latency=LogNormal(median=one_way * math.exp(-p.latency_sigma ** 2 / 2), sigma=p.latency_sigma)
                if p.latency_sigma > 0 else Constant(one_way))
    hb = lo_ms / 2 / 1e3
    cfg = RaftConfig(election_timeout=(lo_ms / 1e3, hi_ms / 1e3), heartbeat_s=hb,
                     fsync=Constant(p.fsync_ms / 1e3) if p.fsync_ms > 0 else None,
                     overlap_self_vote=p.overlap_self_vote, separate_term_write=p.separate_term_write,
                     timeout_quantum=p.timeout_quantum_ms / 1e3 if p.timeout_quantum_ms > 0 else None)
    c = RaftCluster(sim, N, config=cfg)
    leader = c.names[0]
    c.bootstrap(leader, entries=2, stale=c.names[N - p.stale_followers:], missing=1)
    crash_at = float(sim.rng("raft_election.crash").random()) * hb
    sim.at(crash_at, sim.nodes[leader].crash)
    need, others = N // 2, N - 2  # followers that must hear it: a majority minus the leader; all survivors but it
    step = max(hi_ms / 2e3, 0.005)
    t_major = t_all = math.inf
    while sim.now < p.horizon_s:
        sim.run(until=min(p.horizon_s, sim.now + step))
        for term, heard in c.recognitions.items():
            if term > 1:
                ts = sorted(heard.values())
                if len(ts) >= need:
                    t_major = min(t_major, ts[need - 1])
                if len(ts) >= others:
                    t_all = min(t_all, ts[others - 1])
        if t_all < math.inf:
            break
    if c.violations:
        raise AssertionError(f"Raft safety violated: {c.violations[:3]}")
    won = {t for _, t, _ in c.elections}
    candidacies = [x for x in c.candidates if x[1] > 1]
    ok = t_major <= p.horizon_s
    return {"trial": i, "crash_ms": crash_at * 1e3, "elected": ok,
            "downtime_ms": (t_major - crash_at) * 1e3 if ok else math.nan,
            "all_ms": (t_all - crash_at) * 1e3 if t_all <= p.horizon_s else math.nan,
            "candidacies": len(candidacies),
            "split_votes": sum(1 for t in {x[1] for x in candidacies} if t not in won),
            "ineligible_candidacies": sum(1 for x in candidacies if x[2] in c.names[N - p.stale_followers:])}


def summarize(df: pd.DataFrame, p: Params) -> dict:
    """Statistics of one range; censored trials count in ``restricted_mean_ms`` at the horizon."""
    x = df.downtime_ms.dropna().to_numpy()
    n, k = len(df), len(x)
    h = (p.horizon_s - df.crash_ms.to_numpy() / 1e3) * 1e3
    rmean = float(np.where(df.elected, df.downtime_ms, h).mean())
    q = (lambda a: float(np.quantile(x, a))) if k else (lambda a: math.nan)
    return {"trials": n, "elected": k, "censored": n - k, "censored_fraction": (n - k) / n,
            "mean_ms": float(x.mean()) if k else math.nan, "median_ms": q(0.5), "p95_ms": q(0.95),
            "max_ms": float(x.max()) if k else math.nan,
            "sem_ms": float(x.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan,
            "restricted_mean_ms": rmean,
            "mean_election_s": rmean / 1e3,
            "split_votes_per_election": float(df.split_votes.sum()) / max(k, 1)}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    frames, summary = [], []
    for lo, hi in p.ranges_ms:
        df = pd.DataFrame([trial(p, lo, hi, seed, i) for i in range(p.trials)])
        df.insert(0, "range", label((lo, hi)))
        frames.append(df)
        summary.append({"range": label((lo, hi)), "lo_ms": lo, "hi_ms": hi, "width_ms": hi - lo,
                        **summarize(df, p)})
    return {"trials": pd.concat(frames, ignore_index=True), "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    t, s = results["trials"], results["summary"]
    s = s.drop_duplicates("range").set_index("range")
    top = [label(r) for r in TOP if label(r) in s.index]
    bottom = [label(r) for r in BOTTOM if label(r) in s.index]
    other = [x for x in s.index if x not in top and x not in bottom]
    panels = [(top + other, "Top: 150 ms minimum, more randomness"), (bottom, "Bottom: shorter timeouts")]
    panels = [(labels, title) for labels, title in panels if labels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 4 * len(panels)), constrained_layout=True, squeeze=False)
    for ax, (labels, title) in zip(axes[:, 0], panels):
        for lab in labels:
            g = t[t["range"] == lab]
            x = np.sort(g.downtime_ms.dropna().to_numpy())
            cens = int((~g.elected.astype(bool)).sum())
            name = f"{lab}" + (f" ({cens}/{len(g)} censored at {p.horizon_s:g} s)" if cens else "")
            if len(x):
                ax.step(np.r_[x, p.horizon_s * 1e3], np.r_[np.arange(1, len(x) + 1), len(x)] / len(g) * 100,
                        where="post", label=name, color=plots.color_for(lab))
            else:
                ax.plot([], [], label=name, color=plots.color_for(lab))
        ax.set_xscale("log")
        ax.set_xlim(5, p.horizon_s * 1e3)
        ax.set_ylim(0, 101)
        ax.set_xlabel("time without leader (ms, from crash to new leader heard by a majority)")
        ax.set_ylabel("cumulative percent of trials")
        ax.set_title(title, fontsize=10)
        ax.legend(title="election timeout", fontsize=8, loc="upper left")
    fig.suptitle("Randomness in the timeout ends split votes;\nshorter timeouts cut downtime (after Raft Fig. 16)")
    return {"raft_election": fig}


SOURCE = "Ongaro & Ousterhout 2014, §9.3 / Fig. 16"


def validate(quick: bool) -> list[Check]:
    """The figures the paper's text states, on its setup (5 servers, broadcast ~15 ms, 2 stale)."""
    trials = 60 if quick else 1000
    ranges = ((150.0, 150.0), (150.0, 155.0), (150.0, 200.0), (12.0, 24.0))
    p = Params(ranges_ms=ranges, trials=trials, horizon_s=2.0 if quick else 12.0)
    s = run(p, seed=1)["summary"].set_index("range")
    setup = f"5 servers, broadcast {p.broadcast_ms:g} ms (fsync {p.fsync_ms:g}), 2 stale, {trials} trials"
    r = {k: s.loc[label(k)] for k in ranges}
    sem = float(r[(12.0, 24.0)].sem_ms)
    checks = [
        Check(SOURCE, setup + ", 150–150 ms", "fraction of trials without a leader after 10 s (or the horizon)",
              published=1.0, measured=float(r[(150.0, 150.0)].censored_fraction), tolerance=0.05,
              why="'consistently took longer than 10 seconds': all of 100 trials; 5% slack",
              cause="" if not quick else f"quick: horizon {p.horizon_s:g} s, not 10 s"),
        Check(SOURCE, setup + ", 150–155 ms", "median downtime (ms)", published=287.0,
              measured=float(r[(150.0, 155.0)].median_ms), tolerance=30.0,
              why="about a fifth of a round (150 ms): rounds quantise downtime; setup details unknown",
              cause=_cause(r[(150.0, 155.0)])),
        Check(SOURCE, setup + ", 150–200 ms", "worst downtime over the trials (ms)", published=513.0,
              measured=float(r[(150.0, 200.0)].max_ms), tolerance=200.0,
              why="a maximum over 1000 trials moves by whole election rounds (~200 ms at the range's top)",
              cause=_cause(r[(150.0, 200.0)]) or ("quick: far fewer trials, the max is lower" if quick else "")),
        Check(SOURCE, setup + ", 12–24 ms", "mean downtime (ms)", published=35.0,
              measured=float(r[(12.0, 24.0)].mean_ms), tolerance=max(5.0, 2 * sem) if math.isfinite(sem) else 5.0,
              why="±5 ms: a third of a broadcast time (the paper rounds and its latency law is unknown), "
                  "or 2 standard errors if larger",
              cause=_cause(r[(12.0, 24.0)])),
        Check(SOURCE, setup + ", 12–24 ms", "worst downtime over the trials (ms)", published=152.0,
              measured=float(r[(12.0, 24.0)].max_ms), tolerance=60.0,
              why="a maximum moves by whole rounds (~24 ms + a broadcast each); ± about two rounds",
              cause=_cause(r[(12.0, 24.0)]) or ("quick: far fewer trials, the max is lower" if quick else "")),
    ]
    # A cause explains a miss; a check that passes keeps only its quick-run note.
    return [c if not c.passed or c.cause.startswith("quick") else dataclasses.replace(c, cause="") for c in checks]


SPLIT_CAUSE = (
    "the paper gives the broadcast time (~15 ms) but not its split into network and disk, and the figures hinge "
    "on it: a split vote happens when a second timer fires before the first candidate's RequestVote arrives. "
    "All on the network (default): RequestVotes take 7.5 ms, more than 5 ms of randomness, so votes split "
    "round after round and downtimes come out 3-4x the paper's. Mostly disk (fsync_ms=14, overlap_self_vote): "
    "150-155 ms is ~2x faster than the paper and 12-24 ms livelocks (broadcast ~ timeout). No split measured "
    "(0, 5, 8, 10, 14 ms of fsync) matches all of 287 ms, 513 ms and 35 ms; LogCabin's RPC and disk timing "
    "would be needed")


def _cause(row: pd.Series) -> str:
    if row.censored:
        return (f"{int(row.censored)} of {int(row.trials)} trials censored: every survivor times out before a "
                "RequestVote (one-way latency + the candidate's fsync) can reach it, so votes split round after "
                "round; " + SPLIT_CAUSE)
    return SPLIT_CAUSE
