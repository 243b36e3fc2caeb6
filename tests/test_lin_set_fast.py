"""The set fast path (set_part.SetPart, a direct check of the characterisation in its docstring)
must give the same verdict as the plain WGL search through SetModel.step (search.GenericPart) on
every history: many small random histories of a real grow-only set (linearizable by construction),
the same with reads corrupted (often not), with info adds (may or may not have taken effect) and
info reads. Its counterexamples must be proofs (the plain search says the counterexample alone is
not linearizable) and minimal (removing any single removable operation, with what
SetModel.removable drops alongside, leaves a linearizable history)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.history import History
from simulator.history.linearizable import check_linearizable
from simulator.history.models import SetModel
from simulator.history.ops import pair_ops
from simulator.history.search import GenericPart, make_part
from simulator.history.set_part import SetPart, fits


class PlainSet(SetModel):
    """The same semantics; overriding ``step`` makes make_part choose the generic search."""

    def step(self, state, input, output):
        return super().step(state, input, output)


def set_history(rng: np.random.Generator, n: int, procs: int, info: float, corrupt: int) -> History:
    """``n`` ops of ``procs`` clients on one real set: each takes effect at a random instant inside its
    interval; an ``info`` add (probability ``info``) took effect or not (a coin); an info read
    returned nothing. Then ``corrupt`` ok reads get one element dropped, added or swapped."""
    clock = rng.exponential(1.0, procs)
    recs = []
    for i in range(n):
        p = i % procs
        t0 = float(clock[p])
        t1 = t0 + float(rng.exponential(0.5))
        t2 = t1 + float(rng.exponential(0.5))
        clock[p] = t2 + float(rng.exponential(0.3))
        recs.append((t0, t1, t2, p, "read" if rng.random() < 0.4 else "add", i, bool(rng.random() < info),
                     bool(rng.random() < 0.5)))
    state: set[int] = set()
    out = {}
    for _t0, _t1, _t2, _p, f, i, inf, took in sorted(recs, key=lambda r: r[1]):
        if f == "add" and (not inf or took):
            state.add(i)
        out[i] = sorted(state) if f == "read" else i
    events = []
    for t0, _t1, t2, p, f, i, inf, _took in recs:
        v = None if f == "read" else i
        events.append((t0, 0, {"process": p, "type": "invoke", "f": f, "key": 0, "value": v, "time": t0}))
        done = {"process": p, "type": "info" if inf else "ok", "f": f, "key": 0,
                "value": None if inf and f == "read" else out[i], "time": t2}
        events.append((t2, 1, done))
    events.sort(key=lambda e: (e[0], e[1]))
    ev = [e[2] for e in events]
    reads = [j for j, e in enumerate(ev) if e["type"] == "ok" and e["f"] == "read"]
    for j in rng.permutation(reads)[:corrupt]:
        v = list(ev[j]["value"])
        u = rng.random()
        if v and u < 0.4:
            v.pop(int(rng.integers(len(v))))
        elif u < 0.8:
            v.append(int(rng.integers(n + 1)))  # may be an element added later, or never
        elif v:
            v[int(rng.integers(len(v)))] = int(rng.integers(n + 1))
        ev[j] = {**ev[j], "value": sorted(set(v))}
    return History.from_events(ev)


def _plain_valid(ops) -> bool:
    part = GenericPart(ops, PlainSet())
    ok, _, _ = part.search(list(range(len(ops))), part.ends(), None, None)
    return ok


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 14), procs=st.integers(1, 5),
       info=st.sampled_from([0.0, 0.2, 0.5]), corrupt=st.sampled_from([0, 0, 1, 2]))
def test_set_fast_path_agrees_with_plain_search(seed, n, procs, info, corrupt):
    rng = np.random.default_rng(seed)
    h = set_history(rng, n, procs, info, corrupt)
    fast = check_linearizable(h, model="set", shrink_time_s=2.0)
    plain = check_linearizable(h, model=PlainSet(), shrink_time_s=2.0)
    assert fast.valid is not None and plain.valid is not None
    assert fast.valid == plain.valid, f"seed={seed}: fast {fast.valid}, plain {plain.valid}"
    if corrupt == 0:
        assert fast.valid is True  # a real set's history
    if fast.valid is False:
        (r,) = [k for k in fast.per_key.values() if k.valid is False]
        cx = r.counterexample
        assert r.minimal
        assert not _plain_valid(cx), f"seed={seed}: the counterexample is no proof"
        model = SetModel()
        for i in range(len(cx)):
            drop = model.removable(cx, set(range(len(cx))), [i])
            rest = [op for j, op in enumerate(cx) if j not in drop]
            assert _plain_valid(rest), f"seed={seed}: removing {cx[i].describe()} keeps it failing: not minimal"


def test_fast_path_is_chosen_only_in_its_setting():
    def ops_of(events):
        return pair_ops(History.from_events(events))

    def op(p, f, v, t0, t1, res):
        return [{"process": p, "type": "invoke", "f": f, "key": 0, "value": v, "time": t0},
                {"process": p, "type": "ok", "f": f, "key": 0, "value": res, "time": t1}]

    unique = ops_of(op(0, "add", 1, 0, 1, 1) + op(1, "read", None, 2, 3, [1]))
    twice = ops_of(op(0, "add", 1, 0, 1, 1) + op(1, "add", 1, 2, 3, 1) + op(2, "read", None, 4, 5, [1]))
    assert isinstance(make_part(unique, SetModel()), SetPart)
    assert isinstance(make_part(twice, SetModel()), GenericPart)  # a repeated add: not unambiguous
    assert isinstance(make_part(unique, SetModel(initial=[1])), GenericPart)  # adds an initial element
    assert isinstance(make_part(unique, PlainSet()), GenericPart)  # step overridden
    assert not fits(twice, SetModel())


def test_stale_read_counterexample_is_the_read_and_its_adds():
    """A read that misses an add completed before it began: the counterexample is that add, the read
    and the adds of what the read returned, out of a long history (formula: 1 + 1 + |read|)."""
    events = []
    t = 0.0
    for i in range(200):  # sequential adds, each read right after sees everything so far
        events += [{"process": 0, "type": "invoke", "f": "add", "key": 0, "value": i, "time": t},
                   {"process": 0, "type": "ok", "f": "add", "key": 0, "value": i, "time": t + 1}]
        events += [{"process": 1, "type": "invoke", "f": "read", "key": 0, "value": None, "time": t + 2},
                   {"process": 1, "type": "ok", "f": "read", "key": 0, "value": list(range(i + 1)), "time": t + 3}]
        t += 4
    events[4 * 150 + 3]["value"] = [x for x in range(151) if x != 7]  # read 150 misses add 7
    r = check_linearizable(History.from_events(events), model="set")
    assert r.valid is False
    cx = r.counterexample
    assert r.per_key[0].minimal
    assert len(cx) == 1 + 1 + 150, [op.describe() for op in cx]
    assert not _plain_valid(cx)
