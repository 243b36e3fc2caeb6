"""The workbench's reference nodes pass their workload's checker; each named wrong variant is caught."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.workbench import SERVICES, reference
from simulator.workbench.harness import TestOptions, TestRun

CASES = [("echo", "reference", (), True), ("echo", "wrong-payload", (), False),
         ("broadcast", "reference", ("partition",), True), ("broadcast", "no-retry", ("partition",), False),
         ("broadcast", "volatile", ("kill",), False),
         ("unique-ids", "reference", ("kill",), True), ("unique-ids", "counter", (), False),
         ("unique-ids", "volatile", ("kill",), False),
         ("g-set", "reference", ("partition",), True), ("g-set", "no-gossip", (), False),
         ("pn-counter", "reference", ("partition",), True), ("pn-counter", "sum-gossip", (), False),
         ("g-counter", "reference", (), True), ("g-counter", "blind-write", (), False)]


def _run(wl, var, nem, seed=1):
    o = TestOptions(workload=wl, node=reference(wl, var), node_count=5, time_limit=20, rate=10, nemesis=nem,
                    nemesis_interval=3, seed=seed, latency_ms=100 if wl == "broadcast" else 0)
    svc = {"seq-kv": SERVICES["seq-kv"]} if wl == "g-counter" else {}
    return TestRun(o, services=svc).run().results()


@pytest.mark.parametrize("wl,var,nem,valid", CASES)
def test_reference_passes_and_variants_are_caught(wl, var, nem, valid):
    assert _run(wl, var, nem)["workload"]["valid"] is valid


def test_same_seed_same_history():
    a, b = _run("broadcast", "reference", ("partition",)), _run("broadcast", "reference", ("partition",))
    assert a == b


def test_bad_option_names_the_field():
    with pytest.raises(ValueError, match="rate"):
        TestOptions(workload="echo", node=reference("echo"), rate=-1)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=4) | st.tuples(kids, kids)
                     | st.dictionaries(st.text(max_size=3) | st.integers() | st.booleans(), kids, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=3), _json, max_size=5))
def test_wire_copy_is_exactly_the_json_round_trip(body):
    import json

    from simulator.workbench.host import wire_copy

    got = wire_copy(body)
    assert got == json.loads(json.dumps(body))
    assert json.dumps(got) == json.dumps(json.loads(json.dumps(body)))  # same types too (1 vs 1.0, lists)


@pytest.mark.parametrize("bad", [{"s": {1, 2}}, {"n": __import__("numpy").int64(3)}, {"o": object()}])
def test_wire_copy_refuses_what_json_refuses(bad):
    from simulator.workbench.host import wire_copy

    with pytest.raises(TypeError):
        wire_copy(bad)


def test_an_echo_reply_without_its_payload_is_caught():
    from models.workbench.labs import EchoStarter

    o = TestOptions(workload="echo", node=EchoStarter, node_count=1, time_limit=3)
    w = TestRun(o).run().results()["workload"]
    assert w["valid"] is False and w["anomaly"] == "echo-mismatch" and "without an echo field" in w["witness"][0]


def test_set_full_stable_latency_is_jepsens_from_known_to_the_last_read_that_missed_it():
    """jepsen.checker/set-full-element-results: stable-time = the start of the last read missing the
    element (0 if none began after it was known); lost if a read begun after it was known missed it and
    no later read held it; never-read if no read began after it was known."""
    from simulator.history.ops import Op
    from simulator.workbench import checkers

    def read(i, t, held):
        return Op(i, 9, "read", None, None, held, "ok", t, t + 0.01)

    add = lambda i, v, t: Op(i, 1, "add", None, v, None, "ok", t, t)  # noqa: E731
    ops = [add(0, "a", 1.0), add(1, "b", 1.0), add(2, "c", 1.0), add(3, "d", 5.0),
           read(4, 1.5, ["b"]), read(5, 2.0, ["a", "b"]), read(6, 3.0, ["a", "b"]),  # a: missed at 1.5
           read(7, 4.0, ["a", "b", "c"]),   # c: missed at 1.5, 2, 3
           read(8, 4.5, ["a", "c"])]        # b: present, then missed by the last read: lost
    r = checkers.set_full(ops, final_check=False, per_element=True)
    assert r["lost"] == ["b"] and r["never_read_count"] == 1  # d: no read began after 5.0
    assert sorted(round(v, 6) for _, v in r["stable_by_element"]) == [0.5, 2.0]  # a: 1.5-1.0; c: 3.0-1.0
    # held by every read that began after it was known: 0, however long until the next read
    r = checkers.set_full([add(0, "x", 1.0), read(1, 0.5, []), read(2, 9.0, ["x"])], final_check=False)
    assert r["stable_latencies_ms"]["1"] == 0.0 and r["stale_count"] == 0
    # held only by a read that began before it was known (known = that read's completion): Jepsen calls
    # it stable (a last read holding it, none missing it after), latency 0 — not never-read
    slow_add = Op(0, 1, "add", None, "y", None, "ok", 4.0, 5.0)
    r = checkers.set_full([slow_add, read(1, 4.5, ["y"])], final_check=False)
    assert r["stable_count"] == 1 and r["never_read_count"] == 0 and r["stable_latencies_ms"]["1"] == 0.0
