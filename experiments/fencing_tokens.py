"""Can a lock with a lease keep two clients from writing at once when one of them pauses?

Setup (Martin Kleppmann, "How to do distributed locking", 2016): clients ``a`` and ``b`` take a
lease (TTL ``ttl_s``) from a lock service, check they still hold it, work ``work_s`` and write to
a storage service, in a loop. Client ``a`` suffers stop-the-world pauses (GC, VM stalls) of
``pause_s`` at random moments; a pause between the check and the write outlives the lease, ``b``
takes the lock and writes, and ``a`` wakes and writes with its old lease. Storage with
**fencing** remembers the highest token it has seen and refuses lower ones. Second panel: the
clients' clocks run slow by ``drift_ppm`` (no pauses): a client measures its lease on its own
clock, so it overestimates it by ttl·|drift| unless its safety margin covers that (both arms of
that panel already keep a margin for the work and the network, the check-then-act gap).

Lesson: a lease alone is not mutual exclusion — any pause longer than the TTL lets a stale
holder overwrite the new holder's data; fencing tokens make the storage refuse it. Leases also
assume bounded clock drift: a margin of |drift|·TTL (plus work and network time) keeps a slow
clock safe.

Reproduces (``validate``): Kleppmann's two safety claims as exact rows — with fencing no stale
write is ever applied, whatever the pauses; and a lease client whose clock runs slow by |rho|
writes only inside its lease when its margin is at least work + latency + |rho| (TTL - work -
latency) (its clock reads TTL - margin after (TTL - margin) / (1 - |rho|) of true time).
"""

from __future__ import annotations

import pandas as pd

from models.coordination import LeaseClient, LockService, Storage, audit
from simulator import LogNormal, Simulation
from simulator.runner import Check, param, parameters


@parameters
class Params:
    duration_s: float = param(30.0, unit="s", gt=0, le=3600, help="simulated time per arm")
    ttl_s: float = param(1.0, unit="s", gt=0, le=600, help="lease time-to-live")
    work_s: float = param(0.05, unit="s", gt=0, le=60, help="work between the lease check and the write")
    pauses_s: tuple[float, ...] = param((0.0, 0.25, 0.5, 1.0, 2.0, 4.0), unit="s", ge=0, le=600,
                                        help="lengths of client a's stop-the-world pauses, one arm each")
    pause_rate: float = param(0.5, unit="1/s", gt=0, le=100, help="pauses per second of client a (Poisson)")
    drifts_ppm: tuple[float, ...] = param((0.0, -5_000.0, -20_000.0, -50_000.0), unit="ppm", ge=-500_000, le=0,
                                          help="clients' clock drift (negative: slow), one arm each")
    latency_median_s: float = param(0.001, unit="s", gt=0, le=10, help="median one-way latency (lognormal)")
    drift_ttl_s: float = param(5.0, unit="s", gt=0, le=600,
                               help="lease TTL in the drift panel (drift's effect grows with the TTL)")


QUICK = Params(duration_s=10.0, pauses_s=(0.0, 0.5, 2.0), drifts_ppm=(0.0, -20_000.0, -50_000.0))


def one(p: Params, seed: int, *, fencing: bool, pause_s: float, drift_ppm: float, margin_s: float,
        ttl_s: float | None = None) -> dict:
    sim = Simulation(seed=seed)  # common random numbers: same pauses and latencies in every arm
    sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5))
    ttl = p.ttl_s if ttl_s is None else ttl_s
    lock = LockService(sim, ttl_s=ttl)
    store = Storage(sim, fencing=fencing)
    clock = dict(drift_ppm=drift_ppm)
    LeaseClient(sim, "a", ttl_s=ttl, work_s=p.work_s, margin_s=margin_s, clock=clock)
    LeaseClient(sim, "b", ttl_s=ttl, work_s=p.work_s, margin_s=margin_s, start_at=0.013, clock=clock)
    if pause_s > 0:
        g = sim.rng("fencing.pauses")
        t = float(g.exponential(1 / p.pause_rate))
        while t < p.duration_s:
            sim.faults.pause(t, "a", pause_s)
            t += pause_s + float(g.exponential(1 / p.pause_rate))
    sim.run(until=p.duration_s)
    return audit(lock, store)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for pause_s in p.pauses_s:
        for fencing in (False, True):
            r = one(p, seed, fencing=fencing, pause_s=pause_s, drift_ppm=0.0, margin_s=0.0)
            rows.append({"panel": "pauses", "fencing": fencing, "pause_s": pause_s, "drift_ppm": 0.0,
                         "margin_s": 0.0, **r})
    act = p.work_s + 20 * p.latency_median_s  # check-then-act: the write lands this much after the check
    for drift in p.drifts_ppm:
        for margin in (act, min(act + abs(drift) * 1e-6 * p.drift_ttl_s, 0.9 * p.drift_ttl_s)):
            r = one(p, seed, fencing=True, pause_s=0.0, drift_ppm=drift, margin_s=margin, ttl_s=p.drift_ttl_s)
            rows.append({"panel": "drift", "fencing": True, "pause_s": 0.0, "drift_ppm": drift,
                         "margin_s": margin, **r})
    return {"summary": pd.DataFrame(rows)}


KLEPPMANN = "Kleppmann 2016, 'How to do distributed locking' (fencing tokens; leases assume bounded drift)"


def validate(quick: bool) -> list[Check]:
    """Exact safety rows over several seeds: stale writes with fencing (0, every pause arm), and
    writes outside the lease with a drift-covering margin (0, every drift arm). The counterpart
    arms (no fencing; margin for work and network only) show the rows could fail."""
    p = QUICK if quick else Params()
    seeds = (1, 2, 3) if quick else tuple(range(1, 11))
    s = pd.concat([run(p, seed)["summary"] for seed in seeds], ignore_index=True)
    checks = []
    pz = s[(s.panel == "pauses") & s.fencing]
    unfenced = int(s[(s.panel == "pauses") & ~s.fencing].stale_writes.sum())
    checks.append(Check(
        source=KLEPPMANN, setup=f"2 clients, TTL {p.ttl_s:g} s, client a pauses {list(p.pauses_s)} s at "
                                f"{p.pause_rate:g}/s, storage checks tokens; {len(seeds)} seeds (without fencing: "
                                f"{unfenced} stale writes)",
        quantity="stale writes applied with fencing tokens", published=0.0, measured=float(pz.stale_writes.sum()),
        tolerance=0.0, why="exact: the storage refuses any token below the highest it has seen"))
    act = p.work_s + 20 * p.latency_median_s
    for drift in p.drifts_ppm:
        d = s[(s.panel == "drift") & (s.drift_ppm == drift)]
        safe = d[d.margin_s == d.margin_s.max()]
        rho = abs(drift) * 1e-6
        need = act + rho * (p.drift_ttl_s - act)
        checks.append(Check(
            source=KLEPPMANN, setup=f"TTL {p.drift_ttl_s:g} s, clocks slow by {rho:.1%}, margin "
                                    f"{safe.margin_s.iloc[0]:.3f} s >= needed {need:.3f} s; {len(seeds)} seeds (margin "
                                    f"{act:.2f} s: {int(d[d.margin_s == act].outside_lease.sum())} outside)",
            quantity="writes applied after their lease expired", published=0.0,
            measured=float(safe.outside_lease.sum()), tolerance=0.0,
            why="exact: the last check is (TTL - margin) / (1 - |rho|) after the request and the write lands "
                "within work + network of it"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"]
    num = ["stale_writes", "outside_lease", "applied", "refused"]
    s = s.groupby(["panel", "fencing", "pause_s", "drift_ppm", "margin_s"], as_index=False)[num].mean()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.5, 4.3), constrained_layout=True)
    pz = s[s.panel == "pauses"]
    for fencing, label in ((False, "lease only"), (True, "lease + fencing token")):
        d = pz[pz.fencing == fencing].sort_values("pause_s")
        a1.plot(d.pause_s, d.stale_writes, "o-", color=plots.color_for(label), label=label)
    a1.axvline(p.ttl_s, color="0.5", ls=":", lw=1)
    a1.annotate("TTL", (p.ttl_s, a1.get_ylim()[1] * 0.9), xytext=(3, 0), textcoords="offset points", fontsize=8)
    a1.set_xlabel("client a's stop-the-world pause (s)")
    a1.set_ylabel("stale writes applied (overwrote a newer holder)")
    a1.set_title("A pause longer than the lease corrupts data; fencing refuses it", fontsize=10)
    a1.legend(fontsize=8)
    dz = s[s.panel == "drift"]
    act = dz.margin_s.min()
    for small, label in ((True, "margin = work + network"), (False, "margin = work + network + |drift|·TTL")):
        d = dz[(dz.margin_s == act) == small if small else dz.margin_s > act].sort_values("drift_ppm", ascending=False)
        if not small:
            d = pd.concat([dz[(dz.drift_ppm == 0) & (dz.margin_s == act)], d]).sort_values("drift_ppm", ascending=False)
        a2.plot(-d.drift_ppm / 1e4, d.outside_lease, "o-", color=plots.color_for(label), label=label)
    a2.set_xlabel(f"client clock running slow by (%), TTL {p.drift_ttl_s:g} s")
    a2.set_ylabel("writes applied after the lease expired")
    a2.set_title("A slow clock overestimates the lease unless the margin covers the drift", fontsize=10)
    a2.legend(fontsize=8)
    fig.suptitle("Leases are not locks: pauses and clock drift let an expired holder write (Kleppmann 2016)")
    return {"fencing_tokens": fig}
