"""The register fast path (search.RegisterPart, with its pruning rules 1-7) must give the same
verdict as the plain WGL search through the model's ``step`` (GenericPart) on every history:
small random cas-register histories of a real register (linearizable by construction), and the
same with one ok read's result changed (often not linearizable). Failed cas kept as information
and timeouts (info writes and cas) exercise rule (5), the pooled info ops."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.history import History
from simulator.history.linearizable import check_linearizable
from simulator.history.models import RegisterModel
from simulator.history.synth import atomic_register_history, inject_stale_read


class PlainCasRegister(RegisterModel):
    """The same semantics; overriding ``step`` makes make_part choose the generic search."""

    def step(self, state, input, output):
        return super().step(state, input, output)


def _mutate_read(h: History, rng: np.random.Generator) -> History | None:
    ev = list(h.events())
    reads = [j for j, e in enumerate(ev) if e["type"] == "ok" and e["f"] == "read"]
    if not reads:
        return None
    j = reads[int(rng.integers(len(reads)))]
    values = sorted({e["value"] for e in ev if e["f"] == "write" and e["type"] != "invoke"} | {None}, key=repr)
    ev[j] = {**ev[j], "value": values[int(rng.integers(len(values)))]}
    return History.from_events(ev)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 24), procs=st.integers(1, 5),
       info=st.sampled_from([0.0, 0.2, 0.5]), mutate=st.booleans())
def test_register_fast_path_agrees_with_plain_search(seed, n, procs, info, mutate):
    rng = np.random.default_rng(seed)
    h = atomic_register_history(rng, n, processes=procs, write_ratio=0.4, cas_ratio=0.3, info_ratio=info)
    if mutate:
        h = _mutate_read(h, rng) or h
    fast = check_linearizable(h, model="cas-register", shrink_time_s=0.5)
    plain = check_linearizable(h, model=PlainCasRegister(failed_cas_is_information=True), shrink_time_s=0.5)
    assert fast.valid is not None and plain.valid is not None
    assert fast.valid == plain.valid, f"seed={seed}: fast {fast.valid}, plain {plain.valid}"
    if not mutate:
        assert fast.valid is True  # a real register's history


def _mutate(h: History, rng: np.random.Generator, how: str) -> History | None:
    """One corruption: a stale read (synth.inject_stale_read: surely not linearizable), a read's
    result replaced, or a cas outcome flipped (ok <-> fail; often not linearizable)."""
    if how == "stale":
        bad = inject_stale_read(h, rng)
        return bad[0] if bad else None
    if how == "read":
        return _mutate_read(h, rng)
    ev = list(h.events())
    done = [j for j, e in enumerate(ev) if e["f"] == "cas" and e["type"] in ("ok", "fail")]
    if not done:
        return None
    j = done[int(rng.integers(len(done)))]
    ev[j] = {**ev[j], "type": "fail" if ev[j]["type"] == "ok" else "ok"}
    return History.from_events(ev)


def _as_history(ops) -> History:
    """The counterexample's operations as a history of their own (their original outcomes, which
    constrain at least as much as the info the shrinker may have treated some of them as)."""
    ev = []
    for op in ops:
        ev.append((op.invoke_time, 0, {"process": op.process, "type": "invoke", "f": op.f, "key": op.key,
                                       "value": op.value, "time": op.invoke_time}))
        if op.complete_time is not None:
            ev.append((op.complete_time, 1, {"process": op.process, "type": op.type, "f": op.f, "key": op.key,
                                             "value": op.result, "time": op.complete_time}))
    ev.sort(key=lambda x: (x[0], x[1]))
    return History.from_events(e[2] for e in ev)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), procs=st.integers(1, 6),
       info=st.sampled_from([0.0, 0.1, 0.3, 0.6]), cas=st.sampled_from([0.1, 0.3, 0.5]),
       how=st.sampled_from(["none", "stale", "read", "cas"]))
def test_cas_register_fast_path_agrees_on_valid_and_mutated(seed, n, procs, info, cas, how):
    """Rules (6) and (7) (info cas whose expected value is gone) need many timeouts and cas: high
    info and cas ratios. Over valid and mutated histories the fast path and the plain search agree,
    and every counterexample the fast path reports is, by the plain search, not linearizable."""
    rng = np.random.default_rng(seed)
    h = atomic_register_history(rng, n, processes=procs, write_ratio=0.3, cas_ratio=cas, info_ratio=info)
    if how != "none":
        h = _mutate(h, rng, how) or h
    plain_model = PlainCasRegister(failed_cas_is_information=True)
    fast = check_linearizable(h, model="cas-register", shrink_time_s=0.5)
    plain = check_linearizable(h, model=plain_model, shrink_time_s=0.5)
    assert fast.valid is not None and plain.valid is not None
    assert fast.valid == plain.valid, f"seed={seed}: fast {fast.valid}, plain {plain.valid}"
    if how == "none":
        assert fast.valid is True, f"seed={seed}"  # a real register's history
    if fast.valid is False:
        cx = fast.counterexample
        assert cx, f"seed={seed}"
        assert check_linearizable(_as_history(cx), model=plain_model).valid is False, f"seed={seed}"
