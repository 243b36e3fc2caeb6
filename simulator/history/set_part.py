"""The ``set`` fast path: a direct, polynomial check for grow-only sets with unique adds.

General linearizability checking is NP-complete (Gibbons & Korach 1997, "Testing shared memories",
SIAM J. Comput. 26(4)); it becomes polynomial when every inserted value is distinct: Emmi & Enea
(POPL 2018, "Sound, complete, and tractable linearizability monitoring for concurrent
collections") reduce collections with distinct values to Horn satisfiability, and Lee & Mathur
(2024, "Efficient decrease-and-conquer linearizability monitoring") give log-linear monitors for
such *unambiguous* set histories. Those sets answer ``contains``; our ``read`` returns the whole
set, which makes the structure simpler still. The characterisation used here, with its proof:

Setting: one part's ``add x`` operations, each ``x`` added at most once and not in the initial set
``S0``; ``ok`` reads each returning a set ``V``; an ``info`` add may take effect at any instant after
its invocation or never (an ``info`` read constrains nothing and is ignored). Real-time order:
``p`` precedes ``q`` when ``p`` completes strictly before ``q`` is invoked (equal times are
concurrent, as in search.py).

Claim. The part is linearizable iff (1) every read's ``V`` contains ``S0`` and every element of
``V - S0`` has an add; (2) the distinct read values form a chain ``V1 < V2 < ... < Vk`` under strict
inclusion; and (3) the *blocks* ``R0, A1, R1, A2, R2, ..., Ak, Rk, A(k+1)`` respect real time:
no operation in a later block precedes one in an earlier block. Here ``Rj`` holds the reads
returning ``Vj`` (``R0``: those returning ``S0``), ``Aj`` the adds of ``Vj - V(j-1)`` (``V0 = S0``),
and ``A(k+1)`` the ``ok`` adds of elements no read returned (``info`` ones of those are omitted).

Necessity: in any linearization the state before a read is ``S0`` plus the elements whose adds
precede it, so that read must see a superset of ``S0`` made of added elements (1), and since the
state only grows, the reads' values are ordered by inclusion (2). A read returning ``Vj`` follows
every add of ``Vj - S0`` and precedes every other add (its element would be visible): so every op
in ``Aj`` precedes every op in ``Rj``, and every op in ``Rj`` precedes every op in ``A(j+1)``
(and, since ``Rj`` is not empty, ``A(j+1)`` follows ``Aj``); an ``ok`` add no read saw follows all
reads. The block order is forced, and a linearization respects real time, hence (3); an ``info``
add of an element some read returned must take effect, in its block.

Sufficiency: order the blocks as listed, and inside each block by any linear extension of real
time (an interval order: acyclic). By (3) and the extensions the whole sequence respects real
time; each read of ``Vj`` then sees ``S0`` plus exactly the adds of ``A1 .. Aj``, i.e. ``Vj``;
adds are always legal. So it is a linearization.

Condition (3) is one pass: for each cut between blocks, the latest invocation before the cut
must not exceed the earliest completion after it. The check costs O(n log n + the size of the
distinct read values). Parts with a repeated add, an add of an initial element, or a read that is
not a collection do not meet the setting: ``set_part`` returns None and the generic search
(search.GenericPart) decides them. Never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import SetModel
from .ops import INF, Op, freeze
from .search import Part


def _read_set(v: Any) -> frozenset:
    """A read's value as a set of frozen elements. ``frozenset`` straight from the list when its
    elements are hashable (the same set as freezing each: only lists and dicts change, and those
    are unhashable): freezing 20 million elements one by one took a minute at 10k ops on one key."""
    try:
        return frozenset(v or ())
    except TypeError:
        return frozenset(freeze(x) for x in v)


def _intern(ops: list[Op], model: SetModel):
    """(initial, add flag per op, element per add, read value per op) or None outside the setting."""
    initial = model.initial
    is_add: list[bool] = []
    elem: list[Any] = []
    seen: list[frozenset] = []
    added: set[Any] = set()
    empty = frozenset()
    for op in ops:
        if op.f == "add":
            e = freeze(op.value)
            if e in added or e in initial:
                return None  # a repeated add (or of an initial element): not unambiguous
            added.add(e)
            is_add.append(True)
            elem.append(e)
            seen.append(empty)
        elif op.f == "read":
            is_add.append(False)
            elem.append(None)
            if op.type != "ok":
                seen.append(empty)
                continue
            if op.result is not None and not isinstance(op.result, (list, tuple)):
                return None  # not a collection: the generic search reports what the model says
            try:
                seen.append(_read_set(op.result))
            except TypeError:
                return None
        else:
            return None
    return initial, is_add, elem, seen


_last: list = [None, None]  # (ops, prepared) of the latest fits() that said yes: make_part builds next


def fits(ops: list[Op], model: Any) -> bool:
    """Whether SetPart decides this part: the built-in set model (``step`` not overridden) and the
    setting of the module docstring (unique adds, none of an initial element; reads of collections)."""
    if not (isinstance(model, SetModel) and type(model).step is SetModel.step):
        return False
    prepared = _intern(ops, model)
    _last[:] = [ops, prepared] if prepared is not None else [None, None]
    return prepared is not None


class SetPart(Part):
    """One part of a ``set`` history meeting the setting above; ``search`` is the direct check."""

    def __init__(self, ops: list[Op], model: SetModel) -> None:
        prepared = _last[1] if _last[0] is ops else _intern(ops, model)
        _last[:] = [None, None]
        if prepared is None:
            raise ValueError("SetPart needs unique adds (none of an initial element) and reads of "
                             "collections; check with fits(ops, model) first")
        self.ops, self.model = ops, model
        self.initial, self.is_add, self.elem, self.seen = prepared
        self.add_of = {e: i for i, e in enumerate(self.elem) if self.is_add[i]}
        self.is_ok = [op.type == "ok" or op.type == "fail" for op in ops]
        self.quiet = [op.f == "read" for op in ops]
        self.invoke = [op.invoke_time for op in ops]

    def removal(self, alive: set[int], want: Iterable[int]) -> set[int]:
        """As SetModel.removable (reads freely; an add with every read that returned its element),
        in one pass over the alive reads' precomputed sets for all wanted adds."""
        drop = set(want)
        xs = {self.elem[w] for w in drop if self.is_add[w]}
        if xs:
            seen, is_add = self.seen, self.is_add
            drop.update(r for r in alive if not is_add[r] and not xs.isdisjoint(seen[r]))
        return drop

    def _check(self, sel: list[int], ends: list[float]) -> tuple[bool, int, tuple]:
        """(linearizable, blocks, why): ``why`` names the failure for ``witness`` (op indices)."""
        is_add, elem, seen, inv = self.is_add, self.elem, self.seen, self.invoke
        reads: dict[frozenset, list[int]] = {}
        adds: list[int] = []
        for x, j in enumerate(sel):
            if is_add[j]:
                adds.append(x)
            elif ends[x] != INF:  # an ok read; one with an unknown outcome constrains nothing
                reads.setdefault(seen[j], []).append(x)
        chain = sorted(reads, key=len)
        s0 = self.initial
        prev = None
        for v in chain:  # (1) S0 in every value, (2) each value contains the one before
            if not s0 <= v:
                return False, 1, ("reads", sel[reads[v][0]])
            if prev is not None and not prev <= v:
                return False, 1, ("reads", sel[reads[prev][0]], sel[reads[v][0]])
            prev = v
        known = {elem[sel[x]] for x in adds} | s0
        if chain and not chain[-1] <= known:  # (1): values nest, so the first to fail is the witness's
            lo_c, hi_c = 0, len(chain) - 1
            while lo_c < hi_c:
                mid = (lo_c + hi_c) // 2
                if chain[mid] <= known:
                    lo_c = mid + 1
                else:
                    hi_c = mid
            return False, 1, ("reads", sel[reads[chain[hi_c]][0]])
        # (3): block 2j holds the reads of level j (level 0: S0), block 2j-1 the adds first seen at j
        level: dict[int, int] = {}
        lo = 1 if chain and chain[0] == s0 else 0
        prev = s0
        for j, v in enumerate(chain[lo:], 1):
            for e in v - prev:
                level[e] = j
            prev = v
        top = len(chain) - lo
        nb = 2 * top + 2
        max_inv = [-INF] * nb
        min_end = [INF] * nb
        arg_inv = [-1] * nb
        arg_end = [-1] * nb

        def place(b: int, x: int) -> None:
            j = sel[x]
            if inv[j] > max_inv[b]:
                max_inv[b], arg_inv[b] = inv[j], j
            if ends[x] < min_end[b]:
                min_end[b], arg_end[b] = ends[x], j

        for x in adds:
            lv = level.get(elem[sel[x]])
            if lv is not None:
                place(2 * lv - 1, x)
            elif ends[x] != INF:  # an info add no read saw is omitted (taking effect last is the same)
                place(2 * top + 1, x)
        rep = {}  # a read of each level: the witness of an add-add inversion needs one between them
        for c, v in enumerate(chain):
            b = 2 * (c + 1 - lo)
            rep[b] = sel[reads[v][0]]
            for x in reads[v]:
                place(b, x)
        suf, suf_arg = [INF] * (nb + 1), [-1] * (nb + 1)
        for b in range(nb - 1, -1, -1):
            suf[b], suf_arg[b] = (min_end[b], arg_end[b]) if min_end[b] < suf[b + 1] else (suf[b + 1], suf_arg[b + 1])
        latest, q, bq = -INF, -1, -1
        for b in range(nb - 1):
            if max_inv[b] > latest:
                latest, q, bq = max_inv[b], arg_inv[b], b
            if suf[b + 1] < latest:  # an op of a later block completed before one of an earlier began
                p = suf_arg[b + 1]
                between = rep.get(bq + 1 if bq % 2 else bq + 2, -1)  # a read after q's block
                return False, nb, ("order", p, q, between)
        return True, nb, ()

    def search(self, sel, ends, deadline, max_steps):
        """The claim's three conditions: (linearizable, blocks, -1); the check has no search states
        (it reports its block count) and no blocking point (the shrinker bisects; each trial is cheap)."""
        self.bound = -1
        ok, nb, _ = self._check(sel, ends)
        return ok, nb, -1

    def witness(self, sel: list[int], ends: list[float]) -> tuple[list[int], bool] | None:
        """(a few operations of ``sel`` that fail alone and are a proof, whether they are proven
        minimal), or None if ``sel`` is linearizable. See the module docstring and ``_minimise``."""
        ok, _, why = self._check(sel, ends)
        if ok:
            return None
        is_add, add_of = self.is_add, self.add_of
        w: set[int] = set()
        if why[0] == "reads":
            w.update(why[1:])
        else:
            _, p, q, between = why
            w.update((p, q))
            if is_add[p] and is_add[q]:  # two adds out of order: a read sees q's, not p's
                w.add(between)
        alive = set(sel)
        for r in [i for i in w if i >= 0 and not is_add[i]]:
            w.update(add_of[e] for e in self.seen[r] if e in add_of and add_of[e] in alive)
        w.discard(-1)
        endmap = dict(zip(sel, ends, strict=True))
        return self._minimise(sorted(w), endmap)

    def _minimise(self, w: list[int], endmap: dict[int, float]) -> tuple[list[int], bool]:
        """Remove single removable operations (``removal``) while the rest still fails, until none
        can go: then ``w`` is minimal, proven by exact checks. One check per read, and one per
        class of adds that drop the same reads with them: if ``w`` minus those reads is
        linearizable, so is it minus any one add of the class too (that add's element is in
        none of the remaining reads: a removable drop). Adds in no read are checked one by one."""
        def fails(sub: list[int]) -> bool:
            return not self._check(sub, [endmap[i] for i in sub])[0]

        is_add, elem, seen = self.is_add, self.elem, self.seen
        while True:
            reads = [i for i in w if not is_add[i] and endmap[i] != INF]
            smaller = None
            for r in reads:
                sub = [i for i in w if i != r]
                if fails(sub):
                    smaller = sub
                    break
            if smaller is None:
                classes: dict[tuple, list[int]] = {}
                for x in w:
                    if is_add[x]:
                        classes.setdefault(tuple(r for r in reads if elem[x] in seen[r]), []).append(x)
                for drop, xs in classes.items():
                    base = [i for i in w if i not in drop]
                    if drop and not fails(base):
                        continue
                    smaller = next((sub for x in xs if fails(sub := [i for i in base if i != x])), None)
                    if smaller is not None:
                        break
            if smaller is None:
                return w, True
            w = smaller
