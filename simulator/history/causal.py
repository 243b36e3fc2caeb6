"""Causal consistency of a key-value history with unique written values (Ahamad et al., "Causal
memory", 1995; the reader-side check of COPS's causal+, Lloyd et al. SOSP 2011).

Causal order (happens-before) is the transitive closure of *session order* (a process's
operations in the order it issued them) and *reads-from* (a write precedes every read that
returns its value). A process's *causal past* after an operation is every write that precedes
it. A read of key ``k`` by process ``P`` is a **violation** when ``P``'s causal past already holds
a write ``u`` to ``k`` and the read returns the initial value (``None``) or a write that causally
precedes ``u``: the reader has seen an effect of ``u`` (or ``u`` itself) and then is shown a state
before it — e.g. a reply, then its post missing. Concurrent writes may be returned in any order.

Only ``ok`` reads are judged; a write that failed (``fail``) never happened, ``info`` or
unfinished writes may have: such a write enters its own session's past only once some read
returns it (it may never take effect, so it cannot oblige the session to see it). Each violation
comes with its *witness chain*: the operations from ``u`` to the read along session-order and
reads-from edges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import History
from .ops import Op, freeze, pair_ops
from .session import written_value


@dataclass
class CausalResult:
    valid: bool
    reads: int
    violations: list[dict] = field(default_factory=list)  # read, missing write, returned, chain

    def explain(self, limit: int = 3) -> str:
        if self.valid:
            return f"causally consistent ({self.reads} reads checked)"
        lines = [f"{len(self.violations)} causal violation(s) in {self.reads} reads"]
        for v in self.violations[:limit]:
            rd, u = v["read"], v["missing"]
            lines.append(f"- p{rd.process} read key {rd.key!r} and got {v['returned']!r}, but had already seen "
                         f"the write of {u.value!r} to it, via:")
            lines += [f"    key {o.key!r}: {o.describe()}" for o in v["chain"]]
        return "\n".join(lines)


def check_causal(history: History | Iterable[dict] | str | Path, max_witnesses: int = 20) -> CausalResult:
    """Check causal consistency (see the module docstring); at most ``max_witnesses`` chains built."""
    ops = [o for o in pair_ops(history) if o.f in ("read", "write", "cas")]
    writes: dict[tuple, Op] = {}
    for o in ops:
        if o.f in ("write", "cas") and o.type != "fail":
            writes[(freeze(o.key), written_value(o))] = o
    past_of: dict[int, frozenset] = {}  # write op index -> the writes causally before it
    ctx: dict = {}  # process -> set of (key, value) writes in its causal past
    bad: list[tuple[Op, tuple, tuple]] = []
    reads = 0
    for o in ops:  # invocation order is each process's session order
        if o.type == "fail":
            continue
        mine = ctx.setdefault(o.process, set())
        k = freeze(o.key)
        if o.f == "read":
            if o.type != "ok":
                continue
            reads += 1
            w = None if o.result is None else writes.get((k, freeze(o.result)))
            got = None if w is None else (k, freeze(o.result))
            for u in mine:  # u seen; the read returns a write before u (or the initial value)
                if u[0] == k and u != got and (w is None or got in past_of.get(writes[u].index, ())):
                    bad.append((o, u, None if w is None else (k, freeze(o.result))))
                    break
            if w is not None:
                mine |= past_of.get(w.index, frozenset())
                mine.add((k, freeze(o.result)))
        else:
            past_of[o.index] = frozenset(mine)
            if o.type == "ok":  # an info write may never happen: it binds its session only once read
                mine.add((k, written_value(o)))
    out = []
    for n, (rd, u, got) in enumerate(bad):
        chain = _chain(ops, writes[u], rd, writes) if n < max_witnesses else []
        out.append({"read": rd, "missing": writes[u], "returned": None if got is None else got[1], "chain": chain})
    return CausalResult(not out, reads, out)


def _chain(ops: list[Op], src: Op, dst: Op, writes: dict) -> list[Op]:
    """Shortest path src -> dst along session-order and reads-from edges (BFS)."""
    nxt: dict[int, Op] = {}
    last: dict = {}
    for o in ops:
        if o.type == "fail":
            continue
        if o.process in last:
            nxt[last[o.process].index] = o
        last[o.process] = o
    readers: dict[int, list[Op]] = {}
    for o in ops:
        if o.f == "read" and o.type == "ok" and o.result is not None:
            w = writes.get((freeze(o.key), freeze(o.result)))
            if w is not None:
                readers.setdefault(w.index, []).append(o)
    prev: dict[int, Op | None] = {src.index: None}
    q = deque([src])
    by_index = {o.index: o for o in ops}
    while q:
        o = q.popleft()
        if o.index == dst.index:
            path = [o]
            while prev[path[-1].index] is not None:
                path.append(prev[path[-1].index])
            return path[::-1]
        for m in ([nxt[o.index]] if o.index in nxt else []) + readers.get(o.index, []):
            if m.index not in prev:
                prev[m.index] = o
                q.append(m)
    return [src, by_index[dst.index]]
