"""Speed of the linearizability checker on synthetic register histories.

Valid histories come from clients of a real atomic register (each operation takes effect at a
random instant inside its interval; 40% writes, 10% cas, 2% timeouts as ``info``); invalid ones
are the same with one read made stale (it returns a value overwritten before it began). For
each size (1k, 10k, 50k operations) x keys (1, 10, 100) x client processes (10, 50) the script
prints the verdict, the seconds and operations per second; an invalid check includes shrinking
the counterexample.

    python benchmarks/checker_speed.py [--sizes 1000,10000,50000] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator.history.linearizable import check_linearizable
from simulator.history.synth import atomic_register_history, inject_stale_read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--keys", default="1,10,100")
    ap.add_argument("--processes", default="10,50")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{'ops':>6} {'keys':>4} {'procs':>5} | {'valid: verdict':>14} {'s':>7} {'ops/s':>8} | "
          f"{'stale read: verdict':>19} {'s':>7} {'ops/s':>8} {'cx':>3}")
    for n in map(int, args.sizes.split(",")):
        for keys in map(int, args.keys.split(",")):
            for procs in map(int, args.processes.split(",")):
                rng = np.random.default_rng([args.seed, n, keys, procs])
                h = atomic_register_history(rng, n, keys=keys, processes=procs, write_ratio=0.4,
                                            cas_ratio=0.1, info_ratio=0.02)
                t0 = time.perf_counter()
                r = check_linearizable(h, time_limit_s=args.time_limit)
                dt = time.perf_counter() - t0
                line = f"{n:>6} {keys:>4} {procs:>5} | {r.valid!s:>14} {dt:>7.2f} {n / dt:>8.0f} | "
                bad = inject_stale_read(h, rng)
                if bad is None:
                    print(line + "(no read to make stale)")
                    continue
                t0 = time.perf_counter()
                rb = check_linearizable(bad[0], time_limit_s=args.time_limit)
                db = time.perf_counter() - t0
                cx = len(rb.counterexample) if rb.counterexample else 0
                print(line + f"{rb.valid!s:>19} {db:>7.2f} {n / db:>8.0f} {cx:>3}", flush=True)


if __name__ == "__main__":
    main()
