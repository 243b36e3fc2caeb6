"""Transactional histories: events in, one ``Txn`` per transaction out.

An event is a dict in Jepsen's (and Elle's) shape, as JSON: ``{"type": "invoke"|"ok"|"fail"|"info",
"process": p, "f": "txn", "value": [[f, k, v], ...], "time": t}``. A micro-op is ``["append", k, v]`` or
``["r", k, [v...]]`` (list-append) or ``["w", k, v]`` / ``["r", k, v]`` (rw-register); Clojure's keyword
spelling ``":append"`` / ``":r"`` is accepted too. ``f``, ``time`` and ``key`` are optional (Elle needs only
``type`` and ``value``). Events must be in real-time order: the position in the history, not the ``time``
field, orders invocations and completions (Jepsen's convention; EDN events carrying ``:index`` are put in
its order first). A process is sequential: its completion closes its one open invocation; an invocation
never completed counts as ``info``.

``process`` may be left out, as in Elle's own ``histories/paper-example.edn``: such a completion closes
the one open process-less invocation with the same micro-ops (reads aside); when two or more match, the
history is refused, since only ``process`` could tell which one it completes. Transactions without a
process get no process-order edges (real-time order from the positions still applies).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKLOAD_OPS = {"list-append": ("append", "r"), "rw-register": ("w", "r")}


class TxnInputError(ValueError):
    """A history that cannot be checked (bad JSON, bad shape, duplicate writes...). Names the line."""


@dataclass(slots=True)
class Txn:
    """One transaction. ``ops`` are ``(f, k, v)`` with the values of its completion (reads filled in)
    when ``ok``, else those it was invoked with (reads ``None``: unknown)."""

    id: int  # position among transactions, invocation order: the T-number in reports
    process: Any
    type: str  # ok | fail | info
    ops: list
    invoke_pos: int  # event position (0-based) of its invocation
    complete_pos: int | None
    invoke_time: Any = None
    complete_time: Any = None
    line: int | None = None  # the invocation's line in its file, when read from one


    def describe(self) -> str:
        shown = ", ".join(f"{f} {k!r} {_show(v)}" for f, k, v in self.ops)
        where = f"event {self.invoke_pos}" + ("" if self.complete_pos is None else f"-{self.complete_pos}")
        who = "" if self.process is None else f"p{self.process} "
        return f"T{self.id} = {who}{self.type} [{shown}] ({where})"


def _show(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, tuple):
        return "[" + " ".join(repr(x) for x in v) + "]"
    return repr(v)


def _freeze(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), _freeze(x)) for k, x in v.items()))
    return v


def _name(x: Any) -> str:
    """``":append"``, ``"append"`` or an EDN keyword -> ``"append"``."""
    s = getattr(x, "name", None) if not isinstance(x, str) else x
    s = str(x) if s is None else s
    return s[1:] if s.startswith(":") else s


def _mops(value: Any, allowed: tuple[str, ...], where: str, read_values: bool) -> list:
    if not isinstance(value, (list, tuple)):
        raise TxnInputError(f"{where}: a transaction's value must be a list of micro-ops, got {value!r}")
    out = []
    for m in value:
        if not isinstance(m, (list, tuple)) or len(m) != 3:
            raise TxnInputError(f"{where}: micro-op must be [f, key, value], got {m!r}")
        f = _name(m[0])
        if f == "read":
            f = "r"
        if f not in allowed:
            raise TxnInputError(f"{where}: micro-op {f!r} is not part of this workload (allowed: {', '.join(allowed)})")
        k, v = _freeze(m[1]), _freeze(m[2])
        if f == "r" and not read_values:
            v = None
        out.append((f, k, v))
    return out


def parse_events(events: Iterable[dict], workload: str, source: str | None = None,
                 lines: list[int] | None = None) -> list[Txn]:
    """Pair events into transactions. Errors read ``FILE:LINE: ...`` when ``source`` names a file and
    ``lines[i]`` is event i's line number, else ``event i: ...`` (events from memory)."""
    if workload not in WORKLOAD_OPS:
        raise TxnInputError(f"workload must be one of {sorted(WORKLOAD_OPS)}, got {workload!r}")
    allowed = WORKLOAD_OPS[workload]
    txns: list[Txn] = []
    open_by_proc: dict[Any, Txn] = {}
    anonymous: list[Txn] = []  # open invocations without a process, in invocation order
    pos = -1
    for pos, e in enumerate(events):
        where = f"{source}:{lines[pos]}" if source and lines else f"event {pos}"
        if not isinstance(e, dict):
            raise TxnInputError(f"{where}: an event must be an object, got {type(e).__name__}")
        if e.get("type") is None:
            raise TxnInputError(f"{where}: missing :type, which says whether the event invokes a transaction "
                                "(invoke) or completes one (ok, fail, info)")
        t = _name(e.get("type"))
        if t not in ("invoke", "ok", "fail", "info"):
            raise TxnInputError(f"{where}: type must be invoke, ok, fail or info, got {e.get('type')!r}")
        raw_p = e.get("process")
        if raw_p is not None and _name(raw_p) == "nemesis":
            continue
        p = _freeze(raw_p)
        f = e.get("f", "txn")
        if f is not None and _name(f) != "txn":
            raise TxnInputError(f"{where}: f must be 'txn' for a transactional history, got {f!r}")
        time = e.get("time")
        if time is not None and not isinstance(time, (int, float)):
            raise TxnInputError(f"{where}: time must be a number, got {time!r}")
        if "value" not in e:
            raise TxnInputError(f"{where}: missing :value, the transaction's micro-ops, from which every "
                                "dependency is inferred")
        if t == "invoke":
            if p is not None and p in open_by_proc:
                raise TxnInputError(f"{where}: process {p!r} invokes while its previous transaction is open")
            ops = _mops(e.get("value"), allowed, where, read_values=False)
            txn = Txn(len(txns), p, "info", ops, pos, None, time, None, lines[pos] if lines else None)
            txns.append(txn)
            if p is None:
                anonymous.append(txn)
            else:
                open_by_proc[p] = txn
            continue
        if p is None:
            txn = _anonymous_match(anonymous, _mops(e.get("value"), allowed, where, read_values=False), t, where)
        else:
            txn = open_by_proc.pop(p, None)
            if txn is None:
                raise TxnInputError(f"{where}: {t} for process {p!r} with no open invocation")
        txn.type, txn.complete_pos, txn.complete_time = t, pos, time
        if t == "ok":
            done = _mops(e.get("value"), allowed, where, read_values=True)
            if [(f, k) for f, k, _ in done] != [(f, k) for f, k, _ in txn.ops]:
                raise TxnInputError(f"{where}: completion's micro-ops do not match its invocation's")
            txn.ops = done
    if pos < 0:
        raise TxnInputError(f"{source or 'history'}: empty history (no events)")
    return txns


def _anonymous_match(open_txns: list[Txn], ops: list, t: str, where: str) -> Txn:
    """The one open process-less invocation this completion (micro-ops ``ops``, reads blanked) closes."""
    match = [x for x in open_txns if x.ops == ops]
    if len(match) == 1:
        open_txns.remove(match[0])
        return match[0]
    if not match:
        raise TxnInputError(f"{where}: {t} without :process matches no open invocation (:process pairs a "
                            "completion with its invocation; without it the micro-ops must match one)")
    at = ", ".join(f"line {x.line}" if x.line else f"event {x.invoke_pos}" for x in match)
    raise TxnInputError(f"{where}: missing :process, needed to pair this completion with its invocation: "
                        f"{len(match)} open invocations have the same micro-ops ({at})")


def _jsonl_lines(path: Path) -> tuple[list, list[int]]:
    events, lines = [], []
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TxnInputError(f"{path}:{n}: not valid JSON ({err.msg} at column {err.colno})") from None
            except RecursionError:  # json recurses once per nesting level
                raise TxnInputError(f"{path}:{n}: JSON nested too deeply to read") from None
            lines.append(n)
    return events, lines


def read_events(path: str | Path) -> tuple[list, list[int]]:
    """Events and their line numbers from a JSON Lines file (one object a line) or an EDN history
    (Jepsen's ``history.edn``: ``.edn`` or lines starting ``{:``), read by ``simulator.history.edn``."""
    path = Path(path)
    if path.is_dir():
        raise TxnInputError(f"{path}: is a directory, not a history file")
    if not path.exists():
        raise TxnInputError(f"{path}: no such file")
    try:
        with path.open() as fh:
            first = next((ln.strip() for ln in fh if ln.strip()), "")
        return _read_events(path, first)
    except UnicodeDecodeError as err:
        raise TxnInputError(f"{path}: not a text file ({err.reason} at byte {err.start})") from None
    except RecursionError:  # the EDN reader recurses once per nesting level
        raise TxnInputError(f"{path}: nested too deeply to read (a history is one flat event a line)") from None


def _read_events(path: Path, first: str) -> tuple[list, list[int]]:
    if path.suffix == ".edn" or first.startswith(("{:", ";")) or (first.startswith(("[", "(")) and
                                                             path.suffix != ".jsonl"):
        from simulator.history.edn import read_events as read_edn

        try:
            events, lines, _ = read_edn(path)
        except ValueError as err:
            raise TxnInputError(str(err)) from None
        return events, lines
    return _jsonl_lines(path)
