"""Raft leader election written on the workbench's node API: the reference of notebook 09's first stage.

Follows Figure 2 of Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm"
(USENIX ATC 2014), for elections only (no log yet):

- *All servers*: a request or response with a term T > currentTerm sets currentTerm = T and makes the
  server a follower (its vote in the new term is free).
- *Followers*: if the election timeout (uniform on [150, 300] ms, redrawn every time, §5.2) elapses
  without AppendEntries from the current leader or granting a vote, become a candidate.
- *Candidates*: increment currentTerm, vote for self, reset the election timer, send RequestVote to
  every other server; votes from a majority: become leader; AppendEntries from a leader of the
  term: become follower; timeout: a new election.
- *Leaders*: send empty AppendEntries (heartbeats) to every server every 50 ms.
- *RequestVote receiver*: grant if the term is current and votedFor is null or the candidate
  (persisted before answering: ``self.durable``).

Each server logs ``leader <term>`` when it wins, which the lab's checker reads
(:mod:`simulator.runner.raft_lab`). Client requests (the lin-kv workload) get 11
temporarily-unavailable: stage 1 serves no data.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simulator.workbench import Message, Node, RPCError
from simulator.workbench.protocol import TEMPORARILY_UNAVAILABLE

ELECTION_S = (0.150, 0.300)
HEARTBEAT_S = 0.050


class RaftElection(Node):
    """Leader election per Figure 2 (see the module docstring)."""

    double_vote = False  # the wrong variant's mistake

    def __init__(self) -> None:
        self.role = "follower"
        self.leader: str | None = None
        self.votes: set[str] = set()
        self.epoch = 0  # the election timer's generation: a reset makes older timers no-ops

    # -- durable state (Figure 2: persistent on all servers) ----------------------------------------
    @property
    def term(self) -> int:
        """currentTerm (persistent)."""
        return self.durable.get("term", 0)

    def _set_term(self, t: int) -> None:
        self.durable["term"] = t
        self.durable["voted_for"] = None

    # -- timers ------------------------------------------------------------------------------------
    def on_init(self, msg: Message) -> None:
        """Start as a follower with a fresh election timer."""
        self._reset_timer()

    def _reset_timer(self) -> None:
        self.epoch += 1
        e = self.epoch
        self.after(float(self.rng.uniform(*ELECTION_S)), lambda: self._timeout(e))

    def _timeout(self, e: int) -> None:
        if e == self.epoch and self.role != "leader":
            self._campaign()

    # -- candidate -------------------------------------------------------------------------------------
    def _campaign(self) -> None:
        self._set_term(self.term + 1)
        self.durable["voted_for"] = self.node_id
        self.role, self.leader, self.votes = "candidate", None, {self.node_id}
        self._reset_timer()
        term = self.term
        for peer in self.node_ids:
            if peer != self.node_id:
                self.rpc(peer, {"type": "request_vote", "term": term, "candidate_id": self.node_id},
                         timeout=ELECTION_S[0], callback=lambda r, p=peer: self._vote_reply(term, p, r))
        self._maybe_win(term)

    def _vote_reply(self, term: int, peer: str, reply: dict) -> None:
        if reply.get("type") == "error":
            return
        if reply["term"] > self.term:
            self._step_down(reply["term"])
            return
        if self.role == "candidate" and self.term == term and reply.get("vote_granted"):
            self.votes.add(peer)
            self._maybe_win(term)

    def _maybe_win(self, term: int) -> None:
        if self.role == "candidate" and len(self.votes) > len(self.node_ids) // 2:
            self.role, self.leader = "leader", self.node_id
            self.log(f"leader {term}")
            self._heartbeat(term)

    # -- leader ----------------------------------------------------------------------------------------
    def _heartbeat(self, term: int) -> None:
        if self.role != "leader" or self.term != term:
            return
        for peer in self.node_ids:
            if peer != self.node_id:
                self.rpc(peer, {"type": "append_entries", "term": term, "leader_id": self.node_id},
                         timeout=HEARTBEAT_S, callback=self._append_reply)
        self.after(HEARTBEAT_S, lambda: self._heartbeat(term))

    def _append_reply(self, reply: dict) -> None:
        if reply.get("type") != "error" and reply["term"] > self.term:
            self._step_down(reply["term"])

    def _step_down(self, term: int) -> None:
        if term > self.term:
            self._set_term(term)
        was_leader = self.role == "leader"
        self.role, self.votes = "follower", set()
        if was_leader:  # a leader runs no election timer: start one (Figure 2 resets it only on
            self._reset_timer()  # a current leader's AppendEntries or a granted vote)

    # -- receivers -------------------------------------------------------------------------------------
    def on_request_vote(self, msg: Message) -> None:
        """RequestVote RPC receiver (Figure 2)."""
        b = msg.body
        if b["term"] > self.term:
            self._step_down(b["term"])
        granted = False
        voted = self.durable.get("voted_for")
        if b["term"] == self.term and (voted in (None, b["candidate_id"]) or self.double_vote):
            self.durable["voted_for"] = b["candidate_id"]
            granted = True
            self._reset_timer()
        self.reply(msg, {"type": "request_vote_ok", "term": self.term, "vote_granted": granted})

    def on_append_entries(self, msg: Message) -> None:
        """AppendEntries RPC receiver, heartbeats only (stage 1)."""
        b = msg.body
        if b["term"] >= self.term:
            if b["term"] > self.term or self.role != "follower":
                self._step_down(b["term"])
            self.leader = b["leader_id"]
            self._reset_timer()  # heard from the current leader
        self.reply(msg, {"type": "append_entries_ok", "term": self.term, "success": b["term"] >= self.term})

    def handle_client(self, msg: Message) -> Any:
        """Stage 1 serves no data: every client request is temporarily unavailable."""
        raise RPCError(TEMPORARILY_UNAVAILABLE, "stage 1: elections only")

    on_read = on_write = on_cas = handle_client


class RaftElectionDoubleVote(RaftElection):
    """Wrong: grants every candidate of the term its vote (votedFor ignored) — two leaders in one term."""

    double_vote = True


class RaftElectionStarter(Node):
    """The lab's starter: never campaigns, so there is never a leader."""

    def on_request_vote(self, msg: Message) -> None:
        """Refuse every vote."""
        self.reply(msg, {"type": "request_vote_ok", "term": 0, "vote_granted": False})

    def handle_client(self, msg: Message) -> Any:
        """Nothing is served."""
        raise RPCError(TEMPORARILY_UNAVAILABLE, "no leader")

    on_read = on_write = on_cas = handle_client


class RaftKV(RaftElection):
    """Stages 2 and 3: log replication and commitment (Figure 2's AppendEntries, §5.3-5.4, the
    Figure 8 rule: a leader counts replicas only for entries of its own term), and a lin-kv service on
    the log — every read, write and cas is an entry, applied in log order; a follower forwards a
    client's request to the leader it knows. The log and votedFor are durable; the state machine is
    rebuilt from the log after a restart (lastApplied starts at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.commit_index = 0
        self.last_applied = 0
        self.kv: dict = {}
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.pending: dict[int, Message] = {}

    @property
    def entries(self) -> list:
        """The log: [term, op] per index, index 0 a sentinel (persistent)."""
        return self.durable.setdefault("log", [[0, None]])

    # -- elections with the log (§5.4.1: vote only for an up-to-date candidate) ---------------------------
    def _campaign(self) -> None:
        self._set_term(self.term + 1)
        self.durable["voted_for"] = self.node_id
        self.role, self.leader, self.votes = "candidate", None, {self.node_id}
        self._reset_timer()
        term, log = self.term, self.entries
        for peer in self.node_ids:
            if peer != self.node_id:
                self.rpc(peer, {"type": "request_vote", "term": term, "candidate_id": self.node_id,
                                "last_log_index": len(log) - 1, "last_log_term": log[-1][0]},
                         timeout=ELECTION_S[0], callback=lambda r, p=peer: self._vote_reply(term, p, r))
        self._maybe_win(term)

    def on_request_vote(self, msg: Message) -> None:
        """RequestVote receiver with the election restriction (§5.4.1)."""
        b = msg.body
        if b["term"] > self.term:
            self._step_down(b["term"])
        log = self.entries
        up_to_date = (b.get("last_log_term", 0), b.get("last_log_index", 0)) >= (log[-1][0], len(log) - 1)
        voted = self.durable.get("voted_for")
        granted = b["term"] == self.term and voted in (None, b["candidate_id"]) and up_to_date
        if granted:
            self.durable["voted_for"] = b["candidate_id"]
            self._reset_timer()
        self.reply(msg, {"type": "request_vote_ok", "term": self.term, "vote_granted": granted})

    def _maybe_win(self, term: int) -> None:
        if self.role == "candidate" and len(self.votes) > len(self.node_ids) // 2:
            n = len(self.entries)
            self.next_index = {p: n for p in self.node_ids if p != self.node_id}
            self.match_index = {p: 0 for p in self.node_ids if p != self.node_id}
            super()._maybe_win(term)

    # -- replication ----------------------------------------------------------------------------------
    def _heartbeat(self, term: int) -> None:
        if self.role != "leader" or self.term != term:
            return
        for peer in self.next_index:
            self._replicate(peer, term)
        self.after(HEARTBEAT_S, lambda: self._heartbeat(term))

    def _replicate(self, peer: str, term: int) -> None:
        log = self.entries
        nxt = self.next_index[peer]
        body = {"type": "append_entries", "term": term, "leader_id": self.node_id, "prev_log_index": nxt - 1,
                "prev_log_term": log[nxt - 1][0], "entries": log[nxt:nxt + 50], "leader_commit": self.commit_index}
        sent = len(body["entries"])
        self.rpc(peer, body, timeout=HEARTBEAT_S * 2, callback=lambda r: self._append_result(peer, term, nxt, sent, r))

    def _append_result(self, peer: str, term: int, nxt: int, sent: int, reply: dict) -> None:
        if reply.get("type") == "error":
            return
        if reply["term"] > self.term:
            self._step_down(reply["term"])
            return
        if self.role != "leader" or self.term != term:
            return
        if reply.get("success"):
            self.match_index[peer] = max(self.match_index[peer], nxt - 1 + sent)
            self.next_index[peer] = self.match_index[peer] + 1
            self._advance_commit()
        else:
            self.next_index[peer] = max(1, min(self.next_index[peer], nxt) - 1)

    def _advance_commit(self) -> None:
        log = self.entries
        for n in range(len(log) - 1, self.commit_index, -1):
            if log[n][0] != self.term:
                break  # Figure 8: only an entry of this term is committed by counting replicas
            if 1 + sum(m >= n for m in self.match_index.values()) > len(self.node_ids) // 2:
                self.commit_index = n
                self._apply()
                break

    def on_append_entries(self, msg: Message) -> None:
        """AppendEntries receiver (Figure 2, steps 1-5)."""
        b = msg.body
        if b["term"] < self.term:
            self.reply(msg, {"type": "append_entries_ok", "term": self.term, "success": False})
            return
        if b["term"] > self.term or self.role != "follower":
            self._step_down(b["term"])
        self.leader = b["leader_id"]
        self._reset_timer()
        log = self.entries
        prev = b["prev_log_index"]
        if prev >= len(log) or log[prev][0] != b["prev_log_term"]:
            self.reply(msg, {"type": "append_entries_ok", "term": self.term, "success": False})
            return
        for i, e in enumerate(b["entries"], start=prev + 1):
            if i < len(log) and log[i][0] != e[0]:
                del log[i:]  # a conflict: drop it and everything after
            if i >= len(log):
                log.append(e)
        if b["leader_commit"] > self.commit_index:
            self.commit_index = min(b["leader_commit"], prev + len(b["entries"]))
            self._apply()
        self.reply(msg, {"type": "append_entries_ok", "term": self.term, "success": True})

    # -- the state machine: lin-kv ------------------------------------------------------------------
    def _apply(self) -> None:
        log = self.entries
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            op = log[self.last_applied][1]
            result = self._execute(op) if op is not None else None
            msg = self.pending.pop(self.last_applied, None)
            if msg is not None and self.role == "leader":
                self.reply(msg, result)

    def _execute(self, op: dict) -> dict:
        f, k = op["f"], str(op["key"])
        if f == "read":
            if k not in self.kv:
                return {"type": "error", "code": 20, "text": "key does not exist"}
            return {"type": "read_ok", "value": self.kv[k]}
        if f == "write":
            self.kv[k] = op["value"]
            return {"type": "write_ok"}
        if k not in self.kv:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        if self.kv[k] != op["from"]:
            return {"type": "error", "code": 22, "text": "cas: current value differs"}
        self.kv[k] = op["to"]
        return {"type": "cas_ok"}

    def handle_client(self, msg: Message) -> Generator[Any, Any, None]:
        """A leader appends the request to its log (answered once applied); a follower forwards it."""
        b = msg.body
        if self.role == "leader":
            op = {k: b[k] for k in ("key", "value", "from", "to") if k in b}
            op["f"] = b["type"]
            self.entries.append([self.term, op])
            self.pending[len(self.entries) - 1] = msg
            for peer in self.next_index:
                self._replicate(peer, self.term)
            return
        if self.leader is None or self.leader == self.node_id:
            raise RPCError(TEMPORARILY_UNAVAILABLE, "no leader known")
        fwd = {k: v for k, v in b.items() if k != "msg_id"}
        res = yield self.rpc(self.leader, fwd, timeout=1.0)  # RPCError (an error or a timeout) goes back as it is
        self.reply(msg, {k: v for k, v in res.items() if k != "in_reply_to"})

    on_read = on_write = on_cas = handle_client


class RaftKVLocalReads(RaftKV):
    """Wrong: a server answers reads from its own state machine, without the log — stale after a
    leader change, or on a follower that lags (Raft paper §8: reads must go through the leader)."""

    def on_read(self, msg: Message) -> Generator[Any, Any, None]:
        """Answer from the local state machine."""
        k = str(msg.body["key"])
        if k not in self.kv:
            raise RPCError(20, "key does not exist")
        self.reply(msg, {"type": "read_ok", "value": self.kv[k]})
        yield from ()
