"""The Porcupine export (simulator.history.porcupine_json): the exported operations are the
history's operations (pair_ops), call/return are the event positions (so Porcupine's closed
intervals order as the events do), indeterminate calls never return (2**63 - 1), and a wrong
format is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.history import History
from simulator.history.ops import freeze, pair_ops
from simulator.history.porcupine_json import NEVER, from_porcupine, save_porcupine, to_porcupine
from simulator.history.synth import atomic_register_history


def _mixed() -> History:
    h = History()
    a = h.invoke(7, "enqueue", "q", 1, 0.0)
    b = h.invoke("p2", "dequeue", "q", None, 0.1)
    h.ok(a, 0.2)
    h.info(b, 0.3)                                 # indeterminate: may have dequeued 1
    c = h.invoke(7, "enqueue", "q", [2, "x"], 0.4)  # a list value: exported as a JSON list
    h.fail(c, 0.5)
    h.invoke(7, "dequeue", "q", None, 0.6)          # never completed
    return h


@pytest.mark.parametrize("h", [_mixed(), atomic_register_history(np.random.default_rng([5, 300]), 300,
                                                                 keys=2, processes=6, info_ratio=0.05)])
def test_round_trip_equals_pair_ops(h, tmp_path):
    path = save_porcupine(h, "queue", tmp_path / "h.json")
    back = from_porcupine(json.loads(path.read_text()))
    ops = pair_ops(h)
    assert len(back) == len(ops) > 0
    for x, o in zip(back, ops):
        # lists come back as tuples (as History.from_events stores them)
        assert (x.index, x.process, x.f, x.key, x.value, x.result, x.type) == \
               (o.index, o.process, o.f, freeze(o.key), freeze(o.value), freeze(o.result), o.type)
        if o.type in ("ok", "fail"):  # the completion's position, and its time is the same event's
            assert h.time[int(x.complete_time)] == o.complete_time and h.type[int(x.complete_time)] == o.type
        else:
            assert x.complete_time is None
    assert from_porcupine(path) == back


def test_positions_clients_and_never():
    h = _mixed()
    doc = to_porcupine(h, "queue")
    ops = doc["ops"]
    assert [o["call"] for o in ops] == [0, 1, 4, 6]
    assert [o["return"] for o in ops] == [2, NEVER, 5, NEVER]
    assert [o["client"] for o in ops] == [0, 1, 0, 0]     # zero-based, by first appearance
    assert ops[2]["value"] == [2, "x"]
    assert json.loads(json.dumps(doc)) == doc


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="model must be"):
        to_porcupine(_mixed(), "")
    with pytest.raises(ValueError, match="format must be"):
        from_porcupine({"format": "other", "ops": []})
