"""Spans: the causal story of every request, recorded by the kernel (off by default).

``enable_spans(sim)`` turns it on; until then ``node._spans`` is None and the hot path pays
one ``is not None`` test per call, reply, receive and timer (nothing is allocated).

Model (OpenTelemetry's): a client request is a *trace*; every RPC attempt (``Node.call``) is
a *client span* whose parent is the span active on the caller when it called; a resilience
``Pipeline`` call is an *internal span* ("logical call") whose children are its attempts and
whose events are its decisions (retry scheduled with its backoff, breaker transitions,
bulkhead / rate-limit rejections, budget denials, fallback, deadline exceeded).

Context propagation is what async tracers do (OpenTelemetry's ``contextvars``): the span
active when a request arrives at a node is the request's span; a timer (``node.after``) or an
RPC callback runs in the context in which it was created. Per span the kernel also records the
server side: ``arrive`` (request delivered), ``served`` (left the worker queue: queueing ends)
and ``replied`` (reply sent), so a span splits into network, queueing and service time.

Storage is columnar (one list per field, rows = spans; events in their own columns); ids are
row numbers, turned into OTLP's 16/8-byte ids from the run's seed at export
(:func:`otel_ids`). ``frame()`` / ``events_frame()`` build DataFrames once.

Fault stamping: every RPC span records the faults active on its path — a partition cutting
caller <-> callee either way, the callee or caller crashed, paused or slowed, a latency spike or
loss burst touching the link — looked up in the kernel's live state when the call is sent, when
it reaches the server and when it ends (:func:`active_faults`). The labels go to two columns,
``faults`` ("crash(D-0); partition(A-0|B-0,B-1)", ``""`` when none) and ``fault_at`` (when the
first was seen, NaN when none), and up the span's ancestors, so a request's root span says why
it failed. Only span code looks, so tracing off pays nothing for it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from simulator import Simulation

KINDS = ("client", "internal")
SPAN_COLUMNS = ("trace_id", "span_id", "parent_id", "kind", "node", "peer", "op", "start", "end", "arrive",
                "served", "replied", "outcome", "attempt", "hedge", "request", "faults", "fault_at")
FAULT_SEP = "; "


class Spans:
    """Columnar span store with the current context (``current``: a span row or -1)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.trace: list[int] = []
        self.parent: list[int] = []
        self.kind: list[str] = []
        self.node: list[str] = []
        self.peer: list[str] = []
        self.op: list[str] = []
        self.start: list[float] = []
        self.end: list[float] = []
        self.arrive: list[float] = []
        self.served: list[float] = []
        self.replied: list[float] = []
        self.outcome: list[str] = []
        self.attempt: list[int] = []
        self.hedge: list[bool] = []
        self.request: list[int] = []  # the metrics rid of the client request, -1 if none
        self.faults: list[str] = []  # FAULT_SEP-joined labels of the faults on the span's path
        self.fault_at: list[float] = []  # when the first of them was seen (NaN: none)
        self.sim: Simulation | None = None  # set by enable_spans: the live state faults are read from
        self.ev_span: list[int] = []
        self.ev_time: list[float] = []
        self.ev_name: list[str] = []
        self.ev_detail: list[str] = []
        self.by_rid: dict[int, int] = {}  # network rid of an in-flight RPC -> its span
        self.current = -1
        self.traces = 0
        self.next_attempt = 1  # set by a caller (Pipeline) just before node.call
        self.next_hedge = False

    def __len__(self) -> int:
        return len(self.start)

    # -- recording ---------------------------------------------------------------------------
    def open(self, now: float, kind: str, node: str, peer: str, op: str, request: int = -1,
             attempt: int = 1, hedge: bool = False) -> int:
        parent = self.current
        if parent < 0:
            trace = self.traces
            self.traces += 1
        else:
            trace = self.trace[parent]
        s = len(self.start)
        self.trace.append(trace)
        self.parent.append(parent)
        self.kind.append(kind)
        self.node.append(node)
        self.peer.append(peer)
        self.op.append(str(op))
        self.start.append(now)
        self.end.append(math.nan)
        self.arrive.append(math.nan)
        self.served.append(math.nan)
        self.replied.append(math.nan)
        self.outcome.append("in_flight")
        self.attempt.append(attempt)
        self.hedge.append(hedge)
        self.request.append(request)
        self.faults.append("")
        self.fault_at.append(math.nan)
        return s

    def stamp(self, s: int, now: float) -> None:
        """Add the faults active now on span ``s``'s path (caller <-> callee) to it and its ancestors."""
        sim = self.sim
        if sim is None:
            return
        labels = active_faults(sim, self.node[s], self.peer[s], now)
        while labels and s >= 0:
            have = self.faults[s]
            new = [lb for lb in labels if lb not in have.split(FAULT_SEP)]
            if new:
                self.faults[s] = FAULT_SEP.join(([have] if have else []) + new)
                if self.fault_at[s] != self.fault_at[s]:
                    self.fault_at[s] = now
            s = self.parent[s]

    def close(self, s: int, now: float, outcome: str) -> None:
        if self.outcome[s] == "in_flight":
            self.end[s] = now
            self.outcome[s] = outcome

    def event(self, s: int, now: float, name: str, detail: str = "") -> None:
        if s >= 0:
            self.ev_span.append(s)
            self.ev_time.append(now)
            self.ev_name.append(name)
            self.ev_detail.append(detail)

    def rpc(self, now: float, node: str, dst: str, op: str, rid: int, callback: Callable, env) -> Callable:
        """Open the client span of an RPC and wrap its callback to close it (in its context)."""
        s = self.open(now, "client", node, dst, op, attempt=self.next_attempt, hedge=self.next_hedge)
        self.next_attempt, self.next_hedge = 1, False
        self.by_rid[rid] = s
        parent = self.parent[s]
        self.stamp(s, now)

        def cb(outcome: str, value: Any) -> None:
            self.stamp(s, env.now)
            self.close(s, env.now, outcome)
            prev, self.current = self.current, parent
            try:
                callback(outcome, value)
            finally:
                self.current = prev

        return cb

    def bind(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` to run later in the context active now (timers, queued work)."""
        ctx = self.current

        def run() -> Any:
            prev, self.current = self.current, ctx
            try:
                return fn()
            finally:
                self.current = prev

        return run

    def received(self, rid: int, now: float) -> int:
        """A request delivered to its server: the span it belongs to (-1 if untraced)."""
        s = self.by_rid.get(rid, -1)
        if s >= 0 and self.arrive[s] != self.arrive[s]:  # NaN: first copy only
            self.arrive[s] = now
            self.stamp(s, now)
        return s

    # -- views --------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        n = len(self.start)
        return pd.DataFrame({
            "trace_id": np.asarray(self.trace, dtype=np.int64), "span_id": np.arange(n, dtype=np.int64),
            "parent_id": np.asarray(self.parent, dtype=np.int64), "kind": self.kind, "node": self.node,
            "peer": self.peer, "op": self.op, "start": np.asarray(self.start, dtype=float),
            "end": np.asarray(self.end, dtype=float), "arrive": np.asarray(self.arrive, dtype=float),
            "served": np.asarray(self.served, dtype=float), "replied": np.asarray(self.replied, dtype=float),
            "outcome": self.outcome, "attempt": np.asarray(self.attempt, dtype=np.int64),
            "hedge": np.asarray(self.hedge, dtype=bool), "request": np.asarray(self.request, dtype=np.int64),
            "faults": self.faults, "fault_at": np.asarray(self.fault_at, dtype=float),
        })

    def events_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"span_id": self.ev_span, "time": self.ev_time, "name": self.ev_name,
                             "detail": self.ev_detail})


def enable_spans(sim: Simulation) -> Spans:
    """Turn span recording on for ``sim`` (nodes made before and after). Idempotent."""
    sp = getattr(sim, "spans", None)
    if sp is None:
        sp = Spans(sim.seed)
        sp.sim = sim
        sim.spans = sp
    for node in sim.nodes.values():
        node._spans = sp
    return sp


def _few(names) -> str:
    names = sorted(names)
    return ",".join(names[:4]) + (f",+{len(names) - 4}" if len(names) > 4 else "")


def _cut_label(cut) -> str:
    groups = getattr(cut, "groups", None)
    if groups is not None:
        return f"partition({'|'.join(_few(g) for g in groups)})"
    src, dst = getattr(cut, "src", ()), getattr(cut, "dst", ())
    return f"partition_oneway({_few(src)}->{_few(dst)})"


def _on(nodes) -> str:
    return "" if nodes is None else f" on {_few(nodes)}"


def active_faults(sim: Simulation, a: str, b: str, now: float) -> list[str]:
    """Labels of the faults active at ``now`` on the path between nodes ``a`` and ``b`` (either
    direction): partitions cutting it, ``b`` or ``a`` crashed / paused / slowed, latency spikes and
    loss bursts touching the link. Read from the kernel's live state (``net.cuts``, the nodes)."""
    net = sim.net
    out: list[str] = []
    for c in net.cuts:
        if c.blocks(a, b) or c.blocks(b, a):
            out.append(_cut_label(c))
    nodes = sim.nodes
    for name in (b, a) if a != b else (b,):
        n = nodes.get(name)
        if n is None:
            continue
        if not n.up:
            out.append(f"{'crash_stop' if n.stopped else 'crash'}({name})")
        elif n._paused_until > now:
            out.append(f"pause({name})")
        if n.slow_factor != 1.0:
            out.append(f"slowdown({name} x{n.slow_factor:g})")
    for factor, extra, on in net._spikes:
        if on is None or a in on or b in on:
            out.append(f"latency_spike(x{factor:g} +{extra:g}s{_on(on)})")
    for p, on in net._loss_bursts:
        if on is None or a in on or b in on:
            out.append(f"loss_burst({p:g}{_on(on)})")
    return out


def otel_ids(seed: int | str, n: int, *, trace: bool) -> bytes:
    """Deterministic OTLP id (16 bytes for a trace, 8 for a span) of row/trace ``n`` under ``seed``
    (a run's seed, or a string naming one simulation of a run folder that holds several)."""
    size = 16 if trace else 8
    h = hashlib.blake2b(f"{seed}:{'t' if trace else 's'}{n}".encode(), digest_size=size).digest()
    return h if any(h) else b"\x01" + h[1:]  # all-zero ids are invalid in OTLP


def with_events(spans: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """``spans`` with an ``events`` column: the span's events as ``time name detail`` lines, ';'-joined
    (how an experiment saves both in one ``spans`` table)."""
    out = spans.copy()
    out["events"] = ""
    if events is not None and len(events):
        txt = events.sort_values("time", kind="stable").groupby("span_id").apply(
            lambda g: ";".join(f"{t:.6f} {n} {d}".rstrip() for t, n, d in zip(g["time"], g["name"], g["detail"])),
            include_groups=False)
        out.loc[txt.index, "events"] = txt.values
    return out
