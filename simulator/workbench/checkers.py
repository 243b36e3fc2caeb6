"""Maelstrom's checkers, on splitbrain's paired operations (:mod:`simulator.history.ops`).

Each returns a dict with ``valid`` (True, False, or None for unknown) and the evidence: the
anomaly's name, counts, and a minimal witness (the few operations that show it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from simulator.history.ops import Op, freeze


def quantiles_ms(xs: Sequence[float]) -> dict[str, float]:
    """Latency quantiles in ms of ``xs`` (seconds), as Jepsen prints them (0, 0.5, 0.95, 0.99, 1)."""
    if not xs:
        return {}
    s = sorted(xs)

    def at(p: float) -> float:
        return round(1000 * s[min(len(s) - 1, int(math.floor(p * len(s))))], 3)

    return {"0": at(0), "0.5": at(0.5), "0.95": at(0.95), "0.99": at(0.99), "1": round(1000 * s[-1], 3)}


_q = quantiles_ms


def echo(ops: list[Op]) -> dict:
    """Every ``echo_ok`` carries the payload that was sent (maelstrom.workload.echo)."""
    bad = [o for o in ops if o.type == "ok" and freeze(o.result) != freeze(o.value)]
    return {"valid": not bad, "anomaly": "echo-mismatch" if bad else None, "count": len(bad),
            "witness": [o.describe() for o in bad[:3]]}


def unique_ids(ops: list[Op]) -> dict:
    """Jepsen's ``checker/unique-ids``: no id handed out twice (only ``ok`` generates count)."""
    seen: dict[Any, Op] = {}
    dups: list[tuple[Op, Op]] = []
    oks = 0
    for o in ops:
        if o.type != "ok":
            continue
        oks += 1
        k = freeze(o.result)
        if k in seen:
            dups.append((seen[k], o))
        else:
            seen[k] = o
    return {"valid": not dups, "anomaly": "duplicate-ids" if dups else None, "attempted": len(ops),
            "acknowledged": oks, "duplicated_count": len(dups),
            "witness": [f"id {d[1].result!r}: {d[0].describe()} and {d[1].describe()}" for d in dups[:3]]}


def set_full(ops: list[Op], *, add_f: str = "add", final_check: bool = True, per_element: bool = False) -> dict:
    """Jepsen's ``checker/set-full`` (jepsen.checker, ``set-full-element-results``): for each added
    element, its *known* time (its add completed ok, or a read first showed it); the last ok read to
    *begin* holding it and the last to begin missing it. It is *stable* if the last holding one began
    after the last missing one, *lost* if a read that began after it was known missed it and no later
    one held it, *never-read* otherwise. Stable latency, as Jepsen's: from the known time to the start
    of the last read that missed it, or 0 when every read begun after the known time held it (so an
    element added just before the test ends, read only by the final reads, is not charged the quiet
    period before them). An element held only by reads begun before it was known is stable too
    (latency 0), as in Jepsen. ``stale`` counts the stable elements with a positive latency.
    ``per_element``: also ``stable_by_element``, (known time s, stable latency s) per stable element.

    Stricter, as Maelstrom's broadcast and Gossip Glomers expect (doc/03-broadcast): with
    ``final_check``, every node's final read must hold every acknowledged element
    (``missing_on_final_reads``) — Jepsen alone judges only the last read to begin."""
    adds: dict[Any, Op] = {}
    for o in ops:
        if o.f == add_f:
            adds.setdefault(freeze(o.value), o)
    reads = sorted((o for o in ops if o.f == "read" and o.type == "ok"), key=lambda o: o.invoke_time)
    read_sets = [(o, frozenset(freeze(x) for x in (o.result or ()))) for o in reads]
    first_seen: dict[Any, float] = {}
    last_present: dict[Any, int] = {}  # element -> index (in invocation order) of the last read holding it
    for i, (o, s) in enumerate(read_sets):
        for e in s:
            t = o.complete_time
            if e not in first_seen or t < first_seen[e]:
                first_seen[e] = t
            last_present[e] = i
    lost, never, stale, latencies = [], [], [], []
    stable_at: list[tuple[float, float]] = []  # (known time, stable latency) per stable element
    stable = 0
    for e, a in adds.items():
        known = min(a.complete_time if a.type == "ok" else math.inf, first_seen.get(e, math.inf))
        if known == math.inf:
            continue  # never acknowledged and never seen: may never have happened
        present = last_present.get(e, -1)
        absent = next((i for i in range(len(read_sets) - 1, present, -1) if e not in read_sets[i][1]), None)
        if absent is None:  # no read after the last holding one misses it
            if present < 0:
                never.append(e)
                continue
            # stable: the last read missing it began before ``present``
            absent = next((i for i in range(present - 1, -1, -1) if e not in read_sets[i][1]), None)
            stable += 1
            lat = max(0.0, read_sets[absent][0].invoke_time - known) if absent is not None else 0.0
            if lat > 0:
                stale.append(e)
            latencies.append(lat)
            if per_element:
                stable_at.append((known, lat))
        elif read_sets[absent][0].invoke_time > known:
            lost.append((e, a, read_sets[absent][0]))
        else:
            never.append(e)  # missed only by reads that began before it was known
    res = {"valid": not lost, "attempt_count": len(adds), "stable_count": stable, "lost_count": len(lost),
           "never_read_count": len(never), "stale_count": len(stale), "stable_latencies_ms": _q(latencies),
           "lost": sorted((_plain(e) for e, _, _ in lost), key=repr)[:20]}
    witness = [f"{_plain(e)!r} added by {a.describe()}; absent from the last read {r.describe()}"
               for e, a, r in lost[:3]]
    anomaly = "lost" if lost else None
    if final_check:
        finals = _final_reads(reads)
        acked = [(e, a) for e, a in adds.items() if a.type == "ok"]
        missing = []
        for o in finals:
            have = frozenset(freeze(x) for x in (o.result or ()))
            gone = [e for e, _ in acked if e not in have]
            if gone:
                missing.append((o, gone))
        res["final_reads"] = len(finals)
        res["missing_on_final_reads"] = {str(o.process): len(g) for o, g in missing}
        if missing:
            res["valid"] = False
            anomaly = anomaly or "not-converged"
            o, g = missing[0]
            witness.append(f"final read {o.describe()[:120]} lacks {len(g)} acknowledged element(s), "
                           f"e.g. {sorted((_plain(x) for x in g), key=repr)[:5]}")
    res["anomaly"] = anomaly
    res["witness"] = witness
    if per_element:
        res["stable_by_element"] = sorted(stable_at)
    return res


def _final_reads(reads: list[Op]) -> list[Op]:
    """The ok reads of the final phase (the harness records them with key "final")."""
    return [o for o in reads if o.key == "final"]


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def counter(ops: list[Op], *, allow_negative: bool) -> dict:
    """Maelstrom's pn-counter checker (maelstrom.workload.pn-counter; g-counter the same): every final
    read must be the sum of the definitely-added deltas plus any subset of the indefinite (info) ones;
    the acceptable values form a union of integer ranges."""
    adds = [o for o in ops if o.f == "add"]
    definite = sum(o.value for o in adds if o.type == "ok")
    ranges = [(definite, definite)]
    for o in adds:
        if o.type == "info":
            d = o.value
            ranges = _merge(ranges + [(lo + d, hi + d) for lo, hi in ranges])
    finals = [o for o in ops if o.f == "read" and o.type == "ok" and o.key == "final"]
    bad = [o for o in finals if not any(lo <= o.result <= hi for lo, hi in ranges)]
    neg = [o for o in adds if not allow_negative and o.value < 0]
    return {"valid": not bad and not neg, "anomaly": "wrong-final-value" if bad else None,
            "acceptable": [list(r) for r in ranges][:10], "final_reads": [o.result for o in finals],
            "errors": len(bad), "witness": [f"{o.describe()} is outside {ranges[:3]}" for o in bad[:3]]}


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def availability(ops: list[Op], target: str | float | None, majority_ok: Sequence[bool] | None = None) -> dict:
    """Maelstrom's availability checker (maelstrom.core ``availability-checker``): the fraction of
    invocations that completed ok; ``total`` needs all of them, a number in [0, 1] is a lower bound.
    ``majority`` (splitbrain's): every operation invoked on a node that could reach a majority of the
    cluster (and was up) must succeed — what a CP system promises, ``majority_ok`` marks those."""
    n = len(ops)
    ok = sum(o.type == "ok" for o in ops)
    res: dict[str, Any] = {"ok_fraction": 1.0 if n == 0 else ok / n, "target": target}
    if target is None:
        res["valid"] = True
    elif target == "total":
        res["valid"] = ok == n
    elif target == "majority":
        sel = [o for o, m in zip(ops, majority_ok or [False] * n) if m]
        okm = sum(o.type == "ok" for o in sel)
        res["majority_side_ops"] = len(sel)
        res["majority_side_ok_fraction"] = 1.0 if not sel else okm / len(sel)
        res["valid"] = okm == len(sel)
    else:
        res["valid"] = res["ok_fraction"] >= float(target)
    return res


def latency_quantiles(ops: list[Op]) -> dict[str, dict[str, float]]:
    by: dict[str, list[float]] = defaultdict(list)
    for o in ops:
        if o.type == "ok" and o.complete_time is not None:
            by[o.f].append(o.complete_time - o.invoke_time)
    return {f: _q(v) for f, v in sorted(by.items())}
