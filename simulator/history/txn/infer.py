"""Dependencies and non-cycle anomalies, per workload (Kingsbury & Alvaro, "Elle", VLDB 2020).

List-append (sec. 3-4 of the paper; elle.list-append): appends are unique, so every element names its
writer, and a read of a list is a *prefix of the key's version order*. The longest committed read of a
key gives that order; every other read must be a prefix of it (else ``incompatible-order``). Then
``ww``: the writer of element i precedes the writer of element i+1; ``wr``: the writer of a read's last
element precedes the reader; ``rw``: a reader of a prefix of length m precedes the writer of element m.
An append no committed read ever shows came after the last element anyone read (Elle's
``previously-appended-element``), which links it too.

Rw-register (elle.rw-register): writes are unique, so a read names its writer (``wr``). The version
order is only partly known: the initial state (``None``) precedes every write, and a transaction that
read v then wrote v' puts v before v' (writes follow reads). ``ww`` and ``rw`` follow each known pair.
"""

from __future__ import annotations

from collections import defaultdict

from .graph import PROC, RT, RW, WR, WW, Graph
from .parse import Txn, TxnInputError, _show

INIT = object()  # "the initial, empty state" as a version name


def _writers(txns: list[Txn], f_write: str) -> tuple[dict, dict]:
    """(key, value) -> writer id, and (writer, key) -> its final value; duplicates are bad input."""
    writer: dict = {}
    final: dict = {}
    for t in txns:
        for f, k, v in t.ops:
            if f != f_write:
                continue
            if f_write == "w" and v is None:
                raise TxnInputError(f"T{t.id} (event {t.invoke_pos}) writes None to {k!r}; None is the initial state")
            prev = writer.get((k, v))
            if prev is not None:
                raise TxnInputError(f"value {v!r} written to key {k!r} twice (T{prev} and T{t.id}, events "
                                    f"{txns[prev].invoke_pos} and {t.invoke_pos}); writes must be unique")
            writer[(k, v)] = t.id
            final[(t.id, k)] = v
    return writer, final


def _aborted_and_intermediate(txns, t: Txn, k, v, read: tuple | None, writer, final, add) -> int | None:
    """Common checks on a committed read that observed element/value ``v`` of key ``k``.
    Returns the writer id if it can be an edge source."""
    w = writer.get((k, v))
    shown = _show(read if read is not None else v)
    if w is None:
        add("garbage-read", [t.id], [f"T{t.id} read {k!r} = {shown}, but no transaction wrote {v!r} to {k!r}"])
        return None
    wt = txns[w]
    if wt.type == "fail":
        add("G1a", [t.id, w], [f"T{t.id} read {k!r} = {shown}, which includes {v!r}, written by T{w}, "
                               f"a transaction that failed (aborted)"])
        return None
    return w


def list_append(txns: list[Txn], g: Graph, add) -> None:
    writer, final = _writers(txns, "append")
    reads = defaultdict(list)  # k -> [(txn id, list)] every committed read
    ext = []  # (txn id, k, list): first read of k before the txn's own appends to k
    appenders = defaultdict(list)  # k -> [(txn id, v)] by ok txns, in order
    for t in txns:
        if t.type != "ok":
            continue
        expect: dict = {}  # k -> (known_full?, list)
        for f, k, v in t.ops:
            if f == "append":
                appenders[k].append((t.id, v))
                full, lst = expect.get(k, (False, []))
                expect[k] = (full, lst + [v])
                continue
            v = () if v is None else v
            if len(set(v)) != len(v):
                dup = sorted({x for x in v if v.count(x) > 1}, key=repr)
                add("duplicate-elements", [t.id], [f"T{t.id} read {k!r} = {_show(v)}: {dup} appear more than once"])
            if k in expect:
                full, lst = expect[k]
                ok = list(v) == lst if full else (len(v) >= len(lst) and list(v[len(v) - len(lst):]) == lst)
                if not ok:
                    want = _show(tuple(lst)) if full else "a list ending in " + _show(tuple(lst))
                    add("internal", [t.id], [f"T{t.id} read {k!r} = {_show(v)} but its own earlier reads and "
                                             f"appends say it should be {want}"])
            else:
                ext.append((t.id, k, v))
            expect[k] = (True, list(v))
            reads[k].append((t.id, v))
    # version order: the longest committed read of each key; all others must be prefixes of it
    order: dict = {}
    for k, rs in reads.items():
        longest = max(rs, key=lambda r: len(r[1]))
        lo = longest[1]
        order[k] = lo
        bad = 0
        for tid, v in rs:
            if lo[:len(v)] != v and bad < 3:
                bad += 1
                add("incompatible-order", [tid, longest[0]],
                    [f"T{tid} read {k!r} = {_show(v)} but T{longest[0]} read {k!r} = {_show(lo)}: the first is "
                     f"not a prefix of the second, so no single order of appends explains both"])
    index = {k: {v: i for i, v in reversed(list(enumerate(lo)))} for k, lo in order.items()}
    # aborted and intermediate reads, wr edges
    for t in txns:
        if t.type != "ok":
            continue
        for f, k, v in t.ops:
            if f != "r" or not v:
                continue
            for e in v:
                w = writer.get((k, e))
                if w is None or txns[w].type == "fail":  # rare: only then pay for the full check
                    _aborted_and_intermediate(txns, t, k, e, v, writer, final, add)
            w = writer.get((k, v[-1]))
            if w is not None and w != t.id and txns[w].type != "fail" and final.get((w, k)) != v[-1]:
                add("G1b", [t.id, w], [f"T{t.id} read {k!r} = {_show(v)}, ending in {v[-1]!r}, but T{w} appended "
                                       f"{v[-1]!r} and then {final[(w, k)]!r} to {k!r}: an intermediate state"])
    ok_writer = lambda w: w is not None and txns[w].type != "fail"  # noqa: E731
    for tid, k, v in ext:
        if v:
            w = writer.get((k, v[-1]))
            if ok_writer(w):
                g.link(w, tid, WR, ("wr", k, v[-1], v))
    # ww and rw along each key's order; unobserved appends come after the last element anyone read
    unseen: dict = defaultdict(list)
    for k, apps in appenders.items():
        idx = index.get(k, {})
        unseen[k] = [(tid, v) for tid, v in apps if v not in idx]
    for k, lo in order.items():
        for i in range(1, len(lo)):
            a, b = writer.get((k, lo[i - 1])), writer.get((k, lo[i]))
            if ok_writer(a) and ok_writer(b):
                g.link(a, b, WW, ("ww", k, lo[i - 1], lo[i], True))
        last = writer.get((k, lo[-1])) if lo else None
        if ok_writer(last):
            for u, v in unseen[k]:
                g.link(last, u, WW, ("ww", k, lo[-1], v, False))
    for tid, k, v in ext:
        lo = order.get(k, ())
        m = len(v)
        if lo[:m] != v:
            continue  # reported as incompatible-order; no trustworthy position
        if m < len(lo):
            w = writer.get((k, lo[m]))
            if ok_writer(w):
                g.link(tid, w, RW, ("rw", k, v, lo[m], True))
        else:
            for u, uv in unseen.get(k, ()):
                g.link(tid, u, RW, ("rw", k, v, uv, False))
    # lost update: two committed txns read the same version of k and both appended to k
    groups = defaultdict(list)
    appended = {(tid, k) for k, apps in appenders.items() for tid, _ in apps}
    for tid, k, v in ext:
        if (tid, k) in appended:
            groups[(k, v[-1] if v else INIT)].append((tid, v))
    for (k, _), ts in groups.items():
        if len(ts) > 1:
            ids = [tid for tid, _ in ts]
            add("lost-update", ids, [f"{_names(ids)} all read {k!r} = {_show(ts[0][1])} and then appended to "
                                     f"{k!r}: each update was made without seeing the others"])


def rw_register(txns: list[Txn], g: Graph, add) -> None:
    writer, final = _writers(txns, "w")
    ext = []  # (txn id, k, v)
    wrote = defaultdict(set)  # ok txn id -> keys written
    for t in txns:
        if t.type != "ok":
            continue
        known: dict = {}
        for f, k, v in t.ops:
            if f == "w":
                known[k] = v
                wrote[t.id].add(k)
                continue
            if k in known:
                if known[k] != v:
                    add("internal", [t.id], [f"T{t.id} read {k!r} = {v!r} but its own earlier read or write "
                                             f"says {known[k]!r}"])
            else:
                ext.append((t.id, k, v))
            known[k] = v
    readers = defaultdict(list)  # (k, v) -> reader ids (v None: initial state)
    observed = set()
    for tid, k, v in ext:
        readers[(k, v)].append(tid)
        if v is None:
            continue
        t = txns[tid]
        w = _aborted_and_intermediate(txns, t, k, v, None, writer, final, add)
        if w is None:
            continue
        if w == tid:
            add("internal", [tid], [f"T{tid} read {k!r} = {v!r} before writing {v!r} itself (a future read)"])
            continue
        observed.add(w)
        if final.get((w, k)) != v:
            add("G1b", [tid, w], [f"T{tid} read {k!r} = {v!r}, but T{w} wrote {v!r} and then {final[(w, k)]!r} "
                                  f"to {k!r}: an intermediate state"])
        g.link(w, tid, WR, ("wr", k, v))
    committed = lambda w: txns[w].type == "ok" or w in observed  # noqa: E731
    # known version pairs (a before b) per key; a is None for the initial state
    pairs = defaultdict(set)
    for (w, k), v in final.items():
        if committed(w):
            pairs[k].add((None, v))
    for tid, k, v in ext:
        if k in wrote[tid]:
            pairs[k].add((v, final[(tid, k)]))
    for k, ps in pairs.items():
        for a, b in ps:
            wb = writer[(k, b)]
            if a is not None:
                wa = writer.get((k, a))
                if wa is None or not committed(wa) or not committed(wb):
                    continue
                g.link(wa, wb, WW, ("ww", k, a, b, True))
            for r in readers.get((k, a), ()):
                g.link(r, wb, RW, ("rw", k, a, b, True))
    groups = defaultdict(list)
    for tid, k, v in ext:
        if k in wrote[tid]:
            groups[(k, v)].append(tid)
    for (k, v), ids in groups.items():
        if len(ids) > 1:
            add("lost-update", ids, [f"{_names(ids)} all read {k!r} = {v!r} and then wrote {k!r}: each update "
                                     f"was made without seeing the others"])


def _names(ids) -> str:
    ids = [f"T{i}" for i in ids]
    return ", ".join(ids[:-1]) + " and " + ids[-1] if len(ids) > 1 else ids[0]


def explain_edge(txns: list[Txn], g: Graph, a: int, bit: int, b: int, workload: str) -> str:
    """One sentence: why ``a`` must come before ``b``."""
    A, B = f"T{a}", f"T{b}"
    if bit == RT:
        ta, tb = txns[a].complete_time, txns[b].invoke_time
        if ta is not None and tb is not None and ta < tb:
            when = f" (t={ta} < t={tb})"
        else:  # the order of events in the history decides (Jepsen's convention), not equal or absent times
            when = f" (event {txns[a].complete_pos} < event {txns[b].invoke_pos})"
        return f"{A} completed before {B} began{when}, so {A} precedes {B} in real time"
    if bit == PROC:
        return f"{A} and {B} ran in that order on process {txns[a].process!r}, so {A} precedes {B}"
    why = g.why.get((a, b, bit))
    if why is None:
        return f"{A} {EDGE_WORD[bit]} {B}"
    kind, k = why[0], why[1]
    if workload == "list-append":
        if kind == "ww":
            _, _, prev, v, seen = why
            how = "a committed read shows them in that order" if seen else (
                f"{v!r} was never read, so it came after {prev!r}, the last element any read shows")
            return f"{A} appended {prev!r} to {k!r} and {B} appended {v!r} after it ({how}), so {A} ww-precedes {B}"
        if kind == "wr":
            return f"{A} appended {why[2]!r} to {k!r} and {B} read {k!r} = {_show(why[3])}, so {A} wr-precedes {B}"
        _, _, read, nxt, seen = why
        tail = "the next element" if seen else "appended after every element anyone read"
        return (f"{A} read {k!r} = {_show(read)} without {nxt!r}, which {B} appended ({tail}), "
                f"so {A} rw-precedes {B}")
    if kind == "ww":
        return f"{A} wrote {k!r} = {why[2]!r} and {B} later wrote {k!r} = {why[3]!r} after reading it, so {A} " \
               f"ww-precedes {B}"
    if kind == "wr":
        return f"{A} wrote {k!r} = {why[2]!r} and {B} read it, so {A} wr-precedes {B}"
    _, _, a_v, b_v, _ = why
    seen = "the initial state" if a_v is None else repr(a_v)
    return f"{A} read {k!r} = {seen} and {B} wrote {b_v!r}, a later version of {k!r}, so {A} rw-precedes {B}"

EDGE_WORD = {WW: "ww-precedes", WR: "wr-precedes", RW: "rw-precedes", PROC: "precedes (process)",
             RT: "precedes (real time)"}
