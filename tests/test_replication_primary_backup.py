"""Primary-backup: sync loses no acknowledged write on failover, async loses the unshipped ones;
the failure detector promotes within its timeout; a partition makes two primaries (split brain)."""

from __future__ import annotations

import pytest

from models.replication.kv import KVWorkload
from models.replication.primary_backup import PrimaryBackup
from simulator import Constant, LogNormal, Simulation

CRASH_AT = 2.0


def run(mode: str, seed: int, lag: float = 0.0):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=0.01)
    store = PrimaryBackup(sim, 3, mode=mode, replication_lag_s=lag, heartbeat_interval_s=0.05,
                          failover_timeout_s=0.3)
    wl = KVWorkload(sim, store, clients=4, rate=100, keys=5, write_ratio=0.5, timeout_s=0.5, stop_at=5.0)
    sim.faults.crash(at=CRASH_AT, node="pb0", recover_at=3.5)
    sim.run(until=6.0)
    h = wl.history
    acked = [h.value[i] for i, t in enumerate(h.type) if t == "ok" and h.f[i] == "write"]
    return store, acked


@pytest.mark.parametrize("seed", range(4))
def test_sync_replication_loses_no_acknowledged_write_on_failover(seed):
    store, acked = run("sync", seed)
    assert len(store.failovers) >= 1 and store.primaries() == [store.primary()] != ["pb0"]
    assert len(acked) > 100
    assert store.lost_writes(acked) == []


def test_async_replication_loses_acknowledged_writes_on_failover():
    # ~100 writes/s acked at once but shipped 0.1 s later: the ~10 acked in the last 0.1 s
    # before the crash never reach a backup. Direction only, summed over seeds (Poisson mean ~30).
    lost = 0
    for seed in range(3):
        store, acked = run("async", seed, lag=0.1)
        lost += len(store.lost_writes(acked))
    assert lost >= 5


def test_failure_detector_promotes_the_next_backup_within_its_timeout():
    sim = Simulation(seed=1)
    sim.network(latency=Constant(0.001))
    hb, timeout = 0.05, 0.3
    store = PrimaryBackup(sim, 3, heartbeat_interval_s=hb, failover_timeout_s=timeout)
    sim.faults.crash(at=1.0, node="pb0")
    sim.run(until=3.0)
    assert len(store.failovers) == 1
    t, who, view = store.failovers[0]
    # last heartbeat heard in (1 - hb, 1]; the check runs every hb: promotion in this window
    assert 1.0 + timeout - hb <= t <= 1.0 + timeout + hb + 0.002
    assert (who, view) == ("pb1", 1)


def test_partition_makes_two_primaries_until_it_heals():
    sim = Simulation(seed=2)
    sim.network(latency=Constant(0.001))
    store = PrimaryBackup(sim, 3)
    seen: list = []
    sim.faults.partition(at=1.0, heal_at=2.0, groups=[["pb0"], ["pb1", "pb2"]])
    sim.at(1.9, lambda: seen.append(sorted(store.primaries())))
    sim.run(until=3.0)
    assert seen == [["pb0", "pb1"]], "without consensus both sides serve: split brain"
    assert store.primaries() == ["pb1"], "after heal the old primary learns the higher view and steps down"


def test_backups_redirect_and_the_primary_serves_cas():
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.001))
    PrimaryBackup(sim, 3)
    c = sim.node("c")
    out: list = []
    sim.at(0.1, lambda: c.call("pb1", "kv.write", ("k", 1), 1.0, lambda o, v: out.append((o, v))))
    sim.at(0.2, lambda: c.call("pb0", "kv.write", ("k", 1), 1.0, lambda o, v: out.append((o, v))))
    sim.at(0.3, lambda: c.call("pb0", "kv.cas", ("k", 2, 3), 1.0, lambda o, v: out.append((o, v))))
    sim.at(0.4, lambda: c.call("pb0", "kv.cas", ("k", 1, 3), 1.0, lambda o, v: out.append((o, v))))
    sim.at(0.5, lambda: c.call("pb2", "kv.read", ("k",), 1.0, lambda o, v: out.append((o, v))))
    sim.at(0.6, lambda: c.call("pb0", "kv.read", ("k",), 1.0, lambda o, v: out.append((o, v))))
    sim.run(until=1.0)
    assert out == [("error", ("not_leader", "pb0")), ("ok", True), ("error", "cas_mismatch"), ("ok", True),
                   ("error", ("not_leader", "pb0")), ("ok", 3)]


@pytest.mark.parametrize("kw, field", [(dict(mode="semi"), "mode"), (dict(failover_timeout_s=0.01), "failover"),
                                       (dict(replication_lag_s=-1), "replication_lag_s"), (dict(n=0), "n")])
def test_bad_settings_are_refused(kw, field):
    with pytest.raises(ValueError, match=field):
        PrimaryBackup(Simulation(seed=1), **kw)
