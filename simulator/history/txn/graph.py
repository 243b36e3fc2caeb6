"""The transaction dependency graph and its cycles (Adya's DSG plus process and real-time order).

Edges are bit masks per ordered pair: ``WW`` (write-write: b installed the version after a's),
``WR`` (write-read: b read a's write), ``RW`` (read-write anti-dependency: a read a version b
overwrote), ``PROC`` (same process, a first) and ``RT`` (a completed before b was invoked). Cycles are
found as Elle does (Kingsbury & Alvaro, VLDB 2020, sec. 4): Tarjan's strongly connected components
first, then, inside each component, a breadth-first search from the head of a candidate edge back to
its tail, over (transaction, small state) pairs so that "exactly one rw edge", "no two rw edges
adjacent" and "at least one real-time edge" are part of the search, not a filter afterwards.
"""

from __future__ import annotations

from collections import deque

WW, WR, RW, PROC, RT = 1, 2, 4, 8, 16
DATA = WW | WR | RW
EDGE_NAMES = {WW: "ww", WR: "wr", RW: "rw", PROC: "process", RT: "realtime"}
_BITS = [[b for b in (WW, WR, RW, PROC, RT) if m & b] for m in range(32)]


class Graph:
    """Adjacency as one dict per transaction: ``out[a][b] = mask``; ``why[(a, b, bit)]`` keeps the
    first piece of evidence for each data edge (used only to explain a cycle)."""

    __slots__ = ("out", "why")

    def __init__(self, n: int) -> None:
        self.out: list[dict[int, int]] = [{} for _ in range(n)]
        self.why: dict[tuple[int, int, int], tuple] = {}

    def link(self, a: int, b: int, bit: int, why: tuple | None = None) -> None:
        if a == b:
            return  # Adya's graphs have no self-edges; a txn reading its own writes is checked apart
        d = self.out[a]
        d[b] = d.get(b, 0) | bit
        if why is not None and (a, b, bit) not in self.why:
            self.why[(a, b, bit)] = why

    def add_order_edges(self, txns, realtime: bool) -> None:
        """Process order and (optionally) real-time order, transitively reduced.

        Real time: sweep events in history order keeping a *frontier* of completed ok transactions
        not yet known to precede another completed one; an invocation links from the whole frontier;
        a completion removes its own predecessors from it. Every "a completed before b began" pair is
        then joined by a path, with O(n x concurrency) edges instead of O(n^2). Only ``ok``
        transactions precede anything: a ``fail`` never happened and an ``info`` may take effect late.
        """
        last_ok: dict = {}
        for t in txns:  # invocation order
            if t.type == "fail" or t.process is None:
                continue  # a transaction without a process has no process order
            prev = last_ok.get(t.process)
            if prev is not None:
                self.link(prev, t.id, PROC)
            if t.type == "ok":
                last_ok[t.process] = t.id
        if not realtime:
            return
        events = []
        for t in txns:
            if t.type == "fail":
                continue
            events.append((t.invoke_pos, 1, t.id))
            if t.type == "ok":
                events.append((t.complete_pos, 0, t.id))
        events.sort()
        frontier: set[int] = set()
        preds: dict[int, tuple[int, ...]] = {}
        for _, kind, i in events:
            if kind == 1:
                for p in frontier:
                    self.link(p, i, RT)
                preds[i] = tuple(frontier)
            else:
                frontier.difference_update(preds.pop(i, ()))
                frontier.add(i)


def tarjan(out: list[dict[int, int]], mask: int) -> list[list[int]]:
    """Strongly connected components with more than one member, over edges whose mask meets ``mask``.
    Iterative (no recursion limit); O(V + E)."""
    n = len(out)
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0 or not out[root]:
            continue
        work = [(root, iter(out[root].items()))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while work:
            v, it = work[-1]
            pushed = False
            for w, m in it:
                if not m & mask:
                    continue
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, iter(out[w].items())))
                    pushed = True
                    break
                if on[w] and index[w] < low[v]:
                    low[v] = index[w]
            if pushed:
                continue
            work.pop()
            if work and low[v] < low[work[-1][0]]:
                low[work[-1][0]] = low[v]
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(comp)
    return comps


# -- cycle searches ------------------------------------------------------------------------------------
# State bits carried along a path: RWSEEN (>= 2 rw edges counting the start edge), LASTRW (the edge
# just taken was rw), EXTRA (used the edge kind this layer requires: process or real-time).
RWSEEN, LASTRW, EXTRA = 1, 2, 4


class Search:
    """One anomaly's cycle shape: which edge starts it, which edges may follow, and when it closes."""

    def __init__(self, name: str, start: int, allowed: int, *, single_rw: bool = False,
                 nonadjacent: bool = False, two_rw: bool = False) -> None:
        self.name, self.start, self.allowed = name, start, allowed
        self.single_rw, self.nonadjacent, self.two_rw = single_rw, nonadjacent, two_rw

    def step(self, s: int, bit: int, need: int) -> int | None:
        if bit == RW:
            if self.single_rw or (self.nonadjacent and s & LASTRW):
                return None
            s = (s | RWSEEN | LASTRW)
        else:
            s &= ~LASTRW
        if bit & need:
            s |= EXTRA
        return s

    def accepts(self, s: int, need: int) -> bool:
        if need and not s & EXTRA:
            return False
        if self.two_rw or self.nonadjacent:
            if not s & RWSEEN:
                return False
        if self.nonadjacent and s & LASTRW:
            return False  # the closing edge would sit next to the starting rw edge
        return True


SEARCHES = (
    Search("G0", WW, WW),
    Search("G1c", WR, WW | WR),
    Search("G-single", RW, WW | WR, single_rw=True),
    Search("G-nonadjacent", RW, DATA, nonadjacent=True),
    Search("G2-item", RW, DATA, two_rw=True),
)


def shortest_cycle(g: Graph, comp_of: list[int], comp: int, members: list[int], search: Search, extra: int,
                   need: int, budget: int) -> tuple[list[tuple[int, int, int]] | None, int, bool]:
    """Shortest cycle of ``search``'s shape inside one component, trying every start edge until the
    budget of expanded states runs out. Returns (edges [(a, bit, b)...] or None, states spent, exhausted?)."""
    out = g.out
    allowed = search.allowed | extra
    best: list | None = None
    spent = 0
    s0_base = LASTRW if search.start == RW else 0
    for a in members:
        for b, m in out[a].items():
            if not m & search.start or comp_of[b] != comp:
                continue
            s0 = s0_base | (EXTRA if search.start & need else 0)
            parent: dict[tuple[int, int], tuple[int, int, int]] = {(b, s0): (-1, 0, 0)}
            queue = deque([(b, s0)])
            found = None
            while queue and found is None and spent <= budget:
                v, s = queue.popleft()
                spent += 1
                for w, wm in out[v].items():
                    if comp_of[w] != comp:
                        continue
                    for bit in _BITS[wm & allowed]:
                        s2 = search.step(s, bit, need)
                        if s2 is None:
                            continue
                        if w == a:
                            if search.accepts(s2, need):
                                found = (v, s, bit)
                                break
                            continue
                        if (w, s2) not in parent:
                            parent[(w, s2)] = (v, s, bit)
                            queue.append((w, s2))
                    if found:
                        break
            if found is not None:
                v, s, bit = found
                path = [(v, bit, a)]
                while (v, s) != (b, s0):
                    pv, ps, pbit = parent[(v, s)]
                    path.append((pv, pbit, v))
                    v, s = pv, ps
                path.append((a, search.start, b))
                path.reverse()
                if best is None or len(path) < len(best):
                    best = path
                if len(best) == 2:
                    return best, spent, False
            if spent > budget:
                return best, spent, True
    return best, spent, False


def any_cycle(g: Graph, comp_of: list[int], comp: int, members: list[int], mask: int) -> list[tuple[int, int, int]]:
    """Some shortest cycle through the component's first member (used when every typed search ran
    out of budget: a non-trivial component always holds a cycle)."""
    a = members[0]
    parent: dict[int, tuple[int, int]] = {}
    queue = deque([a])
    while queue:
        v = queue.popleft()
        for w, m in g.out[v].items():
            if comp_of[w] != comp or not m & mask:
                continue
            bit = next(b for b in (WW, WR, RW, PROC, RT) if m & mask & b)
            if w == a:
                path = [(v, bit, a)]
                while v != a:
                    pv, pbit = parent[v]
                    path.append((pv, pbit, v))
                    v = pv
                return path[::-1]
            if w not in parent:
                parent[w] = (v, bit)
                queue.append(w)
    raise AssertionError("a strongly connected component with no cycle")


def classify(path: list[tuple[int, int, int]]) -> str:
    """Adya's name for a cycle from its edge kinds (suffix -process / -realtime if it needs them)."""
    bits = [bit for _, bit, _ in path]
    rw = bits.count(RW)
    if rw == 0:
        base = "G1c" if WR in bits else "G0"
    elif rw == 1:
        base = "G-single"
    else:
        n = len(bits)
        adjacent = any(bits[i] == RW and bits[(i + 1) % n] == RW for i in range(n))
        base = "G2-item" if adjacent else "G-nonadjacent"
    if RT in bits:
        return base + "-realtime"
    if PROC in bits:
        return base + "-process"
    return base
