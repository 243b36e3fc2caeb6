"""A causal+ key-value store (COPS: Lloyd et al., "Don't Settle for Eventual", SOSP 2011).

``n`` fully replicated replicas. A client is sticky to a home replica and carries a *context*:
``key -> version`` of everything it has read or written, closed under dependencies (a value read
brings its own dependencies into the context), so the context is the client's causal past.

- ``causal.write (key, value, context)``: the replica stamps a Lamport version
  ``(counter, replica)`` above every version in the context (so an effect always wins last-writer-
  wins against its causes: convergent conflict handling), makes it visible locally at once,
  replies the version, and logs it for asynchronous replication with the context as its
  dependencies.
- ``causal.read (key, context)``: the visible ``(value, version, deps)`` of the key.
- Replication: every ``replication_interval_s`` each replica sends each peer the log entries it
  has not acknowledged (resent until acknowledged, so writes survive a partition). A receiver
  makes a remote write visible only once every dependency is visible there (COPS's
  ``dep_check``: the key's visible version is at least the dependency's); until then it waits
  in ``pending``.
- Fail-over: every request carries the client's context. A replica that has not made the whole
  context visible answers ``RpcError("causal_deps_missing")`` (definite: nothing happened); a
  :class:`CausalClient` then refuses the operation (``on_missing="refuse"``) or retries every
  ``poll_s`` until its timeout (``"wait"``). A client that stays on its home replica never meets
  this: its context came from there. That is "sticky availability" (Bailis et al., HAT, VLDB 2014).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from simulator import Node, RpcError, Simulation

from .kv import KVStoreBase

DEPS_MISSING = "causal_deps_missing"
Version = tuple[int, str]
ZERO: Version = (0, "")


class CausalStore(KVStoreBase):
    """Causal+ store (see the module docstring). ``stats``: remote writes applied / held back."""

    def __init__(self, sim: Simulation, n: int = 3, *, replication_interval_s: float = 0.05,
                 replica_timeout_s: float = 0.2, prefix: str = "c") -> None:
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an integer >= 1 replicas, got {n!r}")
        for nm, v in (("replication_interval_s", replication_interval_s), ("replica_timeout_s", replica_timeout_s)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number of seconds > 0, got {v!r}")
        self.sim, self.name = sim, prefix
        self.interval, self.replica_timeout_s = float(replication_interval_s), float(replica_timeout_s)
        self.nodes: list[Node] = [sim.node(f"{prefix}{i}") for i in range(n)]
        self.stats = dict(remote_applied=0, held_back=0)
        for nd in self.nodes:
            self._install(nd)

    # -- inspection --------------------------------------------------------------------------
    def visible(self, replica: str, key: Any) -> tuple[Any, Version]:
        """``(value, version)`` visible at ``replica`` (``(None, ZERO)`` if absent)."""
        st = self.sim.nodes[replica].durable["kv"].get(key)
        return (None, ZERO) if st is None else (st[1], st[0])

    def satisfied(self, node: Node, context: dict) -> bool:
        """Whether ``node`` holds, for every key of ``context``, a version at least the context's:
        COPS's dependency check before a value may be read or a write applied (Lloyd et al.,
        SOSP 2011).
        """
        kv = node.durable["kv"]
        return all(k in kv and kv[k][0] >= v for k, v in context.items())

    def converged(self) -> bool:
        """Whether every replica holds the same versions and none has a write still held back."""
        states = [{k: s[0] for k, s in nd.durable["kv"].items()} for nd in self.nodes]
        return all(s == states[0] for s in states) and not any(nd.durable["pending"] for nd in self.nodes)

    # -- wiring ------------------------------------------------------------------------------
    def _install(self, node: Node) -> None:
        d = node.durable
        d["kv"] = {}  # key -> (version, value, deps): visible state
        d["pending"] = []  # remote writes waiting for their dependencies
        d["log"] = []  # this replica's own writes, in order: (key, version, value, deps)
        d["acked"] = {nd.name: 0 for nd in self.nodes if nd is not node}
        d["lamport"] = 0
        node.on("causal.write", lambda m: self._write(node, m))
        node.on("causal.read", lambda m: self._read(node, m))
        node.on("causal.replicate", lambda m: self._receive(node, m.payload))
        node.after(self.interval, lambda: self._replicate(node))
        node.on_recover(lambda: node.after(self.interval, lambda: self._replicate(node)))

    def _check(self, node: Node, context: dict) -> None:
        if not self.satisfied(node, context):
            raise RpcError(DEPS_MISSING)

    def _write(self, node: Node, msg) -> Version:
        key, value, context = msg.payload
        self._check(node, context)
        d = node.durable
        d["lamport"] = max([d["lamport"]] + [v[0] for v in context.values()]) + 1
        version = (d["lamport"], node.name)
        deps = dict(context)
        self._make_visible(node, key, version, value, deps)
        d["log"].append((key, version, value, deps))
        return version

    def _read(self, node: Node, msg) -> tuple[Any, Version, dict]:
        key, context = msg.payload
        self._check(node, context)
        st = node.durable["kv"].get(key)
        return (None, ZERO, {}) if st is None else (st[1], st[0], st[2])

    def _make_visible(self, node: Node, key: Any, version: Version, value: Any, deps: dict) -> None:
        kv = node.durable["kv"]
        old = kv.get(key)
        if old is None or version > old[0]:  # last writer wins by Lamport version: convergent
            kv[key] = (version, value, deps)
        node.durable["lamport"] = max(node.durable["lamport"], version[0])

    # -- replication -------------------------------------------------------------------------
    def _replicate(self, node: Node) -> None:
        d = node.durable
        for peer, upto in d["acked"].items():
            end = len(d["log"])
            if upto < end:
                def done(outcome: str, _v: Any, peer: str = peer, end: int = end) -> None:
                    if outcome == "ok":
                        d["acked"][peer] = max(d["acked"][peer], end)
                node.call(peer, "causal.replicate", d["log"][upto:end], self.replica_timeout_s, done)
        node.after(self.interval, lambda: self._replicate(node))

    def _receive(self, node: Node, entries: list) -> bool:
        kv, pending = node.durable["kv"], node.durable["pending"]
        for e in entries:
            key, version = e[0], e[1]
            if (key in kv and kv[key][0] >= version) or e in pending:
                continue  # a resend of something already visible (or superseded) or waiting
            pending.append(e)
        progress = True
        while progress:  # apply everything whose dependencies are now visible, in any order
            progress = False
            for e in list(pending):
                if self.satisfied(node, e[3]):
                    pending.remove(e)
                    self._make_visible(node, e[0], e[1], e[2], e[3])
                    self.stats["remote_applied"] += 1
                    progress = True
        self.stats["held_back"] = max(self.stats["held_back"], len(pending))
        return True


class CausalClient:
    """A client of a :class:`CausalStore` carrying its causal context.

    ``pick()`` names the replica for each operation (a sticky client always returns its home).
    ``read(key, done)`` / ``write(key, value, done)`` call ``done(outcome, value)`` once with
    ``ok`` (the value read / ``True``), ``fail`` (refused: definitely did not happen) or
    ``info`` (timed out: a write may have happened)."""

    def __init__(self, node: Node, pick: Callable[[], str], *, timeout_s: float = 0.5,
                 on_missing: str = "wait", poll_s: float = 0.01) -> None:
        if on_missing not in ("wait", "refuse"):
            raise ValueError(f"on_missing must be 'wait' or 'refuse', got {on_missing!r}")
        self.node, self.pick, self.timeout_s = node, pick, float(timeout_s)
        self.on_missing, self.poll_s = on_missing, float(poll_s)
        self.context: dict[Any, Version] = {}
        self.missing = 0  # times a replica lacked part of the context (then waited on or refused)

    def _absorb(self, key: Any, version: Version, deps: dict) -> None:
        for k, v in list(deps.items()) + [(key, version)]:
            if v > self.context.get(k, ZERO):
                self.context[k] = v

    def read(self, key: Any, done: Callable[[str, Any], None]) -> None:
        """Read ``key`` at the picked replica within the client's context, absorb the value's
        dependencies, then ``done(outcome, value)`` once (``info`` on timeout, after
        ``timeout_s`` seconds).
        """
        def ok(v: Any) -> None:
            value, version, deps = v
            if version != ZERO:
                self._absorb(key, version, deps)
            done("ok", value)
        self._go("causal.read", (key, dict(self.context)), ok, done, self.node.sim.now + self.timeout_s, False)

    def write(self, key: Any, value: Any, done: Callable[[str, Any], None]) -> None:
        """Write ``key = value`` with the current context as its dependencies, then
        ``done(outcome, True)`` once; the new version joins the context.
        """
        ctx = dict(self.context)

        def ok(version: Version) -> None:
            self._absorb(key, version, ctx)
            done("ok", True)
        self._go("causal.write", (key, value, ctx), ok, done, self.node.sim.now + self.timeout_s, True)

    def _go(self, op: str, payload: tuple, ok: Callable, done: Callable, deadline: float, write: bool) -> None:
        sim = self.node.sim
        target = self.pick()

        def cb(outcome: str, v: Any) -> None:
            if outcome == "ok":
                ok(v)
            elif outcome == "error" and v == DEPS_MISSING:
                self.missing += 1
                if self.on_missing == "wait" and sim.now + self.poll_s < deadline:
                    self.node.after(self.poll_s, lambda: self._go(op, payload, ok, done, deadline, write))
                else:
                    done("fail", DEPS_MISSING)
            elif outcome == "timeout":
                done("info" if write else "fail", "timeout")
            else:
                done("fail", outcome)
        self.node.call(target, op, payload, max(deadline - sim.now, 1e-9), cb)
