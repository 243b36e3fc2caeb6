"""Node semantics: crash-recover loses volatile state and running work, keeps durable
state; crash-stop is final; a pause holds messages and timers; a slow-down stretches work."""

import pytest

from simulator import Constant, Simulation


def two():
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.01))
    return sim, sim.node("c"), sim.node("s")


def test_crash_recover_state_processes_and_timers():
    sim, c, s = two()
    s.state["cache"] = 1
    s.durable["log"] = [1, 2]
    fired, interrupted_ok = [], []

    def worker():
        yield sim.env.timeout(10)
        interrupted_ok.append("finished")  # must never happen: the crash interrupts it

    s.spawn(worker())
    s.after(0.5, lambda: fired.append("timer"))
    recovered = []
    s.on_recover(lambda: recovered.append(dict(s.durable)))
    sim.at(0.2, s.crash)
    sim.at(0.3, s.recover)
    sim.run(until=20)
    assert s.state == {} and s.durable == {"log": [1, 2]}
    assert fired == [] and interrupted_ok == []
    assert recovered == [{"log": [1, 2]}] and s.up and s.crashes == 1


def test_work_in_service_is_lost_on_crash_and_down_node_is_silent():
    sim, c, s = two()
    s.serve("x", service=Constant(0.5), workers=1)
    out = []
    c.call("s", "x", None, 2.0, lambda o, v: out.append(o))
    sim.at(0.2, s.crash)
    sim.at(0.3, s.recover)
    sim.run(until=3)
    assert out == ["timeout"]
    assert s._pools["x"].served == 0


def test_crash_stop_is_final():
    sim, c, s = two()
    s.crash(stop=True)
    with pytest.raises(ValueError, match="crash-stopped"):
        s.recover()


def test_pause_holds_messages_and_timers_until_it_ends():
    sim, c, s = two()
    seen = []
    s.on("m", lambda msg: seen.append(("msg", sim.now)))
    s.after(0.2, lambda: seen.append(("timer", sim.now)))
    sim.at(0.05, lambda: s.pause(1.0))
    c.send("s", "m")  # arrives at 0.01: before the pause
    sim.at(0.1, lambda: c.send("s", "m"))  # arrives at 0.11: during the pause
    sim.run(until=3)
    assert seen[0] == ("msg", pytest.approx(0.01))
    assert [k for k, _ in seen[1:]] == ["msg", "timer"]
    assert all(t == pytest.approx(1.05) for _, t in seen[1:])


def test_slow_down_stretches_service_time():
    sim, c, s = two()
    s.serve("x", service=Constant(0.1), workers=1)
    s.slow_down(5.0)
    out = []
    c.call("s", "x", None, 5, lambda o, v: out.append(sim.now))
    sim.run(until=3)
    assert out[0] == pytest.approx(0.01 + 0.5 + 0.01)


def test_bad_node_input():
    sim, c, s = two()
    with pytest.raises(ValueError, match="already used"):
        sim.node("c")
    with pytest.raises(ValueError, match="workers"):
        s.serve("x", service=1.0, workers=0)
    with pytest.raises(ValueError, match="pause duration"):
        s.pause(-1)
    with pytest.raises(ValueError, match="not crashed"):
        s.recover()
