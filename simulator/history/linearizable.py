"""Linearizability of a history against a model: Wing–Gong–Lowe search, per key.

Semantics (Herlihy & Wing 1990): an ``ok`` operation must take effect at one instant between its
invocation and its completion, in an order the model's sequential specification allows. A
``fail`` operation surely did not take effect and is dropped, unless the model says its failure is
information (``cas-register``: a failed cas saw a value other than the expected one, at some
instant inside its interval). An ``info`` operation (a timeout) or one never completed may take
effect at any instant after its invocation, or never: its completion time is +infinity, and since
taking effect after everything else is the same as never, it may be omitted. A read-only
operation with an unknown outcome constrains nothing and is dropped.

Models (see models.py and docs/models.md) have Porcupine's shape: ``init()``, ``step(state, input,
output) -> (ok, new_state)``, ``partition``. Built in: ``register`` (read/write/cas per key, failed
cas dropped; the default, as before), ``cas-register`` (failed cas kept as information), ``kv``
(Porcupine's get/put/append), ``set``, ``queue`` and ``unique-id``; or pass any ``Model``.

Algorithm. Parts (keys, by default) are independent, so each is checked alone
(P-compositionality: Horn & Kroening 2015). Each part is searched as in search.py: the WGL/Lowe
search with a fingerprinted cache, through the model's ``step``, or through the register fast
path whose pruning makes valid histories with 50 clients on one key check in linear time.

Ties. At equal times invocations sort before completions, so an operation that completes at
``t`` and one invoked at ``t`` count as concurrent: the permissive reading, which never
reports a violation that a finer clock could explain.

Counterexamples are shrunk by steps that keep them a proof, within a time budget
(``shrink_time_s``, default 3x the verdict search's time, at least 2 s): (1) the shortest
failing *truncation* (events up to a cut; operations still open at the cut become ``info``),
found from where the verdict search got stuck (one search), else by binary search; truncation
preserves linearizability (a linearization's prefix is one), so a failing truncation is a proof;
(2) greedy removal, in halving chunks (ddmin-style), of operations the model says cannot hide a
violation (register: any read; a write with every read of the value it wrote, unless a remaining
cas expects it); a part that decides directly (the set's, set_part.py) first names a few operations
that fail, and (2) starts from those, or is skipped when that part proves them minimal by exact
checks. The smallest proof found so far is reported when the budget runs out, with a
note that it may not be minimal.
"""

from __future__ import annotations

import gc
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import History
from .models import Input, Model, get_model
from .ops import INF, HistoryError, Op, freeze, pair_ops
from .search import Part, SearchTimeout, make_part

_SHRINK_FACTOR, _SHRINK_FLOOR_S = 3.0, 2.0  # default shrink budget: max(floor, factor * verdict time)


@dataclass
class KeyResult:
    """Verdict for one key (part). ``valid`` is ``None`` when the time limit stopped the search.
    A counterexample is always a proof; ``minimal`` says whether shrinking finished (no single
    removable operation can go) or the budget stopped it first."""

    key: Any
    valid: bool | None
    ops: int
    states: int = 0
    seconds: float = 0.0
    counterexample: list[Op] | None = None
    cut_op: Op | None = None
    reason: str = ""
    shrink_seconds: float = 0.0
    minimal: bool = True


@dataclass
class LinearizabilityResult:
    """``valid``: True, False, or None (unknown: a time limit was hit; never a guess)."""

    valid: bool | None
    per_key: dict[Any, KeyResult]
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    model: str = "register"

    @property
    def counterexample(self) -> list[Op] | None:
        """The shrunk counterexample of the first non-linearizable key, or None."""
        for r in self.per_key.values():
            if r.valid is False:
                return r.counterexample
        return None

    def __bool__(self) -> bool:
        return self.valid is True

    def __str__(self) -> str:
        s = self.stats
        verdict = {True: "linearizable", False: "NOT linearizable",
                   None: "UNKNOWN (search stopped by the time limit)"}[self.valid]
        lines = [f"{verdict} ({self.model} model): {s.get('ops', 0)} operations on {s.get('keys', 0)} key(s); "
                 f"{s.get('states', 0)} states explored in {s.get('seconds', 0.0):.3f} s"]
        if self.message:
            lines.append(self.message)
        for r in self.per_key.values():
            if r.valid is None:
                lines.append(f"key {r.key!r}: unknown after {r.seconds:.1f} s ({r.reason})")
        for r in self.per_key.values():
            if r.valid is not False:
                continue
            lines.append(f"key {r.key!r}: not linearizable ({r.ops} operations). {r.reason}")
            if r.cut_op is not None:
                lines.append(f"  the history first goes wrong when this completes: {r.cut_op.describe()}")
            if r.counterexample:
                how = "minimal" if r.minimal else "shrinking stopped by its time budget; may not be minimal"
                lines.append(f"  counterexample: {len(r.counterexample)} of {r.ops} operations ({how}; "
                             f"shrunk in {r.shrink_seconds:.2f} s) (process, f, value, [invoke, complete], type):")
                lines.extend("    " + op.describe() for op in r.counterexample)
            break  # one counterexample is enough to read; the others are in per_key
        bad = [r.key for r in self.per_key.values() if r.valid is False]
        if len(bad) > 1:
            lines.append(f"also not linearizable: keys {bad[1:]!r}")
        return "\n".join(lines)


# -- shrinking a violation to a counterexample ---------------------------------------------------

def _fails(part: Part, sel: list[int], ends: list[float], deadline: float | None, budget: int) -> bool | None:
    """True only if the search *proves* these operations non-linearizable within the budget
    (None: the budget ran out, so no proof either way)."""
    try:
        ok, part.states, _ = part.search(sel, ends, deadline, budget)
        return not ok
    except SearchTimeout:
        return None


def _shrink(part: Part, deadline: float, blocked: int, states: int) -> tuple[list[int], Op | None, bool]:
    """(operations of the smallest proof found, the op whose completion the cut follows, minimal?)."""
    n = len(part.ops)
    ends0 = part.ends()
    bound = part.bound
    # a trial that keeps the violation fails about as fast as the verdict did; one that lost it
    # must search the whole rest: a step budget keeps those cheap (over budget = not a proof)
    budget = max(4_000, 4 * states)
    cuts = sorted((ends0[i], i) for i in range(n) if part.is_ok[i])
    at = {i: c for c, (_, i) in enumerate(cuts)}

    def truncated(c: int) -> tuple[list[int], list[float]]:
        t, last = cuts[c]
        # invoked by the cut; still open at the cut -> info (and an open read-only op says nothing)
        keep = [i for i in range(n) if (part.ops[i].invoke_time, 0) <= (t, 1)
                and ((ends0[i], i) <= (t, last) or not part.quiet[i])]
        return keep, [ends0[i] if (ends0[i], i) <= (t, last) else INF for i in keep]

    # (1) the shortest failing truncation. The verdict search's latest stop is a lower bound (pruning
    # only ends branches early); the register path's ``bound`` an upper one; bisect between them
    hi = len(cuts) - 1  # invariant: truncation at cuts[hi] fails (the whole history does)
    lo = at.get(blocked, 0)
    if bound in at and at[bound] < hi and _fails(part, *truncated(at[bound]), deadline, budget):
        hi = at[bound]
    if lo < hi:
        if _fails(part, *truncated(lo), deadline, budget):
            hi = lo
        else:
            lo += 1
    while lo < hi and _time.perf_counter() < deadline:
        mid = (lo + hi) // 2
        proof = _fails(part, *truncated(mid), deadline, budget)
        if proof is None:
            break  # a linearizable prefix needs a full search: leave the rest to step (2)
        if proof:
            hi = mid
        else:
            lo = mid + 1
    sel, ends = truncated(hi)
    cut_op = part.ops[cuts[hi][1]] if cuts else None
    endmap = dict(zip(sel, ends, strict=True))
    cur = list(sel)
    # a part that decides directly (set_part.py) names a few operations that already fail:
    # start step (2) from them once the search confirms they are a proof
    witness = getattr(part, "witness", None)
    if witness is not None:
        found = witness(sel, ends)  # (operations, proven minimal?) or None
        if found and _fails(part, found[0], [endmap[i] for i in found[0]], deadline, budget):
            cur = sorted(found[0])
            if found[1]:
                return cur, cut_op, True
    # (2) greedy removal in shrinking chunks (ddmin-style) of moves that preserve failure
    chunk = max(1, len(cur) // 2)
    minimal = False
    while _time.perf_counter() < deadline:
        changed = unsure = False
        start = 0
        while start < len(cur) and _time.perf_counter() < deadline:
            drop = part.removal(set(cur), cur[start:start + chunk])
            if drop:
                trial = [i for i in cur if i not in drop]
                proof = _fails(part, trial, [endmap[i] for i in trial], deadline, budget) if trial else False
                if proof:
                    budget = max(4_000, 4 * part.states)  # what a proof costs now, plus a margin
                    cur = trial
                    changed = True
                    continue
                unsure |= proof is None
            start += chunk
        if chunk == 1 and not changed and start >= len(cur):
            minimal = not unsure
            break
        if not changed:
            chunk = max(1, chunk // 2)
    return cur, cut_op, minimal


# -- entry points --------------------------------------------------------------------------------

def _check_part(key: Any, ops: list[Op], model: Model, deadline: float | None,
                shrink_time_s: float | None) -> KeyResult:
    t0 = _time.perf_counter()
    part = make_part(ops, model)
    try:
        ok, states, blocked = part.search(list(range(len(ops))), part.ends(), deadline, None)
    except SearchTimeout:
        return KeyResult(key, None, len(ops), 0, _time.perf_counter() - t0,
                         reason="time limit hit; many concurrent or indeterminate (info) operations "
                                "make the search exponential. Raise time_limit_s or shorten the history")
    verdict_s = _time.perf_counter() - t0
    if ok:
        return KeyResult(key, True, len(ops), states, verdict_s)
    budget = shrink_time_s if shrink_time_s is not None else max(_SHRINK_FLOOR_S, _SHRINK_FACTOR * verdict_s)
    t1 = _time.perf_counter()
    sub, cut_op, minimal = _shrink(part, t1 + budget, blocked, states)
    cx = sorted((ops[i] for i in sub), key=lambda o: (o.invoke_time, o.index))
    return KeyResult(key, False, len(ops), states, verdict_s, cx, cut_op,
                     reason="No order of the operations below, each placed within its interval, "
                            f"is a legal sequence for the {model.name} model.",
                     shrink_seconds=_time.perf_counter() - t1, minimal=minimal)


def _operations(history: History | Iterable[dict] | str | Path, model: Model) -> tuple[list[list[Op]], int]:
    """The model's parts, after dropping what constrains nothing; raises HistoryError naming the event."""
    kept, n_all = [], 0
    for op in pair_ops(history):
        n_all += 1
        if model.operations is not None and op.f not in model.operations:
            raise HistoryError(f"f={op.f!r} is not an operation of the {model.name!r} model "
                               f"({', '.join(sorted(model.operations))})", op.index)
        if op.f == "cas" and not (isinstance(op.value, (list, tuple)) and len(op.value) == 2):
            raise HistoryError(f"cas needs value [expected, new], got {op.value!r}", op.index)
        inp = Input(op.f, freeze(op.key), freeze(op.value))
        if op.type == "fail" and not model.failed_is_information(inp):
            continue  # surely did not happen: constrains nothing
        if op.type == "info" and model.read_only(inp):
            continue  # returned nothing and changed nothing
        kept.append(op)
    return [p for p in model.partition(kept) if p], n_all


def check_linearizable(history: History | Iterable[dict] | str | Path, *, model: str | Model = "register",
                       initial: Any = None, time_limit_s: float | None = None,
                       shrink_time_s: float | None = None) -> LinearizabilityResult:
    """Decide whether a history is linearizable for ``model`` (see the module docstring).

    ``model``: a name in ``simulator.history.models.MODELS`` or a ``Model`` instance.
    ``initial``: each key's value before the first operation (for a named model).
    ``time_limit_s``: give up the verdict search after this long and answer ``valid=None``
    (unknown) rather than hang; an invalid key found before the limit still makes it ``False``.
    ``shrink_time_s``: budget for shrinking each counterexample (default: 3x its verdict time,
    at least 2 s); the smallest proof found by then is reported.
    """
    m = get_model(model, initial)
    for name, v in (("time_limit_s", time_limit_s), ("shrink_time_s", shrink_time_s)):
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be > 0 or None, got {v!r}")
    t0 = _time.perf_counter()
    deadline = None if time_limit_s is None else t0 + time_limit_s
    # The cyclic GC is paused while checking: the search holds one frame (a few lists) per placed
    # operation, and the collector's passes over that growing heap cost more than the search
    # itself on long histories (cas-register, 200k ops on one key: 4.4 s of search with it, 2.3 s
    # without). The checker builds no reference cycles, so reference counting frees everything as
    # before (a user model's cyclic garbage, if any, waits until the check returns); the caller's
    # GC state is restored.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        parts, n_all = _operations(history, m)
        per_key: dict[Any, KeyResult] = {}
        for n, ops in enumerate(parts):
            label = freeze(ops[0].key)
            if label in per_key:
                label = (label, n)
            per_key[label] = _check_part(ops[0].key, ops, m, deadline, shrink_time_s)
    finally:
        if gc_was_on:
            gc.enable()
    verdicts = [r.valid for r in per_key.values()]
    valid = False if False in verdicts else (None if None in verdicts else True)
    stats = {"ops": n_all, "checked_ops": sum(len(p) for p in parts), "keys": len(parts),
             "states": sum(r.states for r in per_key.values()), "seconds": _time.perf_counter() - t0,
             "verdict_seconds": sum(r.seconds for r in per_key.values()),
             "shrink_seconds": sum(r.shrink_seconds for r in per_key.values())}
    msg = ""
    if valid is None:
        msg = (f"No violation found, but {verdicts.count(None)} key(s) were not fully searched "
               f"within time_limit_s={time_limit_s}: the verdict is unknown, not 'valid'.")
    return LinearizabilityResult(valid, per_key, stats, msg, m.name)


def check_linearizable_file(path: str | Path, *, model: str | Model = "register", initial: Any = None,
                            time_limit_s: float | None = 300.0,
                            shrink_time_s: float | None = None) -> LinearizabilityResult:
    """Check a history file: JSON Lines, or EDN as Jepsen, Knossos and Porcupine write it (see
    edn.py). Bad input raises ``ValueError`` with one line naming the file and line number."""
    from .edn import load_history

    try:
        history, lines = load_history(path)
    except RecursionError:  # the JSON and EDN readers recurse once per nesting level
        raise ValueError(f"{path}: nested too deeply to read (a history is one flat event a line)") from None
    try:
        return check_linearizable(history, model=model, initial=initial, time_limit_s=time_limit_s,
                                  shrink_time_s=shrink_time_s)
    except HistoryError as e:
        where = f"{path}:{lines[e.event]}" if e.event is not None and e.event < len(lines) else str(path)
        raise ValueError(f"{where}: {e.detail}") from None
