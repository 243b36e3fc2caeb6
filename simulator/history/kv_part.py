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
search's. The gets checked are those invoked (the frontier) and the next ``LOOKAHEAD`` ones in time
order: all are sound, and the nearest are the ones that settle an order soonest.

For a get, ``""`` and ``None`` (a get of a key never written) both mean the empty string, as in
``KVModel.step``. Values in our histories are unique (``"<i>"``), which makes a get's result name
the appends it saw; the rule does not rely on it (prefix tests are exact either way).
"""

from __future__ import annotations

from .models import KVModel
from .ops import INF, Op
from .search import GenericPart, Part, _Entries, _mask, _tick

GET, PUT, APPEND = 0, 1, 2
LOOKAHEAD = 64  # list entries scanned past the frontier for gets to check
SEP = "\x00"
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
        big = SEP + SEP.join(gets)
        self.seen = [True if k == GET or not self.poison_ok else
                     ((SEP + t) in big if k == PUT else t in big) for k, t in zip(self.kind, self.text)]
        # tokens: every write's value is "<...>" with no other "<" or ">", all distinct, initial "":
        # then a string is a unique sequence of writes, and each get names the writes it saw
        wv = [t for t, k in zip(self.text, self.kind) if k != GET]
        self.tokens = (model.initial == "" and len(set(wv)) == len(wv)
                       and all(len(t) >= 2 and t[0] == "<" and t[-1] == ">" and t.count("<") == 1
                               and t.count(">") == 1 for t in wv))
        self.saw: list[list[int]] = [[] for _ in ops]  # for an ok get: the writes its result names
        if self.tokens:
            writer = {t: i for i, (t, k) in enumerate(zip(self.text, self.kind)) if k != GET}
            for g, op in enumerate(ops):
                r = self.text[g]
                if op.f == "get" and op.type == "ok" and len(r) >= 2 and r[0] == "<" and r[-1] == ">":
                    self.saw[g] = [writer[t] for t in ("<" + x + ">" for x in r[1:-1].split("><")) if t in writer]
            self.writer = writer

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
        n = len(sel)
        L = _Entries(self.invoke, sel, ends)
        nxt, is_call, ent_op, due = L.nxt, L.is_call, L.ent_op, L.due
        kind = [self.kind[j] for j in sel]
        text = [self.text[j] for j in sel]
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
            # gets invoked soon after (their call entries past the first return entry)
            f, c = e, 0
            while f <= L.size and c < LOOKAHEAD:
                if is_call[f] and kind[ent_op[f]] == GET and ok[ent_op[f]]:
                    gets.append(ent_op[f])
                f = nxt[f]
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

