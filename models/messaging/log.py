"""A replicated, partitioned log with Kafka's semantics: topics, partitions, leaders, ISR, acks.

Sources: Apache Kafka documentation, "Design: Replication" (leader and followers, the in-sync
replica set, "a message is considered committed when all in sync replicas have applied it",
unclean leader election), the producer configs ``acks`` (0, 1, all), ``enable.idempotence``
(producer id + per-partition sequence numbers let the leader drop retried duplicates),
``linger.ms``/``batch.size``, the topic configs ``min.insync.replicas`` (acks=all is refused
with NOT_ENOUGH_REPLICAS below it) and ``replica.lag.time.max.ms`` (a follower that has not
caught up for this long leaves the ISR), and KIP-101 (a follower truncates its log to the
leader's end offset for its last epoch before fetching, so a deposed leader's unreplicated
suffix is discarded).

Model. ``LogCluster`` makes ``brokers`` nodes; partition ``p`` of a topic lives on
``replication_factor`` brokers (round robin), its leader first. The log of each replica is
durable (``node.durable``); high watermarks and ISR bookkeeping are volatile. Followers fetch
from the leader every ``replica_fetch_interval_s``; the leader advances the high watermark to
the smallest log end offset in the ISR and only then answers acks=all produces; consumers read
below the high watermark. The controller (KRaft's quorum, assumed available and not simulated
as nodes) holds each partition's leader, epoch and ISR; it notices a crashed broker after
``broker_session_timeout_s``, drops it from ISRs (never emptying one) and elects the first
live ISR member as leader (clean election; ``unclean_leader_election`` allows any live
replica). It learns of crashes, not of network partitions: a partitioned leader keeps leading
and its followers fall out of its ISR.

Why acks=1 loses acknowledged messages: the leader answers as soon as it appended; if it
crashes before a follower fetched, the new leader (an ISR member, still in the ISR because
``replica.lag.time.max.ms`` has not passed) lacks the suffix, and the old leader truncates it
when it comes back. acks=all answers only once every ISR member has it, and with
``min_insync_replicas >= 2`` at least one other replica holds every acknowledged message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from operator import lt
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, RpcError
from simulator.core import name_key

from .logstore import Records, ReplicaLog

if TYPE_CHECKING:
    from simulator import Message, Node, Simulation

PRODUCE, PRODUCE_ONEWAY, REPLICA_FETCH, FETCH = "kafka.produce", "kafka.produce0", "kafka.replica_fetch", "kafka.fetch"
NOT_LEADER, NOT_ENOUGH_REPLICAS = "not_leader", "not_enough_replicas"


def _pos(name: str, v: Any, *, integer: bool = False, lo: float = 0.0) -> None:
    if integer:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo
    else:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > lo
    if not ok:
        raise ValueError(f"{name} must be {'an integer >= ' + str(int(lo)) if integer else 'a number > ' + str(lo)}, "
                         f"got {v!r}")


@dataclass(frozen=True)
class TopicConfig:
    """A topic's settings, Kafka's names: ``partitions``, ``replication_factor``,
    ``min.insync.replicas`` (default 1, acks=all is refused below it) and
    ``unclean.leader.election.enable``.
    """
    partitions: int = 12
    replication_factor: int = 3
    min_insync_replicas: int = 1  # Kafka's default
    unclean_leader_election: bool = False

    def __post_init__(self) -> None:
        _pos("partitions", self.partitions, integer=True, lo=1)
        _pos("replication_factor", self.replication_factor, integer=True, lo=1)
        _pos("min_insync_replicas", self.min_insync_replicas, integer=True, lo=1)
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas ({self.min_insync_replicas}) must be <= replication_factor "
                             f"({self.replication_factor})")


@dataclass(frozen=True)
class LogConfig:
    """Broker-side timings (Kafka's defaults where they exist, else noted)."""

    replica_fetch_wait_max_s: float = 0.5  # replica.fetch.wait.max.ms: a follower's fetch is a long poll
    replica_fetch_backoff_s: float = 0.1  # after a failed fetch (Kafka: replica.fetch.backoff.ms = 1 s)
    replica_lag_time_max_s: float = 30.0  # replica.lag.time.max.ms = 30 s
    broker_session_timeout_s: float = 9.0  # KRaft broker.session.timeout.ms = 9 s
    max_fetch_records: int = 1000

    def __post_init__(self) -> None:
        _pos("replica_fetch_wait_max_s", self.replica_fetch_wait_max_s)
        _pos("replica_fetch_backoff_s", self.replica_fetch_backoff_s)
        _pos("replica_lag_time_max_s", self.replica_lag_time_max_s)
        _pos("broker_session_timeout_s", self.broker_session_timeout_s)
        _pos("max_fetch_records", self.max_fetch_records, integer=True, lo=1)


class PartitionMeta:
    """The controller's record of one partition: replicas, leader, leader epoch, ISR."""

    __slots__ = ("topic", "index", "replicas", "leader", "epoch", "isr", "cfg")

    def __init__(self, topic: str, index: int, replicas: list[str], cfg: TopicConfig) -> None:
        self.topic, self.index, self.replicas, self.cfg = topic, index, replicas, cfg
        self.leader: str | None = replicas[0]
        self.epoch = 0
        self.isr = set(replicas)


class _Replica:
    """One broker's copy of one partition. ``log`` reads as entries ``(epoch, msg_id, key, pid, seq,
    sent_at)``; it is stored as runs over the partition's shared columnar records (logstore.py)."""

    __slots__ = ("meta", "node", "log", "hw", "follower_leo", "caught_up_at", "pending", "pid_seq", "_gen", "parked")

    def __init__(self, meta: PartitionMeta, node: Node, store: Records) -> None:
        self.meta, self.node = meta, node
        self.log: ReplicaLog = node.durable.setdefault(("kafka.log", meta.topic, meta.index), ReplicaLog(store))
        self._gen = 0
        self.volatile_reset()

    def volatile_reset(self) -> None:
        self.hw = 0
        self.follower_leo: dict[str, int] = {}
        self.caught_up_at: dict[str, float] = {}
        self.pending: list[tuple[int, Message, int]] = []  # (end offset, produce request, base offset)
        self.parked: list[list] = []  # long-polling follower fetches: [request, open]
        self._gen += 1
        self.pid_seq: dict[Any, int] = self.log.last_seqs()

    def truncate(self, offset: int) -> None:
        if offset < len(self.log):
            self.log.truncate(offset)
            self.hw = min(self.hw, offset)
            self.pid_seq = self.log.last_seqs()

    def epoch_end(self, epoch: int) -> int:
        """KIP-101 OffsetsForLeaderEpoch: first offset with an epoch > ``epoch`` (else the log end)."""
        log = self.log
        lo, hi = 0, len(log)
        while lo < hi:  # epochs are non-decreasing along a log
            mid = (lo + hi) // 2
            if log.epoch_at(mid) <= epoch:
                lo = mid + 1
            else:
                hi = mid
        return lo


class LogCluster:
    """Brokers, topics and the controller (see the module docstring)."""

    def __init__(self, sim: Simulation, name: str = "kafka", *, brokers: int = 3,
                 topics: dict[str, TopicConfig] | None = None, config: LogConfig | None = None) -> None:
        _pos("brokers", brokers, integer=True, lo=1)
        topics = topics or {"events": TopicConfig()}
        for t, cfg in topics.items():
            if not isinstance(cfg, TopicConfig):
                raise ValueError(f"topics[{t!r}] must be a TopicConfig, got {cfg!r}")
            if cfg.replication_factor > brokers:
                raise ValueError(f"topics[{t!r}].replication_factor ({cfg.replication_factor}) exceeds brokers "
                                 f"({brokers})")
        self.sim, self.name = sim, name
        self.config = config or LogConfig()
        self.nodes = [sim.nodes.get(f"{name}-b{i}") or sim.node(f"{name}-b{i}") for i in range(brokers)]
        self.names = [n.name for n in self.nodes]
        self.topics = dict(topics)
        self.meta: dict[tuple[str, int], PartitionMeta] = {}
        self.replicas: dict[str, dict[tuple[str, int], _Replica]] = {n: {} for n in self.names}
        for t, cfg in topics.items():
            for p in range(cfg.partitions):
                reps = [self.names[(p + j) % brokers] for j in range(cfg.replication_factor)]
                m = self.meta[(t, p)] = PartitionMeta(t, p, reps, cfg)
                # one record store per partition, shared by its replicas (a node reused from an
                # earlier cluster of this name keeps its durable log, and so that log's store)
                old = [sim.nodes[r].durable.get(("kafka.log", t, p)) for r in reps]
                store = next((lg.store for lg in old if lg is not None), None) or Records()
                for r in reps:
                    self.replicas[r][(t, p)] = _Replica(m, sim.nodes[r], store)
        self.elections = 0
        for node in self.nodes:
            node.on(PRODUCE, lambda msg, b=node.name: self._on_produce(b, msg))
            node.on(PRODUCE_ONEWAY, lambda msg, b=node.name: self._on_produce(b, msg))
            node.on(REPLICA_FETCH, lambda msg, b=node.name: self._on_replica_fetch(b, msg))
            node.on(FETCH, lambda msg, b=node.name: self._on_fetch(b, msg))
            node.on_crash(lambda b=node.name: self._crashed(b))
            node.on_recover(lambda b=node.name: self._recovered(b))
            self._start_broker(node.name)

    # -- metadata (what a client's metadata request returns) ----------------------------------
    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has."""
        return self.topics[topic].partitions

    def partition_for(self, topic: str, key: Any) -> int:
        """Key -> partition by a stable hash (Kafka: murmur2(key) mod partitions)."""
        return name_key(repr(key)) % self.topics[topic].partitions

    def leader(self, topic: str, partition: int) -> str | None:
        """The broker that leads ``partition`` of ``topic`` according to the controller, or None
        while no live replica can lead.
        """
        return self.meta[(topic, partition)].leader

    def high_watermark(self, topic: str, partition: int) -> int:
        """The leader's high watermark for ``partition`` of ``topic``: the offset below which
        records are committed and readable (0 while it has no leader).
        """
        m = self.meta[(topic, partition)]
        return self.replicas[m.leader][(topic, partition)].hw if m.leader else 0

    def log_of(self, broker: str, topic: str, partition: int) -> ReplicaLog:
        """``broker``'s replica of ``partition`` of ``topic`` as it stands: a live, read-only
        sequence of entries ``(epoch, msg_id, key, pid, seq, sent_at)`` (``list(...)`` to keep one).
        """
        return self.replicas[broker][(topic, partition)].log

    # -- leader side --------------------------------------------------------------------------
    def _leading(self, b: str, key: tuple[str, int]) -> _Replica:
        m = self.meta.get(key)
        if m is None:
            raise RpcError(("unknown_partition", key))
        if m.leader != b:
            raise RpcError((NOT_LEADER, m.leader))
        return self.replicas[b][key]

    def _on_produce(self, b: str, msg: Message):
        """Payload ``(topic, partition, acks, pid, records)``; records ``(msg_id, key, seq, sent_at)``."""
        topic, part, acks, pid, records = msg.payload
        r = self._leading(b, (topic, part))
        m = r.meta
        if acks == "all" and len(m.isr) < m.cfg.min_insync_replicas:
            raise RpcError(NOT_ENOUGH_REPLICAS)
        log = r.log
        base = len(log)
        if records:
            msgs, keys, seqs, times = zip(*records)
            if pid is not None:
                last = r.pid_seq.get(pid, -1)
                if not (seqs[0] > last and all(map(lt, seqs, islice(seqs, 1, None)))):
                    # a retried batch, or part of one: skip what is already appended (idempotent producer)
                    keep = []
                    for i, seq in enumerate(seqs):
                        if seq > last:
                            keep.append(i)
                            last = seq
                    msgs, keys, seqs, times = ([c[i] for i in keep] for c in (msgs, keys, seqs, times))
                if seqs:
                    r.pid_seq[pid] = seqs[-1]
            log.add(*log.store.append(m.epoch, pid, msgs, keys, seqs, times))
        end = len(log)
        if end > base and r.parked:
            parked, r.parked = r.parked, []
            for w in parked:
                if w[1]:
                    w[1] = False
                    r.node.reply(w[0], self._replica_fetch(r, w[0]))
        self._advance_hw(r)
        if acks != "all":
            return base
        if r.hw >= end:
            return base
        r.pending.append((end, msg, base))
        return NO_REPLY

    def _advance_hw(self, r: _Replica) -> None:
        m = r.meta
        leo = len(r.log)
        hw = min([leo] + [r.follower_leo.get(f, 0) for f in m.isr if f != m.leader])
        if hw > r.hw:
            r.hw = hw
            if r.pending:
                keep = []
                for end, req, base in r.pending:
                    if end <= hw:
                        r.node.reply(req, base)
                    else:
                        keep.append((end, req, base))
                r.pending = keep

    def _on_replica_fetch(self, b: str, msg: Message):
        """Payload ``(topic, partition, follower, fetch_offset, last_epoch)``."""
        r = self._leading(b, msg.payload[:2])
        out = self._replica_fetch(r, msg)
        if out[0] == "ok" and not out[1]:  # nothing new: hold the fetch until an append or the wait max
            w = [msg, True]
            r.parked.append(w)
            r.node.after(self.config.replica_fetch_wait_max_s, lambda: self._unpark(r, w))
            return NO_REPLY
        return out

    def _unpark(self, r: _Replica, w: list) -> None:
        if w[1]:
            w[1] = False
            r.node.reply(w[0], ("ok", [], r.hw))

    def _replica_fetch(self, r: _Replica, msg: Message) -> tuple:
        topic, part, follower, offset, last_epoch = msg.payload
        leo = len(r.log)
        if offset > 0 and (offset > leo or r.log.epoch_at(offset - 1) != last_epoch):
            return ("truncate", min(offset, r.epoch_end(last_epoch)), r.hw)
        m, now = r.meta, self.sim.now
        r.follower_leo[follower] = offset
        if offset >= leo:
            r.caught_up_at[follower] = now
        if follower not in m.isr and offset >= r.hw:
            m.isr.add(follower)  # caught up to the high watermark: back in sync (via the controller)
        self._advance_hw(r)
        # store ranges, not records: the follower's log becomes runs over the same store
        return ("ok", r.log.spans(offset, offset + self.config.max_fetch_records), r.hw)

    def _on_fetch(self, b: str, msg: Message):
        """Consumer fetch ``(topic, partition, offset, max_records)`` -> committed records below the HW."""
        topic, part, offset, max_n = msg.payload
        r = self._leading(b, (topic, part))
        return r.log.rows(offset, min(r.hw, offset + max_n))

    def _isr_check(self, b: str) -> None:
        lag_max, now = self.config.replica_lag_time_max_s, self.sim.now
        for r in self.replicas[b].values():
            m = r.meta
            if m.leader != b:
                continue
            for f in list(m.isr):
                if f != b and now - r.caught_up_at.get(f, r.caught_up_at.setdefault(f, now)) > lag_max:
                    m.isr.discard(f)
            self._advance_hw(r)

    # -- follower side ---------------------------------------------------------------------------
    def _start_broker(self, b: str) -> None:
        node = self.sim.nodes[b]
        for r in self.replicas[b].values():
            self._fetch_loop(b, r, r._gen)
        tick = self.config.replica_lag_time_max_s / 4

        def isr_tick() -> None:
            self._isr_check(b)
            node.after(tick, isr_tick)

        node.after(tick, isr_tick)

    def _fetch_loop(self, b: str, r: _Replica, gen: int) -> None:
        node, m, cfg = r.node, r.meta, self.config
        if gen != r._gen or not node.up:
            return
        leader = m.leader
        if leader is None or leader == b:
            node.after(cfg.replica_fetch_backoff_s, lambda: self._fetch_loop(b, r, gen))
            return
        offset = len(r.log)
        last_epoch = r.log.epoch_at(-1) if len(r.log) else -1

        def got(outcome: str, value) -> None:
            if gen != r._gen:
                return
            if outcome == "ok":
                kind, data, hw = value
                if kind == "truncate":
                    r.truncate(data)
                    self._fetch_loop(b, r, gen)
                    return
                for lo, hi in data:
                    r.log.add(lo, hi)
                    r.log.store.last_seqs(lo, hi, r.pid_seq)
                r.hw = min(hw, len(r.log))
                self._fetch_loop(b, r, gen)
                return
            node.after(cfg.replica_fetch_backoff_s, lambda: self._fetch_loop(b, r, gen))

        node.call(leader, REPLICA_FETCH, (m.topic, m.index, b, offset, last_epoch), cfg.replica_fetch_wait_max_s
                  + 1.0, got)

    # -- controller ----------------------------------------------------------------------------
    def _crashed(self, b: str) -> None:
        for r in self.replicas[b].values():
            r.volatile_reset()
        crashes = self.sim.nodes[b].crashes
        self.sim.at(self.config.broker_session_timeout_s, lambda: self._session_expired(b, crashes))

    def _session_expired(self, b: str, crashes: int) -> None:
        node = self.sim.nodes[b]
        if node.up or node.crashes != crashes:
            return
        for m in self.meta.values():
            if b not in m.replicas:
                continue
            if len(m.isr) > 1:
                m.isr.discard(b)
            if m.leader == b:
                self._elect(m)

    def _elect(self, m: PartitionMeta) -> None:
        live = [r for r in m.replicas if self.sim.nodes[r].up]
        cands = [r for r in live if r in m.isr]
        if not cands and m.cfg.unclean_leader_election:
            cands = live
        m.epoch += 1
        self.elections += 1
        m.leader = cands[0] if cands else None
        if m.leader is None:
            return
        if m.leader not in m.isr:
            m.isr = {m.leader}
        r = self.replicas[m.leader][(m.topic, m.index)]
        r.follower_leo.clear()
        now = self.sim.now
        r.caught_up_at = {f: now for f in m.replicas}
        self._advance_hw(r)

    def _recovered(self, b: str) -> None:
        for m in self.meta.values():
            if b in m.replicas and (m.leader is None or m.leader == b) and b in m.isr:
                m.leader = None
                self._elect(m)  # an offline partition comes back with its last ISR member
        self._start_broker(b)
