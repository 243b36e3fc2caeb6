"""The node API: a user's protocol node, written the way a Maelstrom solution is written.

    from simulator.workbench import Node

    class Echo(Node):
        def on_echo(self, msg):
            self.reply(msg, {**msg.body, "type": "echo_ok"})

A handler per message type is a method ``on_<type>`` (or ``self.handle(type, fn)``). A handler may be
a generator; it then runs as a process of the node and reads like a SimPy process::

        def on_read(self, msg):
            res = yield self.rpc("lin-kv", {"type": "read", "key": "x"}, timeout=1.0)
            self.reply(msg, {"type": "read_ok", "value": res["value"]})

``yield self.rpc(...)`` gives the reply body, or raises :class:`RPCError` for an error reply or a
timeout (code 0, indefinite). ``rpc(..., callback=fn)`` calls ``fn(body)`` instead (an error body
too). Raising :class:`RPCError` in a handler answers the request with that error; any other
exception is a bug in the node: it is logged with its traceback, counted, and answered with
``crash`` (13, indefinite), as a Maelstrom node that died mid-request would leave it.

State: plain attributes are volatile — a kill restarts the node as a new object (``__init__`` runs
again, then Maelstrom's ``init``). ``self.durable`` is a dict that survives kills (the node's disk).
Timers: ``self.after(delay, fn)``, ``self.every(interval, fn)`` (both die with the node).
Time: ``self.now`` is the node's own clock (skewed by the clock nemesis); randomness: ``self.rng``
(a named, seeded numpy stream per node — never ``random``). Logs: ``self.log(...)`` (node-logs/).

Messages follow jepsen-io/maelstrom ``doc/protocol.md``: ``msg.src``, ``msg.dest``, ``msg.body``
with ``type``, ``msg_id``, ``in_reply_to``; ``init`` is answered for you (``node_id``, ``node_ids``
set first; define ``on_init(msg)`` to do more). Bodies travel as JSON, as on Maelstrom's wire: a set
or a tuple must become a list and integer map keys become strings on arrival.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from .protocol import Message

if TYPE_CHECKING:
    from simpy.events import Event

    from .host import Host


class Timer:
    """A periodic timer from :meth:`Node.every`; ``cancel()`` stops it."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Node:
    """Base class of a protocol node (subclass it; see the module docstring)."""

    node_id: str | None
    node_ids: list[str]
    durable: dict
    rng: np.random.Generator
    _host: Host

    def _bind(self, host: Host) -> None:
        self._host = host
        self.node_id = None
        self.node_ids = []
        self.durable = host.durable
        self.rng = host.rng
        self._handlers: dict[str, Callable] = {}

    # -- handlers -------------------------------------------------------------------------------
    def handle(self, type_: str, fn: Callable[[Message], Any]) -> None:
        """Handle messages of ``type_`` with ``fn(msg)`` (instead of a method ``on_<type_>``)."""
        self._handlers[type_] = fn

    def handler_for(self, type_: str) -> Callable[[Message], Any] | None:
        fn = self._handlers.get(type_)
        return fn if fn is not None else getattr(self, "on_" + type_, None)

    # -- sending --------------------------------------------------------------------------------
    def send(self, dest: str, body: dict) -> None:
        """Send ``body`` to ``dest`` (fire and forget)."""
        self._host.send(dest, body)

    def reply(self, request: Message, body: dict) -> None:
        """Answer ``request``: ``body`` gets ``in_reply_to`` = the request's ``msg_id``."""
        mid = request.body.get("msg_id")
        self._host.send(request.src, body if mid is None else {**body, "in_reply_to": mid})

    def rpc(self, dest: str, body: dict, timeout: float = 1.0,
            callback: Callable[[dict], Any] | None = None) -> Event | None:
        """Send a request and wait for its reply (see the module docstring). ``timeout`` in seconds
        of simulated time; a reply after it is delivered to the handler of its type, if any."""
        return self._host.rpc(dest, body, timeout, callback)

    # -- time -----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """This node's clock (seconds); not the true time."""
        return self._host.kernel.clock.now()

    def after(self, delay: float, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` (or run it as a process, if it is a generator function) after ``delay`` s."""
        self._host.after(delay, fn)

    def every(self, interval: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` every ``interval`` seconds until cancelled or the node dies."""
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"every: interval must be > 0 seconds, got {interval!r}")
        t = Timer()

        def tick() -> Any:
            if t.cancelled:
                return None
            self._host.after(interval, tick)
            return fn()

        self._host.after(interval, tick)
        return t

    def spawn(self, gen: Generator) -> None:
        """Run ``gen`` as a process of this node (interrupted when the node dies)."""
        self._host.spawn(gen, None)

    def log(self, *parts: Any) -> None:
        """A line in this node's log (node-logs/<node>.log in the run folder), like stderr."""
        self._host.log(" ".join(str(p) for p in parts))



