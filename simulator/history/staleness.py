"""Session guarantees and staleness, measured on a key-value history with unique written values.

Version order. Written values are unique per key (the workloads make them so), so a read's
value names the write it observed. Two writes are *certainly* ordered when one completed
before the other was invoked (real-time precedence, which any linearizable store must
respect); concurrent writes are left unordered, and only certain violations are counted.
An initial (absent) value precedes every write.

Session guarantees (Terry et al., "Session Guarantees for Weakly Consistent Replicated Data",
PDIS 1994), per process (a Jepsen process is one client session), per key:
- read-your-writes: a read returns a version certainly older than the session's own last
  acknowledged write that completed before the read began;
- monotonic reads: a read returns a version certainly older than one an earlier read (completed
  before it began) of the same session returned;
- monotonic writes: the session's writes w1 then w2 are observed in the reverse order (a read
  sees w1 after another read already saw w2);
- writes-follow-reads: the session read w1 and then wrote w2, and w1 is observed after w2.

Staleness (Bailis et al., "Probabilistically Bounded Staleness", VLDB 2012): per ok read,
``k_stale`` — acknowledged writes that completed before the read began and are certainly newer
than the version returned — and ``t_stale``, how long before the read began the first of them
completed; ``t_visibility`` gives P(fresh) against the time since the latest acknowledged write.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import History

_INITIAL = (-math.inf, -math.inf)  # (invoke, complete) of the absent initial version


def _ops(h: History) -> list[dict]:
    """Completed operations: f, key, process, invoke, complete, type, value (written or read)."""
    open_: dict = {}
    out = []
    for i, t in enumerate(h.type):
        p = h.process[i]
        if t == "invoke":
            open_[p] = i
            continue
        j = open_.pop(p)
        f = h.f[i]
        v = h.value[i]
        if f == "cas" and isinstance(v, (tuple, list)):
            v = v[1]
        out.append({"f": f, "key": h.key[i], "process": p, "invoke": h.time[j], "complete": h.time[i],
                    "type": t, "value": v})
    return out


def _writes(ops: list[dict]) -> dict:
    """(key, value) -> (invoke, complete) for every write that may have happened (ok or info)."""
    w = {}
    for o in ops:
        if o["f"] in ("write", "cas") and o["type"] in ("ok", "info"):
            w[(o["key"], o["value"])] = (o["invoke"], o["complete"] if o["type"] == "ok" else math.inf)
    return w


def _older(a: tuple, b: tuple) -> bool:
    """Version a certainly precedes version b (a completed before b was invoked)."""
    return a[1] < b[0]


def staleness(history: History) -> pd.DataFrame:
    """One row per ok read: key, process, invoke, value, ``k_stale``, ``t_stale`` (s; 0 if
    fresh), ``since_write`` (s since the latest acknowledged write to the key completed before
    the read began; NaN if none)."""
    ops = _ops(history)
    writes = _writes(ops)
    acked = defaultdict(list)
    for o in ops:
        if o["f"] in ("write", "cas") and o["type"] == "ok":
            acked[o["key"]].append((o["invoke"], o["complete"]))
    rows = []
    for o in ops:
        if o["f"] != "read" or o["type"] != "ok":
            continue
        seen = writes.get((o["key"], o["value"]), _INITIAL) if o["value"] is not None else _INITIAL
        before = [w for w in acked[o["key"]] if w[1] < o["invoke"]]
        newer = [w for w in before if _older(seen, w)]
        rows.append({"key": o["key"], "process": o["process"], "invoke": o["invoke"], "value": o["value"],
                     "k_stale": len(newer),
                     "t_stale": o["invoke"] - min(w[1] for w in newer) if newer else 0.0,
                     "since_write": o["invoke"] - max(w[1] for w in before) if before else math.nan})
    return pd.DataFrame(rows, columns=["key", "process", "invoke", "value", "k_stale", "t_stale", "since_write"])


def t_visibility(stale: pd.DataFrame, edges: Sequence[float]) -> pd.DataFrame:
    """P(a read is fresh) per bin of time since the latest acknowledged write, with its
    binomial standard error (PBS t-visibility)."""
    d = stale.dropna(subset=["since_write"])
    idx = np.digitize(d["since_write"].to_numpy(), edges) - 1
    rows = []
    for i in range(len(edges) - 1):
        m = idx == i
        n = int(m.sum())
        p = float((d["k_stale"].to_numpy()[m] == 0).mean()) if n else math.nan
        rows.append({"t": (edges[i] + edges[i + 1]) / 2, "reads": n, "p_fresh": p,
                     "se": math.sqrt(p * (1 - p) / n) if n else math.nan})
    return pd.DataFrame(rows)


def session_guarantees(history: History) -> pd.DataFrame:
    """Violations of the four session guarantees per process (see the module docstring)."""
    ops = sorted(_ops(history), key=lambda o: o["invoke"])
    writes = _writes(ops)
    ver = lambda o: writes.get((o["key"], o["value"]), _INITIAL) if o["value"] is not None else _INITIAL  # noqa: E731
    reads = [o for o in ops if o["f"] == "read" and o["type"] == "ok"]
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])  # (process, guarantee) -> [violations, checked]

    # Per (key, version): when a read first finished seeing it, and when a read last began seeing it.
    first_seen: dict = {}
    last_seen: dict = {}
    for r in reads:
        kv = (r["key"], ver(r))
        first_seen[kv] = min(first_seen.get(kv, math.inf), r["complete"])
        last_seen[kv] = max(last_seen.get(kv, -math.inf), r["invoke"])

    def observed_reversed(first: tuple, second: tuple, key) -> bool:
        """Some read saw ``first``'s version after another read, finished earlier, saw ``second``."""
        return first_seen.get((key, second), math.inf) < last_seen.get((key, first), -math.inf)

    by_proc = defaultdict(list)
    for o in ops:
        by_proc[o["process"]].append(o)
    for p, mine in by_proc.items():
        for i, o in enumerate(mine):
            if o["type"] != "ok":
                continue
            earlier = [e for e in mine[:i]
                       if e["type"] == "ok" and e["key"] == o["key"] and e["complete"] < o["invoke"]]
            if o["f"] == "read":
                own = [e for e in earlier if e["f"] in ("write", "cas")]
                if own:
                    c = counts[(p, "read_your_writes")]
                    c[1] += 1
                    c[0] += _older(ver(o), ver(own[-1]))
                prev = [e for e in earlier if e["f"] == "read"]
                if prev:
                    c = counts[(p, "monotonic_reads")]
                    c[1] += 1
                    c[0] += _older(ver(o), ver(prev[-1]))
            else:
                prev_w = [e for e in earlier if e["f"] in ("write", "cas")]
                if prev_w:
                    c = counts[(p, "monotonic_writes")]
                    c[1] += 1
                    c[0] += observed_reversed(ver(prev_w[-1]), ver(o), o["key"])
                prev_r = [e for e in earlier if e["f"] == "read" and e["value"] is not None]
                if prev_r:
                    c = counts[(p, "writes_follow_reads")]
                    c[1] += 1
                    c[0] += observed_reversed(ver(prev_r[-1]), ver(o), o["key"])
    rows = [{"process": p, "guarantee": g, "violations": v, "checked": n} for (p, g), (v, n) in counts.items()]
    return pd.DataFrame(rows, columns=["process", "guarantee", "violations", "checked"])


def lost_writes(history: History, final: Mapping[Any, Any]) -> pd.DataFrame:
    """Acknowledged writes lost: the key's final (converged) value comes from a write that
    certainly precedes them, so the store kept an older write over a newer acknowledged one."""
    ops = _ops(history)
    writes = _writes(ops)
    rows = []
    for o in ops:
        if o["f"] in ("write", "cas") and o["type"] == "ok":
            fv = final.get(o["key"])
            fver = writes.get((o["key"], fv), _INITIAL) if fv is not None else _INITIAL
            if fv != o["value"] and _older(fver, (o["invoke"], o["complete"])):
                rows.append({"key": o["key"], "value": o["value"], "process": o["process"],
                             "acknowledged_at": o["complete"], "final_value": fv})
    return pd.DataFrame(rows, columns=["key", "value", "process", "acknowledged_at", "final_value"])


def convergence_time(samples: pd.DataFrame, heal_at: float) -> float:
    """From samples (``time``, ``replica``, ``key``, ``value``), the first sample time after
    ``heal_at`` from which every replica holds the same value of every key at every later
    sample; NaN if they never settle."""
    d = samples[samples["time"] >= heal_at]
    agree = d.groupby("time").apply(
        lambda g: bool((g.groupby("key")["value"].nunique(dropna=False) <= 1).all()), include_groups=False)
    if agree.empty or not agree.iloc[-1]:
        return math.nan
    bad = agree[~agree]
    t = agree.index[agree.index > bad.index.max()].min() if len(bad) else agree.index.min()
    return float(t - heal_at)


def siblings(values: Iterable[Any]) -> pd.Series:
    """Concurrent siblings per read: the length of a tuple of values, 1 for a plain value, 0
    for nothing."""
    return pd.Series([len(v) if isinstance(v, (tuple, list)) else (0 if v is None else 1) for v in values])
