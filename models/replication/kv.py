"""The key-value store contract every replicated store follows, and a Jepsen-style client workload.

**Store contract.** A store object has ``.sim``, ``.nodes`` (its replica :class:`Node` s, kernel
nodes that can be crashed and partitioned) and ``.name``. Every replica serves three RPC ops:

=============  ========================  ====================================================
op             payload                   reply value (outcome ``ok``)
=============  ========================  ====================================================
``kv.read``    ``(key,)``                the value, ``None`` if absent. Stores that keep
                                         siblings (version vectors) reply a ``tuple`` of the
                                         concurrent sibling values, sorted (``()`` if absent).
``kv.write``   ``(key, value)``          ``True``
``kv.cas``     ``(key, expected, new)``  ``True``; a compare that fails raises
                                         ``RpcError("cas_mismatch")`` (definite: nothing
                                         changed). Stores without cas raise
                                         ``RpcError("cas unsupported")``.
=============  ========================  ====================================================

A store that cannot serve raises :class:`RpcError` (outcome ``error``), and ``error`` means
*definitely did not take effect*: ``RpcError(("not_leader", leader_hint))`` (``leader_hint`` a
replica name or ``None``) or ``RpcError("quorum_unavailable")`` when it knows nothing was
applied. When the operation *might* have taken effect (replication started, no ack quorum in
time) a store must not reply a definite failure: it stays silent (the client times out) or
raises ``RpcError(("indeterminate", reason))``, which the client records as ``info``.

``store.route(client_name) -> list[str]``: the replicas a client should try, in preference
order (its home replica first; for Raft the believed leader first). :class:`KVStoreBase` gives
a default: a home replica picked by a stable hash of the client's name, then the others in order.

**Workload** (:class:`KVWorkload`). Each client is a kernel node (so it can be partitioned) and a
*Jepsen process*: single-threaded, at most one operation outstanding (Kingsbury, "Jepsen:
Knossos" — a history is a set of sequential processes). Arrivals are open-loop Poisson at
``rate`` per client; an arrival that finds its client busy is **skipped** (counted in
``workload.skipped``), not queued, so latency is never inflated by client-side queueing and the
offered rate is an upper bound on the issued rate. After an indeterminate outcome (``info``: a
timeout or an ``indeterminate`` error) the client continues as a NEW process id — the old
process may still be executing its operation — so each process has at most one open op and the
history stays well formed (Jepsen does the same). Process ids are integers: clients start as
``0 .. k-1``, and each replacement takes the next unused integer.

Operations: with probability ``write_ratio`` a write, ``cas_ratio`` a cas, else a read, of a key
from ``keys`` (an ``int`` k = uniform over ``0..k-1``, or a :class:`KeyChooser` such as
:class:`Zipf`). Written values are unique across the workload (1, 2, 3, …) so a checker can tell
versions apart. A cas expects the last value this workload saw for that key (``None`` if none)
and installs a fresh unique value.

Recording: every op is one request in ``sim.metrics`` (client = client name, target = first
replica tried, op = ``read`` / ``write`` / ``cas``; outcome ``ok``, ``error`` (including
``indeterminate`` errors, flagged in the extra column ``indeterminate``), ``timeout``,
``unreachable``, ``crashed`` or ``rejected``) and one operation in ``workload.history``: invoke,
then ``ok`` (reads carry the value read), ``fail`` for a definite failure, ``info`` for a timeout
or an indeterminate error. An op still in flight when the run stops stays open in both.

Redirects: if a reply is ``error`` ``("not_leader", hint)`` the client retries the same op
(same history operation, same metrics request; ``attempts`` counts tries) on ``hint`` — or, if
the hint is ``None``, on the next replica of its route — up to ``max_redirects`` times; each
try has its own ``timeout_s``. ``not_leader`` is definite, so the retry cannot duplicate the op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from simulator import Exponential
from simulator.core import name_key
from simulator.history import History

if TYPE_CHECKING:
    from simulator import Node, Simulation

READ, WRITE, CAS = "kv.read", "kv.write", "kv.cas"
NOT_LEADER = "not_leader"
QUORUM_UNAVAILABLE = "quorum_unavailable"
INDETERMINATE = "indeterminate"
CAS_MISMATCH = "cas_mismatch"
CAS_UNSUPPORTED = "cas unsupported"
# Kernel outcomes that mean "surely did not happen" (fail); "timeout" is indefinite (info).
_DEFINITE = frozenset({"error", "rejected", "unreachable", "crashed"})


class KVStore(Protocol):
    """What :class:`KVWorkload` needs from a store (see the module docstring)."""

    sim: Simulation
    nodes: list[Node]
    name: str

    def route(self, client_name: str) -> list[str]:
        """The replica names a client called ``client_name`` tries, in order."""
        ...


class KVStoreBase:
    """Shared bits of a store: replica names, and the default :meth:`route` (home replica by a
    stable hash of the client's name, then the others in ring order)."""

    sim: Simulation
    nodes: list[Node]
    name: str

    @property
    def replica_names(self) -> list[str]:
        """The replica node names, in creation order."""
        return [n.name for n in self.nodes]

    def route(self, client_name: str) -> list[str]:
        """The client's home replica (a stable hash of its name, never Python's ``hash``), then the
        others in ring order.
        """
        names = self.replica_names
        h = name_key(client_name) % len(names)
        return names[h:] + names[:h]


def is_indeterminate(value: Any) -> bool:
    """True for an ``RpcError`` value meaning "may have taken effect"."""
    return (value == INDETERMINATE or (isinstance(value, tuple) and len(value) > 0 and value[0] == INDETERMINATE))


def not_leader_hint(value: Any) -> tuple[bool, str | None]:
    """``(True, hint)`` if ``value`` is a ``("not_leader", hint)`` error value."""
    if value == NOT_LEADER:
        return True, None
    if isinstance(value, tuple) and len(value) == 2 and value[0] == NOT_LEADER:
        return True, value[1]
    return False, None


# -- key choice --------------------------------------------------------------------------------
class KeyChooser:
    """Chooses keys ``0 .. n-1``; :meth:`sampler` binds it to a named random stream."""

    n: int

    def sampler(self, sim: Simulation, stream: str) -> Callable[[], int]:  # pragma: no cover
        """A function drawing one key per call from the named random stream ``stream`` of ``sim``.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(KeyChooser):
    """Keys ``0 .. n-1`` with equal probability."""

    n: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"keys n must be an integer >= 1, got {self.n!r}")

    def sampler(self, sim: Simulation, stream: str) -> Callable[[], int]:
        """A uniform key sampler over ``0 .. n-1`` on the named stream ``stream``."""
        u, n = sim.uniforms(stream), self.n
        return lambda: int(u() * n)


@dataclass(frozen=True)
class Zipf(KeyChooser):
    """Keys ``0 .. n-1`` with P(k) proportional to ``1 / (k + 1) ** s`` (key 0 is hottest)."""

    n: int
    s: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"keys n must be an integer >= 1, got {self.n!r}")
        if not (isinstance(self.s, (int, float)) and math.isfinite(self.s) and self.s >= 0):
            raise ValueError(f"Zipf exponent s must be a finite number >= 0, got {self.s!r}")

    def probabilities(self) -> np.ndarray:
        """P(key = k) for k = 0 .. n-1, proportional to ``1 / (k + 1) ** s`` (a finite Zipf law).
        """
        w = 1.0 / np.arange(1, self.n + 1, dtype=float) ** self.s
        return w / w.sum()

    def sampler(self, sim: Simulation, stream: str) -> Callable[[], int]:
        """A Zipf key sampler on the named stream ``stream``: one uniform draw inverted through the
        CDF.
        """
        cdf = np.cumsum(self.probabilities())
        cdf[-1] = 1.0
        u = sim.uniforms(stream)
        return lambda: int(np.searchsorted(cdf, u(), side="right"))


# -- the workload ------------------------------------------------------------------------------
class _Client:
    __slots__ = ("name", "node", "process", "busy", "route", "gap", "pick_key", "pick_op")

    def __init__(self, name, node, process, route, gap, pick_key, pick_op) -> None:
        self.name = name
        self.node = node
        self.process = process
        self.busy = False
        self.route = route
        self.gap = gap
        self.pick_key = pick_key
        self.pick_op = pick_op


class KVWorkload:
    """Jepsen-style clients of a key-value store (see the module docstring for every rule)."""

    def __init__(
        self,
        sim: Simulation,
        store: KVStore,
        *,
        clients: int | Sequence[str] = 3,
        rate: float = 50.0,
        keys: int | KeyChooser = 1,
        write_ratio: float = 0.5,
        cas_ratio: float = 0.0,
        timeout_s: float = 0.5,
        start_at: float = 0.0,
        stop_at: float = math.inf,
        history: History | None = None,
        client_placement: Mapping[str, str | Sequence[str]] | None = None,
        max_redirects: int = 3,
        name: str = "kv",
    ) -> None:
        if isinstance(clients, int):
            if isinstance(clients, bool) or clients < 1:
                raise ValueError(f"clients must be an integer >= 1 or a list of names, got {clients!r}")
            names = [f"{name}_client{i}" for i in range(clients)]
        else:
            names = list(clients)
            if not names or len(set(names)) != len(names):
                raise ValueError(f"clients must be a non-empty list of distinct names, got {clients!r}")
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of ops per second per client > 0, got {rate!r}")
        for pname, v in (("write_ratio", write_ratio), ("cas_ratio", cas_ratio)):
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"{pname} must be in [0, 1], got {v!r}")
        if write_ratio + cas_ratio > 1:
            raise ValueError(f"write_ratio + cas_ratio must be <= 1, got {write_ratio + cas_ratio}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        if not (isinstance(start_at, (int, float)) and math.isfinite(start_at) and start_at >= 0):
            raise ValueError(f"start_at must be a finite number >= 0 seconds, got {start_at!r}")
        if not (isinstance(stop_at, (int, float)) and stop_at > start_at):
            raise ValueError(f"stop_at must be > start_at ({start_at}), got {stop_at!r}")
        if not (isinstance(max_redirects, int) and max_redirects >= 0):
            raise ValueError(f"max_redirects must be an integer >= 0, got {max_redirects!r}")
        chooser = Uniform(keys) if isinstance(keys, int) else keys
        if not isinstance(chooser, KeyChooser):
            raise ValueError(f"keys must be an int (uniform) or a KeyChooser such as Zipf, got {keys!r}")
        replicas = {n.name for n in store.nodes}
        self.sim, self.store, self.name = sim, store, name
        self.write_ratio, self.cas_ratio = float(write_ratio), float(cas_ratio)
        self.timeout_s, self.stop_at, self.max_redirects = float(timeout_s), float(stop_at), max_redirects
        self.history = history if history is not None else History()
        self.skipped = 0
        self.issued = 0
        self._next_value = 1
        self._next_process = len(names)
        self._last_seen: dict[Hashable, Any] = {}
        self._log = sim.metrics
        self._log.column("indeterminate", "b", 0)
        self.clients: list[_Client] = []
        for i, cname in enumerate(names):
            node = sim.nodes.get(cname) or sim.node(cname)
            if client_placement is not None and cname in client_placement:
                r = client_placement[cname]
                route = [r] if isinstance(r, str) else list(r)
            else:
                route = None  # ask the store at each op: a Raft leader hint changes over time
            if route is not None and (not route or not set(route) <= replicas):
                raise ValueError(f"client_placement[{cname!r}] must name replicas of {store.name}, got {route!r}")
            c = _Client(cname, node, i, route, sim.sampler(Exponential(1.0 / rate), f"{name}.{cname}.arrivals"),
                        chooser.sampler(sim, f"{name}.{cname}.keys"), sim.uniforms(f"{name}.{cname}.ops"))
            self.clients.append(c)
            sim.at(start_at + c.gap(), lambda c=c: self._arrive(c))

    # -- issuing -------------------------------------------------------------------------------
    def _arrive(self, c: _Client) -> None:
        sim = self.sim
        if sim.now >= self.stop_at:
            return
        sim.at(c.gap(), lambda: self._arrive(c))
        if c.busy:
            self.skipped += 1
            return
        u = c.pick_op()
        key = c.pick_key()
        if u < self.write_ratio:
            hval = self._fresh()
            f, payload = "write", (key, hval)
        elif u < self.write_ratio + self.cas_ratio:
            new = self._fresh()
            expected = self._last_seen.get(key)
            f, payload, hval = "cas", (key, expected, new), (expected, new)
        else:
            f, payload, hval = "read", (key,), None
        route = c.route if c.route is not None else self.store.route(c.name)
        c.busy = True
        self.issued += 1
        op = self.history.invoke(c.process, f, key, hval, sim.now)
        rid = self._log.begin(c.name, route[0], f, sim.now)
        self._attempt(c, f, key, payload, op, rid, route, 0, route[0])

    def _fresh(self) -> int:
        v = self._next_value
        self._next_value += 1
        return v

    def _attempt(self, c: _Client, f: str, key, payload, op: int, rid: int, route: list[str],
                 tries: int, target: str) -> None:
        def done(outcome: str, value: Any) -> None:
            now = self.sim.now
            if outcome == "error":
                redirect, hint = not_leader_hint(value)
                if redirect and tries < self.max_redirects:
                    nxt = hint if hint is not None else route[(route.index(target) + 1) % len(route)
                                                              if target in route else 0]
                    self._attempt(c, f, key, payload, op, rid, route, tries + 1, nxt)
                    return
            attempts = tries + 1
            if outcome == "ok":
                if f == "read":
                    v = tuple(value) if isinstance(value, list) else value
                    self.history.ok(op, now, v)
                    if not isinstance(v, tuple):
                        self._last_seen[key] = v
                else:
                    self.history.ok(op, now)
                    self._last_seen[key] = payload[-1]
            elif outcome == "timeout" or (outcome == "error" and is_indeterminate(value)):
                self.history.info(op, now)
                if outcome == "error":
                    self._log.set(rid, "indeterminate", 1)
                c.process = self._next_process  # the old process may still be running its op
                self._next_process += 1
            elif outcome in _DEFINITE:
                self.history.fail(op, now)
            else:  # an outcome the kernel does not define: be safe, call it indeterminate
                self.history.info(op, now)
                c.process = self._next_process
                self._next_process += 1
                outcome = "error"
            self._log.end(rid, now, outcome, attempts)
            c.busy = False

        c.node.call(target, _OPS[f], payload, self.timeout_s, done)


_OPS = {"read": READ, "write": WRITE, "cas": CAS}

