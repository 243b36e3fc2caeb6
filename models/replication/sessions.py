"""Session guarantees enforced by the client over an eventually consistent store (Terry et al.,
"Session Guarantees for Weakly Consistent Replicated Data", PDIS 1994; Bayou).

A :class:`SessionClient` keeps two session vectors, projected per key: the *write set* (the
version of the session's latest write to each key) and the *read set* (the latest version it
read of each key). Each guarantee is switchable on its own:

- ``read_your_writes``: a read is served only by a replica whose version of the key is at least
  the write set's;
- ``monotonic_reads``: ... at least the read set's;
- ``monotonic_writes``: a write goes only to a replica holding the write set's version of the key,
  so the new write is ordered after it;
- ``writes_follow_reads``: a write goes only to a replica holding the read set's version.

A read is the replica's own state (``kv.get``: the ``(stamp, value)`` it holds), so the client
sees the version it is served; a write's version is what the coordinator gave it (recorded in
``store.versions``; Bayou returns it to the client as the write's WID). The write checks cost
one ``kv.get`` before the ``kv.write``. Orders: the store must order a write above the versions
its coordinator holds — ``resolution="hlc"`` (with plain physical-clock LWW a lagging clock
stamps the new write below, and monotonic writes cannot be enforced by any client).

A replica that does not satisfy the guarantee is skipped: the client refuses (``on_unmet="refuse"``)
or polls every ``poll_s`` until its timeout (``"wait"``). With everything switched off this is a
plain eventual client. Per-key vectors give Terry's guarantees as the per-key session checker
(:mod:`simulator.history.session`) defines them; Terry's cross-key writes-follow-reads ("any
server that has my write has what I read") also needs ordered propagation between servers, which
an eventual store does not have — that is what causal+ (:mod:`.causal`) adds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator import Node

from .eventual import EventualStore

UNMET = "session_guarantee_unmet"
GUARANTEES = ("read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads")


def _newer(a: Any, b: Any) -> Any:
    """The later of two stamps, ``None`` meaning "nothing yet" (stamps of one store compare)."""
    return a if b is None or (a is not None and a >= b) else b


class SessionClient:
    """Session-guarantee client of an :class:`EventualStore` made with ``record_versions=True``.
    ``pick()`` names the replica for each operation; ``done(outcome, value)`` as in
    :class:`~models.replication.causal.CausalClient`."""

    def __init__(self, node: Node, store: EventualStore, pick: Callable[[], str], *,
                 read_your_writes: bool = False, monotonic_reads: bool = False, monotonic_writes: bool = False,
                 writes_follow_reads: bool = False, timeout_s: float = 0.5, on_unmet: str = "wait",
                 poll_s: float = 0.01) -> None:
        if store.versions is None:
            raise ValueError("SessionClient needs an EventualStore made with record_versions=True")
        if on_unmet not in ("wait", "refuse"):
            raise ValueError(f"on_unmet must be 'wait' or 'refuse', got {on_unmet!r}")
        self.node, self.store, self.pick = node, store, pick
        self.ryw, self.mr, self.mw, self.wfr = read_your_writes, monotonic_reads, monotonic_writes, writes_follow_reads
        self.timeout_s, self.on_unmet, self.poll_s = float(timeout_s), on_unmet, float(poll_s)
        self.write_set: dict[Any, tuple] = {}
        self.read_set: dict[Any, tuple] = {}
        self.unmet = 0  # times a replica was behind the session's floor (then waited on or refused)

    def _floor(self, key: Any, writing: bool) -> tuple:
        f = None
        if self.ryw and not writing or self.mw and writing:
            f = _newer(f, self.write_set.get(key))
        if self.mr and not writing or self.wfr and writing:
            f = _newer(f, self.read_set.get(key))
        return f

    def read(self, key: Any, done: Callable[[str, Any], None]) -> None:
        """Read ``key`` at a replica that satisfies the enabled guarantees (Terry et al., PDIS
        1994), then ``done(outcome, value)`` once; the version read joins the read set.
        """
        def served(state: Any) -> None:
            stamp = None if state is None else state[0]
            self.read_set[key] = _newer(self.read_set.get(key), stamp)
            done("ok", None if state is None else state[1])
        self._at_replica(key, False, served, done, self.node.sim.now + self.timeout_s)

    def write(self, key: Any, value: Any, done: Callable[[str, Any], None]) -> None:
        """Write ``key = value`` at the picked replica, or at one satisfying the enabled write
        guarantees, then ``done(outcome, value)`` once.
        """
        deadline = self.node.sim.now + self.timeout_s
        if self._floor(key, True) is None:
            self._write_at(self.pick(), key, value, done, deadline)
            return
        self._at_replica(key, True, lambda _s, target: self._write_at(target, key, value, done, deadline),
                         done, deadline)

    def _write_at(self, target: str, key: Any, value: Any, done: Callable, deadline: float) -> None:
        def cb(outcome: str, v: Any) -> None:
            if outcome == "ok":
                self.write_set[key] = _newer(self.write_set.get(key), self.store.versions[value][0])
                done("ok", True)
            elif outcome == "timeout" or outcome == "error" and isinstance(v, tuple) and v[:1] == ("indeterminate",):
                done("info", "timeout")
            else:
                done("fail", outcome)
        self.node.call(target, "kv.write", (key, value), max(deadline - self.node.sim.now, 1e-9), cb)

    def _at_replica(self, key: Any, writing: bool, then: Callable, done: Callable, deadline: float) -> None:
        """Find a replica whose state of ``key`` meets the session floor, then ``then(state[, target])``."""
        sim = self.node.sim
        target = self.pick()

        def cb(outcome: str, state: Any) -> None:
            if outcome != "ok":
                done("fail", outcome)  # only a read so far: nothing happened
                return
            floor = self._floor(key, writing)
            if floor is None or state is not None and state[0] >= floor:
                then(state, target) if writing else then(state)
                return
            self.unmet += 1
            if self.on_unmet == "wait" and sim.now + self.poll_s < deadline:
                self.node.after(self.poll_s, lambda: self._at_replica(key, writing, then, done, deadline))
            else:
                done("fail", UNMET)
        self.node.call(target, "kv.get", (key,), max(deadline - sim.now, 1e-9), cb)
