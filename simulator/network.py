"""Network: per-link latency, loss, duplication, reordering; partitions; message delivery.

Links are not materialised: a fresh network of thousands of nodes holds one default
``Link`` plus a dict of the overrides you set, never an n x n table. Partitions are a list
of active ``Cut`` objects, each answering ``blocks(src, dst)`` with dict/set lookups, and
a message is checked both when sent and when delivered, so a message in flight across a
cut that appears meanwhile is lost.

Delivery is callback based: a message in flight is one scheduled SimPy event carrying the
message, no process per message (see ARCHITECTURE: cheap hot path).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from heapq import heappush
from typing import TYPE_CHECKING

from simpy.core import NORMAL

from .distributions import Distribution, LogNormal, as_distribution

if TYPE_CHECKING:
    from .core import Simulation

REQUEST, REPLY, ONEWAY = 0, 1, 2


class Due:
    """A scheduled kernel callback: what the run loop (ours and ``Environment.step``) reads of
    a SimPy ``Event`` (``callbacks``, ``_ok``, ``_value``) and nothing more. Message deliveries,
    RPC timeouts, timers and service completions are never yielded by a process, so they need no
    full ``Event`` (its ``__init__`` is a Python call, and each one held a fresh callback list):
    ``callbacks`` is a tuple shared by every event of a kind (the loop only reads it and then
    sets the event's own attribute to None), and ``_value`` carries what the callback needs.
    Scheduled with the same ``(time, NORMAL, next id)`` entry as any SimPy event, so the event
    order is SimPy's."""

    __slots__ = ("callbacks", "_value")
    _ok = True

    def __repr__(self) -> str:
        return f"Due({self.callbacks!r}, {self._value!r})"


class Message:
    """One message on the wire. ``kind`` is REQUEST, REPLY or ONEWAY.

    For a REPLY, ``op`` holds the RPC outcome (``"ok"``, ``"error"``, …) and ``payload``
    the value. Messages are treated as immutable once sent (duplicates share the object).
    """

    __slots__ = ("src", "dst", "op", "payload", "rid", "kind", "id")

    def __init__(self, src: str, dst: str, op: str, payload, rid: int, kind: int, id: int) -> None:
        self.src = src
        self.dst = dst
        self.op = op
        self.payload = payload
        self.rid = rid
        self.kind = kind
        self.id = id

    def __repr__(self) -> str:
        k = ("req", "rep", "msg")[self.kind]
        return f"Message({k} {self.src}->{self.dst} {self.op} {self.payload!r} rid={self.rid})"


def _prob(name: str, p: float) -> float:
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


@dataclass(frozen=True)
class LinkSpec:
    """Behaviour of one directed link (or the default for all links)."""

    latency: Distribution = LogNormal(median=0.001, sigma=0.5)
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: Distribution = LogNormal(median=0.005, sigma=0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency", as_distribution(self.latency, "latency"))
        object.__setattr__(self, "reorder_delay", as_distribution(self.reorder_delay, "reorder_delay"))
        _prob("loss", self.loss)
        _prob("duplicate", self.duplicate)
        _prob("reorder", self.reorder)


class _Link:
    """A LinkSpec bound to its random streams (samplers are batched)."""

    __slots__ = ("spec", "latency", "loss", "duplicate", "reorder", "reorder_delay")

    def __init__(self, sim: Simulation, spec: LinkSpec, tag: str) -> None:
        self.spec = spec
        self.latency = sim.sampler(spec.latency, f"net.latency{tag}")
        self.loss = spec.loss
        self.duplicate = spec.duplicate
        self.reorder = spec.reorder
        self.reorder_delay = sim.sampler(spec.reorder_delay, f"net.reorder{tag}")


# -- partitions ------------------------------------------------------------------------------
class Cut:
    """An active partition. ``refuse``: senders across it get ``unreachable`` at once
    (like an ICMP unreachable / connection refused) instead of silence and a timeout."""

    refuse: bool = False

    def blocks(self, src: str, dst: str) -> bool:  # pragma: no cover
        raise NotImplementedError

    def side_of(self, node: str) -> str | None:
        return None


class Split(Cut):
    """Nodes in different groups cannot talk; nodes in no group are unaffected."""

    def __init__(self, groups: Sequence[Iterable[str]], refuse: bool = False) -> None:
        self.groups = [list(g) for g in groups]
        self.group_of = {n: i for i, g in enumerate(self.groups) for n in g}
        self.refuse = refuse

    def blocks(self, src: str, dst: str) -> bool:
        g = self.group_of
        a = g.get(src)
        if a is None:
            return False
        b = g.get(dst)
        return b is not None and a != b

    def side_of(self, node: str) -> str | None:
        i = self.group_of.get(node)
        return None if i is None else f"side{i}"

    def __repr__(self) -> str:
        return f"Split({self.groups})"


class OneWay(Cut):
    """Messages from ``src`` group to ``dst`` group are lost; the reverse direction works."""

    def __init__(self, src: Iterable[str], dst: Iterable[str], refuse: bool = False) -> None:
        self.src, self.dst = set(src), set(dst)
        self.refuse = refuse

    def blocks(self, src: str, dst: str) -> bool:
        return src in self.src and dst in self.dst

    def __repr__(self) -> str:
        return f"OneWay({sorted(self.src)} -> {sorted(self.dst)})"


class Network:
    """The message fabric between a simulation's nodes."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.env = sim.env
        self._default = _Link(sim, LinkSpec(), "")
        self._links: dict[tuple[str, str], _Link] = {}
        self._u = sim.uniforms("net.chance")
        self._ids = itertools.count()
        self.rids = itertools.count(1)
        self._deliver_cbs = (self._deliver,)
        self.cuts: list[Cut] = []
        self._spikes: list[tuple[float, float, frozenset | None]] = []  # (factor, extra_s, nodes)
        self._loss_bursts: list[tuple[float, frozenset | None]] = []
        self._colocated: frozenset[str] = frozenset()  # see colocate()
        # counters: every message sent is delivered, dropped, or still in flight
        self.sent = 0
        self.delivered = 0
        self.dropped_loss = 0
        self.dropped_partition = 0
        self.dropped_down = 0  # arrived at a crashed node
        self.duplicated = 0
        self.late_replies = 0

    # -- configuration ---------------------------------------------------------------------
    def configure(self, **kwargs) -> None:
        """Set the default link, e.g. ``configure(latency=LogNormal(0.002, 0.5), loss=0.01)``."""
        self._default = _Link(self.sim, _spec(self._default.spec, kwargs), "")

    def link(self, src: str, dst: str, *, symmetric: bool = True, **kwargs) -> None:
        """Override one link's behaviour (both directions unless ``symmetric=False``)."""
        for a, b in ((src, dst), (dst, src)) if symmetric else ((src, dst),):
            self._check_nodes("link", [a, b])
            base = self._links.get((a, b), self._default).spec
            self._links[(a, b)] = _Link(self.sim, _spec(base, kwargs), f"[{a}->{b}]")

    def _check_nodes(self, param: str, names: Iterable[str]) -> None:
        known = self.sim.nodes
        for n in names:
            if n not in known:
                raise ValueError(
                    f"{param}: unknown node {n!r}; known nodes: {sorted(known)[:20]}"
                    + (" …" if len(known) > 20 else "")
                )

    def colocate(self, nodes: Iterable[str]) -> None:
        """Messages to or from ``nodes`` take no network time (loss and partitions still apply):
        Maelstrom's clients sit beside the servers they call, because client latency hides
        anomalies (maelstrom/net.clj, ``latency-for``)."""
        names = list(_names(nodes))
        self._check_nodes("nodes", names)
        self._colocated = self._colocated | frozenset(names)

    # -- partitions ------------------------------------------------------------------------
    def partition(self, groups: Sequence[Iterable[str]], *, refuse: bool = False) -> Cut:
        """Split into ``groups`` (lists of node names). Nodes listed nowhere are unaffected."""
        groups = [list(_names(g)) for g in groups]
        if len(groups) < 2:
            raise ValueError(f"groups must list at least 2 groups, got {len(groups)}")
        seen: set[str] = set()
        for g in groups:
            self._check_nodes("groups", g)
            if seen.intersection(g):
                raise ValueError(f"groups must be disjoint; {sorted(seen.intersection(g))} repeat")
            seen.update(g)
        return self._add(Split(groups, refuse))

    def one_way(self, src: Iterable[str], dst: Iterable[str], *, refuse: bool = False) -> Cut:
        """Lose messages from ``src`` nodes to ``dst`` nodes only (asymmetric partition)."""
        src, dst = list(_names(src)), list(_names(dst))
        self._check_nodes("src", src)
        self._check_nodes("dst", dst)
        return self._add(OneWay(src, dst, refuse))

    def isolate(self, node: str, *, refuse: bool = False) -> Cut:
        """Cut one node off from every other node."""
        node = _name(node)
        self._check_nodes("node", [node])
        return self._add(Split([[node], [n for n in self.sim.nodes if n != node]], refuse))

    def bridge(self, a: Iterable[str], b: Iterable[str], bridge: str, *, refuse: bool = False) -> Cut:
        """``a`` and ``b`` cannot talk to each other; the ``bridge`` node talks to both."""
        bridge = _name(bridge)
        a, b = list(_names(a)), list(_names(b))
        if bridge in a or bridge in b:
            raise ValueError(f"bridge node {bridge!r} must be in neither group")
        return self.partition([a, b], refuse=refuse)

    def _add(self, cut: Cut) -> Cut:
        self.cuts.append(cut)
        if self.sim.trace is not None:
            self.sim.trace.event(self.env.now, "partition", "", "", repr(cut), -1)
        return cut

    def heal(self, cut: Cut | None = None) -> None:
        """Remove ``cut`` (or every cut). Healing with no partition is an error."""
        if not self.cuts:
            raise ValueError("heal: there is no partition to heal")
        if cut is None:
            self.cuts.clear()
        else:
            if cut not in self.cuts:
                raise ValueError(f"heal: {cut!r} is not an active partition")
            self.cuts.remove(cut)
        if self.sim.trace is not None:
            self.sim.trace.event(self.env.now, "heal", "", "", repr(cut), -1)

    def blocked(self, src: str, dst: str) -> Cut | None:
        """The first active cut that blocks ``src -> dst``, or None."""
        for c in self.cuts:
            if c.blocks(src, dst):
                return c
        return None

    def side_of(self, node: str) -> str:
        """Which side of the current partition ``node`` is on ("all" when connected)."""
        for c in self.cuts:
            s = c.side_of(node)
            if s is not None:
                return s
        return "all"

    # -- transient degradations (driven by faults) -------------------------------------------
    def spike(self, factor: float = 1.0, extra_s: float = 0.0, nodes: Iterable[str] | None = None):
        """Multiply latency by ``factor`` and add ``extra_s`` (for messages touching ``nodes``)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be > 0, got {factor}")
        if not (math.isfinite(extra_s) and extra_s >= 0):
            raise ValueError(f"extra_s must be >= 0, got {extra_s}")
        s = (float(factor), float(extra_s), None if nodes is None else frozenset(nodes))
        self._spikes.append(s)
        return s

    def loss_burst(self, loss: float, nodes: Iterable[str] | None = None):
        """Add an extra independent loss probability ``loss`` until removed."""
        b = (_prob("loss", loss), None if nodes is None else frozenset(nodes))
        self._loss_bursts.append(b)
        return b

    # -- the hot path --------------------------------------------------------------------------
    def send(self, src: str, dst: str, op: str, payload=None, rid: int = 0, kind: int = ONEWAY) -> bool:
        """Put a message on the wire. Returns False if it was dropped at once."""
        msg = Message(src, dst, op, payload, rid, kind, next(self._ids))
        self.sent += 1
        trace = self.sim.trace
        if trace is not None:
            trace.event(self.env.now, "send", src, dst, op, msg.id)
        if self.cuts:
            cut = self.blocked(src, dst)
            if cut is not None:
                self.dropped_partition += 1
                if trace is not None:
                    trace.event(self.env.now, "drop", src, dst, op, msg.id)
                if cut.refuse and kind == REQUEST:
                    self.sim.nodes[src]._resolve(rid, "unreachable", None)
                return False
        link = self._links.get((src, dst), self._default) if self._links else self._default
        u = self._u
        loss = link.loss
        if self._loss_bursts:
            loss = self._burst_loss(loss, src, dst)
        if loss and u() < loss:
            self.dropped_loss += 1
            if trace is not None:
                trace.event(self.env.now, "drop", src, dst, op, msg.id)
            return False
        delay = link.latency()
        if link.reorder and u() < link.reorder:
            delay += link.reorder_delay()
        if self._spikes:
            delay = self._spiked(delay, src, dst)
        # Colocated: no network time, whatever the link says (its draws are still made, so
        # colocating nodes shifts no other message's numbers).
        near = self._colocated and (src in self._colocated or dst in self._colocated)
        ev = Due()  # self._schedule(msg, delay), inlined (the hot path)
        ev._value = msg
        ev.callbacks = self._deliver_cbs
        env = self.env
        heappush(env._queue, (env._now + (0.0 if near else delay), NORMAL, next(env._eid), ev))
        if link.duplicate and u() < link.duplicate:
            self.duplicated += 1
            self.sent += 1
            d2 = link.latency()
            d2 = self._spiked(d2, src, dst) if self._spikes else d2
            self._schedule(msg, 0.0 if near else d2)
        return True

    def _schedule(self, msg: Message, delay: float) -> None:
        # A Due scheduled directly: what Timeout does, minus its checks and allocs.
        ev = Due()
        ev._value = msg
        ev.callbacks = self._deliver_cbs
        env = self.env  # Environment.schedule, inlined (the hot path)
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), ev))

    def _deliver(self, ev: Due) -> None:
        msg: Message = ev._value
        trace = self.sim.trace
        if self.cuts and self.blocked(msg.src, msg.dst) is not None:
            self.dropped_partition += 1  # in flight when the cut appeared
            if trace is not None:
                trace.event(self.env.now, "drop", msg.src, msg.dst, msg.op, msg.id)
            return
        self.delivered += 1
        if trace is not None:
            trace.event(self.env.now, "deliver", msg.src, msg.dst, msg.op, msg.id)
        self.sim.nodes[msg.dst]._receive(msg)

    def _spiked(self, delay: float, src: str, dst: str) -> float:
        for factor, extra, nodes in self._spikes:
            if nodes is None or src in nodes or dst in nodes:
                delay = delay * factor + extra
        return delay

    def _burst_loss(self, loss: float, src: str, dst: str) -> float:
        keep = 1.0 - loss
        for p, nodes in self._loss_bursts:
            if nodes is None or src in nodes or dst in nodes:
                keep *= 1.0 - p
        return 1.0 - keep

    @property
    def in_flight(self) -> int:
        return self.sent - self.delivered - self.dropped_loss - self.dropped_partition


def _spec(base: LinkSpec, kwargs: dict) -> LinkSpec:
    allowed = set(LinkSpec.__dataclass_fields__)
    bad = set(kwargs) - allowed
    if bad:
        raise ValueError(f"unknown link parameter(s) {sorted(bad)}; allowed: {sorted(allowed)}")
    fields = {k: getattr(base, k) for k in allowed}
    fields.update(kwargs)
    return LinkSpec(**fields)


def _name(n) -> str:
    return n if isinstance(n, str) else n.name


def _names(group: Iterable) -> Iterable[str]:
    if isinstance(group, str):
        raise ValueError(f"a group must be a list of node names, got the string {group!r}")
    return (_name(n) for n in group)
