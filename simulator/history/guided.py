"""A WGL/Lowe search whose branches a model-specific *guide* chooses: the frame of search.py's
``GenericPart`` (time-ordered entry list, lift/unlift, fingerprinted cache of (linearized set,
state)), with the candidate list at each configuration built by a ``Guide`` that knows the model.

The guide may (a) take one candidate alone when placing it next is never worse than any other
order (an exchange argument, stated where each guide does it), and (b) leave out candidates that
provably cannot lead to a linearization, or that a kept branch dominates. Both keep the search
exhaustive, so a "not linearizable" from it is as much a proof as the generic search's. Used by
kv_part.py and queue_part.py.
"""

from __future__ import annotations

from typing import Any

from .ops import INF
from .search import _Entries, _mask, _tick


class Guide:
    """Per search: ``init()`` the state; ``options(state, cands)`` with ``cands`` the placeable
    (entry, local index) pairs, in list order, returns the (entry, new state) branches to try, in
    order; ``place(i)`` / ``unplace(i)`` follow lifts and unlifts (last in, first out)."""

    def init(self) -> Any:
        raise NotImplementedError

    def options(self, state: Any, cands: list[tuple[int, int]]) -> list[tuple[int, Any]]:
        raise NotImplementedError

    def place(self, i: int) -> None:
        pass

    def unplace(self, i: int) -> None:
        pass


def guided_search(invoke: list[float], zobs: list[int], sel: list[int], ends: list[float], guide: Guide,
                  deadline: float | None, max_steps: int | None) -> tuple[bool, int, int]:
    """(linearizable, states cached, op index of the latest return entry the search stopped at or -1)."""
    L = _Entries(invoke, sel, ends)
    nxt, prv, is_call, ent_op, ret_of = L.nxt, L.prv, L.is_call, L.ent_op, L.ret_of
    zob = [zobs[j] for j in sel]
    remaining = sum(e != INF for e in ends)
    if not remaining:
        return True, 1, -1
    state, fp = guide.init(), 0
    cache = {(0, state)}
    steps, limit, mask = 0, (max_steps if max_steps is not None else -1), _mask(max_steps)
    blocked = 0

    def expand() -> list:
        """A frame: [branches (entry, new state), next index, lifted entry, state, fingerprint]."""
        nonlocal blocked
        e = nxt[0]
        cands = []
        while is_call[e]:
            cands.append((e, ent_op[e]))
            e = nxt[e]
        if e > blocked and e <= L.size:
            blocked = e
        return [guide.options(state, cands), 0, -1, state, fp]

    stack = [expand()]
    while True:
        steps += 1
        if not steps & mask:
            _tick(steps, deadline, limit)
        top = stack[-1]
        lifted = top[2]
        if lifted >= 0:  # undo this frame's previous choice
            r = ret_of[lifted]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                remaining += 1
            nxt[prv[lifted]] = lifted
            prv[nxt[lifted]] = lifted
            guide.unplace(ent_op[lifted])
            state, fp = top[3], top[4]
            top[2] = -1
        cands = top[0]
        j = top[1]
        while j < len(cands):
            e, ns = cands[j]
            j += 1
            nfp = fp ^ zob[ent_op[e]]
            if (nfp, ns) not in cache:
                cache.add((nfp, ns))
                break
        else:
            stack.pop()
            if not stack:
                return False, len(cache), sel[ent_op[blocked]] if blocked else -1
            continue
        top[1] = j
        top[2] = e
        state, fp = ns, nfp
        guide.place(ent_op[e])
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
                return True, len(cache), -1
        stack.append(expand())
