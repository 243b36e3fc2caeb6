"""Speed and peak memory of the Elle-style transactional checker on list-append histories.

Histories are strict-serializable by construction (``simulator.history.txn.synth``: transactions of 1-4
micro-ops run one at a time against a dict of lists, in overlapping windows; 5% fail, 2% end ``info``;
keys rotate after 32 appends). "invalid" injects stale reads (a read misses an append that finished
before it began); "weak" injects one per 100 transactions; "garbled" truncates 30% of committed
transactions' reads by 1-3 elements, which knits the history into large strongly connected components
with hundreds of anomalies — the cycle searches' worst case. Time is wall-clock for
``check_transactions`` (parsing included); peak memory is tracemalloc's peak in a second, separate run.

    python benchmarks/txn_checker_speed.py [--sizes 1000,10000,50000] [--keys 10] [--processes 10]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from simulator.history.elle import check_transactions
from simulator.history.txn.synth import inject_stale_read, serializable_list_append


def bench_txn(n: int, *, keys: int = 10, processes: int = 10, kind: str = "valid", seed: int = 1) -> dict:
    """One measurement: {n, kind, valid, anomalies, seconds, peak_mb}."""
    rng = np.random.default_rng([seed, n, keys, processes])
    ev = serializable_list_append(rng, n, keys=keys, processes=processes, window=float(processes) / 2)
    for _ in range({"invalid": 1, "weak": max(1, n // 100)}.get(kind, 0)):
        ev = inject_stale_read(ev, rng) or ev
    if kind == "garbled":
        for e in ev:
            if e["type"] == "ok" and rng.random() < 0.3:
                e["value"] = [[f, k, v[:max(0, len(v) - int(rng.integers(1, 4)))] if f == "r" and v else v]
                              for f, k, v in e["value"]]
    t0 = time.perf_counter()
    r = check_transactions(ev)
    dt = time.perf_counter() - t0
    tracemalloc.start()
    check_transactions(ev)
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return {"n": n, "kind": kind, "valid": r.valid, "anomalies": sum(r.counts.values()), "seconds": dt,
            "peak_mb": peak, "notes": len(r.notes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--processes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{'txns':>6} {'history':>8} | {'valid':>5} {'anomalies':>9} {'s':>7} {'txn/s':>8} {'peak MB':>8}")
    for n in map(int, args.sizes.split(",")):
        for kind in ("valid", "invalid", "weak", "garbled"):
            m = bench_txn(n, keys=args.keys, processes=args.processes, kind=kind, seed=args.seed)
            print(f"{n:>6} {kind:>8} | {m['valid']!s:>5} {m['anomalies']:>9} {m['seconds']:>7.2f} "
                  f"{n / m['seconds']:>8.0f} {m['peak_mb']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
