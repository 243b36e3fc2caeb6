"""Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014).

Follows Figure 2: persistent ``current_term``, ``voted_for`` and ``log`` live in
``node.durable`` (they survive crashes); ``commit_index``, ``last_applied``, the role, the
leader's ``next_index``/``match_index`` and the key-value state machine are volatile and
rebuilt after a crash by re-applying the log as the commit index is re-learned.

- Elections: randomized timeouts from ``election_timeout`` (uniform, a named stream per
  node); RequestVote with the log up-to-date check (§5.4.1).
- Replication: AppendEntries with the consistency check, truncation only on conflict, and
  ``commit_index = min(leader_commit, index of last new entry)``; a leader counts replicas
  only for entries of its own term (§5.4.2, Figure 8) and appends a no-op when elected.
- Linearizable reads (§8): ``read_index`` (the leader notes its commit index, confirms it is
  still leader with a round of heartbeats acknowledged by a majority, and answers once it has
  applied up to that index) or ``log`` (reads go through the log).
- Client requests that a deposed leader cannot finish get no reply (the client times out:
  indeterminate), because the entry may still commit; a follower answers
  ``RpcError(("not_leader", hint))`` (definite).

Election timer (Figure 2, "Rules for Servers"): a follower restarts it only when it grants a
vote, accepts AppendEntries from the current leader, or starts an election itself. Merely
seeing a higher term (a RequestVote it rejects, a reply) updates the term but does NOT restart
it: otherwise candidates that cannot win (stale logs) keep postponing the ones that can.

Options (``RaftConfig``, all off by default):

- ``fsync``: a storage model. Writes of ``current_term``/``voted_for`` and log entries take a
  sampled time on a FIFO disk per node and the reply that depends on them is sent only after
  (Figure 2: "updated on stable storage before responding to RPCs"); a candidate persists its
  vote for itself before asking for votes (or, with ``overlap_self_vote``, asks while writing
  and takes office only once the write is durable). Broadcast time is then network round trip + disk.
  The leader's own write overlaps the followers' round trip (thesis §10.2.1) and is not waited for.
- ``pre_vote`` (thesis §9.6): a node whose timer elapses (a follower, or a candidate whose
  election failed) first asks for pre-votes for ``term + 1`` without changing its term; a
  server grants one only if the log is up to date and it has not heard from a leader within
  the minimum election timeout. Only with a majority of pre-votes does it start a real
  election, so a node partitioned away and healed does not depose a healthy leader with an
  inflated term.
- ``check_quorum`` (thesis §6.2): a leader that has not heard from a majority (itself
  included) within an election timeout (the range's high end) steps down.
- ``unsafe_commit_previous_terms``: BROKEN ON PURPOSE, for ``splitbrain hunt`` demos. The
  leader commits entries of earlier terms by counting replicas, without the current-term rule
  of §5.4.2: the Figure 8 bug. A committed entry can then be overwritten by a later leader
  (``violations`` records it). Never switch it on except to watch Raft break.

All RPCs are one-way messages, so loss, duplication, reordering and partitions apply. Timers
use ``node.after`` (they die with a crash) plus a generation counter for resets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, Distribution, Message, Node, RpcError, Simulation, Uniform

from .kv import CAS, CAS_MISMATCH, NOT_LEADER, READ, WRITE

if TYPE_CHECKING:
    import pandas as pd

VOTE_REQ, VOTE_RESP, APPEND, APPEND_RESP = "raft.vote", "raft.vote_resp", "raft.append", "raft.append_resp"
PRE_VOTE_REQ, PRE_VOTE_RESP = "raft.prevote", "raft.prevote_resp"


@dataclass(frozen=True)
class RaftConfig:
    """Raft's settings (Ongaro & Ousterhout 2014), times in seconds: the election timeout range
    (uniform), heartbeat period, linearizable read mode ("read_index" or "log", §8), entries per
    AppendEntries, fsync time, and the thesis's pre-vote (§9.6) and check-quorum (§6.2)
    extensions.
    """
    election_timeout: tuple[float, float] = (0.15, 0.3)
    heartbeat_s: float = 0.05
    read_mode: str = "read_index"  # "read_index" | "log"
    max_batch: int = 64
    fsync: Distribution | float | None = None  # seconds per durable write; None: instantaneous
    pre_vote: bool = False
    check_quorum: bool = False
    # With ``fsync``: a candidate sends RequestVote while its own vote is being written and
    # becomes leader only once that write is durable (the overlap thesis §10.2.1 allows the
    # leader's own log write). Off: it writes first, then asks.
    overlap_self_vote: bool = False
    # With ``fsync``: a voter that sees a higher term in a RequestVote writes the new term
    # (voted_for cleared) durably, then writes its vote, two writes before it answers, as
    # LogCabin does (stepDown() and the grant each call updateLogMetadata(): Server/RaftConsensus.cc
    # at 0947261, lines 1175-1200 and 2133-2141). Off: one write holds both (Figure 2 is silent).
    separate_term_write: bool = False
    # Election timeouts rounded to a multiple of this (seconds): LogCabin draws whole
    # milliseconds, ``lround(uniform(lo, hi))`` (Core/Random.cc randomRange, called by
    # RaftConsensus::setElectionTimer), so 150-155 ms means {150, ..., 155} with half weight at
    # the ends, and timers often tie. None: continuous (Figure 2's "randomized").
    timeout_quantum: float | None = None
    # With ``fsync``: a new leader makes its no-op entry durable before its first AppendEntries
    # leaves: two writes (the entry's file, then the metadata file, each written and fsynced with
    # its directory: SimpleFileLog::append at LogCabin 24caf70, Sept. 2013), done while holding the
    # lock the peer threads need to send. LogCabin moved this flush off the send path on 6 Feb 2014
    # (d021532, "Overlap leader disk flush with replication": "compared to waiting for the leader
    # to fsync before sending AppendEntries requests"). Off: the leader's write overlaps (§10.2.1).
    leader_append_sync: bool = False
    # BROKEN ON PURPOSE (the Figure 8 bug, §5.4.2): commit earlier terms' entries by counting.
    unsafe_commit_previous_terms: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.election_timeout
        if not (0 < lo <= hi):
            raise ValueError(f"election_timeout must be (low, high) with 0 < low <= high, got {self.election_timeout}")
        if not (0 < self.heartbeat_s < lo):
            raise ValueError(f"heartbeat_s must be in (0, election_timeout low={lo}), got {self.heartbeat_s}")
        if self.read_mode not in ("read_index", "log"):
            raise ValueError(f"read_mode must be 'read_index' or 'log', got {self.read_mode!r}")
        if not (isinstance(self.max_batch, int) and self.max_batch >= 1):
            raise ValueError(f"max_batch must be an integer >= 1, got {self.max_batch!r}")
        if self.timeout_quantum is not None and not (isinstance(self.timeout_quantum, (int, float))
                                                     and 0 < self.timeout_quantum <= lo):
            raise ValueError(f"timeout_quantum must be None or in (0, election_timeout low={lo}] seconds, "
                             f"got {self.timeout_quantum!r}")
        if self.fsync is not None and not isinstance(self.fsync, Distribution):
            if isinstance(self.fsync, bool) or not isinstance(self.fsync, (int, float)) \
                    or not (math.isfinite(self.fsync) and self.fsync >= 0):
                raise ValueError(f"fsync must be None, a Distribution or a number of seconds >= 0, got {self.fsync!r}")


class RaftNode:
    """One Raft server on ``node``: persistent term, vote and log in ``node.durable`` (Figure 2),
    the rest volatile and rebuilt after a crash.
    """
    def __init__(self, cluster: RaftCluster, node: Node) -> None:
        self.cluster, self.node, self.sim = cluster, node, cluster.sim
        self.name = node.name
        self.peers = [n for n in cluster.names if n != node.name]
        self.majority = len(cluster.names) // 2 + 1
        lo, hi = cluster.config.election_timeout
        draw = self.sim.sampler(Uniform(lo, hi), f"raft.{cluster.name}.{node.name}.election")
        q = cluster.config.timeout_quantum
        self._timeout = draw if q is None else (lambda: math.floor(draw() / q + 0.5) * q)
        cfg = cluster.config
        self._fsync = (None if cfg.fsync is None
                       else self.sim.sampler(cfg.fsync, f"raft.{cluster.name}.{node.name}.fsync"))
        d = node.durable
        d.setdefault("term", 0)
        d.setdefault("voted_for", None)
        d.setdefault("log", [(0, None)])  # index 0: a sentinel; entries are (term, command)
        self._volatile()
        for op in (READ, WRITE, CAS):
            node.on(op, self._client)
        node.on(VOTE_REQ, self._on_vote_req)
        node.on(VOTE_RESP, self._on_vote_resp)
        node.on(APPEND, self._on_append)
        node.on(APPEND_RESP, self._on_append_resp)
        node.on(PRE_VOTE_REQ, self._on_pre_vote_req)
        node.on(PRE_VOTE_RESP, self._on_pre_vote_resp)
        node.on_crash(self._volatile)
        node.on_recover(self._reset_election_timer)
        self._reset_election_timer()

    # -- state -------------------------------------------------------------------------------
    def _volatile(self) -> None:
        self.role = "follower"
        self.leader: str | None = None
        self.commit_index = 0
        self.last_applied = 0
        self.kv: dict = {}
        self.votes: set[str] = set()
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.pending: dict[int, Message] = {}  # log index -> client request awaiting apply
        self.reads: list[tuple[Message, Any, int, int]] = []  # (msg, key, read_index, seq)
        self.seq = 0
        self.acked_seq: dict[str, int] = {}
        # kept across resets so a timer armed before a bootstrap can never match a later generation
        self._election_gen = getattr(self, "_election_gen", 0)
        self._disk_free = 0.0  # when this node's disk has finished the writes queued so far
        self._self_vote_durable = True  # a candidate's own vote is on disk (see overlap_self_vote)
        self._leader_contact = -math.inf  # last time an AppendEntries from a current leader arrived
        self._known_leader_term = -1
        self.pre_votes: set[str] = set()
        self._pre_term = -1  # the term a pre-vote round is asking for (-1: none under way)
        self._heard: set[str] = set()  # check-quorum: peers that answered in this window

    @property
    def term(self) -> int:
        """The durable ``current_term``."""
        return self.node.durable["term"]

    @property
    def log(self) -> list:
        """The durable log, entries ``(term, command)``; index 0 is a sentinel."""
        return self.node.durable["log"]

    def last(self) -> tuple[int, int]:
        """The index and term of the last log entry (for RequestVote's up-to-date check, §5.4.1).
        """
        log = self.log
        return len(log) - 1, log[-1][0]

    def _step_down(self, term: int) -> bool:
        """Adopt ``term`` if higher and become follower. Returns whether durable state changed.

        Does NOT restart the election timer (Figure 2): only granting a vote, hearing the current
        leader or standing for election does. A leader runs no election timer, so one that steps
        down starts one; a candidate keeps the one started with its candidacy."""
        d = self.node.durable
        wrote = False
        if term > d["term"]:
            d["term"] = term
            d["voted_for"] = None
            wrote = True
        if self.role != "follower":
            was_leader = self.role == "leader"
            self.role = "follower"
            self.pending.clear()  # may still commit: the clients will time out (indeterminate)
            self.reads.clear()
            if was_leader:
                self._reset_election_timer()
        return wrote

    # -- storage -------------------------------------------------------------------------------
    def _after_disk(self, wrote: bool | int, fn) -> None:
        """Run ``fn`` (send a reply) once the disk holds every write so far, plus ``wrote``
        more sampled writes (``True``: one). The disk is FIFO, so a later reply never overtakes
        the write an earlier one depends on. No storage model: at once."""
        if self._fsync is None:
            fn()
            return
        now = self.sim.now
        for _ in range(int(wrote)):
            self._disk_free = max(now, self._disk_free) + self._fsync()
        if self._disk_free > now:
            self.node.after(self._disk_free - now, fn)
        else:
            fn()

    # -- elections -----------------------------------------------------------------------------
    def _reset_election_timer(self) -> None:
        self._election_gen += 1
        gen = self._election_gen
        self.node.after(self._timeout(), lambda: gen == self._election_gen and self._election_timeout())

    def _election_timeout(self) -> None:
        if self.role == "leader":
            return
        if self.cluster.config.pre_vote and self.peers:
            self._start_pre_vote()
        else:
            self._start_election()

    def _start_pre_vote(self) -> None:
        self.leader = None
        self._pre_term = self.term + 1
        self.pre_votes = {self.name}
        li, lt = self.last()
        for p in self.peers:
            self.node.send(p, PRE_VOTE_REQ, (self._pre_term, self.name, li, lt))
        self._reset_election_timer()  # try again after another timeout if this round fails

    def _on_pre_vote_req(self, msg: Message) -> None:
        term, cand, li, lt = msg.payload
        lo = self.cluster.config.election_timeout[0]
        leader_alive = self.role == "leader" or self.sim.now - self._leader_contact < lo
        my_li, my_lt = self.last()
        grant = term > self.term and not leader_alive and (lt > my_lt or (lt == my_lt and li >= my_li))
        self.node.send(cand, PRE_VOTE_RESP, (self.term, self.name, grant, term))  # changes nothing durable

    def _on_pre_vote_resp(self, msg: Message) -> None:
        term, voter, granted, asked = msg.payload
        if term > self.term:
            self._step_down(term)
            self._pre_term = -1
            return
        # A candidate whose election failed runs pre-vote rounds too (its timer elapsed again), and
        # their grants count: otherwise, once every live server has stood in a split term, none can
        # ever raise its term again (AvailSim "zookeeper", raft.rs ``tick``/``start_new_election``:
        # a timed-out Candidate becomes ``Candidate{pre: true}``; etcd raft ``becomePreCandidate``).
        if granted and self.role != "leader" and asked == self._pre_term == self.term + 1:
            self.pre_votes.add(voter)
            if len(self.pre_votes) >= self.majority:
                self._pre_term = -1
                self._start_election()

    def _start_election(self) -> None:
        if self.role == "leader":
            return
        d = self.node.durable
        d["term"] += 1
        d["voted_for"] = self.name
        self.role = "candidate"
        self.leader = None
        self.votes = {self.name}
        self.cluster._candidacy(self.term, self.name)
        self._reset_election_timer()
        if len(self.votes) >= self.majority:  # a one-node cluster
            self._become_leader()
            return
        term = self.term
        li, lt = self.last()

        def ask() -> None:  # once our vote for ourselves is on disk
            if self.role == "candidate" and self.term == term:
                for p in self.peers:
                    self.node.send(p, VOTE_REQ, (term, self.name, li, lt))

        if self.cluster.config.overlap_self_vote and self._fsync is not None:
            ask()
            self._self_vote_durable = False

            def durable() -> None:
                if self.term == term:
                    self._self_vote_durable = True
                    if self.role == "candidate" and len(self.votes) >= self.majority:
                        self._become_leader()

            self._after_disk(True, durable)
        else:
            self._self_vote_durable = True
            self._after_disk(True, ask)

    def _on_vote_req(self, msg: Message) -> None:
        term, cand, li, lt = msg.payload
        wrote = int(term > self.term and self._step_down(term))
        my_li, my_lt = self.last()
        d = self.node.durable
        grant = (term == self.term and d["voted_for"] in (None, cand)
                 and (lt > my_lt or (lt == my_lt and li >= my_li)))
        if grant:
            if d["voted_for"] != cand:
                wrote = wrote + 1 if self.cluster.config.separate_term_write else 1
            d["voted_for"] = cand
            self._reset_election_timer()
        reply = (self.term, self.name, grant)
        self._after_disk(wrote, lambda: self.node.send(cand, VOTE_RESP, reply))

    def _on_vote_resp(self, msg: Message) -> None:
        term, voter, granted = msg.payload
        if term > self.term:
            self._step_down(term)
            return
        if self.role == "candidate" and term == self.term and granted:
            self.votes.add(voter)
            if len(self.votes) >= self.majority and self._self_vote_durable:
                self._become_leader()

    def _become_leader(self, *, noop: bool = True, first_heartbeat_in: float = 0.0) -> None:
        self.role = "leader"
        self.leader = self.name
        li, _ = self.last()
        self.next_index = {p: li + 1 for p in self.peers}
        self.match_index = {p: 0 for p in self.peers}
        self.acked_seq = {p: 0 for p in self.peers}
        if noop:
            self.log.append((self.term, None))  # a no-op commits the entries of earlier terms
        self.cluster._elected(self)
        term = self.term
        if noop and self.cluster.config.leader_append_sync and self._fsync is not None:
            self._after_disk(2, lambda: self._heartbeat(term))  # entry file, then metadata
        elif first_heartbeat_in > 0:
            self.node.after(first_heartbeat_in, lambda: self._heartbeat(term))
        else:
            self._heartbeat(term)
        if self.cluster.config.check_quorum:
            self._heard = set()
            self.node.after(self.cluster.config.election_timeout[1], lambda: self._check_quorum(term))

    def _check_quorum(self, term: int) -> None:
        if self.role != "leader" or self.term != term:
            return
        if 1 + len(self._heard) < self.majority:
            self._step_down(term)  # cannot reach a majority: stop serving as leader
            return
        self._heard = set()
        self.node.after(self.cluster.config.election_timeout[1], lambda: self._check_quorum(term))

    def _heartbeat(self, term: int) -> None:
        if self.role != "leader" or self.term != term:
            return
        self._broadcast()
        self.node.after(self.cluster.config.heartbeat_s, lambda: self._heartbeat(term))

    # -- replication ---------------------------------------------------------------------------
    def _broadcast(self) -> None:
        self.seq += 1
        for p in self.peers:
            self._send_append(p)

    def _send_append(self, peer: str) -> None:
        log = self.log
        ni = self.next_index[peer]
        prev = ni - 1
        entries = tuple(log[ni:ni + self.cluster.config.max_batch])
        self.node.send(peer, APPEND, (self.term, self.name, prev, log[prev][0], entries, self.commit_index, self.seq))

    def _on_append(self, msg: Message) -> None:
        term, leader, prev, prev_term, entries, leader_commit, seq = msg.payload
        if term < self.term:
            self.node.send(leader, APPEND_RESP, (self.term, self.name, False, 0, seq))
            return
        wrote = self._step_down(term)
        self._reset_election_timer()  # AppendEntries from the current leader
        self._leader_contact = self.sim.now
        self.leader = leader
        if self._known_leader_term != term:
            self._known_leader_term = term
            self.cluster._recognised(term, self.name)
        log = self.log
        if prev >= len(log) or log[prev][0] != prev_term:
            hint = max(min(len(log) - 1, prev - 1), 0)
            reply = (self.term, self.name, False, hint, seq)
            self._after_disk(wrote, lambda: self.node.send(leader, APPEND_RESP, reply))
            return
        idx = prev
        for entry in entries:
            idx += 1
            if idx < len(log):
                if log[idx][0] != entry[0]:
                    del log[idx:]  # a conflict: drop it and everything after (§5.3)
                    log.append(entry)
                    wrote = True
            else:
                log.append(entry)
                wrote = True
        match = prev + len(entries)
        new_commit = min(leader_commit, match)
        if new_commit > self.commit_index:  # a delayed append never moves it back
            self.commit_index = new_commit
            self._apply()
        reply = (self.term, self.name, True, match, seq)
        self._after_disk(wrote, lambda: self.node.send(leader, APPEND_RESP, reply))

    def _on_append_resp(self, msg: Message) -> None:
        term, peer, ok, match, seq = msg.payload
        if term > self.term:
            self._step_down(term)
            return
        if self.role != "leader" or term != self.term:
            return
        self._heard.add(peer)
        self.acked_seq[peer] = max(self.acked_seq[peer], seq)
        if ok:
            if match > self.match_index[peer]:
                self.match_index[peer] = match
            self.next_index[peer] = max(self.next_index[peer], match + 1)
            self._advance_commit()
            if self.next_index[peer] < len(self.log):
                self._send_append(peer)  # more to ship
        else:
            self.next_index[peer] = max(1, min(self.next_index[peer] - 1, match + 1))
            self._send_append(peer)
        self._serve_reads()

    def _advance_commit(self) -> None:
        log = self.log
        for n in range(len(log) - 1, self.commit_index, -1):
            if log[n][0] != self.term and not self.cluster.config.unsafe_commit_previous_terms:
                break  # only entries of the current term are committed by counting (Figure 8)
            if 1 + sum(1 for m in self.match_index.values() if m >= n) >= self.majority:
                self.commit_index = n
                self.cluster._committed(self, n)
                self._apply()
                break

    def _apply(self) -> None:
        log = self.log
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            i = self.last_applied
            cmd = log[i][1]
            result = self._execute(cmd)
            self.cluster._applied(self.name, i, log[i])
            msg = self.pending.pop(i, None)
            if msg is not None and self.role == "leader":
                if result is _MISMATCH:
                    self.node.reply(msg, CAS_MISMATCH, "error")
                else:
                    self.node.reply(msg, result)
        self._serve_reads()

    def _execute(self, cmd) -> Any:
        if cmd is None:
            return None
        f, key, args = cmd
        kv = self.kv
        if f == WRITE:
            kv[key] = args[0]
            return True
        if f == CAS:
            if kv.get(key) != args[0]:
                return _MISMATCH
            kv[key] = args[1]
            return True
        return kv.get(key)  # a read through the log

    # -- clients -------------------------------------------------------------------------------
    def _client(self, msg: Message):
        if self.role != "leader":
            raise RpcError((NOT_LEADER, self.leader))
        key, *args = msg.payload
        if msg.op == READ and self.cluster.config.read_mode == "read_index":
            self._broadcast()  # a fresh heartbeat round confirms leadership
            self.reads.append((msg, key, None, self.seq))
            self._serve_reads()
            return NO_REPLY
        self.log.append((self.term, (msg.op, key, tuple(args))))
        self.pending[len(self.log) - 1] = msg
        for p in self.peers:
            if self.next_index[p] == len(self.log) - 1:
                self._send_append(p)
        if not self.peers:
            self._advance_commit()
        return NO_REPLY

    def _serve_reads(self) -> None:
        if not self.reads or self.role != "leader":
            return
        # Safe only once an entry of this term has committed (the no-op): then commit_index is
        # at least every committed entry (§8).
        if self.log[self.commit_index][0] != self.term:
            return
        keep = []
        for msg, key, read_index, seq in self.reads:
            if read_index is None:
                read_index = self.commit_index  # the read index: fixed once this term has committed
            acks = 1 + sum(1 for s in self.acked_seq.values() if s >= seq)
            if acks >= self.majority and self.last_applied >= read_index:
                self.node.reply(msg, self.kv.get(key))
            else:
                keep.append((msg, key, read_index, seq))
        self.reads = keep


_MISMATCH = object()


class RaftCluster:
    """``n`` Raft replicas (nodes ``{name}{i}``) serving the key-value store contract."""

    def __init__(self, sim: Simulation, n: int = 5, *, config: RaftConfig | None = None, name: str = "raft",
                 names: Sequence[str] | None = None, **kwargs: Any) -> None:
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if names is not None and len(names) != n:
            raise ValueError(f"names must name the {n} nodes, got {len(names)}: {list(names)}")
        self.sim, self.name = sim, name
        self.config = config or RaftConfig(**kwargs)
        # the nodes: {name}0..{name}{n-1}, or ``names`` (e.g. the workbench's n1..nN)
        self.names = [f"{name}{i}" for i in range(n)] if names is None else list(names)
        self.nodes = [sim.node(x) for x in self.names]
        self.elections: list[tuple[float, int, str]] = []  # (time, term, leader)
        self.candidacies: dict[int, float] = {}  # term -> first time a candidate asked for it
        self.candidates: list[tuple[float, int, str]] = []  # (time, term, node): every candidacy
        self.recognitions: dict[int, dict[str, float]] = {}  # term -> follower -> first AppendEntries heard
        self.committed: dict[int, tuple] = {}  # index -> entry, as known committed by a leader
        self.commit_times: dict[int, float] = {}  # index -> first time a leader knew it committed
        self.commit_terms: dict[int, int] = {}  # index -> term of the first leader that knew it committed
        self.applied: dict[int, tuple] = {}  # index -> entry applied by the first node to apply it
        self.violations: list[str] = []
        self.replicas = {nd.name: RaftNode(self, nd) for nd in self.nodes}

    def bootstrap(self, leader: str, *, entries: int = 1, stale: Iterable[str] = (), missing: int = 1,
                  lengths: Mapping[str, int] | None = None) -> None:
        """Start (at time 0, before running) as if ``leader`` had won term 1 and replicated
        ``entries`` writes to every follower except those in ``stale``, which lack the last
        ``missing`` of them (so they cannot win an election against the others: §5.4.1).
        ``lengths`` instead gives each follower named in it the number of entries it holds
        (0..``entries``; the leader holds all), e.g. every log a different length (thesis §9.5,
        AvailSim ``--logs diff``: ``set_log_lengths`` in sim.rs); then the entries a majority
        holds count as committed and a node knows ``min(its length, that)``.

        The state is the one just after a heartbeat reached every follower: all election
        timers start now, and the leader's next heartbeat is due in ``heartbeat_s``. Entries
        held by a majority count as committed (the leader commits them at its next heartbeat's
        replies); followers know ``entries - missing`` as committed."""
        stale = list(stale)
        if self.sim.now != 0 or self.elections:
            raise ValueError("bootstrap must be called on a fresh cluster, before the simulation runs")
        if leader not in self.replicas:
            raise ValueError(f"bootstrap: leader {leader!r} is not one of {self.names}")
        if lengths is not None:
            lengths = dict(lengths)
            bad = [x for x in lengths if x not in self.replicas or x == leader]
            if stale or bad:
                raise ValueError(f"bootstrap: lengths must name followers of {self.names} other than the leader, "
                                 f"without stale; got lengths={lengths}, stale={stale}")
            if not isinstance(entries, int) or entries < 1 or \
                    any(not isinstance(k, int) or not 0 <= k <= entries for k in lengths.values()):
                raise ValueError(f"bootstrap: lengths must be integers in 0..entries={entries}, got {lengths}")
            held = {x: lengths.get(x, entries) for x in self.names}
            majority_holds = sorted(held.values(), reverse=True)[len(self.names) // 2]
            self._bootstrap(leader, entries, held, {x: min(k, majority_holds) for x, k in held.items()})
            return
        bad = [x for x in stale if x not in self.replicas or x == leader]
        if bad:
            raise ValueError(f"bootstrap: stale must name followers of {self.names} other than the leader, got {bad}")
        if not (isinstance(entries, int) and entries >= 1 and isinstance(missing, int) and 1 <= missing <= entries):
            raise ValueError(f"bootstrap: need integers 1 <= missing <= entries, got entries={entries}, "
                             f"missing={missing}")
        up_to_date = len(self.names) - len(stale)
        if stale and up_to_date < len(self.names) // 2 + 1:
            raise ValueError(f"bootstrap: {len(stale)} stale followers leave the full log on {up_to_date} of "
                             f"{len(self.names)} nodes, not a majority")
        known = entries - missing if stale else entries
        self._bootstrap(leader, entries, {x: entries - missing if x in stale else entries for x in self.names},
                        dict.fromkeys(self.names, known))

    def _bootstrap(self, leader: str, entries: int, held: dict[str, int], known: dict[str, int]) -> None:
        full = [(0, None)] + [(1, (WRITE, "k", (i,))) for i in range(1, entries + 1)]
        for name, r in self.replicas.items():
            d = r.node.durable
            d["term"], d["voted_for"] = 1, leader
            d["log"] = list(full[: held[name] + 1])
            r._volatile()
            r.commit_index = known[name]
            r._apply()
            r._pre_term = -1
            if name != leader:
                r.leader, r._known_leader_term, r._leader_contact = leader, 1, 0.0
                r._reset_election_timer()
        self.candidacies[1] = 0.0
        ld = self.replicas[leader]
        ld._become_leader(noop=False, first_heartbeat_in=self.config.heartbeat_s)
        for p in ld.peers:
            ld.match_index[p] = len(self.replicas[p].log) - 1
            ld.next_index[p] = ld.match_index[p] + 1

    # -- the store contract -----------------------------------------------------------------------
    def route(self, client_name: str) -> list[str]:
        """The replicas in the order a client should try them: the current leader first, if any."""
        lead = self.leader()
        return ([lead] if lead else []) + [x for x in self.names if x != lead]

    def leader(self) -> str | None:
        """The live leader of the highest term, if any (what an oracle would say)."""
        best = None
        for r in self.replicas.values():
            if r.role == "leader" and r.node.up and (best is None or r.term > best.term):
                best = r
        return best.name if best else None

    # -- instrumentation (safety checks) ----------------------------------------------------------
    def _candidacy(self, term: int, who: str) -> None:
        self.candidacies.setdefault(term, self.sim.now)
        self.candidates.append((self.sim.now, term, who))

    def _recognised(self, term: int, follower: str) -> None:
        self.recognitions.setdefault(term, {}).setdefault(follower, self.sim.now)

    def _elected(self, r: RaftNode) -> None:
        for _t, term, who in self.elections:
            if term == r.term and who != r.name:
                self.violations.append(f"two leaders in term {term}: {who} and {r.name}")
        self.elections.append((self.sim.now, r.term, r.name))
        log = r.log
        for i, entry in self.committed.items():
            # Leader Completeness (§5.4) binds leaders of LATER terms only: a candidate paused with
            # its votes held can take office in an older term after a newer leader committed more.
            if self.commit_terms[i] < r.term and (i >= len(log) or log[i] != entry):
                self.violations.append(f"leader {r.name} (term {r.term}) lacks committed entry {i}")

    def _committed(self, r: RaftNode, upto: int) -> None:
        for i in range(1, upto + 1):
            e = r.log[i]
            old = self.committed.setdefault(i, e)
            self.commit_times.setdefault(i, self.sim.now)
            self.commit_terms.setdefault(i, r.term)
            if old != e:
                self.violations.append(f"index {i} committed as {old} and as {e}")

    def _applied(self, node: str, i: int, entry: tuple) -> None:
        old = self.applied.setdefault(i, entry)
        if old != entry:
            self.violations.append(f"{node} applied {entry} at index {i}, another node applied {old}")

    def elections_frame(self) -> pd.DataFrame:
        """``elections`` as a DataFrame: time (s), term, leader."""
        import pandas as pd

        return pd.DataFrame(self.elections, columns=["time", "term", "leader"])

    def lost_acked_writes(self, history: Any) -> int:
        """Writes a ``simulator.history`` history saw acknowledged whose entry is not in the committed
        log (Raft's State Machine Safety: it must lose none)."""
        committed = {e[1][2][0] for e in self.committed.values() if e[1] is not None and e[1][0] == WRITE}
        return sum(1 for i, t in enumerate(history.type)
                   if t == "ok" and history.f[i] == "write" and history.value[i] not in committed)

    def split_votes(self, until: float | None = None) -> int:
        """Terms in which some node stood for election but nobody won."""
        won = {t for _, t, _ in self.elections}
        return sum(1 for t, at in self.candidacies.items() if t not in won and (until is None or at < until))
