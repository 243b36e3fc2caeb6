"""How much faster is a sweep on a process pool than serially? (side by side, one process)

Runs the same 4-cell sweep of ``kernel_demo`` (cells of a few seconds each) with
``--serial`` and with ``--workers 2``, alternating, and prints the wall time of each and
``speed-up workers=2 vs serial: R`` last. On 2 idle cores the ideal is 2.0; what is lost goes
to the pool's start-up, the parent's combining of the per-cell tables, and the figures.

    python benchmarks/sweep_speed.py [--duration-s 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from simulator.runner import process_executor, run_experiment, serial_executor


def one(executor, out: Path, duration_s: float) -> float:
    t0 = time.perf_counter()
    res = run_experiment("kernel_demo", overrides={"duration_s": duration_s, "partition_at": duration_s / 3,
                                                   "heal_at": 2 * duration_s / 3},
                         grid={"loss": [0.0, 0.01, 0.02, 0.05]}, out=out, executor=executor, progress=False)
    assert not res.failed
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=150.0,
                    help="simulated seconds per cell (150: about 2 s of compute)")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    serial, pool = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            serial.append(one(serial_executor, Path(tmp) / f"s{r}", a.duration_s))
            pool.append(one(process_executor(2), Path(tmp) / f"p{r}", a.duration_s))
            print(f"round {r + 1}: serial {serial[-1]:.2f} s, workers=2 {pool[-1]:.2f} s", flush=True)
    print(f"serial time per cell (compute + its share of writing, summary, figures): {min(serial) / 4:.2f} s")
    print(f"speed-up workers=2 vs serial: {min(serial) / min(pool):.2f}")


if __name__ == "__main__":
    main()
