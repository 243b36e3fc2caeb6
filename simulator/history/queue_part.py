"""The queue fast path: the WGL/Lowe search of search.py with FIFO-specific pruning, exact.

Scope: enqueued values unique within the part, and no indeterminate (``info``) dequeue among the
operations searched. Outside it (duplicate enqueued values; a timed-out dequeue, which also appears
whenever a truncation cuts an open dequeue while shrinking) the call goes to ``GenericPart``, so the
verdict is always the generic search's.

Why unique values help: Henzinger, Sezgin & Vafeiadis, "Aspect-oriented linearizability proofs"
(CONCUR 2013), show that a queue history with unique values is linearizable iff it has none of four
small violations: VFresh (a dequeue returns a value not enqueued before it), VRepet (a value
dequeued twice), VOrd (``enq x`` precedes ``enq y`` in real time but ``deq y`` precedes ``deq x``, or
``y`` is dequeued and ``x`` never is) and VWit (an empty dequeue while the queue is surely non-empty);
Emmi & Enea, "Sound, complete, and tractable linearizability monitoring for concurrent collections"
(POPL 2018), make the empty-dequeue case polynomial. We do not decide from those patterns directly:
we use the order facts behind VOrd to prune the search, which keeps the verdict a search result
(a linearization found, or every branch exhausted) and lets the shrinker reuse it unchanged:

(1) an ok dequeue returning the head (or returning empty on an empty queue) is taken alone: with
    unique values the head can leave only through it, and enqueues placed before it only touch the
    tail, so moving it first keeps any linearization legal;
(2) ``enq y`` (y dequeued by ``d``) may be placed only after every ``x`` whose ok dequeue completes
    before ``d`` is invoked has been enqueued (FIFO: ``x`` leaves first, so it entered first: VOrd);
(3) an ok ``enq y`` that no dequeue returns goes after every dequeued value (once in, it never leaves
    and blocks all behind it: VOrd's second half); values never dequeued are fingerprinted without
    their positions, as their order can never matter (no dequeue sees them);
(4) an info ``enq y`` that no dequeue returns is never placed (placing it only blocks the queue).
Candidate enqueues are tried most urgent first (earliest return of their dequeue). The state is the
queue, fingerprinted as a sum over its items of ``A[value] * B[position]`` modulo the prime
``2^127 - 1`` (distinct contents give distinct degree-2 polynomials: by Schwartz–Zippel a false match
has probability at most 2 / (2^127 - 1) per pair), with the 128-bit Zobrist set of search.py.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from .models import QueueModel
from .ops import INF, Op, freeze
from .search import GenericPart, Part, _Entries, _mask, _tick

_P = (1 << 127) - 1
ENQ, DEQ, DEQ_EMPTY = 0, 1, 2


def _keys(n: int, salt: int) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence([0x9E3779B9, salt]))  # fixed: same keys every run
    w = rng.integers(0, 2**63, size=(max(n, 1), 2), dtype=np.uint64).tolist()
    return [((a << 63) | b) % _P for a, b in w]


class QueuePart(Part):
    """A queue part: the fast search when enqueued values are unique, else ``GenericPart``."""

    def __init__(self, ops: list[Op], model: QueueModel) -> None:
        self.ops, self.model = ops, model
        self.generic = GenericPart(ops, model)
        self.is_ok, self.quiet = self.generic.is_ok, self.generic.quiet
        self.zob = self.generic.zob
        self.invoke = [op.invoke_time for op in ops]
        ids: dict[Any, int] = {}
        self.kind: list[int] = []
        self.val: list[int] = []
        enq_vals: list[Any] = []
        for op in ops:
            if op.f == "enqueue":
                enq_vals.append(freeze(op.value))
        self.unique = len(set(enq_vals)) == len(enq_vals)
        for op in ops:
            if op.f == "enqueue":
                self.kind.append(ENQ)
                self.val.append(ids.setdefault(freeze(op.value), len(ids)))
            elif op.type == "ok" and op.result is None:
                self.kind.append(DEQ_EMPTY)
                self.val.append(-1)
            else:
                self.kind.append(DEQ)
                self.val.append(-1 if op.type != "ok" else ids.setdefault(freeze(op.result), len(ids)))
        self.nvals = len(ids)
        self.enq_of: dict[int, list[int]] = {}
        self.deq_of: dict[int, list[int]] = {}
        for i, (k, v) in enumerate(zip(self.kind, self.val)):
            if k == ENQ:
                self.enq_of.setdefault(v, []).append(i)
            elif k == DEQ and ops[i].type == "ok":
                self.deq_of.setdefault(v, []).append(i)
        self.A = _keys(self.nvals, 1)
        self.B = _keys(len(ops) + 1, 2)

    def removal(self, alive: set[int], want: list[int]) -> set[int]:
        """``QueueModel.removable``'s rule (an enqueue with the ok dequeue that returned its value;
        an unreturned value only when no non-ok dequeue is alive; never an empty dequeue), with the
        operations indexed by value once instead of a scan of ``alive`` per wanted operation."""
        if not self.unique:
            return self.model.removable(self.ops, alive, want)
        ops, kind, val = self.ops, self.kind, self.val
        other_deq = any(kind[i] == DEQ and ops[i].type != "ok" for i in alive)
        drop: set[int] = set()
        for w in want:
            if kind[w] == DEQ_EMPTY or (kind[w] == DEQ and ops[w].type != "ok"):
                return set()
            v = val[w]
            enq = [i for i in self.enq_of.get(v, ()) if i in alive]
            deq = [i for i in self.deq_of.get(v, ()) if i in alive]
            if len(enq) != 1 or len(deq) > 1 or (not deq and other_deq):
                return set()
            drop.update(enq + deq)
        return drop

    def _generic(self, sel, ends, deadline, max_steps):
        r = self.generic.search(sel, ends, deadline, max_steps)
        self.states = self.generic.states
        return r

    def _fresh_or_repeated(self, sel: list[int], ends: list[float]) -> int | None:
        """VFresh or VRepet (Henzinger et al. 2013), which no linearization survives whatever the
        info operations did: an ok dequeue of a value that no enqueue in ``sel`` invoked before the
        dequeue completed, or two ok dequeues of one (uniquely enqueued) value. Returns the op (index
        into ``ops``) whose completion exposes it (the later of the two), or None."""
        kind, val = self.kind, self.val
        enq_at = {val[j]: self.invoke[j] for j in sel if kind[j] == ENQ}
        seen: dict[int, tuple[float, int]] = {}
        worst = None
        for j, e in zip(sel, ends):
            if kind[j] != DEQ or e == INF:
                continue
            v = val[j]
            if v not in enq_at or enq_at[v] > e:
                cand = (e, j)
            elif v in seen:
                cand = (max(e, seen[v][0]), j if e >= seen[v][0] else seen[v][1])
            else:
                seen[v] = (e, j)
                continue
            if worst is None or cand < worst:
                worst = cand
        return None if worst is None else worst[1]

    def search(self, sel, ends, deadline, max_steps):
        kind, val = self.kind, self.val
        if not self.unique:
            return self._generic(sel, ends, deadline, max_steps)
        bad = self._fresh_or_repeated(sel, ends)
        if bad is not None:
            return False, 1, bad
        if any(kind[j] == DEQ and e == INF for j, e in zip(sel, ends)):
            return self._generic(sel, ends, deadline, max_steps)
        nv = self.nvals
        deq_of = [-1] * nv  # position in sel of the ok dequeue returning each value
        for x, j in enumerate(sel):
            if kind[j] == DEQ and ends[x] != INF:
                deq_of[val[j]] = x
        # rule (4): drop info enqueues of values no dequeue returns
        keep = [x for x, j in enumerate(sel)
                if not (kind[j] == ENQ and ends[x] == INF and deq_of[val[j]] < 0)]
        if len(keep) < len(sel):
            sel = [sel[x] for x in keep]
            ends = [ends[x] for x in keep]
            deq_of = [-1] * nv
            for x, j in enumerate(sel):
                if kind[j] == DEQ:
                    deq_of[val[j]] = x
        n = len(sel)
        L = _Entries(self.invoke, sel, ends)
        nxt, is_call, ent_op, due = L.nxt, L.is_call, L.ent_op, L.due
        k_ = [kind[j] for j in sel]
        v_ = [val[j] for j in sel]
        zob = [self.zob[j] for j in sel]
        A, B = self.A, self.B
        ok = [e != INF for e in ends]
        remaining = sum(ok)
        if not remaining:
            return True, 1, -1
        # rule (2): dequeued values ranked by their dequeue's completion; need[y]: how many of the
        # first ranks must be enqueued before y may be
        deqs = sorted((ends[x], x) for x in range(n) if k_[x] == DEQ)
        rank = [-1] * nv
        for r, (_, x) in enumerate(deqs):
            rank[v_[x]] = r
        done_at = [t for t, _ in deqs]
        need = [0] * nv
        for y in range(nv):
            d = deq_of[y]
            if d >= 0:
                need[y] = bisect.bisect_left(done_at, self.invoke[sel[d]])
        n_deq = len(deqs)
        in_q = [False] * n_deq  # by rank: enqueued already
        urg = [INF] * n  # candidate order for enqueues
        for x in range(n):
            if k_[x] == ENQ:
                d = deq_of[v_[x]]
                urg[x] = due[d] if d >= 0 else float(L.size + 2) + due[x]

        queue: list[int] = []  # values, by position; head index below
        head = 0
        frontier = 0  # ranks 0..frontier-1 all enqueued
        qfp = 0  # sum of A[v] * B[pos] over the queue's dequeued values, + A[v] for the others
        fp = 0
        cache = {(0, 0, 0)}
        steps = 0
        limit = max_steps if max_steps is not None else -1
        mask = _mask(max_steps)
        blocked = 0

        def expand() -> list:
            """A frame: [candidate entries, next index, lifted entry, head, frontier, qfp, fp]."""
            nonlocal blocked
            e = nxt[0]
            cands = []
            hv = queue[head] if head < len(queue) else -1
            while is_call[e]:
                i = ent_op[e]
                k = k_[i]
                if k == DEQ:
                    if v_[i] == hv:
                        return [[e], 0, -1, head, frontier, qfp, fp]
                elif k == DEQ_EMPTY:
                    if hv < 0:
                        return [[e], 0, -1, head, frontier, qfp, fp]
                else:
                    y = v_[i]
                    r = rank[y]
                    if (frontier >= need[y]) if r >= 0 else (frontier >= n_deq):
                        cands.append(e)
                e = nxt[e]
            if e > blocked and e <= L.size:
                blocked = e
            if len(cands) > 1:
                cands.sort(key=lambda c: urg[ent_op[c]])
            return [cands, 0, -1, head, frontier, qfp, fp]

        stack = [expand()]
        while True:
            steps += 1
            if not steps & mask:
                _tick(steps, deadline, limit)
            top = stack[-1]
            lifted = top[2]
            if lifted >= 0:  # undo this frame's previous choice
                remaining += L.unlift(lifted)
                i = ent_op[lifted]
                if k_[i] == ENQ:
                    queue.pop()
                    if rank[v_[i]] >= 0:
                        in_q[rank[v_[i]]] = False
                head, frontier, qfp, fp = top[3], top[4], top[5], top[6]
                top[2] = -1
            cands = top[0]
            j = top[1]
            while j < len(cands):
                e = cands[j]
                j += 1
                i = ent_op[e]
                k = k_[i]
                nfp = fp ^ zob[i]
                if k == ENQ:
                    y = v_[i]
                    nq = (qfp + A[y] * B[len(queue)]) % _P if rank[y] >= 0 else (qfp + A[y]) % _P
                    nh = head
                elif k == DEQ:
                    nq = (qfp - A[v_[i]] * B[head]) % _P
                    nh = head + 1
                else:
                    nq, nh = qfp, head
                ck = (nfp, nq, nh)
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
            fp, qfp, head = nfp, nq, nh
            if k == ENQ:
                queue.append(y)
                r = rank[y]
                if r >= 0:
                    in_q[r] = True
                    while frontier < n_deq and in_q[frontier]:
                        frontier += 1
            if L.lift(e):  # unlink the call entry and its return entry
                remaining -= 1
                if not remaining:
                    return True, len(cache), -1
            stack.append(expand())
