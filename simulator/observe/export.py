"""Span exports: OpenTelemetry OTLP JSON (Jaeger, Tempo) and Chrome trace-event JSON (Perfetto).

Both read a spans DataFrame (``Spans.frame()``, or a run folder's ``data/spans.parquet``), so a
live simulation and a saved run export the same way. OTLP is built with OpenTelemetry's own
protobuf definitions (``opentelemetry-proto``, the ``otel`` extra) and printed with
``google.protobuf.json_format`` — the OTLP/JSON encoding of the OTLP spec, with ids as hex
strings — never hand-written. Ids are derived from the run's seed (:func:`spans.otel_ids`),
so identical runs export identical files. Simulated time t seconds becomes ``epoch_ns + t*1e9``.

Chrome's trace-event format ("Trace Event Format", Google): ``ph: "X"`` complete events with
``ts``/``dur`` in microseconds; one process per node, one thread per trace on that node (a
trace's spans on one node nest), span events as instant events (``ph: "i"``).

The faults the kernel stamped on a span (``faults``, ``fault_at``: :mod:`.spans`) travel with it:
OTLP's ``splitbrain.faults`` attribute and one ``fault active`` span event per fault, Chrome's
``args.faults`` and an instant event — so a viewer shows why a request failed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .spans import FAULT_SEP, otel_ids

if TYPE_CHECKING:
    import pandas as pd


def _events_of(row_events: str) -> list[tuple[float, str, str]]:
    out = []
    for item in filter(None, (row_events or "").split(";")):
        t, _, rest = item.partition(" ")
        name, _, detail = rest.partition(" ")
        # names are multi-word ("retry scheduled"): the detail starts after the known name
        for known in ("retry scheduled", "retry budget denied", "deadline exceeded", "short circuited",
                      "rate limited", "bulkhead rejected", "breaker transition", "fallback"):
            if rest.startswith(known):
                name, detail = known, rest[len(known):].strip()
                break
        out.append((float(t), name, detail))
    return out


def _event_lists(spans: pd.DataFrame, events: pd.DataFrame | None) -> dict[int, list]:
    if events is not None:
        d: dict[int, list] = {}
        for s, t, n, det in zip(events["span_id"], events["time"], events["name"], events["detail"]):
            d.setdefault(int(s), []).append((float(t), n, det))
        return d
    if "events" in spans:
        return {int(s): _events_of(e) for s, e in zip(spans["span_id"], spans["events"]) if e}
    return {}


def service_of(node: str) -> str:
    """``A-0`` -> ``A``: instances of a service share its name (OTLP's ``service.name``)."""
    head, sep, tail = node.rpartition("-")
    return head if sep and tail.isdigit() else node


def faults_of(r) -> tuple[list[str], float]:
    """A span row's stamped fault labels and when the first was seen (rows saved before stamping: none)."""
    text = getattr(r, "faults", "") or ""
    at = getattr(r, "fault_at", math.nan)
    return (text.split(FAULT_SEP) if text else []), (r.start if at is None or math.isnan(at) else float(at))


def otlp_request(spans: pd.DataFrame, *, seed: int | str = 0, events: pd.DataFrame | None = None,
                 epoch_ns: int = 0, resource: dict[str, str] | None = None):
    """An ``ExportTraceServiceRequest`` protobuf of the spans (one ResourceSpans per service;
    ``resource``: extra resource attributes, e.g. the arm a run folder's spans came from)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1 import trace_pb2

    def kv(k: str, v) -> KeyValue:
        if isinstance(v, bool):
            return KeyValue(key=k, value=AnyValue(bool_value=v))
        if isinstance(v, int):
            return KeyValue(key=k, value=AnyValue(int_value=v))
        if isinstance(v, float):
            return KeyValue(key=k, value=AnyValue(double_value=v))
        return KeyValue(key=k, value=AnyValue(string_value=str(v)))

    def ns(t: float) -> int:
        return epoch_ns + int(round(t * 1e9))

    evs = _event_lists(spans, events)
    req = ExportTraceServiceRequest()
    by_service: dict[str, object] = {}
    span_kind = {"client": trace_pb2.Span.SPAN_KIND_CLIENT, "internal": trace_pb2.Span.SPAN_KIND_INTERNAL}
    for r in spans.itertuples(index=False):
        svc = service_of(r.node)
        scope = by_service.get(svc)
        if scope is None:
            rs = req.resource_spans.add()
            rs.resource.attributes.extend([kv("service.name", svc)]
                                          + [kv(k, v) for k, v in sorted((resource or {}).items())])
            scope = rs.scope_spans.add()
            scope.scope.name = "splitbrain"
            by_service[svc] = scope
        sp = scope.spans.add()
        sp.trace_id = otel_ids(seed, int(r.trace_id), trace=True)
        sp.span_id = otel_ids(seed, int(r.span_id), trace=False)
        if r.parent_id >= 0:
            sp.parent_span_id = otel_ids(seed, int(r.parent_id), trace=False)
        sp.name = f"{r.op} {service_of(r.peer)}" if r.kind == "client" else f"call {r.op} {service_of(r.peer)}"
        sp.kind = span_kind.get(r.kind, trace_pb2.Span.SPAN_KIND_INTERNAL)
        sp.start_time_unix_nano = ns(r.start)
        sp.end_time_unix_nano = ns(r.end if not math.isnan(r.end) else r.start)
        attrs = [kv("net.peer.name", r.peer), kv("splitbrain.node", r.node), kv("splitbrain.outcome", r.outcome),
                 kv("splitbrain.attempt", int(r.attempt)), kv("splitbrain.hedge", bool(r.hedge))]
        for col in ("arrive", "served", "replied"):
            v = getattr(r, col)
            if not math.isnan(v):
                attrs.append(kv(f"splitbrain.server.{col}_s", float(v)))
        if r.request >= 0:
            attrs.append(kv("splitbrain.request", int(r.request)))
        faults, fault_at = faults_of(r)
        if faults:
            attrs.append(kv("splitbrain.faults", FAULT_SEP.join(faults)))
        sp.attributes.extend(attrs)
        if r.outcome == "ok":
            sp.status.code = trace_pb2.Status.STATUS_CODE_OK
        elif r.outcome != "in_flight":
            sp.status.code = trace_pb2.Status.STATUS_CODE_ERROR
            sp.status.message = r.outcome
        for t, name, detail in evs.get(int(r.span_id), ()):
            e = sp.events.add()
            e.time_unix_nano = ns(t)
            e.name = name
            if detail:
                e.attributes.extend([kv("detail", detail)])
        for f in faults:
            e = sp.events.add()
            e.time_unix_nano = ns(fault_at)
            e.name = "fault active"
            e.attributes.extend([kv("splitbrain.fault", f)])
    return req


def write_otlp_json(spans: pd.DataFrame, path: str | Path, *, seed: int = 0, events: pd.DataFrame | None = None,
                    epoch_ns: int = 0) -> Path:
    """Write OTLP/JSON (an ExportTraceServiceRequest) to ``path``."""
    path = Path(path)
    path.write_text(otlp_json(otlp_request(spans, seed=seed, events=events, epoch_ns=epoch_ns)))
    return path


def otlp_json(req) -> str:
    """An ExportTraceServiceRequest as OTLP/JSON text (compact, ids in hex, enums as integers)."""
    from google.protobuf import json_format

    # OTLP/JSON: "values of enum fields MUST be encoded as integer values" (SpanKind, StatusCode)
    d = json_format.MessageToDict(req, use_integers_for_enums=True)
    # OTLP/JSON encodes trace and span ids as hex, not protobuf-JSON's base64 (OTLP spec, "JSON Protobuf
    # Encoding"); the structure itself is json_format's.
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = _b64_to_hex(s[k])
    return json.dumps(d, separators=(",", ":"))


def read_otlp_json(path: str | Path):
    """Parse an OTLP/JSON file back into an ExportTraceServiceRequest (hex ids accepted)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    d = json.loads(Path(path).read_text())
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = _hex_to_b64(s[k])
    return json_format.ParseDict(d, ExportTraceServiceRequest())


def _b64_to_hex(s: str) -> str:
    import base64

    return base64.b64decode(s).hex()


def _hex_to_b64(s: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(s)).decode()


def chrome_trace(spans: pd.DataFrame, *, events: pd.DataFrame | None = None, prefix: str = "",
                 first_pid: int = 1) -> dict:
    """Chrome trace-event JSON (``{"traceEvents": [...]}``) of the spans; loads in Perfetto.
    One process per node (pids from ``first_pid``, names led by ``prefix``: several simulations
    side by side)."""
    nodes = sorted(set(spans["node"]))
    pid = {n: i + first_pid for i, n in enumerate(nodes)}
    out: list[dict] = [{"name": "process_name", "ph": "M", "pid": pid[n], "tid": 0, "args": {"name": prefix + n}}
                       for n in nodes]
    evs = _event_lists(spans, events)
    for r in spans.itertuples(index=False):
        if math.isnan(r.end):
            continue
        args = {"outcome": r.outcome, "attempt": int(r.attempt), "hedge": bool(r.hedge),
                "span_id": int(r.span_id), "parent_id": int(r.parent_id)}
        faults, fault_at = faults_of(r)
        if faults:
            args["faults"] = FAULT_SEP.join(faults)
        out.append({"name": f"{r.op} -> {r.peer}", "cat": r.kind, "ph": "X", "pid": pid[r.node],
                    "tid": int(r.trace_id), "ts": r.start * 1e6, "dur": max(0.0, (r.end - r.start) * 1e6),
                    "args": args})
        if faults:
            out.append({"name": "fault active", "cat": "fault", "ph": "i", "s": "t", "pid": pid[r.node],
                        "tid": int(r.trace_id), "ts": fault_at * 1e6, "args": {"faults": args["faults"]}})
        for t, name, detail in evs.get(int(r.span_id), ()):
            out.append({"name": name, "ph": "i", "s": "t", "pid": pid[r.node], "tid": int(r.trace_id),
                        "ts": t * 1e6, "args": {"detail": detail}})
    return {"traceEvents": out, "displayTimeUnit": "ms"}


def write_chrome_trace(spans: pd.DataFrame, path: str | Path, *, events: pd.DataFrame | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(chrome_trace(spans, events=events), separators=(",", ":")))
    return path
