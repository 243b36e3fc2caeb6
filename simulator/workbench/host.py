"""Hosts: what runs a protocol node on the kernel. ``Host`` runs a :class:`~simulator.workbench.Node`
subclass in process, in simulated time, deterministically: Maelstrom messages ride the kernel's
network (so partitions, loss, latency and the space-time trace apply), a kill is a kernel crash
(the object is dropped; ``durable`` survives) and a restart builds a new object.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import Event

from simulator.network import ONEWAY

from .protocol import CRASH, NOT_SUPPORTED, TIMEOUT, Message, RPCError

if TYPE_CHECKING:
    from simulator.core import Simulation
    from simulator.network import Message as Wire

    from .node import Node


def wire_copy(body: dict) -> dict:
    """``body`` as the receiver gets it: through JSON, as on Maelstrom's wire (tuples become lists,
    integer keys strings; a set or another non-JSON value is a bug of the sender's: TypeError).

    Plain bodies (str keys; str, int, float, bool, None, lists, tuples and dicts of them) are copied
    directly — the same value ``json.loads(json.dumps(body))`` gives, five times faster; anything else
    (a non-str key, a set, a numpy number, a subclass, a cycle) takes the JSON round trip itself, so
    its conversion or its error is exactly JSON's (tests/test_workbench.py checks both agree)."""
    try:
        return _plain_copy(body)
    except (_NotPlain, RecursionError):
        return json.loads(json.dumps(body))


class _NotPlain(Exception):
    pass


def _plain_copy(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None:
        return v
    if t is dict:
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise _NotPlain
            out[k] = _plain_copy(x)
        return out
    if t is list or t is tuple:
        return [_plain_copy(x) for x in v]
    raise _NotPlain


class NetStats:
    """Messages sent, split as Maelstrom's net checker splits them: to or from a client, or between
    servers (nodes and services). Counted once per send, whatever happens to the message."""

    __slots__ = ("all", "clients", "servers", "clients_names")

    def __init__(self, clients: frozenset[str]) -> None:
        self.all = self.clients = self.servers = 0
        self.clients_names = clients

    def count(self, src: str, dest: str) -> None:
        self.all += 1
        if src in self.clients_names or dest in self.clients_names:
            self.clients += 1
        else:
            self.servers += 1


class Host:
    """One node of the cluster: a kernel node plus the user's object (rebuilt on every restart)."""

    def __init__(self, sim: Simulation, name: str, factory: Callable[[], Node], stats: NetStats) -> None:
        self.sim = sim
        self.name = name
        self.kernel = sim.node(name)
        self.factory = factory
        self.stats = stats
        self.durable: dict = self.kernel.durable.setdefault("workbench", {})
        self.rng = sim.rng(f"workbench.node.{name}")
        self.logs: list[tuple[float, str]] = []
        self.exceptions = 0  # handler crashes (bugs in the node), each logged with its traceback
        self.incarnation = 0
        self._pending: dict[int, Callable[[dict], None]] = {}
        self._next_id = 0
        self.kernel.on("*", self._receive)
        self.kernel.on_crash(self._crashed)
        self.kernel.on_recover(self._start)
        self._start()

    # -- life cycle ---------------------------------------------------------------------------
    def _start(self) -> None:
        self.incarnation += 1
        self._pending = {}
        self._next_id = 0
        cls_or_fn = self.factory
        obj = cls_or_fn.__new__(cls_or_fn) if isinstance(cls_or_fn, type) else None
        if obj is None:
            raise ValueError(f"node factory must be a Node subclass, got {cls_or_fn!r}")
        obj._bind(self)
        try:
            obj.__init__()
        except Exception:
            self._bug("__init__")
        self.node = obj

    def _crashed(self) -> None:
        self._pending = {}
        self.node = None
        self.log("killed")

    # -- sending --------------------------------------------------------------------------------
    def send(self, dest: str, body: dict) -> None:
        if not self.kernel.up:
            return
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise TypeError(f"{self.name}: a message body must be a dict with a string 'type', got {body!r}")
        if dest not in self.sim.nodes:
            # Maelstrom: a message to a node that does not exist is an error of the sender's.
            self.log(f"dropped a message to unknown node {dest!r}: {body!r}")
            return
        self.stats.count(self.name, dest)
        self.sim.net.send(self.name, dest, body["type"], wire_copy(body), 0, ONEWAY)

    def rpc(self, dest: str, body: dict, timeout: float, callback: Callable[[dict], Any] | None) -> Event | None:
        if not (isinstance(timeout, (int, float)) and timeout > 0 and not math.isnan(timeout)):
            raise ValueError(f"rpc: timeout must be > 0 seconds, got {timeout!r}")
        ev = None
        if callback is None:
            ev = Event(self.sim.env)

            def callback(reply: dict, ev: Event = ev) -> None:
                if reply.get("type") == "error":
                    ev.defused = True  # an error nobody waits for must not stop the simulation
                    ev.fail(RPCError.from_body(reply))
                else:
                    ev.succeed(reply)
        self._next_id += 1
        mid = self._next_id
        self._pending[mid] = callback
        if timeout != math.inf:
            inc = self.incarnation

            def expire() -> None:
                cb = self._pending.pop(mid, None) if inc == self.incarnation else None
                if cb is not None:
                    self._call(cb, {"type": "error", "code": TIMEOUT, "text": f"rpc to {dest} timed out",
                                    "in_reply_to": mid})
            self.kernel.after(timeout, expire)
        self.send(dest, {**body, "msg_id": mid})
        return ev

    # -- receiving ------------------------------------------------------------------------------
    def _receive(self, wire: Wire) -> None:
        node = self.node
        if node is None:
            return
        msg = Message(wire.src, self.name, wire.payload)
        body = msg.body
        irt = body.get("in_reply_to")
        if irt is not None:
            cb = self._pending.pop(irt, None)
            if cb is not None:
                self._call(cb, body)
                return
        t = body["type"]
        if t == "init":
            self._init(node, msg)
            return
        fn = node.handler_for(t)
        if fn is None:
            if irt is None and "msg_id" in body:
                node.reply(msg, {"type": "error", "code": NOT_SUPPORTED, "text": f"no handler for {t!r}"})
            return
        self._call(fn, msg, msg)

    def _init(self, node: Node, msg: Message) -> None:
        node.node_id = msg.body.get("node_id")
        node.node_ids = list(msg.body.get("node_ids", []))
        hook = getattr(node, "on_init", None)
        if hook is not None:
            r = self._call(hook, msg, msg)
            if r is False:
                return
        node.reply(msg, {"type": "init_ok"})

    def _call(self, fn: Callable, arg: Any, request: Message | None = None) -> Any:
        """Run a handler or callback: a generator becomes a process; RPCError answers the request;
        any other exception is the node's bug (logged, counted, answered ``crash``)."""
        try:
            r = fn(arg)
        except RPCError as e:
            self._answer_error(request, e)
            return False
        except Exception:
            self._bug(getattr(fn, "__name__", "handler"), request)
            return False
        if type(r) is GeneratorType:
            self.spawn(r, request)
        return r

    def spawn(self, gen: Generator, request: Message | None) -> None:
        self.kernel.spawn(self._guard(gen, request))

    def _guard(self, gen: Generator, request: Message | None):
        try:
            yield from gen
        except RPCError as e:
            self._answer_error(request, e)
        except simpy.Interrupt:  # a kill: the kernel's guard handles it
            raise
        except Exception:
            self._bug(getattr(gen, "__name__", "process"), request)

    def _answer_error(self, request: Message | None, e: RPCError) -> None:
        if request is not None and "msg_id" in request.body and self.node is not None:
            self.node.reply(request, e.body())

    def _bug(self, where: str, request: Message | None = None) -> None:
        self.exceptions += 1
        self.log(f"exception in {where}:\n{traceback.format_exc().rstrip()}")
        if request is not None:
            self._answer_error(request, RPCError(CRASH, f"exception in {where} on {self.name}"))

    # -- timers and logs --------------------------------------------------------------------------
    def after(self, delay: float, fn: Callable[[], Any]) -> None:
        if not (isinstance(delay, (int, float)) and delay >= 0 and math.isfinite(delay)):
            raise ValueError(f"after: delay must be a finite number of seconds >= 0, got {delay!r}")
        self.kernel.after(delay, lambda: self._call(lambda _: fn(), None))

    def log(self, text: str) -> None:
        self.logs.append((self.sim.now, text))
