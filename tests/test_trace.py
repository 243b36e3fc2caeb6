"""The message trace: off by default (None: nothing recorded), and when on, every message
sent has exactly one fate (delivered, dropped, or in flight) per copy."""

from simulator import Constant, Simulation


def test_trace_off_by_default_and_complete_when_on():
    assert Simulation(seed=1).trace is None
    sim = Simulation(seed=1, trace=True)
    sim.network(latency=Constant(0.01), loss=0.3)
    a, b = sim.node("a"), sim.node("b")
    b.on("m", lambda msg: None)
    for _ in range(200):
        a.send("b", "m")
    sim.at(0.005, lambda: sim.net.partition([["a"], ["b"]]))
    sim.at(0.5, sim.net.heal)
    sim.at(0.55, lambda: sim.network(loss=0.0))
    sim.at(0.6, lambda: a.send("b", "m"))
    sim.run(until=0.605)  # the last message is still in flight
    m = sim.trace.messages()
    assert len(m) == 201 and m["msg_id"].is_unique
    fates = m["fate"].value_counts().to_dict()
    assert fates["in_flight"] == 1
    assert fates["drop"] == sim.net.dropped_loss + sim.net.dropped_partition
    assert "deliver" not in fates  # every surviving message was in flight when the cut came
    kinds = set(sim.trace.frame()["kind"])
    assert {"send", "drop", "partition", "heal"} <= kinds
