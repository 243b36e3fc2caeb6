"""Load a history file: the project's JSON Lines, or EDN as Jepsen, Knossos and Porcupine write it.

EDN (extensible data notation, Clojure's literals) histories hold one map per line, e.g.
``{:process 0, :type :invoke, :f :write, :value 3, :time 61000}`` (Jepsen's ``history.edn``;
Knossos' and Porcupine's test data, sometimes wrapped in one ``[...]`` vector). Parsed with the
``edn_format`` package. Keywords become their names (``:ok`` -> ``"ok"``), vectors lists, ``nil``
None. Events of the nemesis (a keyword process, ``:nemesis``) are skipped: they are faults, not
operations. Jepsen's ``:time`` is in nanoseconds and is converted to seconds; a history without
``:time`` (Porcupine's kv data, Elle's paper example) is ordered by position, one second apart. When
every event has an ``:index`` (Jepsen's history order) the events are put in its order first. A map may
span lines, and Knossos wraps its histories in one vector or list, with ``;`` comments. For the
linearizability checkers ``:process``, ``:type`` and ``:f`` are needed (each refusal says why);
``jepsen.independent`` ``[k v]`` values become key ``k``, value ``v``; an ok read of nil is an
unknown value, as in Knossos' models. Unknown fields (``:error``, ...) are ignored.

Every refusal is one line naming the file and the line: ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import TYPES, History

_CHUNK = 2000  # EDN lines parsed per call: edn_format's per-call setup costs ~0.4 ms


def read_events(path: str | Path) -> tuple[list[dict], list[int], bool]:
    """(events as plain dicts, line number of each, whether the file was EDN). Nemesis events are
    skipped; ``time`` is in seconds; events carrying an ``index`` each are put in its order. Raises
    ``ValueError`` ("FILE:LINE: ...") on bad input. Shared by the linearizability and the transaction
    checkers, which then ask for the fields each needs."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not a history file")
    if not p.exists():
        raise ValueError(f"{p}: no such history file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not a text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ValueError(f"{p}: cannot read ({e.strerror or e})") from None
    if "\x00" in text:
        raise ValueError(f"{p}: not a text file (NUL bytes)")
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith(";")), "")
    if not first:
        raise ValueError(f"{p}: empty history (no events)")
    edn = first[0] in "[(;" or (first.startswith("{") and first[1:].lstrip().startswith(":")) \
        or (p.suffix == ".edn" and not first.startswith('{"'))
    records = _edn_records(p, text) if edn else _json_records(p, lines)
    events, where = [], []
    for n, raw in records:
        if not isinstance(raw, Mapping):
            kind = "null" if raw is None else type(raw).__name__
            raise ValueError(f"{p}:{n}: expected an event object {{type, value, ...}}, got {kind}")
        raw_proc = next((v for k, v in raw.items() if _plain(k) == "process"), None)
        e = {str(_plain(k)): _plain(v) for k, v in raw.items()}
        if _is_nemesis(e.get("process"), raw_proc):
            continue  # a fault injected by the nemesis, not a client's operation
        if "time" in e and edn:
            tm = e["time"]
            if isinstance(tm, bool) or not isinstance(tm, (int, float)) or not math.isfinite(tm):
                got = "null" if tm is None else repr(tm)
                raise ValueError(f"{p}:{n}: time must be a finite number, got {got}")
            e["time"] = tm * 1e-9  # Jepsen's :time is nanoseconds since the test began
        events.append(e)
        where.append(n)
    if not events:
        raise ValueError(f"{p}: no client operations (only nemesis events)")
    return (*_by_index(p, events, where), edn)


def _by_index(p: Path, events: list[dict], where: list[int]) -> tuple[list[dict], list[int]]:
    """Jepsen numbers events with ``:index`` in history order; when every event has one, it decides the
    order (a file written out of order is put back), and a repeated index is refused."""
    idx = [e.get("index") for e in events]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
        return events, where
    seen: dict[int, int] = {}
    for i, n in zip(idx, where):
        if i in seen:
            raise ValueError(f"{p}:{n}: index {i} repeats line {seen[i]}'s; each event needs its own")
        seen[i] = n
    order = sorted(range(len(events)), key=idx.__getitem__)
    return [events[j] for j in order], [where[j] for j in order]


def load_history(path: str | Path) -> tuple[History, list[int]]:
    """(history, line number of each event) for the linearizability checkers. Raises ``ValueError``
    ("FILE:LINE: ...") on bad input, naming a missing field and why it is needed."""
    p = Path(path)
    events, where, edn = read_events(p)
    return _build(p, events, where, nil_read_unknown=edn)


def _json_records(p: Path, lines: list[str]) -> list[tuple[int, Any]]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{n}: not valid JSON ({e.msg} at column {e.colno}; a truncated line?)") from None
        except RecursionError:
            raise ValueError(f"{p}:{n}: nested too deeply to be an event") from None
    return out


# What the splitter must see to find where each form begins and ends: strings (which may hold brackets
# and newlines), comments, character literals (``\(``), brackets and newlines. Everything else is left
# to edn_format, which parses each form.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|;[^\n]*|\\.|[\[\](){}]|\n', re.S)
_OPEN, _CLOSE = "[({", "])}"


def _forms(p: Path, text: str) -> list[tuple[int, str]]:
    """Split EDN text into its event forms, each with the line it starts on. Jepsen writes one map a
    line; Knossos' data wraps them in one vector or list, sometimes one map over several lines."""
    m = re.match(r"(?:\s|,|;[^\n]*)*", text)
    wrapped = text[m.end():m.end() + 1] in ("[", "(")
    depth, line, start, start_line = 0, 1, 0, None
    base = 1 if wrapped else 0  # the depth at which event forms sit
    out: list[tuple[int, str]] = []
    closed = False
    for t in _TOKENS.finditer(text):
        tok = t.group()
        c = tok[0]
        if c == "\n":
            line += 1
        elif c == '"':
            if not _closed_string(tok):
                raise ValueError(f"{p}:{line}: not valid EDN (a string opens here and is never closed)")
            if depth == base and start_line is None:
                start, start_line = t.start(), line
            line += tok.count("\n")
        elif c in _OPEN and len(tok) == 1:
            if closed:
                raise ValueError(f"{p}:{line}: text after the history's closing bracket")
            if depth == base and start_line is None:
                start, start_line = t.start(), line
            depth += 1
        elif c in _CLOSE and len(tok) == 1:
            depth -= 1
            if depth < 0 or (wrapped and depth == 0 and start_line is not None):
                raise ValueError(f"{p}:{line}: not valid EDN (unbalanced {tok!r}: closes a bracket never opened)")
            if depth == base and start_line is not None:
                out.append((start_line, text[start:t.end()]))
                start_line = None
            elif wrapped and depth == 0:
                closed = True
    if depth > 0:
        if start_line is None:
            raise ValueError(f"{p}:{line}: the history opens a vector that is never closed (a truncated file?)")
        raise ValueError(f"{p}:{start_line}: not valid EDN (this event opens a bracket that is never closed; "
                         "a truncated line?)")
    return out


def _closed_string(tok: str) -> bool:
    """Whether a string token ends in its closing quote (not an escaped one, nor the end of the file)."""
    if len(tok) < 2 or not tok.endswith('"'):
        return False
    body = tok[1:-1]
    return (len(body) - len(body.rstrip("\\"))) % 2 == 0


def _edn_records(p: Path, text: str) -> list[tuple[int, Any]]:
    import edn_format

    forms = _forms(p, text)
    out: list[tuple[int, Any]] = []
    for c in range(0, len(forms), _CHUNK):
        chunk = forms[c:c + _CHUNK]
        try:
            parsed = edn_format.loads_all("\n".join(f for _, f in chunk))
        except Exception:  # noqa: BLE001 - any parser error: find the form below
            parsed = None
        if parsed is not None and len(parsed) == len(chunk):
            out.extend((n, f) for (n, _), f in zip(chunk, parsed))
            continue
        for n, form in chunk:  # locate the bad one
            try:
                parsed = edn_format.loads_all(form)
            except RecursionError:
                raise ValueError(f"{p}:{n}: nested too deeply to be an event") from None
            except Exception as e:  # noqa: BLE001
                raise ValueError(f"{p}:{n}: not valid EDN ({e}; a truncated line?)") from None
            if len(parsed) != 1:
                raise ValueError(f"{p}:{n}: expected one event map, found {len(parsed)} forms")
            out.append((n, parsed[0]))
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


def _independent(events: list[dict]) -> bool:
    """jepsen.independent histories: every value is a ``[k v]`` tuple, one register (or set...) per key.
    Told apart from a plain history by its reads, whose invocations hold ``[k nil]`` instead of nil."""
    pairs = all(isinstance(e.get("value"), list) and len(e["value"]) == 2 for e in events)
    return pairs and "key" not in events[0] and any(
        e.get("f") == "read" and e.get("type") == "invoke" and e["value"][1] is None for e in events)


_NEEDED = {"process": "it pairs each completion with its invocation, and which operations overlap decides "
                      "linearizability (Elle's transaction check does without it)",
           "type": "it says whether the event is an invocation (invoke) or a completion (ok, fail, info)",
           "f": "the model needs to know what the operation did (read, write, cas, ...)"}


def _build(p: Path, events: list[dict], where: list[int], nil_read_unknown: bool) -> tuple[History, list[int]]:
    """``nil_read_unknown``: an ``ok`` read of nil read an unknown value, so it is kept as ``info``
    (no constraint on the register). Knossos' models say so ("nil reads are always legal",
    ``knossos.model``), and Jepsen's register tests, checked by them, write such reads."""
    h = History()
    open_by_proc: dict[Any, int] = {}
    timed = "time" in events[0]
    split = _independent(events)
    for i, (n, e) in enumerate(zip(where, events)):
        for name, why in _NEEDED.items():
            if e.get(name) is None:
                raise ValueError(f"{p}:{n}: missing :{name}, which a linearizability check needs: {why}")
        t = e["type"]
        if t not in TYPES:
            raise ValueError(f"{p}:{n}: type must be one of {', '.join(TYPES)}, got {t!r}")
        if timed != ("time" in e):
            raise ValueError(f"{p}:{n}: " + ("missing 'time' (earlier events have one)" if timed
                                             else "has a 'time' but earlier events have none"))
        if timed:
            tm = e["time"]
            if isinstance(tm, bool) or not isinstance(tm, (int, float)) or not math.isfinite(tm):
                got = "null" if tm is None else repr(tm)
                raise ValueError(f"{p}:{n}: time must be a finite number, got {got}")
        else:
            tm = float(i)  # history (or :index) order, one second apart
        value, key = e.get("value"), e.get("key")
        if split:
            key, value = value
            key = tuple(key) if isinstance(key, list) else key
        if isinstance(value, list):
            value = tuple(value)
        proc, f = e["process"], e["f"]
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
            if nil_read_unknown and t == "ok" and f == "read" and value is None:
                t = "info"
            h.complete(op, t, tm, value)
    return h, where
