"""Event sourcing: an append-only event store per aggregate, optimistic concurrency, snapshots, replay.

Fowler, "Event Sourcing" (2005); Richardson, "Microservices Patterns" (2018), ch. 6: a service does
not store an aggregate's current state but the sequence of events that changed it; the state is
the *fold* of those events (``state = reduce(apply, events, initial)``).

- :class:`EventStore` keeps, in a node's durable storage, one stream per aggregate and a global log
  (the order of all appends, which a relay or projector tails). :meth:`EventStore.append` takes the
  *expected version* — the version the caller's decision was based on — and refuses the append with
  :class:`ConcurrencyError` if another writer appended in between (optimistic concurrency, as in
  EventStoreDB's ``expectedRevision`` or a ``UNIQUE(aggregate, version)`` constraint).
- Every ``snapshot_every`` events of a stream a **snapshot** ``(version, state)`` is saved, so loading
  an aggregate folds only the events since its last snapshot.
- :class:`AccountService` is a node holding the folded states in memory (a cache that a crash
  loses). On recovery it **replays**: ``snapshot_load_s`` per aggregate that has a snapshot plus
  ``replay_s`` per event since the last snapshot, before it answers again (commands meanwhile are
  refused ``recovering``). So recovery time = ``snapshot_load_s × snapshots + replay_s × events since
  the snapshots`` — linear in the events since the last snapshot, which with snapshots every k events
  averages (k − 1)/2 per aggregate instead of the whole history.

Commands on one account read its state when they arrive and append after ``service`` seconds, so two
commands on the same account in flight together conflict: the later append fails its version
check, and the service reloads and decides again (``conflict_retries`` times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator import NO_REPLY, Message

if TYPE_CHECKING:
    from simulator import Node, Simulation

COMMAND = "account.command"
DEPOSIT, WITHDRAW = "deposit", "withdraw"


class ConcurrencyError(Exception):
    """An append whose expected version is not the stream's current version."""

    def __init__(self, aggregate: Hashable, expected: int, actual: int) -> None:
        super().__init__(f"stream {aggregate!r}: expected version {expected}, found {actual}")
        self.aggregate, self.expected, self.actual = aggregate, expected, actual


@dataclass(frozen=True)
class Event:
    """One stored event: its aggregate's stream, 1-based ``version`` in it, ``kind``, ``data`` and
    the true time ``at`` (seconds) it was appended (Fowler, "Event Sourcing", 2005).
    """
    aggregate: Hashable
    version: int  # 1-based position in its stream
    kind: str
    data: Any
    at: float  # when it was appended (true time)


class EventStore:
    """Streams, snapshots and the global log of one node, in its durable storage."""

    def __init__(self, node: Node, *, fold: Callable[[Any, Event], Any], initial: Callable[[], Any],
                 snapshot_every: int | None = None, name: str = "es") -> None:
        if snapshot_every is not None and not (isinstance(snapshot_every, int) and snapshot_every >= 1):
            raise ValueError(f"snapshot_every must be an integer >= 1 or None, got {snapshot_every!r}")
        self.node, self.fold, self.initial, self.snapshot_every = node, fold, initial, snapshot_every
        d = node.durable
        self.streams: dict[Hashable, list[Event]] = d.setdefault(f"{name}.streams", {})
        self.snapshots: dict[Hashable, tuple[int, Any]] = d.setdefault(f"{name}.snapshots", {})
        self.log: list[Event] = d.setdefault(f"{name}.log", [])
        self.on_append: list[Callable[[Event], None]] = []

    def version(self, aggregate: Hashable) -> int:
        """The stream's current version: how many events ``aggregate`` has (0 for a new one)."""
        return len(self.streams.get(aggregate, ()))

    def append(self, aggregate: Hashable, expected_version: int, events: list[tuple[str, Any]]) -> list[Event]:
        """Append ``(kind, data)`` events atomically if the stream is at ``expected_version``."""
        stream = self.streams.setdefault(aggregate, [])
        if len(stream) != expected_version:
            raise ConcurrencyError(aggregate, expected_version, len(stream))
        now = self.node.env.now
        new = [Event(aggregate, expected_version + i + 1, k, v, now) for i, (k, v) in enumerate(events)]
        stream.extend(new)
        self.log.extend(new)
        k = self.snapshot_every
        if k and len(stream) // k > expected_version // k:
            v = len(stream) // k * k
            self.snapshots[aggregate] = (v, self.load(aggregate, upto=v)[0])
        for e in new:
            for fn in self.on_append:
                fn(e)
        return new

    def load(self, aggregate: Hashable, upto: int | None = None) -> tuple[Any, int]:
        """``(state, version)``: the last snapshot at or before ``upto``, folded forward."""
        stream = self.streams.get(aggregate, [])
        upto = len(stream) if upto is None else upto
        v, state = self.snapshots.get(aggregate, (0, None))
        if v > upto or state is None:
            v, state = 0, self.initial()
        for e in stream[v:upto]:
            state = self.fold(state, e)
        return state, upto

    def since_snapshot(self, aggregate: Hashable) -> int:
        """Events a replay of ``aggregate`` must fold."""
        return self.version(aggregate) - self.snapshots.get(aggregate, (0, None))[0]


# -- a bank account, event sourced -------------------------------------------------------------------
def fold_account(balance: float, e: Event) -> float:
    """An account's fold: ``Deposited`` adds ``data`` to the balance, any other event subtracts it.
    """
    return balance + e.data if e.kind == "Deposited" else balance - e.data


@dataclass
class Recovery:
    """One replay after a crash (a measurement)."""

    recovered_at: float
    ready_at: float
    events_replayed: int
    snapshots_loaded: int
    total_events: int

    @property
    def duration_s(self) -> float:
        """How long the replay took, seconds from recovery to ready."""
        return self.ready_at - self.recovered_at


class AccountService:
    """Event-sourced accounts on node ``name`` (see the module docstring)."""

    def __init__(self, sim: Simulation, *, name: str = "accounts", snapshot_every: int | None = None,
                 replay_s: float = 1e-4, snapshot_load_s: float = 1e-3, service: float = 0.001,
                 conflict_retries: int = 3) -> None:
        for n, v in (("replay_s", replay_s), ("snapshot_load_s", snapshot_load_s), ("service", service)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{n} must be a finite number of seconds >= 0, got {v!r}")
        self.sim, self.name = sim, name
        self.replay_s, self.snapshot_load_s, self.service = float(replay_s), float(snapshot_load_s), float(service)
        self.conflict_retries = int(conflict_retries)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.store = EventStore(self.node, fold=fold_account, initial=float, snapshot_every=snapshot_every)
        self.recoveries: list[Recovery] = []
        self.conflicts = self.refused_recovering = 0
        self.node.state["ready"] = True
        self.node.on(COMMAND, self._on_command)
        self.node.on_recover(self._replay)

    @property
    def cache(self) -> dict:
        """The in-memory (volatile) state cache, account -> (balance, version); lost on a crash and
        rebuilt by replay.
        """
        return self.node.state.setdefault("cache", {})

    def _state(self, acct: Hashable) -> tuple[float, int]:
        if acct not in self.cache:
            self.cache[acct] = self.store.load(acct)
        return self.cache[acct]

    def _on_command(self, msg: Message) -> Any:
        if not self.node.state.get("ready"):
            self.refused_recovering += 1
            self.node.reply(msg, "recovering", "error")
            return NO_REPLY
        self._decide(msg, 0)
        return NO_REPLY

    def _decide(self, msg: Message, tries: int) -> None:
        acct, kind, amount = msg.payload
        balance, version = self._state(acct)  # read now, append after the service time
        node = self.node

        def commit() -> None:
            if kind == WITHDRAW and balance < amount:
                node.reply(msg, "insufficient_funds", "error")
                return
            try:
                new = self.store.append(acct, version, [("Deposited" if kind == DEPOSIT else "Withdrawn", amount)])
            except ConcurrencyError:
                self.conflicts += 1
                self.cache.pop(acct, None)
                if tries < self.conflict_retries:
                    self._decide(msg, tries + 1)
                else:
                    node.reply(msg, "conflict", "error")
                return
            self.cache[acct] = (fold_account(balance, new[0]), version + 1)
            node.reply(msg, version + 1)

        node.after(self.service * node.slow_factor, commit)

    def replay_cost(self) -> tuple[float, int, int]:
        """(seconds, events to fold, snapshots to load) of a replay of every aggregate now."""
        events = sum(self.store.since_snapshot(a) for a in self.store.streams)
        snaps = len(self.store.snapshots)
        return self.snapshot_load_s * snaps + self.replay_s * events, events, snaps

    def _replay(self) -> None:
        node, t0 = self.node, self.sim.now
        node.state["ready"] = False
        cost, events, snaps = self.replay_cost()

        def ready() -> None:
            node.state["cache"] = {a: self.store.load(a) for a in self.store.streams}
            node.state["ready"] = True
            self.recoveries.append(Recovery(t0, self.sim.now, events, snaps, len(self.store.log)))

        node.after(cost, ready)

    def balance(self, acct: Hashable) -> float:
        """The folded state from the durable store (an observer's read, outside the simulated world)."""
        return self.store.load(acct)[0]
