"""Synthetic register histories with known verdicts, for tests and benchmarks.

``atomic_register_history`` simulates clients of a *real* atomic register: every operation
takes effect at one instant (its linearization point) drawn between its invocation and its
completion, so the history is linearizable by construction. ``inject_stale_read`` then makes
one read return a value that was provably overwritten before the read began, which no
linearization can explain. Values written are unique (a global counter), as the session and
staleness checkers require.
"""

from __future__ import annotations

import numpy as np

from . import History


def atomic_register_history(rng: np.random.Generator, n_ops: int, *, keys: int = 1, processes: int = 10,
                            write_ratio: float = 0.4, cas_ratio: float = 0.0, info_ratio: float = 0.0,
                            mean_latency_s: float = 0.002, mean_think_s: float = 0.001) -> History:
    """``n_ops`` operations by ``processes`` sequential clients on ``keys`` registers (initially
    None). Each op's effect instant is invoke + Exp(latency/2), its completion that plus
    Exp(latency/2). With probability ``info_ratio`` the client times out (``info``) — and the op
    took effect or not, each with probability 1/2. A cas expects the value current at its
    invocation, so it often succeeds (``ok``) but fails (``fail``, no effect) if a write slipped in.
    """
    for name, v in (("write_ratio", write_ratio), ("cas_ratio", cas_ratio), ("info_ratio", info_ratio)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if write_ratio + cas_ratio > 1:
        raise ValueError("write_ratio + cas_ratio must be <= 1")
    if n_ops < 0 or keys < 1 or processes < 1:
        raise ValueError("need n_ops >= 0, keys >= 1, processes >= 1")
    half = mean_latency_s / 2
    # per op: process (round-robin keeps each client sequential), kind, key, delays
    u = rng.random(n_ops)
    kind = np.where(u < write_ratio, 1, np.where(u < write_ratio + cas_ratio, 2, 0))
    key = rng.integers(0, keys, n_ops)
    d1 = rng.exponential(half, n_ops)
    d2 = rng.exponential(half, n_ops)
    think = rng.exponential(mean_think_s, n_ops)
    timeout = rng.random(n_ops) < info_ratio
    took_effect = rng.random(n_ops) < 0.5
    clock = rng.exponential(mean_think_s, processes)  # staggered starts
    recs = []  # (invoke_t, effect_t, complete_t, process, kind, key, op)
    for i in range(n_ops):
        p = i % processes
        t0 = clock[p]
        t1 = t0 + d1[i]
        t2 = t1 + d2[i]
        clock[p] = t2 + think[i]
        recs.append((t0, t1, t2, p, int(kind[i]), int(key[i]), i))
    # apply effects in linearization-point order on a real register per key
    state: dict[int, object] = {}
    result: dict[int, tuple[str, object, object]] = {}  # op -> (type, invoke value, completion value)
    invoked_view: dict[int, object] = {}  # the value current when a cas was invoked: its expectation
    events = sorted([(r[0], 0, r) for r in recs] + [(r[1], 1, r) for r in recs], key=lambda e: (e[0], e[1]))
    counter = 0
    for _, what, (_t0, _t1, _t2, _p, k, kk, i) in events:
        if what == 0:
            invoked_view[i] = state.get(kk)
            continue
        eff = not timeout[i] or took_effect[i]
        if k == 0:
            result[i] = ("info" if timeout[i] else "ok", None, state.get(kk) if not timeout[i] else None)
        elif k == 1:
            counter += 1
            v = counter
            if eff:
                state[kk] = v
            result[i] = ("info" if timeout[i] else "ok", v, v)
        else:
            counter += 1
            exp, new = invoked_view[i], counter
            hit = state.get(kk) == exp
            if eff and hit:
                state[kk] = new
            typ = "info" if timeout[i] else ("ok" if hit else "fail")
            result[i] = (typ, [exp, new], [exp, new])
    names = ("read", "write", "cas")
    out = []
    for t0, _t1, t2, p, k, kk, i in recs:
        typ, val, res = result[i]
        out.append((t0, 0, {"process": p, "type": "invoke", "f": names[k], "key": kk,
                            "value": val if k else None, "time": t0}))
        out.append((t2, 1, {"process": p, "type": typ, "f": names[k], "key": kk, "value": res, "time": t2}))
    out.sort(key=lambda e: (e[0], e[1]))
    return History.from_events(e for _, _, e in out)


def inject_stale_read(history: History, rng: np.random.Generator) -> tuple[History, int] | None:
    """Make one ``ok`` read return a value overwritten before it was invoked: written by an ``ok``
    write that completed before another ``ok`` write (of the same key) was invoked, which itself
    completed before the read was invoked. With unique values no linearization exists (the read
    must follow both writes in real time, yet the older one would have to come last). Returns
    the new history and the index of the changed completion event, or None if no read qualifies."""
    from .ops import pair_ops

    ops = pair_ops(history)
    writes: dict = {}
    for op in ops:
        if op.f == "write" and op.type == "ok":
            writes.setdefault(op.key, []).append(op)
    reads = [op for op in ops if op.f == "read" and op.type == "ok"]
    order = rng.permutation(len(reads))
    for r in (reads[j] for j in order):
        ws = [w for w in writes.get(r.key, []) if w.complete_time < r.invoke_time]
        for w2 in ws:
            olds = [w for w in ws if w.complete_time < w2.invoke_time and w.value != r.result]
            if olds:
                stale = olds[int(rng.integers(len(olds)))].value
                events = list(history.events())
                # the read's completion: the first event after its invocation for its process
                j = next(k for k in range(r.index + 1, len(events)) if events[k]["process"] == r.process)
                events[j] = {**events[j], "value": stale}
                return History.from_events(events), j
    return None
