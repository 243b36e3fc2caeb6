"""Failure detectors against their definitions, and lease safety with and without fencing."""

import math

import numpy as np
import pytest

from models.coordination import DetectorConfig, FailureDetector, LeaseClient, LockService, Storage, audit, phi
from simulator import Constant, Simulation


def test_phi_is_minus_log10_of_the_normal_tail():
    """phi(d) = -log10(1 - F(d)), F normal: at the mean it is -log10(0.5); k standard
    deviations later -log10(Q(k)) (Q(3) = 0.00135 -> 2.87)."""
    assert phi(0.1, 0.1, 0.01) == pytest.approx(-math.log10(0.5))
    assert phi(0.13, 0.1, 0.01) == pytest.approx(-math.log10(0.5 * math.erfc(3 / math.sqrt(2))))
    assert phi(0.13, 0.1, 0.01) == pytest.approx(2.869, abs=1e-3)


def detector(seed: int, cfg: DetectorConfig, crash_at: float | None, latency: float = 0.002, until: float = 5.0,
             pause: tuple[float, float] | None = None):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(latency))
    fd = FailureDetector(sim, "monitor", "target", cfg)
    if crash_at is not None:
        sim.faults.crash(crash_at, "target")
    if pause is not None:
        sim.faults.pause(pause[0], "target", pause[1])
    sim.run(until=until)
    return fd


def test_phi_level_matches_the_closed_form_on_regular_heartbeats():
    cfg = DetectorConfig(kind="phi", threshold=100.0, interval_s=0.1, min_std_s=0.01)
    fd = detector(1, cfg, crash_at=1.05, until=1.002 + 0.13)  # last heartbeat sent at 1.0, in at 1.002
    assert fd.last == pytest.approx(1.002)
    assert fd.level() == pytest.approx(phi(0.13, 0.1, 0.01), rel=1e-6)  # regular gaps: std floored


def test_fixed_timeout_detects_a_crash_after_timeout_minus_the_heartbeat_age():
    """Constant latency L, period I, timeout T: a crash at c is suspected at s + L + T, where
    s = floor(c / I) I is the last heartbeat sent: detection in [L + T - I, L + T], mean
    L + T - I/2 for crashes uniform in the period (checked every check_s: that much later)."""
    L, I, T, chk = 0.002, 0.1, 0.3, 0.001
    cfg = DetectorConfig(kind="timeout", threshold=T, interval_s=I, check_s=chk)
    rng = np.random.default_rng(7)
    times = []
    for k, u in enumerate(rng.random(40)):
        c = 1.0 + u * I
        fd = detector(k, cfg, crash_at=c, latency=L, until=2.0)
        first = fd.intervals(2.0)[0][0]
        times.append(first - c)
        assert L + T - I - 1e-9 <= first - c <= L + T + chk + 1e-9
    assert np.mean(times) == pytest.approx(L + T - I / 2, abs=I / math.sqrt(12 * 40) * 4 + chk)


def test_no_false_suspicion_without_faults_and_a_long_pause_is_one():
    cfg = DetectorConfig(kind="timeout", threshold=0.25, interval_s=0.1)
    assert detector(1, cfg, crash_at=None).intervals(5.0) == []
    fd = detector(1, cfg, crash_at=None, pause=(2.0, 1.0))  # a 1 s GC pause of the target
    sus = fd.intervals(5.0)
    # the last heartbeat before the pause arrived in (1.9, 2.0]: suspected T after it, trusted
    # again when the held heartbeat goes out at the pause's end
    assert len(sus) == 1 and 2.0 + 0.25 - 0.1 <= sus[0][0] <= 2.0 + 0.25 + 0.01 and 2.99 < sus[0][1] < 3.1


def lease_run(*, fencing: bool, pause_s: float, drift_ppm: float = 0.0, margin_s: float = 0.0,
              ttl_s: float = 1.0, work_s: float = 0.05, until: float = 6.0):
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.001))
    lock = LockService(sim, ttl_s=ttl_s)
    store = Storage(sim, fencing=fencing)
    LeaseClient(sim, "a", ttl_s=ttl_s, work_s=work_s, margin_s=margin_s, clock=dict(drift_ppm=drift_ppm))
    LeaseClient(sim, "b", ttl_s=ttl_s, work_s=work_s, margin_s=margin_s, start_at=0.01,
                clock=dict(drift_ppm=drift_ppm))
    if pause_s:
        sim.faults.pause(0.52, "a", pause_s)  # mid-work: after its check, before its write
    sim.run(until=until)
    return audit(lock, store)


def test_a_paused_holder_corrupts_without_fencing_and_is_refused_with_it():
    """Kleppmann 2016: the pause outlives the lease, b takes the lock and writes, then a wakes
    and writes with its old lease."""
    bad = lease_run(fencing=False, pause_s=2.0)
    good = lease_run(fencing=True, pause_s=2.0)
    assert bad["stale_writes"] >= 1 and bad["outside_lease"] >= 1
    assert good["stale_writes"] == 0 and good["refused"] >= 1
    calm = lease_run(fencing=False, pause_s=0.0)
    assert calm["stale_writes"] == 0


def test_a_slow_client_clock_is_safe_only_with_a_margin_for_its_drift():
    """A client clock 2% slow (drift -20000 ppm) over a 2 s TTL overestimates its lease by
    about 0.04 s: writes land outside the lease unless margin >= |drift| ttl + work + latency."""
    kw = dict(fencing=True, pause_s=0.0, drift_ppm=-20_000, ttl_s=2.0, work_s=0.005, until=12.0)
    assert lease_run(margin_s=0.0, **kw)["outside_lease"] >= 1
    assert lease_run(margin_s=0.02 * 2.0 + 0.005 + 0.002 + 0.01, **kw)["outside_lease"] == 0


def test_fencing_tokens_lesson_on_quick():
    from experiments import fencing_tokens as ft

    s = ft.run(ft.QUICK, seed=1)["summary"]
    pz = s[s.panel == "pauses"]
    long_pause = pz[pz.pause_s > ft.QUICK.ttl_s]
    assert long_pause[~long_pause.fencing].stale_writes.sum() >= 1  # a lease alone: corrupted
    assert pz[pz.fencing].stale_writes.sum() == 0 and long_pause[long_pause.fencing].refused.sum() >= 1
    assert pz[pz.pause_s == 0].stale_writes.sum() == 0  # no pause, no harm
    dz = s[s.panel == "drift"]
    act = dz.margin_s.min()
    slow = dz[dz.drift_ppm <= -20_000]
    assert slow[slow.margin_s == act].outside_lease.sum() >= 1  # the drift is not covered
    assert dz[dz.margin_s > act].outside_lease.sum() == 0 and dz[dz.drift_ppm == 0].outside_lease.sum() == 0


def test_failure_detector_tradeoff_on_quick():
    """Higher thresholds detect later and suspect live nodes less; a fixed timeout T detects a
    crash T - I/2 (+ latency) after it on average (the last heartbeat is I/2 old); phi without a
    pause allowance suspects live nodes more often than with one."""
    from experiments import failure_detectors as fdx

    p = fdx.QUICK
    s = fdx.run(p, seed=1)["summary"]
    for det in ("timeout", "phi", "phi+pause"):
        d = s[s.detector == det].sort_values("threshold")
        assert d.detection_mean_s.is_monotonic_increasing, d
        assert d.false_positives_per_min.iloc[0] > d.false_positives_per_min.iloc[-1]
    t = s[s.detector == "timeout"].set_index("threshold")
    for T in p.timeouts_s:
        assert T - p.interval_s <= t.loc[T, "detection_mean_s"] <= T + 0.05
    ph = s[s.detector == "phi"].set_index("threshold").false_positives_per_min
    pp = s[s.detector == "phi+pause"].set_index("threshold").false_positives_per_min
    assert (pp < ph).all()
