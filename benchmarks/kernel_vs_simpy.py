"""splitbrain vs a hand-written raw-SimPy script of the same scenario, side by side.

Scenario (both versions): open-loop Poisson clients at 2000 req/s; 1% loss each way;
lognormal one-way latency (median 1 ms, sigma 0.5); 3 servers with 4 workers each and
exponential 4 ms service; client timeout 50 ms; up to 3 retries (4 attempts) with
exponential backoff (base 10 ms, cap 200 ms) and full jitter; a record per request.

The raw version is what a competent SimPy user writes first: a process per request and per
message hop, ``simpy.Resource`` for the workers, ``AnyOf(reply, timeout)`` for the timeout,
scalar numpy draws, a list of tuples for the records. The two run alternately in this one
process (``--rounds`` each) and the median throughput of each is compared; the last line is
``throughput ratio splitbrain/raw-simpy: R``.

``--memory`` (default on) also runs splitbrain for ``--memory-requests`` (1,000,000) in a
child process with metrics on and reports its peak RSS, including building the DataFrame.

``--trace`` also runs splitbrain with spans on (``enable_spans``) and prints the cost per request.

    python benchmarks/kernel_vs_simpy.py [--requests 200000] [--rounds 3] [--no-memory] [--trace]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import simpy

RATE, LOSS, LAT_MEDIAN, LAT_SIGMA = 2000.0, 0.01, 0.001, 0.5
SERVERS, WORKERS, SERVICE_MEAN = 3, 4, 0.004
TIMEOUT, ATTEMPTS, BASE, CAP = 0.05, 4, 0.01, 0.2


def build_splitbrain(n: int, seed: int, trace: bool = False):
    """The scenario in splitbrain, run to completion; returns the Simulation. ``trace``: spans on."""
    from models.resilience import RetryPolicy
    from models.services import PoissonClient
    from simulator import Exponential, LogNormal, Simulation

    sim = Simulation(seed=seed)
    if trace:
        from simulator.observe.spans import enable_spans

        enable_spans(sim)
    sim.network(latency=LogNormal(median=LAT_MEDIAN, sigma=LAT_SIGMA), loss=LOSS)
    names = [f"s{i}" for i in range(SERVERS)]
    for s in names:
        sim.node(s).serve("get", service=Exponential(SERVICE_MEAN), workers=WORKERS)
    PoissonClient(sim, "client", names, rate=RATE, timeout_s=TIMEOUT, limit=n,
                  retry=RetryPolicy(max_attempts=ATTEMPTS, backoff="exponential", base_s=BASE, cap_s=CAP,
                                    jitter="full"))
    sim.run(until=n / RATE + 10)
    return sim


def run_splitbrain(n: int, seed: int) -> tuple[int, dict]:
    sim = build_splitbrain(n, seed)
    return len(sim.metrics), sim.metrics.counts()


def run_splitbrain_traced(n: int, seed: int) -> tuple[int, dict]:
    sim = build_splitbrain(n, seed, trace=True)
    return len(sim.metrics), sim.metrics.counts()


def run_raw_simpy(n: int, seed: int) -> tuple[int, dict]:
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=WORKERS) for _ in range(SERVERS)]
    records: list[tuple] = []
    mu = math.log(LAT_MEDIAN)

    def latency() -> float:
        return rng.lognormal(mu, LAT_SIGMA)

    def server_side(server, reply):
        yield env.timeout(latency())  # request on the wire
        with server.request() as req:
            yield req
            yield env.timeout(rng.exponential(SERVICE_MEAN))
        if rng.random() < LOSS:  # the reply is lost
            return
        yield env.timeout(latency())
        if not reply.triggered:
            reply.succeed()

    def request(i: int):
        start = env.now
        for attempt in range(1, ATTEMPTS + 1):
            reply = env.event()
            if rng.random() >= LOSS:  # the request is not lost
                env.process(server_side(servers[rng.integers(SERVERS)], reply))
            timeout = env.timeout(TIMEOUT)
            yield reply | timeout
            if reply.triggered:
                records.append((i, start, env.now, "ok", attempt))
                return
            if attempt < ATTEMPTS:
                yield env.timeout(rng.random() * min(CAP, BASE * 2 ** (attempt - 1)))
        records.append((i, start, env.now, "timeout", ATTEMPTS))

    def clients():
        for i in range(n):
            yield env.timeout(rng.exponential(1 / RATE))
            env.process(request(i))

    env.process(clients())
    env.run(until=n / RATE + 10)
    out: dict[str, int] = {}
    for r in records:
        out[r[3]] = out.get(r[3], 0) + 1
    return len(records), out


def memory_child(n: int) -> None:
    sim = build_splitbrain(n, seed=1)
    df = sim.metrics.requests()  # the peak includes the world and the DataFrame
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(df))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-requests", type=int, default=1_000_000)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--trace", action="store_true",
                    help="also run splitbrain with spans on and print its time per request vs tracing off")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.memory_child:
        memory_child(a.memory_child)
        return
    if a.requests < 1 or a.rounds < 1:
        ap.error("--requests and --rounds must be >= 1")
    tput: dict[str, list[float]] = {"splitbrain": [], "raw-simpy": [], "splitbrain+spans": []}
    arms = [("splitbrain", run_splitbrain), ("raw-simpy", run_raw_simpy)]
    if a.trace:
        arms.append(("splitbrain+spans", run_splitbrain_traced))
    for r in range(a.rounds):
        for name, fn in arms:
            t0 = time.perf_counter()
            count, outcomes = fn(a.requests, seed=r + 1)
            dt = time.perf_counter() - t0
            tput[name].append(count / dt)
            ok = outcomes.get("ok", 0) / max(count, 1)
            print(f"round {r + 1} {name:16s}: {count} requests in {dt:6.2f} s = {count / dt:9.0f} req/s"
                  f"  (ok {ok:.4f})", flush=True)
    if not a.no_memory:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(a.memory_requests)],
                             capture_output=True, text=True, check=True).stdout.split()
        print(f"peak memory, splitbrain, {int(out[1]):,} requests with metrics + DataFrame: "
              f"{float(out[0]):.0f} MB (max RSS)")
    sb, raw = statistics.median(tput["splitbrain"]), statistics.median(tput["raw-simpy"])
    print(f"median throughput: splitbrain {sb:,.0f} req/s, raw-simpy {raw:,.0f} req/s")
    if a.trace:
        tr = statistics.median(tput["splitbrain+spans"])
        print(f"tracing on: {tr:,.0f} req/s; time per request traced/untraced: {sb / tr:.2f}x")
    # R > 1 means splitbrain is faster: R = (raw SimPy's time per request) / (splitbrain's).
    print(f"splitbrain runs {sb / raw:.2f}x as many requests per second as raw SimPy (issue 23's goal: >= 3x)")
    print(f"throughput ratio splitbrain/raw-simpy: {sb / raw:.2f}")


if __name__ == "__main__":
    main()
