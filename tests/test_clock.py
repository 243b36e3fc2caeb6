"""Physical clocks: error grows exactly as the drift says; after sync it is bounded by
sync_error + |drift| x interval; jumps step the reading."""

import numpy as np
import pytest

from simulator import PhysicalClock, Simulation


def test_drift_error_grows_linearly():
    sim = Simulation(seed=0)
    n = sim.node("a", clock=dict(offset_s=0.002, drift_ppm=50))
    samples = []
    for t in (1, 10, 100, 1000):
        sim.at(t, lambda: samples.append((sim.now, n.clock.error())))
    sim.run(until=1001)
    for t, err in samples:
        assert err == pytest.approx(0.002 + 50e-6 * t, rel=1e-9)


def test_error_is_bounded_after_sync_and_uses_the_whole_band():
    sim = Simulation(seed=5)
    clock = PhysicalClock(sim, offset_s=1.0, drift_ppm=200, sync_interval_s=1.0, sync_error_s=0.001)
    errs = []

    def sample():
        errs.append(clock.error())
        sim.at(0.01, sample)

    sim.at(1.005, sample)  # start after the first sync
    sim.run(until=300)
    errs = np.array(errs)
    bound = clock.error_bound_after_sync  # 0.001 + 200e-6 * 1.0
    assert bound == pytest.approx(0.0012)
    assert np.abs(errs).max() <= bound + 1e-12
    # Sync errors are U(-e, e): both signs occur and reach most of the band.
    assert errs.min() < -0.0009 and errs.max() > 0.0011
    assert clock.syncs == 299


def test_jump_and_validation():
    sim = Simulation(seed=0)
    n = sim.node("a")
    n.clock.jump(-5.0)
    assert n.clock.now() == pytest.approx(-5.0)
    with pytest.raises(ValueError, match="drift_ppm"):
        PhysicalClock(sim, drift_ppm=float("nan"))
    with pytest.raises(ValueError, match="sync_interval_s"):
        PhysicalClock(sim, sync_interval_s=0)
