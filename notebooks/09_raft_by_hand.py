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
# # 09 · Raft, by hand: election, replication, a linearizable store
#
# Notebook 03 watched the project's Raft elect leaders. Here you write the election yourself, on
# the workbench's node API, and the lab checks it the way Jepsen would — partitions and crashes,
# then Figure 2's **Election Safety** (at most one leader per term) — and measures its downtime
# against the project's own Raft (`models.replication.consensus.RaftCluster`, the same timers).
#
# The rules are Figure 2 of Ongaro & Ousterhout's Raft paper (USENIX ATC 2014), elections only:
# a follower whose election timeout (uniform on 150–300 ms, redrawn each time) passes without a
# heartbeat from the leader, or without granting a vote, becomes a candidate: it increments its
# term, votes for itself and asks every server with `request_vote`; a majority of votes makes it
# leader, and a leader sends `append_entries` heartbeats every 50 ms. Any message with a higher
# term makes a server a follower of that term. A server grants at most one vote per term, and
# keeps its term and vote in `self.durable` (Figure 2: persisted before answering).
#
# Then log replication and a lin-kv service on top (exercise 4), checked by the workbench's
# linearizability checker and Figure 3's Log Matching and State Machine Safety.
#
# **By the end you will be able to reason about:** why a term and a single vote per term make two
# leaders impossible; why randomized timeouts end split votes; and how long a cluster is without a
# leader after a crash, from the timeout range alone. (About 30 minutes.)

# %%
import matplotlib.pyplot as plt
import numpy as np
from simulator.runner import quick_mode
from simulator.runner.raft_lab import check_election, election_downtime, run_election_lab
from simulator.runner.teach import agrees, check_choice, check_number
from simulator.workbench import Node
from simulator.workbench.harness import TestOptions
from models.workbench import raft_lab, reference
QUICK = quick_mode()
TRIALS = 20 if QUICK else 100

# %% [markdown]
# ### Exercise 1 · Elect a leader
#
# The starter never campaigns: there is never a leader. Write the election (log `self.log(f"leader
# {term}")` when you win: the checker reads it). The complete reference is
# `models/workbench/raft_lab.py`.
#
# <details><summary>Hint 1</summary>Keep a timer generation: <code>self.epoch += 1; e = self.epoch; self.after(delay, lambda: self.timeout(e))</code>, and ignore a timeout whose <code>e</code> is old — that is how a timer is reset.</details>
# <details><summary>Hint 2</summary>Ask for votes with <code>self.rpc(peer, body, timeout=0.15, callback=fn)</code>; count the granted ones for the term you campaigned in.</details>
# <details><summary>Hint 3</summary>Grant a vote only if the request's term equals yours and <code>self.durable["voted_for"]</code> is None or the candidate; store it before replying.</details>

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "from models.workbench.raft_lab import RaftElection as MyRaft", "wrong": "MyRaft = raft_lab.RaftElectionStarter", "rerun": true}
class MyRaft(Node):
    def on_request_vote(self, msg):
        self.reply(msg, {"type": "request_vote_ok", "term": 0, "vote_granted": False})   # the starter

# %% tags=["run"]
test1 = run_election_lab(MyRaft, seed=1)

# %% tags=["check", "raises-exception"]
check_election(test1)

# %% [markdown]
# ### Exercise 2 · Two votes in one term
#
# A server that forgets `votedFor` (or keeps it in volatile memory, so a crash forgets it) may vote
# for two candidates of the same term. What does the checker find? Choose: `"a"` two leaders in
# one term, `"b"` no leader ever, `"c"` nothing: elections still work.

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "prediction = 'a'", "wrong": "prediction = 'c'", "rerun": false}
prediction = None   # <- "a", "b" or "c"

# %% tags=["run"]
from simulator.runner.raft_lab import election_safety
from simulator.runner.workbench_cmd import build
unsafe = []
for seed in range(10):
    o = TestOptions(workload="lin-kv", node=raft_lab.RaftElectionDoubleVote, time_limit=10, rate=5, latency_ms=10,
                    nemesis=("partition", "kill"), nemesis_interval=2, seed=seed, trace=False)
    r = election_safety(build(o).run())
    unsafe += [seed] if r["violations"] else []
print(f"two leaders in one term on {len(unsafe)} of 10 seeds: {unsafe}")

# %% tags=["check"]
check_choice(prediction, "a" if unsafe else "c", choices=("a", "b", "c"),
             why="Two candidates of one term can each collect a majority when voters vote for both; a single "
                 "durable vote per term makes any two majorities share a voter who voted once.")

# %% [markdown]
# ### Exercise 3 · How long without a leader?
#
# The leader crashes. Each of the other four followers last heard a heartbeat up to 50 ms ago and
# waits out its own timeout, uniform on [150, 300] ms; the first to fire wins (one round trip of
# votes, ~20 ms here). **Predict the mean downtime in ms.** (The mean of the smallest of k uniforms
# on [L, H] is L + (H − L)/(k + 1).)

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 175", "wrong": "prediction = 300", "rerun": false}
prediction = None   # <- your answer: mean ms from the leader's crash to a new leader

# %% tags=["run"]
L, H, k, hb, rtt = 150, 300, 4, 50, 2 * 10
closed = L + (H - L) / (k + 1) - hb / 2 + rtt
rows = {}
for name, node in (("your Raft (lab)", raft_lab.RaftElection), ("project's Raft", reference("lin-kv", "raft"))):
    d = [1000 * election_downtime(TestOptions(workload="lin-kv", node=node, time_limit=6, rate=5, latency_ms=10,
                                              seed=s, trace=False)) for s in range(TRIALS)]
    rows[name] = d
    print(f"{name:<17} mean {np.mean(d):.0f} ms, median {np.median(d):.0f} ms, max {max(d):.0f} ms")
print(f"closed form: {L} + {H - L}/{k + 1} - {hb}/2 + {rtt} = {closed:.0f} ms")
agrees(np.mean(rows["your Raft (lab)"]), closed, tol=0.2 * closed, what="the lab's mean downtime")
fig, ax = plt.subplots(figsize=(7, 3))
ax.hist(list(rows.values()), bins=15, label=list(rows))
ax.axvline(closed, color="k", ls="--", label="closed form (mean)")
ax.set_xlabel("ms without a leader after the leader crashes")
ax.set_ylabel("trials")
ax.legend(fontsize=8)
ax.set_title("Election downtime: the lab's Raft and the project's, same timers")
plt.show()

# %% tags=["check"]
check_number(prediction, float(np.mean(rows["your Raft (lab)"])), tol=30, unit="ms",
             why="The first of four timeouts fires on average a fifth of the way through the 150 ms range; the "
                 "heartbeat already elapsed and one vote round trip shift it.")

# %% [markdown]
# ### Exercise 4 · Replicate a log, and serve lin-kv on it
#
# Stages 2 and 3 in one: clients send Maelstrom's lin-kv `read`, `write` and `cas` to any server. The
# leader appends each as an entry `[term, op]` to its durable log and replicates it with
# `append_entries` (`prev_log_index`, `prev_log_term`, `entries`, `leader_commit`); a follower
# refuses entries that do not follow on from its log and drops a conflicting suffix (Figure 2,
# AppendEntries receiver, steps 1-5); the leader commits an index once a majority holds it **and it
# is of the leader's own term** (Figure 8), applies entries in order and answers the client then.
# Followers forward client requests to the leader they know. Votes go only to candidates whose log is
# at least as up to date (§5.4.1). The check: the workbench's linearizability checker over the
# clients' history, Log Matching and State Machine Safety across the servers' logs, and that a
# quarter of the operations at least were served (failed cas count as served, not as ok).
#
# <details><summary>Hint 1</summary>Start from your election node: subclass it, keep <code>next_index</code>/<code>match_index</code> per follower, and send entries with every heartbeat.</details>
# <details><summary>Hint 2</summary>Reads go through the log too: a leader that answers from its state machine may have been deposed already (§8).</details>
# <details><summary>Hint 3</summary>The reference is <code>RaftKV</code> in models/workbench/raft_lab.py (about 150 lines).</details>

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "from models.workbench.raft_lab import RaftKV as MyRaftKV", "wrong": "MyRaftKV = raft_lab.RaftKVLocalReads", "rerun": true}
MyRaftKV = MyRaft        # your election node serves nothing yet: replace with your replicated node

# %% tags=["run"]
from simulator.runner.raft_lab import check_raft_kv, run_kv_lab
test4 = run_kv_lab(MyRaftKV, seed=1)

# %% tags=["check", "raises-exception"]
check_raft_kv(test4)

# %% [markdown]
# ## What to try next
#
# - Widen the timeout range to [150, 151] ms (edit `raft_lab.ELECTION_S`): split votes appear and the
#   downtime grows — the reason Raft randomizes (paper §9.3, Figure 16).
# - Hunt your node: `splitbrain hunt -w lin-kv --node mynode.py:MyRaft --nemesis partition,kill --latency 10`.
# - Break the Figure 8 rule (commit an earlier term's entry by counting replicas) and hunt for the
#   schedule that loses a committed write: it is rare — the project's `splitbrain hunt raft
#   --variant figure8 --property raft_safety` needed about a thousand seeds.
