"""Strict-serializable list-append histories by construction, and one-anomaly injections.

``serializable_list_append`` runs transactions one at a time against a dict of lists, the way a single
serial database would, at commit instants 1, 2, 3, ...; each transaction's invocation and completion lie
in a window around its instant and each process is sequential, so concurrency comes from overlapping
windows while the serial order stays consistent with real time. Keys rotate after ``max_appends_per_key``
appends, as Elle's generator does, so lists stay short. Some transactions fail (never applied) and
some end ``info`` (applied or not, each with probability 1/2). Every judgement of such a history must be
"valid" — the property tests lean on that.
"""

from __future__ import annotations

import numpy as np


def serializable_list_append(rng: np.random.Generator, n_txns: int, *, keys: int = 5, processes: int = 5,
                             max_ops: int = 4, window: float = 3.0, fail_ratio: float = 0.05,
                             info_ratio: float = 0.02, max_appends_per_key: int = 32,
                             registers: bool = False) -> list[dict]:
    """Events (dicts) of ``n_txns`` transactions; values appended are unique per key (a counter). With
    ``registers`` the same schedule runs rw-register transactions instead (``w`` replaces the value)."""
    if n_txns < 0 or keys < 1 or processes < 1 or max_ops < 1 or window < 0:
        raise ValueError("need n_txns >= 0, keys >= 1, processes >= 1, max_ops >= 1, window >= 0")
    state: dict[int, list[int]] = {}
    active = list(range(keys))  # key ids in use; a full key is replaced by a fresh one
    next_key, next_val = keys, 1
    appends: dict[int, int] = {}
    busy = {p: -np.inf for p in range(processes)}
    timeline = []  # (time, order, event)
    for i in range(n_txns):
        c = float(i + 1)
        free = [p for p, t in busy.items() if t < c]
        if free:
            p = free[int(rng.integers(len(free)))]
        else:
            p = len(busy)
            busy[p] = -np.inf
        invoke = max(busy[p] + 1e-6, c - rng.uniform(0, window / 2)) if window else c - 1e-6
        complete = c + (rng.uniform(0, window / 2) if window else 1e-6)
        kind = rng.random()
        typ = "fail" if kind < fail_ratio else "info" if kind < fail_ratio + info_ratio else "ok"
        applied = typ == "ok" or (typ == "info" and rng.random() < 0.5)
        ops, done = [], []
        for _ in range(int(rng.integers(1, max_ops + 1))):
            slot = int(rng.integers(len(active)))
            k = active[slot]
            if rng.random() < 0.5:
                v = next_val
                next_val += 1
                f = "w" if registers else "append"
                ops.append([f, k, v])
                done.append([f, k, v])
                if applied:
                    state[k] = [v] if registers else state.get(k, []) + [v]
                appends[k] = appends.get(k, 0) + 1
                if appends[k] >= max_appends_per_key:
                    active[slot] = next_key
                    next_key += 1
            else:
                ops.append(["r", k, None])
                now = state.get(k, [])
                if registers:
                    done.append(["r", k, now[-1] if now and applied else None])
                else:
                    done.append(["r", k, list(now) if applied else None])
        busy[p] = complete
        timeline.append((invoke, 2 * i, {"type": "invoke", "process": p, "f": "txn", "value": ops, "time": invoke}))
        value = done if typ == "ok" else ops
        timeline.append((complete, 2 * i + 1, {"type": typ, "process": p, "f": "txn", "value": value,
                                               "time": complete}))
    timeline.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timeline]


def _ok_reads(events: list[dict]):
    for n, e in enumerate(events):
        if e["type"] == "ok":
            for j, (f, k, v) in enumerate(e["value"]):
                if f == "r":
                    yield n, j, k, v


def inject_stale_read(events: list[dict], rng: np.random.Generator) -> list[dict] | None:
    """Drop the last element from one committed external read whose last element was appended by a
    transaction that *completed before the reader began*: the reader now rw-precedes a transaction that
    precedes it in real time (G-single-realtime at least). ``None`` if no read qualifies."""
    writer_done: dict = {}  # (k, v) -> completion position of the ok txn that appended it
    invoked: dict = {}  # process -> position of its open invocation
    cands = []
    for n, e in enumerate(events):
        if e["type"] == "invoke":
            invoked[e["process"]] = n
            continue
        start = invoked.pop(e["process"])
        if e["type"] != "ok":
            continue
        touched = set()
        for j, (f, k, v) in enumerate(e["value"]):
            if f == "r" and k not in touched and v and writer_done.get((k, v[-1]), n) < start:
                cands.append((n, j, v))
            touched.add(k)
        for f, k, v in e["value"]:
            if f == "append":
                writer_done[(k, v)] = n
    if not cands:
        return None
    n, j, v = cands[int(rng.integers(len(cands)))]
    out = list(events)
    out[n] = dict(out[n])
    value = [list(m) for m in out[n]["value"]]
    value[j][2] = list(v[:-1])
    out[n]["value"] = value
    return out


def inject_aborted_read(events: list[dict]) -> list[dict] | None:
    """Make the first failed append visible to a later committed read of its key (G1a)."""
    for n, e in enumerate(events):
        if e["type"] != "fail":
            continue
        for f, k, v in e["value"]:
            if f != "append":
                continue
            for m, j, k2, vals in _ok_reads(events[n + 1:]):
                if k2 == k:
                    out = [dict(x) for x in events]
                    value = [list(x) for x in out[n + 1 + m]["value"]]
                    value[j][2] = list(vals) + [v]
                    out[n + 1 + m]["value"] = value
                    return out
    return None
