"""The register fast path (search.RegisterPart, with its pruning rules 1-5) must give the same
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
from simulator.history.synth import atomic_register_history


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
