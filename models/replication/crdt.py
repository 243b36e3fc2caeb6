"""State-based CRDTs and a store that replicates them by gossip.

Shapiro, Preguiça, Baquero, Zawirski, "Conflict-free Replicated Data Types" (SSS 2011) and the
companion report "A comprehensive study of Convergent and Commutative Replicated Data Types"
(INRIA RR-7506, 2011): a state-based CRDT (CvRDT) has states forming a join-semilattice; updates
only inflate the state and ``merge`` is the join — commutative, associative, idempotent — so
replicas that have received the same updates, in any order and any number of times, are equal.

- :class:`GCounter` (RR-7506 §3.1.1): one entry per replica, merge = pointwise max.
- :class:`PNCounter` (§3.1.2): a pair of G-counters, increments and decrements.
- :class:`ORSet` (§3.3.5, observed-remove set): each add carries a unique tag; a remove
  tombstones the tags it has *observed*; a concurrent add (an unseen tag) survives — add wins.
- :class:`LWWRegister` (§3.2.1): the value with the largest ``(timestamp, replica)`` wins.

:class:`CRDTStore` keeps one CRDT per replica in ``node.durable`` (it survives crashes) and
gossips its whole state to a random peer every ``gossip_interval_s`` (anti-entropy by state
shipping). RPC ops, each replying ``True`` once applied locally (or the value, for a read):
``"crdt.incr"`` payload ``(amount,)`` (counters; a G-counter refuses ``amount < 0``),
``"crdt.add"`` ``(element,)`` / ``"crdt.remove"`` ``(element,)`` (OR-set), ``"crdt.set"``
``(value,)`` (LWW register, stamped with ``(node.clock.now(), node name)``), ``"crdt.read"``
``()`` → the value (an ``int``; a sorted ``tuple`` for a set; the register's value).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from simulator import RpcError

if TYPE_CHECKING:
    from simulator import Message, Node, Simulation


class GCounter:
    """Grow-only counter: ``counts[replica]`` is what that replica has added."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.counts = dict(counts or {})

    def increment(self, replica: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0) to ``replica``'s entry: the grow-only counter's only update
        (Shapiro et al. 2011).
        """
        if amount < 0:
            raise ValueError(f"a G-counter only grows: amount must be >= 0, got {amount}")
        if amount == 0:
            return  # no zero entries: equal states have equal dicts
        self.counts[replica] = self.counts.get(replica, 0) + amount

    @property
    def value(self) -> int:
        """The count: the sum of every replica's entry."""
        return sum(self.counts.values())

    def merge(self, other: GCounter) -> GCounter:
        """The join: a new counter with each replica's maximum entry."""
        out = dict(self.counts)
        for k, v in other.counts.items():
            if v > out.get(k, 0):
                out[k] = v
        return GCounter(out)

    def copy(self) -> GCounter:
        """An independent copy."""
        return GCounter(self.counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GCounter) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"GCounter({self.counts})"


class PNCounter:
    """Counter with decrements: the difference of two G-counters (``p`` minus ``n``)."""

    __slots__ = ("p", "n")

    def __init__(self, p: GCounter | None = None, n: GCounter | None = None) -> None:
        self.p = p or GCounter()
        self.n = n or GCounter()

    def increment(self, replica: str, amount: int = 1) -> None:
        """Add ``amount`` (any sign) at ``replica``: positive to the P counter, negative to the N
        counter.
        """
        if amount > 0:
            self.p.increment(replica, amount)
        elif amount < 0:
            self.n.increment(replica, -amount)

    @property
    def value(self) -> int:
        """The count: P's value minus N's."""
        return self.p.value - self.n.value

    def merge(self, other: PNCounter) -> PNCounter:
        """The join: P and N merged separately."""
        return PNCounter(self.p.merge(other.p), self.n.merge(other.n))

    def copy(self) -> PNCounter:
        """An independent copy."""
        return PNCounter(self.p.copy(), self.n.copy())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PNCounter) and self.p == other.p and self.n == other.n

    def __repr__(self) -> str:
        return f"PNCounter(+{self.p.counts}, -{self.n.counts})"


class ORSet:
    """Observed-remove set (add wins). ``adds[e]`` = tags of adds of ``e``; ``removed`` = tombstoned
    tags. A tag must be unique per add (e.g. ``(replica, sequence number)``)."""

    __slots__ = ("adds", "removed")

    def __init__(self, adds: dict[Hashable, set] | None = None, removed: set | None = None) -> None:
        self.adds = {e: set(t) for e, t in (adds or {}).items()}
        self.removed = set(removed or ())

    def add(self, element: Hashable, tag: Hashable) -> None:
        """Add ``element`` with a unique ``tag`` (the observed-remove set's add; Shapiro et al.
        2011).
        """
        self.adds.setdefault(element, set()).add(tag)

    def remove(self, element: Hashable) -> None:
        """Remove the adds of ``element`` this replica has observed (later/concurrent adds survive)."""
        self.removed |= self.adds.get(element, set())

    def __contains__(self, element: Hashable) -> bool:
        return bool(self.adds.get(element, set()) - self.removed)

    @property
    def value(self) -> frozenset:
        """The elements with at least one add tag not removed."""
        return frozenset(e for e, tags in self.adds.items() if tags - self.removed)

    def merge(self, other: ORSet) -> ORSet:
        """The join: the union of both replicas' add tags and of their removed tags."""
        adds = {e: set(t) for e, t in self.adds.items()}
        for e, t in other.adds.items():
            adds.setdefault(e, set()).update(t)
        return ORSet(adds, self.removed | other.removed)

    def copy(self) -> ORSet:
        """An independent copy."""
        return ORSet(self.adds, self.removed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ORSet) and self.adds == other.adds and self.removed == other.removed

    def __repr__(self) -> str:
        return f"ORSet({sorted(map(repr, self.value))})"


class LWWRegister:
    """Last-writer-wins register: keeps the write with the largest ``(timestamp, replica)``.
    Each replica must stamp its writes with distinct timestamps (ties across replicas are
    broken by the replica name, so merge stays commutative)."""

    __slots__ = ("stamp", "value")

    def __init__(self, value: Any = None, stamp: tuple = (-math.inf, "")) -> None:
        self.value = value
        self.stamp = stamp

    def set(self, value: Any, timestamp: float, replica: str) -> None:
        """Write ``value`` stamped ``(timestamp, replica)``; it takes effect only if that stamp is
        the largest seen.
        """
        stamp = (timestamp, replica)
        if stamp > self.stamp:
            self.value, self.stamp = value, stamp

    def merge(self, other: LWWRegister) -> LWWRegister:
        """The join: the register with the larger ``(timestamp, replica)`` stamp."""
        w = other if other.stamp > self.stamp else self
        return LWWRegister(w.value, w.stamp)

    def copy(self) -> LWWRegister:
        """A copy of the register's stamp and value (the value object itself is shared)."""
        return LWWRegister(self.value, self.stamp)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LWWRegister) and (self.stamp, self.value) == (other.stamp, other.value)

    def __repr__(self) -> str:
        return f"LWWRegister({self.value!r} @ {self.stamp})"


KINDS = {"gcounter": GCounter, "pncounter": PNCounter, "orset": ORSet, "lww": LWWRegister}


class CRDTStore:
    """``n`` replicas of one CRDT of ``kind``, replicated by periodic state gossip to a random peer.

    ``push_pull``: the receiver of a gossip that was missing something sends its merged state
    back (one round trip brings both sides up to date); otherwise push only.
    """

    def __init__(
        self,
        sim: Simulation,
        n: int = 3,
        kind: str = "pncounter",
        *,
        gossip_interval_s: float = 0.1,
        push_pull: bool = True,
        prefix: str = "crdt",
        clock: dict | None = None,
    ) -> None:
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an integer >= 1 replicas, got {n!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if not (isinstance(gossip_interval_s, (int, float)) and math.isfinite(gossip_interval_s)
                and gossip_interval_s > 0):
            raise ValueError(f"gossip_interval_s must be > 0 seconds, got {gossip_interval_s!r}")
        self.sim, self.kind, self.name = sim, kind, prefix
        self.gossip_interval_s = float(gossip_interval_s)
        self.push_pull = push_pull
        self.nodes: list[Node] = [sim.node(f"{prefix}{i}", clock=clock) for i in range(n)]
        self.gossip_sent = 0
        for node in self.nodes:
            node.durable["crdt"] = KINDS[kind]()
            node.durable["seq"] = 0
            self._install(node)

    # -- wiring -----------------------------------------------------------------------------
    def _install(self, node: Node) -> None:
        peers = [m.name for m in self.nodes if m is not node]
        pick = self.sim.uniforms(f"{self.name}.gossip.{node.name}")
        kind = self.kind

        def incr(msg: Message) -> bool:
            if kind not in ("gcounter", "pncounter"):
                raise RpcError(f"crdt.incr unsupported by {kind}")
            (amount,) = msg.payload
            if kind == "gcounter" and amount < 0:
                raise RpcError("negative increment on a G-counter")
            node.durable["crdt"].increment(node.name, amount)
            return True

        def add(msg: Message) -> bool:
            if kind != "orset":
                raise RpcError(f"crdt.add unsupported by {kind}")
            node.durable["seq"] += 1
            node.durable["crdt"].add(msg.payload[0], (node.name, node.durable["seq"]))
            return True

        def remove(msg: Message) -> bool:
            if kind != "orset":
                raise RpcError(f"crdt.remove unsupported by {kind}")
            node.durable["crdt"].remove(msg.payload[0])
            return True

        def set_(msg: Message) -> bool:
            if kind != "lww":
                raise RpcError(f"crdt.set unsupported by {kind}")
            node.durable["crdt"].set(msg.payload[0], node.clock.now(), node.name)
            return True

        def read(msg: Message) -> Any:
            return self.value_of(node)

        def gossip(msg: Message) -> None:
            mine = node.durable["crdt"]
            merged = mine.merge(msg.payload)
            node.durable["crdt"] = merged
            if self.push_pull and msg.op == "crdt.gossip" and merged != msg.payload:
                node.send(msg.src, "crdt.gossip_reply", merged.copy())

        def tick() -> None:
            if peers:
                node.send(peers[int(pick() * len(peers))], "crdt.gossip", node.durable["crdt"].copy())
                self.gossip_sent += 1
            node.after(self.gossip_interval_s, tick)

        for op, h in (("crdt.incr", incr), ("crdt.add", add), ("crdt.remove", remove), ("crdt.set", set_),
                      ("crdt.read", read), ("crdt.gossip", gossip), ("crdt.gossip_reply", gossip)):
            node.on(op, h)
        # stagger the first round so replicas do not gossip in lockstep
        node.after(pick() * self.gossip_interval_s, tick)
        node.on_recover(lambda: node.after(pick() * self.gossip_interval_s, tick))

    # -- inspection ---------------------------------------------------------------------------
    def value_of(self, node: Node) -> Any:
        """The CRDT value at replica ``node`` (a set as a tuple sorted by repr, for comparison)."""
        v = node.durable["crdt"].value
        return tuple(sorted(v, key=repr)) if isinstance(v, frozenset) else v

    def values(self) -> list[Any]:
        """Every replica's value, in replica order."""
        return [self.value_of(n) for n in self.nodes]

    def converged(self) -> bool:
        """True when every replica holds the same state (not just the same value)."""
        states = [n.durable["crdt"] for n in self.nodes]
        return all(s == states[0] for s in states[1:])


class CounterClients:
    """Poisson clients that increment a CRDT counter at their home replica and account for it:
    ``acked`` (ok replies), ``maybe`` (timeouts: applied or not), ``failed`` (definite errors).
    After every replica has merged everything, the counter must lie in
    ``[acked, acked + maybe]``: no acknowledged increment is lost."""

    def __init__(self, sim: Simulation, store: CRDTStore, *, clients: Sequence[str], homes: Sequence[str],
                 rate: float = 20.0, timeout_s: float = 0.2, stop_at: float = math.inf) -> None:
        if len(clients) != len(homes) or not clients:
            raise ValueError("clients and homes must be non-empty lists of equal length")
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be > 0 increments per second, got {rate!r}")
        from simulator import Exponential

        self.sim, self.store, self.timeout_s, self.stop_at = sim, store, timeout_s, stop_at
        self.acked = self.maybe = self.failed = 0
        self.acked_by_client: dict[str, int] = {c: 0 for c in clients}
        for c, home in zip(clients, homes):
            node = sim.nodes.get(c) or sim.node(c)
            gap = sim.sampler(Exponential(1.0 / rate), f"{store.name}.{c}.arrivals")
            sim.at(gap(), self._arrival(node, home, gap))

    def _arrival(self, node: Node, home: str, gap):
        def fire() -> None:
            if self.sim.now >= self.stop_at:
                return
            rid = self.sim.metrics.begin(node.name, home, "incr", self.sim.now)

            def done(outcome: str, _v) -> None:
                if outcome == "ok":
                    self.acked += 1
                    self.acked_by_client[node.name] += 1
                elif outcome == "timeout":
                    self.maybe += 1
                else:
                    self.failed += 1
                self.sim.metrics.end(rid, self.sim.now, outcome)

            node.call(home, "crdt.incr", (1,), self.timeout_s, done)
            self.sim.at(gap(), fire)

        return fire
