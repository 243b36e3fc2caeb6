"""Primary-backup replication with synchronous or asynchronous replication and failover.

Alsberg & Day, "A Principle for Resilient Sharing of Distributed Resources" (ICSE 1976);
Budhiraja, Marzullo, Schneider, Toueg, "The Primary-Backup Approach" (1993). One node, the
*primary* of the current *view*, serves reads, writes and cas (one order, so cas works); the
others are *backups* and answer ``("not_leader", primary)``.

- ``mode="sync"``: the primary applies a write, sends it to every backup and acks the client
  only after **all** backups acked. If one does not ack within ``replica_timeout_s`` the reply
  is ``("indeterminate", ...)`` (the primary and some backups applied it). An acknowledged
  write is on every node, so a failover never loses it — at the price of latency (the slowest
  backup) and availability (one dead backup blocks writes until it returns).
- ``mode="async"``: the primary acks at once and ships the write to the backups
  ``replication_lag_s`` later (log shipping), re-sending until acked. A write acknowledged but
  not yet shipped when the primary dies is **lost** on failover (measure with
  :meth:`PrimaryBackup.lost_writes`).

Failure detection and failover: the primary sends heartbeats every ``heartbeat_interval_s``.
A backup that has heard nothing for ``failover_timeout_s`` × (its rank after the primary)
promotes itself: view + 1 (ranks stagger the candidates so normally one wins). A node that
hears of a higher view adopts it and replaces its state with a snapshot from the new primary
(discarding any write the new primary never got); a primary that learns of a higher view
steps down. Without consensus, a partition that cuts the primary off from a backup lets both
serve: *split brain*, the bug this project is named after. Data, the view and the set of
applied writes are durable; heartbeat timers and the failure detector's state are volatile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simulator import NO_REPLY, Message, Node, RpcError, Simulation

from .kv import CAS_MISMATCH, INDETERMINATE, NOT_LEADER, KVStoreBase


@dataclass(frozen=True)
class PrimaryBackupConfig:
    """Primary-backup settings (Budhiraja et al. 1993), times in seconds: ``n`` replicas, ``mode``
    "sync" or "async", heartbeat period, failover timeout (silence before a backup takes over),
    replication RPC timeout and the async mode's replication lag.
    """
    n: int = 3
    mode: str = "sync"
    heartbeat_interval_s: float = 0.05
    failover_timeout_s: float = 0.3
    replica_timeout_s: float = 0.2
    replication_lag_s: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"n must be an integer >= 1, got {self.n!r}")
        if self.mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {self.mode!r}")
        for nm in ("heartbeat_interval_s", "failover_timeout_s", "replica_timeout_s"):
            v = getattr(self, nm)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number of seconds > 0, got {v!r}")
        if not (isinstance(self.replication_lag_s, (int, float)) and 0 <= self.replication_lag_s < math.inf):
            raise ValueError(f"replication_lag_s must be >= 0 seconds, got {self.replication_lag_s!r}")
        if self.failover_timeout_s <= self.heartbeat_interval_s:
            raise ValueError(f"failover_timeout_s must exceed heartbeat_interval_s ({self.heartbeat_interval_s}), "
                             f"got {self.failover_timeout_s}")


class PrimaryBackup(KVStoreBase):
    """``n`` nodes, one primary (initially the first node); see the module docstring."""

    def __init__(self, sim: Simulation, n: int = 3, *, mode: str = "sync", heartbeat_interval_s: float = 0.05,
                 failover_timeout_s: float = 0.3, replica_timeout_s: float = 0.2, replication_lag_s: float = 0.0,
                 prefix: str = "pb") -> None:
        self.cfg = PrimaryBackupConfig(n, mode, heartbeat_interval_s, failover_timeout_s, replica_timeout_s,
                                       replication_lag_s)
        self.sim, self.name = sim, prefix
        self.nodes: list[Node] = [sim.node(f"{prefix}{i}") for i in range(n)]
        self.failovers: list[tuple[float, str, int]] = []  # (time, new primary, view)
        for nd in self.nodes:
            nd.durable.update(view=0, primary=self.nodes[0].name, data={}, seen=set(), seq=0)
            self._install(nd)

    # -- views ---------------------------------------------------------------------------------------
    def primary(self) -> str:
        """The primary of the highest view any live node knows (what a client would discover)."""
        up = [nd for nd in self.nodes if nd.up] or self.nodes
        best = max(up, key=lambda nd: nd.durable["view"])
        return best.durable["primary"]

    def primaries(self) -> list[str]:
        """Live nodes that currently act as primary (more than one: split brain)."""
        return [nd.name for nd in self.nodes if nd.up and nd.durable["primary"] == nd.name]

    def route(self, client_name: str) -> list[str]:
        """The current primary first, then the backups (a backup answers ``not_leader``)."""
        p = self.primary()
        return [p] + [nd.name for nd in self.nodes if nd.name != p]

    def _is_primary(self, node: Node) -> bool:
        return node.durable["primary"] == node.name

    def _adopt(self, node: Node, view: int, primary: str, *, force: bool = False) -> None:
        d = node.durable
        if view < d["view"] or (view == d["view"] and not force):
            return
        d["view"], d["primary"] = view, primary
        node.state["last_heard"] = self.sim.now
        if primary != node.name:  # bring our state in line with the new primary's

            def got(outcome: str, snap: Any) -> None:
                if outcome == "ok":
                    self._install_snapshot(node, snap)

            node.call(primary, "pb.snapshot", None, self.cfg.replica_timeout_s, got)
        else:
            self._become_primary(node)

    def _become_primary(self, node: Node) -> None:
        # the backups this primary replicates to: every other node until one stops answering
        node.state["members"] = {nd.name for nd in self.nodes if nd is not node}
        node.state["last_ok"] = {nd.name: self.sim.now for nd in self.nodes if nd is not node}
        node.state["joining"] = set()

    def _install_snapshot(self, node: Node, snap: tuple) -> bool:
        d = node.durable
        if snap[0] < d["view"]:
            return False
        d["data"], d["seen"], d["seq"] = dict(snap[1]), set(snap[2]), snap[3]
        return True

    # -- wiring ----------------------------------------------------------------------------------------
    def _install(self, node: Node) -> None:
        for op, h in (("kv.read", self._read), ("kv.write", self._write), ("kv.cas", self._cas),
                      ("pb.replicate", self._replicate), ("pb.heartbeat", self._heartbeat),
                      ("pb.snapshot", self._snapshot),
                      ("pb.install", lambda nd, m: self._install_snapshot(nd, m.payload))):
            node.on(op, lambda m, h=h: h(node, m))
        self._start(node)
        node.on_recover(lambda: self._start(node))

    def _start(self, node: Node) -> None:
        node.state["last_heard"] = self.sim.now
        if self._is_primary(node):
            self._become_primary(node)
        node.after(0.0, lambda: self._tick(node))

    def _tick(self, node: Node) -> None:
        cfg, d, now = self.cfg, node.durable, self.sim.now
        if self._is_primary(node):
            st = node.state
            for other in self.nodes:
                if other is not node:
                    node.call(other.name, "pb.heartbeat", (d["view"], node.name), cfg.heartbeat_interval_s,
                              lambda o, v, b=other.name: self._heartbeat_reply(node, b, o, v))
            for b in list(st["members"]):  # a backup silent for failover_timeout_s leaves the view
                if now - st["last_ok"][b] > cfg.failover_timeout_s:
                    st["members"].discard(b)
        else:
            names = [nd.name for nd in self.nodes]
            rank = (names.index(node.name) - names.index(d["primary"])) % len(names)
            if now - node.state["last_heard"] > cfg.failover_timeout_s * rank:
                self.failovers.append((now, node.name, d["view"] + 1))
                self._adopt(node, d["view"] + 1, node.name)
        node.after(cfg.heartbeat_interval_s, lambda: self._tick(node))

    def _heartbeat_reply(self, node: Node, backup: str, outcome: str, value: Any) -> None:
        if outcome != "ok" or not self._is_primary(node):
            return
        view, primary = value
        if view > node.durable["view"] or (view == node.durable["view"] and primary != node.name):
            self._adopt(node, view, primary, force=True)  # someone else leads: step down
            return
        st = node.state
        st["last_ok"][backup] = self.sim.now
        if backup not in st["members"] and backup not in st["joining"]:
            # re-admit a returning backup only after it has installed our state
            st["joining"].add(backup)

            def installed(o: str, ok: Any) -> None:
                st["joining"].discard(backup)
                if o == "ok" and ok and self._is_primary(node):
                    st["members"].add(backup)

            node.call(backup, "pb.install", self._snapshot(node, None), self.cfg.replica_timeout_s, installed)

    def _heartbeat(self, node: Node, msg: Message) -> tuple[int, str]:
        view, primary = msg.payload
        d = node.durable
        if primary != node.name and (view > d["view"] or (
                view == d["view"] and self._is_primary(node) and primary < node.name)):
            self._adopt(node, view, primary, force=True)  # a tie between primaries: lower name wins
        if view == d["view"] and primary == d["primary"]:
            node.state["last_heard"] = self.sim.now
        return (d["view"], d["primary"])

    def _snapshot(self, node: Node, msg: Message) -> tuple:
        d = node.durable
        return (d["view"], dict(d["data"]), set(d["seen"]), d["seq"])

    # -- client operations ----------------------------------------------------------------------------
    def _check_primary(self, node: Node) -> None:
        if not self._is_primary(node):
            raise RpcError((NOT_LEADER, node.durable["primary"]))

    def _read(self, node: Node, msg: Message) -> Any:
        self._check_primary(node)
        entry = node.durable["data"].get(msg.payload[0])
        return None if entry is None else entry[1]

    def _cas(self, node: Node, msg: Message) -> Any:
        self._check_primary(node)
        key, expected, new = msg.payload
        entry = node.durable["data"].get(key)
        if (None if entry is None else entry[1]) != expected:
            raise RpcError(CAS_MISMATCH)
        return self._write(node, msg, (key, new))

    def _write(self, node: Node, msg: Message, kv: tuple | None = None) -> Any:
        self._check_primary(node)
        key, value = kv or msg.payload
        d = node.durable
        d["seq"] += 1
        rec = (d["view"], d["seq"], key, value)
        self._apply(node, rec)
        backups = sorted(node.state["members"])
        if self.cfg.mode == "async" or not backups:
            for b in backups:
                node.after(self.cfg.replication_lag_s, lambda b=b: self._ship(node, b, rec))
            return True
        pending = {"left": len(backups), "failed": 0}

        def acked(outcome: str, _v: Any) -> None:
            pending["left"] -= 1
            pending["failed"] += outcome != "ok"
            if pending["left"] == 0:
                if pending["failed"]:
                    node.reply(msg, (INDETERMINATE, f"{pending['failed']} backup(s) did not ack"), "error")
                else:
                    node.reply(msg, True)

        for b in backups:
            node.call(b, "pb.replicate", rec, self.cfg.replica_timeout_s, acked)
        return NO_REPLY

    def _ship(self, node: Node, backup: str, rec: tuple) -> None:
        """Async log shipping: re-send until acked, while still primary of the record's view."""
        if not (self._is_primary(node) and node.durable["view"] == rec[0]):
            return

        def done(outcome: str, _v: Any) -> None:
            if outcome != "ok":
                node.after(self.cfg.heartbeat_interval_s, lambda: self._ship(node, backup, rec))

        node.call(backup, "pb.replicate", rec, self.cfg.replica_timeout_s, done)

    def _replicate(self, node: Node, msg: Message) -> bool:
        view = msg.payload[0]
        if view < node.durable["view"]:
            raise RpcError(("stale_view", node.durable["view"]))
        if view > node.durable["view"]:
            self._adopt(node, view, msg.src)
        self._apply(node, msg.payload)
        return True

    @staticmethod
    def _apply(node: Node, rec: tuple) -> None:
        view, seq, key, value = rec
        d = node.durable
        cur = d["data"].get(key)
        if cur is None or cur[0] < (view, seq):
            d["data"][key] = ((view, seq), value)
        d["seen"].add(value)
        d["seq"] = max(d["seq"], seq)

    # -- measuring ------------------------------------------------------------------------------------
    def lost_writes(self, acked_values: Iterable[Any]) -> list[Any]:
        """Acknowledged written values the current primary never applied: lost by failover."""
        p = next(nd for nd in self.nodes if nd.name == self.primary())
        return [v for v in acked_values if v not in p.durable["seen"]]

