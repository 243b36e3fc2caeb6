"""The kv fast path (Porcupine's get/put/append model): the WGL/Lowe search of search.py, pruned
by what the gets that must come later reveal. Exact for any string values; no fallback needed.

In the kv model (``KVModel``; Porcupine's ``models/kv.go``) the state of a key is a string; an
append extends it, a put replaces it, a get returns it. So from a state ``s`` every later state is
``s + (appended values)`` until a put ``p``, and ``value(p) + (appended values)`` after it: a later
get can return ``r`` only if ``r`` starts with ``s``, or with the value of a put still to be placed.
Each get therefore reveals the order of the appends it saw (Lowe 2017's search explores that order
blindly; with many concurrent appends on one key it is exponential). The pruning rule: an append
or put that leads to a state ``s'`` is a dead end when some unplaced ``ok`` get ``g`` (it must be
linearized after everything placed so far) has a result that neither starts with ``s'`` nor with
the value of another unplaced put (ok or info: either may still reset the string). The rule only
cuts branches that cannot succeed, so the search stays exhaustive and its verdict is the generic
search's. The gets checked are those invoked (the frontier) and the next ``LOOKAHEAD`` ok gets invoked
after it, however far in time: all are sound, and the nearest are the ones that settle an order soonest.

For a get, ``""`` and ``None`` (a get of a key never written) both mean the empty string, as in
``KVModel.step``. Values in our histories are unique (``"<i>"``), which makes a get's result name
the appends it saw; the rule does not rely on it (prefix tests are exact either way).
"""

from __future__ import annotations

import bisect
import re

from .models import KVModel
from .ops import INF, Op
from .search import GenericPart, Part, SearchTimeout, _Entries, _mask, _tick

GET, PUT, APPEND = 0, 1, 2
LOOKAHEAD = 64  # ok gets past the frontier checked
SEP = "\x00"
_RUN = re.compile(r"<[^<>]*>")  # a token: see KVPart.tokens
POISON = SEP + "poisoned" + SEP  # the state after an unseen write (see KVPart.search); no get returns it


class KVPart(Part):
    """A kv part (one key): the generic frame with the get-prefix pruning above."""

    def __init__(self, ops: list[Op], model: KVModel) -> None:
        self.ops, self.model = ops, model
        g = GenericPart(ops, model)
        self.is_ok, self.quiet, self.zob = g.is_ok, g.quiet, g.zob
        self.invoke = [op.invoke_time for op in ops]
        self.kind = [GET if op.f == "get" else (PUT if op.f == "put" else APPEND) for op in ops]
        self.text = [(str(op.result) if op.result is not None else "") if op.f == "get" else str(op.value)
                     for op in ops]
        self._seen_in: dict[int, list[int]] = {}
        # seen[i]: some ok get's result contains append i's value / starts with put i's value
        gets = [self.text[i] for i, op in enumerate(ops) if op.f == "get" and op.type == "ok"]
        self.poison_ok = not any(SEP in r for r in gets)
        # tokens: every write's value is "<...>" with no other "<" or ">", all distinct, initial "":
        # then a string is a unique sequence of writes, and each get names the writes it saw
        wv = [t for t, k in zip(self.text, self.kind) if k != GET]
        self.tokens = (model.initial == "" and len(set(wv)) == len(wv)
                       and all(len(t) >= 2 and t[0] == "<" and t[-1] == ">" and t.count("<") == 1
                               and t.count(">") == 1 for t in wv))
        if self.tokens and not any(SEP in t for t in wv):
            # a token occurs in a string iff it is one of the string's <...> runs: index the gets
            # containing each write once (removal's and seen's substring tests, in linear time)
            idx = {t: i for i, (t, k) in enumerate(zip(self.text, self.kind)) if k != GET}
            self._seen_in = {i: [] for i in idx.values()}
            first_of: set[int] = set()
            for g, (k, r) in enumerate(zip(self.kind, self.text)):
                if k != GET:
                    continue
                runs = _RUN.findall(r)
                for t in dict.fromkeys(runs):
                    if t in idx:
                        self._seen_in[idx[t]].append(g)
                if runs and r.startswith(runs[0]) and runs[0] in idx and ops[g].type == "ok":
                    first_of.add(idx[runs[0]])
            self.seen = [True if k == GET or not self.poison_ok else
                         (i in first_of if k == PUT else any(ops[g].type == "ok" for g in self._seen_in[i]))
                         for i, k in enumerate(self.kind)]
        else:
            big = SEP + SEP.join(gets)
            self.seen = [True if k == GET or not self.poison_ok else
                         ((SEP + t) in big if k == PUT else t in big) for k, t in zip(self.kind, self.text)]
        self.saw: list[list[int]] = [[] for _ in ops]  # for an ok get: the writes its result names
        if self.tokens:
            writer = {t: i for i, (t, k) in enumerate(zip(self.text, self.kind)) if k != GET}
            for g, op in enumerate(ops):
                r = self.text[g]
                if op.f == "get" and op.type == "ok" and len(r) >= 2 and r[0] == "<" and r[-1] == ">":
                    self.saw[g] = [writer[t] for t in ("<" + x + ">" for x in r[1:-1].split("><")) if t in writer]
            self.writer = writer
        # a get whose result is exactly the writes it names, in order (the real-time rule's gets)
        self.exact = (["".join(self.text[x] for x in w) == t for w, t in zip(self.saw, self.text)]
                      if self.tokens else [])

    def removal(self, alive: set[int], want: list[int]) -> set[int]:
        """``KVModel.removable``'s rule (a put/append with every get whose result contains its value),
        with the gets containing each value found once and kept, not rescanned per call."""
        drop: set[int] = set()
        for w in want:
            drop.add(w)
            if self.kind[w] != GET:
                if w not in self._seen_in:
                    v = self.text[w]
                    self._seen_in[w] = [i for i, k in enumerate(self.kind) if k == GET and v in self.text[i]]
                drop.update(i for i in self._seen_in[w] if i in alive)
        return drop

    def refute(self, sel: list[int], ends: list[float]) -> int:
        """The real-time rule (tokens only; Lowe 2017's search would find it only by exhausting every
        order of everything before): an ok get ``g`` whose result names exactly the writes ``saw[g]``
        is impossible (1) when it names a write invoked after ``g`` returned, or (2) when a write
        ``w`` returned before ``g`` was invoked and is not named, yet no put (ok or info) can fall
        between them (invoked no later than ``g``'s return and returning no earlier than ``w``'s
        invocation): with no put after ``w`` and before ``g``, the string ``g`` reads contains
        ``w``'s value (tokens are unique). Returns the op (index into ``ops``) of such a get that
        returns first, or -1. Counted, not scanned: with ``M(g)`` the latest return of a put
        invoked by ``g``'s return (+inf for an info put), (2) holds iff the ok writes with
        invocation after ``M(g)`` and return before ``g``'s invocation outnumber those ``g`` names.
        Ties count as concurrent, as in the entry list (calls sort before returns)."""
        if not self.tokens:
            return -1
        kind, inv, exact, saw = self.kind, self.invoke, self.exact, self.saw
        end = dict(zip(sel, ends))
        gets = sorted((ends[x], j) for x, j in enumerate(sel) if kind[j] == GET and ends[x] != INF and exact[j])
        if not gets:
            return -1
        puts = sorted((inv[j], end[j]) for j in sel if kind[j] == PUT)
        put_inv = [p[0] for p in puts]
        best = []  # best[k]: max return of puts[:k+1]
        m = -INF
        for _, e in puts:
            m = max(m, e)
            best.append(m)
        # ok writes by return time, their invocations ranked for a Fenwick tree (count invoked > M)
        writes = sorted((end[j], inv[j]) for j in sel if kind[j] != GET and end[j] != INF)
        ranks = sorted({w[1] for w in writes})
        tree = [0] * (len(ranks) + 1)
        added, k = 0, 0
        bad = [g for g_end, g in gets if any(w in end and inv[w] > g_end for w in saw[g])]  # (1)
        for _, g in sorted((inv[g], g) for _, g in gets):  # (2), by invocation: writes returned before it
            while k < len(writes) and writes[k][0] < inv[g]:
                r = bisect.bisect_left(ranks, writes[k][1]) + 1
                while r <= len(ranks):
                    tree[r] += 1
                    r += r & -r
                added += 1
                k += 1
            q = bisect.bisect_right(put_inv, end[g])
            M = best[q - 1] if q else -INF
            if M == INF:
                continue
            r = bisect.bisect_right(ranks, M)  # writes invoked at or before M: not counted
            below = 0
            while r > 0:
                below += tree[r]
                r -= r & -r
            window = added - below
            if window and window > sum(1 for w in set(saw[g]) if w in end and end[w] != INF
                                       and M < inv[w] and end[w] < inv[g]):
                bad.append(g)
        return min(bad, key=lambda x: end[x]) if bad else -1

    def order_cycle(self, sel: list[int], ends: list[float]) -> list[int]:
        """The order rule (tokens only): with unique tokens a string is a put's value (or "")
        followed by the appends placed after it, in placing order, so every ok get's result lists
        the writes it names in the order they were placed, and a write ``a`` that returned before
        ``b`` was invoked is placed first. Each exact ok get gives an edge from each named write to
        the next; real time gives ``a -> b`` (through a chain of return-time nodes, so linear in
        size: ``a -> C(a) -> ... -> C -> b`` with ``C`` the latest return before ``b``'s call, ties
        concurrent). A cycle means no placing order fits: a get listing ``b`` before ``a`` when
        ``a`` returned before ``b`` was invoked, or two gets listing two concurrent writes in
        opposite orders (or any longer chain of such). Only writes named by an ok get or ok
        themselves have outgoing edges, and both are placed in any linearization, so the rule is
        sound. Returns the gets with an edge inside the cycles' core (Kahn's algorithm leaves it),
        empty when acyclic."""
        if not self.tokens:
            return []
        kind, inv, exact = self.kind, self.invoke, self.exact
        end = dict(zip(sel, ends))
        writes = [j for j in sel if kind[j] != GET]
        node = {w: x for x, w in enumerate(writes)}
        done = sorted((end[w], w) for w in writes if end[w] != INF)
        done_end = [d[0] for d in done]
        nw = len(writes)
        succ: list[list[int]] = [[] for _ in range(nw + len(done))]
        for c, (_, w) in enumerate(done):
            succ[node[w]].append(nw + c)
            if c + 1 < len(done):
                succ[nw + c].append(nw + c + 1)
        for w in writes:
            c = bisect.bisect_left(done_end, inv[w])
            if c:
                succ[nw + c - 1].append(node[w])
        by_get: list[tuple[int, list[int]]] = []
        for x, g in enumerate(sel):
            if kind[g] != GET or ends[x] == INF or not exact[g]:
                continue
            named = [node[w] for w in self.saw[g] if w in node]
            if len(named) > 1:
                by_get.append((g, named))
                for u, v in zip(named, named[1:]):
                    succ[u].append(v)
        if not by_get:
            return []
        indeg = [0] * len(succ)
        for out in succ:
            for v in out:
                indeg[v] += 1
        todo = [u for u, d in enumerate(indeg) if not d]
        left = len(succ)
        while todo:
            u = todo.pop()
            left -= 1
            for v in succ[u]:
                indeg[v] -= 1
                if not indeg[v]:
                    todo.append(v)
        if not left:
            return []
        return [g for g, named in by_get if any(indeg[u] and indeg[v] for u, v in zip(named, named[1:]))]

    def witness(self, sel: list[int], ends: list[float]) -> tuple[list[int], bool] | None:
        """For the shrinker (linearizable.py): when ``refute`` finds a get ``g``, the few operations
        that already fail, and whether they are proven minimal (no single ``removal`` leaves a
        proof): ``g``, the writes it names and, for (2), one write it misses (no put of ``sel`` can
        erase it, so none is needed). None when ``refute`` finds none."""
        g = self.refute(sel, ends)
        end = dict(zip(sel, ends))
        if g < 0:
            cyc = self.order_cycle(sel, ends)
            if not cyc:
                return None
            # the gets on the cycles and the writes they name (real-time links need no more ops):
            # a proof, not proven minimal (the shrinker's removal goes on from it)
            return sorted({w for c in cyc for w in self.saw[c] if w in end} | set(cyc)), False
        named = {w for w in self.saw[g] if w in end}
        found = sorted(named | {g})
        if any(self.invoke[x] > end[g] for x in named):  # (1): minimal, as below
            return found, True
        # (2): add one unerased write ``miss`` it misses
        m = max((end[p] for p in sel if self.kind[p] == PUT and self.invoke[p] <= end[g]), default=-INF)
        miss = next(x for x in sel if self.kind[x] != GET and x not in named and end[x] != INF
                    and m < self.invoke[x] and end[x] < self.invoke[g])
        # minimal iff ``found`` (without ``miss``) is linearizable: removing ``g`` or a write it
        # names (with ``g``: ``removal``) leaves only writes, always linearizable
        try:
            minimal = self.search(found, [end[x] for x in found], None, 200_000)[0]
        except SearchTimeout:
            minimal = False
        return sorted(named | {g, miss}), minimal

    def search(self, sel, ends, deadline, max_steps):
        """Besides the prefix rule (module docstring): a write whose value no ok get of the part
        ever shows (an append in no result; a put starting none) leaves the string in a state no
        get can return until a put, whatever is appended after: all such states are one state,
        ``POISON``, which lets the cache merge the orders of unseen appends (else factorial when the
        search backtracks across them). An info write that no get shows is never placed: omitting it
        is as good (its placing only blocks every get until the next put)."""
        seen = self.seen
        if not all(seen[j] or e != INF for j, e in zip(sel, ends)):
            keep = [x for x, j in enumerate(sel) if seen[j] or ends[x] != INF]
            sel, ends = [sel[x] for x in keep], [ends[x] for x in keep]
        bad = self.refute(sel, ends)
        if bad >= 0:
            return False, 1, bad
        cyc = self.order_cycle(sel, ends)
        if cyc:
            end = dict(zip(sel, ends))
            return False, 1, min(cyc, key=lambda g: end[g])
        n = len(sel)
        L = _Entries(self.invoke, sel, ends)
        nxt, is_call, ent_op, due = L.nxt, L.is_call, L.ent_op, L.due
        kind = [self.kind[j] for j in sel]
        text = [self.text[j] for j in sel]
        # next_get[e]: the first call entry after entry e (in time order) of an ok get (L.size + 1: none)
        next_get = [L.size + 1] * (L.size + 2)
        for f in range(L.size, 0, -1):
            i = ent_op[f]
            next_get[f - 1] = f if is_call[f] and kind[i] == GET and ends[i] != INF else next_get[f]
        unseen = [not seen[j] for j in sel]
        # the put rule (tokens only): a write with an unplaced ok get that names it is "live"; a put
        # placed while some write is live erases it for good (its only writer is placed), so is a
        # dead end. obs_left[w]: unplaced ok gets naming w; live: placed writes with obs_left > 0
        pos = {j: x for x, j in enumerate(sel)}
        saw = [[pos[w] for w in self.saw[j] if w in pos] if ends[x] != INF else [] for x, j in enumerate(sel)]
        obs_left = [0] * n
        for x in range(n):
            for w in saw[x]:
                obs_left[w] += 1
        placed = [False] * n
        live = 0
        tokens = self.tokens
        # the base rule (tokens only): an append named by an unplaced ok get must be placed on that
        # get's base (the put its result starts with, or -1: the initial string), or a put erases it
        # before the get; base_of: that base (an op index) per append, from the gets in sel
        base_of: dict[int, int] = {}
        for x, j in enumerate(sel):
            if saw[x]:
                first = self.saw[j][0]
                b = first if self.kind[first] == PUT else -1
                for w in saw[x]:
                    if kind[w] == APPEND:
                        base_of.setdefault(w, b)
        ok = [ends[i] != INF for i in range(n)]
        zob = [self.zob[j] for j in sel]
        remaining = sum(ok)
        blocked = 0
        if not remaining:
            return True, 1, -1
        # escape[g]: unplaced puts whose value prefixes get g's result; puts_for[p]: those gets
        puts = [i for i in range(n) if kind[i] == PUT]
        escape = [0] * n
        puts_for: dict[int, list[int]] = {}
        if puts:
            by_val: dict[str, list[int]] = {}
            for p in puts:
                by_val.setdefault(text[p], []).append(p)
            lens = sorted({len(v) for v in by_val})
            for g in range(n):
                if kind[g] != GET or not ok[g]:
                    continue
                r = text[g]
                for ln in lens:
                    if ln > len(r):
                        break
                    for p in by_val.get(r[:ln], ()):
                        escape[g] += 1
                        puts_for.setdefault(p, []).append(g)
        state: str = self.model.initial
        fp = 0
        cache = {(0, state)}
        steps = 0
        limit = max_steps if max_steps is not None else -1
        mask = _mask(max_steps)

        def expand() -> list:
            """A frame: [candidates (entry, new state), next index, lifted entry, state, fingerprint]."""
            nonlocal blocked
            e = nxt[0]
            writers = []
            gets: list[int] = []
            while is_call[e]:
                i = ent_op[e]
                if kind[i] == GET:
                    if not ok[i] or text[i] == state:
                        return [[(e, state)], 0, -1, state, fp]
                    gets.append(i)
                else:
                    writers.append(e)
                e = nxt[e]
            if e > blocked and e <= L.size:
                blocked = e
            # the next LOOKAHEAD ok gets invoked after the first return entry, however far: their call
            # entries lie past it, so none is placed (an entry-count window missed a get invoked after
            # a burst of writes, and the search then tried every order of the burst)
            f, c = next_get[e], 0
            while f <= L.size and c < LOOKAHEAD:
                gets.append(ent_op[f])
                f = next_get[f]
                c += 1
            cands = []
            cur_base = -2
            if tokens:
                if state is POISON:
                    cur_base = -3
                elif state:
                    b = self.writer.get(state[:state.index(">") + 1], -1)
                    cur_base = b if b >= 0 and self.kind[b] == PUT else -1
                else:
                    cur_base = -1
            for e in writers:
                i = ent_op[e]
                if tokens:
                    if kind[i] == PUT:
                        if live:
                            continue
                    elif not unseen[i] and base_of.get(i, cur_base) != cur_base:
                        continue
                if unseen[i] or (state is POISON and kind[i] == APPEND):
                    ns = POISON
                else:
                    ns = text[i] if kind[i] == PUT else state + text[i]
                dead = False
                urgency = due[i]
                for g in gets:
                    r = text[g]
                    if r.startswith(ns):
                        if due[g] < urgency:  # a get that needs this value: try it first
                            urgency = due[g]
                    elif not escape[g]:  # (a put i prefixing r passes startswith)
                        dead = True
                        break
                if not dead:
                    cands.append((urgency, e, ns))
            cands.sort(key=lambda x: x[0])
            return [[(x[1], x[2]) for x in cands], 0, -1, state, fp]

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
                for g in puts_for.get(i, ()):
                    escape[g] += 1
                placed[i] = False
                if kind[i] == GET:
                    for w in saw[i]:
                        obs_left[w] += 1
                        if placed[w] and obs_left[w] == 1:
                            live += 1
                elif obs_left[i]:
                    live -= 1
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
            i = ent_op[e]
            for g in puts_for.get(i, ()):
                escape[g] -= 1
            placed[i] = True
            if kind[i] == GET:
                for w in saw[i]:
                    obs_left[w] -= 1
                    if placed[w] and obs_left[w] == 0:
                        live -= 1
            elif obs_left[i]:
                live += 1
            if L.lift(e):  # unlink the call entry and its return entry
                remaining -= 1
                if not remaining:
                    return True, len(cache), -1
            stack.append(expand())

