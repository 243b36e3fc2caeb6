"""What each notebook promises at the top and where it points at the end (notebooks 01-07)."""

from __future__ import annotations

OPENING = {
    "01": """**By the end you will be able to reason about:** why a timeout is an *indefinite* outcome; how
independent loss compounds over a request and its reply and how retries cancel it; why retries cannot
beat a partition; how far an unsynchronised clock drifts; why availability depends on the side of a
partition you are on; and why one slow request in a hundred owns the tail. (About 25 minutes.)""",
    "02": """**By the end you will be able to reason about:** how retries turn a short spike into a
self-sustaining overload and what stops it (backoff, jitter, budgets); what a circuit breaker and a
bulkhead each protect; how to choose a timeout; why fan-out makes the tail common and what hedging
costs; and which load balancer routes around a slow replica. (About 35 minutes.)""",
    "03": """**By the end you will be able to reason about:** what CP and AP stores each give up during a
partition, on each side of it; PACELC's latency-consistency trade with no partition; quorum
intersection (R + W > N) and probabilistically bounded staleness; how clock skew makes last-writer-wins
lose acknowledged writes; why Raft elections need randomness; which rung of the consistency ladder stays
available; and how to read a linearizability checker's verdict. (About 40 minutes.)""",
    "04": """**By the end you will be able to reason about:** when a queue beats a synchronous call and
what it costs (backlog, delay); how a visibility timeout trades duplicates for recovery time; what a
poison message does with and without a dead-letter queue; at-most-once, at-least-once and effectively-once
delivery; producer acks through a leader failover; and why consumer groups rebalance in storms.
(About 35 minutes.)""",
    "05": """**By the end you will be able to reason about:** what two-phase commit blocks on and what a saga
exposes instead; orchestration versus choreography; idempotency keys and their TTL; the dual-write
problem and the transactional outbox; replay time in event sourcing; and how stale a CQRS read model
is. (About 35 minutes.)""",
    "06": """**By the end you will be able to reason about:** how retries at every layer multiply the load a
trace shows; what an error budget is and how burn-rate alerts trade detection time for false pages;
why dashboards show a failure's blast radius while traces point at its cause; and how to tell one
request's story from its spans and logs. (About 25 minutes.)""",
    "07": """**By the end you will be able to reason about:** why a distributed monolith is less available
than the monolith it replaced; what chatty calls cost; shared databases and noisy neighbours; caches
that degrade gracefully and caches that stampede; failure detectors' detection time against false
positives; leases and fencing tokens; queue disciplines under overload; and what a rolling deploy
does to users. (About 40 minutes.)""",
}

CLOSING = {
    "01": """## Summary

Loss, delay, crashes, drift and partitions are the raw failures everything else is built on. A
timeout does not tell you whether the work happened; retries beat independent loss
geometrically but not a partition; clocks drift without bound unless synchronised; and
"availability" is a number per client, per side of a split.

**Try next:** `splitbrain run kernel_demo --param loss=0.2 --param max_attempts=1` and compare the
minority side's availability with 1 − (2/3)^k; then notebook [02_resilience](02_resilience.ipynb) for what to do about
it. To write your own fault schedule, see `splitbrain run kernel_demo --faults SCHEDULE.json`.""",
    "02": """## Summary

Every resilience pattern spends something small to avoid something large: backoff and budgets spend
latency to avoid a retry storm, breakers spend a fallback to give a dependency room, bulkheads spend
capacity to contain a failure, hedging spends ~5% load to cut the tail. Misused — retries at every
layer, timeouts longer than the caller waits — the same patterns cause the outage.

**Try next:** `splitbrain sweep retry_storm --grid trigger_s=0.5:1:2:4` to find how long a trigger must
last to tip the system into the metastable state; `splitbrain run tail_at_scale --param hedge_quantile=0.99`; then
notebook [03_cap_tradeoffs](03_cap_tradeoffs.ipynb).""",
    "03": """## Summary

A partition forces a choice per operation: refuse (CP, unavailable on the minority side) or answer
and risk stale reads and lost writes (AP). With no partition the trade is latency against
consistency (PACELC). Quorums intersect when R + W > N; partial quorums are usually fresh within
milliseconds but promise nothing; last-writer-wins on skewed clocks silently drops acknowledged
writes; consensus needs randomised timeouts; CRDTs converge without coordination for operations that
commute.

**Try next:** the CAP/PACELC explorer above with a longer partition or more skew;
`splitbrain run consistency_ladder`; `splitbrain run cap_partition --quick --out /tmp/cp` then
`splitbrain check linearizable /tmp/cp/histories/seed=1_history_ap.jsonl` (and `..._history_cp.jsonl`);
then notebook [04_messaging](04_messaging.ipynb).""",
    "04": """## Summary

A broker decouples availability (users are answered while a consumer is down) from freshness (the
work happens later). Its knobs decide what goes wrong: the visibility timeout trades duplicates
against recovery time, a dead-letter queue bounds what a poison message costs, the commit point
decides between lost and duplicated messages, producer acks decide what a failover may lose, and
session timeouts decide whether pauses become rebalance storms. Exactly-once *effects* come from
idempotent consumers, not from the broker.

**Try next:** `splitbrain run visibility_timeout --param sigma=1.5` (a heavier tail: which timeout is safe now?);
`splitbrain run delivery_semantics --quick`; then notebook [05_transactions](05_transactions.ipynb),
which builds on queues.""",
    "05": """## Summary

Across services there is no global ACID transaction: 2PC keeps atomicity by blocking, sagas stay
available and expose intermediate states that compensations undo. Retries need idempotency keys
that live longer than the retry horizon; events need the outbox so that a commit and its event are
atomic; event-sourced state is rebuilt by replay, bounded by snapshots; a CQRS read model lags like
a queue and breaks read-your-writes unless you read your own writes from the write side.

**Try next:** `splitbrain run saga_isolation --quick --out /tmp/si` then `splitbrain check transactions
--workload rw-register /tmp/si/histories/seed=1_history_none.jsonl` for the Elle-style anomalies a saga
without isolation exposes; `splitbrain run saga_vs_2pc --quick`; then notebook
[06_observability](06_observability.ipynb).""",
    "06": """## Summary

Metrics tell you *that* something is wrong and how much budget it costs; traces tell you *where* —
the span with the largest self time, not the service with the worst dashboard; a trace id in every
log line turns a grep through interleaved logs into one request's story. Multiwindow burn-rate
alerts page fast on real budget burns and stay quiet on short spikes.

**Try next:** `splitbrain run debugging_with_traces --out /tmp/dbg` then `splitbrain explain /tmp/dbg
--worst 3`, and open the exported Chrome trace in `chrome://tracing` or Perfetto; `splitbrain hunt raft
--property linearizable --variant figure8 --seeds 2000` to search for the seed and minimal fault schedule
that break a deliberately unsafe Raft; then notebook
`07_architecture`.""",
    "07": """## Summary

Architecture decides which failures users see: synchronous chains multiply unavailability,
chatty designs multiply latency, shared databases share overload, caches buy availability with
staleness and can stampede their origin, failure detectors trade detection time for false
suspicion (which is why locks need fencing tokens), queue disciplines decide who is served under
overload, and rolling deploys run two versions at once.

**Try next:** `splitbrain list` for every experiment and `splitbrain validate` for the published numbers
the simulator reproduces; design a fault schedule of your own for `kernel_demo`; or reopen any
notebook's *Explore* cells and try to break a pattern you now trust.""",
}
