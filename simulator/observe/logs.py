"""Structured logs: services' JSON log lines, correlated with the traces by trace and span id.

Lines go through Python's :mod:`logging` (logger ``splitbrain.svc.<service>``) and a
:class:`JsonFormatter` writes one JSON object per line::

    {"time": 12.5031, "service": "orders", "node": "orders-0", "level": "WARNING",
     "trace_id": "9f0c…(32 hex)", "span_id": "41ab…(16 hex)", "message": "call to inventory-0 get failed: error",
     "fields": {"elapsed_ms": 301.2, "attempt": 1}}

``time`` is simulated seconds; the ids are the OTLP ids of :func:`simulator.observe.spans.otel_ids`
(the same a trace export carries), so a log line finds its span in Jaeger/Tempo and back —
what W3C trace-context propagation buys in production.

Two ways in: :func:`log` from live model code (it reads the span active on the simulation, as
OpenTelemetry's log bridge reads the current context), and :func:`emit_span_logs`, which replays
a run's recorded spans as the lines its services would have logged (a server's "handled", a
caller's "call failed", a pipeline's decisions). Cheap when off: the ``splitbrain.svc`` logger
does not propagate to the root logger, and with no JSON handler attached (:func:`attach_json_log`)
both return after one attribute test — no record is made, nothing is formatted.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spans import otel_ids

if TYPE_CHECKING:
    import pandas as pd

    from simulator import Simulation

BASE = "splitbrain.svc"
_BASE = logging.getLogger(BASE)
_BASE.propagate = False  # a run's service logs go to its own file, not to whatever the root logger prints
_ATTACHED: list[logging.Handler] = []  # ours, not logging's handler list: test tools may add their own there
LINE_FIELDS = ("time", "service", "node", "level", "trace_id", "span_id", "message", "fields")


def service_of(node: str) -> str:
    """``orders-0`` -> ``orders`` (a Service's instance naming); other names unchanged."""
    head, _, tail = node.rpartition("-")
    return head if head and tail.isdigit() else node


def trace_hex(seed: int | str, trace: int) -> str:
    """The 32-hex-digit trace id of trace row ``trace`` under ``seed`` (as exported to OTLP)."""
    return otel_ids(seed, int(trace), trace=True).hex()


def span_hex(seed: int | str, span: int) -> str:
    """The 16-hex-digit span id of span row ``span`` under ``seed``."""
    return otel_ids(seed, int(span), trace=False).hex()


class JsonFormatter(logging.Formatter):
    """One JSON object per record with :data:`LINE_FIELDS`; the context comes from the record's
    ``extra`` (``sim_time``, ``node``, ``trace_id``, ``span_id``, ``fields``)."""

    def format(self, record: logging.LogRecord) -> str:
        node = getattr(record, "node", "")
        t = getattr(record, "sim_time", None)
        return json.dumps({
            "time": None if t is None else round(float(t), 9),
            "service": service_of(node) if node else record.name.removeprefix(BASE + "."),
            "node": node, "level": record.levelname,
            "trace_id": getattr(record, "trace_id", None), "span_id": getattr(record, "span_id", None),
            "message": record.getMessage(), "fields": getattr(record, "fields", {}),
        }, default=str)


def enabled(level: int = logging.INFO) -> bool:
    """True iff some handler would receive a record of ``level`` (the cheap test every emitter makes)."""
    return bool(_ATTACHED) and _BASE.isEnabledFor(level)


def attach_json_log(path: str | Path, level: int = logging.INFO) -> logging.Handler:
    """Write the services' log lines as JSON to ``path`` (e.g. ``RUN/logs.jsonl``); returns the
    handler — pass it to :func:`detach` (closes the file) when the run is over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h = logging.FileHandler(path, mode="w", encoding="utf-8")
    h.setFormatter(JsonFormatter())
    h.setLevel(level)
    _BASE.addHandler(h)
    _ATTACHED.append(h)
    if _BASE.level == logging.NOTSET or _BASE.level > level:
        _BASE.setLevel(level)
    return h


def detach(handler: logging.Handler) -> None:
    _BASE.removeHandler(handler)
    handler.close()
    if handler in _ATTACHED:
        _ATTACHED.remove(handler)
    if not _ATTACHED:
        _BASE.setLevel(logging.NOTSET)


def _emit(node: str, level: int, msg: str, now: float, trace_id: str | None, span_id: str | None,
          fields: dict[str, Any]) -> None:
    logging.getLogger(f"{BASE}.{service_of(node)}").log(
        level, msg, extra={"sim_time": now, "node": node, "trace_id": trace_id, "span_id": span_id, "fields": fields})


def log(sim: Simulation, node: str, level: int, msg: str, **fields: Any) -> None:
    """A log line from live model code on ``node`` at the simulation's time, in the active span's
    context (no ids if spans are off or no span is active)."""
    if not _ATTACHED or not _BASE.isEnabledFor(level):
        return
    sp = getattr(sim, "spans", None)
    s = sp.current if sp is not None else -1
    tid = trace_hex(sp.seed, sp.trace[s]) if s >= 0 else None
    sid = span_hex(sp.seed, s) if s >= 0 else None
    _emit(node, level, msg, sim.now, tid, sid, fields)


def _ms(x: float) -> float:
    return round(x * 1e3, 3)


def span_log_records(spans: pd.DataFrame, seed: int) -> list[tuple[float, str, int, str, int, int, dict]]:
    """The lines a run's services would have logged, as ``(time, node, level, message, trace row,
    span row, fields)`` sorted by time: a server's "handled OP" when it replied, a caller's
    "call to PEER OP failed: OUTCOME" when a call ended badly, a logical call's decisions (span
    events) and its failure. A failure line carries the faults stamped on its span (``faults``)."""
    rows: list[tuple[float, str, int, str, int, int, dict]] = []
    faults = spans["faults"] if "faults" in spans else [""] * len(spans)
    cols = ("span_id", "trace_id", "kind", "node", "peer", "op", "start", "end", "arrive", "served", "replied",
            "outcome", "attempt")
    for (s, t, kind, node, peer, op, start, end, arrive, served, replied, outcome, attempt), why in zip(
            zip(*(spans[c] for c in cols)), faults):
        s, t = int(s), int(t)
        why = {"faults": why} if why else {}
        if kind == "client":
            if not math.isnan(replied):
                q = served - arrive if not math.isnan(served) else math.nan
                # the caller's outcome is the server's answer unless the caller gave up first
                answered = "late (caller timed out)" if outcome == "timeout" else outcome
                rows.append((replied, peer, logging.WARNING if outcome == "error" else logging.INFO, f"handled {op}",
                             t, s, {"outcome": answered, "queue_ms": _ms(q), "service_ms": _ms(replied - served)}))
            if outcome not in ("ok", "fallback", "in_flight") and not math.isnan(end):
                rows.append((end, node, logging.WARNING, f"call to {peer} {op} failed: {outcome}", t, s,
                             {"elapsed_ms": _ms(end - start), "attempt": int(attempt), **why}))
        elif outcome not in ("ok", "fallback", "in_flight") and not math.isnan(end):
            rows.append((end, node, logging.ERROR, f"{op} failed: {outcome}", t, s,
                         {"elapsed_ms": _ms(end - start), **why}))
    if "events" in spans:
        node_of = dict(zip(spans["span_id"], spans["node"]))
        trace_of = dict(zip(spans["span_id"], spans["trace_id"]))
        for s, evs in zip(spans["span_id"], spans["events"]):
            for ev in filter(None, str(evs).split(";")):
                time, _, rest = ev.partition(" ")
                name, _, detail = rest.partition(" ")
                rows.append((float(time), node_of[s], logging.INFO, name.replace("_", " "), int(trace_of[s]), int(s),
                             {"detail": detail} if detail else {}))
    rows.sort(key=lambda r: (r[0], r[5]))
    return rows


def emit_span_logs(spans: pd.DataFrame, seed: int) -> int:
    """Log :func:`span_log_records` through ``logging`` (ids as OTLP hex under ``seed``); the
    number of lines emitted — 0, and no work, when no handler is attached."""
    if not enabled(logging.DEBUG) and not enabled(logging.INFO):
        return 0
    n = 0
    for time, node, level, msg, t, s, fields in span_log_records(spans, seed):
        if _BASE.isEnabledFor(level):
            _emit(node, level, msg, time, trace_hex(seed, t), span_hex(seed, s), fields)
            n += 1
    return n


def span_log_lines(spans: pd.DataFrame, seed: int | str, extra: dict[str, Any] | None = None) -> list[str]:
    """:func:`span_log_records` as JSON lines (:data:`LINE_FIELDS`, what :class:`JsonFormatter`
    writes), without going through ``logging``: every level, in time order. ``extra`` joins each
    line's ``fields`` (e.g. the arm of a run folder holding several simulations)."""
    out = []
    for time, node, level, msg, t, s, fields in span_log_records(spans, seed):
        out.append(json.dumps({
            "time": round(float(time), 9), "service": service_of(node), "node": node,
            "level": logging.getLevelName(level), "trace_id": trace_hex(seed, t), "span_id": span_hex(seed, s),
            "message": msg, "fields": {**fields, **(extra or {})}}, default=str))
    return out


def read_json_log(path: str | Path) -> pd.DataFrame:
    """A JSON log file back as a DataFrame (one row per line, :data:`LINE_FIELDS` as columns)."""
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        return pd.DataFrame([json.loads(line) for line in f if line.strip()], columns=list(LINE_FIELDS))
