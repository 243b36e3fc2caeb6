"""Notebook 09's checks for a learner's Raft written on the workbench's node API (stage 1: elections).

A node logs ``leader <term>`` (``self.log``) when it wins an election. :func:`leaders` reads those
lines from every host; :func:`election_safety` is Figure 2's Election Safety (at most one leader per
term); :func:`election_downtime` crashes the leader at a fixed instant and measures how long until a
new one is elected — for the learner's node, or for the project's own Raft (``models.replication``'s
``RaftCluster``, served as ``reference:raft``) with the same timers.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from simulator.faults import Crash, FaultSchedule

from .workbench_cmd import build


def leaders(test: Any) -> list[tuple[float, int, str]]:
    """(time s, term, node) of every election won, from the nodes' logs or a system's cluster."""
    if test.system is not None:
        return [(t, term, n) for t, term, n in test.system.cluster.elections]
    out = []
    for name, host in test.hosts.items():
        for t, text in getattr(host, "logs", []):
            if text.startswith("leader "):
                out.append((t, int(text.split()[1]), name))
    return sorted(out)


def election_safety(test: Any) -> dict:
    """``valid`` iff no term has two leaders; ``violations``: the terms that do, with their leaders."""
    by_term: dict[int, set[str]] = {}
    for _, term, n in leaders(test):
        by_term.setdefault(term, set()).add(n)
    bad = {t: sorted(ns) for t, ns in by_term.items() if len(ns) > 1}
    return {"valid": not bad and bool(by_term), "terms": len(by_term), "violations": bad}


def log_safety(test: Any) -> dict:
    """Figure 3's Log Matching (two logs holding an entry of the same index and term are identical up
    to it) and State Machine Safety (the committed prefixes of all servers agree), over the live
    servers' logs at the end (``node.entries`` [term, op] and ``node.commit_index``)."""
    logs = {n: (h.node.entries, h.node.commit_index) for n, h in test.hosts.items()
            if n in test.nodes and hasattr(getattr(h, "node", None), "entries")}  # a node with no log: nothing
    bad = []
    names = sorted(logs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            la, ca = logs[a]
            lb, cb = logs[b]
            for k in range(min(len(la), len(lb)) - 1, 0, -1):
                if la[k][0] == lb[k][0]:
                    if la[:k + 1] != lb[:k + 1]:
                        bad.append(f"log matching: {a} and {b} agree on index {k}'s term but not before it")
                    break
            c = min(ca, cb, len(la) - 1, len(lb) - 1)
            if la[:c + 1] != lb[:c + 1]:
                bad.append(f"state machine safety: {a} and {b} committed different entries up to index {c}")
    return {"valid": not bad, "servers": len(logs), "violations": bad[:5],
            "committed": {n: c for n, (_, c) in logs.items()}}


def run_kv_lab(node: type, *, seed: int = 1, time_limit: float = 15.0) -> Any:
    """Run ``node`` as a lin-kv service under partitions and kills; print the verdicts; return the test."""
    from simulator.workbench.harness import TestOptions

    opts = TestOptions(workload="lin-kv", node=node, time_limit=time_limit, rate=20, latency_ms=10,
                       nemesis=("partition", "kill"), nemesis_interval=3, seed=seed, trace=False)
    test = build(opts).run()
    res, logs = test.results(), log_safety(test)
    p = res["perf"]
    print(f"lin-kv: linearizable={res['workload']['valid']}; {p['ok']} of {p['ops']} operations ok "
          f"({p['fail']} fail, {p['info']} info); logs safe={logs['valid']}, committed {logs['committed']}")
    return test


def check_raft_kv(test: Any) -> None:
    """Refuse a lin-kv Raft that is not linearizable, breaks Log Matching / State Machine Safety, or
    serves (almost) nothing: at least a quarter of the operations must succeed."""
    from .teach import NotQuite

    res, logs = test.results(), log_safety(test)
    w, p = res["workload"], res["perf"]
    if w["valid"] is False:
        raise NotQuite(f"not linearizable: {w.get('witness', [])[:4]}. Every read, write and cas must go "
                       f"through the log and be answered once applied (Raft §8: reads too)")
    if not logs["valid"]:
        raise NotQuite(f"{logs['violations'][0]}: check AppendEntries' consistency check and conflict truncation")
    if p["ok"] < 0.25 * p["ops"]:
        raise NotQuite(f"only {p['ok']} of {p['ops']} operations succeeded: a leader must append client requests to "
                       f"its log, replicate them, commit by majority and answer once applied")
    print(f"✓ linearizable, logs safe, {p['ok']} of {p['ops']} operations served")


def election_downtime(opts: Any, crash_at: float = 3.0) -> float:
    """Seconds from crashing the leader of time ``crash_at`` to the next election won (inf if none):
    the same seed runs twice, identical up to ``crash_at``, the second time with that crash."""
    first = build(replace(opts, faults=FaultSchedule(), trace=False)).run()
    before = [x for x in leaders(first) if x[0] <= crash_at]
    if not before:
        return math.inf
    leader = before[-1][2]
    sched = FaultSchedule([Crash(at=crash_at, node=leader, recover_at=opts.time_limit)])
    second = build(replace(opts, faults=sched, trace=False)).run()
    after = [t for t, _, n in leaders(second) if t > crash_at and n != leader]
    return (after[0] - crash_at) if after else math.inf


def run_election_lab(node: type, *, seed: int = 1, time_limit: float = 10.0, **options: Any) -> Any:
    """Run ``node`` on the lin-kv workload under partitions and kills (stage 1 serves no data, so
    only the elections matter) and return the finished test; prints who led which term."""
    from simulator.workbench.harness import TestOptions

    opts = TestOptions(workload="lin-kv", node=node, time_limit=time_limit, rate=5, latency_ms=10,
                       nemesis=("partition", "kill"), nemesis_interval=2, seed=seed, trace=False, **options)
    test = build(opts).run()
    won = leaders(test)
    print(f"{len(won)} elections won in {time_limit:g} s: " +
          ", ".join(f"term {term} {n} at {t:.2f} s" for t, term, n in won[:8]) + (" ..." if len(won) > 8 else ""))
    return test


def check_election(test: Any) -> None:
    """Refuse (:class:`~simulator.runner.teach.NotQuite`) a run with no leader or two leaders in a term."""
    from .teach import NotQuite

    r = election_safety(test)
    if r["terms"] == 0:
        raise NotQuite("no server ever became leader: a follower whose election timer fires must campaign "
                       "(increment its term, vote for itself, ask everyone for votes)")
    if r["violations"]:
        t, ns = next(iter(r["violations"].items()))
        raise NotQuite(f"election safety violated: term {t} has leaders {ns}. A server votes at most once per "
                       f"term (votedFor, kept durable)")
    print(f"✓ election safety holds over {r['terms']} terms, and there was a leader")


__all__ = ["check_election", "check_raft_kv", "election_downtime", "election_safety", "leaders", "log_safety",
           "run_election_lab", "run_kv_lab"]
