"""The workbench's reference nodes pass their workload's checker; each named wrong variant is caught."""

import pytest

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
