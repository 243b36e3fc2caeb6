"""Speed of the workbench (issue 20's figures), measured side by side in one run.

1. In process: broadcast, 25 nodes, grid topology, 100 ms links, 20 s simulated, rate 100 — the
   wall time of the test alone and with its checkers, and simulated seconds per wall second.
   Maelstrom runs the same test in real time: 20 s of operations, plus its 10 s recovery wait, plus
   the analysis, so the ratio "Maelstrom's floor / ours" is printed too (its floor is the 30 s of
   simulated time it has to wait through; that is a lower bound on Maelstrom, not a measurement of it).
2. Hunt: seeds per second for a 5-node, 10 s broadcast test with partitions, pooled on all cores
   and serial, for the reference and the no-retry variant (a failing seed ends the same way).
3. Shrinking: the no-retry variant's first failing seed, its schedule shrunk to a 1-minimal one
   (the issue's bar: at most 3 faults).

    python benchmarks/workbench_speed.py            # ~30 s on 2 cores
    python benchmarks/workbench_speed.py --seeds 400
"""

from __future__ import annotations

import argparse
import os
import time

from simulator.runner.hunt import get_scenario, hunt, shrink_seed
from simulator.runner.workbench_cmd import build, hunt_spec
from simulator.workbench.harness import TestOptions


def in_process(repeats: int) -> None:
    from models.workbench import reference

    opts = TestOptions(workload="broadcast", node=reference("broadcast"), node_count=25, topology="grid",
                       latency_ms=100, time_limit=20, rate=100, seed=1, trace=False)
    runs, checks = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        test = build(opts).run()
        t1 = time.perf_counter()
        res = test.results()
        t2 = time.perf_counter()
        runs.append(t1 - t0)
        checks.append(t2 - t1)
    run, check = min(runs), min(checks)
    simulated = test.sim.now
    print("1. broadcast, 25 nodes, grid, 100 ms links, 20 s at rate 100 (best of "
          f"{repeats}; the message trace off, as a hunt runs)")
    print(f"   verdict valid={res['valid']}; {res['perf']['ops']} ops, {res['net']['servers']} server messages "
          f"({res['net']['msgs_per_op']} per op)")
    print(f"   test {run:.3f} s + checkers {check:.3f} s = {run + check:.3f} s wall for {simulated:.1f} s simulated "
          f"-> {simulated / (run + check):.0f} simulated s per wall s   [goal: < 2 s wall]")
    print(f"   Maelstrom must wait through the same {simulated:.0f} s in real time: >= "
          f"{simulated / (run + check):.0f}x slower before its analysis starts")
    traced = TestOptions(**{**opts.__dict__, "trace": True})
    t0 = time.perf_counter()
    build(traced).run().results()
    print(f"   with the message trace on (splitbrain test's default, for the space-time diagram): "
          f"{time.perf_counter() - t0:.3f} s")


class _Args:  # the flags `splitbrain hunt -w broadcast ...` would parse
    def __init__(self, node: str) -> None:
        self.workload, self.node, self.bin = "broadcast", node, None
        self.node_count, self.time_limit, self.rate, self.concurrency = 5, 10.0, 5.0, None
        self.latency, self.latency_dist, self.nemesis, self.nemesis_interval = 100.0, "constant", "partition", 10.0
        self.topology, self.availability, self.consistency_models, self.recovery = "grid", None, \
            "strict-serializable", 10.0


def hunting(seeds: int) -> None:
    cores = os.cpu_count() or 1
    print(f"\n2. hunt: 5-node, 10 s broadcast, 100 ms links, partition nemesis; {seeds} seeds")
    for node in ("reference", "reference:no-retry"):
        name = hunt_spec(_Args(node))
        get_scenario(name)
        serial = hunt(name, "valid", max(20, seeds // 4), 0, workers=1)
        pooled = hunt(name, "valid", seeds, 0, workers=cores)
        print(f"   {node:<20} serial {serial['seeds_per_s']:6.1f} seeds/s; {cores} workers "
              f"{pooled['seeds_per_s']:6.1f} seeds/s ({len(pooled['failing'])} of {seeds} seeds fail)  "
              f"[goal: >= 20 seeds/s on 2 cores]")


def shrinking() -> None:
    name = hunt_spec(_Args("reference:no-retry"))
    sc = get_scenario(name)
    seed = next(s for s in range(1000) if not sc.run(s, None, "shipped", ("valid",))["valid"])
    # the longest schedule among the first failing seeds makes the shrink do some work
    cands = [s for s in range(seed, seed + 200) if not sc.run(s, None, "shipped", ("valid",))["valid"]][:20]
    seed = max(cands, key=lambda s: len(sc.nemesis(s, "shipped")))
    res = shrink_seed(name, "valid", seed, "shipped", budget_s=60)
    print(f"\n3. shrink: no-retry seed {seed}: {res['original']} faults -> {len(res['schedule'])} "
          f"({res['tries']} runs, {res['seconds']:.2f} s)  [goal: <= 3 faults]")
    print("   " + str(res["schedule"]).replace("\n", "\n   "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200, help="seeds per hunt (default 200)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the in-process test (default 3)")
    a = ap.parse_args()
    in_process(a.repeats)
    hunting(a.seeds)
    shrinking()


if __name__ == "__main__":
    main()
