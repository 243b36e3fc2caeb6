"""Session guarantees (Terry et al., "Session Guarantees for Weakly Consistent Replicated Data",
PDIS 1994), counted per client session on a key-value history.

A session is a Jepsen process (sequential: each op completes before its next is invoked).
Written values must be unique per key (the workload generators make them so): a read's value
then names the write it observed; a value written by no operation that may have happened, or
``None``, names the initial (absent) version, which precedes every write.

Version order, certain only. Write a certainly precedes write b when a completed before b was
invoked (real-time precedence, which every linearizable store respects). Writes that overlap,
or an ``info`` write (it may take effect any time after its invocation), are left unordered,
and an unordered pair never counts as a violation: the counts are lower bounds, never guesses.

Per process and key, for each ``ok`` operation (``checked`` counts the opportunities):
- read_your_writes: a read returns a version certainly older than the session's last
  acknowledged write (or ok cas) to the key;
- monotonic_reads: a read returns a version certainly older than the session's previous read;
- monotonic_writes: the session wrote w1 then w2, and one observer session saw them in the
  opposite order: a read of w2, then a later read (same session) of w1;
- writes_follow_reads: the session read w1 (not the initial value), then wrote w2, and one
  observer session saw w2 and later w1.

Evidence for the last two comes from a single observer's session, as in Terry et al.'s
definitions (a server that has w2 must have w1 ordered before it) and Jepsen's (the order one
process observes). Client A seeing w2 and later client B seeing w1 is not evidence: B may read
a replica that has not yet received w2, which is staleness (counted by ``staleness`` and, for
B's own session, monotonic reads), not writes applied out of order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import History
from .ops import Op, freeze, pair_ops

if TYPE_CHECKING:
    import pandas as pd

INITIAL = (-math.inf, -math.inf)  # (invoke, latest effect) of the absent initial version
GUARANTEES = ("read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads")


def written_value(op: Op) -> Any:
    """The value a write or cas installs (cas: the new value), frozen to be hashable."""
    if op.f == "cas" and isinstance(op.value, (list, tuple)) and len(op.value) == 2:
        return freeze(op.value[1])
    return freeze(op.value)


def versions(ops: list[Op]) -> dict[tuple, tuple[float, float]]:
    """(key, value) -> (invoke, latest effect) for every write or cas that may have happened
    (``ok``, ``info`` or never completed; +inf latest effect unless ``ok``)."""
    out = {}
    for op in ops:
        if op.f in ("write", "cas") and op.type != "fail":
            out[(freeze(op.key), written_value(op))] = (op.invoke_time, op.end)
    return out


def older(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Version a certainly precedes version b: a took effect before b was invoked."""
    return a[1] < b[0]


def session_guarantees(history: History | Iterable[dict] | str | Path) -> pd.DataFrame:
    """Violations of the four session guarantees: one row per (process, guarantee) with
    ``violations`` and ``checked`` (see the module docstring for the exact definitions)."""
    import pandas as pd

    ops = pair_ops(history)
    vers = versions(ops)

    def ver(op: Op) -> tuple[float, float]:
        v = op.result if op.f == "read" else written_value(op)
        return INITIAL if v is None else vers.get((freeze(op.key), freeze(v)), INITIAL)

    # per observer session and key: where in its own reads it first and last saw each value
    first_at: dict = {}  # (key, value) -> {process: position of its first read returning it}
    last_at: dict = {}  # (key, value) -> {process: position of its last read returning it}
    for pos, r in enumerate(op for op in ops if op.f == "read" and op.type == "ok"):
        kv = (freeze(r.key), freeze(r.result))
        first_at.setdefault(kv, {}).setdefault(r.process, pos)
        last_at.setdefault(kv, {})[r.process] = pos

    def reversed_(first: Any, second: Any, key: Any) -> bool:
        """Some one session read ``second`` and later read ``first``."""
        seen2 = first_at.get((key, second), {})
        seen1 = last_at.get((key, first), {})
        return any(p in seen1 and seen1[p] > at for p, at in seen2.items())

    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    last_w: dict = {}  # (process, key) -> version of the session's last ok write
    last_w_val: dict = {}  # (process, key) -> the value it wrote
    last_r: dict = {}  # (process, key) -> version of the session's last ok read
    last_r_val: dict = {}  # (process, key) -> value of its last read of a written (non-initial) value
    for op in ops:  # invocation order = each session's own order
        if op.type != "ok" or op.f not in ("read", "write", "cas"):
            continue
        p, k = op.process, freeze(op.key)
        pk = (p, k)
        v = ver(op)
        if op.f == "read":
            if pk in last_w:
                c = counts[(p, "read_your_writes")]
                c[0] += older(v, last_w[pk])
                c[1] += 1
            if pk in last_r:
                c = counts[(p, "monotonic_reads")]
                c[0] += older(v, last_r[pk])
                c[1] += 1
            last_r[pk] = v
            if op.result is not None:
                last_r_val[pk] = freeze(op.result)
        else:
            w = written_value(op)
            if pk in last_w:
                c = counts[(p, "monotonic_writes")]
                c[0] += reversed_(last_w_val[pk], w, k)
                c[1] += 1
            if pk in last_r_val:
                c = counts[(p, "writes_follow_reads")]
                c[0] += reversed_(last_r_val[pk], w, k)
                c[1] += 1
            last_w[pk] = v
            last_w_val[pk] = w
    rows = [{"process": p, "guarantee": g, "violations": n_bad, "checked": n}
            for (p, g), (n_bad, n) in counts.items()]
    return pd.DataFrame(rows, columns=["process", "guarantee", "violations", "checked"])
