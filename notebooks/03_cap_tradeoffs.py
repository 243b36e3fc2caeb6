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
# # 03 · CAP and PACELC, measured
#
# **CAP**: when the network partitions (P), a replicated store must choose between
# availability (A: every replica answers) and consistency (C: linearizability — every
# operation appears to take effect at one instant between its call and its return).
# **PACELC** adds: *else* (E), with no partition, it still trades latency (L) against
# consistency (C).
#
# We check consistency the way Jepsen does: clients record a history of invocations and
# completions, and a checker searches for a legal order.
#
# **By the end you will be able to reason about:** what CP and AP stores each give up during a
# partition, on each side of it; PACELC's latency-consistency trade with no partition; quorum
# intersection (R + W > N) and probabilistically bounded staleness; how clock skew makes last-writer-wins
# lose acknowledged writes; why Raft elections need randomness; which rung of the consistency ladder stays
# available; and how to read a linearizability checker's verdict. (About 40 minutes.)

# %%
import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
from simulator.history import History
from simulator.history.linearizable import check_linearizable
QUICK = quick_mode()

# %% [markdown]
# ## What the checker sees
#
# A write of 1 completes at t = 1; a read that *starts* at t = 2 returns the old value. No
# order of the two operations within their intervals explains that.

# %%
h = History()
w = h.invoke(0, "write", "x", 1, 0.0); h.ok(w, 1.0)
r = h.invoke(1, "read", "x", None, 2.0); h.ok(r, 3.0, None)
print(check_linearizable(h))

# %% [markdown]
# If the write had timed out instead (`info`: it *may* have happened), both outcomes of the
# read would be legal — the checker treats indeterminate operations as optional.

# %%
h = History()
w = h.invoke(0, "write", "x", 1, 0.0); h.info(w, 1.0)
r = h.invoke(1, "read", "x", None, 2.0); h.ok(r, 3.0, None)
print(check_linearizable(h).valid)

# %% [markdown]
# ## 1. CAP: a CP store and an AP store through the same partition
#
# Raft (CP) and a last-writer-wins leaderless store (AP), five replicas each, clients on both
# sides of a 2 | 3 split.

# %%
from experiments import cap_partition
p = cap_partition.QUICK if QUICK else cap_partition.Params()
res = cap_partition.run(p, seed=1)
figs = cap_partition.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Raft's minority side gets *nothing* while the partition lasts
# — and its history is linearizable. The AP store answers everyone, and pays in stale reads
# and in acknowledged writes that LWW silently discarded (its clocks are skewed by 50 ms).

# %%
explore(cap_partition)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 2. PACELC: no partition, still a tradeoff
#
# Quorum stores with N replicas, R read and W write acknowledgements.

# %%
from experiments import pacelc
p = pacelc.QUICK if QUICK else pacelc.Params()
res = pacelc.run(p, seed=1)
figs = pacelc.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# R + W > N makes every
# read quorum intersect every write quorum — no stale reads — but each operation waits for more
# replicas: the *else* branch of PACELC.

# %%
explore(pacelc)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 2b. The CAP/PACELC frontier: an explorer
#
# Raft and five N-R-W last-writer-wins settings on five replicas, the same workload, the same 2 | 3
# partition and the same seed (common random numbers: every configuration sees the same arrivals and
# faults). Left: what each gives up *during* the partition (availability on the minority side against
# stale reads and lost writes); right: what each costs *else*, with no partition (latency against
# stale reads). With the controls below you can change the partition length, the clock skew and the
# set of configurations.

# %%
from experiments import cap_frontier
p = cap_frontier.QUICK if QUICK else cap_frontier.Params()
res = cap_frontier.run(p, seed=1)
figs = cap_frontier.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Serving reads *and* writes on the minority needs R + W ≤ N (a side with
# s replicas serves reads iff R ≤ s and writes iff W ≤ s), and those reads go stale; Raft and 5-3-3 refuse
# the minority and lose nothing; 5-1-5 and 5-5-1 keep half a service (reads only, writes only). With no
# partition R = W = 1 is fastest and stalest. Raise the clock skew and even R + W > N loses writes: LWW
# orders by timestamps, not by quorums.

# %%
explore(cap_frontier)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 3. How stale? t-visibility
#
# With partial quorums, how likely is a read to see the latest committed write, as a function
# of how long after the commit it starts (Bailis et al., *Probabilistically Bounded
# Staleness*)?

# %%
from experiments import staleness
p = staleness.QUICK if QUICK else staleness.Params()
res = staleness.run(p, seed=1)
figs = staleness.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Staleness is short-lived: within a few propagation delays partial quorums
# are almost always fresh — "eventually" is usually milliseconds.

# %%
explore(staleness)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 4. Last-writer-wins and clock skew
#
# LWW orders writes by the coordinator's physical clock. What happens as clocks drift apart?

# %%
from experiments import clock_skew_lww
p = clock_skew_lww.QUICK if QUICK else clock_skew_lww.Params()
res = clock_skew_lww.run(p, seed=1)
figs = clock_skew_lww.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Once the skew approaches the time between writes to a key, LWW silently drops
# acknowledged writes. Version vectors (siblings) lose none; hybrid logical clocks almost none.

# %%
explore(clock_skew_lww)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 5. Consensus needs randomness: Raft elections
#
# Figure 16 of the Raft paper: five servers, the leader crashes right after a synchronized
# heartbeat, two survivors have stale logs. How long until a new leader is recognised?

# %%
from experiments import raft_election
p = raft_election.QUICK if QUICK else raft_election.Params()
res = raft_election.run(p, seed=1)
figs = raft_election.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# With
# (almost) no randomness in the election timeout the survivors time out together and split the
# vote round after round; a few ms of randomness — more than a RequestVote takes to arrive — lets
# one node usually time out first and win. Shorter timeouts cut downtime until the broadcast time
# stops being small beside them.

# %%
explore(raft_election)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 6. CRDTs: available *and* convergent
#
# A PN-counter replicated on four nodes, partitioned 2 | 2, incremented on both sides.

# %%
from experiments import crdt_convergence
p = crdt_convergence.QUICK if QUICK else crdt_convergence.Params()
res = crdt_convergence.run(p, seed=1)
figs = crdt_convergence.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Both sides keep accepting increments; after the heal, merging states converges every
# replica to the same value, with no acknowledged increment lost — strong eventual consistency,
# for data types whose operations commute.

# %%
explore(crdt_convergence)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 7. The consistency ladder
#
# Under a partition every consistency model is *totally available*, *sticky available* (only to
# clients that stay with their replica) or *unavailable* (Bailis et al., *Highly Available
# Transactions*, VLDB 2014). One comment thread — post, then reply to what you read — on four
# rungs, with the same seeds and faults.

# %%
from experiments import consistency_ladder as ladder
lp = ladder.QUICK if QUICK else ladder.Params()
lres = ladder.run(lp, seed=1)
lres["summary"][["rung", "availability_class", "availability_sticky", "availability_fail_over",
                 "latency_p50_ms", "stale_reads", "reply_before_post", "causal_violations", "lost_writes"]]

# %%
ladder.plot(lres, lp)
plt.show()
explore(ladder)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# Read it top to bottom: Raft refuses the minority side and shows no anomaly; causal+ serves
# every client that stays with its replica and never shows a reply before its post, but a client
# that fails over must wait for what it has already seen; session guarantees protect only your
# own view; plain eventual consistency is always there and shows effects before their causes.
# The causal checker names the chain behind each violation:

# %%
from simulator.history.causal import check_causal
print(check_causal(lres["history_eventual"]).explain(1))

# %% [markdown]
# ## 8. Clocks and short-lived tokens
#
# Services check a token's `nbf` and `exp` against their *own* clocks. How often does clock skew
# make them reject a valid token, or accept an expired one, and what does a leeway buy?

# %%
from experiments import token_expiry_skew as tok
tp = tok.QUICK if QUICK else tok.Params()
tok.plot(tok.run(tp, seed=1), tp)
plt.show()
explore(tok)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## Exercises: predict, then run
#
# Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
# cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
# then compares your prediction with the measurement and, where one exists, the closed form, and
# explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
# wrong is the point: the explanation is where the lesson is.

# %% [markdown]
# ### Exercise 1 · How stale right after a write?
#
# N = 3 replicas, **R = W = 1**. The write commits as
# soon as one replica has it; a read sent at the same instant returns the first replica that answers.
# Assume the acknowledgement and read legs take no time (A, R, S negligible) while the write takes a
# while to reach the other two. **What fraction of reads right after the commit are stale?**

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 2 / 3", "wrong": "prediction = 0.5", "rerun": false}
prediction = None   # <- your answer: fraction of reads at t = 0 that miss the write

# %% tags=["run"]
from simulator import Simulation, Exponential
from simulator.runner.teach import agrees, check_number
from models.replication.pbs import wars_thresholds, wars_streams, p_consistent, miss_probability
trials = 20_000 if QUICK else 500_000
T = wars_thresholds({"W": Exponential(0.010), "A": 0.0, "R": 0.0, "S": 0.0}, 3, 1, 1, trials,
                    wars_streams(Simulation(seed=1)))
measured = 1 - float(p_consistent(T, [0.0])[0])
closed_form = miss_probability(3, 1, 1)            # C(N-W, R) / C(N, R) = C(2,1) / C(3,1)
se = (closed_form * (1 - closed_form) / trials) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "C(2,1)/C(3,1)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.03, why=(
    "At commit exactly W = 1 replica has the write; the read asks R = 1 replica, a random one of 3, so it misses "
    "with C(N-W, R)/C(N, R) = 2/3. The PBS figure above is far kinder because real A, R and S legs give the "
    "write time to spread before the read arrives."))

# %% [markdown]
# ### Exercise 2 · k-staleness
#
# Same store (N = 3, R = W = 1, each write and each read to random
# replicas). Two writes commit one after the other, then a read. **What is the probability the read
# returns one of the last two versions** (not the value from before both writes)?

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "prediction = 5 / 9", "wrong": "prediction = 2 / 3", "rerun": false}
prediction = None   # <- your answer: P(read returns one of the last 2 versions)

# %% tags=["run"]
from models.replication.pbs import des_k_staleness, k_staleness
trials = 2_000 if QUICK else 20_000
within = des_k_staleness(3, 1, 1, k=2, trials=trials, seed=1)   # on the simulator kernel
measured = float(within.mean())
closed_form = k_staleness(3, 1, 1, 2)              # 1 - (C(2,1)/C(3,1))**2
se = (closed_form * (1 - closed_form) / trials) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "1 - (2/3)**2")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.03, why=(
    "The read misses both writes only if it misses each (2/3 each, independently): 1 - (2/3)**2 = 5/9. Bailis "
    "et al. call this k-staleness: each older version multiplies the miss probability by C(N-W,R)/C(N,R) again."))

# %% [markdown]
# ### Exercise 3 · When is a partial quorum safe?
#
# Five replicas. Setting A: **N = 5, R = 2, W = 4**;
# setting B: **N = 5, R = 2, W = 3**. Under the same workload, **what fraction of setting A's reads are
# stale?** (Then look at B.)

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 0.0", "wrong": "prediction = 0.1", "rerun": false}
prediction = None   # <- your answer: stale-read rate of 5-2-4

# %% tags=["run"]
import dataclasses
from experiments import pacelc
pq = dataclasses.replace(pacelc.QUICK if QUICK else pacelc.Params(), settings=("5-2-4", "5-2-3"))
qs = pacelc.run(pq, seed=1)["summary"].set_index("setting")
measured = float(qs.loc["5-2-4", "stale_read_rate"])
closed_form = miss_probability(5, 2, 4)            # R + W > N: every read quorum meets every write quorum
print(qs[["stale_read_rate", "reads", "mean_latency_s"]])
print(f"measured {measured} · closed form {closed_form} · 5-2-3 at worst (read racing the write) "
      f"{miss_probability(5, 2, 3):.2f}")
agrees(measured, closed_form, 0.0, "R + W > N (no stale read, ever)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.005, why=(
    "With R + W = 6 > N = 5, any 2 replicas read overlap any 4 written, so a read always reaches a replica with "
    "the latest committed write: 0 stale reads, at every t. 5-2-3 (R + W = N) can miss with probability "
    "C(2,2)/C(5,2) = 0.1 for a read racing a write; it measures lower because most reads start after the write "
    "has reached every replica — PBS, not a guarantee."))

# %% [markdown]
# ### Exercise 4 · Who can serve the minority side?
#
# Five replicas split 2 | 3, with clients on both
# sides, as in the CAP/PACELC explorer above. Six configurations: `raft`, `5-1-1`, `5-2-2`, `5-3-3`, `5-1-5`
# and `5-5-1` (N-R-W, no sloppy quorum). **Which of them serve *both* reads and writes to the clients on
# the 2-replica side during the partition?**
#
# - (a) none: CAP says no store can be available on both sides of a partition
# - (b) `5-1-1` and `5-2-2`
# - (c) every configuration with R + W > N (`5-3-3`, `5-1-5`, `5-5-1`) and `raft`
# - (d) only `5-1-1`

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "prediction = \"b\"", "wrong": "prediction = \"a\"", "rerun": false}
prediction = None   # <- "a", "b", "c" or "d"

# %% tags=["run"]
from simulator.runner.teach import check_choice
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
measured = next(k for k, v in options.items() if sorted(v) == measured_set)

# %% tags=["check"]
check_choice(prediction, measured, choices=("a", "b", "c", "d"), why=(
    "A side with 2 replicas can gather R = 2 read replies and W = 2 write acks from its own owners, so any "
    "config with R <= 2 and W <= 2 stays fully available there — CAP's 'A' is possible, Gilbert and Lynch "
    "only prove it cannot come with linearizability. The price is in the table: R + W <= 4 < N means a "
    "minority read quorum need not meet the majority's write quorum, so those reads go stale. Raft and "
    "5-3-3 refuse the minority entirely; on both sides 5-1-5 keeps only reads (a write needs all 5) and "
    "5-5-1 only writes (a read needs all 5)."))

# %% [markdown]
# ## Summary
#
# A partition forces a choice per operation: refuse (CP, unavailable on the minority side) or answer
# and risk stale reads and lost writes (AP). With no partition the trade is latency against
# consistency (PACELC). Quorums intersect when R + W > N; partial quorums are usually fresh within
# milliseconds but promise nothing; last-writer-wins on skewed clocks silently drops acknowledged
# writes; consensus needs randomised timeouts; CRDTs converge without coordination for operations that
# commute.
#
# **Try next:** the CAP/PACELC explorer above with a longer partition or more skew;
# `splitbrain run consistency_ladder`; `splitbrain run cap_partition --quick --out /tmp/cp` then
# `splitbrain check linearizable /tmp/cp/histories/seed=1_history_ap.jsonl` (and `..._history_cp.jsonl`);
# then notebook [04_messaging](04_messaging.ipynb).
