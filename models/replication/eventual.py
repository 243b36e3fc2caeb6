"""Leaderless (Dynamo-style) replication: coordinators, N/R/W, read repair, hinted handoff,
sloppy quorums and anti-entropy.

DeCandia et al., "Dynamo: Amazon's Highly Available Key-value Store" (SOSP 2007). The cluster
is ``cluster_size`` nodes on a ring; a key's *preference list* is the ``n`` nodes from the
ring position of its (stable) hash; they are its owners. Any node coordinates a client's
request (the client's home replica, see :meth:`KVStoreBase.route`).

Write ``(key, value)``: the coordinator makes a new version from its local state (the write's
context, see :mod:`versions`), sends it to the replicas (``selection="all"``: every owner,
the coordinator itself applying locally at once; ``"random"``: only ``w`` owners drawn
uniformly — the "random replica choice" model of the quorum-intersection formula) and replies
``True`` after ``w`` acks. Replicas that were sent the write keep getting it after the ack:
with ``w < n`` that propagation is asynchronous. Each remote replica applies after
``write_delay`` (the W of Bailis et al.'s PBS WARS model) and then acks. If ``w`` acks never
come, the reply is ``("indeterminate", ...)`` if some replica may have applied, else
``"quorum_unavailable"`` (definite).

Read ``(key,)``: the coordinator asks the owners (all, or ``r`` at random), and replies once
``r`` answered with the merge of their states: the newest value (LWW / HLC), or the tuple of
concurrent sibling values (version vectors). ``read_repair``: once every asked replica answered
(or timed out) it pushes the merged state to those that were behind (Dynamo §5).

``hinted_handoff``: a write that could not reach an owner is kept as a *hint* by the
coordinator and handed off when the owner answers again. ``sloppy``: instead, the write goes to
the next healthy node on the ring beyond the preference list, which stores it as a hint for
the owner and acks — the ack counts toward ``w`` (Dynamo §4.6, sloppy quorum).
``anti_entropy_interval_s``: every interval each node compares a Merkle-style summary (a hash
per bucket of keys) with a random peer and the two exchange the states of differing buckets
(Dynamo §4.7). Data and hints are durable (survive crashes); coordinations in progress are not.
``kv.cas`` is refused (``"cas unsupported"``): leaderless stores have no single order.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from simulator import NO_REPLY, Distribution, Message, Node, RpcError, Simulation
from simulator.core import name_key

from .kv import CAS_UNSUPPORTED, INDETERMINATE, QUORUM_UNAVAILABLE, KVStoreBase
from .versions import RESOLUTIONS, digest

BUCKETS = 16


@dataclass(frozen=True)
class LeaderlessConfig:
    """Dynamo's knobs (DeCandia et al., SOSP 2007): ``n`` owners per key, ``r``/``w`` replies a
    read or write waits for, conflict ``resolution``, ring ``cluster_size``, "all" or "random"
    replica ``selection``, and switches for read repair, hinted handoff, sloppy quorums and
    anti-entropy (intervals and timeouts in seconds).
    """
    n: int = 3
    r: int = 1
    w: int = 1
    resolution: str = "lww"
    cluster_size: int | None = None
    selection: str = "all"
    replica_timeout_s: float = 0.1
    anti_entropy_interval_s: float | None = None
    read_repair: bool = False
    hinted_handoff: bool = False
    sloppy: bool = False
    handoff_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"n must be an integer >= 1 replicas, got {self.n!r}")
        for nm in ("r", "w"):
            v = getattr(self, nm)
            if not (isinstance(v, int) and 1 <= v <= self.n):
                raise ValueError(f"{nm} must be an integer with 1 <= {nm} <= n = {self.n}, got {v!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {sorted(RESOLUTIONS)}, got {self.resolution!r}")
        if self.cluster_size is not None and not (isinstance(self.cluster_size, int) and self.cluster_size >= self.n):
            raise ValueError(f"cluster_size must be an integer >= n = {self.n}, got {self.cluster_size!r}")
        if self.selection not in ("all", "random"):
            raise ValueError(f"selection must be 'all' or 'random', got {self.selection!r}")
        for nm in ("replica_timeout_s", "handoff_interval_s", "anti_entropy_interval_s"):
            v = getattr(self, nm)
            if v is None and nm == "anti_entropy_interval_s":
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number of seconds > 0, got {v!r}")
        if self.sloppy and (self.cluster_size or self.n) <= self.n:
            raise ValueError("sloppy needs cluster_size > n: fallback nodes beyond the preference list")


class _Pending:
    __slots__ = ("need", "pending", "acks", "maybe", "replied", "used", "states")

    def __init__(self, need: int, pending: int) -> None:
        self.need, self.pending, self.acks = need, pending, 0
        self.maybe = self.replied = False
        self.used: set[str] = set()
        self.states: dict[str, Any] = {}


class EventualStore(KVStoreBase):
    """Leaderless eventually consistent key-value store (see the module docstring).

    ``clocks``: per-node physical clock options (one dict for all, or a list with one per node),
    e.g. ``[dict(offset_s=0.0), dict(offset_s=-0.05)]``. ``write_delay``: seconds (or a
    distribution) a remote replica takes to apply a write before it acks. ``record_versions``:
    keep ``store.versions[value]`` = the version each written value was given.
    """

    def __init__(self, sim: Simulation, n: int = 3, *, r: int = 1, w: int = 1, resolution: str = "lww",
                 cluster_size: int | None = None, clocks: dict | list[dict] | None = None,
                 selection: str = "all", write_delay: float | Distribution = 0.0,
                 replica_timeout_s: float = 0.1, anti_entropy_interval_s: float | None = None,
                 read_repair: bool = False, hinted_handoff: bool = False, sloppy: bool = False,
                 handoff_interval_s: float = 0.5, prefix: str = "e", record_versions: bool = False) -> None:
        self.cfg = cfg = LeaderlessConfig(n, r, w, resolution, cluster_size, selection, replica_timeout_s,
                                          anti_entropy_interval_s, read_repair, hinted_handoff, sloppy,
                                          handoff_interval_s)
        m = cfg.cluster_size or n
        if isinstance(clocks, list) and len(clocks) != m:
            raise ValueError(f"clocks must be one dict or a list of {m} dicts (one per node), got {len(clocks)}")
        self.sim, self.name = sim, prefix
        # value -> the version its coordinator gave it (for lost-update analysis), if asked for
        self.versions: dict[Any, Any] | None = {} if record_versions else None
        self.nodes: list[Node] = [
            sim.node(f"{prefix}{i}", clock=(clocks[i] if isinstance(clocks, list) else clocks)) for i in range(m)]
        self.res = RESOLUTIONS[resolution]({nd.name: nd.clock.now for nd in self.nodes})
        self._select = sim.rng(f"{prefix}.replica_selection")
        self._prefs: dict[Any, list[str]] = {}
        self._delay = None if write_delay == 0 else sim.sampler(write_delay, f"{prefix}.write_delay")
        self.stats = dict(read_repairs=0, hints_stored=0, hints_delivered=0, ae_rounds=0, ae_keys_synced=0,
                          sloppy_writes=0)
        for nd in self.nodes:
            self._install(nd)

    # -- placement -------------------------------------------------------------------------------
    def preference_list(self, key: Any) -> list[str]:
        """Every node in ring order from the key's position: the first ``n`` own the key."""
        p = self._prefs.get(key)
        if p is None:
            names = self.replica_names
            h = name_key(repr(key)) % len(names)
            p = self._prefs[key] = names[h:] + names[:h]
        return p

    def choose_replicas(self, key: Any, k: int) -> list[str]:
        """The owners a request goes to: all ``n``, or ``k`` drawn uniformly without replacement."""
        owners = self.preference_list(key)[: self.cfg.n]
        if self.cfg.selection == "all":
            return owners
        return [owners[i] for i in self._select.choice(len(owners), size=k, replace=False)]

    # -- inspection ------------------------------------------------------------------------------
    def merged_state(self, key: Any) -> Any:
        """The join of every node's state (and hints) for ``key``: what convergence reaches."""
        st = None
        for nd in self.nodes:
            st = self.res.merge(st, nd.durable["kv"].get(key))
            for (_, k), s in nd.durable["hints"].items():
                if k == key:
                    st = self.res.merge(st, s)
        return st

    def final_values(self, key: Any) -> tuple:
        """The values a read would return once every replica's state for ``key`` is merged (the
        converged answer: one value for LWW, every concurrent sibling for version vectors).
        """
        return self.res.values(self.merged_state(key))

    def converged(self) -> bool:
        """Every owner of every key holds the same state."""
        keys = {k for nd in self.nodes for k in nd.durable["kv"]}
        by_name = {nd.name: nd for nd in self.nodes}
        return all(len({digest(by_name[o].durable["kv"].get(k)) for o in self.preference_list(k)[: self.cfg.n]}) == 1
                   for k in keys)

    # -- wiring ------------------------------------------------------------------------------------
    def _install(self, node: Node) -> None:
        node.durable["kv"] = {}
        node.durable["hints"] = {}

        def cas(msg: Message) -> None:
            raise RpcError(CAS_UNSUPPORTED)

        node.on("kv.write", lambda m: self._coord_write(node, m))
        node.on("kv.read", lambda m: self._coord_read(node, m))
        node.on("kv.cas", cas)
        node.on("kv.get", lambda m: node.durable["kv"].get(m.payload[0]))
        node.on("kv.replicate", lambda m: self._on_replicate(node, m))
        node.on("ae.digest", lambda m: self._on_digest(node, m))
        node.on("ae.push", lambda m: self._merge_many(node, m.payload))
        self._start_timers(node)
        node.on_recover(lambda: self._start_timers(node))

    def _start_timers(self, node: Node) -> None:
        cfg = self.cfg
        u = self.sim.uniforms(f"{self.name}.timers.{node.name}")
        if cfg.anti_entropy_interval_s is not None:
            node.after(u() * cfg.anti_entropy_interval_s, lambda: self._anti_entropy(node, u))
        if cfg.hinted_handoff or cfg.sloppy:
            node.after(u() * cfg.handoff_interval_s, lambda: self._handoff(node))

    def _apply(self, node: Node, key: Any, state: Any) -> bool:
        """Merge ``state`` into the node's data; True if it changed anything."""
        self.res.observe(node.name, state)
        data = node.durable["kv"]
        old = data.get(key)
        new = self.res.merge(old, state)
        data[key] = new
        return new is not old and digest(new) != digest(old)

    # -- writes -------------------------------------------------------------------------------------
    def _coord_write(self, node: Node, msg: Message) -> Any:
        key, value = msg.payload
        state = self.res.write(node.name, node.durable["kv"].get(key), value)
        if self.versions is not None:
            self.versions[value] = state
        targets = self.choose_replicas(key, self.cfg.w)
        op = _Pending(self.cfg.w, len(targets))
        op.used.update(targets)
        for t in targets:
            self._send_write(node, msg, op, t, key, state, None)
        return NO_REPLY

    def _send_write(self, node: Node, msg: Message, op: _Pending, target: str, key: Any, state: Any,
                    hint_for: str | None) -> None:
        if target == node.name and hint_for is None:
            self._apply(node, key, state)
            self._write_done(node, msg, op, target, key, state, hint_for, "ok")
            return
        node.call(target, "kv.replicate", (key, state, hint_for), self.cfg.replica_timeout_s,
                  lambda o, _v: self._write_done(node, msg, op, target, key, state, hint_for, o))

    def _write_done(self, node: Node, msg: Message, op: _Pending, target: str, key: Any, state: Any,
                    hint_for: str | None, outcome: str) -> None:
        op.pending -= 1
        if outcome == "ok":
            op.acks += 1
            op.maybe = True
        else:
            op.maybe = op.maybe or outcome == "timeout"
            owner = hint_for or target
            if self.cfg.sloppy:
                fallback = next((f for f in self.preference_list(key)[self.cfg.n:] if f not in op.used), None)
                if fallback is not None:
                    op.used.add(fallback)
                    op.pending += 1
                    self.stats["sloppy_writes"] += 1
                    self._send_write(node, msg, op, fallback, key, state, owner)
            elif self.cfg.hinted_handoff and hint_for is None:
                self._store_hint(node, owner, key, state)
        if not op.replied and op.acks >= op.need:
            op.replied = True
            node.reply(msg, True)
        elif not op.replied and op.pending == 0:
            op.replied = True
            if op.maybe:
                node.reply(msg, (INDETERMINATE, f"{op.acks} of w={op.need} acks"), "error")
            else:
                node.reply(msg, QUORUM_UNAVAILABLE, "error")

    def _on_replicate(self, node: Node, msg: Message) -> Any:
        key, state, hint_for = msg.payload

        def store() -> None:
            if hint_for is None or hint_for == node.name:
                self._apply(node, key, state)
            else:
                self._store_hint(node, hint_for, key, state)

        if self._delay is None:
            store()
            return True

        def later() -> None:
            store()
            node.reply(msg, True)

        node.after(self._delay(), later)
        return NO_REPLY

    def _store_hint(self, node: Node, owner: str, key: Any, state: Any) -> None:
        hints = node.durable["hints"]
        hints[(owner, key)] = self.res.merge(hints.get((owner, key)), state)
        self.stats["hints_stored"] += 1

    def _handoff(self, node: Node) -> None:
        for (owner, key), state in list(node.durable["hints"].items()):
            def done(outcome: str, _v, owner=owner, key=key, state=state) -> None:
                hints = node.durable["hints"]
                if outcome == "ok" and hints.get((owner, key)) is state:
                    del hints[(owner, key)]
                    self.stats["hints_delivered"] += 1
            node.call(owner, "kv.replicate", (key, state, None), self.cfg.replica_timeout_s, done)
        node.after(self.cfg.handoff_interval_s, lambda: self._handoff(node))

    # -- reads ---------------------------------------------------------------------------------------
    def _coord_read(self, node: Node, msg: Message) -> Any:
        key = msg.payload[0]
        targets = self.choose_replicas(key, self.cfg.r)
        op = _Pending(self.cfg.r, len(targets))
        for t in targets:
            if t == node.name:
                self._read_done(node, msg, op, t, key, "ok", node.durable["kv"].get(key))
            else:
                node.call(t, "kv.get", (key,), self.cfg.replica_timeout_s,
                          lambda o, v, t=t: self._read_done(node, msg, op, t, key, o, v))
        return NO_REPLY

    def _read_done(self, node: Node, msg: Message, op: _Pending, target: str, key: Any, outcome: str,
                   value: Any) -> None:
        op.pending -= 1
        if outcome == "ok":
            op.states[target] = value
        if not op.replied and len(op.states) >= op.need:
            op.replied = True
            merged = None
            for s in op.states.values():
                merged = self.res.merge(merged, s)
            node.reply(msg, self.res.read(merged))
        if op.pending == 0:
            if not op.replied:
                op.replied = True
                node.reply(msg, QUORUM_UNAVAILABLE, "error")  # a read changes nothing: definite
            if self.cfg.read_repair and op.states:
                self._read_repair(node, key, op.states)

    def _read_repair(self, node: Node, key: Any, states: dict[str, Any]) -> None:
        merged = None
        for s in states.values():
            merged = self.res.merge(merged, s)
        d = digest(merged)
        for t, s in states.items():
            if digest(s) == d:
                continue
            self.stats["read_repairs"] += 1
            if t == node.name:
                self._apply(node, key, merged)
            else:
                node.call(t, "kv.replicate", (key, merged, None), self.cfg.replica_timeout_s, lambda o, v: None)

    # -- anti-entropy ---------------------------------------------------------------------------------
    def _summary(self, node: Node, peer: str) -> dict[int, int]:
        """Merkle-style summary of the keys both nodes own: bucket -> order-free hash of states."""
        out: dict[int, int] = {}
        for key, st in node.durable["kv"].items():
            if peer in self.preference_list(key)[: self.cfg.n]:
                b = name_key(repr(key)) % BUCKETS
                out[b] = (out.get(b, 0) + digest((key, st))) & 0xFFFFFFFFFFFFFFFF
        return out

    def _bucket_states(self, node: Node, peer: str, buckets: set[int]) -> dict[Any, Any]:
        return {k: s for k, s in node.durable["kv"].items()
                if name_key(repr(k)) % BUCKETS in buckets and peer in self.preference_list(k)[: self.cfg.n]}

    def _anti_entropy(self, node: Node, u) -> None:
        peers = [nd.name for nd in self.nodes if nd is not node]
        if peers:
            peer = peers[int(u() * len(peers))]
            self.stats["ae_rounds"] += 1

            def reply(outcome: str, value: Any) -> None:
                if outcome != "ok":
                    return
                buckets, theirs = value
                self._merge_many(node, theirs)
                mine = self._bucket_states(node, peer, buckets)
                if mine:
                    node.send(peer, "ae.push", mine)

            node.call(peer, "ae.digest", self._summary(node, peer), self.cfg.replica_timeout_s, reply)
        node.after(self.cfg.anti_entropy_interval_s, lambda: self._anti_entropy(node, u))

    def _on_digest(self, node: Node, msg: Message) -> tuple[set[int], dict]:
        mine = self._summary(node, msg.src)
        theirs = msg.payload
        differ = {b for b in set(mine) | set(theirs) if mine.get(b) != theirs.get(b)}
        return differ, self._bucket_states(node, msg.src, differ)

    def _merge_many(self, node: Node, states: dict[Any, Any]) -> None:
        for k, s in states.items():
            if self._apply(node, k, s):
                self.stats["ae_keys_synced"] += 1


def superseded_writes(history: Any, store: EventualStore) -> tuple[int, int]:
    """``(lost, acked)`` acknowledged writes of a ``simulator.history`` history run on ``store``.
    An acknowledged write ``w`` is *lost* if the store orders some other
    acknowledged write ``w0`` of the same key after it although ``w0`` completed before ``w``
    began: once both have propagated, every read returns ``w0`` (or a successor), never ``w``.
    Uses the versions the store recorded (``record_versions=True``) and its ``supersedes``."""
    ops: dict = {}
    by_key: dict = {}
    for i, typ in enumerate(history.type):
        p = history.process[i]
        if typ == "invoke":
            ops[p] = (history.key[i], history.value[i], history.time[i])
        else:
            key, value, start = ops.pop(p)
            if typ == "ok" and history.f[i] == "write":
                by_key.setdefault(key, []).append((history.time[i], start, value))
    versions, sup = store.versions, store.res.supersedes
    lost = acked = 0
    for writes in by_key.values():
        writes.sort()
        ends = [w[0] for w in writes]
        for _end, start, value in writes:
            acked += 1
            v = versions[value]
            earlier = writes[: bisect.bisect_left(ends, start)]
            if any(sup(versions[v0], v) for _, _, v0 in earlier):
                lost += 1
    return lost, acked
