"""Linearizability of a key-value register history: Wing–Gong–Lowe search, per key.

Semantics (Herlihy & Wing 1990; register as in Knossos and Porcupine): each key is an atomic
register, initially ``initial`` (``None`` unless given). ``read`` returns the current value,
``write v`` sets it, ``cas [e, n]`` sets it to ``n`` iff it equals ``e``. An ``ok`` operation must
take effect at one instant between its invocation and its completion. A ``fail`` operation
surely did not take effect and is dropped. An ``info`` operation (a timeout) or one never
completed may take effect at any instant after its invocation, or never: its completion time
is +infinity, and since taking effect after everything else is the same as never, it may be
omitted. An ``info`` read returned nothing and is dropped; an ``info`` cas can only take effect
when the register holds its expected value.

Algorithm. Registers on different keys are independent, so the history is partitioned per
key and each part checked alone (P-compositionality: Horn & Kroening 2015, "Faster
linearizability checking via P-compositionality"). Each part is searched with the
Wing & Gong (1993) algorithm as improved by Lowe (2017, "Testing for linearizability") and
implemented by Porcupine (Athalye): call and return entries sorted by time in a doubly linked
list; depth-first, the first call entry whose operation the model accepts in the current
state is *lifted* (removed with its return entry) and pushed on a stack; reaching a return
entry means that operation can no longer be placed, so the search backtracks (unlifts).
A cache of (set of linearized operations, register state) prunes configurations already
explored. The search succeeds once every ``ok`` operation is linearized (the ``info``
operations left can be omitted). Register-specific pruning (see ``_search``) makes valid
histories with 50 clients on one key check in linear time; without it the plain search is
exponential in the number of concurrent writes.

Ties. At equal times invocations sort before completions, so an operation that completes at
``t`` and one invoked at ``t`` count as concurrent: the permissive reading, which never
reports a violation that a finer clock could explain.

The linearized set is kept as a 128-bit Zobrist fingerprint (XOR of a random key per
operation, updated in O(1)) instead of an n-bit Python int: an exact bitset costs O(n) memory
per cache entry, O(n^2) in all (gigabytes at 50,000 operations on one key). A false cache hit
needs two different sets with equal 128-bit fingerprints; with N cache entries its
probability is below N^2 / 2^129 (< 1e-25 for N = 1e6). Model checkers such as TLC
fingerprint states the same way, with 64 bits.

A violation comes with a counterexample shrunk by steps that keep it a proof: (1) the shortest
*truncation* of the history (events up to a cut; operations still open at the cut become
``info``) that is not linearizable, found by binary search since truncation preserves
linearizability; (2) greedy removal of operations that cannot hide a violation (any ``ok``
read; a write or cas together with every read of the value it wrote, provided no remaining
cas expects that value). If the shrunk set cannot be linearized, neither can the history.
"""

from __future__ import annotations

import json
import time as _time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import History
from .ops import INF, Op, freeze, pair_ops

READ, WRITE, CAS = 0, 1, 2
_KINDS = {"read": READ, "write": WRITE, "cas": CAS}
_CHECK_EVERY = 1 << 13  # steps between clock checks: cheap, and well under 10 ms apart
_SHRINK_S = 30.0  # at most this long shrinking a counterexample (each kept step stays a proof)


class _Timeout(Exception):
    pass


@dataclass
class KeyResult:
    """Verdict for one key. ``valid`` is ``None`` when the time limit stopped the search."""

    key: Any
    valid: bool | None
    ops: int
    states: int = 0
    seconds: float = 0.0
    counterexample: list[Op] | None = None
    cut_op: Op | None = None
    reason: str = ""


@dataclass
class LinearizabilityResult:
    """``valid``: True, False, or None (unknown: a time limit was hit; never a guess)."""

    valid: bool | None
    per_key: dict[Any, KeyResult]
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""

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
        lines = [f"{verdict}: {s.get('ops', 0)} operations on {s.get('keys', 0)} key(s); "
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
                lines.append(f"  {len(r.counterexample)} operations that no register order can explain "
                             "(process, f, value, [invoke, complete], type):")
                lines.extend("    " + op.describe() for op in r.counterexample)
            break  # one counterexample is enough to read; the others are in per_key
        bad = [r.key for r in self.per_key.values() if r.valid is False]
        if len(bad) > 1:
            lines.append(f"also not linearizable: keys {bad[1:]!r}")
        return "\n".join(lines)


# -- the search ----------------------------------------------------------------------------------

def _zobrist(n: int) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence(0x5B1A17B4A1))  # fixed: same keys every run
    w = rng.integers(0, 2**64, size=(n, 2), dtype=np.uint64).tolist()
    return [(a << 64) | b for a, b in w]


class _Part:
    """One key's operations in the search's encoding (values interned to small ints)."""

    def __init__(self, ops: list[Op], initial: Any) -> None:
        ids: dict[Any, int] = {}
        intern = lambda v: ids.setdefault(freeze(v), len(ids))  # noqa: E731
        self.init = intern(initial)
        self.ops = ops
        self.kind: list[int] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.is_ok: list[bool] = []
        for op in ops:
            k = _KINDS[op.f]
            self.kind.append(k)
            if k == READ:
                self.a.append(intern(op.result)); self.b.append(-1)  # noqa: E702
            elif k == WRITE:
                self.a.append(intern(op.value)); self.b.append(-1)  # noqa: E702
            else:
                if not isinstance(op.value, (list, tuple)) or len(op.value) != 2:
                    raise ValueError(f"cas at event {op.index} needs value [expected, new], got {op.value!r}")
                self.a.append(intern(op.value[0])); self.b.append(intern(op.value[1]))  # noqa: E702
            self.is_ok.append(op.type == "ok")
        self.zob = _zobrist(len(ops))
        self.reads_of: dict[int, list[int]] = defaultdict(list)
        self.cas_expecting: dict[int, list[int]] = defaultdict(list)
        for i, k in enumerate(self.kind):
            if k == READ:
                self.reads_of[self.a[i]].append(i)
            elif k == CAS:
                self.cas_expecting[self.a[i]].append(i)


def _search(part: _Part, sel: list[int], ends: list[float], deadline: float | None,
            max_steps: int | None) -> tuple[bool, int]:
    """WGL/Lowe search over the operations ``sel`` (indices into ``part``) with latest effect
    times ``ends`` (+inf for indeterminate). Returns (linearizable, states cached).

    Each configuration's candidates are the call entries before the first return entry (the
    operations that may go next). Two register-specific refinements keep the search linear on
    valid histories with many concurrent clients: (1) a read that matches the state is taken
    alone, never as a choice: if any order works, one with that read next works (it changes
    nothing, and every operation that must precede it is placed already); (2) writes and cas
    are tried most urgent first: by the earliest return among the operation itself and the
    pending reads (or ok cas) that need the value it writes; (3) a write that overwrites a value
    some pending ok read (or ok cas) still needs, when no unplaced operation can write that value
    again, is a dead end and is skipped; (4) an info write or cas whose value no unplaced
    operation needs is never placed (placing it only hides the state). All four only reorder
    branches or skip ones that provably cannot succeed, so the search stays exhaustive.
    """
    n = len(sel)
    ev = [(part.ops[j].invoke_time, 0, i) for i, j in enumerate(sel)]
    ev += [(ends[i], 1, i) for i in range(n) if ends[i] != INF]
    ev.sort()
    size = len(ev)
    # entries 1..size; 0 is the head sentinel, size+1 the tail sentinel
    nxt = list(range(1, size + 2)) + [size + 1]
    prv = [0] + list(range(0, size + 1))
    is_call = [False] * (size + 2)
    ent_op = [0] * (size + 2)
    ret_of = [-1] * (size + 2)
    call_ent = [0] * n
    due = [float(size + 1)] * n  # position of the op's return entry (after everything if info)
    for e, (_, typ, i) in enumerate(ev, 1):
        ent_op[e] = i
        if typ == 0:
            is_call[e] = True
            call_ent[i] = e
        else:
            ret_of[call_ent[i]] = e
            due[i] = float(e)
    kind = [part.kind[j] for j in sel]
    a = [part.a[j] for j in sel]
    b = [part.b[j] for j in sel]
    ok = [ends[i] != INF for i in range(n)]
    zob = [part.zob[j] for j in sel]
    remaining = sum(ok)
    if not remaining:
        return True, 1
    nv = max(max(a), max(b), part.init) + 1
    rl = [0] * nv  # pending ok reads / ok cas that need each value
    wl = [0] * nv  # unplaced operations that can write each value
    cl = [0] * nv  # unplaced info cas expecting each value
    for i in range(n):
        k = kind[i]
        if ok[i] and k != WRITE:
            rl[a[i]] += 1
        elif k == CAS:
            cl[a[i]] += 1
        if k == WRITE:
            wl[a[i]] += 1
        elif k == CAS:
            wl[b[i]] += 1
    state, fp = part.init, 0
    cache = {(0, state)}
    steps = 0
    limit = max_steps if max_steps is not None else -1

    def expand() -> list:
        """A frame: [candidate call entries, next index, lifted entry, state, fingerprint]."""
        e = nxt[0]
        need: dict[int, float] = {}
        writers = []
        while is_call[e]:
            i = ent_op[e]
            k = kind[i]
            if k == READ:
                if a[i] == state:
                    return [[e], 0, -1, state, fp]
                if due[i] < need.get(a[i], INF):
                    need[a[i]] = due[i]
            elif k == WRITE or a[i] == state:
                writers.append(e)
            elif ok[i] and due[i] < need.get(a[i], INF):
                need[a[i]] = due[i]
            e = nxt[e]
        if len(writers) > 1:
            def urgency(e: int) -> float:
                i = ent_op[e]
                return min(due[i], need.get(a[i] if kind[i] == WRITE else b[i], INF))
            writers.sort(key=urgency)
        return [writers, 0, -1, state, fp]

    stack = [expand()]
    while True:
        steps += 1
        if not steps & (_CHECK_EVERY - 1):
            if deadline is not None and _time.perf_counter() > deadline:
                raise _Timeout
            if 0 <= limit < steps:
                raise _Timeout
        top = stack[-1]
        lifted = top[2]
        if lifted >= 0:  # undo this frame's previous choice: unlift in reverse order of lifting
            r = ret_of[lifted]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                remaining += 1
            nxt[prv[lifted]] = lifted
            prv[nxt[lifted]] = lifted
            state, fp = top[3], top[4]
            top[2] = -1
            i = ent_op[lifted]
            k = kind[i]
            if ok[i] and k != WRITE:
                rl[a[i]] += 1
            elif k == CAS:
                cl[a[i]] += 1
            if k == WRITE:
                wl[a[i]] += 1
            elif k == CAS:
                wl[b[i]] += 1
        cands = top[0]
        j = top[1]
        while j < len(cands):
            e = cands[j]
            j += 1
            i = ent_op[e]
            k = kind[i]
            ns = b[i] if k == CAS else a[i]
            # dead end: overwriting a value still needed that nothing left can write again
            if ns != state and wl[state] == 0 and rl[state] > (k == CAS and ok[i]):
                continue
            # an indeterminate op whose value nothing unplaced needs is better omitted
            if not ok[i] and rl[ns] == 0 and cl[ns] == 0:
                continue
            nfp = fp ^ zob[i]
            ck = (nfp, ns)
            if ck not in cache:
                cache.add(ck)
                break
        else:
            stack.pop()
            if not stack:
                return False, len(cache)
            continue
        top[1] = j
        top[2] = e
        state, fp = ns, nfp
        if ok[i] and k != WRITE:
            rl[a[i]] -= 1
        elif k == CAS:
            cl[a[i]] -= 1
        if k == WRITE:
            wl[a[i]] -= 1
        elif k == CAS:
            wl[b[i]] -= 1
        p, q = prv[e], nxt[e]  # lift: unlink the call entry and its return entry
        nxt[p] = q
        prv[q] = p
        r = ret_of[e]
        if r >= 0:
            p, q = prv[r], nxt[r]
            nxt[p] = q
            prv[q] = p
            remaining -= 1
            if not remaining:
                return True, len(cache)
        stack.append(expand())


# -- shrinking a violation to a counterexample ---------------------------------------------------

def _fails(part: _Part, sel: list[int], ends: list[float], deadline: float | None, budget: int) -> bool:
    """True only if the search *proves* these operations non-linearizable within the budget."""
    try:
        return not _search(part, sel, ends, deadline, budget)[0]
    except _Timeout:
        return False


def _shrink(part: _Part, deadline: float | None) -> tuple[list[int], Op | None]:
    n = len(part.ops)
    cap = _time.perf_counter() + _SHRINK_S
    deadline = cap if deadline is None else min(deadline, cap)
    ends0 = [op.end for op in part.ops]
    budget = 50 * n + 200_000
    # (1) the shortest failing truncation: cut after the return of some ok op (binary search)
    cuts = sorted((ends0[i], i) for i in range(n) if part.is_ok[i])
    lo, hi = 0, len(cuts) - 1  # invariant: truncation at cuts[hi] fails (the whole history does)

    def truncated(c: int) -> tuple[list[int], list[float]]:
        t, last = cuts[c]
        # invoked by the cut; still open at the cut -> info (and an info read says nothing)
        keep = [i for i in range(n) if (part.ops[i].invoke_time, 0) <= (t, 1)
                and ((ends0[i], i) <= (t, last) or part.kind[i] != READ)]
        return keep, [ends0[i] if (ends0[i], i) <= (t, last) else INF for i in keep]

    while lo < hi:
        mid = (lo + hi) // 2
        if _fails(part, *truncated(mid), deadline, budget):
            hi = mid
        else:
            lo = mid + 1
    sel, ends = truncated(hi)
    cut_op = part.ops[cuts[hi][1]]
    # (2) greedy removal in shrinking chunks (ddmin-style) of moves that preserve failure
    endmap = dict(zip(sel, ends, strict=True))
    cur = list(sel)
    chunk = max(1, len(cur) // 2)
    while True:
        changed = False
        start = 0
        while start < len(cur) and _time.perf_counter() < deadline:
            drop = _removal(part, set(cur), cur[start:start + chunk])
            if drop:
                trial = [i for i in cur if i not in drop]
                if trial and _fails(part, trial, [endmap[i] for i in trial], deadline, budget):
                    cur = trial
                    changed = True
                    continue
            start += chunk
        if (chunk == 1 and not changed) or _time.perf_counter() >= deadline:
            break
        if not changed:
            chunk = max(1, chunk // 2)
    return cur, cut_op


def _removal(part: _Part, alive: set[int], want: list[int]) -> set[int]:
    """Operations removable together with ``want`` without hiding a violation: reads freely; a
    write/cas with all reads of the value it wrote, unless a remaining cas expects that value."""
    drop = {i for i in want if part.kind[i] == READ}
    for w in want:
        if part.kind[w] == READ:
            continue
        v = part.a[w] if part.kind[w] == WRITE else part.b[w]
        if any(i in alive and i != w for i in part.cas_expecting.get(v, ())):
            continue
        drop.add(w)
        drop.update(i for i in part.reads_of.get(v, ()) if i in alive)
    return drop


# -- entry points --------------------------------------------------------------------------------

def _check_key(key: Any, ops: list[Op], initial: Any, deadline: float | None) -> KeyResult:
    t0 = _time.perf_counter()
    part = _Part(ops, initial)
    sel = list(range(len(ops)))
    try:
        ok, states = _search(part, sel, [op.end for op in ops], deadline, None)
    except _Timeout:
        return KeyResult(key, None, len(ops), 0, _time.perf_counter() - t0,
                         reason="time limit hit; many concurrent or indeterminate (info) operations "
                                "make the search exponential. Raise time_limit_s or shorten the history")
    if ok:
        return KeyResult(key, True, len(ops), states, _time.perf_counter() - t0)
    sub, cut_op = _shrink(part, deadline)
    cx = sorted((ops[i] for i in sub), key=lambda o: (o.invoke_time, o.index))
    return KeyResult(key, False, len(ops), states, _time.perf_counter() - t0, cx, cut_op,
                     reason="No order of the operations below, each placed within its interval, "
                            "is a legal sequence of register reads and writes.")


def check_linearizable(history: History | Iterable[dict] | str | Path, *, model: str = "register",
                       initial: Any = None, time_limit_s: float | None = None) -> LinearizabilityResult:
    """Decide whether a key-value register history is linearizable (see the module docstring).

    ``initial``: every key's value before the first write. ``time_limit_s``: give up after this
    long and answer ``valid=None`` (unknown) rather than hang; an invalid key found before the
    limit still makes the verdict ``False``.
    """
    if model != "register":
        raise ValueError(f"model must be 'register' (a read/write/cas register per key), got {model!r}")
    if time_limit_s is not None and not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0 or None, got {time_limit_s!r}")
    t0 = _time.perf_counter()
    deadline = None if time_limit_s is None else t0 + time_limit_s
    by_key: dict[Any, list[Op]] = defaultdict(list)
    n_all = 0
    for op in pair_ops(history):
        n_all += 1
        if op.f not in _KINDS:
            raise ValueError(f"event {op.index}: f={op.f!r} is not a register operation (read, write, cas)")
        if op.type == "fail" or (op.f == "read" and op.type != "ok"):
            continue  # surely did not happen / returned nothing: constrains nothing
        by_key[freeze(op.key)].append(op)
    per_key: dict[Any, KeyResult] = {}
    for key, ops in by_key.items():
        per_key[key] = _check_key(ops[0].key, ops, initial, deadline)
    verdicts = [r.valid for r in per_key.values()]
    valid = False if False in verdicts else (None if None in verdicts else True)
    stats = {"ops": n_all, "checked_ops": sum(len(v) for v in by_key.values()), "keys": len(by_key),
             "states": sum(r.states for r in per_key.values()), "seconds": _time.perf_counter() - t0}
    msg = ""
    if valid is None:
        msg = (f"No violation found, but {verdicts.count(None)} key(s) were not fully searched "
               f"within time_limit_s={time_limit_s}: the verdict is unknown, not 'valid'.")
    return LinearizabilityResult(valid, per_key, stats, msg)


def check_linearizable_file(path: str | Path, *, initial: Any = None,
                            time_limit_s: float | None = 300.0) -> LinearizabilityResult:
    """Check a JSON Lines history file (the ``splitbrain check linearizable`` command)."""
    try:
        history = History.load_jsonl(path)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON Lines: {e}") from None
    return check_linearizable(history, initial=initial, time_limit_s=time_limit_s)
