"""Workloads with Maelstrom's semantics: what clients ask, what the replies mean, which checker judges.

Each follows its namesake in jepsen-io/maelstrom ``doc/workloads.md`` and ``src/maelstrom/workload/``:
the request and reply bodies, the generator's mix of operations, whether a final read follows the
recovery wait, which operations are idempotent (a timed-out read is ``fail``: it changed nothing;
any other timeout is ``info``: it may have happened — ``maelstrom.client/with-errors``) and the checker.

A workload is a class: ``next_op()`` draws ``(f, key, value)`` from the workload's own named stream,
``request`` makes the body, ``result`` reads the reply, ``final_op`` is the final phase's operation
(``None``: no final phase), ``check(ops, test)`` judges the paired history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from . import checkers
from .base import WORKLOADS, Workload, workload

if TYPE_CHECKING:
    from simulator.history.ops import Op

    from .harness import TestRun

def _sorted(xs: list) -> list:
    """A read's elements in order (numbers numerically; mixed types by their repr)."""
    try:
        return sorted(xs)
    except TypeError:
        return sorted(xs, key=repr)


NO_ECHO = "<echo_ok without an echo field>"


@workload
class Echo(Workload):
    name = "echo"
    doc = "clients send echo with a payload; servers answer echo_ok with the same payload"

    def next_op(self) -> tuple[str, Any, Any]:
        self.counter += 1
        return "echo", None, f"Please echo {int(self.rng.integers(128))}"

    def request(self, f: str, key: Any, value: Any) -> dict:
        return {"type": "echo", "echo": value}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        # not None: the history records a completion's None as "what was asked", which would hide
        # a reply that lost its payload (the learner's first bug in notebook 08)
        echo = reply.get("echo")
        return NO_ECHO if echo is None else echo

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return checkers.echo(ops)


@workload
class UniqueIds(Workload):
    name = "unique-ids"
    doc = "clients ask for ids (generate); every id must be globally unique, even under partitions"
    idempotent = frozenset()

    def next_op(self) -> tuple[str, Any, Any]:
        return "generate", None, None

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        return reply.get("id")

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return checkers.unique_ids(ops)


class _SetLike(Workload):
    add_f: ClassVar[str] = "add"
    field: ClassVar[str] = "element"
    read_field: ClassVar[str] = "value"

    def next_op(self) -> tuple[str, Any, Any]:
        if self._mix():
            return "read", None, None
        self.counter += 1
        return self.add_f, None, self.counter - 1

    def request(self, f: str, key: Any, value: Any) -> dict:
        return {"type": f} if f == "read" else {"type": f, self.field: value}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        if f == "read":
            v = reply.get(self.read_field)
            return _sorted(v) if isinstance(v, list) else v
        return value

    def final_op(self) -> tuple[str, Any, Any]:
        return "read", "final", None

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return checkers.set_full(ops, add_f=self.add_f)


@workload
class Broadcast(_SetLike):
    name = "broadcast"
    doc = ("clients broadcast integers to any node and read every node's set; a topology message first; "
           "final reads after the recovery wait; checked by set-full (lost messages, stable latencies)")
    add_f, field, read_field = "broadcast", "message", "messages"
    topology = True


@workload
class GSet(_SetLike):
    name = "g-set"
    doc = "a grow-only set: add elements, read the set; set-full after a final read on every node"


@workload
class GCounter(Workload):
    name = "g-counter"
    doc = ("a grow-only counter: add a non-negative delta, read the sum; every final read must be the sum "
           "of the acknowledged adds plus any subset of the indefinite ones")
    services = ("seq-kv",)
    idempotent = frozenset()  # maelstrom's counter clients use no with-errors: a timeout is info
    negative = False

    def next_op(self) -> tuple[str, Any, Any]:
        if self._mix():
            return "read", None, None
        d = int(self.rng.integers(-5, 5)) if self.negative else int(self.rng.integers(0, 5))
        return "add", None, d

    def request(self, f: str, key: Any, value: Any) -> dict:
        return {"type": "read"} if f == "read" else {"type": "add", "delta": value}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        return reply.get("value") if f == "read" else value

    def final_op(self) -> tuple[str, Any, Any]:
        return "read", "final", None

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return checkers.counter(ops, allow_negative=self.negative)


@workload
class PNCounter(GCounter):
    name = "pn-counter"
    doc = "like g-counter, with negative deltas too (maelstrom: rand-int 10 - 5)"
    services = ()
    negative = True


from . import kafka as _kafka  # noqa: E402,F401  (registers the kafka workload)
from . import kv as _kv  # noqa: E402,F401  (lin-kv, txn-rw-register, txn-list-append)

__all__ = ["WORKLOADS", "Workload", "workload"]
