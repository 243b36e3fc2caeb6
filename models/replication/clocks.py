"""Logical clocks: Lamport clocks, vector clocks (version vectors), hybrid logical clocks.

- :class:`LamportClock` — Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
  System" (CACM 1978): if ``e`` happens before ``f`` then ``L(e) < L(f)`` (not conversely).
- :class:`VectorClock` — Fidge (1988) / Mattern (1989): ``e`` happens before ``f`` *iff*
  ``V(e) < V(f)``, so concurrency is detected exactly. The same structure indexed by replica
  instead of process is a *version vector* (Parker et al., 1983), used by Dynamo and Riak to
  keep concurrent writes as siblings.
- :class:`HybridLogicalClock` — Kulkarni, Demirbas, Madappa, Avva, Leone, "Logical Physical
  Clocks" (OPODIS 2014), Fig. 5: a timestamp ``(l, c)`` where ``l`` tracks the largest
  physical time seen (so ``l >= pt`` and ``l`` never runs ahead of the largest physical clock)
  and ``c`` breaks ties causally; ``e`` happens before ``f`` implies ``(l, c)(e) < (l, c)(f)``.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Mapping

BEFORE, AFTER, EQUAL, CONCURRENT = "before", "after", "equal", "concurrent"


class LamportClock:
    """A scalar logical clock. ``tick()`` for a local or send event, ``receive(t)`` on a receive."""

    __slots__ = ("time",)

    def __init__(self, time: int = 0) -> None:
        self.time = int(time)

    def tick(self) -> int:
        """A local event or a send: advance and return the event's timestamp."""
        self.time += 1
        return self.time

    send = tick

    def receive(self, t: int) -> int:
        """A receive of a message stamped ``t``: jump past it; return the event's timestamp."""
        self.time = max(self.time, int(t)) + 1
        return self.time


class VectorClock:
    """An immutable vector clock / version vector: a map ``id -> counter`` (missing = 0).

    ``a.compare(b)`` is ``"before"`` (a happened before b), ``"after"``, ``"equal"`` or
    ``"concurrent"``; ``merge`` is the pointwise maximum; ``increment(i)`` bumps entry ``i``.
    """

    __slots__ = ("_d", "_hash")

    def __init__(self, entries: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        d = dict(entries)
        for k, v in d.items():
            if not (isinstance(v, int) and v >= 0):
                raise ValueError(f"vector clock entry {k!r} must be an integer >= 0, got {v!r}")
        self._d = {k: v for k, v in d.items() if v}
        self._hash: int | None = None

    def __getitem__(self, k: str) -> int:
        return self._d.get(k, 0)

    def items(self) -> ItemsView[str, int]:
        """The ``(node, counter)`` entries (nodes absent from the clock count 0)."""
        return self._d.items()

    def as_dict(self) -> dict[str, int]:
        """The entries as a new plain dict, node -> counter."""
        return dict(self._d)

    def increment(self, k: str) -> VectorClock:
        """A new clock with ``k``'s entry one higher (a local event at ``k``; Fidge 1988, Mattern
        1989).
        """
        d = dict(self._d)
        d[k] = d.get(k, 0) + 1
        return VectorClock(d)

    def merge(self, other: VectorClock) -> VectorClock:
        """A new clock with the entry-wise maximum of both (the receive rule, without the
        increment).
        """
        d = dict(self._d)
        for k, v in other._d.items():
            if v > d.get(k, 0):
                d[k] = v
        return VectorClock(d)

    def compare(self, other: VectorClock) -> str:
        """How this clock relates to ``other``: ``EQUAL``, ``BEFORE`` (happened before), ``AFTER``
        or ``CONCURRENT``.
        """
        le = all(v <= other._d.get(k, 0) for k, v in self._d.items())
        ge = all(v <= self._d.get(k, 0) for k, v in other._d.items())
        if le and ge:
            return EQUAL
        if le:
            return BEFORE
        if ge:
            return AFTER
        return CONCURRENT

    def descends(self, other: VectorClock) -> bool:
        """True if this clock has seen everything ``other`` has (after or equal)."""
        return all(v <= self._d.get(k, 0) for k, v in other._d.items())

    def __lt__(self, other: VectorClock) -> bool:
        return self.compare(other) == BEFORE

    def __le__(self, other: VectorClock) -> bool:
        return other.descends(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorClock) and self._d == other._d

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._d.items()))
        return self._hash

    def __repr__(self) -> str:
        return "VC(" + ", ".join(f"{k}:{v}" for k, v in sorted(self._d.items())) + ")"


class HybridLogicalClock:
    """Kulkarni et al. (2014) hybrid logical clock over a physical clock ``now()`` (e.g.
    ``node.clock.now``). Timestamps are tuples ``(l, c)``, compared lexicographically."""

    __slots__ = ("now", "l", "c")

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.l = -float("inf")
        self.c = 0

    def tick(self) -> tuple[float, int]:
        """A local or send event (Fig. 5, "send or local event")."""
        pt = self.now()
        l_old = self.l
        self.l = max(l_old, pt)
        self.c = self.c + 1 if self.l == l_old else 0
        return (self.l, self.c)

    send = tick

    def receive(self, ts: tuple[float, int]) -> tuple[float, int]:
        """A receive of a message stamped ``ts = (l_m, c_m)`` (Fig. 5, "receive event")."""
        l_m, c_m = ts
        pt = self.now()
        l_old = self.l
        self.l = max(l_old, l_m, pt)
        if self.l == l_old and self.l == l_m:
            self.c = max(self.c, c_m) + 1
        elif self.l == l_old:
            self.c += 1
        elif self.l == l_m:
            self.c = c_m + 1
        else:
            self.c = 0
        return (self.l, self.c)

    @property
    def timestamp(self) -> tuple[float, int]:
        """The current HLC timestamp ``(l, c)`` without advancing it (Kulkarni et al. 2014)."""
        return (self.l, self.c)
