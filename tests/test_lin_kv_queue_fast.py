"""The queue (and kv) fast paths of the linearizability checker decide exactly as the generic
WGL/Lowe search does (issue 23): a hypothesis property over random small histories, valid and
corrupted, with info operations; hand-made histories of each violation kind of Henzinger, Sezgin
& Vafeiadis (CONCUR 2013): VFresh, VRepet, VOrd, VWit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.history import History
from simulator.history.kv_part import KVPart
from simulator.history.linearizable import check_linearizable
from simulator.history.models import KVModel, QueueModel
from simulator.history.ops import INF, pair_ops
from simulator.history.queue_part import QueuePart
from simulator.history.search import GenericPart


def _history(ops):
    """ops: (process, f, value, result, t_invoke, t_complete, type) -> History."""
    ev = []
    for p, f, v, res, t0, t1, typ in ops:
        ev.append((t0, 0, {"process": p, "type": "invoke", "f": f, "key": "k", "value": v, "time": t0}))
        if t1 is not None:
            ev.append((t1, 1, {"process": p, "type": typ, "f": f, "key": "k", "value": res, "time": t1}))
    ev.sort(key=lambda e: (e[0], e[1]))
    return History.from_events(e[2] for e in ev)


def _verdicts(h, model):
    ops = [op for op in pair_ops(h)]
    fast = QueuePart(ops, model)
    gen = GenericPart(ops, model)
    sel = list(range(len(ops)))
    return fast.search(sel, fast.ends(), None, None)[0], gen.search(sel, gen.ends(), None, None)[0]


def _random_queue(seed: int, n: int, procs: int, p_info: float, corrupt: int):
    rng = np.random.default_rng(seed)
    clock = rng.exponential(1.0, procs)
    recs = []
    for i in range(n):
        p = i % procs
        t0 = clock[p]
        t1 = t0 + rng.exponential(0.5)
        t2 = t1 + rng.exponential(0.5)
        clock[p] = t2 + rng.exponential(0.5)
        recs.append((t1, t0, t2, p, rng.random(), rng.random(), i))
    q: list[int] = []
    out = []
    for _t1, t0, t2, p, u, w, i in sorted(recs):
        if u < 0.5:
            q.append(i)
            f, v, res = "enqueue", i, i
        else:
            f, v, res = "dequeue", None, (q.pop(0) if q else None)
        info = w < p_info
        out.append((p, f, v, None if info else res, t0, t2, "info" if info else "ok"))
    out.sort(key=lambda r: r[4])
    # processes are single-threaded: an info op ends its process's op there (kept simple: the
    # next op of that process starts after t2 anyway); corruptions make the history invalid or not
    for _ in range(corrupt):
        j = int(rng.integers(len(out)))
        p, f, v, res, t0, t2, typ = out[j]
        if typ != "ok":
            continue
        kind = int(rng.integers(3))
        if f == "dequeue" and kind == 0:
            res = None if res is not None else int(rng.integers(n))
        elif f == "dequeue":
            res = int(rng.integers(n))
        else:  # stretch or shift an interval
            t0, t2 = t0 + float(rng.normal(0, 1)), t2 + float(rng.normal(0, 1))
            t0, t2 = min(t0, t2), max(t0, t2)
        out[j] = (p, f, v, res, t0, t2, typ)
    # one process per op so shifted intervals never overlap on a process
    return _history([(j, *r[1:]) for j, r in enumerate(out)])


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 14), procs=st.integers(1, 5),
       p_info=st.sampled_from([0.0, 0.0, 0.15, 0.3]), corrupt=st.integers(0, 2))
def test_queue_fast_path_matches_generic(seed, n, procs, p_info, corrupt):
    h = _random_queue(seed, n, procs, p_info, corrupt)
    fast, gen = _verdicts(h, QueueModel())
    assert fast == gen


def test_queue_property_sees_both_verdicts():
    """The property is not vacuous: its generator yields both verdicts, and info operations."""
    seen = set()
    for seed in range(200):
        h = _random_queue(seed, 10, 3, 0.15, seed % 3)
        seen.add(_verdicts(h, QueueModel())[1])
    assert seen == {True, False}


def _q(*ops):
    return _history([(i, *o) for i, o in enumerate(ops)])


def test_vfresh():
    # a dequeue returns 1 before anyone enqueued it
    h = _q(("dequeue", None, 1, 0, 1, "ok"), ("enqueue", 1, 1, 2, 3, "ok"))
    r = check_linearizable(h, model="queue")
    assert r.valid is False and len(r.counterexample) == 1


def test_vrepet():
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("dequeue", None, 1, 2, 3, "ok"), ("dequeue", None, 1, 4, 5, "ok"))
    assert check_linearizable(h, model="queue").valid is False


def test_vord():
    # enq 1 before enq 2, but 2 leaves first
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("enqueue", 2, 2, 2, 3, "ok"),
           ("dequeue", None, 2, 4, 5, "ok"), ("dequeue", None, 1, 6, 7, "ok"))
    assert check_linearizable(h, model="queue").valid is False
    # 2 dequeued, 1 (enqueued first) never is
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("enqueue", 2, 2, 2, 3, "ok"), ("dequeue", None, 2, 4, 5, "ok"))
    assert check_linearizable(h, model="queue").valid is False
    # concurrent enqueues: either order is fine
    h = _q(("enqueue", 1, 1, 0, 3, "ok"), ("enqueue", 2, 2, 1, 2, "ok"),
           ("dequeue", None, 2, 4, 5, "ok"), ("dequeue", None, 1, 6, 7, "ok"))
    assert check_linearizable(h, model="queue").valid is True


def test_vwit():
    # the queue holds 1 throughout the empty dequeue
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("dequeue", None, None, 2, 3, "ok"), ("dequeue", None, 1, 4, 5, "ok"))
    assert check_linearizable(h, model="queue").valid is False
    # non-empty throughout, by two values in turn: 1 until 2 is in, then 2
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("enqueue", 2, 2, 2, 6, "ok"), ("dequeue", None, 1, 3, 5, "ok"),
           ("dequeue", None, None, 2.5, 7, "ok"), ("dequeue", None, 2, 8, 9, "ok"))
    assert check_linearizable(h, model="queue").valid is True  # empty between deq 1 and enq 2
    h = _q(("enqueue", 1, 1, 0, 1, "ok"), ("enqueue", 2, 2, 2, 3, "ok"), ("dequeue", None, 1, 4, 5, "ok"),
           ("dequeue", None, None, 2.5, 7, "ok"), ("dequeue", None, 2, 8, 9, "ok"))
    assert check_linearizable(h, model="queue").valid is False  # 2 is in before 1 leaves


def test_info_enqueue_taken_only_when_seen():
    h = _q(("enqueue", 1, None, 0, 1, "info"), ("dequeue", None, 1, 2, 3, "ok"),
           ("enqueue", 2, None, 0, 1, "info"), ("dequeue", None, None, 4, 5, "ok"))
    assert check_linearizable(h, model="queue").valid is True


def test_many_clients_decided():
    import sys
    sys.path.insert(0, "benchmarks")
    from checker_speed import corrupt, object_history
    rng = np.random.default_rng(3)
    h, _ = object_history("queue", rng, 3000, 1, 30)
    assert check_linearizable(h, model="queue", time_limit_s=30).valid is True
    bad = corrupt("queue", h, rng)
    r = check_linearizable(bad, model="queue", time_limit_s=30)
    assert r.valid is False and len(r.counterexample) <= 5  # the bad dequeue (+ empty ones: never dropped)
    cx = [{"process": o.process, "type": t, "f": o.f, "key": o.key, "value": v, "time": tm}
          for o in r.counterexample for t, v, tm in (("invoke", o.value, o.invoke_time),
                                                     (o.type, o.result, o.complete_time))]
    cx.sort(key=lambda e: (e["time"], e["type"] != "invoke"))
    assert check_linearizable(History.from_events(cx), model="queue").valid is False  # a proof


# -- kv ------------------------------------------------------------------------------------------

def _kv_verdicts(h):
    ops = list(pair_ops(h))
    ops = [o for o in ops if not (o.type == "info" and o.f == "get")]  # as check_linearizable drops them
    m = KVModel()
    fast, gen = KVPart(ops, m), GenericPart(ops, m)
    sel = list(range(len(ops)))
    return fast.search(sel, fast.ends(), None, None)[0], gen.search(sel, gen.ends(), None, None)[0]


def _random_kv(seed: int, n: int, procs: int, p_info: float, corrupt: int, tokens: bool):
    rng = np.random.default_rng(seed)
    clock = rng.exponential(1.0, procs)
    recs = []
    for i in range(n):
        p = i % procs
        t0 = clock[p]
        t1 = t0 + rng.exponential(0.5)
        t2 = t1 + rng.exponential(0.5)
        clock[p] = t2 + rng.exponential(0.5)
        recs.append((t1, t0, t2, p, rng.random(), rng.random(), i))
    s = ""
    out = []
    for _t1, t0, t2, _p, u, w, i in sorted(recs):
        v = f"<{i}>" if tokens else "ab"[int(rng.integers(2))]
        if u < 0.45:
            f, val, res = "get", None, s
        elif u < 0.85:
            f, val, res = "append", v, v
            s += v
        else:
            f, val, res = "put", v, v
            s = v
        info = w < p_info
        out.append((f, val, None if info else res, t0, t2, "info" if info else "ok"))
    for _ in range(corrupt):
        j = int(rng.integers(len(out)))
        f, val, res, t0, t2, typ = out[j]
        if typ != "ok":
            continue
        if f == "get" and res:
            res = res[: res.rfind("<")] if tokens else res[:-1]
        else:
            t0, t2 = t0 + float(rng.normal(0, 1)), t2 + float(rng.normal(0, 1))
            t0, t2 = min(t0, t2), max(t0, t2)
        out[j] = (f, val, res, t0, t2, typ)
    return _history([(j, *r) for j, r in enumerate(out)])


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 14), procs=st.integers(1, 5),
       p_info=st.sampled_from([0.0, 0.0, 0.15, 0.3]), corrupt=st.integers(0, 2),
       tokens=st.sampled_from([True, True, False]))
def test_kv_fast_path_matches_generic(seed, n, procs, p_info, corrupt, tokens):
    h = _random_kv(seed, n, procs, p_info, corrupt, tokens)
    fast, gen = _kv_verdicts(h)
    assert fast == gen


def test_kv_property_sees_both_verdicts():
    seen = set()
    for seed in range(200):
        seen.add(_kv_verdicts(_random_kv(seed, 10, 3, 0.15, seed % 3, True))[1])
    assert seen == {True, False}


def _kv(*ops):
    return _history([(i, *o) for i, o in enumerate(ops)])


def test_kv_append_order_revealed_by_gets():
    # two concurrent appends; gets reveal 2 then 1; a later get claiming 1 then 2 is a violation
    base = [("append", "<1>", "<1>", 0, 3, "ok"), ("append", "<2>", "<2>", 0, 3, "ok"),
            ("get", None, "<2>", 0, 3, "ok")]
    assert check_linearizable(_kv(*base, ("get", None, "<2><1>", 4, 5, "ok")), model="kv").valid is True
    r = check_linearizable(_kv(*base, ("get", None, "<1><2>", 4, 5, "ok")), model="kv")
    assert r.valid is False and r.counterexample


def test_kv_put_erases_appends():
    # an append placed before a put is gone: a later get naming it after the put's value is a violation
    h = _kv(("put", "<1>", "<1>", 0, 1, "ok"), ("append", "<2>", "<2>", 2, 3, "ok"),
            ("put", "<3>", "<3>", 4, 5, "ok"), ("get", None, "<3><2>", 6, 7, "ok"))
    assert check_linearizable(h, model="kv").valid is False
    h = _kv(("put", "<1>", "<1>", 0, 1, "ok"), ("append", "<2>", "<2>", 2, 6, "ok"),
            ("put", "<3>", "<3>", 3, 4, "ok"), ("get", None, "<3><2>", 7, 8, "ok"))
    assert check_linearizable(h, model="kv").valid is True


def test_kv_many_clients_decided():
    import sys
    sys.path.insert(0, "benchmarks")
    from checker_speed import corrupt, object_history
    rng = np.random.default_rng(5)
    h, _ = object_history("kv", rng, 2000, 1, 50)
    assert check_linearizable(h, model="kv", time_limit_s=30).valid is True
    bad = corrupt("kv", h, rng)
    assert check_linearizable(bad, model="kv", time_limit_s=30).valid in (True, False)  # decided


def _drop_middle(h, rng):
    """Drop one token from a random ok get's result (any position, as vs_porcupine's corrupt_kv)."""
    ev = list(h.events())
    js = [j for j, e in enumerate(ev) if e["type"] == "ok" and e["f"] == "get" and e["value"]]
    if js:
        j = js[int(rng.integers(len(js)))]
        toks = ev[j]["value"][1:-1].split("><")
        del toks[int(rng.integers(len(toks)))]
        ev[j] = {**ev[j], "value": "".join(f"<{t}>" for t in toks)}
    return History.from_events(ev)


def _kv_subsearch(h, rng):
    """Fast path, generic search and the real-time rule on a random sub-selection of the part, some
    ok ops turned indeterminate (ends +inf), as the shrinker's truncations and removals call them."""
    ops = [o for o in pair_ops(h) if not (o.type == "info" and o.f == "get")]
    m = KVModel()
    fast, gen = KVPart(ops, m), GenericPart(ops, m)
    sel = [i for i in range(len(ops)) if rng.random() < 0.85]
    ends = [INF if rng.random() < 0.1 else e for e in (fast.ends()[i] for i in sel)]
    return (fast.search(sel, ends, None, None)[0], gen.search(sel, ends, None, None)[0],
            fast.refute(sel, ends) >= 0)


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 16), procs=st.integers(1, 6),
       p_info=st.sampled_from([0.0, 0.0, 0.15]), corrupt=st.integers(0, 2))
def test_kv_real_time_rule_matches_generic(seed, n, procs, p_info, corrupt):
    rng = np.random.default_rng([seed, 1])
    h = _random_kv(seed, n, procs, p_info, corrupt, True)
    if rng.random() < 0.5:
        h = _drop_middle(h, rng)
    fast, gen, refuted = _kv_subsearch(h, rng)
    assert fast == gen
    assert not (refuted and gen)  # the rule only ever refutes what the generic search refutes


def test_kv_real_time_rule_is_exercised():
    """Not vacuous: on these generators the rule fires, and the search still has violations of its own."""
    fired = missed = 0
    for seed in range(300):
        rng = np.random.default_rng([seed, 2])
        h = _drop_middle(_random_kv(seed, 12, 4, 0.1, 0, True), rng)
        fast, gen, refuted = _kv_subsearch(h, rng)
        fired += refuted
        missed += (not gen) and not refuted
    assert fired >= 30 and missed >= 10


def test_kv_many_clients_invalid_refuted_fast():
    """A get missing an append that returned before it was invoked, with no put between (issue 23,
    vs_porcupine's kv 100-client invalid history): refuted at once, counterexample the get, the
    append it misses and the writes it names (removing any of those removes the get)."""
    import sys
    sys.path.insert(0, "benchmarks")
    from checker_speed import object_history
    from vs_porcupine import corrupt_kv
    rng = np.random.default_rng([1, 3000, 1, 100])
    h, _ = object_history("kv", rng, 3000, 1, 100)
    bad = corrupt_kv(h, rng)
    r = check_linearizable(bad, model="kv", time_limit_s=30)
    assert r.valid is False and next(iter(r.per_key.values())).minimal
    cx = r.counterexample
    gets = [o for o in cx if o.f == "get"]
    assert len(gets) == 1
    named = set(gets[0].result[1:-1].split("><"))
    missing = [o for o in cx if o.f != "get" and o.value[1:-1] not in named]
    assert len(missing) == 1 and missing[0].complete_time < gets[0].invoke_time
    assert len(cx) == len(named) + 2


def _kv_order_subsearch(h, rng):
    ops = [o for o in pair_ops(h) if not (o.type == "info" and o.f == "get")]
    m = KVModel()
    fast, gen = KVPart(ops, m), GenericPart(ops, m)
    sel = [i for i in range(len(ops)) if rng.random() < 0.85]
    ends = [INF if rng.random() < 0.1 else e for e in (fast.ends()[i] for i in sel)]
    return (fast.search(sel, ends, None, None)[0], gen.search(sel, ends, None, None)[0],
            bool(fast.order_cycle(sel, ends)))


def _swap_adjacent(h, rng):
    """Swap two adjacent tokens in a random ok get's result (as vs_porcupine's reorder_kv, unchecked)."""
    ev = list(h.events())
    js = [j for j, e in enumerate(ev) if e["type"] == "ok" and e["f"] == "get" and e["value"]
          and e["value"].count("<") > 1]
    if js:
        j = js[int(rng.integers(len(js)))]
        toks = ev[j]["value"][1:-1].split("><")
        k = int(rng.integers(len(toks) - 1))
        toks[k], toks[k + 1] = toks[k + 1], toks[k]
        ev[j] = {**ev[j], "value": "".join(f"<{t}>" for t in toks)}
    return History.from_events(ev)


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 16), procs=st.integers(1, 6),
       p_info=st.sampled_from([0.0, 0.0, 0.15]), corrupt=st.integers(0, 2))
def test_kv_order_rule_matches_generic(seed, n, procs, p_info, corrupt):
    rng = np.random.default_rng([seed, 3])
    h = _random_kv(seed, n, procs, p_info, corrupt, True)
    if rng.random() < 0.7:
        h = _swap_adjacent(h, rng)
    fast, gen, cycle = _kv_order_subsearch(h, rng)
    assert fast == gen
    assert not (cycle and gen)  # the order rule only ever refutes what the generic search refutes


def test_kv_order_rule_is_exercised():
    """Not vacuous: the order rule fires on swapped results, and misses violations of other kinds."""
    fired = missed = 0
    for seed in range(300):
        rng = np.random.default_rng([seed, 4])
        h = _swap_adjacent(_random_kv(seed, 12, 4, 0.1, int(seed % 2), True), rng)
        fast, gen, cycle = _kv_order_subsearch(h, rng)
        fired += cycle
        missed += (not gen) and not cycle
    assert fired >= 30 and missed >= 10


def test_kv_reordered_gets_refuted_fast():
    """vs_porcupine's reorder / conflict histories (two adjacent tokens of one get swapped: against
    real time, or against another get): no lost write, so the real-time rule misses them; the order
    rule refutes them, and the counterexample (shrunk from the cycle's gets) is still a proof."""
    import sys
    sys.path.insert(0, "benchmarks")
    from checker_speed import object_history
    from vs_porcupine import reorder_kv
    for realtime in (True, False):
        rng = np.random.default_rng([2, 3000, 1, 100])
        h, _ = object_history("kv", rng, 3000, 1, 100)
        bad = reorder_kv(h, rng, realtime)
        r = check_linearizable(bad, model="kv", time_limit_s=30)
        assert r.valid is False
        cx = [{"process": o.process, "type": t, "f": o.f, "key": o.key, "value": v, "time": tm}
              for o in r.counterexample for t, v, tm in (("invoke", o.value, o.invoke_time),
                                                         (o.type, o.result, o.complete_time))]
        cx.sort(key=lambda e: (e["time"], e["type"] != "invoke"))
        # the gets of the cycle and the writes they name (removing a named write removes its gets)
        assert 1 <= sum(o.f == "get" for o in r.counterexample) <= (1 if realtime else 2)
        assert check_linearizable(History.from_events(cx), model="kv").valid is False
