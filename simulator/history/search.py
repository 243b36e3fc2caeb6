"""The Wing–Gong–Lowe search behind ``check_linearizable``: one part (key) at a time.

Wing & Gong (1993) as improved by Lowe (2017, "Testing for linearizability") and implemented by
Porcupine (Athalye): call and return entries sorted by time in a doubly linked list; depth-first,
a call entry whose operation the model accepts in the current state is *lifted* (removed with its
return entry) and pushed on a stack; reaching a return entry means that operation can no longer be
placed, so the search backtracks (unlifts). A cache of (set of linearized operations, state) prunes
configurations already explored. The search succeeds once every definite operation is linearized
(indeterminate ones left over are omitted: taking effect after everything else is never).

Two searches share this frame. ``GenericPart`` calls any ``Model``'s ``step`` and uses only
model-free pruning: an operation that leaves the state unchanged is taken alone (if any order works,
one with it next works: it changes nothing and everything that must precede it is placed), and an
indeterminate one that changes nothing is never placed. ``RegisterPart`` is the fast path for the
register models, with values interned to small ints and register-specific pruning (``_search``).

The linearized set is a 128-bit Zobrist fingerprint (XOR of a random key per operation, O(1) per
step) instead of an n-bit int: an exact bitset costs O(n) memory per cache entry, gigabytes at
50,000 operations on one key. A false cache hit needs two sets with equal fingerprints: with N
entries, probability below N^2 / 2^129 (< 1e-25 for N = 1e6). TLC fingerprints states likewise.

Each search also reports the latest return entry it ever stopped at (``blocked``): when a history
is not linearizable, its truncation there is (almost always) the shortest that is not, which lets
the shrinker start from one search instead of a binary search (see linearizable.py).
"""

from __future__ import annotations

import time as _time
from collections import defaultdict
from typing import Any

import numpy as np

from .models import Input, Model, Output, RegisterModel
from .ops import INF, Op, freeze

READ, WRITE, CAS, FCAS = 0, 1, 2, 3  # FCAS: a failed cas kept as information (value != expected)
CHECK_EVERY = 1 << 13  # steps between clock checks: cheap, and well under 10 ms apart
_INFO = Output("info", None)


class SearchTimeout(Exception):
    pass


def _zobrist(n: int) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence(0x5B1A17B4A1))  # fixed: same keys every run
    w = rng.integers(0, 2**64, size=(n, 2), dtype=np.uint64).tolist()
    return [(a << 64) | b for a, b in w]


class _Entries:
    """The time-ordered call/return list of operations ``sel`` with latest effect times ``ends``."""

    def __init__(self, invoke: list[float], sel: list[int], ends: list[float]) -> None:
        n = len(sel)
        ev = [(invoke[j], 0, i) for i, j in enumerate(sel)]
        ev += [(ends[i], 1, i) for i in range(n) if ends[i] != INF]
        ev.sort()
        size = len(ev)
        self.size = size
        # entries 1..size; 0 is the head sentinel, size+1 the tail sentinel
        self.nxt = list(range(1, size + 2)) + [size + 1]
        self.prv = [0] + list(range(0, size + 1))
        self.is_call = [False] * (size + 2)
        self.ent_op = [0] * (size + 2)
        self.ret_of = [-1] * (size + 2)
        self.due = [float(size + 1)] * n  # position of the op's return entry (after everything if none)
        call_ent = [0] * n
        for e, (_, typ, i) in enumerate(ev, 1):
            self.ent_op[e] = i
            if typ == 0:
                self.is_call[e] = True
                call_ent[i] = e
            else:
                self.ret_of[call_ent[i]] = e
                self.due[i] = float(e)

    def lift(self, e: int) -> int:
        """Unlink call entry ``e`` and its return entry (the op takes effect now); 1 if it had a
        return entry (a definite op is settled), else 0."""
        nxt, prv = self.nxt, self.prv
        p, q = prv[e], nxt[e]
        nxt[p] = q
        prv[q] = p
        r = self.ret_of[e]
        if r < 0:
            return 0
        p, q = prv[r], nxt[r]
        nxt[p] = q
        prv[q] = p
        return 1

    def unlift(self, e: int) -> int:
        """Undo :meth:`lift` of ``e`` (the last lifted entry): relink its return entry, then the call;
        the same 1 or 0 as the lift returned."""
        nxt, prv = self.nxt, self.prv
        r = self.ret_of[e]
        if r >= 0:
            nxt[prv[r]] = r
            prv[nxt[r]] = r
        nxt[prv[e]] = e
        prv[nxt[e]] = e
        return 1 if r >= 0 else 0


class Part:
    """One part's operations, ready to search; ``is_ok[i]``: definite (must take effect inside its
    interval); ``quiet[i]``: changes no state (dropped when open at a truncation)."""

    ops: list[Op]
    is_ok: list[bool]
    quiet: list[bool]
    states: int = 0
    bound: int = -1  # after a failed search: an op whose return bounds the shortest failing cut (-1: none)

    def ends(self) -> list[float]:
        return [op.complete_time if ok else INF for op, ok in zip(self.ops, self.is_ok)]

    def search(self, sel: list[int], ends: list[float], deadline: float | None,
               max_steps: int | None) -> tuple[bool, int, int]:
        """(linearizable, states cached, index into sel of the latest blocking op or -1)."""
        raise NotImplementedError

    def removal(self, alive: set[int], want: list[int]) -> set[int]:
        raise NotImplementedError


def _mask(max_steps: int | None) -> int:
    """Check the clock and step budget every 2^k steps: CHECK_EVERY, or finer for a small budget."""
    every = CHECK_EVERY
    while max_steps is not None and every > 256 and every * 4 > max_steps:
        every //= 2
    return every - 1


def _tick(steps: int, deadline: float | None, limit: int) -> None:
    if deadline is not None and _time.perf_counter() > deadline:
        raise SearchTimeout
    if 0 <= limit < steps:
        raise SearchTimeout


class GenericPart(Part):
    """Any model: ``step`` is called for each candidate; states must be hashable."""

    def __init__(self, ops: list[Op], model: Model) -> None:
        self.ops, self.model = ops, model
        self.inputs = [Input(op.f, freeze(op.key), freeze(op.value)) for op in ops]
        self.outputs = [Output(op.type, None if op.type == "info" else freeze(op.result)) for op in ops]
        self.is_ok = [op.type == "ok" or op.type == "fail" for op in ops]  # fails here are kept ones
        self.quiet = [model.read_only(x) for x in self.inputs]
        self.settled = [q or model.idempotent(x) for q, x in zip(self.quiet, self.inputs)]
        self.zob = _zobrist(len(ops))
        self.invoke = [op.invoke_time for op in ops]

    def removal(self, alive: set[int], want: list[int]) -> set[int]:
        return self.model.removable(self.ops, alive, want)

    def search(self, sel, ends, deadline, max_steps):
        n = len(sel)
        L = _Entries(self.invoke, sel, ends)
        nxt, is_call, ent_op, due = L.nxt, L.is_call, L.ent_op, L.due
        step = self.model.step
        inp = [self.inputs[j] for j in sel]
        ok = [ends[i] != INF for i in range(n)]
        out = [self.outputs[j] if ok[i] else _INFO for i, j in enumerate(sel)]
        zob = [self.zob[j] for j in sel]
        settled = [self.settled[j] for j in sel]
        remaining = sum(ok)
        blocked = 0
        if not remaining:
            return True, 1, -1
        state, fp = self.model.init(), 0
        cache = {(0, state)}
        steps = 0
        limit = max_steps if max_steps is not None else -1
        mask = _mask(max_steps)

        def expand() -> list:
            """A frame: [candidates (entry, new state), next index, lifted entry, state, fingerprint]."""
            nonlocal blocked
            e = nxt[0]
            cands = []
            while is_call[e]:
                i = ent_op[e]
                good, ns = step(state, inp[i], out[i])
                if good:
                    if ns == state:
                        # an ok op that changes nothing now and ever after (a read; a set's add of a
                        # member) can go first. A write that happens to leave this state alone (put v
                        # over v) cannot: placed later it may undo another write. An info op that
                        # changes nothing now is as good as never applied, which stays possible.
                        if ok[i] and settled[i]:
                            return [[(e, ns)], 0, -1, state, fp]
                        if ok[i]:
                            cands.append((due[i], e, ns))
                    else:
                        cands.append((due[i], e, ns))
                e = nxt[e]
            if e > blocked and e <= L.size:
                blocked = e
            cands.sort(key=lambda c: c[0])
            return [[(c[1], c[2]) for c in cands], 0, -1, state, fp]

        stack = [expand()]
        while True:
            steps += 1
            if not steps & mask:
                _tick(steps, deadline, limit)
            top = stack[-1]
            lifted = top[2]
            if lifted >= 0:  # undo this frame's previous choice
                remaining += L.unlift(lifted)
                state, fp = top[3], top[4]
                top[2] = -1
            cands = top[0]
            j = top[1]
            while j < len(cands):
                e, ns = cands[j]
                j += 1
                nfp = fp ^ zob[ent_op[e]]
                ck = (nfp, ns)
                if ck not in cache:
                    cache.add(ck)
                    break
            else:
                stack.pop()
                if not stack:
                    return False, len(cache), sel[ent_op[blocked]] if blocked else -1
                continue
            top[1] = j
            top[2] = e
            state, fp = ns, nfp
            if L.lift(e):  # unlink the call entry and its return entry
                remaining -= 1
                if not remaining:
                    return True, len(cache), -1
            stack.append(expand())


class RegisterPart(Part):
    """The register fast path: values interned to small ints; see ``search`` for the pruning."""

    def __init__(self, ops: list[Op], model: RegisterModel) -> None:
        ids: dict[Any, int] = {}
        intern = lambda v: ids.setdefault(freeze(v), len(ids))  # noqa: E731
        self.init = intern(model.initial)
        self.ops = ops
        self.kind: list[int] = []
        self.a: list[int] = []
        self.b: list[int] = []
        for op in ops:
            k = {"read": READ, "write": WRITE, "cas": CAS}[op.f]
            if k == READ:
                self.a.append(intern(op.result)); self.b.append(-1)  # noqa: E702
            elif k == WRITE:
                self.a.append(intern(op.value)); self.b.append(-1)  # noqa: E702
            else:
                if not isinstance(op.value, (list, tuple)) or len(op.value) != 2:
                    raise ValueError(f"cas at event {op.index} needs value [expected, new], got {op.value!r}")
                self.a.append(intern(op.value[0])); self.b.append(intern(op.value[1]))  # noqa: E702
                if op.type == "fail":
                    k = FCAS
            self.kind.append(k)
        self.is_ok = [op.type in ("ok", "fail") for op in ops]
        self.quiet = [k in (READ, FCAS) for k in self.kind]
        self.zob = _zobrist(len(ops))
        self.invoke = [op.invoke_time for op in ops]
        self.reads_of: dict[int, list[int]] = defaultdict(list)
        self.cas_expecting: dict[int, list[int]] = defaultdict(list)
        self.fcas = [i for i, k in enumerate(self.kind) if k == FCAS]
        for i, k in enumerate(self.kind):
            if k == READ:
                self.reads_of[self.a[i]].append(i)
            elif k == CAS:
                self.cas_expecting[self.a[i]].append(i)

    def removal(self, alive: set[int], want: list[int]) -> set[int]:
        """Reads and failed cas freely; a write/cas with all reads of the value it wrote (and every
        failed cas, whose legality the changed states could break), unless a remaining cas
        expects that value."""
        kind = self.kind
        drop = {i for i in want if kind[i] in (READ, FCAS)}
        for w in want:
            if kind[w] in (READ, FCAS):
                continue
            v = self.a[w] if kind[w] == WRITE else self.b[w]
            if any(i in alive and i != w for i in self.cas_expecting.get(v, ())):
                continue
            drop.add(w)
            drop.update(i for i in self.reads_of.get(v, ()) if i in alive)
            drop.update(i for i in self.fcas if i in alive)
        return drop

    def _prune(self, sel: list[int], ends: list[float]) -> tuple[list[int], list[float]]:
        """Drop indeterminate writes and cas whose value no operation reads or expects: rule (4)
        would never place them, but left in the list they sit before every return entry and make
        each expansion scan them (quadratic time on long histories with timeouts)."""
        kind, a, b = self.kind, self.a, self.b
        if any(kind[j] == FCAS for j in sel):
            return sel, ends  # a failed cas may need any write that moves the value away
        needed = {a[j] for j, e in zip(sel, ends) if kind[j] == CAS or (kind[j] == READ and e != INF)}
        keep = [x for x, (j, e) in enumerate(zip(sel, ends))
                if e != INF or kind[j] == READ or (a[j] if kind[j] == WRITE else b[j]) in needed]
        if len(keep) == len(sel):
            return sel, ends
        return [sel[x] for x in keep], [ends[x] for x in keep]

    def _pools(self, sel: list[int], ends: list[float]) -> tuple[list[int], list[float], dict[int, list[int]]]:
        """Rule (5), with failed cas kept (else _prune dropped these ops): an info write (or info cas)
        whose value no read, cas or failed cas in ``sel`` names can only serve to move the state
        off a value some failed cas expects, into a value nothing ever sees. Such ops are
        interchangeable but for their invocation times (and, for a cas, the value it expects), and
        placing the earliest-invoked unused one is never worse than a later one (any placement of
        k of them maps onto the k earliest: the j-th point is after j invocations). So they are
        pooled by expected value (-1: a write) and ordered by invocation: kept out of the entry
        list, whose every expansion would otherwise scan them all (quadratic on long histories).
        Returns sel and ends reordered as (the rest, then each pool), and the pools as positions."""
        kind, a, b = self.kind, self.a, self.b
        if not any(kind[j] == FCAS for j in sel):
            return sel, ends, {}
        named = {a[j] for j, e in zip(sel, ends) if kind[j] != WRITE and (kind[j] != READ or e != INF)}
        rest, pooled = [], defaultdict(list)
        for x, (j, e) in enumerate(zip(sel, ends)):
            if e == INF and ((kind[j] == WRITE and a[j] not in named) or (kind[j] == CAS and b[j] not in named)):
                pooled[-1 if kind[j] == WRITE else a[j]].append(x)
            else:
                rest.append(x)
        if not pooled:
            return sel, ends, {}
        order = list(rest)
        pools: dict[int, list[int]] = {}
        for key, xs in pooled.items():
            xs.sort(key=lambda x: self.invoke[sel[x]])
            pools[key] = list(range(len(order), len(order) + len(xs)))
            order.extend(xs)
        return [sel[x] for x in order], [ends[x] for x in order], pools

    def search(self, sel, ends, deadline, max_steps):
        """Register-specific refinements keep the search linear on valid histories with many
        concurrent clients: (1) a read that matches the state (or a failed cas that does not) is
        taken alone, never as a choice (it changes nothing); (2) writes and cas are tried most
        urgent first: by the earliest return among the operation itself and the pending reads (or
        ok cas) that need the value it writes; (3) a write that overwrites a value some pending ok
        read (or ok cas) still needs, when no unplaced operation can write that value again, is a
        dead end and is skipped; (4) an info write or cas whose value no unplaced operation needs
        (no read or cas expects it; no failed cas waits for the current value to change) is never
        placed (placing it only hides the state); (5) of interchangeable info ops only the earliest
        unused one is tried (``_pools``); (6) likewise, once no unplaced operation names the value
        an info write (or info cas) writes, it can only move the state to a value nothing sees, as
        can every other such op (of a cas: with the same expected value): all are available from
        here on (their call entries precede the first return entry, and none has a return entry),
        so one stays a candidate and the others are unlinked until this frame is popped (counts of
        unplaced operations only fall deeper in the search). Without (6) such ops pile up at the
        head of the list (an info write whose value only a failed cas names: the failed cas is
        placed, the write never) and every expansion scans them: superlinear time on long
        histories; (7) an info cas expecting a value that is not the state and that no unplaced
        operation can write can never be placed in this frame's subtree (counts of writers only
        fall deeper), so it is unlinked likewise: left in, such cas (their expected value long
        overwritten) pile up at the head of the list, and the work per expansion grew with the
        history (5.0 entries scanned per operation at 50k operations, 6.6 at 200k; 5.0 with (7)).
        All seven only reorder branches or skip ones that provably
        cannot succeed (or that a tried branch dominates), so the search stays exhaustive."""
        sel, ends = self._prune(sel, ends)
        sel, ends, pools = self._pools(sel, ends)
        n = len(sel)
        n_main = n - sum(len(q) for q in pools.values())
        L = _Entries(self.invoke, sel[:n_main], ends[:n_main])
        nxt, prv, is_call, ent_op = L.nxt, L.prv, L.is_call, L.ent_op
        due = L.due + [float(L.size + 1)] * (n - n_main)
        # rule (5): pooled info ops (see _pools) sit outside the list; candidate ``pool_base + p`` is
        # pool p's earliest unplaced op, and ``ptr[p]`` how many of pool p are placed
        pool_base = L.size + 2
        pool_list = list(pools.values())
        pool_of = {key: p for p, key in enumerate(pools)}
        ptr = [0] * len(pool_list)
        inv = self.invoke
        kind = [self.kind[j] for j in sel]
        a = [self.a[j] for j in sel]
        b = [self.b[j] for j in sel]
        ok = [ends[i] != INF for i in range(n)]
        zob = [self.zob[j] for j in sel]
        remaining = sum(ok)
        if not remaining:
            return True, 1, -1
        nv = max(max(a), max(b), self.init) + 1
        rl = [0] * nv  # pending ok reads / ok cas that need each value
        wl = [0] * nv  # unplaced operations that can write each value
        cl = [0] * nv  # unplaced info cas expecting each value
        fl = [0] * nv  # unplaced failed cas expecting each value
        for i in range(n):
            k = kind[i]
            if k == FCAS:
                fl[a[i]] += 1
                continue
            if ok[i] and k != WRITE:
                rl[a[i]] += 1
            elif k == CAS:
                cl[a[i]] += 1
            if k == WRITE:
                wl[a[i]] += 1
            elif k == CAS:
                wl[b[i]] += 1
        state, fp = self.init, 0
        cache = {(0, state)}
        steps = 0
        limit = max_steps if max_steps is not None else -1
        mask = _mask(max_steps)
        blocked = 0
        # a branch cut by rule (3) dies, at the latest, when the last ok op needing the lost value
        # is due: the latest such entry bounds the shortest failing truncation from above
        last_need = [0] * nv
        for i in range(n):
            if ok[i] and kind[i] in (READ, CAS) and due[i] > last_need[a[i]]:
                last_need[a[i]] = int(due[i])
        bound = 0

        def expand() -> list:
            """A frame: [candidate call entries, next index, lifted entry, state, fingerprint,
            entries retired by rules (6) and (7) while expanding it, or None]."""
            nonlocal blocked
            e = nxt[0]
            need: dict[int, float] = {}
            writers = []
            retired: list[int] | None = None  # allocated only when rule (6) or (7) retires one
            kept: set[int] = set()
            while is_call[e]:
                i = ent_op[e]
                k = kind[i]
                if k == READ:
                    if a[i] == state:
                        return [(e,), 0, -1, state, fp, retired]
                    if due[i] < need.get(a[i], INF):
                        need[a[i]] = due[i]
                elif k == FCAS:
                    if a[i] != state:
                        return [(e,), 0, -1, state, fp, retired]
                else:
                    if not ok[i]:
                        if k == CAS and a[i] != state and wl[a[i]] == 0:
                            # rule (7): expects a value no unplaced op can write: never placeable
                            # in this frame's subtree (wl only falls deeper)
                            p, q = prv[e], nxt[e]
                            nxt[p] = q
                            prv[q] = p
                            if retired is None:
                                retired = []
                            retired.append(e)
                            e = q
                            continue
                        v = a[i] if k == WRITE else b[i]
                        if rl[v] == 0 and cl[v] == 0 and fl[v] == 0:
                            # rule (6): writes a value nothing unplaced names, now and in every
                            # descendant; such ops with the same expectation are interchangeable
                            c = -1 if k == WRITE else a[i]
                            if c in kept:
                                p, q = prv[e], nxt[e]
                                nxt[p] = q
                                prv[q] = p
                                if retired is None:
                                    retired = []
                                retired.append(e)
                                e = q
                                continue
                            kept.add(c)
                    if k == WRITE or a[i] == state:
                        writers.append(e)
                    elif ok[i] and due[i] < need.get(a[i], INF):
                        need[a[i]] = due[i]
                e = nxt[e]
            if e > blocked and e <= L.size:
                blocked = e
            if pool_list and fl[state]:
                t_stop = ends[ent_op[e]] if e <= L.size else INF
                for p in (pool_of.get(-1), pool_of.get(state)):
                    if p is not None and ptr[p] < len(pool_list[p]) and inv[sel[pool_list[p][ptr[p]]]] <= t_stop:
                        writers.append(pool_base + p)
            if len(writers) > 1:
                def urgency(e: int) -> float:
                    i = ent_op[e] if e < pool_base else pool_list[e - pool_base][ptr[e - pool_base]]
                    return min(due[i], need.get(a[i] if kind[i] == WRITE else b[i], INF))
                writers.sort(key=urgency)
            return [writers, 0, -1, state, fp, retired]

        stack = [expand()]
        while True:
            steps += 1
            if not steps & mask:
                _tick(steps, deadline, limit)
            top = stack[-1]
            lifted = top[2]
            if lifted >= 0:  # undo this frame's previous choice: unlift in reverse order of lifting
                if lifted >= pool_base:
                    ptr[lifted - pool_base] -= 1
                    i = pool_list[lifted - pool_base][ptr[lifted - pool_base]]
                else:
                    remaining += L.unlift(lifted)
                    i = ent_op[lifted]
                state, fp = top[3], top[4]
                top[2] = -1
                k = kind[i]
                if k == FCAS:
                    fl[a[i]] += 1
                else:
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
                i = ent_op[e] if e < pool_base else pool_list[e - pool_base][ptr[e - pool_base]]
                k = kind[i]
                ns = b[i] if k == CAS else (state if k == FCAS else a[i])
                # dead end: overwriting a value still needed that nothing left can write again
                if ns != state and wl[state] == 0 and rl[state] > (k == CAS and ok[i]):
                    if last_need[state] > bound:
                        bound = last_need[state]
                    continue
                # an indeterminate op whose value nothing unplaced needs is better omitted
                if not ok[i] and rl[ns] == 0 and cl[ns] == 0 and fl[state] == 0:
                    continue
                nfp = fp ^ zob[i]
                ck = (nfp, ns)
                if ck not in cache:
                    cache.add(ck)
                    break
            else:
                retired = stack.pop()[5]
                if retired:
                    for r in reversed(retired):  # relink what rules (6) and (7) retired, last first
                        nxt[prv[r]] = r
                        prv[nxt[r]] = r
                if not stack:
                    self.bound = sel[ent_op[bound]] if bound > blocked else -1
                    return False, len(cache), sel[ent_op[blocked]] if blocked else -1
                continue
            top[1] = j
            top[2] = e
            state, fp = ns, nfp
            if k == FCAS:
                fl[a[i]] -= 1
            else:
                if ok[i] and k != WRITE:
                    rl[a[i]] -= 1
                elif k == CAS:
                    cl[a[i]] -= 1
                if k == WRITE:
                    wl[a[i]] -= 1
                elif k == CAS:
                    wl[b[i]] -= 1
            if e >= pool_base:  # a pooled op: no entries to unlink, no return to account for
                ptr[e - pool_base] += 1
                stack.append(expand())
                continue
            if L.lift(e):  # unlink the call entry and its return entry
                remaining -= 1
                if not remaining:
                    return True, len(cache), -1
            stack.append(expand())


def make_part(ops: list[Op], model: Model) -> Part:
    """The fast paths for the built-in register, set, kv and queue models (unless a subclass changed
    ``step``; the set's only when its adds are unique, see set_part.py)."""
    if isinstance(model, RegisterModel) and type(model).step is RegisterModel.step:
        return RegisterPart(ops, model)
    from . import set_part  # here, not at the top: set_part builds on this module's Part
    if set_part.fits(ops, model):
        return set_part.SetPart(ops, model)
    from .models import KVModel, QueueModel
    if isinstance(model, KVModel) and type(model).step is KVModel.step:
        from .kv_part import KVPart
        return KVPart(ops, model)
    if isinstance(model, QueueModel) and type(model).step is QueueModel.step:
        from .queue_part import QueuePart
        return QueuePart(ops, model)
    return GenericPart(ops, model)
