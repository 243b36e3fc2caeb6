# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · A tour of the splitbrain kernel
#
# A distributed system is a set of **nodes** that talk over a **network**. Both fail: messages
# are delayed, lost, duplicated, reordered; nodes crash, pause, or run slow; clocks drift; the
# network splits. This notebook builds a tiny world and breaks it on purpose, one fault at a
# time, measuring what a client sees.
#
# Everything is deterministic: the same seed gives bit-identical results, because every random
# draw comes from a *named* stream derived from one root seed.
#
# **By the end you will be able to reason about:** why a timeout is an *indefinite* outcome; how
# independent loss compounds over a request and its reply and how retries cancel it; why retries cannot
# beat a partition; how far an unsynchronised clock drifts; why availability depends on the side of a
# partition you are on; and why one slow request in a hundred owns the tail. (About 25 minutes.)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from simulator import (Simulation, Constant, LogNormal, Exponential, Mixture,
                       latency_percentiles)
from simulator import plots
from simulator.runner import quick_mode

QUICK = quick_mode()          # CI runs this notebook with SPLITBRAIN_QUICK=1
DURATION = 6.0 if QUICK else 30.0

# %% [markdown]
# ## 1. Nodes and a lossy network
#
# A server is a node with a pool of workers and a service-time distribution. A client sends
# requests (RPCs) with a timeout. Outcomes are distinct: `ok`, `timeout` (indefinite: the work
# *may* have happened), `error`, `rejected`, `unreachable`, `crashed` (definite failures).

# %%
sim = Simulation(seed=7, trace=True)
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
pd.Series([o for _, o, _ in results]).value_counts()

# %% [markdown]
# With 5% loss on each direction, a request fails if either the request or the reply is
# lost: P(timeout) = 1 − 0.95² ≈ 9.75%. The counts above should be close to that.

# %%
lost = sum(1 for _, o, _ in results if o == "timeout") / len(results)
print(f"timeouts: {lost:.3f}   theory: {1 - 0.95**2:.4f}")

# %% [markdown]
# ## 2. A space-time diagram
#
# With `trace=True` the kernel records every send, delivery and drop. Time flows left to
# right; each horizontal line is a node; each arrow is a message; a red × marks a message the
# network dropped.

# %%
fig = plots.space_time(sim.trace.frame(), nodes=["client", "server"], t1=0.12,
                      title="Requests and replies; a red x is a message the network lost")
plt.show()

# %% [markdown]
# ## 3. Clocks drift
#
# Each node sees only its own physical clock. A clock with a 100 ppm drift gains 0.1 ms every
# second; an NTP-like sync every second resets it to true time ± the sync error.

# %%
sim = Simulation(seed=1)
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
print("bound after sync:", synced.clock.error_bound_after_sync * 1e3, "ms")

# %% [markdown]
# ## 4. A partition, measured
#
# Three servers, two clients, one on each side of a split. The `kernel_demo` experiment does
# exactly this; it is the same function the CLI (`splitbrain run kernel_demo`) and the tests
# call.

# %%
from experiments import kernel_demo
p = kernel_demo.QUICK if QUICK else kernel_demo.Params()
res = kernel_demo.run(p, seed=1)
res["summary"]

# %%
figs = kernel_demo.plot(res, p)
plt.show()

# %%
from simulator.runner.widgets import explore
explore(kernel_demo)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# The cut-off client keeps succeeding only when a (random) retry lands on the one server it
# can still reach: with 3 attempts and 1 of 3 servers reachable, P(success) = 1 − (2/3)³ ≈ 0.70.
# The majority side barely notices. Availability is not one number: it depends on **which side
# of the partition you are on**.

# %%
df = res["requests"]
part = df[(df.start > p.partition_at) & (df.start < p.heal_at - 0.3)]
minority = part[part.client == "client_a"]
print(f"minority availability during the partition: {(minority.outcome == 'ok').mean():.3f}"
      f"   theory ≈ {1 - (2/3)**3:.3f}")

# %% [markdown]
# ## 5. Latency tails
#
# A mixture distribution models a service that is usually fast and occasionally very slow.
# The complementary CDF — the fraction of requests slower than x, on log axes — shows the
# median barely moves while everything beyond the 99th percentile is 50× slower.

# %%
sim = Simulation(seed=3)
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
latency_percentiles(df, by="target")

# %% [markdown]
# ## Exercises: predict, then run
#
# Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
# cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
# then compares your prediction with the measurement and, where one exists, the closed form, and
# explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
# wrong is the point: the explanation is where the lesson is.

# %% [markdown]
# ### Exercise 1 · Loss and retries
#
# Each message (request or reply) is lost with probability 10%,
# independently. The client times out and retries, **3 attempts** in all. **What fraction of requests
# still fail?**

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 0.0069", "wrong": "prediction = 0.001", "rerun": false}
prediction = None   # <- your answer: fraction of requests that fail after 3 attempts

# %% tags=["run"]
from models.resilience.retry import RetryPolicy
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
agrees(measured, closed_form, 4 * se + 1e-3, "(1 - 0.9**2)**3")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.25 * closed_form, why=(
    f"One attempt fails if the request OR the reply is lost: 1 - 0.9**2 = {per_attempt:.2f} (not 0.10). Retries "
    f"are independent here, so all three fail with {per_attempt:.2f}**3 = {closed_form:.4f}. With 1% loss the "
    f"same formula gives {(1 - 0.99**2)**3:.1e}: retries make independent loss vanish — but not a partition "
    "(next exercise)."))

# %% [markdown]
# ### Exercise 2 · Retries against a partition
#
# Back to `kernel_demo`: during the split the minority
# client reaches only 1 of the 3 servers, and each attempt picks a server at random. With **5 attempts**
# instead of 3, **what fraction of the minority client's requests succeed during the partition?**

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "prediction = 0.868", "wrong": "prediction = 0.33", "rerun": false}
prediction = None   # <- your answer: minority availability during the partition, 5 attempts

# %% tags=["run"]
import dataclasses
p5 = dataclasses.replace(kernel_demo.QUICK if QUICK else kernel_demo.Params(), max_attempts=5)
df = kernel_demo.run(p5, seed=1)["requests"]
part = df[(df.start > p5.partition_at) & (df.start < p5.heal_at - 0.3) & (df.client == "client_a")]
measured = float((part.outcome == "ok").mean())
closed_form = 1 - (2 / 3) ** 5                     # fails only if all 5 picks land across the split
se = (closed_form * (1 - closed_form) / len(part)) ** 0.5
print(f"{len(part)} requests · measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se + 0.02, "1 - (2/3)**5")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.05, why=(
    f"Each attempt succeeds only if it picks s0 (1 in 3); all 5 miss with (2/3)**5 = {(2/3)**5:.3f}. Retries help "
    "a random load balancer, but they cannot make the partition go away: a client pinned to an unreachable "
    "server would see 0% whatever the retry count."))

# %% [markdown]
# ### Exercise 3 · How far does a clock drift?
#
# A node's clock runs fast by **100 ppm** (parts per
# million) and is never synchronised. **How many milliseconds ahead of true time is it after 10 s?**
# (Compare with the free-running curve above.)

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 1.0", "wrong": "prediction = 0.1", "rerun": false}
prediction = None   # <- your answer in ms

# %% tags=["run"]
sim = Simulation(seed=1)
free = sim.node("free-running", clock=dict(drift_ppm=100))
sim.run(until=10)
measured = free.clock.error() * 1e3
closed_form = 100e-6 * 10 * 1e3                    # drift (s per s) x elapsed (s), in ms
print(f"measured {measured:.4f} ms · closed form {closed_form:.4f} ms")
agrees(measured, closed_form, 1e-6, "drift x time")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.05, unit="ms", why=(
    "100 ppm = 100 µs gained per second; 10 s -> 1 ms. Small, but two such clocks drifting in opposite "
    "directions disagree by 2 ms after 10 s and by 17 s per day — longer than any lease or token expiry "
    "leeway you would choose (notebook 03)."))

# %% [markdown]
# ## Summary
#
# Loss, delay, crashes, drift and partitions are the raw failures everything else is built on. A
# timeout does not tell you whether the work happened; retries beat independent loss
# geometrically but not a partition; clocks drift without bound unless synchronised; and
# "availability" is a number per client, per side of a split.
#
# **Try next:** `splitbrain run kernel_demo --param loss=0.2 --param max_attempts=1` and compare the
# minority side's availability with 1 − (2/3)^k; then notebook [02_resilience](02_resilience.ipynb) for what to do about
# it. To write your own fault schedule, see `splitbrain run kernel_demo --faults SCHEDULE.json`.
