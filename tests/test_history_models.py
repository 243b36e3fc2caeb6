"""Built-in and custom models for check_linearizable: hand-built histories of known verdict, both ways.

Each case says why it is (or is not) linearizable for the model's sequential specification: an ok
op takes effect at one instant inside its interval; an info op at any instant after its invocation,
or never; a fail op never (except a failed cas in cas-register, which saw a value != expected).
"""

from __future__ import annotations

import pytest

from simulator.history import History
from simulator.history.linearizable import check_linearizable
from simulator.history.models import Input, Model, Output


def hist(*ops) -> History:
    """ops: (process, f, key, value, t0, type, t1, result); t1 None = never completed."""
    events = []
    for p, f, key, value, t0, typ, t1, result in ops:
        events.append((t0, 0, {"process": p, "type": "invoke", "f": f, "key": key, "value": value, "time": t0}))
        if t1 is not None:
            events.append((t1, 1, {"process": p, "type": typ, "f": f, "key": key, "value": result, "time": t1}))
    events.sort(key=lambda e: (e[0], e[1]))
    return History.from_events(e for _, _, e in events)


def op(p, f, t0, t1, value=None, result=None, typ="ok", key="k"):
    return (p, f, key, value, t0, typ, t1, value if result is None and f not in READS else result)


READS = {"read", "get", "dequeue", "generate"}


def valid(h, model, **kw):
    return check_linearizable(h, model=model, **kw).valid


# -- cas-register: a failed cas is information --------------------------------------------------

def test_failed_cas_is_information_in_cas_register_only():
    # x = 1 throughout [2, 3]; a cas 1->2 that FAILED there claims x != 1: impossible.
    h = hist(op(0, "write", 0, 1, 1), op(1, "cas", 2, 3, [1, 2], typ="fail"), op(2, "read", 4, 5, result=1))
    assert valid(h, "register") is True  # the register model drops failed cas
    r = check_linearizable(h, model="cas-register")
    assert r.valid is False and {o.f for o in r.counterexample} >= {"cas", "write"}
    # a concurrent write of 3 explains the failure (x was 3 at some instant inside the cas)
    h2 = hist(op(0, "write", 0, 1, 1), op(3, "write", 1.5, 2.5, 3), op(1, "cas", 2, 3, [1, 2], typ="fail"),
              op(2, "read", 4, 5, result=1), op(3, "write", 3.5, 3.8, 1))
    assert valid(h2, "cas-register") is True


def test_failed_cas_explained_by_info_write():
    # only an indeterminate write (it timed out) can have moved x away from 0: it must be placed
    h = hist(op(0, "write", 0, 10, 5, typ="info"), op(1, "cas", 1, 2, [0, 9], typ="fail"),
             op(2, "read", 3, 4, result=5))
    assert valid(h, "cas-register", initial=0) is True
    h_bad = hist(op(1, "cas", 1, 2, [0, 9], typ="fail"), op(2, "read", 3, 4, result=0))
    assert valid(h_bad, "cas-register", initial=0) is False


# -- kv (Porcupine): get / put / append --------------------------------------------------------

def test_kv_append_and_put():
    ok = hist(op(0, "append", 0, 1, "a"), op(1, "append", 0.5, 2, "b"), op(2, "get", 3, 4, result="ab"),
              op(0, "put", 5, 6, "z"), op(2, "get", 7, 8, result="z"))
    assert valid(ok, "kv") is True
    # "ba" is possible too: the appends overlap
    assert valid(hist(op(0, "append", 0, 1, "a"), op(1, "append", 0.5, 2, "b"),
                      op(2, "get", 3, 4, result="ba")), "kv") is True
    # a get after both appends completed cannot miss one
    assert valid(hist(op(0, "append", 0, 1, "a"), op(1, "append", 2, 3, "b"),
                      op(2, "get", 4, 5, result="a")), "kv") is False
    # keys are independent; a fresh key reads as the empty string
    assert valid(hist(op(0, "append", 0, 1, "a", key="x"), op(1, "get", 2, 3, result="", key="y")), "kv") is True


def test_kv_info_append_may_or_may_not_apply():
    h = hist(op(0, "append", 0, 1, "a", typ="info"), op(1, "get", 2, 3, result="a"))
    assert valid(h, "kv") is True
    assert valid(hist(op(0, "append", 0, 1, "a", typ="info"), op(1, "get", 2, 3, result="")), "kv") is True
    # but it applies once: "a", then "" later is impossible
    assert valid(hist(op(0, "append", 0, 1, "a", typ="info"), op(1, "get", 2, 3, result="a"),
                      op(1, "get", 4, 5, result="")), "kv") is False


# -- set ----------------------------------------------------------------------------------------

def test_set_add_and_read_all():
    ok = hist(op(0, "add", 0, 1, 1), op(1, "add", 0, 3, 2), op(2, "read", 2, 2.5, result=[1]),
              op(2, "read", 4, 5, result=[2, 1]))
    assert valid(ok, "set") is True
    lost = hist(op(0, "add", 0, 1, 1), op(1, "add", 2, 3, 2), op(2, "read", 4, 5, result=[2]))  # 1 vanished
    r = check_linearizable(lost, model="set")
    assert r.valid is False and len(r.counterexample) <= 3
    # an info add may surface later; a read of a never-added element may not
    assert valid(hist(op(0, "add", 0, 1, 7, typ="info"), op(1, "read", 5, 6, result=[7])), "set") is True
    assert valid(hist(op(1, "read", 0, 1, result=[7])), "set") is False


# -- FIFO queue ---------------------------------------------------------------------------------

def test_queue_fifo():
    ok = hist(op(0, "enqueue", 0, 1, "a"), op(0, "enqueue", 2, 3, "b"), op(1, "dequeue", 4, 5, result="a"),
              op(1, "dequeue", 6, 7, result="b"), op(1, "dequeue", 8, 9, result=None))
    assert valid(ok, "queue") is True
    reordered = hist(op(0, "enqueue", 0, 1, "a"), op(0, "enqueue", 2, 3, "b"), op(1, "dequeue", 4, 5, result="b"))
    r = check_linearizable(reordered, model="queue")
    assert r.valid is False
    assert valid(hist(op(0, "enqueue", 0, 3, "a"), op(1, "enqueue", 1, 2, "b"),
                      op(1, "dequeue", 4, 5, result="b")), "queue") is True  # concurrent enqueues


def test_queue_info_dequeue_may_lose_the_head():
    # the first dequeue timed out: it may have taken "a", so "b" next is fine
    h = hist(op(0, "enqueue", 0, 1, "a"), op(0, "enqueue", 2, 3, "b"), op(1, "dequeue", 4, 5, typ="info"),
             op(2, "dequeue", 6, 7, result="b"))
    assert valid(h, "queue") is True
    # ... but nothing can explain an empty dequeue while "b" is still queued
    h2 = hist(op(0, "enqueue", 0, 1, "a"), op(0, "enqueue", 2, 3, "b"), op(1, "dequeue", 4, 5, typ="info"),
              op(2, "dequeue", 6, 7, result=None))
    assert valid(h2, "queue") is False


# -- unique ids ---------------------------------------------------------------------------------

def test_unique_ids():
    ok = hist(op(0, "generate", 0, 1, result=1), op(1, "generate", 0, 1, result=2), op(2, "generate", 0, 1,
                                                                                        typ="info"))
    assert valid(ok, "unique-id") is True
    dup = hist(op(0, "generate", 0, 1, result=1), op(1, "generate", 2, 3, result=2, key="other"),
               op(2, "generate", 4, 5, result=1))
    r = check_linearizable(dup, model="unique-id")
    assert r.valid is False
    assert sorted(o.result for o in r.counterexample) == [1, 1]  # shrunk to the two duplicates


def test_unknown_operation_is_refused():
    with pytest.raises(ValueError, match="not an operation of the 'queue' model"):
        check_linearizable(hist(op(0, "push", 0, 1, 1)), model="queue")
    with pytest.raises(ValueError, match="model must be one of"):
        check_linearizable(hist(op(0, "read", 0, 1)), model="nope")


# -- a custom model: the worked example of docs/models.md ---------------------------------------

class Counter(Model):
    """A counter: ``incr n`` adds n; ``read`` returns the total."""

    name = "counter"
    operations = frozenset({"incr", "read"})

    def init(self):
        return 0

    def step(self, state: int, input: Input, output: Output):
        if input.f == "incr":
            return True, state + input.value
        return output.type == "info" or output.value == state, state

    def read_only(self, input: Input) -> bool:
        return input.f == "read"


def test_custom_model_counter():
    ok = hist(op(0, "incr", 0, 2, 1), op(1, "incr", 0, 2, 2), op(2, "read", 1, 1.5, result=2),
              op(2, "read", 3, 4, result=3), op(0, "incr", 5, 6, 5, typ="info"), op(2, "read", 7, 8, result=8))
    assert valid(ok, Counter()) is True
    bad = hist(op(0, "incr", 0, 1, 1), op(1, "incr", 2, 3, 2), op(2, "read", 4, 5, result=2))  # lost the 1
    r = check_linearizable(bad, model=Counter())
    assert r.valid is False and r.model == "counter" and "counter model" in str(r)
    # a time limit gives "unknown", never a guess, for custom models too
    wide = hist(*[op(p, "incr", 0, 10, 1) for p in range(16)], op(99, "read", 11, 12, result=-1))
    assert check_linearizable(wide, model=Counter(), time_limit_s=0.01).valid in (None, False)
