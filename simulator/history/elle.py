"""Transactional anomalies in the style of Jepsen's Elle (Kingsbury & Alvaro, "Elle: Inferring Isolation
Anomalies from Experimental Observations", VLDB 2020).

    r = check_transactions("history.jsonl", workload="list-append")
    r.valid, r.anomalies["G-single"][0]["explanation"], r.models_ok

From a history of transactions (invoke/complete events, as Jepsen records them) the checker infers
Adya's write-write, write-read and read-write dependencies (for list-append the version order of a key
is the longest committed read; for registers with unique writes as much as the initial state and
writes-follow-reads give), adds process and real-time order, and looks for cycles: Tarjan's strongly
connected components, then the shortest cycle of each kind inside each component. Each anomaly comes
with a witness in words. ``models_ok`` lists the consistency models no anomaly rules out (Elle's
mapping, see ``simulator.history.txn.models`` and docs/elle.md). Like Elle it is sound but not
complete: an anomaly reported is real (given unique writes and prefix reads); one may go unseen when
the history does not reveal the version order.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .txn import infer
from .txn.graph import DATA, PROC, RT, RW, SEARCHES, Graph, any_cycle, classify, shortest_cycle, tarjan
from .txn.models import MODELS, REALTIME_MODELS, compatible_models, split, strongest
from .txn.parse import Txn, TxnInputError, parse_events, read_events

__all__ = ["check_transactions", "load_txn_history", "main_check_transactions", "TxnResult", "TxnInputError"]

# session model -> the real-time model that implies it (a process's transactions are sequential in real time)
SESSION_MODELS = {"strong-session-serializable": "strict-serializable",
                  "strong-session-snapshot-isolation": "strong-snapshot-isolation"}
MAX_WITNESSES = 8  # per anomaly name; the count of all found is kept in ``counts``
SEARCH_BUDGET = 100_000  # BFS states per (component, anomaly kind) before settling for what was found
TOTAL_BUDGET_FACTOR = 20  # ... and at most this many times that over the whole check


@dataclass
class TxnResult:
    """``valid``: the history is compatible with ``model``. ``anomalies``: name -> witnesses, each a dict
    with ``txns`` (T-numbers), ``explanation`` (sentences) and, for cycles, ``cycle`` ([a, edge, b] steps).
    ``models_ok``: models no anomaly rules out, strongest first; ``strongest``: the ones not implied by
    another in that list."""

    valid: bool
    anomalies: dict[str, list[dict]]
    models_ok: list[str]
    model: str
    workload: str
    realtime: bool
    n_txns: int
    strongest: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    txns: dict[int, str] = field(default_factory=dict)  # T-number -> description, for witnesses' txns
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"valid": self.valid, "model": self.model, "workload": self.workload, "realtime": self.realtime,
                "transactions": self.n_txns, "models_ok": self.models_ok, "strongest": self.strongest,
                "anomaly_counts": self.counts, "anomalies": self.anomalies,
                "txns": {f"T{k}": v for k, v in self.txns.items()}, "notes": self.notes}

    def __str__(self) -> str:
        verdict = "VALID" if self.valid else "INVALID"
        lines = [f"{verdict} under {self.model}: {self.n_txns} transactions ({self.workload}"
                 f"{', real-time edges' if self.realtime else ''})"]
        if not self.anomalies:
            lines.append("no anomalies found")
        for name, ws in self.anomalies.items():
            more = self.counts.get(name, len(ws)) - len(ws)
            lines.append(f"{name}: {self.counts.get(name, len(ws))} found" + (f" ({more} not shown)" if more else ""))
            for w in ws[:3]:
                for t in w["txns"]:
                    lines.append(f"    {self.txns.get(t, f'T{t}')}")
                for s in w["explanation"]:
                    lines.append(f"  - {s}")
        ok = ", ".join(self.strongest) if self.strongest else "none of " + ", ".join(MODELS)
        lines.append(f"strongest models compatible: {ok}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def load_txn_history(path: str | Path, workload: str = "list-append") -> list[Txn]:
    """Transactions from a JSON Lines file (``.edn`` through ``simulator.history.edn`` when present).
    Raises ``TxnInputError`` naming the file and line on bad input."""
    events, lines = read_events(path)
    return parse_events(events, workload, source=str(path), lines=lines)


def _as_txns(history: Any, workload: str) -> list[Txn]:
    if isinstance(history, (str, Path)):
        return load_txn_history(history, workload)
    if hasattr(history, "events") and callable(history.events):  # simulator.history.History
        history = history.events()
    if isinstance(history, Iterable):
        items = list(history)
        if items and all(isinstance(t, Txn) for t in items):
            return items
        return parse_events(items, workload)
    raise TxnInputError(f"expected a path, a History or a list of event dicts, got {type(history).__name__}")


def check_transactions(history: Any, workload: str = "list-append", *, realtime: bool = True,
                       model: str | None = None, budget: int = SEARCH_BUDGET) -> TxnResult:
    """Check a transactional history (path, ``History``, event dicts or ``Txn`` list) for Elle's anomalies.

    ``model`` (default strict-serializable with ``realtime``, else serializable) decides ``valid``.
    ``budget`` bounds each cycle search (BFS states); a component whose typed searches all run out still
    yields one cycle, so the verdict never depends on it (only the shortness of the witnesses does).
    """
    if workload not in ("list-append", "rw-register"):
        raise TxnInputError(f"workload must be list-append or rw-register, got {workload!r}")
    model = model or ("strict-serializable" if realtime else "serializable")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model in REALTIME_MODELS and not realtime:
        raise ValueError(f"{model} needs real-time edges: pass realtime=True")
    txns = _as_txns(history, workload)
    anonymous = next((t for t in txns if t.process is None), None)
    if anonymous is not None and model in SESSION_MODELS:
        at = f"{history}:{anonymous.line}" if isinstance(history, (str, Path)) and anonymous.line else \
            f"event {anonymous.invoke_pos}"
        raise TxnInputError(f"{at}: missing :process, which --txn-model {model} needs: a session model forbids "
                            "cycles through each process's order of transactions, and without :process there "
                            "is no such order")
    found: dict[str, list[dict]] = {}
    counts: dict[str, int] = {}
    notes: list[str] = []

    def add(name: str, ids: list[int], explanation: list[str], cycle: list | None = None) -> None:
        counts[name] = counts.get(name, 0) + 1
        ws = found.setdefault(name, [])
        if len(ws) < MAX_WITNESSES:
            w = {"txns": ids, "explanation": explanation}
            if cycle is not None:
                w["cycle"] = cycle
            ws.append(w)

    g = Graph(len(txns))
    (infer.list_append if workload == "list-append" else infer.rw_register)(txns, g, add)
    g.add_order_edges(txns, realtime)
    _cycles(txns, g, workload, realtime, budget, add, notes)
    anomalies = dict(sorted(found.items()))
    ok = compatible_models(anomalies, realtime)
    if anonymous is not None:  # process order unknown: a session model holds only where its real-time one does
        ok = [m for m in ok if m not in SESSION_MODELS or SESSION_MODELS[m] in ok]
        notes.append("some transactions have no :process: no process-order edges; session models are judged "
                     "only through their real-time counterparts")
    shown = {i for ws in anomalies.values() for w in ws for i in w["txns"]}
    return TxnResult(valid=model in ok, anomalies=anomalies, models_ok=ok, model=model, workload=workload,
                     realtime=realtime, n_txns=len(txns), strongest=strongest(ok), counts=dict(sorted(counts.items())),
                     txns={i: txns[i].describe() for i in sorted(shown)}, notes=notes)


def _cycles(txns, g: Graph, workload: str, realtime: bool, budget: int, add, notes: list[str]) -> None:
    """Each layer adds one kind of order edge and reports only cycles that need it (Elle's -process and
    -realtime variants); the data layer comes first so a pure data anomaly keeps its plain name. G0 and
    G1c are searched inside the components of their own subgraphs (ww; ww + wr), so a component without
    such a cycle costs one Tarjan pass, not a failed search per edge."""
    layers = [("", 0, 0), ("process", PROC, PROC)] + ([("realtime", PROC | RT, RT)] if realtime else [])
    if not tarjan(g.out, DATA | layers[-1][1]):
        return  # acyclic with every edge: nothing to search
    n = len(txns)
    left = TOTAL_BUDGET_FACTOR * budget
    short = False
    lower: set[str] = set()  # base names found in earlier layers
    for _, extra, need in layers:
        cache: dict[int, tuple[list[list[int]], list[int]]] = {}
        comps_for = partial(_components, g, n, cache)
        full, full_of = comps_for(DATA | extra)
        covered: set[int] = set()
        seen: set[tuple[str, int]] = set()
        found_here: set[str] = set()
        for search in SEARCHES:
            if need and (search.name in lower or search.name == "G-nonadjacent" and "G-single" in lower):
                continue  # implied already (Elle: G-single implies G-single-process and G-nonadjacent)
            mask = DATA | extra if search.start == RW else search.allowed | extra
            comps, comp_of = comps_for(mask)
            for c, members in enumerate(comps):
                path, spent, exhausted = shortest_cycle(g, comp_of, c, members, search, extra, need,
                                                        max(0, min(budget, left)))
                left -= spent
                if exhausted:
                    short = True
                if path is None:
                    continue
                name, where = classify(path), full_of[path[0][0]]
                covered.add(where)
                if (name, where) in seen:
                    continue
                seen.add((name, where))
                found_here.add(split(name)[0])
                add(name, [a for a, _, _ in path], [infer.explain_edge(txns, g, a, bit, b, workload)
                                                    for a, bit, b in path],
                    cycle=[[a, _EDGE[bit], b] for a, bit, b in path])
        if short:  # a component whose searches all ran out still holds a cycle: report one
            for c, members in enumerate(full):
                if c not in covered:
                    path = any_cycle(g, full_of, c, members, DATA | extra)
                    add(classify(path), [a for a, _, _ in path],
                        [infer.explain_edge(txns, g, a, bit, b, workload) for a, bit, b in path],
                        cycle=[[a, _EDGE[bit], b] for a, bit, b in path])
        lower |= found_here
    if short:
        notes.append(f"some cycle searches stopped at their budget ({budget} states each, {TOTAL_BUDGET_FACTOR}x "
                     "in all): every cyclic component still has a witness, but it may not be the shortest")


def _components(g: Graph, n: int, cache: dict, mask: int) -> tuple[list[list[int]], list[int]]:
    """Non-trivial SCCs over ``mask`` edges and each transaction's component (-1: none), memoised."""
    if mask not in cache:
        comps = [sorted(c) for c in tarjan(g.out, mask)]
        comp_of = [-1] * n
        for c, members in enumerate(comps):
            for v in members:
                comp_of[v] = c
        cache[mask] = (comps, comp_of)
    return cache[mask]


_EDGE = {1: "ww", 2: "wr", 4: "rw", 8: "process", 16: "realtime"}


def main_check_transactions(path: str, workload: str, as_json: bool, model: str | None = None) -> int:
    """``splitbrain check transactions FILE --workload W [--json]``: exit 0 valid, 1 anomaly, 2 bad input.
    (3, unknown, is never returned: the cycle search always decides.)"""
    try:
        result = check_transactions(path, workload, model=model)
    except (TxnInputError, ValueError, OSError) as err:
        msg = str(err)
        if as_json:
            print(json.dumps({"valid": None, "error": msg}))
        else:
            print(f"splitbrain: error: {msg.splitlines()[0] if msg else msg}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(result.to_json(), default=repr))
    else:
        print(result)
    return 0 if result.valid else 1
