"""Fault schedules are values: printable, JSON round-trip, replayable to the same result;
invalid ones are refused before the run starts."""

import pandas as pd
import pytest

from models.services import PoissonClient
from simulator import Constant, Exponential, FaultSchedule, Simulation, random_nemesis


def build(seed, sched):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.002), loss=0.01)
    for i in range(3):
        sim.node(f"s{i}").serve("get", service=Exponential(0.003), workers=2)
    PoissonClient(sim, "c", ["s0", "s1", "s2"], rate=200, timeout_s=0.05)
    sim.faults.extend(sched)
    sim.run(until=5)
    return sim


def full_schedule():
    f = FaultSchedule()
    f.partition(1.0, [["c", "s0"], ["s1", "s2"]], heal_at=2.0)
    f.one_way(2.5, ["s1"], ["c"], heal_at=3.0)
    f.bridge(3.1, ["s0"], ["s1"], bridge="s2", heal_at=3.3)
    f.isolate(3.5, "s2", heal_at=3.7)
    f.crash(1.2, "s1", recover_at=1.8)
    f.pause(2.0, "s0", 0.3)
    f.slow_down(3.0, "s2", 10, 0.5)
    f.clock_jump(0.5, "s0", -0.25)
    f.latency_spike(4.0, 0.5, factor=20)
    f.loss_burst(4.5, 0.2, 0.5)
    return f


def test_json_round_trip_and_replay():
    f = full_schedule()
    g = FaultSchedule.from_json(f.to_json())
    assert g == f
    assert "partition" in str(f).lower()
    a, b = build(3, f), build(3, g)
    pd.testing.assert_frame_equal(a.metrics.requests(), b.metrics.requests())
    out = a.metrics.requests()
    during = out[(out.start > 1.0) & (out.start < 2.0) & (out.target != "s0")]
    assert (during.outcome == "timeout").all()  # c cannot reach s1/s2 during the split


def test_random_nemesis_is_seeded_and_a_value():
    a = random_nemesis(["a", "b", "c", "d", "e"], kind="mixed", until=20, seed=4)
    b = random_nemesis(["a", "b", "c", "d", "e"], kind="mixed", until=20, seed=4)
    c = random_nemesis(["a", "b", "c", "d", "e"], kind="mixed", until=20, seed=5)
    assert a == b and a != c and len(a) > 5
    assert FaultSchedule.from_json(a.to_json()) == a


def test_majorities_ring_gives_each_node_a_majority():
    sched = random_nemesis(list("abcde"), kind="majorities_ring", start=0, until=1, fault_s=1, calm_s=1, seed=1)
    sim = Simulation(seed=0)
    for n in "abcde":
        sim.node(n)
    sim.faults.extend(sched)
    sim.run(until=0.5)
    for a in "abcde":
        reach = [b for b in "abcde" if sim.net.blocked(a, b) is None]
        assert len(reach) == 3  # itself and two neighbours: a majority of 5
    views = {frozenset(b for b in "abcde" if sim.net.blocked(a, b) is None) for a in "abcde"}
    assert len(views) == 5  # no two nodes share the same majority


def test_invalid_schedules_raise_before_the_run():
    sim = Simulation(seed=0)
    sim.node("a")
    sim.faults.crash(1.0, "ghost")
    with pytest.raises(ValueError, match="unknown node 'ghost'"):
        sim.run(until=2)
    assert sim.now == 0
    sim = Simulation(seed=0)
    sim.node("a"), sim.node("b")
    sim.faults.heal(1.0)
    with pytest.raises(ValueError, match="no partition to heal"):
        sim.run(until=2)
    with pytest.raises(ValueError, match="heal_at must be > at"):
        FaultSchedule().partition(2.0, [["a"], ["b"]], heal_at=1.0)
    with pytest.raises(ValueError, match="at must be a time"):
        FaultSchedule().crash(-1, "a")
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultSchedule.from_list([{"kind": "meteor", "at": 1}])


def test_a_fault_added_during_a_run_is_applied_or_refused():
    from simulator import Simulation

    sim = Simulation(seed=1)
    a = sim.node("a")
    sim.node("b")
    sim.run(until=1.0)
    sim.faults.crash(2.0, "a", recover_at=3.0)  # valid: scheduled at once
    sim.run(until=2.5)
    assert not a.up
    sim.run(until=3.5)
    assert a.up
    with pytest.raises(ValueError, match="unknown node 'ghost'"):
        sim.faults.crash(4.0, "ghost")
    with pytest.raises(ValueError, match="must not start in the past"):
        sim.faults.crash(1.0, "a")
    assert len(sim.faults) == 1  # the refused ones were not kept
