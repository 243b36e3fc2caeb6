"""A workbench test: Maelstrom's ``maelstrom test`` on the kernel, in simulated time, deterministic.

The phases follow ``maelstrom.core/maelstrom-test``: every node gets ``init`` (and again after each
restart); the workload's setup (``topology`` for broadcast); then for ``time_limit`` seconds the
clients' operations, ``gen/stagger``-ed at ``rate`` per second in all (each wait uniform on
[0, 2/rate)), to ``concurrency`` client threads bound round-robin to the nodes, while the nemesis
injects faults; then every fault is healed, ``recovery_s`` (Maelstrom: 10 s) passes, and each client
performs the workload's final operation. Clients sit beside their node (zero latency); the links
between servers have ``latency`` (Maelstrom's ``--latency`` mean, ``--latency-dist``). A client
RPC times out after ``timeout_s`` (Maelstrom: 5 s) and its process is then replaced by a new one
(Jepsen's rule after an indefinite result).

With ``bin`` (a program and its arguments), nodes n1..nN are that external program, one process each,
speaking Maelstrom's protocol on stdin/stdout (:mod:`simulator.workbench.external`); the run is then
in real time and NOT deterministic (``results()["deterministic"]`` is False). Services stay in process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.core import Simulation
from simulator.distributions import Constant, Distribution, Exponential, Uniform
from simulator.faults import FaultSchedule
from simulator.history import History
from simulator.history.ops import Op, pair_ops
from simulator.history.txn.models import MODELS as TXN_MODELS

from . import checkers
from . import nemesis as nem
from .external import ExternalHost, check_bin, realtime_simulation
from .host import Host, NetStats
from .node import Node
from .protocol import TIMEOUT, is_definite
from .system import System, is_system
from .topology import TOPOLOGIES, topology
from .workloads import WORKLOADS

LATENCY_DISTS = ("constant", "uniform", "exponential")


@dataclass(frozen=True)
class TestOptions:
    """Everything ``splitbrain test`` takes, checked at construction (``ValueError`` names the field)."""

    __test__ = False  # not a pytest test class, despite the name

    workload: str
    node: Callable[[], Node] | Any  # a Node subclass (or a factory the runner resolved)
    node_count: int = 5
    time_limit: float = 10.0
    rate: float = 5.0
    concurrency: int | None = None  # None: Maelstrom's default, one client per node
    latency_ms: float = 0.0
    latency_dist: str = "constant"
    nemesis: tuple[str, ...] = ()
    nemesis_interval: float = 10.0
    topology: str = "grid"
    availability: str | float | None = None
    consistency_models: tuple[str, ...] = ("strict-serializable",)
    recovery_s: float = 10.0
    timeout_s: float = 5.0
    seed: int = 0
    faults: FaultSchedule | None = None  # replay this schedule instead of the nemesis's
    trace: bool = True
    services_nodes: int = 5  # lww-kv's independent replicas (Maelstrom's default 5)
    extra: dict = field(default_factory=dict)
    bin: tuple[str, ...] | None = None  # an external program and its args (Maelstrom's --bin): real time

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, v: Any, allowed: str) -> None:
            if not ok:
                raise ValueError(f"{name}={v!r} is not allowed: need {allowed}")

        need(self.workload in WORKLOADS, "workload", self.workload, "one of " + ", ".join(sorted(WORKLOADS)))
        need(isinstance(self.node_count, int) and 1 <= self.node_count <= 10_000, "node_count", self.node_count,
             "an integer in 1..10000")
        for name, lo in (("time_limit", 0.0), ("recovery_s", 0.0)):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and v >= lo and (name != "time_limit" or v > 0),
                 name, v, "a finite number of seconds > 0" if name == "time_limit" else ">= 0 seconds")
        need(isinstance(self.rate, (int, float)) and math.isfinite(self.rate) and 0 <= self.rate <= 1e6, "rate",
             self.rate, "0 <= rate <= 1e6 operations per second")
        need(self.concurrency is None or (isinstance(self.concurrency, int) and 1 <= self.concurrency <= 100_000),
             "concurrency", self.concurrency, "an integer in 1..100000")
        need(isinstance(self.latency_ms, (int, float)) and math.isfinite(self.latency_ms) and self.latency_ms >= 0,
             "latency", self.latency_ms, ">= 0 ms")
        need(self.latency_dist in LATENCY_DISTS, "latency_dist", self.latency_dist,
             "one of " + ", ".join(LATENCY_DISTS))
        for k in self.nemesis:
            need(k in nem.KINDS, "nemesis", k, "a comma-separated list of " + ", ".join(nem.KINDS))
        need(isinstance(self.nemesis_interval, (int, float)) and math.isfinite(self.nemesis_interval)
             and self.nemesis_interval > 0, "nemesis_interval", self.nemesis_interval, "> 0 seconds")
        need(self.topology in TOPOLOGIES, "topology", self.topology, "one of " + ", ".join(TOPOLOGIES))
        a = self.availability
        need(a is None or a in ("total", "majority") or (isinstance(a, float) and 0 <= a <= 1), "availability", a,
             "total, majority or a fraction in [0, 1]")
        need(isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0, "timeout", self.timeout_s, "> 0 s")
        need(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        cm = self.consistency_models
        need(isinstance(cm, (tuple, list)) and len(cm) > 0 and all(m in TXN_MODELS for m in cm), "consistency_models",
             cm, "a non-empty list of " + ", ".join(TXN_MODELS))
        if self.bin is not None:
            check_bin(self.bin)  # ValueError naming bin and the path

    @property
    def clients(self) -> int:
        return self.concurrency if self.concurrency is not None else self.node_count


def latency_distribution(mean_ms: float, dist: str) -> Distribution:
    """Maelstrom's ``latency-dist`` (maelstrom/net.clj): constant mean; uniform on [0, 2 x mean];
    exponential with that mean."""
    m = mean_ms / 1000.0
    if m == 0 or dist == "constant":
        return Constant(m)
    if dist == "uniform":
        return Uniform(0.0, 2 * m)
    return Exponential(m)


class _Client:
    __slots__ = ("name", "index", "process", "node", "pending", "busy")

    def __init__(self, name: str, index: int, node: str) -> None:
        self.name, self.index, self.process, self.node = name, index, index, node
        self.pending: dict[int, Callable[[dict], None]] = {}
        self.busy = False


class TestRun:
    """One test: build with options, ``run()``, then read ``history``, ``ops``, ``results``."""

    __test__ = False

    def __init__(self, opts: TestOptions, node_factory: Callable[[], Node] | None = None,
                 services: dict[str, Callable[[], Node]] | None = None) -> None:
        self.opts = opts
        self.deterministic = opts.bin is None
        self.sim = (Simulation(seed=opts.seed, trace=opts.trace) if self.deterministic
                    else realtime_simulation(opts.seed, trace=opts.trace))
        self.nodes = [f"n{i}" for i in range(1, opts.node_count + 1)]
        self.client_names = [f"c{i}" for i in range(1, opts.clients + 1)]
        self.stats = NetStats(frozenset(self.client_names) | {"c0"})
        self.workload = WORKLOADS[opts.workload](self.sim.rng("workbench.generator"), self)
        self.sim.network(latency=latency_distribution(opts.latency_ms, opts.latency_dist))
        factory = node_factory if node_factory is not None else opts.node
        self.hosts: dict[str, Host | ExternalHost] = {}
        self.system: System | None = None
        if opts.bin is not None:  # external programs, one process per node, in real time
            for n in self.nodes:
                self.hosts[n] = ExternalHost(self.sim, n, opts.bin, self.stats)
        elif is_system(factory):  # a kernel protocol owns n1..nN itself (e.g. our RaftCluster as lin-kv)
            self.system = factory(self.sim, self.nodes)
        else:
            for n in self.nodes:
                self.hosts[n] = Host(self.sim, n, factory, self.stats)
        for name, svc in (services or {}).items():
            self.hosts[name] = Host(self.sim, name, svc, self.stats)  # services get no init (Maelstrom)
        self.history = History()
        self.majority_side: list[bool] = []  # per invocation: its node could reach a majority
        self.c0 = self.sim.node("c0")
        self._c0_pending: dict[int, str] = {}
        self._c0_id = 0
        self.clients = [_Client(c, i, self.nodes[i % len(self.nodes)]) for i, c in enumerate(self.client_names)]
        for c in self.clients:
            self.sim.node(c.name).on("*", lambda wire, c=c: self._client_receive(c, wire))
        self.c0.on("*", self._c0_receive)
        self.sim.net.colocate([*self.client_names, "c0"])
        for n in self.nodes:
            self.sim.nodes[n].on_recover(lambda n=n: self._init_node(n))
        self.end_main = opts.time_limit
        sched = opts.faults if opts.faults is not None else nem.schedule(
            self.nodes, opts.nemesis, opts.nemesis_interval, opts.time_limit, self.sim.rng("workbench.nemesis"))
        self.schedule = FaultSchedule(list(sched.faults))
        self.sim.faults.extend(self.schedule)
        self._free: list[_Client] = []
        self._waiting_op: tuple | None = None
        self._stagger = self.sim.uniforms("workbench.stagger")
        self.inited: set[str] = set()

    # -- phases -----------------------------------------------------------------------------------
    def run(self) -> TestRun:
        o = self.opts
        for name in self.nodes:
            self._init_node(name)
        if self.workload.topology:
            topo = topology(o.topology, self.nodes)
            for n in self.nodes:
                self._c0_send(n, {"type": "topology", "topology": topo})
        self._free = list(self.clients)
        if o.rate > 0:
            self.sim.at(0.0, self._dispatch_next)
        else:
            self._free = []
        final = self.workload.final_op()
        end = o.time_limit
        if final is not None:
            self.sim.at(end + o.recovery_s, lambda: self._final_phase(final))
            end = end + o.recovery_s + o.timeout_s + 1.0
        else:
            end = end + o.timeout_s + 0.001  # let the operations in flight complete or time out
        try:
            self.sim.run(until=end)
        finally:
            self.close()
        return self

    def close(self) -> None:
        """Kill and reap the external programs (``run`` does it; idempotent; nothing for in-process nodes)."""
        for h in self.hosts.values():
            if isinstance(h, ExternalHost):
                h.close()

    def _init_node(self, name: str) -> None:
        self._c0_send(name, {"type": "init", "node_id": name, "node_ids": list(self.nodes)}, retry=True)

    def _c0_send(self, dest: str, body: dict, retry: bool = False) -> None:
        self._c0_id += 1
        mid = self._c0_id
        self._c0_pending[mid] = dest
        self.stats.count("c0", dest)
        self.sim.net.send("c0", dest, body["type"], {**body, "msg_id": mid}, 0, 2)
        if retry:  # init is retried every second until answered (a restarted node may miss one)
            self.sim.at(1.0, lambda: self._c0_pending.get(mid) and self._c0_resend(mid, dest, body))

    def _c0_resend(self, mid: int, dest: str, body: dict) -> None:
        del self._c0_pending[mid]
        if self.sim.nodes[dest].up:
            self._c0_send(dest, body, retry=True)

    def _c0_receive(self, wire: Any) -> None:
        irt = wire.payload.get("in_reply_to")
        if irt is not None and self._c0_pending.pop(irt, None) is not None and wire.payload["type"] == "init_ok":
            self.inited.add(wire.src)

    # -- clients ------------------------------------------------------------------------------------
    def _dispatch_next(self) -> None:
        """Jepsen's ``gen/stagger``: the next operation is due 0..2/rate s after the previous one."""
        if self.sim.now >= self.end_main:
            return
        op = self.workload.next_op()
        if self._free:
            self._invoke(self._free.pop(0), *op)
        else:
            self._waiting_op = op  # due, but every thread is busy: the next free thread takes it
            return
        self.sim.at(2.0 * self._stagger() / self.opts.rate, self._dispatch_next)

    def _released(self, c: _Client) -> None:
        if self.sim.now >= self.end_main or self.opts.rate <= 0:
            return
        if self._waiting_op is not None:
            op, self._waiting_op = self._waiting_op, None
            self._invoke(c, *op)
            self.sim.at(2.0 * self._stagger() / self.opts.rate, self._dispatch_next)
        else:
            self._free.append(c)

    def _final_phase(self, final: tuple[str, Any, Any]) -> None:
        for c in self.clients:
            if not c.busy:
                self._invoke(c, *final, then=lambda _c: None)

    def _invoke(self, c: _Client, f: str, key: Any, value: Any, then: Callable | None = None) -> None:
        h = self.history
        value = self.workload.prepare(c.process, f, key, value)
        i = h.invoke(c.process, f, key, value, self.sim.now)
        self.majority_side.append(self._reaches_majority(c.node))
        body = self.workload.request(f, None if key == "final" else key, value)
        c.busy = True
        c.index += 1
        mid = c.index
        done = [False]

        def complete(reply: dict) -> None:
            if done[0]:
                return
            done[0] = True
            c.pending.pop(mid, None)
            c.busy = False
            t = self.sim.now
            if reply.get("type") == "error":
                code = reply.get("code")
                definite = isinstance(code, int) and is_definite(code) and code != TIMEOUT
                if definite or f in self.workload.idempotent:
                    h.fail(i, t, _err(reply))
                else:
                    h.info(i, t, _err(reply))
                    c.process += len(self.clients)  # Jepsen: a crashed process is replaced
            else:
                try:
                    h.ok(i, t, self.workload.result(f, key, value, reply))
                except (KeyError, TypeError, ValueError) as e:  # a malformed reply: indefinite
                    h.info(i, t, {"error": f"malformed reply {reply!r}: {e}"})
                    c.process += len(self.clients)
            (then or self._released)(c)

        c.pending[mid] = complete
        self.stats.count(c.name, c.node)
        self.sim.net.send(c.name, c.node, body["type"], {**body, "msg_id": mid}, 0, 2)
        self.sim.at(self.opts.timeout_s, lambda: complete(
            {"type": "error", "code": TIMEOUT, "text": "client timeout"}))

    def _client_receive(self, c: _Client, wire: Any) -> None:
        irt = wire.payload.get("in_reply_to")
        cb = c.pending.get(irt) if irt is not None else None
        if cb is not None:
            cb(wire.payload)

    def _reaches_majority(self, node: str) -> bool:
        k = self.sim.nodes[node]
        if not k.up or k.paused:
            return False
        net = self.sim.net
        if not net.cuts:
            return True
        reach = sum(1 for m in self.nodes if m == node or (not net.blocked(node, m) and not net.blocked(m, node)))
        return reach > len(self.nodes) // 2

    # -- results ----------------------------------------------------------------------------------
    @property
    def ops(self) -> list[Op]:
        return pair_ops(self.history)

    def results(self) -> dict:
        """The checkers' verdicts: ``workload``, ``availability``, ``net``, ``perf``; ``valid`` overall."""
        ops = self.ops
        w = self.workload.check(ops, self)
        a = checkers.availability([o for o in ops if o.key != "final"], self.opts.availability,
                                  [m for o, m in zip(ops, self.majority_side) if o.key != "final"])
        n_ops = len(ops)
        st = self.stats
        n_all, n_clients, n_servers = st.all, st.clients, st.servers
        if self.system is not None:  # the system's own messages never pass a host: count them off the network
            n_all = self.sim.net.sent - self.sim.net.duplicated
            n_clients = st.clients + self.system.replies
            n_servers = n_all - n_clients
        net = {"all": n_all, "clients": n_clients, "servers": n_servers,
               "msgs_per_op": round(n_servers / n_ops, 3) if n_ops else None,
               "dropped_partition": self.sim.net.dropped_partition, "dropped_loss": self.sim.net.dropped_loss}
        perf = {"latency_ms": checkers.latency_quantiles(ops), "ops": n_ops,
                "ok": sum(o.type == "ok" for o in ops), "fail": sum(o.type == "fail" for o in ops),
                "info": sum(o.type == "info" for o in ops)}
        exc = {n: h.exceptions for n, h in self.hosts.items() if h.exceptions}
        not_inited = sorted(set(self.nodes) - self.inited)  # services get no init (Maelstrom)
        verdicts = [w["valid"], a["valid"]]
        valid = False if False in verdicts else (None if None in verdicts else True)
        return {"valid": valid, "workload": w, "availability": a, "net": net, "perf": perf,
                "node_exceptions": exc, "not_initialized": not_inited, "faults": len(self.schedule),
                "deterministic": self.deterministic}


def _err(reply: dict) -> dict:
    code = reply.get("code")
    return {"error": code, "text": reply.get("text", "")}


def run_test(opts: TestOptions, **kw: Any) -> TestRun:
    """Build and run one test."""
    return TestRun(opts, **kw).run()


__all__ = ["TestOptions", "TestRun", "run_test", "latency_distribution"]
