"""Fault schedules as data, and seeded random nemeses (Jepsen style).

A schedule is a list of timed faults — frozen dataclasses you can print, compare, save as
JSON and replay. ``sim.faults`` is the schedule of a simulation; it is validated (unknown
nodes, a heal with no partition, bad times …) and installed when ``sim.run`` first starts,
before any simulated time passes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .streams import named_rng

if TYPE_CHECKING:
    from .core import Simulation


def _time(name: str, v: float | None, *, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a time in seconds >= 0, got {v!r}")


def _names(v) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    return tuple(n if isinstance(n, str) else n.name for n in v)


def _positive(fault: Fault, *names: str) -> None:
    for n in names:
        v = getattr(fault, n)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{fault.kind}.{n} must be a finite number > 0, got {v!r}")


def _later(fault: Fault, name: str) -> None:
    """``name`` (a heal or recover time) is optional, and if given must come after ``at``."""
    v = getattr(fault, name)
    _time(f"{fault.kind}.{name}", v, optional=True)
    if v is not None and v <= fault.at:
        raise ValueError(f"{fault.kind}.{name} must be > at ({fault.at}), got {v}")


@dataclass(frozen=True)
class Fault:
    kind: ClassVar[str] = "fault"
    at: float

    def __post_init__(self) -> None:
        _time(f"{self.kind}.at", self.at)

    def nodes(self) -> Iterable[str]:
        return ()

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        d.update({k: (list(map(list, v)) if k == "groups" else list(v) if isinstance(v, tuple) else v)
                  for k, v in asdict(self).items()})
        return d


@dataclass(frozen=True)
class NodeFault(Fault):
    """A fault that acts on one node."""

    node: str = ""

    def nodes(self):
        return [self.node]


@dataclass(frozen=True)
class Partition(Fault):
    """Split into ``groups`` at ``at``; heal at ``heal_at`` (None: a later ``Heal``).
    ``mode``: ``split`` (groups), ``oneway`` (groups[0] -> groups[1] lost), ``bridge``
    (groups[0], groups[1] and ``bridge`` that reaches both)."""

    kind: ClassVar[str] = "partition"
    groups: tuple[tuple[str, ...], ...] = ()
    heal_at: float | None = None
    mode: str = "split"
    bridge: str | None = None
    refuse: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "groups", tuple(_names(g) for g in self.groups))
        _later(self, "heal_at")
        if self.mode not in ("split", "oneway", "bridge"):
            raise ValueError(f"partition.mode must be one of split, oneway, bridge; got {self.mode!r}")
        if len(self.groups) < 2 or (self.mode != "split" and len(self.groups) != 2):
            raise ValueError(f"partition.groups must hold 2 groups (>= 2 for split), got {len(self.groups)}")
        if (self.mode == "bridge") != (self.bridge is not None):
            raise ValueError("partition.bridge must be set exactly when mode='bridge'")

    def nodes(self):
        out = [n for g in self.groups for n in g]
        return out + ([self.bridge] if self.bridge else [])


@dataclass(frozen=True)
class Isolate(NodeFault):
    """Cut ``node`` off from every other node."""

    kind: ClassVar[str] = "isolate"
    heal_at: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _later(self, "heal_at")



@dataclass(frozen=True)
class Heal(Fault):
    """Heal every partition."""

    kind: ClassVar[str] = "heal"


@dataclass(frozen=True)
class Crash(NodeFault):
    """Crash ``node``; recover at ``recover_at`` (None: stays down; ``stop``: crash-stop)."""

    kind: ClassVar[str] = "crash"
    recover_at: float | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _later(self, "recover_at")
        if self.recover_at is not None and self.stop:
            raise ValueError("crash.recover_at must not be set with stop=True (crash-stop never recovers)")



@dataclass(frozen=True)
class Pause(NodeFault):
    """Freeze ``node`` for ``duration`` seconds (GC pause)."""

    kind: ClassVar[str] = "pause"
    duration: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "duration")



@dataclass(frozen=True)
class SlowDown(NodeFault):
    """Multiply ``node``'s service times by ``factor`` for ``duration`` s (gray failure)."""

    kind: ClassVar[str] = "slowdown"
    factor: float = 10.0
    duration: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "factor", "duration")



@dataclass(frozen=True)
class ClockJump(NodeFault):
    """Step ``node``'s clock by ``delta_s`` seconds."""

    kind: ClassVar[str] = "clock_jump"
    delta_s: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.delta_s, (int, float)) and math.isfinite(self.delta_s)):
            raise ValueError(f"clock_jump.delta_s must be a finite number of seconds, got {self.delta_s!r}")



@dataclass(frozen=True)
class LatencySpike(Fault):
    """For ``duration`` s, latency x ``factor`` + ``extra_s`` (on links touching ``nodes``)."""

    kind: ClassVar[str] = "latency_spike"
    duration: float = 1.0
    factor: float = 1.0
    extra_s: float = 0.0
    on: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on is not None:
            object.__setattr__(self, "on", _names(self.on))
        _positive(self, "duration", "factor")
        if not (math.isfinite(self.extra_s) and self.extra_s >= 0):
            raise ValueError(f"latency_spike.extra_s must be >= 0 seconds, got {self.extra_s!r}")

    def nodes(self):
        return self.on or ()


@dataclass(frozen=True)
class LossBurst(Fault):
    """For ``duration`` s, lose each message with extra probability ``loss``."""

    kind: ClassVar[str] = "loss_burst"
    duration: float = 1.0
    loss: float = 0.5
    on: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on is not None:
            object.__setattr__(self, "on", _names(self.on))
        _positive(self, "duration")
        if not (0 <= self.loss <= 1):
            raise ValueError(f"loss_burst.loss must be a probability in [0, 1], got {self.loss!r}")

    def nodes(self):
        return self.on or ()


FAULT_TYPES = {c.kind: c for c in (Partition, Isolate, Heal, Crash, Pause, SlowDown, ClockJump,
                                   LatencySpike, LossBurst)}


_JSON_TYPES = {dict: "object", list: "list", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}


def _short(v: object) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _json_field(kind: str, name: str, annotation: str, v: object) -> object:
    """``v`` (a JSON value) as field ``name`` of a ``kind`` fault, or ValueError naming both.
    Types come from the dataclass annotations, so a new fault type is checked with no code here."""
    where = f"{kind}.{name}={_short(v)}"
    optional = annotation.endswith(" | None")
    base = annotation.removesuffix(" | None")
    if v is None and optional:
        return None
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if base == "float":
        if not (number and math.isfinite(v)):
            raise ValueError(f"{where} must be a finite number" + (" or null" if optional else ""))
        return v
    if base == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"{where} must be true or false")
        return v
    if base == "str":
        if not isinstance(v, str):
            raise ValueError(f"{where} must be a string" + (" or null" if optional else ""))
        return v
    if base == "tuple[str, ...]":
        if not (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)):
            raise ValueError(f"{where} must be a list of node names" + (" or null" if optional else ""))
        return tuple(v)
    if base == "tuple[tuple[str, ...], ...]":
        if not (isinstance(v, (list, tuple)) and all(isinstance(g, (list, tuple)) and all(isinstance(x, str) for x in g)
                                                       for g in v)):
            raise ValueError(f"{where} must be a list of lists of node names")
        return tuple(tuple(g) for g in v)
    return v


def _fault_from_dict(d: object) -> Fault:
    if not isinstance(d, dict):
        raise ValueError(f"a fault must be an object with a 'kind', got {_short(d)}")
    d = dict(d)
    kind = d.pop("kind", None)
    ft = FAULT_TYPES.get(kind) if isinstance(kind, str) else None
    if ft is None:
        raise ValueError(f"unknown fault kind {_short(kind)}; allowed: {sorted(FAULT_TYPES)}")
    annotations = {f.name: f.type for f in fields(ft)}
    bad = set(d) - set(annotations)
    if bad:
        raise ValueError(f"{kind}: unknown field(s) {sorted(bad)}; allowed: {sorted(annotations)}")
    required = ("at", "node") if issubclass(ft, NodeFault) else ("at",)
    missing = [n for n in required if n not in d]
    if missing:
        raise ValueError(f"{kind}: missing field(s) {missing}")
    return ft(**{k: _json_field(kind, k, annotations[k], v) for k, v in d.items()})


@dataclass
class FaultSchedule:
    """An ordered list of faults; build it with the helpers or from JSON, then replay it."""

    faults: list[Fault] = field(default_factory=list)
    # The running world, once ``sim.run`` has installed the schedule: a fault added later is
    # checked and scheduled at once (or refused), never silently ignored.
    _live: Simulation | None = field(default=None, repr=False, compare=False)

    # -- building ------------------------------------------------------------------------------
    def add(self, fault: Fault) -> Fault:
        if not isinstance(fault, Fault):
            raise ValueError(f"fault must be a Fault, got {fault!r}")
        sim = self._live
        if sim is not None:
            if fault.at < sim.now:
                raise ValueError(f"{fault.kind} at {fault.at}s: the run is already at {sim.now}s; "
                                 f"a fault added during a run must not start in the past")
            FaultSchedule([*self.faults, fault]).validate(sim)
            sim.at(fault.at - sim.now, _applier(sim, fault))
        self.faults.append(fault)
        return fault

    def partition(self, at: float, groups: Sequence[Iterable], heal_at: float | None = None, **kw) -> Fault:
        return self.add(Partition(at=at, groups=tuple(_names(g) for g in groups), heal_at=heal_at, **kw))

    def one_way(self, at: float, src: Iterable, dst: Iterable, heal_at: float | None = None) -> Fault:
        return self.add(Partition(at=at, groups=(_names(src), _names(dst)), heal_at=heal_at, mode="oneway"))

    def bridge(self, at: float, a: Iterable, b: Iterable, bridge, heal_at: float | None = None) -> Fault:
        br = bridge if isinstance(bridge, str) else bridge.name
        return self.add(Partition(at=at, groups=(_names(a), _names(b)), heal_at=heal_at, mode="bridge", bridge=br))

    def isolate(self, at: float, node, heal_at: float | None = None) -> Fault:
        return self.add(Isolate(at=at, node=_names([node])[0], heal_at=heal_at))

    def heal(self, at: float) -> Fault:
        return self.add(Heal(at=at))

    def crash(self, at: float, node, recover_at: float | None = None, stop: bool = False) -> Fault:
        return self.add(Crash(at=at, node=_names([node])[0], recover_at=recover_at, stop=stop))

    def pause(self, at: float, node, duration: float) -> Fault:
        return self.add(Pause(at=at, node=_names([node])[0], duration=duration))

    def slow_down(self, at: float, node, factor: float, duration: float) -> Fault:
        return self.add(SlowDown(at=at, node=_names([node])[0], factor=factor, duration=duration))

    def clock_jump(self, at: float, node, delta_s: float) -> Fault:
        return self.add(ClockJump(at=at, node=_names([node])[0], delta_s=delta_s))

    def latency_spike(self, at: float, duration: float, factor: float = 1.0, extra_s: float = 0.0,
                      on: Iterable | None = None) -> Fault:
        return self.add(LatencySpike(at=at, duration=duration, factor=factor, extra_s=extra_s,
                                     on=None if on is None else _names(on)))

    def loss_burst(self, at: float, duration: float, loss: float, on: Iterable | None = None) -> Fault:
        return self.add(LossBurst(at=at, duration=duration, loss=loss, on=None if on is None else _names(on)))

    def extend(self, other: FaultSchedule | Iterable[Fault]) -> None:
        for f in (other.faults if isinstance(other, FaultSchedule) else other):
            self.add(f)

    # -- as a value ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.faults)

    def __iter__(self):
        return iter(self.faults)

    def __str__(self) -> str:
        if not self.faults:
            return "FaultSchedule(no faults)"
        return "\n".join(f"{f.at:10.3f}s  {f}" for f in sorted(self.faults, key=lambda f: f.at))

    def to_list(self) -> list[dict]:
        return [f.to_dict() for f in self.faults]

    def to_json(self, path: str | Path | None = None) -> str:
        s = json.dumps(self.to_list(), indent=1)
        if path is not None:
            Path(path).write_text(s)
        return s

    @classmethod
    def from_list(cls, items: Iterable[dict]) -> FaultSchedule:
        """A schedule from plain dicts (``to_list``'s form); a bad item raises ValueError naming
        it (``fault 3 of 5``, counted from 1), its field and the value."""
        if isinstance(items, (str, bytes, dict)):
            raise ValueError(f"a fault schedule must be a list of faults, got a {type(items).__name__}")
        items = list(items)
        out = cls()
        for i, d in enumerate(items, 1):
            try:
                out.add(_fault_from_dict(d))
            except ValueError as e:
                raise ValueError(f"fault {i} of {len(items)}: {e}") from None
        return out

    @classmethod
    def loads(cls, text: str) -> FaultSchedule:
        """A schedule from JSON text (always text, never a path): ``from_list`` of a JSON list."""
        try:
            data = json.loads(text.removeprefix("\ufeff"))
        except RecursionError:  # json recurses once per level: [[[[...]]]] 100,000 deep
            raise ValueError("not a fault schedule: JSON nested too deeply (a schedule is a list of "
                             "flat objects)") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON: {e}") from None
        if not isinstance(data, list):
            raise ValueError(f"a fault schedule must be a JSON list of faults, got a JSON "
                             f"{_JSON_TYPES.get(type(data), type(data).__name__)}")
        return cls.from_list(data)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> FaultSchedule:
        """A schedule from JSON text, or from the file at a path (a ``Path``, or a ``str`` that
        does not start like JSON: ``[`` or ``{``)."""
        if not isinstance(text_or_path, Path) and str(text_or_path).lstrip("\ufeff \t\r\n")[:1] in ("[", "{"):
            return cls.loads(str(text_or_path))
        return cls.loads(Path(text_or_path).read_text(encoding="utf-8-sig"))

    @classmethod
    def read(cls, path: str | Path) -> tuple[str, FaultSchedule]:
        """The text of the schedule file at ``path`` (without a byte-order mark) and the schedule.
        Raises OSError if it cannot be read, ValueError if it is not a valid schedule."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise ValueError(f"not a text file ({e.reason} at byte {e.start})") from None
        return text, cls.loads(text)

    # -- validation and installation -----------------------------------------------------------
    def validate(self, sim: Simulation) -> None:
        """Raise ValueError for unknown nodes or a heal with nothing to heal."""
        known = sim.nodes
        for f in self.faults:
            for n in f.nodes():
                if n not in known:
                    raise ValueError(f"{f.kind} at {f.at}s: unknown node {n!r}; known: {sorted(known)[:20]}")
        # Replay partitions and heals in time order (ties: the order given).
        events = []
        for i, f in enumerate(self.faults):
            if isinstance(f, (Partition, Isolate)):
                events.append((f.at, i, +1))
                if f.heal_at is not None:
                    events.append((f.heal_at, i, -1))
            elif isinstance(f, Heal):
                events.append((f.at, i, 0))
        active: set[int] = set()
        for t, i, what in sorted(events):
            if what == 1:
                active.add(i)
            elif what == -1:
                active.discard(i)
            else:
                if not active:
                    raise ValueError(f"heal at {t}s: there is no partition to heal at that time")
                active.clear()

    def install(self, sim: Simulation) -> None:
        """Schedule every fault on ``sim`` (called by ``sim.run``)."""
        for f in self.faults:
            sim.at(max(0.0, f.at - sim.now), _applier(sim, f))
        self._live = sim


def _applier(sim: Simulation, f: Fault):
    net = sim.net

    def cut_then_heal(make):
        def go():
            cut = make()
            if f.heal_at is not None:
                sim.at(f.heal_at - f.at, lambda: cut in net.cuts and net.heal(cut))
        return go

    if isinstance(f, Partition):
        if f.mode == "split":
            return cut_then_heal(lambda: net.partition(f.groups, refuse=f.refuse))
        if f.mode == "oneway":
            return cut_then_heal(lambda: net.one_way(f.groups[0], f.groups[1], refuse=f.refuse))
        return cut_then_heal(lambda: net.bridge(f.groups[0], f.groups[1], f.bridge, refuse=f.refuse))
    if isinstance(f, Isolate):
        return cut_then_heal(lambda: net.isolate(f.node))
    if isinstance(f, Heal):
        return lambda: net.cuts and net.heal()
    if isinstance(f, Crash):
        def crash():
            node = sim.nodes[f.node]
            node.crash(stop=f.stop)
            if f.recover_at is not None:
                sim.at(f.recover_at - f.at, lambda: (not node.up) and node.recover())
        return crash
    if isinstance(f, Pause):
        return lambda: sim.nodes[f.node].pause(f.duration)
    if isinstance(f, SlowDown):
        def slow():
            node = sim.nodes[f.node]
            before = node.slow_factor
            node.slow_down(before * f.factor)
            sim.at(f.duration, lambda: node.slow_down(node.slow_factor / f.factor))
        return slow
    if isinstance(f, ClockJump):
        return lambda: sim.nodes[f.node].clock.jump(f.delta_s)
    if isinstance(f, LatencySpike):
        def spike():
            s = net.spike(f.factor, f.extra_s, f.on)
            sim.at(f.duration, lambda: net._spikes.remove(s))
        return spike
    if isinstance(f, LossBurst):
        def burst():
            b = net.loss_burst(f.loss, f.on)
            sim.at(f.duration, lambda: net._loss_bursts.remove(b))
        return burst
    raise ValueError(f"cannot install fault {f!r}")  # pragma: no cover


# -- random nemeses ------------------------------------------------------------------------------
NEMESES = ("halves", "majorities_ring", "isolate", "flapping", "crash", "mixed")


def random_nemesis(
    nodes: Sequence[str],
    *,
    kind: str = "halves",
    start: float = 1.0,
    until: float = 10.0,
    fault_s: float = 1.0,
    calm_s: float = 1.0,
    seed: int = 0,
    stream: str = "nemesis",
) -> FaultSchedule:
    """A seeded random fault schedule (Jepsen style), returned as a value to print or save.

    Alternates ``fault_s`` of fault with ``calm_s`` of calm from ``start`` to ``until``.
    ``halves``: a random split into two halves; ``majorities_ring``: every node sees a
    majority but no two see the same one (each node cut from the nodes not adjacent to it
    on a random ring); ``isolate``: one random node cut off; ``flapping``: partitions that
    come and go 10x faster; ``crash``: a random node crashes and recovers; ``mixed``: any.
    """
    nodes = list(_names(nodes))
    if len(nodes) < 2:
        raise ValueError(f"nodes must list at least 2 nodes, got {len(nodes)}")
    if kind not in NEMESES:
        raise ValueError(f"kind must be one of {NEMESES}, got {kind!r}")
    for nm, v in (("start", start), ("until", until)):
        _time(nm, v)
    for nm, v in (("fault_s", fault_s), ("calm_s", calm_s)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{nm} must be > 0 seconds, got {v!r}")
    rng = named_rng(seed, stream)
    sched = FaultSchedule()
    t = float(start)
    if kind == "flapping":
        fault_s, calm_s = fault_s / 10, calm_s / 10
    while t + fault_s <= until:
        k = kind if kind != "mixed" else ("halves", "majorities_ring", "isolate", "crash")[rng.integers(4)]
        end = t + fault_s
        perm = [nodes[i] for i in rng.permutation(len(nodes))]
        if k in ("halves", "flapping"):
            h = len(perm) // 2
            sched.partition(t, [perm[:h], perm[h:]], heal_at=end)
        elif k == "isolate":
            sched.isolate(t, perm[0], heal_at=end)
        elif k == "crash":
            sched.crash(t, perm[0], recover_at=end)
        else:  # majorities_ring: each node cut (one way, from it) from its non-neighbours
            n = len(perm)
            m = n // 2 + 1
            for i, a in enumerate(perm):
                sees = {perm[(i + d) % n] for d in range(-(m // 2), m - m // 2)}
                cut = [b for b in perm if b not in sees]
                if cut:
                    sched.one_way(t, [a], cut, heal_at=end)
        t = end + calm_s
    return sched
