"""Node: message handlers, RPC, worker pools, crash-stop / crash-recover, pause, slow-down.

State: ``node.state`` is volatile (emptied by a crash); ``node.durable`` survives crashes.
Protocols with their own attributes register ``on_crash`` / ``on_recover`` hooks to drop
and reload them. A crash bumps ``node.epoch``: every callback the node scheduled before
(timers, service completions) checks its epoch and does nothing if it is stale, and every
process started with ``node.spawn`` is interrupted.

RPC outcomes (``call``): ``ok``; ``error`` (the handler raised :class:`RpcError`);
``rejected`` (a full queue refused it: definite); ``timeout`` (no reply in time:
indefinite, it may have happened); ``unreachable`` (a refusing partition stopped it before
it left: definite); ``crashed`` (the target was down and ``refuse_when_down``: definite).
A reply that arrives after its call timed out is a *late reply*: counted on the network,
and handed to ``node.on_late_reply`` if set; it never resolves a stale waiter.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Mapping
from heapq import heappush
from types import GeneratorType, MappingProxyType
from typing import TYPE_CHECKING, Any

import simpy
from simpy.core import NORMAL
from simpy.events import Event

from .clock import PhysicalClock
from .distributions import Distribution
from .network import ONEWAY, REPLY, REQUEST, Due, Message

if TYPE_CHECKING:
    from .core import Simulation

OUTCOMES = ("ok", "error", "rejected", "timeout", "unreachable", "crashed")
DEFINITE_FAIL = frozenset({"error", "rejected", "unreachable", "crashed"})
DISCIPLINES = ("fifo", "lifo", "adaptive_lifo", "codel", "deadline")


class RpcError(Exception):
    """Raise in a handler to reply ``error`` with ``value`` (a definite failure)."""

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.value = value


class _Crash:
    """The cause carried by the Interrupt a crash throws into a node's processes."""

    def __repr__(self) -> str:
        return "crash"


CRASH = _Crash()


def _connect(msg: Message) -> bool:
    return True


# Shared, read-only stand-ins for a node's containers until it first needs its own: most nodes
# of a big world never register a handler, hold a message or spawn a process, and an empty dict
# or set costs 64-216 bytes each (a million nodes: hundreds of MB of empty containers).
# "__connect__" answers a connection handshake (clients model connect timeouts with it).
_DEFAULT_HANDLERS: Mapping[str, Callable] = MappingProxyType({"__connect__": _connect})
_NO_POOLS: Mapping[str, _WorkerPool] = MappingProxyType({})
_NONE: tuple = ()
# Outstanding calls: a node that never calls keeps this shared empty dict (pop() on it finds
# nothing); only Node.call inserts, and it first gives the node a dict of its own.
_NO_PENDING: dict = {}
# A node's _paused_until until its first pause: one shared float, not one per node (and one
# object fewer to fetch from memory when a request arrives in a big world).
_NEVER = -math.inf


class Node:
    """A process on a host: receives messages, serves RPCs, crashes and recovers.

    Slotted, with its containers, its default clock and its streams made on first use, so an
    idle node costs a few hundred bytes (``__dict__`` stays available for protocol attributes)."""

    __slots__ = ("sim", "env", "net", "name", "_clock", "_born", "refuse_when_down", "up", "stopped", "epoch",
                 "state", "durable", "slow_factor", "_paused_until", "_held", "_handlers", "_pools", "_pending",
                 "_procs", "_crash_hooks", "_recover_hooks", "on_late_reply", "crashes", "_spans",
                 "__dict__", "__weakref__")

    def __init__(
        self,
        sim: Simulation,
        name: str,
        *,
        clock: PhysicalClock | dict | None = None,
        refuse_when_down: bool = False,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.net = sim.net
        self.name = name
        self._born = sim.env.now
        if isinstance(clock, dict):
            # e.g. clock=dict(drift_ppm=50, sync_interval_s=1, sync_error_s=0.001)
            clock = PhysicalClock(sim, name=name, **clock)
        self._clock = clock  # None: a perfect clock, made when first read (see the clock property)
        self.refuse_when_down = refuse_when_down
        self.up = True
        self.stopped = False  # crash-stop: never recovers
        self.epoch = 0
        self.state: dict = {}
        self.durable: dict = {}
        self.slow_factor = 1.0
        self._paused_until = _NEVER
        self._held: list[Callable[[], None]] | tuple = _NONE
        self._handlers: Mapping[str, Callable] = _DEFAULT_HANDLERS
        self._pools: Mapping[str, _WorkerPool] = _NO_POOLS
        self._pending: dict[int, Any] = _NO_PENDING
        self._procs: set[simpy.Process] | tuple = _NONE
        self._crash_hooks: list[Callable[[], None]] | tuple = _NONE
        self._recover_hooks: list[Callable[[], None]] | tuple = _NONE
        self.on_late_reply: Callable[[Message], None] | None = None
        self.crashes = 0
        # Span recorder (simulator.observe.spans) or None: tracing off costs one test per hop.
        self._spans = sim.spans

    @property
    def clock(self) -> PhysicalClock:
        """This node's wall clock. The default (perfect) one is made on first read, set to read
        true time from the node's creation on, exactly as if it had been made with the node."""
        c = self._clock
        if c is None:
            c = self._clock = PhysicalClock(self.sim, name=self.name, _since=self._born)
        return c

    @clock.setter
    def clock(self, clock: PhysicalClock) -> None:
        self._clock = clock

    def _hold(self, fn: Callable[[], None]) -> None:
        """Keep ``fn`` until the pause ends."""
        if self._held is _NONE:
            self._held = []
        self._held.append(fn)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {'up' if self.up else 'down'})"

    # -- handlers ----------------------------------------------------------------------------
    def on(self, op: str, handler: Callable[[Message], Any]) -> None:
        """Handle messages/requests ``op``: ``handler(msg)`` returns the reply value, or is a
        generator (run as a process; its return value is the reply), or raises RpcError.
        ``op="*"`` handles every op that has no handler of its own (the workbench's hosts)."""
        if self._handlers is _DEFAULT_HANDLERS:
            self._handlers = dict(_DEFAULT_HANDLERS)
        self._handlers[op] = handler

    def serve(
        self,
        op: str,
        handler: Callable[[Message], Any] | None = None,
        *,
        service: Distribution | float,
        workers: int = 1,
        queue_limit: int | None = None,
        admit: Callable[[float, int, float], bool] | None = None,
        discipline: str = "fifo",
        lifo_above: int = 0,
        target_s: float = 0.005,
        interval_s: float = 0.1,
        deadline_s: float | None = None,
        deadline_of: Callable[[Message], float] | None = None,
        service_floor_s: float = 0.0,
    ) -> _WorkerPool:
        """Serve ``op`` with ``workers`` workers and a service-time distribution.

        Requests beyond ``workers`` wait in a queue; past ``queue_limit`` waiting they are
        ``rejected``; so are those ``admit(now, queue_length, oldest_wait_s)`` refuses (load
        shedding), asked only when a request would have to wait.
        ``handler(msg)`` (optional) computes the reply value at completion.
        Service times are multiplied by ``slow_factor`` (gray failure).

        ``discipline`` picks the next waiting request when a worker frees up:

        - ``fifo`` (default): the oldest.
        - ``lifo``: the newest (non-preemptive).
        - ``adaptive_lifo``: the newest while more than ``lifo_above`` wait, else the oldest
          (Maurer, "Fail at Scale", ACM Queue 2015: under a standing queue, serve the requests
          whose clients are still waiting).
        - ``codel``: FIFO with CoDel's head drop (Nichols & Jacobson, "Controlling Queue Delay",
          ACM Queue 2012; RFC 8289 §5): once every request taken from the queue has waited at
          least ``target_s`` (5 ms) for ``interval_s`` (100 ms), drop from the head; the next drop
          comes ``interval_s / sqrt(count)`` after the previous one, until a request's wait is
          back under ``target_s``. RFC 8289's "at most one MTU left in the queue" is "at most
          one request left waiting".
        - ``deadline``: FIFO, dropping at the head every request whose deadline has passed or
          cannot be met (``now + service_floor_s > deadline``). The deadline is
          ``deadline_of(msg)`` (absolute time, e.g. carried in the payload) or, without it,
          arrival + ``deadline_s`` (the client's timeout as the server knows it).

        A dropped request is answered ``rejected`` (definite: it was never served) and counted
        in ``pool.dropped``; ``pool.rejected`` counts only refusals on arrival.
        """
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if queue_limit is not None and not (isinstance(queue_limit, int) and queue_limit >= 0):
            raise ValueError(f"queue_limit must be an integer >= 0 or None, got {queue_limit!r}")
        # The common case, every discipline argument at its default (a big world serves 10^5-10^6
        # such pools): nothing more to check, and the new pool already holds exactly the FIFO
        # settings _set_discipline would give it, so it is not called again.
        plain = (discipline == "fifo" and lifo_above == 0 and isinstance(lifo_above, int) and target_s == 0.005
                 and interval_s == 0.1 and deadline_s is None and deadline_of is None and service_floor_s == 0
                 and isinstance(service_floor_s, (int, float)))
        if not plain:
            if discipline not in DISCIPLINES:
                raise ValueError(f"discipline must be one of {DISCIPLINES}, got {discipline!r}")
            if not (isinstance(lifo_above, int) and lifo_above >= 0):
                raise ValueError(f"lifo_above must be an integer >= 0, got {lifo_above!r}")
            for name, v in (("target_s", target_s), ("interval_s", interval_s)):
                if not (isinstance(v, (int, float)) and 0 < v < math.inf):
                    raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
            if not (isinstance(service_floor_s, (int, float)) and 0 <= service_floor_s < math.inf):
                raise ValueError(f"service_floor_s must be a finite number >= 0, got {service_floor_s!r}")
            if discipline == "deadline":
                if (deadline_s is None) == (deadline_of is None):
                    raise ValueError("discipline 'deadline' needs exactly one of deadline_s or deadline_of")
                if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and 0 < deadline_s < math.inf):
                    raise ValueError(f"deadline_s must be a finite number > 0, got {deadline_s!r}")
        pool = _WorkerPool(self, op, handler, self.sim.sampler(service, f"service.{self.name}.{op}"),
                           workers, queue_limit, admit)
        if not plain:
            pool._set_discipline(discipline, lifo_above, float(target_s), float(interval_s), deadline_s,
                                 deadline_of, float(service_floor_s))
        if self._pools is _NO_POOLS:
            self._pools = {}
        self._pools[op] = pool
        return pool

    def on_crash(self, fn: Callable[[], None]) -> None:
        if self._crash_hooks is _NONE:
            self._crash_hooks = []
        self._crash_hooks.append(fn)

    def on_recover(self, fn: Callable[[], None]) -> None:
        if self._recover_hooks is _NONE:
            self._recover_hooks = []
        self._recover_hooks.append(fn)

    # -- sending -----------------------------------------------------------------------------
    def send(self, dst: str, op: str, payload: Any = None) -> None:
        """Fire-and-forget message. A down node sends nothing."""
        if self.up:
            self.net.send(self.name, dst, op, payload, 0, ONEWAY)

    def call(
        self,
        dst: str,
        op: str,
        payload: Any = None,
        timeout_s: float = math.inf,
        callback: Callable[[str, Any], None] | None = None,
    ) -> Event | None:
        """Request/response RPC. With ``callback``: ``callback(outcome, value)`` is called
        once, nothing is returned. Without: returns an Event whose value is
        ``(outcome, value)`` — ``outcome, value = yield node.call(...)``."""
        ev = None
        if callback is None:
            ev = Event(self.env)
            callback = _succeed_with(ev)
        if not self.up:
            callback("crashed", None)
            return ev
        rid = next(self.net.rids)
        if self._spans is not None:
            callback = self._spans.rpc(self.env.now, self.name, dst, op, rid, callback, self.env)
        pending = self._pending
        if pending is _NO_PENDING:
            pending = self._pending = {}
        pending[rid] = callback
        if timeout_s != math.inf:
            t = Due()
            t._value = (self, rid)
            t.callbacks = _TIMEOUT
            env = self.env  # Environment.schedule, inlined (the hot path)
            heappush(env._queue, (env._now + timeout_s, NORMAL, next(env._eid), t))
        self.net.send(self.name, dst, op, payload, rid, REQUEST)
        return ev

    def _resolve(self, rid: int, outcome: str, value: Any) -> None:
        cb = self._pending.pop(rid, None)
        if cb is not None:
            cb(outcome, value)

    def reply(self, msg: Message, value: Any = None, outcome: str = "ok") -> None:
        """Answer request ``msg`` (for handlers that reply later, e.g. after replication)."""
        if self.up:
            sp = self._spans
            if sp is not None:
                s = sp.by_rid.get(msg.rid, -1)
                if s >= 0:
                    sp.replied[s] = self.env.now
                # Work after a reply (e.g. the next queued request) is not this request's:
                # it runs untraced unless its owner re-enters its context (``resume``).
                sp.current = -1
            self.net.send(self.name, msg.src, outcome, value, msg.rid, REPLY)

    def resume(self, msg: Message) -> None:
        """Work from here on belongs to request ``msg`` (call when a queued request is picked up
        by a hand-written worker pool; marks the end of its queueing). No-op when tracing is off."""
        sp = self._spans
        if sp is not None:
            s = sp.by_rid.get(msg.rid, -1) if msg.kind == REQUEST else -1
            sp.current = s
            if s >= 0 and sp.served[s] != sp.served[s]:
                sp.served[s] = self.env.now

    # -- receiving -----------------------------------------------------------------------------
    def _receive(self, msg: Message) -> None:
        if not self.up:
            self.net.dropped_down += 1
            if self.refuse_when_down and msg.kind == REQUEST and not self.stopped:
                self.net.send(self.name, msg.src, "crashed", None, msg.rid, REPLY)
            return
        if self._paused_until > self.env.now:
            self._hold(lambda: self._receive(msg))
            return
        kind = msg.kind
        if kind == REPLY:
            cb = self._pending.pop(msg.rid, None)
            if cb is None:
                self.net.late_replies += 1
                if self.on_late_reply is not None:
                    self.on_late_reply(msg)
            else:
                cb(msg.op, msg.payload)
            return
        sp = self._spans
        if sp is not None and kind == REQUEST:
            prev, sp.current = sp.current, sp.received(msg.rid, self.env.now)
            try:
                self._dispatch(msg, kind)
            finally:
                sp.current = prev
            return
        pool = self._pools.get(msg.op)  # self._dispatch(msg, kind), its first case inlined
        if pool is not None:
            pool.arrive(msg)
            return
        self._dispatch(msg, kind)

    def _dispatch(self, msg: Message, kind: int) -> None:
        pool = self._pools.get(msg.op)
        if pool is not None:
            pool.arrive(msg)
            return
        handler = self._handlers.get(msg.op) or self._handlers.get("*")
        if handler is None:
            if kind == REQUEST:
                self.reply(msg, f"no handler for {msg.op!r} on {self.name}", "error")
            return
        self._run_handler(handler, msg)

    def _run_handler(self, handler: Callable, msg: Message) -> None:
        try:
            result = handler(msg)
        except RpcError as e:
            if msg.kind == REQUEST:
                self.reply(msg, e.value, "error")
            return
        if type(result) is GeneratorType:
            self.spawn(self._reply_when_done(result, msg))
        elif msg.kind == REQUEST and result is not _NO_REPLY:
            self.reply(msg, result)

    def _reply_when_done(self, gen: Generator, msg: Message):
        try:
            result = yield from gen
        except RpcError as e:
            if msg.kind == REQUEST:
                self.reply(msg, e.value, "error")
            return
        if msg.kind == REQUEST and result is not _NO_REPLY:
            self.reply(msg, result)

    # -- processes and timers --------------------------------------------------------------------
    def spawn(self, gen: Generator) -> simpy.Process:
        """Run ``gen`` as a process of this node: a crash interrupts it (quietly)."""
        p = self.env.process(self._guard(gen))
        if self._procs is _NONE:
            self._procs = set()
        self._procs.add(p)
        p.callbacks.append(lambda _e: self._procs.discard(p))
        return p

    @staticmethod
    def _guard(gen: Generator):
        try:
            return (yield from gen)
        except simpy.Interrupt as i:
            if i.cause is not CRASH:
                raise
            return None

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after ``delay`` seconds unless the node crashed meanwhile; a timer
        that falls due while the node is paused fires when the pause ends."""
        epoch = self.epoch
        sp = self._spans
        if sp is not None:
            s = sp.current
            if s >= 0 and sp.served[s] != sp.served[s] and sp.arrive[s] == sp.arrive[s]:
                sp.served[s] = self.env.now  # the request's first local work: its queueing ended
            fn = sp.bind(fn)
        ev = Due()
        ev._value = (self, epoch, fn)
        ev.callbacks = _FIRE
        env = self.env  # Environment.schedule, inlined
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), ev))

    def _fire(self, epoch: int, fn: Callable[[], None]) -> None:
        if epoch != self.epoch or not self.up:
            return
        if self._paused_until > self.env.now:
            self._hold(lambda: self._fire(epoch, fn))
            return
        fn()

    def sleep(self, delay: float) -> Event:
        """A timeout event scaled by ``slow_factor`` (local work slowed by a gray failure)."""
        return self.env.timeout(delay * self.slow_factor)

    # -- faults --------------------------------------------------------------------------------
    def crash(self, *, stop: bool = False) -> None:
        """Crash: volatile state, queues, timers and processes are lost; durable state stays.
        ``stop=True`` is crash-stop: the node can never recover."""
        if not self.up:
            return
        self.up = False
        self.stopped = stop
        self.epoch += 1
        self.crashes += 1
        self.state = {}
        self._held = _NONE
        self._paused_until = _NEVER
        # Our own outstanding calls die with the process; no callback will fire for them.
        self._pending = _NO_PENDING
        for pool in self._pools.values():
            pool.reset()
        procs = self._procs
        if procs:
            for p in list(procs):
                if p.is_alive:
                    p.interrupt(CRASH)
            procs.clear()
        for fn in self._crash_hooks:
            fn()
        if self.sim.trace is not None:
            self.sim.trace.event(self.env.now, "crash", self.name, "", "", -1)

    def recover(self) -> None:
        """Restart after a crash (volatile state starts empty; recover hooks reload)."""
        if self.up:
            raise ValueError(f"recover: node {self.name!r} is not crashed")
        if self.stopped:
            raise ValueError(f"recover: node {self.name!r} crash-stopped and cannot recover")
        self.up = True
        self.epoch += 1
        for fn in self._recover_hooks:
            fn()
        if self.sim.trace is not None:
            self.sim.trace.event(self.env.now, "recover", self.name, "", "", -1)

    def pause(self, duration: float) -> None:
        """Freeze for ``duration`` s (a GC pause, a VM stall): messages and timers are held
        and handled when it ends, as a stalled process sees them."""
        if not (math.isfinite(duration) and duration > 0):
            raise ValueError(f"pause duration must be > 0 seconds, got {duration!r}")
        end = self.env.now + duration
        if end <= self._paused_until:
            return
        self._paused_until = end
        epoch = self.epoch
        self.sim.at(duration, lambda: self._unpause(epoch, end))

    def _unpause(self, epoch: int, end: float) -> None:
        if epoch != self.epoch or self._paused_until != end:
            return
        self._paused_until = _NEVER
        held, self._held = self._held, _NONE
        for fn in held:
            fn()

    @property
    def paused(self) -> bool:
        return self._paused_until > self.env.now

    def slow_down(self, factor: float) -> None:
        """Multiply service times by ``factor`` (1 = normal): a gray failure."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"slow-down factor must be > 0, got {factor!r}")
        self.slow_factor = float(factor)


_NO_REPLY = object()
"""Return this from a handler that will answer later with ``node.reply(msg, ...)``."""
NO_REPLY = _NO_REPLY


# The kernel's scheduled callbacks (see network.Due): module functions reading what they need
# from the event's value, so a node or pool holds no bound method or callback list per event.
def _on_timeout(ev: Due) -> None:
    node, rid = ev._value
    cb = node._pending.pop(rid, None)
    if cb is not None:
        cb("timeout", None)


def _on_timer(ev: Due) -> None:
    node, epoch, fn = ev._value
    node._fire(epoch, fn)


def _on_complete(ev: Due) -> None:
    ev._value[0]._complete(ev)


_TIMEOUT, _FIRE, _COMPLETE = (_on_timeout,), (_on_timer,), (_on_complete,)


def _succeed_with(ev: Event) -> Callable[[str, Any], None]:
    def cb(outcome: str, value: Any) -> None:
        ev.succeed((outcome, value))

    return cb


class _WorkerPool:
    """``workers`` servers fed by a queue; callback driven (no process per request).

    The queue discipline is ``_pop`` (``() -> (msg, arrival) | None``): for FIFO and LIFO the
    deque's own bound method, so the default path costs no extra call."""

    __slots__ = ("node", "op", "handler", "service", "workers", "queue_limit", "admit", "busy", "queue",
                 "served", "rejected", "arrivals", "waited", "discipline", "dropped", "_pop",
                 "lifo_above", "_codel", "deadline_s", "deadline_of", "service_floor_s")

    def __init__(self, node: Node, op: str, handler, service, workers: int, queue_limit, admit=None) -> None:
        self.node = node
        self.op = op
        self.handler = handler
        self.service = service
        self.workers = workers
        self.queue_limit = queue_limit
        self.admit = admit
        self.busy = 0
        # (request, arrival time); an empty tuple until a request first has to wait (an empty
        # deque is ~600 bytes, and most pools of a big, lightly loaded world never queue).
        self.queue: deque[tuple[Message, float]] | tuple = _NONE
        self.served = 0
        self.rejected = 0
        self.arrivals = 0
        self.waited = 0  # arrivals that found every worker busy (Erlang C counts these)
        self.dropped = 0  # taken out of the queue unserved by the discipline (codel, deadline)
        self._set_discipline("fifo")

    def _set_discipline(self, discipline: str, lifo_above: int = 0, target_s: float = 0.005,
                        interval_s: float = 0.1, deadline_s: float | None = None, deadline_of=None,
                        service_floor_s: float = 0.0) -> None:
        self.discipline = discipline
        self.lifo_above = lifo_above
        self.deadline_s = deadline_s
        self.deadline_of = deadline_of
        self.service_floor_s = service_floor_s
        self._codel = _CoDel(self, target_s, interval_s) if discipline == "codel" else None
        self._bind_pop()

    def _bind_pop(self) -> None:
        # FIFO and LIFO pop with the deque's own bound method (no extra call on the default path),
        # so ``_pop`` is rebound when the queue is made; it is only called on a non-empty queue.
        d, q = self.discipline, self.queue
        if d == "fifo":
            self._pop = q.popleft if q is not _NONE else None
        elif d == "lifo":
            self._pop = q.pop if q is not _NONE else None
        elif d == "adaptive_lifo":
            self._pop = self._pop_adaptive
        elif d == "codel":
            self._pop = self._codel.pop
        else:
            self._pop = self._pop_deadline

    def reset(self) -> None:
        self.busy = 0
        if self.queue:
            self.queue.clear()
        if self._codel is not None:
            self._codel.reset()

    def arrive(self, msg: Message) -> None:
        self.arrivals += 1
        if self.busy < self.workers:
            self.busy += 1
            self._start(msg)
        elif (self.queue_limit is not None and len(self.queue) >= self.queue_limit) or (
                self.admit is not None and not self._admit()):
            self.rejected += 1
            if msg.kind == REQUEST:
                self.node.reply(msg, "overloaded", "rejected")
        else:
            self.waited += 1
            if self.queue is _NONE:
                self.queue = deque()
                self._bind_pop()
            self.queue.append((msg, self.node.env.now))

    def _admit(self) -> bool:
        now = self.node.env.now
        q = self.queue
        return self.admit(now, len(q), now - q[0][1] if q else 0.0)

    def _start(self, msg: Message) -> None:
        node = self.node
        sp = node._spans
        if sp is not None:  # queueing ends now (the context is left alone: no leak past this event)
            s = sp.by_rid.get(msg.rid, -1) if msg.kind == REQUEST else -1
            if s >= 0 and sp.served[s] != sp.served[s]:
                sp.served[s] = node.env.now
        ev = Due()
        ev._value = (self, node.epoch, msg)
        ev.callbacks = _COMPLETE
        env = node.env  # Environment.schedule, inlined (the hot path)
        heappush(env._queue, (env._now + self.service() * node.slow_factor, NORMAL, next(env._eid), ev))

    def _complete(self, ev: Due) -> None:
        node = self.node
        _, epoch, msg = ev._value
        if epoch != node.epoch:
            return  # the node crashed while serving: the work is lost
        if node._paused_until > node.env.now:
            node._hold(lambda: self._complete(ev))
            return
        self.served += 1
        sp = node._spans
        if sp is not None:
            prev = sp.current
            node.resume(msg)
        if self.handler is None:
            if msg.kind == REQUEST:
                node.reply(msg, None)
        else:
            node._run_handler(self.handler, msg)
        if sp is not None:
            sp.current = prev
        if self.queue:
            item = self._pop()
            if item is not None:  # None: the discipline dropped every waiting request
                self._start(item[0])
                return
        self.busy -= 1

    # -- disciplines other than FIFO / LIFO (off the default path) ------------------------------
    def _drop(self, msg: Message) -> None:
        """Answer a request the discipline takes out of the queue: ``rejected``, never served."""
        self.dropped += 1
        if msg.kind == REQUEST:
            node = self.node
            sp = node._spans
            prev = sp.current if sp is not None else -1
            node.reply(msg, "overloaded", "rejected")
            if sp is not None:
                sp.current = prev

    def _pop_adaptive(self) -> tuple[Message, float]:
        q = self.queue
        return q.pop() if len(q) > self.lifo_above else q.popleft()

    def _pop_deadline(self) -> tuple[Message, float] | None:
        q = self.queue
        now = self.node.env.now + self.service_floor_s
        of = self.deadline_of
        while q:
            item = q.popleft()
            if now <= (item[1] + self.deadline_s if of is None else of(item[0])):
                return item
            self._drop(item[0])
        return None

    @property
    def queue_length(self) -> int:
        return len(self.queue)


class _CoDel:
    """CoDel's dequeue (RFC 8289 §5.4-5.5, the Linux variant of the count memory), with requests
    for packets and a request's queueing delay for its sojourn time."""

    __slots__ = ("pool", "target", "interval", "first_above", "dropping", "drop_next", "count", "lastcount")

    def __init__(self, pool: _WorkerPool, target_s: float, interval_s: float) -> None:
        self.pool = pool
        self.target = target_s
        self.interval = interval_s
        self.reset()

    def reset(self) -> None:
        self.first_above: float | None = None  # the RFC's first_above_time (0 there = unset)
        self.dropping = False
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0

    def _dodequeue(self, now: float) -> tuple[tuple[Message, float] | None, bool]:
        q = self.pool.queue
        if not q:
            self.first_above = None
            return None, False
        item = q.popleft()
        if now - item[1] < self.target or len(q) <= 1:
            self.first_above = None
        elif self.first_above is None:
            self.first_above = now + self.interval
        elif now >= self.first_above:
            return item, True
        return item, False

    def pop(self) -> tuple[Message, float] | None:
        now = self.pool.node.env.now
        item, ok = self._dodequeue(now)
        if item is None:
            self.dropping = False
            return None
        if self.dropping:
            if not ok:
                self.dropping = False  # a short enough wait: leave the dropping state
            while self.dropping and now >= self.drop_next:
                self.pool._drop(item[0])
                self.count += 1
                item, ok = self._dodequeue(now)
                if not ok:
                    self.dropping = False
                else:
                    self.drop_next += self.interval / math.sqrt(self.count)
        elif ok:  # above target for a whole interval: enter the dropping state with one drop
            self.pool._drop(item[0])
            item, _ = self._dodequeue(now)
            self.dropping = True
            delta = self.count - self.lastcount
            # Dropping again soon after the last episode: resume near its drop rate.
            self.count = delta if delta > 1 and now - self.drop_next < 16 * self.interval else 1
            self.drop_next = now + self.interval / math.sqrt(self.count)
            self.lastcount = self.count
        return item
