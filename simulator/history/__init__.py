"""Jepsen-style operation histories: record, save/load as JSON Lines, and check.

One event per invocation and per completion, each with ``process``, ``type`` (``invoke`` |
``ok`` | ``fail`` | ``info``), ``f`` (``read`` | ``write`` | ``cas``, or CRDT ops such as
``add`` / ``remove`` / ``incr``), ``key``, ``value`` (for ``cas``: ``[expected, new]``) and
``time`` (true simulated seconds). A completion repeats its invocation's ``f`` and ``key``;
an ``ok`` read carries the value read. ``info`` means indeterminate: the operation may or may
not have taken effect (a timeout). Recording is columnar and costs nothing when unused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TYPES = ("invoke", "ok", "fail", "info")
FIELDS = ("process", "type", "f", "key", "value", "time")


class History:
    """An append-only list of events, stored as columns."""

    def __init__(self) -> None:
        self.process: list = []
        self.type: list[str] = []
        self.f: list[str] = []
        self.key: list = []
        self.value: list = []
        self.time: list[float] = []
        self._open: dict[int, int] = {}  # invoke index -> still open

    def __len__(self) -> int:
        return len(self.type)

    def _append(self, process, type_: str, f: str, key, value, time: float) -> int:
        i = len(self.type)
        self.process.append(process)
        self.type.append(type_)
        self.f.append(f)
        self.key.append(key)
        self.value.append(value)
        self.time.append(float(time))
        return i

    # -- recording ------------------------------------------------------------------------
    def invoke(self, process, f: str, key, value, time: float) -> int:
        """Record an invocation; returns its index, the handle for its completion."""
        i = self._append(process, "invoke", f, key, value, time)
        self._open[i] = i
        return i

    def complete(self, op: int, type_: str, time: float, value: Any = None) -> int:
        """Record the completion (``ok`` | ``fail`` | ``info``) of invocation ``op``.
        For an ``ok`` read pass the value read; writes default to their invoked value."""
        if type_ not in ("ok", "fail", "info"):
            raise ValueError(f"completion type must be ok, fail or info, got {type_!r}")
        if self._open.pop(op, None) is None:
            raise ValueError(f"operation {op} is not an open invocation")
        if value is None and self.f[op] != "read":
            value = self.value[op]
        return self._append(self.process[op], type_, self.f[op], self.key[op], value, time)

    def ok(self, op: int, time: float, value: Any = None) -> int:
        return self.complete(op, "ok", time, value)

    def fail(self, op: int, time: float, value: Any = None) -> int:
        return self.complete(op, "fail", time, value)

    def info(self, op: int, time: float, value: Any = None) -> int:
        return self.complete(op, "info", time, value)

    @property
    def open_ops(self) -> list[int]:
        """Invocations with no completion yet (in flight when the run stopped)."""
        return sorted(self._open)

    # -- as data ------------------------------------------------------------------------------
    def events(self) -> Iterator[dict]:
        for i in range(len(self.type)):
            yield {"process": self.process[i], "type": self.type[i], "f": self.f[i],
                   "key": self.key[i], "value": self.value[i], "time": self.time[i]}

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"process": self.process, "type": self.type, "f": self.f,
                             "key": self.key, "value": self.value, "time": self.time})

    def save_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w") as fh:
            for e in self.events():
                fh.write(json.dumps(e, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def from_events(cls, events: Iterable[dict]) -> History:
        """Build a history from event dicts (validated: fields, types, pairing)."""
        h = cls()
        open_by_proc: dict = {}
        for n, e in enumerate(events, 1):
            missing = set(FIELDS) - set(e)
            if missing:
                raise ValueError(f"event {n}: missing field(s) {sorted(missing)}; each event needs {FIELDS}")
            t = e["type"]
            if t not in TYPES:
                raise ValueError(f"event {n}: type must be one of {TYPES}, got {t!r}")
            value = e["value"]
            if isinstance(value, list):
                value = tuple(value)
            proc = e["process"]
            if t == "invoke":
                if proc in open_by_proc:
                    raise ValueError(f"event {n}: process {proc!r} invokes while its previous op is open")
                open_by_proc[proc] = h.invoke(proc, e["f"], e["key"], value, e["time"])
            else:
                op = open_by_proc.pop(proc, None)
                if op is None:
                    raise ValueError(f"event {n}: {t} for process {proc!r} with no open invocation")
                if e["f"] != h.f[op] or e["key"] != h.key[op]:
                    raise ValueError(f"event {n}: completion's f/key do not match its invocation")
                h.complete(op, t, e["time"], value)
        return h

    @classmethod
    def load_jsonl(cls, path: str | Path) -> History:
        with Path(path).open() as fh:
            return cls.from_events(json.loads(line) for line in fh if line.strip())


_LAZY = {"check_linearizable": "linearizable", "check_linearizable_file": "linearizable",
         "LinearizabilityResult": "linearizable", "session_guarantees": "session", "staleness": "staleness",
         "t_visibility": "staleness", "lost_writes": "staleness", "convergence_time": "staleness",
         "siblings": "staleness", "pair_ops": "ops"}


def __getattr__(name: str):
    """Checkers load on first use (pandas/numpy stay off the recording path)."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'simulator.history' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
