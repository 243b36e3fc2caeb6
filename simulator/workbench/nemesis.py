"""Nemeses for workbench tests, drawn as a fault schedule (data: print it, save it, shrink it).

Like Jepsen's combined nemesis packages that Maelstrom composes (``maelstrom.nemesis``;
``jepsen.nemesis.combined``): each fault starts after a ``stagger``-ed wait — uniform on
[0, 2 x interval), mean ``--nemesis-interval`` — and stops after another such wait; then the next.
Every fault heals itself by the end of the time limit, so any subset of a schedule is a valid
schedule (what lets ``hunt`` shrink it). Faults touch only the cluster's nodes: clients and
Maelstrom's services are never partitioned, killed or paused (Maelstrom partitions test nodes).

Kinds (``--nemesis a,b``; several kinds take turns at random):

- ``partition``: one of Jepsen's partition targets — random halves (a majority and a minority),
  one node isolated, majorities ring (each node sees a majority, no two the same), bridge (two
  halves joined by one node that sees both);
- ``kill``: one node killed (volatile state lost) and restarted at the stop;
- ``pause``: one node frozen (messages and timers held) until the stop;
- ``clock``: one node's clock stepped by ±2^k ms (k in 0..13, Jepsen's clock bumps), stepped back at the stop;
- ``loss``: every message touching the nodes lost with probability 0.5 (Maelstrom's ``flaky``);
- ``latency``: every link's latency x10 (Maelstrom's ``slow``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.faults import ClockJump, Crash, Fault, FaultSchedule, LatencySpike, LossBurst, Partition, Pause

KINDS = ("partition", "kill", "pause", "clock", "loss", "latency")
PARTITIONS = ("halves", "one", "majorities-ring", "bridge")


def schedule(nodes: Sequence[str], kinds: Sequence[str], interval_s: float, until: float,
             rng: np.random.Generator, start: float = 0.0) -> FaultSchedule:
    """The nemesis's faults between ``start`` and ``until`` (seconds), on ``nodes``."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"nemesis {bad[0]!r} is not known; allowed: {', '.join(KINDS)}")
    if not interval_s > 0:
        raise ValueError(f"nemesis interval must be > 0 seconds, got {interval_s!r}")
    out = FaultSchedule()
    if not kinds:
        return out
    nodes = list(nodes)
    t = start
    while True:
        t0 = t + float(rng.uniform(0, 2 * interval_s))
        t1 = t0 + float(rng.uniform(0, 2 * interval_s))
        if t0 >= until:
            break
        t1 = min(t1, until)
        t0, t1 = round(t0, 3), round(t1, 3)
        if t1 <= t0:
            break
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        for f in _faults(kind, nodes, t0, t1, rng):
            out.add(f)
        t = t1
    return out


def _faults(kind: str, nodes: list[str], t0: float, t1: float, rng: np.random.Generator) -> list[Fault]:
    perm = [nodes[i] for i in rng.permutation(len(nodes))]
    n = len(perm)
    if kind == "partition":
        if n < 2:
            return []
        target = PARTITIONS[int(rng.integers(len(PARTITIONS) if n >= 3 else 2))]
        if target == "halves":
            h = n // 2
            return [Partition(at=t0, groups=(tuple(perm[:h]), tuple(perm[h:])), heal_at=t1)]
        if target == "one":
            return [Partition(at=t0, groups=((perm[0],), tuple(perm[1:])), heal_at=t1)]
        if target == "bridge":
            h = (n - 1) // 2
            return [Partition(at=t0, groups=(tuple(perm[1:1 + h]), tuple(perm[1 + h:])), heal_at=t1,
                              mode="bridge", bridge=perm[0])]
        m = n // 2 + 1  # majorities ring: each node cut (one way, from it) from its non-neighbours
        out: list[Fault] = []
        for i, a in enumerate(perm):
            sees = {perm[(i + d) % n] for d in range(-(m // 2), m - m // 2)}
            cut = tuple(b for b in perm if b not in sees)
            if cut:
                out.append(Partition(at=t0, groups=((a,), cut), heal_at=t1, mode="oneway"))
        return out
    if kind == "kill":
        return [Crash(at=t0, node=perm[0], recover_at=t1)]
    if kind == "pause":
        return [Pause(at=t0, node=perm[0], duration=round(t1 - t0, 3))] if t1 - t0 >= 0.001 else []
    if kind == "clock":
        delta = float(2 ** int(rng.integers(14))) / 1000 * (1 if rng.random() < 0.5 else -1)
        return [ClockJump(at=t0, node=perm[0], delta_s=delta), ClockJump(at=t1, node=perm[0], delta_s=-delta)]
    if kind == "loss":
        return [LossBurst(at=t0, duration=round(t1 - t0, 3), loss=0.5, on=tuple(nodes))] if t1 > t0 else []
    return [LatencySpike(at=t0, duration=round(t1 - t0, 3), factor=10.0, on=tuple(nodes))] if t1 > t0 else []
