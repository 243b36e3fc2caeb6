"""Kafka consumer groups: a coordinator, members with heartbeats, and three offset-commit policies.

Sources: Apache Kafka documentation, consumer configs ``session.timeout.ms`` (45 s),
``heartbeat.interval.ms`` (3 s), ``max.poll.records`` (500), ``partition.assignment.strategy``
(range, round robin); "Kafka: The Definitive Guide" (Narkhede, Shapira, Palino), ch. 4 on
commits: committing before processing gives at-most-once, after gives at-least-once, and storing
the offset in the same transaction as the processing's results (the consumer's own database)
gives effectively-once ("exactly-once" for the side effects).

Model. A :class:`GroupCoordinator` node keeps the members, the generation and the assignment
(volatile) and the committed offsets (durable). A member that has not heartbeated for
``session_timeout_s`` is removed; any join, leave or removal starts a new generation with a
fresh assignment, which members learn on their next heartbeat (a simplification of the
JoinGroup/SyncGroup barrier: for up to one heartbeat interval an old owner may still be working
on a partition — the "zombie" window that commit fencing must handle). A commit carrying an old
generation, or for a partition the member no longer owns, is refused (``illegal_generation``).

A :class:`LogConsumer` runs one fetch loop per assigned partition: fetch up to
``max_poll_records`` committed records from the leader, handle them (the sum of per-record
service times), and commit per ``commit``:

- ``"before"`` (at-most-once): commit ``offset + n``, then process. If the commit is refused or
  times out the batch is skipped, never processed: nothing twice, maybe nothing.
- ``"after"`` (at-least-once): process, then commit. A crash, or a refused commit after a
  rebalance, makes the next owner process the batch again: nothing lost, maybe twice.
- ``"transactional"`` (effectively-once): process, then write the results *and* the new offset
  to an :class:`OffsetSink` atomically, conditional on the sink's offset still being ``offset``
  (the consumer reads its start offset from the sink, not the coordinator). A zombie's write
  finds the offset moved and is refused, so each record's effect is applied exactly once.

The ``process`` events of the delivery log are the side effects: applied at the consumer at the
end of handling (before/after), or by the sink's transaction (transactional).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator import Distribution, RpcError
from simulator.distributions import as_distribution
from simulator.history.delivery import DeliveryLog

from .consumer import Inbox
from .log import FETCH, LogCluster

if TYPE_CHECKING:
    from simulator import Message, Simulation

JOIN, LEAVE, HEARTBEAT = "group.join", "group.leave", "group.heartbeat"
COMMIT, OFFSETS = "group.commit", "group.offsets"
SINK_APPLY, SINK_OFFSET = "sink.apply", "sink.offset"
COMMIT_POLICIES = ("before", "after", "transactional")
ILLEGAL_GENERATION, UNKNOWN_MEMBER = "illegal_generation", "unknown_member"


@dataclass(frozen=True)
class GroupConfig:
    """Consumer-group settings, times in seconds, defaults from Kafka's consumer configs:
    ``session.timeout.ms`` 45 s, ``heartbeat.interval.ms`` 3 s, ``max.poll.records`` 500,
    ``partition.assignment.strategy`` "range" | "roundrobin"; ``commit`` is "before"
    (at-most-once), "after" (at-least-once) or "transactional" (effectively-once).
    """
    session_timeout_s: float = 45.0
    heartbeat_interval_s: float = 3.0
    assignor: str = "range"  # "range" | "roundrobin"
    commit: str = "after"
    max_poll_records: int = 500
    fetch_idle_s: float = 0.01  # wait before fetching again after an empty fetch
    rpc_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        for n in ("session_timeout_s", "heartbeat_interval_s", "fetch_idle_s", "rpc_timeout_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a number of seconds > 0, got {v!r}")
        if self.heartbeat_interval_s >= self.session_timeout_s:
            raise ValueError(f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be < session_timeout_s "
                             f"({self.session_timeout_s})")
        if self.assignor not in ("range", "roundrobin"):
            raise ValueError(f"assignor must be 'range' or 'roundrobin', got {self.assignor!r}")
        if self.commit not in COMMIT_POLICIES:
            raise ValueError(f"commit must be one of {COMMIT_POLICIES}, got {self.commit!r}")
        if not (isinstance(self.max_poll_records, int) and self.max_poll_records >= 1):
            raise ValueError(f"max_poll_records must be an integer >= 1, got {self.max_poll_records!r}")


def assign(members: list[str], partitions: int, assignor: str) -> dict[str, list[int]]:
    """Kafka's range (contiguous blocks, the first ``P mod N`` members one extra) or round-robin."""
    out: dict[str, list[int]] = {m: [] for m in members}
    if not members:
        return out
    ms = sorted(members)
    if assignor == "roundrobin":
        for p in range(partitions):
            out[ms[p % len(ms)]].append(p)
        return out
    q, r = divmod(partitions, len(ms))
    start = 0
    for i, m in enumerate(ms):
        n = q + (1 if i < r else 0)
        out[m] = list(range(start, start + n))
        start += n
    return out


class GroupCoordinator:
    """The group coordinator for one topic's consumer group (a node: it can crash and be cut off)."""

    def __init__(self, sim: Simulation, name: str, partitions: int, config: GroupConfig) -> None:
        self.sim, self.name, self.partitions, self.config = sim, name, partitions, config
        self.node = sim.nodes.get(name) or sim.node(name)
        self.committed: dict[int, int] = self.node.durable.setdefault("offsets", {})
        self.rebalances = 0
        self.rebalance_times: list[float] = []
        self._reset()
        n = self.node
        for op, fn in ((JOIN, self._on_join), (LEAVE, self._on_leave), (HEARTBEAT, self._on_heartbeat),
                       (COMMIT, self._on_commit), (OFFSETS, self._on_offsets)):
            n.on(op, fn)
        n.on_crash(self._reset)
        n.on_recover(self._tick)
        self._tick()

    def _reset(self) -> None:
        self.generation = getattr(self, "generation", 0)  # kept so a restarted coordinator never reuses one
        self.last_seen: dict[str, float] = {}
        self.assignment: dict[str, list[int]] = {}

    def _rebalance(self) -> None:
        self.generation += 1
        self.rebalances += 1
        self.rebalance_times.append(self.sim.now)
        self.assignment = assign(list(self.last_seen), self.partitions, self.config.assignor)

    def _tick(self) -> None:
        now, timeout = self.sim.now, self.config.session_timeout_s
        gone = [m for m, t in self.last_seen.items() if now - t > timeout]
        for m in gone:
            del self.last_seen[m]
        if gone:
            self._rebalance()
        self.node.after(self.config.heartbeat_interval_s / 2, self._tick)

    def _on_join(self, msg: Message):
        (member,) = msg.payload
        self.last_seen[member] = self.sim.now
        self._rebalance()
        return self.generation

    def _on_leave(self, msg: Message):
        (member,) = msg.payload
        if self.last_seen.pop(member, None) is not None:
            self._rebalance()
        return True

    def _on_heartbeat(self, msg: Message):
        member, _gen = msg.payload
        if member not in self.last_seen:
            raise RpcError(UNKNOWN_MEMBER)
        self.last_seen[member] = self.sim.now
        return self.generation, tuple(self.assignment.get(member, ()))

    def _on_commit(self, msg: Message):
        member, gen, partition, offset = msg.payload
        if gen != self.generation or partition not in self.assignment.get(member, ()):
            raise RpcError(ILLEGAL_GENERATION)
        self.committed[partition] = max(offset, self.committed.get(partition, 0))
        return True

    def _on_offsets(self, msg: Message):
        (partition,) = msg.payload
        return self.committed.get(partition, 0)


class OffsetSink:
    """The consumer's own database: results and the partition's offset in one transaction."""

    def __init__(self, sim: Simulation, name: str, log: DeliveryLog) -> None:
        self.sim, self.name, self.log = sim, name, log
        self.node = sim.nodes.get(name) or sim.node(name)
        self.offsets: dict[int, int] = self.node.durable.setdefault("offsets", {})
        self.refused = 0
        self.node.on(SINK_APPLY, self._on_apply)
        self.node.on(SINK_OFFSET, lambda msg: self.offsets.get(msg.payload[0], 0))

    def _on_apply(self, msg: Message):
        partition, expected, new, records = msg.payload
        if self.offsets.get(partition, 0) != expected:
            self.refused += 1
            raise RpcError("offset_mismatch")
        self.offsets[partition] = new
        self.log.extend("process", [e[1] for e in records], [e[2] for e in records], self.sim.now)
        return True


class LogConsumer:
    """A member of a consumer group on ``topic`` (see the module docstring)."""

    def __init__(self, sim: Simulation, name: str, cluster: LogCluster, topic: str, coordinator: str, *,
                 log: DeliveryLog, service: Distribution | float = 0.001, config: GroupConfig | None = None,
                 sink: str | None = None, inbox: Inbox | None = None, start_at: float = 0.0) -> None:
        self.config = config or GroupConfig()
        if (self.config.commit == "transactional") != (sink is not None):
            raise ValueError("a sink (OffsetSink node name) is needed exactly when commit='transactional'")
        self.sim, self.name, self.cluster, self.topic, self.coordinator, self.log, self.sink = \
            sim, name, cluster, topic, coordinator, log, sink
        self.inbox = inbox  # an idempotent consumer's dedupe store (see consumer.Inbox)
        self.skipped_duplicates = 0
        self.node = sim.nodes.get(name) or sim.node(name)
        self._service = sim.sampler(as_distribution(service, "service"), f"consumer.{name}.service")
        self.incarnation = 0
        self.member = ""
        self.generation = -1
        self.owned: dict[int, int] = {}  # partition -> loop token
        self.assigned: tuple[int, ...] = ()
        self._token = 0
        self.processed = self.skipped = self.refused_commits = 0
        self.node.on_recover(self._join)
        self.node.on_crash(lambda: self.owned.clear())
        sim.at(start_at, self._join)

    # -- membership ------------------------------------------------------------------------------
    def _join(self) -> None:
        node, c = self.node, self.config
        if not node.up:
            return
        self.incarnation += 1
        member = self.member = f"{self.name}#{self.incarnation}"
        self._revoke(list(self.owned))
        self.generation, self.assigned = -1, ()

        def joined(outcome: str, value) -> None:
            if outcome != "ok":
                node.after(c.heartbeat_interval_s, self._join)
                return
            self._heartbeat(member)

        node.call(self.coordinator, JOIN, (member,), c.rpc_timeout_s, joined)

    def _heartbeat(self, member: str) -> None:
        node, c = self.node, self.config
        if member != self.member or not node.up:
            return

        def beat(outcome: str, value) -> None:
            if member != self.member:
                return
            if outcome == "error" and value == UNKNOWN_MEMBER:
                self._join()
                return
            if outcome == "ok":
                gen, parts = value
                if gen != self.generation:
                    self._reassign(gen, parts)
            node.after(c.heartbeat_interval_s, lambda: self._heartbeat(member))

        node.call(self.coordinator, HEARTBEAT, (member, self.generation), c.rpc_timeout_s, beat)

    def _refused(self, p: int, token: int) -> None:
        """A commit was refused (old generation): start over from the committed offset if the
        partition is still ours in the current generation; the next heartbeat settles the rest."""
        self.refused_commits += 1
        if self._mine(p, token):
            self.owned.pop(p)
            if p in self.assigned:
                self._token += 1
                self.owned[p] = self._token
                self._start(p, self._token)

    def _revoke(self, parts) -> None:
        for p in parts:
            self.owned.pop(p, None)

    def _reassign(self, gen: int, parts: tuple[int, ...]) -> None:
        self.generation, self.assigned = gen, parts
        self._revoke([p for p in self.owned if p not in parts])
        for p in parts:
            if p not in self.owned:
                self._token += 1
                self.owned[p] = self._token
                self._start(p, self._token)

    # -- one partition ---------------------------------------------------------------------------
    def _mine(self, p: int, token: int) -> bool:
        return self.node.up and self.owned.get(p) == token

    def _start(self, p: int, token: int) -> None:
        node, c = self.node, self.config
        where, op = (self.sink, SINK_OFFSET) if self.sink is not None else (self.coordinator, OFFSETS)

        def got(outcome: str, value) -> None:
            if not self._mine(p, token):
                return
            if outcome == "ok":
                self._fetch(p, token, value)
            else:
                node.after(c.fetch_idle_s, lambda: self._start(p, token))

        node.call(where, op, (p,), c.rpc_timeout_s, got)

    def _fetch(self, p: int, token: int, offset: int) -> None:
        node, c = self.node, self.config
        if not self._mine(p, token):
            return
        leader = self.cluster.leader(self.topic, p)
        if leader is None:
            node.after(c.fetch_idle_s, lambda: self._fetch(p, token, offset))
            return

        def got(outcome: str, records) -> None:
            if not self._mine(p, token):
                return
            if outcome != "ok" or not records:
                node.after(c.fetch_idle_s, lambda: self._fetch(p, token, offset))
                return
            self._handle(p, token, offset, records)

        node.call(leader, FETCH, (self.topic, p, offset, c.max_poll_records), c.rpc_timeout_s, got)

    def _handle(self, p: int, token: int, offset: int, records: list) -> None:
        node, c, svc = self.node, self.config, self._service
        new = offset + len(records)
        t = 0.0
        for _ in records:
            t += svc()
        t *= node.slow_factor
        gen, member = self.generation, self.member

        def apply_locally() -> None:
            now, inbox = self.sim.now, self.inbox
            if inbox is None:
                self.log.extend("process", [e[1] for e in records], [e[2] for e in records], now)
            else:
                for e in records:
                    if inbox.first_time(e[1]):
                        self.log.process(e[1], e[2], now)
                    else:
                        self.skipped_duplicates += 1
            self.processed += len(records)

        if c.commit == "before":
            def committed(outcome: str, value) -> None:
                if outcome == "ok":
                    node.after(t, lambda: (apply_locally(), self._fetch(p, token, new)))
                else:  # refused or unknown: never process (at most once); a refusal means not ours
                    self.skipped += len(records)
                    if outcome == "error":
                        self._refused(p, token)
                    else:
                        self._fetch(p, token, new)

            node.call(self.coordinator, COMMIT, (member, gen, p, new), c.rpc_timeout_s, committed)
        elif c.commit == "after":
            def done() -> None:
                apply_locally()

                def committed(outcome: str, value) -> None:
                    if outcome == "error":  # refused: re-read from the committed offset if still ours
                        self._refused(p, token)
                    else:
                        self._fetch(p, token, new)

                node.call(self.coordinator, COMMIT, (member, gen, p, new), c.rpc_timeout_s, committed)

            node.after(t, done)
        else:
            def done() -> None:
                def applied(outcome: str, value) -> None:
                    if outcome == "ok":
                        self.processed += len(records)
                        self._fetch(p, token, new)
                    else:
                        if outcome == "error":
                            self.refused_commits += 1
                        self._start(p, token)  # re-read the sink's offset

                node.call(self.sink, SINK_APPLY, (p, offset, new, records), c.rpc_timeout_s, applied)

            node.after(t, done)


def lag_sampler(sim: Simulation, cluster: LogCluster, topic: str, committed: Callable[[int], int],
                every_s: float, until: float = math.inf) -> list[tuple]:
    """Every ``every_s``: ``(time, partition, high_watermark, committed, lag)`` rows (consumer lag
    as Burrow or ``kafka-consumer-groups --describe`` reports it). Returns the growing list."""
    rows: list[tuple] = []

    def tick() -> None:
        for p in range(cluster.partitions(topic)):
            hw, co = cluster.high_watermark(topic, p), committed(p)
            rows.append((sim.now, p, hw, co, max(0, hw - co)))
        if sim.now + every_s <= until:
            sim.at(every_s, tick)

    sim.at(0.0, tick)
    return rows
