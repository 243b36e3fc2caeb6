"""Same seed -> bit-identical results; different seeds differ; a named stream does not
depend on which other streams exist or in what order they were created."""

import numpy as np
import pandas as pd

from experiments import kernel_demo
from models.services import PoissonClient
from simulator import Constant, Simulation


def test_same_seed_bit_identical_frames():
    a = kernel_demo.run(kernel_demo.QUICK, seed=11)
    b = kernel_demo.run(kernel_demo.QUICK, seed=11)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
    assert a["requests"].to_csv().encode() == b["requests"].to_csv().encode()


def test_different_seeds_differ():
    a = kernel_demo.run(kernel_demo.QUICK, seed=1)["requests"]
    b = kernel_demo.run(kernel_demo.QUICK, seed=2)["requests"]
    assert not a["start"].equals(b["start"])


def test_streams_are_derived_by_name_not_order():
    s1, s2 = Simulation(seed=9), Simulation(seed=9)
    s1.rng("zzz").random(5)  # an unrelated component created first in one world only
    x1 = s1.rng("client.a").random(10)
    x2 = s2.rng("client.a").random(10)
    assert np.array_equal(x1, x2)
    assert not np.array_equal(s2.rng("client.b").random(10), x2)


def test_adding_a_component_does_not_shift_another():
    def arrivals(extra: bool):
        sim = Simulation(seed=4)
        sim.network(latency=Constant(0.001))
        sim.node("s").serve("get", service=Constant(0.0001), workers=8)
        if extra:
            PoissonClient(sim, "other", ["s"], rate=500, stop_at=2)
        PoissonClient(sim, "mine", ["s"], rate=100, stop_at=2)
        sim.run(until=3)
        df = sim.metrics.requests()
        return df[df["client"] == "mine"]["start"].to_numpy()

    assert np.array_equal(arrivals(False), arrivals(True))
