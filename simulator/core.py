"""Simulation: the SimPy environment, named seeded random streams, and the run loop.

Randomness: one root ``SeedSequence(seed)``; the stream called ``name`` is
``SeedSequence(seed, spawn_key=(blake2b64(name),))``. Streams are therefore independent of
creation order, so adding a component never shifts another's numbers (unlike
``SeedSequence.spawn``, which depends on call order), and two arms of a comparison that use
the same stream names see the same random numbers (common random numbers).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from heapq import heappop, heappush
from typing import Any

import numpy as np
import simpy
from simpy.core import NORMAL, URGENT, EventPriority

# The parts a Simulation assembles. None of them imports this module at run time (they name
# ``Simulation`` in type hints only, under ``TYPE_CHECKING``, and are handed the simulation
# they belong to), so these imports point one way; tests/test_import_graph.py keeps it so.
from .distributions import Constant, Distribution, as_distribution, buffered
from .faults import FaultSchedule
from .metrics import RequestLog
from .network import Due, Network
from .node import Node
from .streams import name_key, named_rng
from .trace import Trace

__all__ = ["Simulation", "name_key", "watch_progress"]


_FREEZE_EVERY = 1024  # nodes; see Simulation.node

# Progress listeners ``(now, until) -> None`` set by the runner (``watch_progress``): when any
# is set, ``run`` advances in 1% steps and reports after each; otherwise it costs nothing.
_progress_listeners: list[Callable[[float, float], None]] = []


class watch_progress:
    """``with watch_progress(fn):`` every ``Simulation.run`` inside reports ``fn(now, until)``."""

    def __init__(self, fn: Callable[[float, float], None]) -> None:
        self.fn = fn

    def __enter__(self) -> None:
        _progress_listeners.append(self.fn)

    def __exit__(self, *exc: object) -> None:
        _progress_listeners.remove(self.fn)


def _call(ev: Due) -> None:
    ev._value()


_CALL = (_call,)  # sim.at's callback (see network.Due)


class _LazyDraw:
    """``(n) -> ndarray``: ``n`` draws of ``dist.draw`` (or of ``random`` when ``dist`` is None)
    on the stream ``stream``, whose generator is looked up on the first call only. Holds the
    distribution, not its bound ``draw`` (48 bytes less per sampler: 100,000 service samplers)."""

    __slots__ = ("sim", "stream", "dist", "rng")

    def __init__(self, sim: Simulation, stream: str, dist: Distribution | None) -> None:
        self.sim, self.stream, self.dist, self.rng = sim, stream, dist, None

    def __call__(self, n: int):
        rng = self.rng
        if rng is None:
            rng = self.rng = self.sim.rng(self.stream)
        d = self.dist
        return rng.random(n) if d is None else d.draw(rng, n)


class Simulation:
    """The simulated world: clock, random streams, network, nodes, faults and records.

    >>> sim = Simulation(seed=7)
    >>> a, b = sim.node("a"), sim.node("b")
    >>> sim.run(until=1.0)
    """

    def __init__(self, seed: int = 0, *, trace: bool = False, env: simpy.Environment | None = None) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        # ``env``: another SimPy environment, e.g. ``simpy.rt.RealtimeEnvironment`` to run in step
        # with the wall clock (the workbench's external programs); None is the usual, fastest path.
        self.env = simpy.Environment() if env is None else env
        self._streams: dict[str, np.random.Generator] = {}
        self.nodes: dict[str, Node] = {}
        self.trace: Trace | None = Trace() if trace else None
        self.metrics: RequestLog = RequestLog()
        self.net: Network = Network(self)
        self.faults: FaultSchedule = FaultSchedule()
        self._started = False
        self._progress_step = 0.0  # simulated seconds per progress report (see run)
        self._on_start: list[Callable[[], None]] = []
        self.spans = None  # a span recorder, once simulator.observe.spans.enable_spans is called

    # -- time -----------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """True (simulated) time in seconds. Nodes see their own clocks instead."""
        return self.env._now  # Environment.now's own field: one property call, not two (clients read it per request)

    # -- randomness -----------------------------------------------------------------------
    def rng(self, name: str) -> np.random.Generator:
        """The generator of the stream called ``name`` (created on first use, then shared)."""
        g = self._streams.get(name)
        if g is None:
            g = self._streams[name] = named_rng(self.seed, name)
        return g

    def sampler(self, dist: Distribution | float, stream: str) -> Callable[[], float]:
        """A batched ``() -> float`` sampler of ``dist`` on the stream ``stream``.

        Batches start small and double (see :mod:`simulator.distributions`), so a node's
        sampler holds about as many samples as it has used, at most 4,096; the values do not
        depend on the batch sizes. The stream's generator (~10-20 us and ~1 KB) is made on the
        first draw, not here: a world of a million mostly idle nodes makes none for the idle
        ones, and the values are the same either way, since a named stream depends on the seed
        and its name only (never on when it was made). A constant draws nothing and never makes
        one. A distribution with its own ``sampler`` (``Mixture`` spawns child streams from its
        generator) gets the generator at once."""
        d = as_distribution(dist, stream)
        if isinstance(d, Constant):
            return d.sampler(None)
        if type(d).sampler is not Distribution.sampler:
            return d.sampler(self.rng(stream))
        return buffered(_LazyDraw(self, stream, d))

    def uniforms(self, stream: str) -> Callable[[], float]:
        """A batched ``() -> float`` of U[0, 1) draws on the stream ``stream``, in the
        generator's order (``rng(stream).random(n)``), in batches that start small and double;
        the generator is made on the first draw."""
        return buffered(_LazyDraw(self, stream, None))

    # -- building the world ---------------------------------------------------------------
    def node(self, name: str, **kwargs: Any) -> Node:
        """Create a node called ``name`` (see :class:`simulator.node.Node` for options)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"node name must be a non-empty string, got {name!r}")
        if name in self.nodes:
            raise ValueError(f"node name {name!r} is already used")
        n = Node(self, name, **kwargs)
        self.nodes[name] = n
        if not len(self.nodes) % _FREEZE_EVERY:
            # A big world is built before it runs and lives as long as the run: without this, the
            # cyclic GC's full collections re-scan every node built so far as the world grows
            # (~70% of the time to build 100,000 nodes). Frozen objects are still freed by
            # reference counting; run() unfreezes everything when it ends (see there).
            gc.freeze()
        return n

    def network(self, **kwargs: Any) -> Network:
        """Configure the default link: ``latency``, ``loss``, ``duplicate``, ``reorder``…"""
        self.net.configure(**kwargs)
        return self.net

    def process(self, gen) -> simpy.Process:
        """Start a SimPy process (a generator) in this world."""
        return self.env.process(gen)

    def at(self, delay: float, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` after ``delay`` seconds (a callback: no SimPy process)."""
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        ev = Due()
        ev._value = fn
        ev.callbacks = _CALL
        env = self.env  # Environment.schedule, inlined (the hot path of callback-driven clients)
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), ev))

    def on_start(self, fn: Callable[[], None]) -> None:
        """Register ``fn`` to run when :meth:`run` first starts (after validation)."""
        self._on_start.append(fn)

    def node_names(self) -> Iterable[str]:
        return self.nodes.keys()

    # -- running --------------------------------------------------------------------------
    def run(self, until: float, *, progress: bool = False) -> None:
        """Run until simulated time ``until`` (seconds). Faults are validated first."""
        if not (isinstance(until, (int, float)) and until > self.env.now):
            raise ValueError(f"until must be a number > now ({self.env.now}), got {until!r}")
        if not self._started:
            self._started = True
            self.faults.validate(self)
            self.faults.install(self)
            for fn in self._on_start:
                fn()
        # The world built so far (nodes, pools, clocks, streams) lives as long as the run: freezing
        # it keeps the cyclic GC from re-scanning it on every full collection (10,000 nodes would
        # otherwise make each collection cost O(nodes)); unfrozen after, so nothing leaks.
        gc.freeze()
        try:
            self._run(until, progress)
        finally:
            gc.unfreeze()

    def _run(self, until: float, progress: bool) -> None:
        steps, start = 100, self.env.now
        if _progress_listeners:
            # Report in chunks of simulated time, starting at 1% of the span and doubling while a
            # chunk takes under 50 ms of wall time: a long run reports often enough for an ETA,
            # and many short run() calls (a trial loop) are not split 100 ways each. The chunk
            # size is remembered across calls. Chunk boundaries never change results (a stop
            # event is URGENT and shifts no model event's order); wall time only sets their size.
            step = self._progress_step or (until - start) / steps
            t = start
            while t < until:
                t0 = time.perf_counter()
                t = min(until, t + step)
                self._advance(t)
                for fn in _progress_listeners:
                    fn(self.env.now, until)
                if time.perf_counter() - t0 < 0.05:
                    step *= 2
            self._progress_step = step
            return
        if not progress:
            self._advance(until)
            return
        from tqdm.auto import tqdm

        with tqdm(total=steps, desc="simulating", unit="%") as bar:
            for i in range(1, steps + 1):
                self._advance(start + (until - start) * i / steps)
                bar.update(1)

    def _advance(self, until: float) -> None:
        """``env.run(until=until)``, with ``Environment.step`` inlined (SimPy 4.1's, line for
        line: the same stop event, the same event order and ids), which saves a method call and
        a ``try`` per event (~10% of a small RPC world's time). Other environments (real time)
        run their own loop."""
        env = self.env
        if type(env) is not simpy.Environment:
            env.run(until=until)
            return
        at = until if isinstance(until, int) else float(until)
        if at <= env._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = simpy.Event(env)  # Environment.run's stop event: before all regular events at ``at``
        stop._ok = True
        stop._value = None
        env.schedule(stop, URGENT, at - env._now)
        queue = env._queue
        while True:  # never empty: ``stop`` is in the queue until it is popped
            env._now, _, _, event = heappop(queue)
            if event is stop:
                # What step() does when the stop event's callback raises StopSimulation: it keeps
                # the (no) remaining callbacks and re-schedules the event, which costs one id.
                stop.callbacks = []
                env.schedule(stop, EventPriority(-1))
                return
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                # The event failed and nobody defused it: crash, as Environment.step does.
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
