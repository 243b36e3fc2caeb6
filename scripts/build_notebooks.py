"""Write the teaching notebooks (without outputs) from the cell sources below.

Notebooks are generated so that their code stays reviewable as plain Python; run
``python scripts/build_notebooks.py`` after editing, and the notebook test executes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course import ex02, ex04, ex05, ex06, ex07  # noqa: E402
from course.common import INTRO, exercise  # noqa: E402
from course.frame import CLOSING, OPENING  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

KERNEL_TOUR = [
    ("md", """# 01 · A tour of the splitbrain kernel

A distributed system is a set of **nodes** that talk over a **network**. Both fail: messages
are delayed, lost, duplicated, reordered; nodes crash, pause, or run slow; clocks drift; the
network splits. This notebook builds a tiny world and breaks it on purpose, one fault at a
time, measuring what a client sees.

Everything is deterministic: the same seed gives bit-identical results, because every random
draw comes from a *named* stream derived from one root seed."""),
    ("code", """import matplotlib.pyplot as plt
import pandas as pd

from simulator import (Simulation, Constant, LogNormal, Exponential, Mixture,
                       latency_percentiles, availability_by_side)
from simulator import plots
from simulator.runner import quick_mode

QUICK = quick_mode()          # CI runs this notebook with SPLITBRAIN_QUICK=1
DURATION = 6.0 if QUICK else 30.0"""),
    ("md", """## 1. Nodes and a lossy network

A server is a node with a pool of workers and a service-time distribution. A client sends
requests (RPCs) with a timeout. Outcomes are distinct: `ok`, `timeout` (indefinite: the work
*may* have happened), `error`, `rejected`, `unreachable`, `crashed` (definite failures)."""),
    ("code", """sim = Simulation(seed=7, trace=True)
sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=0.05)
server = sim.node("server")
server.serve("get", lambda msg: f"value-{msg.payload}", service=Exponential(0.004), workers=2)
client = sim.node("client")

results = []
def ask(i):
    client.call("server", "get", i, timeout_s=0.05,
                callback=lambda outcome, value: results.append((i, outcome, value)))
for i in range(200):
    sim.at(i * 0.01, lambda i=i: ask(i))
sim.run(until=3)
pd.Series([o for _, o, _ in results]).value_counts()"""),
    ("md", """With 5% loss on each direction, a request fails if either the request or the reply is
lost: P(timeout) = 1 − 0.95² ≈ 9.75%. The counts above should be close to that."""),
    ("code", """lost = sum(1 for _, o, _ in results if o == "timeout") / len(results)
print(f"timeouts: {lost:.3f}   theory: {1 - 0.95**2:.4f}")"""),
    ("md", """## 2. A space-time diagram

With `trace=True` the kernel records every send, delivery and drop. Time flows left to
right; each horizontal line is a node; each arrow is a message; a red × marks a message the
network dropped."""),
    ("code", """fig = plots.space_time(sim.trace.frame(), nodes=["client", "server"], t1=0.12,
                      title="Requests and replies; a red x is a message the network lost")
plt.show()"""),
    ("md", """## 3. Clocks drift

Each node sees only its own physical clock. A clock with a 100 ppm drift gains 0.1 ms every
second; an NTP-like sync every second resets it to true time ± the sync error."""),
    ("code", """sim = Simulation(seed=1)
free = sim.node("free-running", clock=dict(drift_ppm=100))
synced = sim.node("synced", clock=dict(drift_ppm=100, sync_interval_s=1.0, sync_error_s=0.0002))
rows = []
def sample():
    rows.append({"t": sim.now, "free-running": free.clock.error() * 1e3,
                 "synced": synced.clock.error() * 1e3})
    sim.at(0.05, sample)
sim.at(0.0, sample)
sim.run(until=10)
clocks = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(8, 3.5), constrained_layout=True)
for col in ("free-running", "synced"):
    ax.plot(clocks["t"], clocks[col], label=col, color=plots.color_for(col))
ax.set_xlabel("true time (s)"); ax.set_ylabel("clock error (ms)"); ax.legend()
ax.set_title("Drift grows without bound; periodic sync keeps the error within its bound")
plt.show()
print("bound after sync:", synced.clock.error_bound_after_sync * 1e3, "ms")"""),
    ("md", """## 4. A partition, measured

Three servers, two clients, one on each side of a split. The `kernel_demo` experiment does
exactly this; it is the same function the CLI (`splitbrain run kernel_demo`) and the tests
call."""),
    ("code", """from experiments import kernel_demo
p = kernel_demo.QUICK if QUICK else kernel_demo.Params()
res = kernel_demo.run(p, seed=1)
res["summary"]"""),
    ("code", """figs = kernel_demo.plot(res, p)
plt.show()"""),
    ("code", """from simulator.runner.widgets import explore
explore(kernel_demo)   # change any parameter and rerun (controls need Jupyter with ipywidgets)"""),
    ("md", """The cut-off client keeps succeeding only when a (random) retry lands on the one server it
can still reach: with 3 attempts and 1 of 3 servers reachable, P(success) = 1 − (2/3)³ ≈ 0.70.
The majority side barely notices. Availability is not one number: it depends on **which side
of the partition you are on**."""),
    ("code", """df = res["requests"]
part = df[(df.start > p.partition_at) & (df.start < p.heal_at - 0.3)]
minority = part[part.client == "client_a"]
print(f"minority availability during the partition: {(minority.outcome == 'ok').mean():.3f}"
      f"   theory ≈ {1 - (2/3)**3:.3f}")"""),
    ("md", """## 5. Latency tails

A mixture distribution models a service that is usually fast and occasionally very slow.
The complementary CDF — the fraction of requests slower than x, on log axes — shows the
median barely moves while everything beyond the 99th percentile is 50× slower."""),
    ("code", """sim = Simulation(seed=3)
sim.network(latency=Constant(0.0005))
for name, svc in {"steady": Exponential(0.004),
                  "1% slow": Mixture([(0.99, Exponential(0.004)), (0.01, Constant(0.2))])}.items():
    node = sim.node(name)
    node.serve("get", service=svc, workers=8)
from models.services import PoissonClient
PoissonClient(sim, "c1", ["steady"], rate=300, stop_at=DURATION)
PoissonClient(sim, "c2", ["1% slow"], rate=300, stop_at=DURATION)
sim.run(until=DURATION + 1)
df = sim.metrics.requests()
fig = plots.latency_cdf(df, by="target", tail=True,
                        title="1% slow requests leave the median alone and own the tail")
plt.show()
latency_percentiles(df, by="target")"""),
]


NB01_EXERCISES = [
    ("md", INTRO),
    *exercise(1, "Loss and retries", """Each message (request or reply) is lost with probability 10%,
independently. The client times out and retries, **3 attempts** in all. **What fraction of requests
still fail?**""",
              answer="prediction = None   # <- your answer: fraction of requests that fail after 3 attempts",
              reference="prediction = 0.0069", wrong="prediction = 0.001",
              run="""from models.resilience.retry import RetryPolicy
from simulator.runner.teach import agrees, check_number
sim = Simulation(seed=11)
sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=0.10)
sim.node("server").serve("get", service=Exponential(0.004), workers=64)
PoissonClient(sim, "client", ["server"], rate=2000, timeout_s=0.1, stop_at=3.0 if QUICK else 20.0,
              retry=RetryPolicy(max_attempts=3, backoff="fixed", base_s=0.01, cap_s=0.01))
sim.run(until=5.0 if QUICK else 22.0)
df = sim.metrics.requests()
measured = float((df.outcome != "ok").mean())
per_attempt = 1 - (1 - 0.10) ** 2                  # the request or the reply is lost
closed_form = per_attempt ** 3                     # all three attempts fail
se = (closed_form * (1 - closed_form) / len(df)) ** 0.5
print(f"{len(df)} requests · measured {measured:.4f} (± {2 * se:.4f}) · closed form {closed_form:.4f}")
agrees(measured, closed_form, 4 * se + 1e-3, "(1 - 0.9**2)**3")""",
              check="""check_number(prediction, closed_form, tol=0.25 * closed_form, why=(
    f"One attempt fails if the request OR the reply is lost: 1 - 0.9**2 = {per_attempt:.2f} (not 0.10). Retries "
    f"are independent here, so all three fail with {per_attempt:.2f}**3 = {closed_form:.4f}. With 1% loss the "
    f"same formula gives {(1 - 0.99**2)**3:.1e}: retries make independent loss vanish — but not a partition "
    "(next exercise)."))"""),
    *exercise(2, "Retries against a partition", """Back to `kernel_demo`: during the split the minority
client reaches only 1 of the 3 servers, and each attempt picks a server at random. With **5 attempts**
instead of 3, **what fraction of the minority client's requests succeed during the partition?**""",
              answer="prediction = None   # <- your answer: minority availability during the partition, 5 attempts",
              reference="prediction = 0.868", wrong="prediction = 0.33",
              run="""import dataclasses
p5 = dataclasses.replace(kernel_demo.QUICK if QUICK else kernel_demo.Params(), max_attempts=5)
df = kernel_demo.run(p5, seed=1)["requests"]
part = df[(df.start > p5.partition_at) & (df.start < p5.heal_at - 0.3) & (df.client == "client_a")]
measured = float((part.outcome == "ok").mean())
closed_form = 1 - (2 / 3) ** 5                     # fails only if all 5 picks land across the split
se = (closed_form * (1 - closed_form) / len(part)) ** 0.5
print(f"{len(part)} requests · measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se + 0.02, "1 - (2/3)**5")""",
              check="""check_number(prediction, closed_form, tol=0.05, why=(
    f"Each attempt succeeds only if it picks s0 (1 in 3); all 5 miss with (2/3)**5 = {(2/3)**5:.3f}. Retries help "
    "a random load balancer, but they cannot make the partition go away: a client pinned to an unreachable "
    "server would see 0% whatever the retry count."))"""),
    *exercise(3, "How far does a clock drift?", """A node's clock runs fast by **100 ppm** (parts per
million) and is never synchronised. **How many milliseconds ahead of true time is it after 10 s?**
(Compare with the free-running curve above.)""",
              answer="prediction = None   # <- your answer in ms",
              reference="prediction = 1.0", wrong="prediction = 0.1",
              run="""sim = Simulation(seed=1)
free = sim.node("free-running", clock=dict(drift_ppm=100))
sim.run(until=10)
measured = free.clock.error() * 1e3
closed_form = 100e-6 * 10 * 1e3                    # drift (s per s) x elapsed (s), in ms
print(f"measured {measured:.4f} ms · closed form {closed_form:.4f} ms")
agrees(measured, closed_form, 1e-6, "drift x time")""",
              check="""check_number(prediction, closed_form, tol=0.05, unit="ms", why=(
    "100 ppm = 100 µs gained per second; 10 s -> 1 ms. Small, but two such clocks drifting in opposite "
    "directions disagree by 2 ms after 10 s and by 17 s per day — longer than any lease or token expiry "
    "leeway you would choose (notebook 03)."))"""),
]

NB03_EXERCISES = [
    ("md", INTRO),
    *exercise(1, "How stale right after a write?", """N = 3 replicas, **R = W = 1**. The write commits as
soon as one replica has it; a read sent at the same instant returns the first replica that answers.
Assume the acknowledgement and read legs take no time (A, R, S negligible) while the write takes a
while to reach the other two. **What fraction of reads right after the commit are stale?**""",
              answer="prediction = None   # <- your answer: fraction of reads at t = 0 that miss the write",
              reference="prediction = 2 / 3", wrong="prediction = 0.5",
              run="""from simulator import Simulation, Exponential
from simulator.runner.teach import agrees, check_number
from models.replication.pbs import wars_thresholds, wars_streams, p_consistent, miss_probability
trials = 20_000 if QUICK else 500_000
T = wars_thresholds({"W": Exponential(0.010), "A": 0.0, "R": 0.0, "S": 0.0}, 3, 1, 1, trials,
                    wars_streams(Simulation(seed=1)))
measured = 1 - float(p_consistent(T, [0.0])[0])
closed_form = miss_probability(3, 1, 1)            # C(N-W, R) / C(N, R) = C(2,1) / C(3,1)
se = (closed_form * (1 - closed_form) / trials) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "C(2,1)/C(3,1)")""",
              check="""check_number(prediction, closed_form, tol=0.03, why=(
    "At commit exactly W = 1 replica has the write; the read asks R = 1 replica, a random one of 3, so it misses "
    "with C(N-W, R)/C(N, R) = 2/3. The PBS figure above is far kinder because real A, R and S legs give the "
    "write time to spread before the read arrives."))"""),
    *exercise(2, "k-staleness", """Same store (N = 3, R = W = 1, each write and each read to random
replicas). Two writes commit one after the other, then a read. **What is the probability the read
returns one of the last two versions** (not the value from before both writes)?""",
              answer="prediction = None   # <- your answer: P(read returns one of the last 2 versions)",
              reference="prediction = 5 / 9", wrong="prediction = 2 / 3",
              run="""from models.replication.pbs import des_k_staleness, k_staleness
trials = 2_000 if QUICK else 20_000
within = des_k_staleness(3, 1, 1, k=2, trials=trials, seed=1)   # on the simulator kernel
measured = float(within.mean())
closed_form = k_staleness(3, 1, 1, 2)              # 1 - (C(2,1)/C(3,1))**2
se = (closed_form * (1 - closed_form) / trials) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "1 - (2/3)**2")""",
              check="""check_number(prediction, closed_form, tol=0.03, why=(
    "The read misses both writes only if it misses each (2/3 each, independently): 1 - (2/3)**2 = 5/9. Bailis "
    "et al. call this k-staleness: each older version multiplies the miss probability by C(N-W,R)/C(N,R) again."))"""),
    *exercise(3, "When is a partial quorum safe?", """Five replicas. Setting A: **N = 5, R = 2, W = 4**;
setting B: **N = 5, R = 2, W = 3**. Under the same workload, **what fraction of setting A's reads are
stale?** (Then look at B.)""",
              answer="prediction = None   # <- your answer: stale-read rate of 5-2-4",
              reference="prediction = 0.0", wrong="prediction = 0.1",
              run="""import dataclasses
from experiments import pacelc
pq = dataclasses.replace(pacelc.QUICK if QUICK else pacelc.Params(), settings=("5-2-4", "5-2-3"))
qs = pacelc.run(pq, seed=1)["summary"].set_index("setting")
measured = float(qs.loc["5-2-4", "stale_read_rate"])
closed_form = miss_probability(5, 2, 4)            # R + W > N: every read quorum meets every write quorum
print(qs[["stale_read_rate", "reads", "mean_latency_s"]])
print(f"measured {measured} · closed form {closed_form} · 5-2-3 at worst (read racing the write) "
      f"{miss_probability(5, 2, 3):.2f}")
agrees(measured, closed_form, 0.0, "R + W > N (no stale read, ever)")""",
              check="""check_number(prediction, closed_form, tol=0.005, why=(
    "With R + W = 6 > N = 5, any 2 replicas read overlap any 4 written, so a read always reaches a replica with "
    "the latest committed write: 0 stale reads, at every t. 5-2-3 (R + W = N) can miss with probability "
    "C(2,2)/C(5,2) = 0.1 for a read racing a write; it measures lower because most reads start after the write "
    "has reached every replica — PBS, not a guarantee."))"""),
    *exercise(4, "Who can serve the minority side?", """Five replicas split 2 | 3, with clients on both
sides, as in the CAP/PACELC explorer above. Six configurations: `raft`, `5-1-1`, `5-2-2`, `5-3-3`, `5-1-5`
and `5-5-1` (N-R-W, no sloppy quorum). **Which of them serve *both* reads and writes to the clients on
the 2-replica side during the partition?**

- (a) none: CAP says no store can be available on both sides of a partition
- (b) `5-1-1` and `5-2-2`
- (c) every configuration with R + W > N (`5-3-3`, `5-1-5`, `5-5-1`) and `raft`
- (d) only `5-1-1`""",
              answer='prediction = None   # <- "a", "b", "c" or "d"',
              reference='prediction = "b"', wrong='prediction = "a"',
              run="""from simulator.runner.teach import check_choice
from models.replication.pbs import parse_nrw
from experiments import cap_frontier
fs = cap_frontier.run(cap_frontier.QUICK, seed=1)["summary"].set_index("config")
serves_both = fs[(fs.read_availability_minority >= 0.99) & (fs.write_availability_minority >= 0.99)].index
measured_set = sorted(serves_both)
# closed form: a side with s = 2 replicas reaches R of them for a read and W for a write
closed_set = sorted(c for c in fs.index if c != "raft" and max(parse_nrw(c)[1:]) <= 2)
print(fs[["read_availability_minority", "write_availability_minority", "stale_read_rate", "lost_writes"]])
print(f"serve both on the minority: measured {measured_set} · arithmetic (R <= 2 and W <= 2) {closed_set}")
if measured_set != closed_set:
    raise AssertionError("the explorer disagrees with quorum arithmetic: please report a bug")
options = {"a": [], "b": ["5-1-1", "5-2-2"], "c": ["5-1-5", "5-3-3", "5-5-1", "raft"], "d": ["5-1-1"]}
measured = next(k for k, v in options.items() if sorted(v) == measured_set)""",
              check="""check_choice(prediction, measured, choices=("a", "b", "c", "d"), why=(
    "A side with 2 replicas can gather R = 2 read replies and W = 2 write acks from its own owners, so any "
    "config with R <= 2 and W <= 2 stays fully available there — CAP's 'A' is possible, Gilbert and Lynch "
    "only prove it cannot come with linearizability. The price is in the table: R + W <= 4 < N means a "
    "minority read quorum need not meet the majority's write quorum, so those reads go stale. Raft and "
    "5-3-3 refuse the minority entirely; on both sides 5-1-5 keeps only reads (a write needs all 5) and "
    "5-5-1 only writes (a read needs all 5)."))"""),
]

KERNEL_TOUR += NB01_EXERCISES


NB00 = [
    ("md", """# 00 · Start here: a course in distributed thinking

**Who this is for.** Engineers who build or operate services that talk over a network —
backend developers, SREs, students who have read about CAP and want to *see* it. You need
Python and curiosity; no distributed-systems background is assumed.

**How it works.** Every notebook runs a deterministic simulator: nodes, a lossy network,
clocks that drift, partitions, crashes. You break a small system on purpose and measure what
its clients see. Each notebook has *predict, then run* exercises: you write down a number
before the simulation runs, then compare it with the measurement and, where one exists, the
closed form. Being wrong is the point — the gap is where the lesson is.

## The path (about 20–40 minutes each)

- **[01 · kernel tour](01_kernel_tour.ipynb)** —
  loss, timeouts and retries; clocks; availability per side of a partition; latency tails
- **[02 · resilience](02_resilience.ipynb)** —
  timeouts, retries with backoff and jitter, circuit breakers, bulkheads, load balancing
- **[03 · CAP tradeoffs](03_cap_tradeoffs.ipynb)** —
  CAP, PACELC, the consistency ladder; quorums and staleness; clock skew; Raft; CRDTs
- **[04 · messaging](04_messaging.ipynb)** —
  queue or HTTP call; visibility timeouts, poison messages; delivery semantics; acks; rebalances
- **[05 · transactions](05_transactions.ipynb)** —
  2PC or sagas; orchestration, choreography; idempotency keys; outbox; event sourcing; CQRS
- **[06 · observability](06_observability.ipynb)** —
  traces, structured logs, SLOs and burn rates; explaining one slow request
- **[07 · architecture](07_architecture.ipynb)** —
  anti-patterns, caching, coordination, queue disciplines, rolling deploys

Go in order the first time: later notebooks use words (indeterminate outcome, quorum,
linearizable) that earlier ones define."""),
    ("code", """from simulator import Simulation, Constant, Mixture
from simulator.runner import quick_mode

QUICK = quick_mode()          # CI runs every notebook with SPLITBRAIN_QUICK=1 (small, fast presets)"""),
    ("md", """## Warm-up: predict, then run

Write your answer in the `prediction = None` cell (replace `None`), *then* run the two cells after it:
the simulation, and the check."""),
    *exercise(0, "Fan-out and the tail", """A backend answers in 5 ms, except 1% of the time when it takes
200 ms (a GC pause, a cold cache). A web page fans out to **10** such backends in parallel and waits
for all of them. **What fraction of page loads take 200 ms or more?** (a fraction between 0 and 1)""",
              answer="prediction = None   # <- your answer: fraction of pages that wait for at least one slow backend",
              reference="prediction = 0.096", wrong="prediction = 0.01",
              run="""from simulator.runner.teach import agrees, check_number
backend = Mixture([(0.99, Constant(0.005)), (0.01, Constant(0.200))])
rng = Simulation(seed=1).rng("warmup")          # a named random stream: same seed, same numbers
pages = 20_000 if QUICK else 200_000
page_latency = backend.draw(rng, pages * 10).reshape(pages, 10).max(axis=1)
measured = float((page_latency >= 0.2).mean())
closed_form = 1 - 0.99 ** 10                       # P(at least one of 10 is slow)
se = (closed_form * (1 - closed_form) / pages) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "1 - 0.99**10")""",
              check="""check_number(prediction, closed_form, tol=0.02, why=(
    f"Each page is fast only if all 10 backends are fast: 0.99**10 = {0.99**10:.3f}, so {closed_form:.1%} of "
    "pages see the 200 ms tail — ten times the 1% of one backend. Fan-out turns a rare tail into a common one "
    "(Dean & Barroso, 'The Tail at Scale')."))"""),
    ("md", """## Explore any experiment with controls

Every experiment declares its parameters once (type, unit, allowed range). `explore` turns
that declaration into sliders and drop-downs with a **Run** button that reruns the experiment
and redraws its figure. It needs `ipywidgets` in a live Jupyter kernel (`pip install
ipywidgets`); without it, the cell prints how to install it and the notebook carries on."""),
    ("code", """from experiments import kernel_demo
from simulator.runner.widgets import explore, controls_spec
explore(kernel_demo)
controls_spec(kernel_demo)[:4]   # (name, control, min, max, default): read from kernel_demo.Params"""),
    ("md", """## Afterwards: run any experiment from the command line

The notebooks call the same functions as the CLI. Once you have finished the course:

```bash
splitbrain list                                   # every experiment and the question it answers
splitbrain show kernel_demo                       # its parameters: default, unit, allowed range
splitbrain run kernel_demo --quick --out /tmp/kd  # a small run: summary, figures, raw CSVs
splitbrain run kernel_demo --param loss=0.05 --param max_attempts=1 --out /tmp/kd2
splitbrain validate                               # reproductions of published numbers
```

Tuples are written `a:b:c` (`--param clients=10:50:100`). Every run writes its parameters
and seed next to its results, so you can rerun it exactly.

**Next:** open [01_kernel_tour](01_kernel_tour.ipynb)."""),
]


def _lesson(mod: str, intro: str, after: str) -> list[tuple[str, str]]:
    return [("md", intro),
            ("code", f"""from experiments import {mod}
p = {mod}.QUICK if QUICK else {mod}.Params()
res = {mod}.run(p, seed=1)
figs = {mod}.plot(res, p)
plt.show()
res["summary"]"""),
            ("md", after),
            ("code", f"""explore({mod})   # change any parameter and rerun (controls need Jupyter with ipywidgets)""")]


RESILIENCE = [
    ("md", """# 02 · Resilience patterns and the failures they fix

Every pattern here is a bet: spend a little (latency, load, complexity) to avoid a large
failure. Each section runs one experiment — the same function `splitbrain run NAME` calls —
and shows the failure mode first, then the pattern that fixes it (or the misuse that makes
it worse). All arms of a comparison share their random streams, so the difference you see is
the policy, not the noise."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()"""),
    *_lesson("retry_storm", """## 1. Retry storms and metastable failure

The toy model of Bronson et al. (HotOS 2021): a database that does 10× the work per query once
it is overloaded (thrashing), clients that retry once after a 1 s timeout, and a 2 s latency
spike as the trigger.""", """The aggressive arm never recovers: once the database thrashes, its
queue waits longer than the timeout, *every* attempt times out and is retried, so it receives 2×
the load at a tenth of its capacity — the trigger is gone, the overload sustains itself (stable
only below 1/(2·10) = 5% of capacity). Exponential backoff with jitter plus a retry **budget**
keeps the load near 1× and the system recovers when the spike ends."""),
    *_lesson("backoff_jitter", """## 2. Backoff needs jitter

N clients update one row with optimistic concurrency (read the version, write if unchanged) and
retry conflicts with capped exponential backoff — the setup of Marc Brooker's "Exponential
Backoff And Jitter" (AWS Architecture Blog, 2015).""", """Without jitter the clients stay nearly in
lock-step (with a fixed network delay exactly one wins per wave: N(N+1)/2 calls); at 100 clients
plain exponential backoff does about 2.3× the calls of full jitter and takes about 13× as long.
Jitter (full, equal or decorrelated) breaks the synchrony; no backoff at all finishes fastest
but does the most work."""),
    *_lesson("circuit_breaker", """## 3. Circuit breakers

A dependency goes down for a while. Without a breaker every call waits out its timeout.""",
             """With a breaker, callers fail fast (here onto a cached fallback) and the dependency
gets only a trickle of half-open probes — room to recover. The bottom panel is the breaker's
state machine: closed → open → half_open → open … → closed."""),
    *_lesson("timeouts", """## 4. Timeouts: none, too long, well chosen

Endpoint `a` calls a database that slows down 50×; endpoint `b` never touches it. Both share
the frontend's workers.""", """Without a timeout — or with one longer than the clients wait —
threads pile up on the slow database and endpoint `b` dies too: a cascading failure. A timeout
just above the dependency's normal tail frees the workers."""),
    *_lesson("bulkhead", """## 5. Bulkheads

Same frontend, no timeout, but now the two endpoints get separate worker pools.""",
             """Isolation contains the failure to the compartment that depends on the slow service."""),
    *_lesson("tail_at_scale", """## 6. The tail at scale, and hedged requests

A root request fans out to n leaves; 1% of leaf calls are slow.""", """The fraction of slow
fan-outs follows 1 − (1 − p)ⁿ. Hedging — a second copy after the p95 — buys most of the tail
back for about 5% extra load."""),
    *_lesson("load_balancing", """## 7. Load balancing around a slow instance

One of five backends is 5× slower (alive and passing health checks: a gray failure).""",
             """Random and round robin keep feeding it its full share; least-outstanding and the
power of two choices notice its queue and route around it."""),
]


CAP = [
    ("md", """# 03 · CAP and PACELC, measured

**CAP**: when the network partitions (P), a replicated store must choose between
availability (A: every replica answers) and consistency (C: linearizability — every
operation appears to take effect at one instant between its call and its return).
**PACELC** adds: *else* (E), with no partition, it still trades latency (L) against
consistency (C).

We check consistency the way Jepsen does: clients record a history of invocations and
completions, and a checker searches for a legal order."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
from simulator.history import History
from simulator.history.linearizable import check_linearizable
QUICK = quick_mode()"""),
    ("md", """## What the checker sees

A write of 1 completes at t = 1; a read that *starts* at t = 2 returns the old value. No
order of the two operations within their intervals explains that."""),
    ("code", """h = History()
w = h.invoke(0, "write", "x", 1, 0.0); h.ok(w, 1.0)
r = h.invoke(1, "read", "x", None, 2.0); h.ok(r, 3.0, None)
print(check_linearizable(h))"""),
    ("md", """If the write had timed out instead (`info`: it *may* have happened), both outcomes of the
read would be legal — the checker treats indeterminate operations as optional."""),
    ("code", """h = History()
w = h.invoke(0, "write", "x", 1, 0.0); h.info(w, 1.0)
r = h.invoke(1, "read", "x", None, 2.0); h.ok(r, 3.0, None)
print(check_linearizable(h).valid)"""),
    *_lesson("cap_partition", """## 1. CAP: a CP store and an AP store through the same partition

Raft (CP) and a last-writer-wins leaderless store (AP), five replicas each, clients on both
sides of a 2 | 3 split.""", """Raft's minority side gets *nothing* while the partition lasts
— and its history is linearizable. The AP store answers everyone, and pays in stale reads
and in acknowledged writes that LWW silently discarded (its clocks are skewed by 50 ms)."""),
    *_lesson("pacelc", """## 2. PACELC: no partition, still a tradeoff

Quorum stores with N replicas, R read and W write acknowledgements.""", """R + W > N makes every
read quorum intersect every write quorum — no stale reads — but each operation waits for more
replicas: the *else* branch of PACELC."""),
    *_lesson("cap_frontier", """## 2b. The CAP/PACELC frontier: an explorer

Raft and five N-R-W last-writer-wins settings on five replicas, the same workload, the same 2 | 3
partition and the same seed (common random numbers: every configuration sees the same arrivals and
faults). Left: what each gives up *during* the partition (availability on the minority side against
stale reads and lost writes); right: what each costs *else*, with no partition (latency against
stale reads). With the controls below you can change the partition length, the clock skew and the
set of configurations.""", """Serving reads *and* writes on the minority needs R + W ≤ N (a side with
s replicas serves reads iff R ≤ s and writes iff W ≤ s), and those reads go stale; Raft and 5-3-3 refuse
the minority and lose nothing; 5-1-5 and 5-5-1 keep half a service (reads only, writes only). With no
partition R = W = 1 is fastest and stalest. Raise the clock skew and even R + W > N loses writes: LWW
orders by timestamps, not by quorums."""),
    *_lesson("staleness", """## 3. How stale? t-visibility

With partial quorums, how likely is a read to see the latest committed write, as a function
of how long after the commit it starts (Bailis et al., *Probabilistically Bounded
Staleness*)?""", """Staleness is short-lived: within a few propagation delays partial quorums
are almost always fresh — "eventually" is usually milliseconds."""),
    *_lesson("clock_skew_lww", """## 4. Last-writer-wins and clock skew

LWW orders writes by the coordinator's physical clock. What happens as clocks drift apart?""",
             """Once the skew approaches the time between writes to a key, LWW silently drops
acknowledged writes. Version vectors (siblings) lose none; hybrid logical clocks almost none."""),
    *_lesson("raft_election", """## 5. Consensus needs randomness: Raft elections

Figure 16 of the Raft paper: five servers, the leader crashes right after a synchronized
heartbeat, two survivors have stale logs. How long until a new leader is recognised?""", """With
(almost) no randomness in the election timeout the survivors time out together and split the
vote round after round; a few ms of randomness — more than a RequestVote takes to arrive — lets
one node usually time out first and win. Shorter timeouts cut downtime until the broadcast time
stops being small beside them."""),
    *_lesson("crdt_convergence", """## 6. CRDTs: available *and* convergent

A PN-counter replicated on four nodes, partitioned 2 | 2, incremented on both sides.""",
             """Both sides keep accepting increments; after the heal, merging states converges every
replica to the same value, with no acknowledged increment lost — strong eventual consistency,
for data types whose operations commute."""),
    ("md", """## 7. The consistency ladder

Under a partition every consistency model is *totally available*, *sticky available* (only to
clients that stay with their replica) or *unavailable* (Bailis et al., *Highly Available
Transactions*, VLDB 2014). One comment thread — post, then reply to what you read — on four
rungs, with the same seeds and faults."""),
    ("code", """from experiments import consistency_ladder as ladder
lp = ladder.QUICK if QUICK else ladder.Params()
lres = ladder.run(lp, seed=1)
lres["summary"][["rung", "availability_class", "availability_sticky", "availability_fail_over",
                 "latency_p50_ms", "stale_reads", "reply_before_post", "causal_violations", "lost_writes"]]"""),
    ("code", """ladder.plot(lres, lp)
plt.show()
explore(ladder)   # change any parameter and rerun (controls need Jupyter with ipywidgets)"""),
    ("md", """Read it top to bottom: Raft refuses the minority side and shows no anomaly; causal+ serves
every client that stays with its replica and never shows a reply before its post, but a client
that fails over must wait for what it has already seen; session guarantees protect only your
own view; plain eventual consistency is always there and shows effects before their causes.
The causal checker names the chain behind each violation:"""),
    ("code", """from simulator.history.causal import check_causal
print(check_causal(lres["history_eventual"]).explain(1))"""),
    ("md", """## 8. Clocks and short-lived tokens

Services check a token's `nbf` and `exp` against their *own* clocks. How often does clock skew
make them reject a valid token, or accept an expired one, and what does a leeway buy?"""),
    ("code", """from experiments import token_expiry_skew as tok
tp = tok.QUICK if QUICK else tok.Params()
tok.plot(tok.run(tp, seed=1), tp)
plt.show()
explore(tok)   # change any parameter and rerun (controls need Jupyter with ipywidgets)"""),
]


CAP += NB03_EXERCISES


NB04 = [
    ("md", """# 04 · Messaging: queues, logs and delivery semantics

Half of distributed systems is asynchronous: a producer hands a message to a broker and moves on;
a consumer picks it up later. This buys availability and smooths load — and costs ordering,
duplicates, lost messages and stale state unless you pay attention. Every broker, producer and
consumer below is a node of the simulator, so crashes, pauses and partitions hit them like any
other node. Each section runs one experiment (the function `splitbrain run NAME` calls); the arms
of a comparison share their random streams, so the difference you see is the design."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.history.delivery import DeliveryLog, check_delivery
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()"""),
    ("md", """## What the delivery checker counts

Like Jepsen's queue checkers: every *acknowledged* send must take effect. Processed 0 times it is
**lost**, more than once **duplicated**. A send that was never acknowledged (it timed out) may or
may not have been stored, so processing it is allowed."""),
    ("code", """log = DeliveryLog()
for msg, acked, processed in [(1, True, 1), (2, True, 0), (3, True, 2), (4, False, 1)]:
    log.send(msg, "k", 0.0)
    if acked:
        log.ack(msg, "k", 0.1)
    for i in range(processed):
        log.process(msg, "k", 1.0 + i)
r = check_delivery(log)
{k: r[k] for k in ("acked", "lost", "duplicated", "unacked_processed")}"""),
    *_lesson("queue_vs_http", """## 1. A queue or an HTTP call?

An order service calls payment, which calls inventory — synchronously over RPC, or handing each
step to the next over a queue. The inventory service goes down for a while.""", """Over RPC every
order placed during the outage fails: a synchronous caller's availability is the product of its
dependencies'. Over the queue users notice nothing — the broker stores the order in milliseconds —
while the inventory queue's backlog grows at the arrival rate (rate × outage) and drains in
backlog / (μ − rate) at the consumers' capacity μ (the dashed line). The price is the bottom
panel: an order the user was told is placed shows up in inventory up to the outage length later
(eventual consistency), and the few messages the crashed consumer held wait out their visibility
timeout on top."""),
    *_lesson("visibility_timeout", """## 2. The visibility timeout

A received message is hidden for the visibility timeout V; if the consumer has not deleted it by
then, it becomes visible again and someone else handles it too. Handling times here have a
log-normal tail.""", """Each delivery is redelivered with probability P(handling > V) — the
theory column — and every redelivery is a duplicate and wasted work. Well below the tail, work
multiplies; at about 6× the mean (AWS's advice for Lambda consumers) the duplicates are gone. A
long V has its own price: messages held by a crashed consumer stay invisible for V."""),
    *_lesson("poison_messages", """## 3. Poison messages and dead-letter queues

One message's handler always fails. Standard and FIFO queues, with and without a redrive policy to
a dead-letter queue (DLQ).""", """Without a DLQ the poison message never leaves: received every
visibility timeout forever (a storm of receives if the consumer requeues it at once), and the
"age of the oldest message" alarm climbs without end. In a FIFO queue it also blocks its whole
message group — head-of-line blocking — so that group's share of the traffic stops for good. With
a redrive policy it is received exactly `maxReceiveCount` times, then parked in the DLQ; the FIFO
group waits `maxReceiveCount × V` seconds and drains."""),
    *_lesson("delivery_semantics", """## 4. At-most-once, at-least-once, effectively-once

A Kafka-like consumer group through member crashes, a long pause (the member is evicted and wakes
up as a zombie) and a broker failover. When does the consumer commit its offset?""", """Commit
*before* processing and a crashed member's batch is never processed (lost); commit *after* and the
batch it processed but did not commit is processed again (duplicated). Exactly-once *effects* come
from the consumer: an idempotent inbox that remembers processed ids, or the offset written in the
same transaction as the results, so a zombie's write is refused."""),
    *_lesson("kafka_acks", """## 5. Producer acks and leader failover

The leader of a partition is cut off from its followers, then crashes; a follower that never got
its last writes becomes leader.""", """`acks=1` acknowledges a write once the leader has it, so
everything the cut-off leader accepted is acknowledged and then lost when it is truncated away.
`acks=all` with `min.insync.replicas=2` acknowledges only what every in-sync replica holds: nothing
acknowledged is lost, paid for with a replication round trip per write and a stall while the
in-sync set cannot make progress."""),
    *_lesson("consumer_rebalance", """## 6. Rebalance storms

Consumer-group members freeze now and then (stop-the-world GC pauses) for longer than their
session timeout.""", """Each such pause is two rebalances — eviction, then rejoin — and with range
assignment most partitions change owner each time: every batch processed but not yet committed is
processed again by its next owner. Duplicates eat the spare capacity and lag grows. Either cure
removes every rebalance after the first and every duplicate: a session timeout longer than the
pauses (the paused member's partitions simply wait for it), or shorter pauses."""),
]


NB05 = [
    ("md", """# 05 · Transactions across services

Each service owns its data, so "place an order" touches several databases that cannot share one
ACID transaction. This notebook measures the patterns used instead — two-phase commit, sagas
(orchestrated and choreographed), idempotency keys, the transactional outbox, event sourcing and
CQRS — on the same simulated shop (order, inventory, payment, shipping), under the same crashes
and outages, with the business invariants checked on every run: money conserved, stock never
negative, every order consistent at the end, nobody charged twice. Each section runs one
experiment (the function `splitbrain run NAME` calls); arms share their random streams."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()"""),
    *_lesson("saga_vs_2pc", """## 1. Two-phase commit or a saga?

The same orders through 2PC (a coordinator with a durable log, presumed abort) and an orchestrated
saga, with the coordinator crashing, a participant out, a partition and a slow participant.""",
             """2PC is consistent at every instant but blocks: a participant that voted yes cannot decide
alone, so it stays in doubt with its locks held through the coordinator's crash, and availability
is the product of every participant's. The saga stays available and pays with seconds during which
an order is half done (charged but not yet shipped, or compensated later) — and no invariant is
broken once it drains."""),
    *_lesson("saga_orchestration_vs_choreography", """## 2. Orchestrate or choreograph the saga?

An orchestrator calling each step, or services reacting to each other's events on a broker
(compensation by events: PaymentFailed → InventoryReleased → OrderCancelled). Payment is down for a
while mid-saga.""", """Both ride out the outage with no invariant broken. Choreography needs no
coordinator, but every step is an event through the broker: several times the network messages and
a longer chain of hops per order. And nobody holds an order's progress — to tell where one order
is you must look at the order service, each participant's store and the broker's queues, where the
orchestrator's saga log is one place."""),
    *_lesson("idempotency_keys", """## 3. Idempotency keys

A client retries `create_order` when the reply is lost (probability q per attempt).""",
             """Without keys a request is executed 1 + q + q² + … (up to the retry limit) times: double
charges. With a key the service stores the first response and returns it to every retry: exactly
once. But a key whose TTL is shorter than the client's retry horizon is forgotten while the client
still retries — double charges come back."""),
    *_lesson("outbox_vs_dual_write", """## 4. The transactional outbox

The order service must publish an event for every order it commits, and crashes now and then.""",
             """Two writes to two systems are not atomic: commit-then-publish loses events, publish-then-commit
invents them. The outbox commits the event with the order in one local transaction and a relay
publishes it at least once — so the consumer must deduplicate."""),
    *_lesson("event_sourcing_replay", """## 5. Event sourcing: replay after a crash

An event-sourced service keeps the events, not the state; after a crash it rebuilds its state by
replaying them, from each aggregate's last snapshot.""", """Recovery time is linear in the events
since the last snapshot: without snapshots the downtime grows with the whole history; with a
snapshot every k events it stays flat, at about (k − 1)/2 events per aggregate."""),
    *_lesson("cqrs_read_lag", """## 6. CQRS: how stale is the read model?

Commands append events; a projector applies them to a denormalized read model at capacity μ.
Customers read their own orders right after placing them.""", """The read model is a queue behind
the write model: its lag follows M/M/1's 1/(μ − λ) and explodes near capacity. A customer reading
right after ordering almost never sees the order (a read-your-writes violation, counted by the
session checker); waiting t helps only as exp(−(μ − λ)t). Show the customer what they just wrote
from the write side, or wait for the projection's version — and after the load stops the read
model converges."""),
]


NB06 = [
    ("md", """# 06 · Observability: traces, logs, SLOs and "explain this request"

In production you see a distributed system through what it records: traces (one span per RPC,
linked by a trace id), structured logs carrying that id, RED dashboards per service, and SLO
alerts on the error budget. A simulator records the whole causal story of every request, so we
can ask which of these views actually points at a failure's cause. Each section runs one
experiment (the function `splitbrain run NAME` calls); the last one tells one request's story."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()"""),
    *_lesson("retry_amplification", """## 1. Retries at every layer, measured with traces

A four-layer chain whose bottom service is down for a while; every layer retries 3 times, or only
the top one, or the top one under a retry budget. Every RPC attempt is a span, so the calls that
reach the bottom per user request are counted in each request's trace.""",
             """Retries compose multiplicatively: a^L calls reach the failed service per user request
(3^4 = 81). Retry at one layer, and a retry budget keeps even that near 1x once the outage shows."""),
    *_lesson("slo_burn_alerts", """## 2. SLO burn-rate alerts

A fast-burn outage, a slow-burn partial degradation and a short harmless spike, against
single-window threshold alerts and the SRE Workbook's multiwindow, multi-burn-rate alerts.""",
             """A single window must choose between paging late and paging on noise. Pairing a long window
(is the budget really burning?) with a short one (is it still burning?) pages fast on the outage,
still catches the slow burn, resets soon after recovery and stays quiet for the spike."""),
    *_lesson("debugging_with_traces", """## 3. Debugging a cascading failure with traces

Five services, api -> orders -> {inventory -> db, pricing}. The db turns slow; inventory's calls to
it time out, and the failure climbs the graph. What do the per-service RED dashboards show, and
what do the traces show?""",
             """The dashboards show the blast radius, not the cause: api, orders, inventory and db all
error and are slow at once — the api, at the top, looks worst. In every failed trace the span with
the largest self time is the call to the db. And the logs: finding one failed request's lines by
timestamp means reading every service's lines from a dozen interleaved requests; its trace id
selects exactly its own."""),
    ("md", """## 4. Explain one request

`splitbrain explain RUN --worst 3` reads a run folder; the same functions work on the frames a
run returns. Here: the slowest request of the debugging run above, in words and as a waterfall
(network, queueing and service time per span; the fault active on its path shaded)."""),
    ("code", """from simulator.observe.explain import pick_traces, story, waterfall

worst = pick_traces(res["spans"], res["requests"], worst=3)
print(story(res["spans"], worst[0], res["faults"]))
waterfall(res["spans"], worst[0], res["faults"])
plt.show()"""),
    ("md", """The story walks the trace from the client down: every hop adds a little network and
service time, and the time sits in the db's span (queueing behind its slow workers, then cut off by
inventory's timeout) while the db's slowdown is shown as the fault active on that path."""),
    ("code", """import logging, tempfile
from pathlib import Path
from simulator.observe import logs

path = Path(tempfile.mkdtemp()) / "logs.jsonl"
h = logs.attach_json_log(path)
logs.emit_span_logs(res["spans"], seed=1)
logs.detach(h)
lines = logs.read_json_log(path)
tid = logs.trace_hex(1, worst[0])
lines[lines["trace_id"] == tid]"""),
]


NB07 = [
    ("md", """# 07 · Architecture: anti-patterns, caching, coordination, queues and deploys

The lessons a distributed-systems architect teaches after the patterns: how a microservice
design can be worse than the monolith it replaced (synchronous chains, chatty calls, a shared
database), how caches keep users served through an outage (and how they stampede the origin),
how nodes decide that another node is dead and how a lock stays safe when they are wrong, which
queue discipline survives a retry storm, and what a rolling deploy does to users. Each section
runs one experiment — the same function `splitbrain run NAME` calls — on its quick parameters
in CI; arms share their random streams, so their difference is the design, not the noise."""),
    ("code", """import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()"""),
    *_lesson("distributed_monolith", """## 1. The distributed monolith

The same k steps as a synchronous chain of services, or as asynchronous hand-offs through a
queue, with every service crashing and recovering independently.""",
             """Availabilities multiply along a synchronous chain (a^k) and latencies add up; with
asynchronous hand-offs the user-facing path depends on one service, and the others' outages
become delay instead of errors — the user is told "done" before the work is."""),
    *_lesson("chatty_services", """## 2. Chatty services

One user operation needing N sequential calls over the WAN, vs one composed call to a
backend-for-frontend, vs a cache in front of it.""",
             """The chatty operation costs N round trips, mean and tail; a composed call pays one
WAN round trip plus the slowest of N cheap LAN calls. A cache mostly spares the backends."""),
    *_lesson("shared_database", """## 3. The shared database

Two services on one database connection pool; one of them spikes.""",
             """With a shared pool the quiet service's queries wait behind the spike and time out,
although nothing changed for it. A database each, or a per-service cap on the pool, confines the
overload to the service that caused it."""),
    *_lesson("graceful_degradation", """## 4. Graceful degradation through a dependency outage

Caching policies in front of an origin that hangs for a while: plain TTL, stale-while-revalidate,
stale-if-error, default responses.""",
             """Stale-if-error keeps serving every key that was cached, buying availability with
staleness bounded by ttl + stale-if-error; a default answers the cold keys. "Available" then means
"degraded" — a product decision."""),
    *_lesson("cache_stampede", """## 5. The cache stampede

Hot keys expiring together; with and without jittered TTLs, request coalescing (single flight)
and probabilistic early expiration.""",
             """Each expiry of a key read at rate λ costs 1 + λL origin calls without coalescing,
and the burst makes L grow. Jitter desynchronises the keys; coalescing makes it one call per key
per expiry."""),
    *_lesson("failure_detectors", """## 6. Failure detectors

A fixed heartbeat timeout and the phi-accrual detector, over a range of thresholds, under
latency jitter, loss and GC-like pauses. (SWIM — direct and indirect probes with suspicion — is
`models.coordination.swim`; its tests show indirect probes saving a member that one prober
cannot reach.)""",
             """Every detector trades detection time for false positives; the knob that matters is
how long a silence you tolerate."""),
    *_lesson("fencing_tokens", """## 7. Leases and fencing tokens

A client pauses past its lease, another takes the lock, the first wakes and writes.""",
             """A lease alone is not mutual exclusion: fencing tokens make the storage refuse the
stale holder's write. Leases also assume bounded clock drift: keep a margin of |drift| x TTL."""),
    *_lesson("queue_discipline", """## 8. Queue disciplines and the retry storm

The metastable retry storm under FIFO, adaptive LIFO, CoDel and deadline dropping.""",
             """Under FIFO the storm outlives the spike; adaptive LIFO serves the clients still
waiting, CoDel and deadline dropping shed the stale head — each recovers, at its own cost in tail
latency."""),
    *_lesson("rolling_deploy", """## 9. Rolling deploys

A service rolled from v1 to v2 one instance at a time behind a load balancer, with clients of
both versions: an additive change, a breaking one (a renamed field), and a deploy without a
readiness check.""",
             """Both versions serve at once during a rollout. An additive change costs nothing; a
breaking one fails every mismatched (client, instance) pair — (1 − c) f + c (1 − f) of the
requests with a fraction f of instances on v2 and c of v2 clients — so errors climb with the
rollout's progress. Without a readiness check, each new instance takes its share of traffic while
cold, and those requests time out or crawl; expand-and-contract (add the new field, migrate the
clients, then remove the old one) makes every step of the rollout compatible."""),
]


def build(path: Path, cells: list[tuple[str, str]]) -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = []
    for kind, src, *meta in cells:
        cell = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        if meta:
            cell.metadata.update(meta[0])
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding changes nothing that did not change
    nbf.write(nb, path)


RESILIENCE += ex02.EXERCISES
NB04 += ex04.EXERCISES
NB05 += ex05.EXERCISES
NB06 += ex06.EXERCISES
NB07 += ex07.EXERCISES



def framed(key: str, cells: list) -> list:
    """The notebook with its promise appended to the title cell and its summary and pointers last."""
    kind, src, *meta = cells[0]
    return [(kind, src + "\n\n" + OPENING[key], *meta), *cells[1:], ("md", CLOSING[key])]


KERNEL_TOUR, RESILIENCE, CAP = framed("01", KERNEL_TOUR), framed("02", RESILIENCE), framed("03", CAP)
NB04, NB05, NB06, NB07 = framed("04", NB04), framed("05", NB05), framed("06", NB06), framed("07", NB07)

NOTEBOOKS = {"00_start_here.ipynb": NB00, "01_kernel_tour.ipynb": KERNEL_TOUR, "02_resilience.ipynb": RESILIENCE,
             "03_cap_tradeoffs.ipynb": CAP, "04_messaging.ipynb": NB04,
             "05_transactions.ipynb": NB05, "06_observability.ipynb": NB06,
             "07_architecture.ipynb": NB07}

if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "notebooks", help="folder to write into (default notebooks/)")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        build(out / name, cells)
        print("wrote", out / name)
