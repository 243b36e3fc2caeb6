"""Two-phase commit with presumed abort, and cooperative termination.

Gray, "Notes on Data Base Operating Systems" (1978) and Gray & Lamport, "Consensus on Transaction
Commit" (2006) for the protocol; Mohan, Lindsay & Obermarck, "Transaction Management in the R*
Distributed Database Management System" (TODS 1986) for *presumed abort*; Bernstein, Hadzilacos &
Goodman, "Concurrency Control and Recovery in Database Systems" (1987), ch. 7, for the
*cooperative termination protocol*.

:class:`Coordinator` (the order service) answers ``order.place`` by running one transaction over
the participants:

1. ``2pc.prepare (txid, order, coordinator, peers)`` to every participant. A participant runs
   the step in a local transaction, takes its locks (no-wait: a conflict votes no), persists the
   write set and its vote (``LocalStore.prepare``) and votes ``yes``; or votes ``no`` and aborts.
2. All ``yes``: the coordinator force-writes a *commit* record to its durable log, answers the
   client ``ok`` and sends ``2pc.commit`` to each participant until it acknowledges; when all have,
   it forgets the transaction (the end record). Any ``no`` or a prepare timeout: it aborts,
   answers ``error`` and sends ``2pc.abort`` — without logging anything and without waiting for
   acknowledgments: **presumed abort**, no record means abort.

Failure-free commit costs 4 messages per participant (prepare, vote, commit, ack).

A participant that voted yes is **in doubt**: it may neither commit nor abort alone, and keeps its
locks — across its own crashes too (the prepared record is durable). Every ``inquiry_s`` it asks
the coordinator (``2pc.status``: ``commit`` if a commit record exists, ``unknown`` while the
transaction is still voting, else ``abort`` — presumed). If the coordinator is down or cut off, the
participant is **blocked**. With ``cooperative=True`` it also asks the other participants
(``2pc.peer_status``): a peer that knows the decision tells it; a peer that never voted promises to
vote no and answers ``abort``; if every peer is itself in doubt the transaction stays blocked.

Facts (outside the simulated world): per participant ``votes[txid] = [voted_at, resolved_at,
outcome]``; each store's ``lock_holds``; ``coordinator.records``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, Message, RpcError

from .local import LocalStore, LocalTxn, LockConflict
from .saga import PLACE
from .shop import BusinessError, Participant

if TYPE_CHECKING:
    from simulator import Simulation

PREPARE, COMMIT, ABORT = "2pc.prepare", "2pc.commit", "2pc.abort"
STATUS, PEER_STATUS = "2pc.status", "2pc.peer_status"


@dataclass(frozen=True)
class TwoPCConfig:
    """prepare_timeout_s: how long the coordinator waits for a vote (then aborts); decision_retry_s:
    how often it re-sends a commit until acknowledged; inquiry_s: how often an in-doubt
    participant asks for the decision; cooperative: also ask the other participants."""

    prepare_timeout_s: float = 0.5
    decision_retry_s: float = 0.2
    inquiry_s: float = 0.5
    cooperative: bool = False

    def __post_init__(self) -> None:
        for n in ("prepare_timeout_s", "decision_retry_s", "inquiry_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number of seconds > 0, got {v!r}")
        if not isinstance(self.cooperative, bool):
            raise ValueError(f"cooperative must be True or False, got {self.cooperative!r}")


class TwoPCParticipant:
    """Adds the 2PC handlers to a shop :class:`Participant` (same node, store and resource)."""

    def __init__(self, part: Participant, config: TwoPCConfig) -> None:
        self.part, self.config = part, config
        self.node, self.store, self.resource = part.node, part.store, part.resource
        self.votes: dict[Any, list] = {}  # txid -> [voted_at, resolved_at, outcome]
        n = self.node
        n.on(PREPARE, self._on_prepare)
        n.on(COMMIT, self._on_commit)
        n.on(ABORT, self._on_abort)
        n.on(PEER_STATUS, self._on_peer_status)
        n.on_recover(self._recovered)

    @property
    def decided(self) -> dict:
        """The durable outcome tombstones, txid -> "commit" | "abort", that answer peers' status
        queries.
        """
        return self.node.durable.setdefault("2pc.decided", {})  # txid -> "commit" | "abort" (tombstones)

    @property
    def meta(self) -> dict:
        """The durable prepare records, txid -> (coordinator, peers, order): who to ask while in
        doubt.
        """
        return self.node.durable.setdefault("2pc.meta", {})  # txid -> (coordinator, peers, order)

    def _on_prepare(self, msg: Message) -> Any:
        txid, order, coord, peers = msg.payload

        def vote() -> str:
            if txid in self.store.prepared or self.decided.get(txid) == "commit":
                return "yes"
            if self.decided.get(txid) == "abort":
                return "no"
            txn: LocalTxn = self.store.begin(txid)
            try:
                self.resource.apply(txn, order)
            except (BusinessError, LockConflict):
                txn.abort()
                self.decided[txid] = "abort"
                return "no"
            self.store.prepare(txn)  # write set, locks and the vote are durable from here on
            self.meta[txid] = (coord, tuple(peers), order)
            self.votes[txid] = [self.part.shop.sim.now, math.nan, "in_doubt"]
            self.node.after(self.config.inquiry_s, lambda: self._inquire(txid))
            return "yes"

        return self.part.later(msg, vote)

    def _resolve(self, txid: Any, outcome: str) -> None:
        if txid not in self.store.prepared:
            self.decided.setdefault(txid, outcome)
            return
        if outcome == "commit":
            self.store.commit_prepared(txid)
            self.part.effect(self.meta[txid][2].id, +1)
        else:
            self.store.abort_prepared(txid)
        self.decided[txid] = outcome
        self.meta.pop(txid, None)
        v = self.votes.get(txid)
        if v is not None:
            v[1], v[2] = self.part.shop.sim.now, outcome

    def _on_commit(self, msg: Message) -> str:
        self._resolve(msg.payload, "commit")
        return "ack"

    def _on_abort(self, msg: Message) -> None:
        self._resolve(msg.payload, "abort")

    def _on_peer_status(self, msg: Message) -> str:
        txid = msg.payload
        d = self.decided.get(txid)
        if d is not None:
            return d
        if txid in self.store.prepared:
            return "prepared"
        self.decided[txid] = "abort"  # never voted: it promises to vote no, so the asker may abort
        return "abort"

    def _inquire(self, txid: Any) -> None:
        if txid not in self.store.prepared:
            return
        coord, peers, _order = self.meta[txid]
        node, cfg = self.node, self.config

        def answer(outcome: str, value: Any) -> None:
            if outcome == "ok" and value in ("commit", "abort"):
                self._resolve(txid, value)

        node.call(coord, STATUS, txid, cfg.inquiry_s, answer)
        if cfg.cooperative:
            for p in peers:
                if p != node.name:
                    node.call(p, PEER_STATUS, txid, cfg.inquiry_s, answer)
        node.after(cfg.inquiry_s, lambda: self._inquire(txid))

    def _recovered(self) -> None:
        for txid in list(self.store.prepared):
            if txid in self.meta:
                self.node.after(self.config.inquiry_s, lambda t=txid: self._inquire(t))

    def in_doubt_now(self) -> int:
        """How many transactions are prepared and undecided here now (holding their locks)."""
        return len(self.store.prepared)


@dataclass
class TxnRecord:
    """The coordinator's measurements of one transaction: start, decision and acknowledgement times
    (seconds, NaN until they happen) and outcome "commit" | "abort" | "open".
    """
    order: Any
    started: float
    decided: float = math.nan
    outcome: str = "open"  # "commit" | "abort" | "open" (the coordinator crashed before deciding)
    acked: float = math.nan


class Coordinator:
    """The order service as 2PC coordinator over the participant nodes ``participants``."""

    def __init__(self, sim: Simulation, participants: list[str] | tuple[str, ...], *, name: str = "orders",
                 config: TwoPCConfig | None = None) -> None:
        if not participants:
            raise ValueError("participants must name at least one node")
        self.sim, self.name, self.participants = sim, name, tuple(participants)
        self.config = config or TwoPCConfig()
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = LocalStore(self.node, durable=True, name="orders")
        self.records: dict[Any, TxnRecord] = {}
        self._active: dict[Any, dict] = {}  # volatile: transactions still voting
        n = self.node
        n.on(PLACE, self._on_place)
        n.on(STATUS, self._on_status)
        n.on_crash(self._active.clear)
        n.on_recover(self._recovered)

    @property
    def log(self) -> dict:
        """The coordinator's durable commit records, txid -> participants; presumed abort: no
        record means abort (Mohan, Lindsay & Obermarck 1986).
        """
        return self.node.durable.setdefault("2pc.log", {})  # txid -> participants (commit records)

    def _on_place(self, msg: Message) -> Any:
        order = msg.payload
        txid = order.id
        if txid in self.records:
            raise RpcError("duplicate")  # one transaction per order in this model
        self.records[txid] = TxnRecord(order, self.sim.now)
        st = self._active[txid] = {"msg": msg, "yes": set(), "decided": False}
        for p in self.participants:
            self.node.call(p, PREPARE, (txid, order, self.name, self.participants), self.config.prepare_timeout_s,
                           lambda outcome, value, p=p: self._vote(txid, st, p, outcome, value))
        return NO_REPLY

    def _vote(self, txid: Any, st: dict, p: str, outcome: str, value: Any) -> None:
        if st["decided"]:
            return
        if outcome == "ok" and value == "yes":
            st["yes"].add(p)
            if len(st["yes"]) == len(self.participants):
                self._commit(txid, st)
        else:
            self._abort(txid, st)

    def _commit(self, txid: Any, st: dict) -> None:
        st["decided"] = True
        self._active.pop(txid, None)
        self.log[txid] = set(self.participants)  # forced commit record: participants still to ack
        self.store.run(("decide", txid), lambda t: t.write(("order", txid), "APPROVED"))
        rec = self.records[txid]
        rec.decided, rec.outcome = self.sim.now, "commit"
        self.node.reply(st["msg"], "committed")
        for p in self.participants:
            self._send_commit(txid, p)

    def _send_commit(self, txid: Any, p: str) -> None:
        def acked(outcome: str, value: Any) -> None:
            pending = self.log.get(txid)
            if pending is None:
                return
            if outcome == "ok":
                pending.discard(p)
                if not pending:
                    del self.log[txid]  # end record: the transaction is forgotten
                    self.records[txid].acked = self.sim.now
            else:
                self.node.after(self.config.decision_retry_s, lambda: self._send_commit(txid, p))

        self.node.call(p, COMMIT, txid, self.config.decision_retry_s, acked)

    def _abort(self, txid: Any, st: dict) -> None:
        st["decided"] = True
        self._active.pop(txid, None)
        self.store.run(("decide", txid), lambda t: t.write(("order", txid), "REJECTED"))
        rec = self.records[txid]
        rec.decided, rec.outcome = self.sim.now, "abort"
        self.node.reply(st["msg"], "aborted", "error")
        for p in self.participants:  # presumed abort: nothing logged, no acknowledgments awaited
            self.node.send(p, ABORT, txid)

    def _on_status(self, msg: Message) -> str:
        txid = msg.payload
        if txid in self.log:
            return "commit"
        if txid in self._active:
            return "unknown"
        return "abort"  # presumed: no commit record

    def _recovered(self) -> None:
        for txid, pending in self.log.items():
            for p in sorted(pending):
                self._send_commit(txid, p)

    def order_status(self, order_id: Any) -> str | None:
        """The order service's status of ``order_id``, or None if unknown."""
        return self.store.get(("order", order_id))


def attach_2pc(participants: list[Participant], config: TwoPCConfig) -> list[TwoPCParticipant]:
    """Add the 2PC handlers to each shop participant, one ``TwoPCParticipant`` each."""
    return [TwoPCParticipant(p, config) for p in participants]


__all__ = ["ABORT", "COMMIT", "Coordinator", "PEER_STATUS", "PREPARE", "STATUS", "TwoPCConfig",
           "TwoPCParticipant", "TxnRecord", "attach_2pc"]
