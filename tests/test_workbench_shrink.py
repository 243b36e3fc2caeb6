"""Every workload's typical mistake: the reference passes under the nemesis, the variant is caught,
and its failing schedule shrinks to a 1-minimal one (drop any one fault and the test passes)."""

from dataclasses import replace

import pytest

from models.workbench import reference
from simulator.faults import FaultSchedule
from simulator.runner.workbench_cmd import build, shrink_test
from simulator.workbench.harness import TestOptions

# workload, variant, nemesis, extra options
CASES = [
    ("broadcast", "no-retry", ("partition",), {"latency_ms": 100}),
    ("broadcast", "volatile", ("kill",), {"latency_ms": 100}),
    ("unique-ids", "volatile", ("kill",), {}),
    ("g-counter", "blind-write", ("partition",), {"latency_ms": 20}),
    ("kafka", "per-node-offsets", ("partition",), {"rate": 50}),
    ("lin-kv", "follower-read", ("partition",), {"latency_ms": 20, "rate": 20}),
    ("lin-kv", "raft-follower-read", ("partition",), {"latency_ms": 10, "rate": 20}),
    ("txn-list-append", "local-gossip", ("partition",), {"latency_ms": 20, "rate": 20}),
]


def _opts(wl, variant, nemesis, extra, seed):
    return TestOptions(workload=wl, node=reference(wl, variant), time_limit=15, nemesis=nemesis, nemesis_interval=3,
                       seed=seed, trace=False, **extra)


def _valid(opts):
    return build(opts).run().results()["valid"]


@pytest.mark.parametrize("wl,variant,nemesis,extra", CASES)
def test_reference_passes_variant_caught_and_shrunk(wl, variant, nemesis, extra):
    seed = 1
    assert _valid(_opts(wl, "reference", nemesis, extra, seed)) is True
    bad = _opts(wl, variant, nemesis, extra, seed)
    assert _valid(bad) is False
    sh = shrink_test(bad, budget_s=60)
    faults = list(sh["schedule"].faults)
    assert len(faults) <= sh["original"]
    assert _valid(replace(bad, faults=FaultSchedule(faults))) is False  # the minimal schedule still fails
    if faults:  # 1-minimal: without any one of its faults, the test passes
        for i in range(len(faults)):
            assert _valid(replace(bad, faults=FaultSchedule(faults[:i] + faults[i + 1:]))) is not False, i
