"""Staleness and durability, measured on a key-value history with unique written values.

Version order. Written values are unique per key (the workloads make them so), so a read's
value names the write it observed. Two writes are *certainly* ordered when one took effect
before the other was invoked (an ``ok`` write completed; an ``info`` or never-completed write
may take effect any time after its invocation); overlapping writes are left unordered, and
only certain staleness or loss is counted. An initial (absent) value precedes every write.
The session guarantees (``session_guarantees``, re-exported) live in :mod:`.session`.

Staleness (Bailis et al., "Probabilistically Bounded Staleness", VLDB 2012): per ok read,
``k_stale`` — acknowledged writes that completed before the read began and are certainly newer
than the version returned — and ``t_stale``, how long before the read began the first of them
completed; ``t_visibility`` gives P(fresh) against the time since the latest acknowledged write.
``lost_writes`` finds acknowledged writes a last-writer-wins store dropped, ``convergence_time``
how long replicas took to agree after a heal, ``siblings`` how many concurrent values a
version-vector store returned per read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import History
from .ops import freeze, pair_ops
from .session import INITIAL, older, session_guarantees, versions, written_value

__all__ = ["staleness", "t_visibility", "session_guarantees", "lost_writes", "convergence_time", "siblings"]

HistoryLike = History | Iterable[dict] | str | Path


def staleness(history: HistoryLike) -> pd.DataFrame:
    """One row per ok read: key, process, invoke, value, ``k_stale``, ``t_stale`` (s; 0 if
    fresh), ``since_write`` (s since the latest acknowledged write to the key completed before
    the read began; NaN if none).

    ``k_stale`` counts acknowledged writes (and ok cas) to the key that completed before the
    read was invoked and certainly follow the version returned (it took effect before they
    were invoked); ``t_stale`` is how long before the read's invocation the first of them
    completed, i.e. how long the returned value had been superseded."""
    ops = pair_ops(history)
    vers = versions(ops)
    acked: dict = defaultdict(list)
    for o in ops:
        if o.f in ("write", "cas") and o.type == "ok":
            acked[freeze(o.key)].append((o.complete_time, o.invoke_time))
    arrays = {}
    for k, ws in acked.items():
        ws.sort()
        arrays[k] = (np.array([w[0] for w in ws]), np.array([w[1] for w in ws]))
    empty = (np.empty(0), np.empty(0))
    rows = []
    for o in ops:
        if o.f != "read" or o.type != "ok":
            continue
        k = freeze(o.key)
        seen = INITIAL if o.result is None else vers.get((k, freeze(o.result)), INITIAL)
        done, inv = arrays.get(k, empty)
        m = int(np.searchsorted(done, o.invoke_time, side="left"))  # completed strictly before
        newer = done[:m][inv[:m] > seen[1]]
        rows.append({"key": o.key, "process": o.process, "invoke": o.invoke_time, "value": o.result,
                     "k_stale": int(newer.size),
                     "t_stale": float(o.invoke_time - newer.min()) if newer.size else 0.0,
                     "since_write": float(o.invoke_time - done[m - 1]) if m else math.nan})
    return pd.DataFrame(rows, columns=["key", "process", "invoke", "value", "k_stale", "t_stale", "since_write"])


def t_visibility(stale: pd.DataFrame | HistoryLike, edges: Sequence[float]) -> pd.DataFrame:
    """PBS t-visibility (Bailis et al. 2012): for reads invoked ``t`` seconds after the latest
    acknowledged write to their key completed (``since_write``; reads with no acknowledged
    write before them are left out), the probability the read is fresh (``k_stale == 0``:
    it returned that write or one not certainly older), per bin ``[edges[i], edges[i+1])``,
    with ``reads`` per bin and the binomial standard error. ``stale`` is the output of
    :func:`staleness` or a history."""
    if not isinstance(stale, pd.DataFrame):
        stale = staleness(stale)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least 2 increasing times, got {list(edges)!r}")
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


def lost_writes(history: HistoryLike, final: Mapping[Any, Any]) -> pd.DataFrame:
    """Acknowledged writes lost, given each key's final converged value (``final``: key ->
    value; a missing key means absent). Exact for last-writer-wins registers: an acknowledged
    write (or ok cas) is lost when its value is not the final one, the final value's write
    certainly precedes it (took effect before it was invoked; the initial value precedes all),
    and no other acknowledged write certainly follows it — the store skipped it and kept an
    older write. (Overwritten by a newer acknowledged write is not lost; that one is.)"""
    ops = pair_ops(history)
    vers = versions(ops)
    acked = [o for o in ops if o.f in ("write", "cas") and o.type == "ok"]
    latest_invoke: dict = defaultdict(lambda: -math.inf)  # key -> latest invocation of an ack'd write
    for o in acked:
        k = freeze(o.key)
        latest_invoke[k] = max(latest_invoke[k], o.invoke_time)
    rows = []
    for o in acked:
        k = freeze(o.key)
        fv = final.get(o.key)
        mine = written_value(o)
        if fv is not None and freeze(fv) == mine:
            continue
        fver = INITIAL if fv is None else vers.get((k, freeze(fv)), INITIAL)
        superseded = latest_invoke[k] > o.complete_time
        if older(fver, (o.invoke_time, o.complete_time)) and not superseded:
            rows.append({"key": o.key, "value": mine, "process": o.process,
                         "acknowledged_at": o.complete_time, "final_value": fv})
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
