"""Load a history file: the project's JSON Lines, or EDN as Jepsen, Knossos and Porcupine write it.

EDN (extensible data notation, Clojure's literals) histories hold one map per line, e.g.
``{:process 0, :type :invoke, :f :write, :value 3, :time 61000}`` (Jepsen's ``history.edn``;
Knossos' and Porcupine's test data, sometimes wrapped in one ``[...]`` vector). Parsed with the
``edn_format`` package. Keywords become their names (``:ok`` -> ``"ok"``), vectors lists, ``nil``
None. Events of the nemesis (a keyword process, ``:nemesis``) are skipped: they are faults, not
operations. Jepsen's ``:time`` is in nanoseconds and is converted to seconds; a history without
``:time`` (Porcupine's kv data) is ordered by line, one second apart. Unknown fields (``:index``,
``:error``, ...) are ignored.

Every refusal is one line naming the file and the line: ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import TYPES, History

_CHUNK = 2000  # EDN lines parsed per call: edn_format's per-call setup costs ~0.4 ms


def load_history(path: str | Path) -> tuple[History, list[int]]:
    """(history, line number of each event). Raises ``ValueError`` ("FILE:LINE: ...") on bad input."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not a history file")
    if not p.exists():
        raise ValueError(f"{p}: no such history file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not a text file ({e.reason} at byte {e.start})") from None
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first:
        raise ValueError(f"{p}: empty history (no events)")
    edn = first.startswith("[") or (first.startswith("{") and first[1:].lstrip().startswith(":")) \
        or (p.suffix == ".edn" and not first.startswith('{"'))
    records = _edn_records(p, lines) if edn else _json_records(p, lines)
    return _build(p, records, time_scale=1e-9 if edn else 1.0)


def _json_records(p: Path, lines: list[str]) -> list[tuple[int, Any]]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{n}: not valid JSON ({e.msg} at column {e.colno}; a truncated line?)") from None
    return out


def _edn_records(p: Path, lines: list[str]) -> list[tuple[int, Any]]:
    import edn_format

    body = [(n, ln) for n, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith(";")]
    if body and body[0][1].lstrip().startswith("["):  # Knossos: the whole history in one vector
        n, ln = body[0]
        body[0] = (n, ln.lstrip()[1:])
        n, ln = body[-1]
        if not ln.rstrip().endswith("]"):
            raise ValueError(f"{p}:{n}: the history opens a vector '[' that is never closed (a truncated file?)")
        body[-1] = (n, ln.rstrip()[:-1])
        body = [(n, ln) for n, ln in body if ln.strip()]
    out: list[tuple[int, Any]] = []
    for c in range(0, len(body), _CHUNK):
        chunk = body[c:c + _CHUNK]
        try:
            forms = edn_format.loads_all("\n".join(ln for _, ln in chunk))
        except Exception:  # noqa: BLE001 - any parser error: find the line below
            forms = None
        if forms is not None and len(forms) == len(chunk):
            out.extend((n, f) for (n, _), f in zip(chunk, forms))
            continue
        for n, ln in chunk:  # one event per line: locate the bad one
            try:
                forms = edn_format.loads_all(ln)
            except Exception as e:  # noqa: BLE001
                raise ValueError(f"{p}:{n}: not valid EDN ({e}; a truncated line?)") from None
            if len(forms) != 1:
                raise ValueError(f"{p}:{n}: expected one event map per line, found {len(forms)} forms")
            out.append((n, forms[0]))
    return out


def _plain(v: Any) -> Any:
    """EDN values as plain Python: keywords -> names, vectors/lists -> lists, maps -> dicts."""
    import edn_format

    if isinstance(v, edn_format.Keyword):
        return v.name
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (frozenset, set)):
        return frozenset(_plain(x) for x in v)
    if isinstance(v, Mapping):
        return {_plain(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)) or hasattr(v, "__iter__"):
        return [_plain(x) for x in v]
    return v


def _is_nemesis(process: Any, raw: Any) -> bool:
    try:
        import edn_format

        if isinstance(raw, edn_format.Keyword):
            return True
    except ImportError:  # pragma: no cover
        pass
    return process == "nemesis"


def _build(p: Path, records: list[tuple[int, Any]], time_scale: float) -> tuple[History, list[int]]:
    h = History()
    where: list[int] = []
    open_by_proc: dict[Any, int] = {}
    timed: bool | None = None
    for n, raw in records:
        if not isinstance(raw, Mapping):
            kind = "null" if raw is None else type(raw).__name__
            raise ValueError(f"{p}:{n}: expected an event object {{process, type, f, ...}}, got {kind}")
        raw_proc = next((v for k, v in raw.items() if _plain(k) == "process"), None)
        e = {_plain(k): _plain(v) for k, v in raw.items()}
        for name in ("process", "type", "f"):
            if e.get(name) is None:
                raise ValueError(f"{p}:{n}: missing {name!r}; each event needs process, type, f, value and time")
        if _is_nemesis(e["process"], raw_proc):
            continue  # a fault injected by the nemesis, not a client's operation
        t = e["type"]
        if t not in TYPES:
            raise ValueError(f"{p}:{n}: type must be one of {', '.join(TYPES)}, got {t!r}")
        if timed is None:
            timed = "time" in e
        if timed:
            if "time" not in e:
                raise ValueError(f"{p}:{n}: missing 'time' (earlier events have one)")
            tm = e["time"]
            if isinstance(tm, bool) or not isinstance(tm, (int, float)) or not math.isfinite(tm):
                got = "null" if tm is None else repr(tm)
                raise ValueError(f"{p}:{n}: time must be a finite number, got {got}")
            tm = tm * time_scale
        else:
            if "time" in e:
                raise ValueError(f"{p}:{n}: has a 'time' but earlier events have none")
            tm = float(len(where))
        value = e.get("value")
        if isinstance(value, list):
            value = tuple(value)
        proc, f, key = e["process"], e["f"], e.get("key")
        if isinstance(proc, (list, dict)):
            raise ValueError(f"{p}:{n}: process must be a number or a name, got {proc!r}")
        if t == "invoke":
            if proc in open_by_proc:
                raise ValueError(f"{p}:{n}: process {proc!r} invokes while its previous operation (line "
                                 f"{where[open_by_proc[proc]]}) is still open; a process must be sequential")
            open_by_proc[proc] = h.invoke(proc, f, key, value, tm)
        else:
            op = open_by_proc.pop(proc, None)
            if op is None:
                raise ValueError(f"{p}:{n}: {t} for process {proc!r} with no open invocation "
                                 "(a completion before its invocation?)")
            if f != h.f[op] or key != h.key[op]:
                raise ValueError(f"{p}:{n}: completion's f/key ({f!r}, {key!r}) do not match its invocation's "
                                 f"(line {where[op]}: {h.f[op]!r}, {h.key[op]!r})")
            if tm < h.time[op]:
                raise ValueError(f"{p}:{n}: completes at time {tm} before its invocation (line {where[op]}, "
                                 f"time {h.time[op]})")
            h.complete(op, t, tm, value)
        where.append(n)
    if not len(h):
        raise ValueError(f"{p}: no client operations (only nemesis events)")
    return h, where
