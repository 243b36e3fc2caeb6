"""Pair a history's events into operations: one record per invocation with its completion.

A history (``History``, a list of event dicts, or a JSON Lines path) holds one event per
invocation and per completion. The checkers want operations: what was asked (``value``), what
came back (``result``), the interval ``[invoke_time, complete_time]`` and how it ended. Pairing
follows Jepsen's convention that a *process* is single-threaded: its completion event closes
its one open invocation. An invocation never completed (the run stopped first) is treated as
``info``: indeterminate, exactly like a timeout (Kingsbury, Jepsen; Maelstrom's ``info``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import History

INF = math.inf


class HistoryError(ValueError):
    """A history the checkers refuse; ``event`` is the offending event's index (None: the whole
    history), so a file loader can name the line it came from."""

    def __init__(self, message: str, event: int | None = None) -> None:
        super().__init__(message if event is None else f"event {event}: {message}")
        self.detail, self.event = message, event


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: ``type`` is ``ok`` | ``fail`` | ``info`` (never completed counts as info).

    ``complete_time`` is the completion event's time, or ``None`` if the run stopped first.
    ``result`` is the completion's value (the value read, for an ``ok`` read).
    """

    index: int  # position of the invocation event in the history
    process: Any
    f: str
    key: Any
    value: Any
    result: Any
    type: str
    invoke_time: float
    complete_time: float | None

    @property
    def end(self) -> float:
        """Latest instant the operation can take effect: completion if ``ok``, else +inf."""
        return self.complete_time if self.type == "ok" else INF

    def describe(self) -> str:
        """One line a student can read: ``p3 write 7  [1.200000, 1.204000] ok``."""
        def show(v: Any) -> str:
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(repr(x) for x in v) + "]"
            return repr(v)

        if self.value is None:  # a read-like op: what came back, if anything did
            shown = show(self.result) if self.type == "ok" else "?"
        elif self.type == "ok" and self.result is not None and self.result != self.value:
            shown = f"{show(self.value)} -> {show(self.result)}"
        else:
            shown = show(self.value)
        end = "..." if self.complete_time is None else f"{self.complete_time:.6f}"
        return f"p{self.process} {self.f} {shown}  [{self.invoke_time:.6f}, {end}] {self.type}"


def freeze(v: Any) -> Any:
    """A hashable, comparable stand-in for a JSON value (lists -> tuples, dicts -> sorted tuples)."""
    if isinstance(v, (list, tuple)):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    return v


def as_history(history: History | Iterable[dict] | str | Path) -> History:
    """Accept a ``History``, an iterable of event dicts, or a JSON Lines path."""
    if isinstance(history, History):
        return history
    if isinstance(history, (str, Path)):
        return History.load_jsonl(history)
    return History.from_events(history)


def completions(history: History | Iterable[dict] | str | Path) -> dict[int, int]:
    """The position of each invocation event's completion event (invocations never completed are
    absent). Raises ``HistoryError`` if a process has two open invocations (Jepsen processes are
    sequential; give concurrent clients distinct process ids) or completes with none open."""
    h = as_history(history)
    open_by_proc: dict[Any, int] = {}
    done: dict[int, int] = {}
    for i, t in enumerate(h.type):
        p = h.process[i]
        if t == "invoke":
            if p in open_by_proc:
                raise HistoryError(f"process {p!r} invokes while its previous operation is open; a process "
                                   "must be sequential (use one process id per concurrent client)", i)
            open_by_proc[p] = i
        else:
            j = open_by_proc.pop(p, None)
            if j is None:
                raise HistoryError(f"{t} for process {p!r} with no open invocation (a completion before its "
                                   "invocation?)", i)
            done[j] = i
    return done


def pair_ops(history: History | Iterable[dict] | str | Path) -> list[Op]:
    """Operations in invocation order (pairing and its errors: :func:`completions`)."""
    h = as_history(history)
    done = completions(h)
    ops = []
    for i, t in enumerate(h.type):
        if t != "invoke":
            continue
        j = done.get(i)
        typ, ct, res = ("info", None, None) if j is None else (h.type[j], h.time[j], h.value[j])
        ops.append(Op(i, h.process[i], h.f[i], h.key[i], h.value[i], res, typ, h.time[i], ct))
    return ops
