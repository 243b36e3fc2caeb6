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
# # 08 · Build it yourself: the Gossip Glomers labs, graded by the workbench
#
# So far you watched protocols the project wrote. Now you write them. Each lab hands you a
# **starter node** — it runs, and fails — and a check that runs it the way Jepsen's Maelstrom would:
# Maelstrom's workload, clients and checker, a nemesis that partitions the network, all in
# simulated time on this laptop (a 20-second test takes a fraction of a second). When your node
# fails, the check shrinks the fault schedule to the *few faults that break it* and draws them.
#
# The labs follow Fly.io's [Gossip Glomers](https://fly.io/dist-sys/): echo, unique ids,
# broadcast (one node, many, under partitions, efficiently), a grow-only counter on a sequentially
# consistent store, a Kafka-style log, totally available transactions. The node API is in
# `docs/workbench.md`: a handler `on_<type>(self, msg)` per message type, `self.reply(msg, body)`,
# `self.send(dest, body)`, `yield self.rpc(dest, body, timeout)`, timers `self.after` / `self.every`,
# `self.durable` for what must survive a crash. Each lab's solution is in the worked version of this
# notebook (`docs/course/08_build_it_yourself.html`).
#
# **By the end you will be able to reason about:** why a reply must carry what was asked; why ids
# need no coordination and a central counter costs availability; why gossip must be retried under
# partitions and what a partition costs an AP design (convergence, not availability); how to trade
# messages for latency; why read-then-write loses increments and what cas fixes; why offsets must be
# allocated by one authority; and which transaction isolation levels survive a partition.
# (About 60 minutes.)

# %%
import matplotlib.pyplot as plt
import numpy as np
from simulator.runner import quick_mode
from simulator.runner.labs import availability_on, check_lab, run_lab
from simulator.workbench import Node, RPCError
from models.workbench import labs, reference
QUICK = quick_mode()
T = 10 if QUICK else 20          # seconds of simulated client operations per test

# %% [markdown]
# ## Lab 1 · Echo
#
# A client sends `{"type": "echo", "echo": "Please echo 35"}`; your node must answer
# `{"type": "echo_ok", "echo": "Please echo 35"}` — same payload, `in_reply_to` set by `reply`.
# The starter below answers, but forgets something.
#
# <details><summary>Hint 1</summary>The checker compares the reply's <code>echo</code> field with the request's.</details>
# <details><summary>Hint 2</summary><code>{**msg.body, "type": "echo_ok"}</code> copies every field of the request.</details>

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "from models.workbench.reference import Echo as MyEcho", "wrong": "MyEcho = labs.EchoStarter", "rerun": true}
class MyEcho(Node):
    def on_echo(self, msg):
        self.reply(msg, {"type": "echo_ok"})     # the starter: fix me

# %% tags=["run"]
lab1 = run_lab(MyEcho, "echo", node_count=1, time_limit=T)

# %% tags=["check", "raises-exception"]
check_lab(lab1, hint="Reply with the request's payload (hint 2).")

# %% [markdown]
# ## Lab 2 · Unique ids, and why a counter on one node is not available
#
# Clients ask any of 3 nodes to `generate` an id; every id must be unique across the cluster — also
# while the network is partitioned and nodes crash. The starter counts per node.
#
# <details><summary>Hint 1</summary>Two nodes counting from 1 both hand out 1.</details>
# <details><summary>Hint 2</summary>Make the id unique by construction: the node's own id plus its own counter — no message needed. Keep the counter in <code>self.durable</code>, or a restarted node repeats ids.</details>

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "from models.workbench.reference import UniqueIds as MyIds", "wrong": "MyIds = labs.UniqueIdsStarter", "rerun": true}
class MyIds(Node):
    def __init__(self):
        self.n = 0

    def on_generate(self, msg):
        self.n += 1
        self.reply(msg, {"type": "generate_ok", "id": self.n})   # the starter: fix me

# %% tags=["run"]
lab2 = run_lab(MyIds, "unique-ids", node_count=3, time_limit=T, rate=20, nemesis=("partition", "kill"),
               nemesis_interval=3)

# %% tags=["check", "raises-exception"]
check_lab(lab2, hint="Put the node's id into every id it hands out (hint 2).")

# %% [markdown]
# **The CAP lesson, measured.** A tempting fix is *one* counter: every node asks n1 for the next
# number. Ids are unique — and every node cut off from n1 can hand out none. Both designs, with n1
# cut off from n2 and n3 from 3 s to 8 s (Maelstrom's availability: the fraction of operations that
# succeeded):

# %%
from simulator.faults import FaultSchedule, Partition
cut_n1 = FaultSchedule([Partition(at=3.0, heal_at=8.0, groups=(("n1",), ("n2", "n3")))])
avail = {}
for name, node in (("node id + counter\n(no coordination)", reference("unique-ids")),
                   ("one counter on n1\n(coordinated)", labs.UniqueIdsCentral)):
    r = run_lab(node, "unique-ids", node_count=3, time_limit=T, rate=20, faults=cut_n1, show=False, shrink=False)
    avail[name] = (r.results["availability"]["ok_fraction"], availability_on(r, ["n2", "n3"], 3.0, 8.0))
    print(f"{name.splitlines()[0]:<20} valid={r.valid}; availability over the test {avail[name][0]:.3f}, "
          f"on n2 and n3 during the cut {avail[name][1]:.3f}")
fig, ax = plt.subplots(figsize=(7, 3))
x = np.arange(len(avail))
ax.bar(x - 0.2, [v[0] for v in avail.values()], 0.4, label="whole test", color="#1f77b4")
ax.bar(x + 0.2, [v[1] for v in avail.values()], 0.4, label="n2, n3 while cut off from n1", color="#d62728")
for xi, v in zip(x, avail.values()):
    ax.text(xi - 0.2, v[0] + 0.02, f"{v[0]:.2f}", ha="center", fontsize=8)
    ax.text(xi + 0.2, v[1] + 0.02, f"{v[1]:.2f}", ha="center", fontsize=8)
ax.set_xticks(x, list(avail))
ax.set_ylim(0, 1.15)
ax.set_ylabel("operations that succeeded")
ax.set_title("Unique ids, n1 cut off 3-8 s: coordination costs availability")
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# Over the whole test the coordinated design loses only a few operations (its clients on n2 and n3
# spend the cut waiting for answers that never come, so they ask little); on the cut-off side it
# serves *nothing* while the cut lasts. Maelstrom's `--availability` counts the first figure.

# %% [markdown]
# ## Lab 3 · Broadcast
#
# Clients `broadcast` integers to any node and `read` every node's set; Maelstrom first sends each
# node a `topology` (a grid: its neighbours). After the test every fault heals, 10 s pass, and every
# node is read: each acknowledged message must be in every final read.
#
# **3a · one node.** The starter keeps what it is told — enough on a single node:

# %%
lab3a = run_lab(labs.BroadcastStarter, "broadcast", node_count=1, time_limit=T)

# %% [markdown]
# **3b/3c · five nodes, 100 ms links, partitions.** Now nobody else ever hears of a message. Make
# every node learn every message — and keep doing so while the nemesis partitions the network.
#
# <details><summary>Hint 1</summary>When you learn a new message, tell your neighbours (<code>self.node_id</code>, and the <code>topology</code> body's entry for it).</details>
# <details><summary>Hint 2</summary>A message sent into a partition is dropped. Send gossip as an RPC (<code>self.rpc(..., callback=fn)</code>) and send it again after a timeout until the neighbour answers.</details>
# <details><summary>Hint 3</summary>docs/examples/broadcast.py is a complete solution; <code>FireAndForget</code> in the same file is the classic wrong one.</details>

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "from models.workbench.reference import Broadcast as MyBroadcast", "wrong": "MyBroadcast = labs.BroadcastStarter", "rerun": true}
class MyBroadcast(Node):
    def __init__(self):
        self.messages = set()

    def on_topology(self, msg):
        self.reply(msg, {"type": "topology_ok"})

    def on_broadcast(self, msg):
        self.messages.add(msg.body["message"])
        self.reply(msg, {"type": "broadcast_ok"})

    def on_read(self, msg):
        self.reply(msg, {"type": "read_ok", "messages": sorted(self.messages)})

# %% tags=["run"]
lab3 = run_lab(MyBroadcast, "broadcast", node_count=5, time_limit=T, latency_ms=100, nemesis=("partition",),
               nemesis_interval=3)
if lab3.figure is not None:
    plt.show()

# %% tags=["check", "raises-exception"]
check_lab(lab3, hint="Gossip each new message to your neighbours, and retry until acknowledged (hints 1, 2).")

# %% [markdown]
# **The CAP lesson, measured.** Broadcast is an AP design: during a partition every node still
# answers every client (availability stays 1), and what the partition costs is *convergence* —
# how long until a message is in every read (Maelstrom's *stable latency*). The correct node with
# and without a partition from 3 s to 8 s:

# %%
from simulator.workbench import checkers
cut = FaultSchedule([Partition(at=3.0, heal_at=8.0, groups=(("n1", "n2"), ("n3", "n4", "n5")))])
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [1, 3]})
for (name, faults), c in zip((("no fault", FaultSchedule()), ("partition 3-8 s", cut)), ("#1f77b4", "#d62728")):
    r = run_lab(reference("broadcast"), "broadcast", node_count=5, time_limit=T, latency_ms=100, faults=faults,
                show=False, shrink=False)
    per = checkers.set_full(r.test.ops, add_f="broadcast", per_element=True)["stable_by_element"]
    main = [(t, 1000 * d) for t, d in per]
    a1.bar(name, r.results["availability"]["ok_fraction"], color=c)
    a2.scatter([t for t, _ in main], [d for _, d in main], s=12, color=c, label=name)
    print(f"{name:<16} availability {r.results['availability']['ok_fraction']:.2f}; median stable latency "
          f"{np.median([d for _, d in main]):.0f} ms, max {max(d for _, d in main):.0f} ms")
a1.set_ylim(0, 1.05)
a1.set_title("availability")
a2.axvspan(3, 8, color="#d62728", alpha=0.12, label="partition")
a2.set_xlabel("time the message was broadcast (s)")
a2.set_ylabel("stable latency (ms)")
a2.set_title("convergence: stable latency per message")
a2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Messages broadcast on one side of the cut wait for the heal: their stable latency falls on a line
# ending at 8 s; elsewhere it is at most a few 100 ms hops, and 0 when no read missed the message.
# Nothing was refused.

# %% [markdown]
# **3d · efficiency.** Glomers 3d: 25 nodes, 100 ms links, rate 100 — fewer than **30 messages
# between servers per operation**, median stable latency under **400 ms**, maximum under **600 ms**.
# Gossip over the grid (lab 3's solution) needs up to 8 hops of 100 ms and sends each message over
# every edge. (Stable latency as Jepsen's set-full checker measures it: from the moment a message is
# known to the start of the last read that missed it.)
#
# <details><summary>Hint 1</summary>The topology is only a suggestion: <code>self.node_ids</code> lists every node.</details>
# <details><summary>Hint 2</summary>Let the node a client told send the message straight to every other node (one hop), and let the others not pass it on.</details>

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "from models.workbench.labs import BroadcastDirect as MyFastBroadcast", "wrong": "MyFastBroadcast = reference('broadcast')", "rerun": true}
MyFastBroadcast = MyBroadcast        # start from your lab 3 node

# %% tags=["run"]
lab4 = run_lab(MyFastBroadcast, "broadcast", node_count=25, time_limit=T, latency_ms=100, rate=100)
st4 = lab4.results["workload"].get("stable_latencies_ms") or {}

# %% tags=["check", "raises-exception"]
check_lab(lab4, hint="One hop from the origin to everyone (hint 2).",
          targets=[("server messages per op", lab4.results["net"]["msgs_per_op"], "<", 30),
                   ("median stable latency (ms)", st4.get("0.5", float("nan")), "<", 400),
                   ("maximum stable latency (ms)", st4.get("1", float("nan")), "<", 600)])

# %% [markdown]
# **3e · efficiency, part II.** Glomers 3e: the same 25 nodes — now under **20 messages per
# operation**, with a median stable latency under **1 s** and a maximum under **2 s**. Your 3d node
# spends two messages (gossip and its acknowledgement) per peer per broadcast.
#
# <details><summary>Hint 1</summary>The latency budget grew more than fivefold: a message may wait before it is sent.</details>
# <details><summary>Hint 2</summary>Collect what clients tell you and send it every second as <em>one</em> batch per peer (<code>self.every(1.0, flush)</code>, started in <code>on_init</code>), each batch an RPC retried until acknowledged.</details>

# %% tags=["answer"] splitbrain={"exercise": 5, "reference": "from models.workbench.labs import BroadcastBatched as MyBatchedBroadcast", "wrong": "MyBatchedBroadcast = labs.BroadcastDirect", "rerun": true}
MyBatchedBroadcast = MyFastBroadcast      # start from your 3d node

# %% tags=["run"]
lab4e = run_lab(MyBatchedBroadcast, "broadcast", node_count=25, time_limit=T, latency_ms=100, rate=100)
st4e = lab4e.results["workload"].get("stable_latencies_ms") or {}

# %% tags=["check", "raises-exception"]
check_lab(lab4e, hint="Batch: one message per peer per second (hint 2).",
          targets=[("server messages per op", lab4e.results["net"]["msgs_per_op"], "<", 20),
                   ("median stable latency (ms)", st4e.get("0.5", float("nan")), "<", 1000),
                   ("maximum stable latency (ms)", st4e.get("1", float("nan")), "<", 2000)])

# %% [markdown]
# **Messages for latency, measured.** The batch interval is the knob: each peer gets at most one
# batch (and sends one acknowledgement) per interval, and a message waits half an interval on
# average, plus a 100 ms hop. The batched node with intervals from 0.25 s to 2 s, and 3d's node:

# %%
trade = {}
for flush in (0.25, 0.5, 1.0, 2.0):
    node = type(f"Batched{flush}", (labs.BroadcastBatched,), {"flush_s": flush})
    r = run_lab(node, "broadcast", node_count=25, time_limit=T, latency_ms=100, rate=100, show=False, shrink=False)
    trade[f"batch every {flush:g} s"] = r
trade["3d: no batching"] = run_lab(labs.BroadcastDirect, "broadcast", node_count=25, time_limit=T, latency_ms=100,
                                   rate=100, show=False, shrink=False)
fig, ax = plt.subplots(figsize=(7, 3.6))
for (label, r), c in zip(trade.items(), ["#08519c", "#3182bd", "#6baed6", "#9ecae1", "#7f7f7f"]):
    q = r.results["workload"]["stable_latencies_ms"]
    x, y = r.results["net"]["msgs_per_op"], q["0.5"]
    ax.errorbar(x, y, yerr=[[0], [q["1"] - y]], fmt="o", color=c, capsize=3, label=label)
    print(f"{label:<18} {x:5.1f} msgs/op, median {y:4.0f} ms, max {q['1']:4.0f} ms")
ax.legend(fontsize=8, loc="upper right")
ax.axvline(20, color="#d62728", ls="--", lw=1)
ax.axhline(1000, color="#d62728", ls="--", lw=1)
ax.set_xlim(0, 28)
ax.set_xlabel("server messages per operation")
ax.set_ylabel("stable latency (ms): median, bar to max")
ax.set_title("Broadcast, 25 nodes, 100 ms links: batching trades latency for messages\n(red: Glomers 3e's bars)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Lab 4 · A grow-only counter on a sequentially consistent store
#
# Clients `add` a delta and `read` the total. Nodes keep no state of their own: they share
# Maelstrom's `seq-kv` service (read, write, cas). The starter reads the counter and writes
# back the sum.
#
# <details><summary>Hint 1</summary>Two nodes read 7 at once, each writes 7 + its delta: one increment is lost.</details>
# <details><summary>Hint 2</summary>Use <code>cas</code> from the value you read to value + delta, and retry when it fails (error 22: someone got there first).</details>
# <details><summary>Hint 3</summary>seq-kv is only sequentially consistent: a read may be stale forever. Write a fresh value to a key of your own just before reading — your read is then ordered after your own write.</details>

# %% tags=["answer"] splitbrain={"exercise": 6, "reference": "MyCounter = reference('g-counter')", "wrong": "MyCounter = reference('g-counter', 'blind-write')", "rerun": true}
class MyCounter(Node):
    def on_add(self, msg):
        try:
            cur = (yield self.rpc("seq-kv", {"type": "read", "key": "counter"}))["value"]
        except RPCError:
            cur = 0
        yield self.rpc("seq-kv", {"type": "write", "key": "counter", "value": cur + msg.body["delta"]})
        self.reply(msg, {"type": "add_ok"})

    def on_read(self, msg):
        try:
            value = (yield self.rpc("seq-kv", {"type": "read", "key": "counter"}))["value"]
        except RPCError:
            value = 0
        self.reply(msg, {"type": "read_ok", "value": value})

# %% tags=["run"]
lab5 = run_lab(MyCounter, "g-counter", node_count=3, time_limit=T, rate=20, latency_ms=20)

# %% tags=["check", "raises-exception"]
check_lab(lab5, hint="Replace the write with a cas, retried on error 22 (hint 2), then mind stale reads (hint 3).")

# %% [markdown]
# ## Lab 5 · A Kafka-style log
#
# `send` appends a message to a key's log and returns its offset; `poll` returns `[offset, msg]`
# pairs from given offsets on; `commit_offsets` / `list_committed_offsets` keep consumers' positions.
# Jepsen's checker (Maelstrom's `kafka` workload) refuses two messages at one offset of a key, an
# acknowledged send that a poll skips over, and polls that disagree on order.
#
# **5a · one node.** The starter keeps each key's log in the node's memory — a complete answer on a
# single node. **5b · three nodes.** Clients now talk to n1, n2 and n3. Nodes may use Maelstrom's
# linearizable key/value store, `lin-kv` (`read`, `write`, `cas` with `from`/`to` and
# `create_if_not_exists`; error 20 key does not exist, 22 precondition failed).
#
# <details><summary>Hint 1</summary>Each node numbers its own appends: n1 and n2 both hand out offset 0 of key "7" for different messages, and n2's clients never see n1's.</details>
# <details><summary>Hint 2</summary>Keep each key's whole log in lin-kv as one value (a list of <code>[offset, msg]</code>); append with a <code>cas</code> from the log you read to that log plus your entry, and on error 22 read it again and retry.</details>
# <details><summary>Hint 3</summary>The offset is the log's length at the moment your cas succeeds. Committed offsets: a lin-kv key per log, raised with cas and never lowered. Never retry a cas that timed out blindly: it may have happened.</details>

# %% tags=["answer"] splitbrain={"exercise": 7, "reference": "MyKafka = reference('kafka')", "wrong": "MyKafka = labs.KafkaStarter", "rerun": true}
class MyKafka(Node):
    def __init__(self):
        self.logs = {}          # key -> [msg, ...]: the offset is the position
        self.committed = {}

    def on_send(self, msg):
        log = self.logs.setdefault(msg.body["key"], [])
        log.append(msg.body["msg"])
        self.reply(msg, {"type": "send_ok", "offset": len(log) - 1})

    def on_poll(self, msg):
        out = {k: [[i, m] for i, m in enumerate(self.logs.get(k, []))][start:]
               for k, start in msg.body["offsets"].items()}
        self.reply(msg, {"type": "poll_ok", "msgs": {k: v for k, v in out.items() if v}})

    def on_commit_offsets(self, msg):
        for k, off in msg.body["offsets"].items():
            self.committed[k] = max(off, self.committed.get(k, off))
        self.reply(msg, {"type": "commit_offsets_ok"})

    def on_list_committed_offsets(self, msg):
        offsets = {k: self.committed[k] for k in msg.body["keys"] if k in self.committed}
        self.reply(msg, {"type": "list_committed_offsets_ok", "offsets": offsets})

# %% tags=["run"]
lab6a = run_lab(MyKafka, "kafka", node_count=1, time_limit=T, rate=50, shrink=False)   # 5a
lab6 = run_lab(MyKafka, "kafka", node_count=3, time_limit=T, rate=50)                 # 5b

# %% tags=["check", "raises-exception"]
check_lab(lab6, hint="One authority for each key's offsets: the log in lin-kv, appended by cas (hint 2).")

# %% [markdown]
# A subtler mistake keeps the log in lin-kv but still numbers appends from a per-node counter
# (`reference("kafka", "per-node-offsets")`): the shared log then holds two messages at one offset.
#
# **The CAP lesson, measured.** A log with one order per key needs one authority for that order —
# here lin-kv (in Kafka, the partition's leader). Maelstrom's lin-kv is a service outside the network
# that no partition reaches; a real store lives on machines, so put it on n1's side of a cut from 3 s
# to 8 s and measure, per operation, what the clients of n2 and n3 could still do:

# %%
cut_kv = FaultSchedule([Partition(at=3.0, heal_at=8.0, groups=(("n1", "lin-kv"), ("n2", "n3")))])
r = run_lab(reference("kafka"), "kafka", node_count=3, time_limit=T, rate=50, faults=cut_kv, shrink=False)
n_cl = len(r.test.clients)
sends = [(o.invoke_time, r.test.clients[o.process % n_cl].node, o.type) for o in r.test.ops if o.f == "send"]
for label, nodes in (("n1 (with lin-kv)", {"n1"}), ("n2, n3 (cut off)", {"n2", "n3"})):
    during = [t for t0, n, t in sends if 3.0 <= t0 < 8.0 and n in nodes]
    print(f"{label:<17} sends during the cut: {during.count('ok')} of {len(during)} acknowledged")
fig, ax = plt.subplots(figsize=(9, 2.6))
for typ, c, m in (("ok", "#1f77b4", "o"), ("info", "#d62728", "x")):
    pts_ = [(t0, int(n[1:])) for t0, n, t in sends if t == typ]
    ax.scatter([p[0] for p in pts_], [p[1] for p in pts_], s=14, color=c, marker=m,
               label={"ok": "send acknowledged", "info": "send timed out (indefinite)"}[typ])
ax.axvspan(3, 8, color="#d62728", alpha=0.1, label="n2, n3 cut off from n1 and lin-kv")
ax.set_yticks([1, 2, 3], ["n1", "n2", "n3"])
ax.set_ylim(0.5, 3.5)
ax.set_xlabel("time the send was invoked (s)")
ax.set_title("Kafka-style log on lin-kv: a total order needs its authority")
ax.legend(fontsize=8, loc="upper right", ncol=3, bbox_to_anchor=(1, 1.35))
plt.show()

# %% [markdown]
# The still-valid history is the CP choice: the cut-off nodes time out rather than hand out offsets
# n1 might also hand out (each client waits for its send, so the cut-off side asks little; a commit
# that would not raise the committed offset is answered from the node's cache). Kafka makes the same choice per partition; it stays available by
# moving the partition's leadership to the majority side — which needs replicas there.

# %% [markdown]
# ## Lab 6 · Totally available transactions — and what serializability costs
#
# Transactions of reads and writes over a few keys (`txn-rw-register`): `{"type": "txn", "txn":
# [["r", 1, null], ["w", 1, 6], ["w", 2, 9]]}`, answered with the reads filled in. Glomers 6b-6c ask
# for *total availability* — every node answers every transaction, even cut off from every other
# node — and *read committed*: no transaction sees another's uncommitted or intermediate writes
# (Elle checks it: G0, G1a, G1b, G1c). The starter runs each micro-op on lin-kv, which lives on n1's
# side of a cut from 3 s to 8 s.
#
# <details><summary>Hint 1</summary>The starter fails twice: another transaction reads its first write to a key before its second (G1b), and cut off from lin-kv it cannot answer at all.</details>
# <details><summary>Hint 2</summary>Keep a copy of the data on every node (<code>self.durable</code>); run the transaction on your copy and answer at once.</details>
# <details><summary>Hint 3</summary>Then send the transaction's <em>final</em> writes (one value per key) to every other node in one message, retried until acknowledged; a replica installs them together.</details>

# %% tags=["answer"] splitbrain={"exercise": 8, "reference": "MyTxn = reference('txn-rw-register', 'read-committed')", "wrong": "MyTxn = reference('txn-rw-register', 'no-isolation')", "rerun": true}
class MyTxn(Node):
    def on_txn(self, msg):
        out = []
        for f, k, v in msg.body["txn"]:
            if f == "r":
                try:
                    v = (yield self.rpc("lin-kv", {"type": "read", "key": k}))["value"]
                except RPCError:
                    v = None
            else:
                yield self.rpc("lin-kv", {"type": "write", "key": k, "value": v})
            out.append([f, k, v])
        self.reply(msg, {"type": "txn_ok", "txn": out})

# %% tags=["run"]
lab7 = run_lab(MyTxn, "txn-rw-register", node_count=3, time_limit=T, rate=20, latency_ms=20, faults=cut_kv,
               consistency_models=("read-committed",))

# %% tags=["check", "raises-exception"]
check_lab(lab7, hint="Run on your own copy and answer at once; replicate the final writes (hints 2, 3).",
          targets=[("availability on n2, n3 while cut off", availability_on(lab7, ["n2", "n3"], 3.0, 8.0), ">=", 0.99)])

# %% [markdown]
# **The CAP lesson, measured.** Three designs under the same cut: the starter (each micro-op on
# lin-kv, nothing around them), your read-committed node (Glomers 6c; the reference is Maelstrom's
# `txn_rw_register_hat` demo), and one that runs every transaction on n1 (*strict serializable*, but
# a node cut off from n1 serves nothing). Each is checked by Elle against every model; the chart puts
# availability on the cut-off side against the anomalies each level forbids.

# %%
designs = {"each op on lin-kv\n(no isolation)": "no-isolation", "own copy, replicate whole\n(read committed)":
           "read-committed", "all on n1\n(strict serializable)": "reference"}
from simulator.history.txn.models import forbids
pts = {}
for label, v in designs.items():
    r = run_lab(reference("txn-rw-register", v), "txn-rw-register", node_count=3, time_limit=T,
                rate=20, latency_ms=20, faults=cut_kv, show=False, shrink=False)
    found = r.results["workload"].get("anomaly_types") or []
    rc = [x for x in found if forbids("read-committed", x)]
    pts[label] = (availability_on(r, ["n2", "n3"], 3.0, 8.0), rc, [x for x in found if x not in rc])
    print(f"{label.splitlines()[0]:<26} availability on n2, n3 during the cut {pts[label][0]:.2f}; "
          f"read committed forbids {rc}; serializability also forbids {pts[label][2]}")
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
for (label, (av, rc, rest)), c in zip(pts.items(), ["#d62728", "#ff7f0e", "#1f77b4"]):
    for ax, n in ((a1, len(rc)), (a2, len(rc) + len(rest))):
        ax.scatter(av, n, s=120, color=c, label=label.replace("\n", " "))
for ax, title in ((a1, "anomaly types read committed forbids\n(G0, G1a/b/c)"),
                  (a2, "anomaly types strict serializability forbids")):
    ax.set_xlim(-0.05, 1.1)
    ax.set_ylim(-0.5, 6)
    ax.set_xlabel("availability on n2, n3 while cut off from n1 and lin-kv")
    ax.set_title(title, fontsize=10)
a1.set_ylabel("anomaly types found")
a2.legend(fontsize=8, loc="upper left")
fig.suptitle("Transactions under a partition: what each isolation level costs in availability")
plt.tight_layout()
plt.show()

# %% [markdown]
# The read-committed design answers everything on the cut-off side and shows none of the dirty
# reads; coordinating every micro-op bought neither isolation nor availability. What read committed
# still allows (G2-item, lost updates) is the price of never waiting for another node. Only
# coordination removes those — and coordination is exactly what a partition takes away (Bailis et al.,
# *Highly Available Transactions*, VLDB 2014: read committed is achievable with total availability,
# serializability is not).
#
# ## What to try next
#
# - Run any lab from the shell: `splitbrain test -w broadcast --node mynode.py:MyBroadcast --nemesis
#   partition --latency 100`, then `splitbrain hunt` it over a thousand seeds (`docs/workbench.md`).
# - Notebook 09 builds Raft by hand; notebook 03 measures CAP and PACELC on the project's own stores.

