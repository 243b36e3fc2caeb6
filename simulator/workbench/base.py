"""The workload base class and registry (the built-in workloads: :mod:`simulator.workbench.workloads`).

A workload is a class: ``next_op()`` draws ``(f, key, value)`` from the workload's own named stream,
``prepare`` fills in a client's own part just before the operation is recorded, ``request`` makes the
body, ``result`` reads the reply, ``final_op`` is the final phase's operation (``None``: no final
phase), ``check(ops, test)`` judges the paired history. Every module defining workloads imports this
one (never ``workloads``, which imports them all: no import circle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from simulator.history.ops import Op

    from .harness import TestRun

WORKLOADS: dict[str, type[Workload]] = {}


def workload(cls: type[Workload]) -> type[Workload]:
    WORKLOADS[cls.name] = cls
    return cls


class Workload:
    """Base class (see the module docstring)."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    idempotent: ClassVar[frozenset[str]] = frozenset({"read"})
    services: ClassVar[tuple[str, ...]] = ()
    topology: ClassVar[bool] = False

    def __init__(self, rng: np.random.Generator, test: TestRun) -> None:
        self.rng = rng
        self.test = test
        self.counter = 0

    def next_op(self) -> tuple[str, Any, Any]:
        raise NotImplementedError

    def prepare(self, process: Any, f: str, key: Any, value: Any) -> Any:
        """The value to record for client ``process``'s operation, just before it is invoked (a
        workload whose clients keep state — kafka's poll offsets — fills it in here)."""
        return value

    def request(self, f: str, key: Any, value: Any) -> dict:
        return {"type": f}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        return value

    def final_op(self) -> tuple[str, Any, Any] | None:
        return None

    def check(self, ops: list[Op], test: TestRun) -> dict:
        raise NotImplementedError

    def _mix(self) -> bool:
        """``gen/mix`` of two generators: each op is either, with probability 1/2."""
        return bool(self.rng.random() < 0.5)
