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
