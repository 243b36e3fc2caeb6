"""Sequential specifications for the linearizability checker, in Porcupine's shape.

A model says what one object does when operations are applied to it one at a time
(Herlihy & Wing 1990: linearizability is defined relative to such a sequential specification;
the interface follows Porcupine's ``Model``, Athalye 2017):

- ``init()``: the state before any operation;
- ``step(state, input, output) -> (ok, new_state)``: may the operation ``input`` (``f``, ``key``,
  ``value`` as invoked) return ``output`` (``type``, ``value``) in ``state``, and what state follows?
  ``output.type`` is ``"ok"``; ``"info"`` (the outcome is unknown: accept any outcome the operation
  could have had, and return the state after it took effect); or ``"fail"``, only for the
  operations ``failed_is_information`` selects (others that failed surely did not happen and are
  dropped before the search);
- states must be hashable and compare equal when they behave alike (the search caches them);
- ``partition(ops)``: independent parts checked alone (default: one part per ``key``; Horn &
  Kroening 2015's P-compositionality);
- optional: ``read_only(input)`` for operations that never change the state (with an unknown
  output they constrain nothing and are dropped; a shrunk counterexample may drop them freely),
  ``idempotent(input)`` for operations that, once they change nothing, never will (the search places
  them at once), ``operations`` (the accepted ``f`` names, so a typo is refused with its line number) and
  ``removable(ops, alive, want)`` (which operations a counterexample may drop together).

See docs/models.md for a worked example. The built-in models are in ``MODELS``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

from .ops import Op, freeze


class Input(NamedTuple):
    """What was asked: the invocation's ``f``, ``key`` and ``value`` (frozen: lists are tuples)."""

    f: str
    key: Any
    value: Any


class Output(NamedTuple):
    """What came back: ``type`` (``ok`` | ``fail`` | ``info``) and the completion's value
    (``None`` when ``info``: nothing came back)."""

    type: str
    value: Any


class Model:
    """Base class: override ``init`` and ``step`` (and ``operations`` to refuse unknown ``f``)."""

    name = "model"
    operations: frozenset[str] | None = None  # accepted f names; None accepts any

    def init(self) -> Hashable:
        return None

    def step(self, state: Any, input: Input, output: Output) -> tuple[bool, Any]:
        raise NotImplementedError

    def partition(self, ops: list[Op]) -> list[list[Op]]:
        parts: dict[Any, list[Op]] = defaultdict(list)
        for op in ops:
            parts[freeze(op.key)].append(op)
        return list(parts.values())

    def read_only(self, input: Input) -> bool:
        return False

    def failed_is_information(self, input: Input) -> bool:
        return False

    def idempotent(self, input: Input) -> bool:
        """Whether the operation, once it leaves a state unchanged, leaves every later state unchanged
        too (a set's ``add`` of a member). The search may then place it at once. Default: no."""
        return False

    def removable(self, ops: list[Op], alive: set[int], want: Iterable[int]) -> set[int]:
        """Operations (indices into ``ops``) a counterexample may drop together with ``want``, or
        an empty set. Dropping must keep every linearization of the rest legal, so that a subset
        that cannot be linearized proves the whole cannot. Default: read-only operations only."""
        want = list(want)
        return set(want) if all(self.read_only(_input(ops[i])) for i in want) else set()

    def describe_state(self, state: Any) -> str:
        return repr(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _input(op: Op) -> Input:
    return Input(op.f, freeze(op.key), freeze(op.value))


def _output(op: Op) -> Output:
    return Output(op.type, None if op.type == "info" else freeze(op.result))


class RegisterModel(Model):
    """A read/write/cas register (Knossos' ``cas-register``): ``read`` returns the value, ``write v``
    sets it, ``cas [e, n]`` sets it to ``n`` iff it is ``e``. Checked by a fast path (see search.py).

    ``failed_cas_is_information=False`` (model ``register``) drops a failed cas, as if it never
    ran; ``True`` (model ``cas-register``, as Porcupine's etcd model) keeps it as a fact: at some
    instant inside its interval the value differed from ``e``.
    """

    operations = frozenset({"read", "write", "cas"})

    def __init__(self, initial: Any = None, failed_cas_is_information: bool = False) -> None:
        self.initial = freeze(initial)
        self.fail_info = failed_cas_is_information
        self.name = "cas-register" if failed_cas_is_information else "register"

    def init(self) -> Any:
        return self.initial

    def step(self, state: Any, input: Input, output: Output) -> tuple[bool, Any]:
        if input.f == "read":
            return output.type == "info" or output.value == state, state
        if input.f == "write":
            return True, input.value
        expected, new = input.value
        if output.type == "fail":
            return state != expected, state
        return state == expected, new

    def read_only(self, input: Input) -> bool:
        return input.f == "read"

    def failed_is_information(self, input: Input) -> bool:
        return self.fail_info and input.f == "cas"


class KVModel(Model):
    """Porcupine's key-value model: per key a string, initially ``initial`` (``""``); ``get``
    returns it, ``put v`` replaces it, ``append v`` appends ``v``. Keys are independent."""

    name = "kv"
    operations = frozenset({"get", "put", "append"})

    def __init__(self, initial: Any = None) -> None:
        self.initial = "" if initial is None else str(initial)

    def init(self) -> str:
        return self.initial

    def step(self, state: str, input: Input, output: Output) -> tuple[bool, str]:
        if input.f == "get":
            return output.type == "info" or (output.value if output.value is not None else "") == state, state
        if input.f == "put":
            return True, str(input.value)
        return True, state + str(input.value)

    def read_only(self, input: Input) -> bool:
        return input.f == "get"

    def removable(self, ops: list[Op], alive: set[int], want: Iterable[int]) -> set[int]:
        # a put/append of v only changes states until the next put, and every legal get there
        # contains v: dropping it with every get containing v keeps the other gets legal
        drop: set[int] = set()
        for w in want:
            drop.add(w)
            if ops[w].f != "get":
                v = str(ops[w].value)
                drop.update(i for i in alive if ops[i].f == "get" and v in str(ops[i].result or ""))
        return drop


class SetModel(Model):
    """A grow-only set: ``add x``; ``read`` returns every element (any collection; compared as a
    set). Initially empty (or ``initial``, an iterable)."""

    name = "set"
    operations = frozenset({"add", "read"})

    def __init__(self, initial: Any = None) -> None:
        self.initial = frozenset(freeze(initial) or ())

    def init(self) -> frozenset:
        return self.initial

    def step(self, state: frozenset, input: Input, output: Output) -> tuple[bool, frozenset]:
        if input.f == "add":
            return True, state | {input.value}
        return output.type == "info" or frozenset(output.value or ()) == state, state

    def read_only(self, input: Input) -> bool:
        return input.f == "read"

    def idempotent(self, input: Input) -> bool:
        return input.f == "add"  # a member stays a member: adding it again never changes anything

    def removable(self, ops: list[Op], alive: set[int], want: Iterable[int]) -> set[int]:
        # dropping add x with every read containing x: the other reads saw no x, so are unchanged.
        # One pass over the alive reads for all wanted elements (a pass per element made shrinking a
        # 10k-op history overrun its time budget by minutes: each pass re-freezes every read).
        drop: set[int] = set(want)
        xs = {freeze(ops[w].value) for w in want if ops[w].f == "add"}
        if xs:
            drop.update(i for i in alive if ops[i].f == "read" and not xs.isdisjoint(freeze(ops[i].result) or ()))
        return drop


class QueueModel(Model):
    """A FIFO queue: ``enqueue x``; ``dequeue`` returns the head, or ``None`` when empty. An
    ``info`` dequeue may have removed the head (a message lost in flight)."""

    name = "queue"
    operations = frozenset({"enqueue", "dequeue"})

    def init(self) -> tuple:
        return ()

    def step(self, state: tuple, input: Input, output: Output) -> tuple[bool, tuple]:
        if input.f == "enqueue":
            return True, state + (input.value,)
        if output.type == "info":
            return True, state[1:]
        if not state:
            return output.value is None, state
        return output.value == state[0], state[1:]

    def removable(self, ops: list[Op], alive: set[int], want: Iterable[int]) -> set[int]:
        # enqueue x with the ok dequeue that returned it (x enqueued once, dequeued at most once);
        # if no ok dequeue returned x, only when no info dequeue could have removed it
        drop: set[int] = set()
        for w in want:
            op = ops[w]
            x = freeze(op.value if op.f == "enqueue" else op.result)
            if op.f == "dequeue" and op.result is None:
                return set()  # an empty dequeue constrains the whole queue
            enq = [i for i in alive if ops[i].f == "enqueue" and freeze(ops[i].value) == x]
            deq = [i for i in alive if ops[i].f == "dequeue" and ops[i].type == "ok" and freeze(ops[i].result) == x]
            if len(enq) != 1 or len(deq) > 1:
                return set()
            if not deq and any(ops[i].f == "dequeue" and ops[i].type != "ok" for i in alive):
                return set()
            drop.update(enq + deq)
        return drop


class UniqueIdModel(Model):
    """A unique-id generator: every ``ok`` ``generate`` returns an id never returned before."""

    name = "unique-id"
    operations = frozenset({"generate"})

    def init(self) -> frozenset:
        return frozenset()

    def step(self, state: frozenset, input: Input, output: Output) -> tuple[bool, frozenset]:
        if output.type == "info":
            return True, state  # an id nobody saw: constrains nothing
        return output.value not in state, state | {output.value}

    def partition(self, ops: list[Op]) -> list[list[Op]]:
        # one generator whatever the key; only operations returning the same id constrain each
        # other, so each id is its own part (an info op returned nothing and constrains nothing)
        parts: dict[Any, list[Op]] = defaultdict(list)
        for op in ops:
            if op.type == "ok":
                parts[freeze(op.result)].append(op)
        return list(parts.values())

    def removable(self, ops: list[Op], alive: set[int], want: Iterable[int]) -> set[int]:
        return set(want)  # fewer ids issued only makes the rest easier


class MultiRegisterModel(Model):
    """Knossos' ``multi-register``: registers by key, read and written together by ``txn`` operations
    whose value is a list of ``[f, k, v]`` micro-ops (``f`` read or write), applied in order, as one
    atomic step. A read of nil is always legal ("nil reads are always legal", ``knossos.model``), as is
    an unknown (info) outcome's; ``initial`` maps keys to their starting values (default: all nil)."""

    name = "multi-register"
    operations = frozenset({"txn"})

    def __init__(self, initial: Any = None) -> None:
        if initial is not None and not isinstance(initial, dict):
            raise ValueError(f"model 'multi-register' takes initial as an object of key -> value, got {initial!r}")
        self.initial = freeze(initial or {})

    def init(self) -> tuple:
        return self.initial

    def step(self, state: tuple, input: Input, output: Output) -> tuple[bool, tuple]:
        regs = dict(state)
        mops = output.value if output.type == "ok" and output.value is not None else input.value
        for m in mops or ():
            if not isinstance(m, tuple) or len(m) != 3 or m[0] not in ("read", "write"):
                return False, state
            f, k, v = m
            if f == "write":
                regs[k] = v
            elif output.type == "ok" and v is not None and regs.get(k) != v:
                return False, state
        return True, tuple(sorted(regs.items(), key=repr))

    def read_only(self, input: Input) -> bool:
        return all(isinstance(m, tuple) and m[:1] == ("read",) for m in input.value or ())

    def partition(self, ops: list[Op]) -> list[list[Op]]:
        return [ops]  # a transaction spans keys: one part


MODELS: dict[str, type[Model]] = {"register": RegisterModel, "cas-register": RegisterModel, "kv": KVModel,
                                  "set": SetModel, "queue": QueueModel, "unique-id": UniqueIdModel,
                                  "multi-register": MultiRegisterModel}


def get_model(model: str | Model, initial: Any = None) -> Model:
    """A model instance from a name in ``MODELS`` (``initial`` is its starting value) or a ``Model``."""
    if isinstance(model, Model):
        return model
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)} or a Model instance, got {model!r}")
    if model in ("register", "cas-register"):
        return RegisterModel(initial, failed_cas_is_information=model == "cas-register")
    if model in ("queue", "unique-id"):
        if initial is not None:
            raise ValueError(f"model {model!r} starts empty; initial must be None, got {initial!r}")
        return MODELS[model]()
    return MODELS[model](initial)
