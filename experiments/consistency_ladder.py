"""Which consistency models stay available when the network splits, and what does each one let users see?

Setup: a comment thread. Authors write posts, repliers read a post and reply to what they read,
readers read a reply and then its post; two of each (one *sticky* client that stays on a replica on
its own side, one *fail-over* client whose replica is on the other side until the partition cuts it
off, when it moves to a replica on its own side) on each side of a partition that cuts five replicas
2 | 3. The same workload, seeds and faults run against four rungs of the ladder (Jepsen's map of
consistency models; Bailis et al., "Highly Available Transactions", VLDB 2014):

- linearizable: Raft with read-index reads (Ongaro & Ousterhout 2014);
- causal+: COPS-style (Lloyd et al. SOSP 2011), Lamport-LWW, dependencies checked on apply; a
  fail-over client waits for its context at the new replica (``CausalClient(on_missing="wait")``);
- sessions: the four session guarantees per key (Terry et al. 1994) enforced by the client over the
  leaderless store with HLC stamps (which any client-enforced monotonic-writes needs);
- eventual: the leaderless store, last-writer-wins by physical clocks skewed by ``skew_s``.
The AP rungs ship writes to other replicas after ``lag_s`` (cross-region shipping).
Sequential consistency is left out: it is not cheaper to build than linearizable here (a primary
with reads from synced backups still needs the primary's side for writes), so under a partition it
sits in the same class (unavailable on the minority side; HAT Table 3) and adds no new column.

Measured per rung: availability during the partition for sticky and fail-over clients (minimum over
sides); median latency before the partition; anomalies — stale reads, replies seen before their post,
causal violations (:mod:`simulator.history.causal`), session-guarantee violations, lost acknowledged
writes. The fail-over client enters the partition knowing writes its new replica may not have.

Lesson: eventual and the session guarantees stay available to everyone; causal+ is *sticky
available* — a client that stays with its replica is always served, a client that fails over waits
(here until it times out) for its new replica to catch up with everything it has seen, which a
partition forbids; linearizable refuses the minority side. Session guarantees are sticky in theory
too (HAT), but their per-key floors only bite on keys the client itself touched just before failing
over, which in this workload did not happen. In exchange, eventual shows replies before their posts;
sessions protect only the client's own view (others still see a reply before its post); causal+ never
shows an effect before its cause, but its last-writer-wins still drops one of two concurrent replies
(lost writes); Raft shows nothing and pays a leader round trip (about 2x the latency).

Reproduces (``validate``): HAT's availability table row by row (Bailis et al., VLDB 2014, Table 3
and Figure 2): linearizable is unavailable (0 on the minority side), causal+, the session
guarantees and eventual are sticky available (1 for sticky clients on both sides), eventual is
highly available (1 for fail-over clients too) and causal+ is not (a fail-over client's context
cannot reach its new replica). Sessions' fail-over row is not checked: HAT's "sticky" class says
some execution blocks a fail-over client, not that this workload's does.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.replication.causal import CausalClient, CausalStore
from models.replication.consensus import RaftCluster
from models.replication.eventual import EventualStore
from models.replication.kv import not_leader_hint
from models.replication.sessions import SessionClient
from simulator import Exponential, LogNormal, Simulation
from simulator.history import History
from simulator.runner import Check, param, parameters

RUNGS = ("linearizable (Raft)", "causal+ (COPS)", "sessions (RYW, MR, MW, WFR)", "eventual (LWW)")
ROLES = ("author", "replier", "reader")
KINDS = ("sticky", "fail-over")
SIDES = ("minority", "majority")
AVAILABLE = 0.99  # a class needs this share of ok operations during the partition


@parameters
class Params:
    duration_s: float = param(12.0, unit="s", gt=0, le=3600, help="simulated time the clients run")
    partition_at: float = param(4.0, unit="s", ge=0, help="when the network splits 2 | 3")
    heal_at: float = param(8.0, unit="s", gt=0, help="when it heals")
    rate: float = param(5.0, unit="ops/s", gt=0, le=1000, help="actions per second per client")
    post_rate: float = param(0.5, unit="posts/s", gt=0, le=1000, help="new threads per second per author")
    threads: int = param(3, unit="threads", ge=1, le=1000, help="newest threads repliers and readers pick from")
    lag_s: float = param(1.0, unit="s", gt=0, le=60,
                         help="AP rungs: causal shipping interval; eventual mean replication delay")
    skew_s: float = param(0.05, unit="s", ge=0, le=3600, help="clock offset spread of the eventual rung's replicas")
    timeout_s: float = param(0.5, unit="s", gt=0, le=60, help="client operation timeout")

    def __post_init__(self) -> None:
        if not self.partition_at < self.heal_at < self.duration_s:
            raise ValueError(f"need partition_at < heal_at < duration_s, got {self.partition_at}, "
                             f"{self.heal_at}, {self.duration_s}")


QUICK = Params(duration_s=7.0, partition_at=2.0, heal_at=5.0, rate=4.0)


class _RaftClient:
    """Reads and writes through the believed Raft leader, following not_leader hints."""

    def __init__(self, node, cluster: RaftCluster, timeout_s: float) -> None:
        self.node, self.cluster, self.timeout_s = node, cluster, timeout_s

    def read(self, key, done) -> None:
        self._go("kv.read", (key,), done, False, 0, None)

    def write(self, key, value, done) -> None:
        self._go("kv.write", (key, value), done, True, 0, None)

    def _go(self, op, payload, done, write, tries, target) -> None:
        target = target or self.cluster.route(self.node.name)[0]

        def cb(outcome, v) -> None:
            redirect, hint = not_leader_hint(v) if outcome == "error" else (False, None)
            if redirect and tries < 3:
                self._go(op, payload, done, write, tries + 1, hint)
            elif outcome == "ok":
                done("ok", v)
            else:
                done("info" if write and outcome == "timeout" else "fail", outcome)
        self.node.call(target, op, payload, self.timeout_s, cb)


def _rung(sim: Simulation, rung: str, p: Params):
    if rung == RUNGS[0]:
        return RaftCluster(sim, 5, name="r"), None
    if rung == RUNGS[1]:
        return CausalStore(sim, 5, replication_interval_s=p.lag_s, prefix="c"), None
    skew = p.skew_s if rung == RUNGS[3] else 0.0
    clocks = [dict(offset_s=-skew / 2 + skew * i / 4) for i in range(5)]
    store = EventualStore(sim, n=5, r=1, w=1, resolution="lww" if rung == RUNGS[3] else "hlc", clocks=clocks,
                          write_delay=Exponential(p.lag_s), replica_timeout_s=5 * p.lag_s, anti_entropy_interval_s=0.5,
                          hinted_handoff=True, prefix="e", record_versions=True)
    return store, store


def _final(store, rung: str, keys: list) -> dict:
    if rung == RUNGS[0]:
        lead = store.leader() or store.names[0]
        return {k: store.replicas[lead].kv.get(k) for k in keys}
    if rung == RUNGS[1]:
        return {k: store.visible(store.nodes[0].name, k)[0] for k in keys}
    return {k: (store.final_values(k) or (None,))[0] for k in keys}


def run_rung(p: Params, seed: int, rung: str) -> tuple[dict, pd.DataFrame, History]:
    """One rung: (summary row, one row per operation, history)."""
    from simulator.history.causal import check_causal
    from simulator.history.staleness import lost_writes, session_guarantees, staleness

    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5))
    store, ev = _rung(sim, rung, p)
    names = [n.name for n in store.nodes]
    side_replicas = {"minority": names[:2], "majority": names[2:]}
    h, rows, stats = History(), [], dict(reply_before_post=0)
    next_pid, next_value, threads = [0], [1], []

    def partitioned() -> bool:
        return p.partition_at <= sim.now < p.heal_at

    groups = {s: list(side_replicas[s]) for s in SIDES}
    clients = []
    for side in SIDES:
        other = SIDES[1 - SIDES.index(side)]
        for role in ROLES:
            for kind in KINDS:
                cname = f"{side[:3]}_{role}_{kind[:4]}"
                node = sim.node(cname)
                groups[side].append(cname)
                u = sim.uniforms(f"ladder.{cname}.pick")
                home = side_replicas[side if kind == "sticky" else other][len(clients) % 2]
                mine = side_replicas[side]

                def pick(home=home, mine=mine, kind=kind, u=u) -> str:
                    if kind == "sticky" or not partitioned():
                        return home
                    return mine[int(u() * len(mine))]
                if rung == RUNGS[0]:
                    cl = _RaftClient(node, store, p.timeout_s)
                elif rung == RUNGS[1]:
                    cl = CausalClient(node, pick, timeout_s=p.timeout_s, on_missing="wait")
                else:
                    on = rung == RUNGS[2]
                    cl = SessionClient(node, ev, pick, read_your_writes=on, monotonic_reads=on,
                                       monotonic_writes=on, writes_follow_reads=on, timeout_s=p.timeout_s)
                mean_gap = 1 / (p.post_rate if role == "author" else p.rate)
                clients.append(dict(name=cname, side=side, role=role, kind=kind, cl=cl, busy=False,
                                    pid=len(clients), gap=sim.sampler(Exponential(mean_gap), f"ladder.{cname}.gap"),
                                    key=sim.uniforms(f"ladder.{cname}.thread")))
    next_pid[0] = len(clients)
    sim.faults.partition(at=p.partition_at, heal_at=p.heal_at, groups=[groups["minority"], groups["majority"]])

    def op(c: dict, f: str, key: str, value, then) -> None:
        i = h.invoke(c["pid"], f, key, value, sim.now)
        start = sim.now

        def done(outcome: str, v) -> None:
            h.complete(i, outcome, sim.now, v if (f == "read" and outcome == "ok") else None)
            rows.append(dict(client=c["name"], side=c["side"], kind=c["kind"], f=f, start=start, end=sim.now,
                             ok=outcome == "ok", outcome=outcome))
            if outcome == "info":
                c["pid"] = next_pid[0]
                next_pid[0] += 1
            then(outcome, v)
        (c["cl"].read(key, done) if f == "read" else c["cl"].write(key, value, done))

    def fresh() -> int:
        next_value[0] += 1
        return next_value[0] - 1

    def act(c: dict) -> None:
        if sim.now >= p.duration_s:
            return
        sim.at(c["gap"](), lambda: act(c))
        if c["busy"] or (c["role"] != "author" and not threads):
            return
        c["busy"] = True

        def free(*_a) -> None:
            c["busy"] = False
        if c["role"] == "author":  # a new thread: its post key is written once
            threads.append(len(threads))
            op(c, "write", f"post{threads[-1]}", fresh(), free)
            return
        recent = threads[-p.threads:]  # the threads on the front page
        t = recent[int(c["key"]() * len(recent))]
        if c["role"] == "replier":  # replies to one thread overwrite each other: a register per thread
            op(c, "read", f"post{t}", None, lambda o, v: op(c, "write", f"reply{t}", fresh(), free)
               if o == "ok" and v is not None else free())
        else:
            def got_reply(o, v) -> None:
                if o != "ok":
                    return free()

                def got_post(o2, v2) -> None:
                    if o2 == "ok" and v is not None and v2 is None:
                        stats["reply_before_post"] += 1
                    free()
                op(c, "read", f"post{t}", None, got_post)
            op(c, "read", f"reply{t}", None, got_reply)

    for c in clients:
        sim.at(c["gap"](), lambda c=c: act(c))
    sim.run(until=p.duration_s + 3.0)  # clients stop at duration_s; replicas get time to converge
    df = pd.DataFrame(rows)
    during = df[(df.start >= p.partition_at) & (df.start < p.heal_at)]
    before = df[(df.start < p.partition_at) & df.ok]
    row = {"rung": rung}
    for kind in KINDS:
        by_side = [during[(during.kind == kind) & (during.side == s)].ok.mean() for s in SIDES]
        row[f"availability_{kind.replace('-', '_')}"] = float(np.nanmin(by_side))
    sticky, failover = row["availability_sticky"], row["availability_fail_over"]
    row["availability_class"] = ("total" if min(sticky, failover) >= AVAILABLE else
                                 "sticky" if sticky >= AVAILABLE else "unavailable")
    row["guarantee_waits"] = sum(getattr(c["cl"], "missing", 0) + getattr(c["cl"], "unmet", 0) for c in clients)
    row["latency_p50_ms"] = 1000 * float(np.median(before.end - before.start)) if len(before) else math.nan
    fresh_df = staleness(h)
    keys = [f"{k}{t}" for k in ("post", "reply") for t in threads]
    sess = session_guarantees(h)
    row.update(stale_reads=int((fresh_df.k_stale > 0).sum()), reads=len(fresh_df),
               reply_before_post=stats["reply_before_post"], causal_violations=len(check_causal(h).violations),
               session_violations=int(sess.violations.sum()),
               lost_writes=len(lost_writes(h, _final(store, rung, keys))))
    return row, df.assign(rung=rung), h


def run(p: Params, seed: int) -> dict:
    rows, ops, out = [], [], {}
    for rung in RUNGS:
        row, df, h = run_rung(p, seed, rung)
        rows.append(row)
        ops.append(df)
        out["history_" + rung.split()[0].rstrip("+").replace("causal", "causal_plus")] = h
    return {"summary": pd.DataFrame(rows), "operations": pd.concat(ops, ignore_index=True), **out}


HAT = "Bailis et al., 'Highly Available Transactions: Virtues and Limitations', VLDB 2014, Table 3 / Fig. 2"


def validate(quick: bool) -> list[Check]:
    """HAT's classes as availability rows: published 1 (available) or 0, measured on the
    experiment's own operations issued during the partition.

    Tolerance: 1 - AVAILABLE (the experiment's class threshold, 0.99): HAT's classes speak of
    every operation, so a class holds when all but that share of operations agree. Raft's row is
    the minority side (its majority stays up); the AP rows take the worse side.
    """
    p = QUICK if quick else Params()
    seeds = (1,) if quick else (1, 2, 3, 4)
    ops = pd.concat([run(p, seed)["operations"] for seed in seeds], ignore_index=True)
    d = ops[(ops.start >= p.partition_at) & (ops.start < p.heal_at)]
    setup = (f"5 replicas split 2 | 3 for {p.heal_at - p.partition_at:g} s, comment-thread workload, AP shipping "
             f"lag {p.lag_s:g} s; {len(seeds)} seed(s)")
    tol = 1 - AVAILABLE
    why = f"the experiment's availability threshold ({AVAILABLE:g}): all but {tol:.0%} of the operations"

    def worst(rung: str, kind: str) -> tuple[float, int]:
        x = d[(d.rung == rung) & (d.kind == kind)]
        return float(x.groupby("side").ok.mean().min()), len(x)

    checks = []
    raft = d[(d.rung == RUNGS[0]) & (d.side == "minority")]
    checks.append(Check(source=HAT, setup=f"{RUNGS[0]}; {setup}; {len(raft)} ops",
                        quantity="availability on the minority side (HAT: unavailable)", published=0.0,
                        measured=float(raft.ok.mean()), tolerance=tol, why=why))
    for rung in RUNGS[1:]:
        m, n = worst(rung, "sticky")
        checks.append(Check(source=HAT, setup=f"{rung}; {setup}; {n} ops",
                            quantity="sticky clients' availability, worse side (HAT: sticky available)",
                            published=1.0, measured=m, tolerance=tol, why=why))
    for rung, pub, cls in ((RUNGS[3], 1.0, "highly available"), (RUNGS[1], 0.0, "not highly available")):
        m, n = worst(rung, "fail-over")
        if pub == 1.0:
            checks.append(Check(source=HAT, setup=f"{rung}; {setup}; {n} ops",
                                quantity=f"fail-over clients' availability, worse side (HAT: {cls})",
                                published=pub, measured=m, tolerance=tol, why=why))
        else:
            checks.append(Check(source=HAT, setup=f"{rung}; {setup}; {n} ops; worse side {m:.2f}",
                                quantity=f"fail-over clients served as highly available (1 if >= {AVAILABLE:g})"
                                         f" (HAT: {cls})", published=pub, measured=float(m >= AVAILABLE),
                                tolerance=0.0, why="a class verdict: the fail-over clients' availability "
                                                   f"falls below the threshold {AVAILABLE:g} or not"))
    return checks


def plot(results: dict, p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    if "seed" in s:
        s = s.groupby("rung", sort=False, as_index=False).agg(
            {c: "mean" for c in s.columns if c not in ("rung", "availability_class", "seed")})
        s["availability_class"] = ["total" if min(a, b) >= AVAILABLE else "sticky" if a >= AVAILABLE
                                   else "unavailable" for a, b in zip(s.availability_sticky, s.availability_fail_over)]
    s = s.set_index("rung").reindex(list(RUNGS))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True,
                                   gridspec_kw=dict(width_ratios=[1, 1.4]))
    y = np.arange(len(RUNGS))[::-1]
    colours = {"total": "tab:green", "sticky": "tab:orange", "unavailable": "tab:red"}
    ax1.barh(y + 0.2, s.availability_sticky, 0.4, color="0.35", label="sticky clients")
    ax1.barh(y - 0.2, s.availability_fail_over, 0.4, color="0.75", label="clients that fail over")
    for yi, (_rung, r) in zip(y, s.iterrows()):
        ax1.text(1.02, yi, f"{r.availability_class}\n{r.latency_p50_ms:.0f} ms p50", va="center", fontsize=9,
                 color=colours[r.availability_class], fontweight="bold")
    ax1.set_yticks(y, list(RUNGS))
    ax1.set_xlim(0, 1.35)
    ax1.set_xlabel("availability during the partition (worst side)")
    ax1.legend(loc="lower left", fontsize=8)
    ax1.set_title("availability class (latency without a partition)")
    anomalies = ["stale_reads", "reply_before_post", "causal_violations", "session_violations", "lost_writes"]
    m = s[anomalies].to_numpy(float)
    ax2.imshow(m > 0, cmap="Reds", vmin=0, vmax=1.6, aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax2.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=11)
    ax2.set_xticks(range(len(anomalies)), [a.replace("_", "\n") for a in anomalies], fontsize=9)
    ax2.set_yticks(range(len(RUNGS)), [])
    ax2.set_title("anomalies seen (counts; red = any)")
    total = [r for r, c in s.availability_class.items() if c == "total"]
    sticky = [r for r, c in s.availability_class.items() if c == "sticky"]
    fig.suptitle(f"The consistency ladder under a partition: totally available = {', '.join(total) or 'none'}; "
                 f"sticky only = {', '.join(sticky) or 'none'}; stronger rungs refuse the minority", fontsize=10)
    return {"consistency_ladder": fig}
