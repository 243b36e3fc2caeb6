"""Every request is accounted for under random fault schedules (hypothesis): the requests
issued equal the sum of the outcomes plus those still in flight, and every message sent is
delivered, dropped or still in flight."""

from hypothesis import given, settings
from hypothesis import strategies as st

from models.resilience import RetryPolicy
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation, random_nemesis
from simulator.faults import FaultSchedule

NODES = ["s0", "s1", "s2", "c0", "c1"]


@st.composite
def schedules(draw):
    kind = draw(st.sampled_from(["halves", "majorities_ring", "isolate", "flapping", "crash", "mixed"]))
    sched = random_nemesis(NODES, kind=kind, start=0.2, until=3.0, fault_s=draw(st.floats(0.1, 0.8)),
                           calm_s=draw(st.floats(0.05, 0.5)), seed=draw(st.integers(0, 10**6)))
    extra = FaultSchedule()
    if draw(st.booleans()):
        extra.pause(draw(st.floats(0, 2.5)), draw(st.sampled_from(NODES)), draw(st.floats(0.01, 0.5)))
    if draw(st.booleans()):
        extra.latency_spike(draw(st.floats(0, 2.5)), draw(st.floats(0.01, 0.5)), factor=draw(st.floats(1, 50)))
    if draw(st.booleans()):
        extra.loss_burst(draw(st.floats(0, 2.5)), draw(st.floats(0.01, 0.5)), draw(st.floats(0, 1)))
    sched.extend(extra)
    return sched


@settings(max_examples=25, deadline=None)
@given(sched=schedules(), seed=st.integers(0, 2**32 - 1), until=st.floats(1.0, 4.0),
       loss=st.floats(0, 0.3), dup=st.floats(0, 0.1))
def test_every_request_is_accounted_for(sched, seed, until, loss, dup):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(0.002, 0.8), loss=loss, duplicate=dup, reorder=0.05)
    for s in NODES[:3]:
        sim.node(s, refuse_when_down=seed % 2 == 0).serve("get", service=Exponential(0.004), workers=2,
                                                          queue_limit=20)
    clients = [PoissonClient(sim, c, NODES[:3], rate=300, timeout_s=0.05,
                             retry=RetryPolicy(max_attempts=3, base_s=0.005, cap_s=0.05)) for c in NODES[3:]]
    sim.faults.extend(sched)
    sim.run(until=until)
    counts = sim.metrics.counts()
    issued = sum(c.issued for c in clients)
    assert issued == len(sim.metrics) == sum(counts.values())
    df = sim.metrics.requests()
    assert (df["outcome"] == "in_flight").sum() == counts["in_flight"]
    assert df.loc[df["outcome"] != "in_flight", "end"].notna().all()
    assert (df.loc[df["outcome"] != "in_flight", "latency"] >= 0).all()
    net = sim.net
    assert net.sent == net.delivered + net.dropped_loss + net.dropped_partition + net.in_flight
    assert net.in_flight >= 0
