"""Speed of the linearizability checker, per model, on synthetic histories of known verdict.

Valid histories come from clients of a *real* object: each operation takes effect at a random
instant inside its interval (register histories: 40% writes, 10% cas, 2% timeouts as ``info``;
simulator.history.synth). Invalid ones are the same with one observation corrupted (register: a
read made stale; kv: a get missing its last append; set: a read missing an element; queue: a
dequeue returning the wrong element; unique-id: an id handed out twice). For each model x size x
keys x processes the script prints the verdict time on the valid history, the verdict time and the
counterexample (shrinking) time on the invalid one, the counterexample's size, and the peak
memory of the valid check (tracemalloc, measured in a separate run so timings are not slowed).
After each model, the growth of the valid verdict's time per operation between consecutive sizes
(same keys and processes) is printed as a ratio: x1.00 is linear growth; a ratio within 15% of it is
labelled "linear", above that "superlinear" (one run on a shared machine varies by about that much).

    python benchmarks/checker_speed.py            # the default grid, ~2 minutes
    python benchmarks/checker_speed.py --full     # up to 100k ops, 100 keys, 100 processes
    python benchmarks/checker_speed.py --models register --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from simulator.history import History
from simulator.history.linearizable import check_linearizable
from simulator.history.synth import atomic_register_history, inject_stale_read

# kv and queue on one key with many clients are exponential for the generic search (each
# concurrent append/enqueue is an ordering choice that only a later read settles; a queue's
# backlog puts that read far away): grids use many keys. --full includes cases that end unknown
DEFAULT = {"register": ("1000,10000,50000", "1,10", "10"), "cas-register": ("1000,10000,50000", "1,10", "10"),
           "kv": ("1000,10000", "10,100", "5"), "set": ("1000,10000", "1,10,100", "5"),
           "queue": ("1000,10000", "100", "5"), "unique-id": ("1000,10000", "1", "10")}
FULL = {"register": ("1000,10000,50000,100000", "1,10,100", "5,10,50,100"),
        "cas-register": ("1000,10000,50000,100000,200000", "1,10,100", "10,50"),
        "kv": ("1000,10000,50000", "10,100", "5,10"), "set": ("1000,10000,50000", "1,10,100", "5,10"),
        "queue": ("1000,10000,50000", "10,100", "5,10"), "unique-id": ("1000,10000,100000", "1", "10,100")}


def object_history(model: str, rng: np.random.Generator, n: int, keys: int, procs: int,
                   lat: float = 0.002, think: float = 0.001) -> tuple[History, int]:
    """A valid history of a real kv / set / queue / unique-id object, and the index of one completion
    event to corrupt for the invalid variant (found after effect order is known)."""
    clock = rng.exponential(think, procs)
    recs = []
    for i in range(n):
        p = i % procs
        t0 = clock[p]
        t1 = t0 + rng.exponential(lat / 2)
        t2 = t1 + rng.exponential(lat / 2)
        clock[p] = t2 + rng.exponential(think)
        recs.append([t0, t1, t2, p, int(rng.integers(keys)), rng.random(), i])
    state: dict = {}
    outs: dict = {}
    for _t0, _t1, _t2, _p, k, u, i in sorted(recs, key=lambda r: r[1]):
        s = state.get(k)
        if model == "kv":
            s = s or ""
            f, v = ("get", None) if u < 0.5 else (("append", f"<{i}>") if u < 0.95 else ("put", f"<{i}>"))
            out = s if f == "get" else v
            state[k] = s if f == "get" else (s + v if f == "append" else v)
        elif model == "set":
            s = s or frozenset()
            f, v = ("read", None) if u < 0.3 else ("add", i)
            out = sorted(s) if f == "read" else v
            state[k] = s if f == "read" else s | {i}
        elif model == "queue":
            s = s or ()
            f, v = ("enqueue", i) if u < 0.55 else ("dequeue", None)
            out = v if f == "enqueue" else (s[0] if s else None)
            state[k] = s + (i,) if f == "enqueue" else s[1:]
        else:
            f, v = "generate", None
            out = i
        outs[i] = (f, k, v, out)
    events = []
    for t0, _t1, t2, p, _k, _u, i in recs:
        f, k, v, out = outs[i]
        events.append((t0, 0, i, {"process": p, "type": "invoke", "f": f, "key": k, "value": v, "time": t0}))
        events.append((t2, 1, i, {"process": p, "type": "ok", "f": f, "key": k, "value": out, "time": t2}))
    events.sort(key=lambda e: (e[0], e[1]))
    h = History.from_events(e[3] for e in events)
    return h, [e[2] for e in events]


def corrupt(model: str, h: History, rng: np.random.Generator) -> History | None:
    ev = list(h.events())
    late = range(len(ev) // 2, len(ev))  # corrupt in the second half: the search must get there
    for j in sorted(late, key=lambda _: rng.random()):
        e = ev[j]
        if e["type"] != "ok":
            continue
        if model == "kv" and e["f"] == "get" and e["value"]:
            ev[j] = {**e, "value": e["value"][: e["value"].rfind("<")]}
        elif model == "set" and e["f"] == "read" and e["value"]:
            ev[j] = {**e, "value": list(e["value"])[1:]}
        elif model == "queue" and e["f"] == "dequeue" and e["value"] is not None:
            ev[j] = {**e, "value": -1}
        elif model == "unique-id":
            other = next(x for x in ev if x["type"] == "ok" and x["value"] != e["value"])
            ev[j] = {**e, "value": other["value"]}
        else:
            continue
        return History.from_events(ev)
    return None


def case(model: str, n: int, keys: int, procs: int, seed: int) -> tuple[History, History | None]:
    rng = np.random.default_rng([seed, n, keys, procs])
    if model in ("register", "cas-register"):
        h = atomic_register_history(rng, n, keys=keys, processes=procs, write_ratio=0.4, cas_ratio=0.1,
                                    info_ratio=0.02)
        bad = inject_stale_read(h, rng)
        return h, bad[0] if bad else None
    h, _ = object_history(model, rng, n, keys, procs)
    return h, corrupt(model, h, rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--sizes", help="override every model's sizes, e.g. 1000,10000")
    ap.add_argument("--keys", help="override keys, e.g. 1,10")
    ap.add_argument("--processes", help="override processes, e.g. 10,50")
    ap.add_argument("--full", action="store_true", help="the big grid (up to 100k ops; tens of minutes)")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    grid = FULL if args.full else DEFAULT
    print(f"{'model':>12} {'ops':>6} {'keys':>4} {'procs':>5} | {'valid':>6} {'verdict s':>9} {'ops/s':>8} "
          f"{'peak MB':>7} | {'invalid':>7} {'verdict s':>9} {'cx s':>6} {'cx ops':>6} {'minimal':>7}")
    for model in args.models.split(","):
        sizes, keys_s, procs_s = grid[model]
        times: dict[tuple[int, int], list[tuple[int, float]]] = {}
        for n in map(int, (args.sizes or sizes).split(",")):
            for keys in map(int, (args.keys or keys_s).split(",")):
                for procs in map(int, (args.processes or procs_s).split(",")):
                    h, bad = case(model, n, keys, procs, args.seed)
                    t0 = time.perf_counter()
                    r = check_linearizable(h, model=model, time_limit_s=args.time_limit)
                    dt = time.perf_counter() - t0
                    times.setdefault((keys, procs), []).append((n, dt))
                    peak = float("nan")
                    if not args.no_memory:
                        tracemalloc.start()
                        check_linearizable(h, model=model, time_limit_s=args.time_limit)
                        peak = tracemalloc.get_traced_memory()[1] / 1e6
                        tracemalloc.stop()
                    line = (f"{model:>12} {n:>6} {keys:>4} {procs:>5} | {r.valid!s:>6} {dt:>9.3f} {n / dt:>8.0f} "
                            f"{peak:>7.1f} | ")
                    if bad is None:
                        print(line + "(nothing to corrupt)", flush=True)
                        continue
                    rb = check_linearizable(bad, model=model, time_limit_s=args.time_limit)
                    cx = len(rb.counterexample) if rb.counterexample else 0
                    minimal = all(k.minimal for k in rb.per_key.values() if k.valid is False)
                    print(line + f"{rb.valid!s:>7} {rb.stats['verdict_seconds']:>9.3f} "
                          f"{rb.stats['shrink_seconds']:>6.2f} {cx:>6} {minimal!s:>7}", flush=True)
        for (keys, procs), row in times.items():
            print(f"{model} keys={keys} procs={procs}: " + growth(row), flush=True)


def growth(row: list[tuple[int, float]]) -> str:
    """Time per operation of each size relative to the previous size: 'time per op 100k→200k: x1.02
    (linear)'; x1.00 is linear, x2.00 quadratic over a doubling."""
    out = []
    for (n0, t0), (n1, t1) in zip(row, row[1:]):
        r = (t1 / n1) / (t0 / n0)
        word = "linear" if r <= 1.15 else "superlinear"
        out.append(f"time per op {_k(n0)}→{_k(n1)}: x{r:.2f} ({word})")
    return "; ".join(out) if out else "(one size: no growth ratio)"


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


if __name__ == "__main__":
    main()
