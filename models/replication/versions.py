"""How a leaderless store orders the versions of a key: conflict resolution strategies.

A *state* is what a replica stores for one key; ``merge`` is commutative, associative and
idempotent (a join), so replicas that exchange states in any order converge.

- :class:`LWW` — last writer wins by ``(node-local physical timestamp, node name)`` from
  ``node.clock.now()`` (Cassandra's cell timestamps; Dynamo paper §6.3 "last write wins").
  A node whose clock is behind stamps its writes *in the past*: a newer write from it loses
  to an older write from a node whose clock is ahead — an acknowledged update silently lost
  (Kingsbury, "The trouble with timestamps", 2013).
- :class:`HLCStamps` — LWW over hybrid logical clock stamps (Kulkarni et al. 2014): a node that
  has received a version stamps its next write above it, so a write that *causally* follows
  another never loses to it, whatever the skew.
- :class:`VersionVectors` — Dynamo §4.4 / Riak siblings: a state is the set of concurrent
  ``(version vector, value)`` siblings; a write supersedes the siblings its context has seen
  (here: the coordinator's local siblings), and a read returns every concurrent sibling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from simulator.core import name_key

from .clocks import HybridLogicalClock, VectorClock

State = Any  # LWW: (stamp, value); VersionVectors: tuple of (VectorClock, value) siblings


def digest(state: State) -> int:
    """A stable 64-bit summary of a state (never Python's salted ``hash``)."""
    return name_key(repr(state))


class LWW:
    """Last writer wins by node-local physical timestamps."""

    name = "lww"

    def __init__(self, clocks: dict[str, Callable[[], float]]) -> None:
        self.clocks = clocks

    def stamp(self, node: str) -> tuple:
        """A new write's stamp at ``node``: ``(its clock's physical time, node)``."""
        return (self.clocks[node](), node)

    def write(self, node: str, local: State | None, value: Any) -> State:
        """The state of a write of ``value`` at ``node``: ``(stamp, value)``; the local state is
        overwritten.
        """
        return (self.stamp(node), value)

    def merge(self, a: State | None, b: State | None) -> State | None:
        """The join of two states: the one with the larger stamp (None is the bottom)."""
        if a is None:
            return b
        if b is None:
            return a
        return b if b[0] > a[0] else a

    def observe(self, node: str, state: State | None) -> None:
        """Called when ``node`` receives ``state`` from elsewhere (HLC advances here)."""

    def read(self, state: State | None) -> Any:
        """The value a read returns from ``state`` (None if there is none)."""
        return None if state is None else state[1]

    def supersedes(self, a: State, b: State) -> bool:
        """True if version ``a`` (one write's state) is ordered after version ``b``."""
        return a[0] > b[0]

    def values(self, state: State | None) -> tuple:
        """Every value ``state`` holds: at most one."""
        return () if state is None else (state[1],)


class HLCStamps(LWW):
    """Last writer wins by hybrid logical clock stamps ``((l, c), node)``."""

    name = "hlc"

    def __init__(self, clocks: dict[str, Callable[[], float]]) -> None:
        super().__init__(clocks)
        # kept across crashes for simplicity (a real node would persist l or wait out max skew)
        self.hlc = {n: HybridLogicalClock(f) for n, f in clocks.items()}

    def stamp(self, node: str) -> tuple:
        """A new write's stamp at ``node``: ``(its HLC tick (l, c), node)`` (Kulkarni et al. 2014).
        """
        return (self.hlc[node].tick(), node)

    def observe(self, node: str, state: State | None) -> None:
        """Let ``node``'s HLC receive a version's stamp, so its next write is stamped above it."""
        if state is not None:
            self.hlc[node].receive(state[0][0])


class VersionVectors:
    """Siblings with version vectors: nothing acknowledged is ever silently discarded."""

    name = "vv"

    def __init__(self, clocks: dict[str, Callable[[], float]] | None = None) -> None:
        # the last counter each node used for its own entry (durable, like Riak's vnode counter),
        # so two writes coordinated by one node never share a version vector
        self.counter: dict[str, int] = {}

    def write(self, node: str, local: State | None, value: Any) -> State:
        """The state after a write of ``value`` at ``node``: one sibling whose version vector
        descends every local sibling (the coordinator's context; Dynamo §4.4).
        """
        ctx = VectorClock()
        for vv, _ in local or ():
            ctx = ctx.merge(vv)
        mine = max(ctx[node], self.counter.get(node, 0)) + 1
        self.counter[node] = mine
        return ((VectorClock({**ctx.as_dict(), node: mine}), value),)

    def merge(self, a: State | None, b: State | None) -> State | None:
        """The join: the siblings of both states that no other sibling descends."""
        if a is None:
            return b
        if b is None:
            return a
        sibs: dict[VectorClock, Any] = {}
        for vv, v in (*a, *b):
            sibs[vv] = v
        keep = [(vv, v) for vv, v in sibs.items()
                if not any(o != vv and o.descends(vv) for o in sibs)]
        keep.sort(key=lambda s: (sorted(s[0].items()), repr(s[1])))
        return tuple(keep)

    def observe(self, node: str, state: State | None) -> None:
        """Nothing to do: version vectors need no clock to be told of versions seen."""
        pass

    def read(self, state: State | None) -> tuple:
        """Every concurrent sibling's value (a read returns them all, sorted)."""
        return self.values(state)

    def supersedes(self, a: State, b: State) -> bool:
        """True if write ``a``'s version vector strictly descends write ``b``'s (a saw b)."""
        va, vb = a[0][0], b[0][0]
        return va != vb and va.descends(vb)

    def values(self, state: State | None) -> tuple:
        """The siblings' values, numbers first in order, then the rest by repr."""
        return tuple(sorted((v for _, v in state or ()), key=_order))


def _order(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and math.isfinite(v) else (1, 0, repr(v))


RESOLUTIONS = {"lww": LWW, "hlc": HLCStamps, "vv": VersionVectors}
