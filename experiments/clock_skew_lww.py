"""How many acknowledged writes does last-writer-wins lose as clocks drift apart?

Setup: a leaderless store (N = 3, W = 1, anti-entropy) whose replicas' physical clocks are
offset by up to ``skew`` (evenly spread from -skew/2 to +skew/2). Clients, one home replica
each, write unique values to a few hot keys (open-loop Poisson, writes only). An acknowledged
write ``w`` is **lost** if the store orders another acknowledged write ``w0`` of the same key
after it although ``w0`` completed before ``w`` began: once both have propagated, reads return
``w0`` (or its successors), never ``w`` — the store kept an older write over a
newer one. Three conflict resolutions on the same seeds: LWW by node-local physical
timestamps, LWW by hybrid logical clock stamps, and version vectors with siblings.

Lesson: with physical-timestamp LWW the lost fraction grows with the skew — whenever two writes
to a key are closer in time than the skew, the later one, coordinated by a node whose clock is behind, is
stamped "in the past" and silently discarded although it was acknowledged (Kingsbury, "The
trouble with timestamps", 2013). Version vectors lose nothing (concurrent writes become
siblings); HLC stamps order every write after what its coordinator has seen, so they lose
(almost) nothing — only writes whose predecessor had not yet reached the coordinator.

Reproduces (``validate``): the lost fraction of physical-timestamp LWW against a closed form in
the skew and the write interval (:func:`lww_lost_fraction`: Poisson writes per key, a write lost
iff an earlier-completed write from a coordinator whose clock is ahead by d fell within d minus
the network's legs before it), and version vectors losing none (DeCandia et al. 2007 §4.4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.replication.eventual import EventualStore, superseded_writes
from models.replication.kv import KVWorkload
from simulator import LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

RESOLUTIONS = ("lww", "hlc", "vv")
LABELS = {"lww": "LWW, physical timestamps", "hlc": "LWW, hybrid logical clocks", "vv": "version vectors (siblings)"}


@parameters
class Params:
    skews_ms: tuple[float, ...] = param((0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0), unit="ms",
                                        ge=0, le=3_600_000, help="clock offsets between replicas, one arm each")
    duration_s: float = param(10.0, unit="s", gt=0, le=3600, help="simulated time")
    clients: int = param(6, unit="clients", ge=2, le=1000,
                         help="writing clients (>= 2: writes must come from several replicas)")
    rate: float = param(10.0, unit="writes/s", gt=0, le=10_000, help="writes per second per client")
    keys: int = param(3, unit="keys", ge=1, le=10_000, help="distinct keys")
    latency_median_s: float = param(0.002, unit="s", gt=0, le=60, help="median one-way latency (lognormal)")
    anti_entropy_interval_s: float = param(0.2, unit="s", gt=0, le=3600, help="anti-entropy period")


QUICK = Params(skews_ms=(0.0, 20.0, 200.0), duration_s=3.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, histories = [], {}
    n = 3
    for skew_ms in p.skews_ms:
        skew = skew_ms / 1e3
        clocks = [dict(offset_s=skew * (i / (n - 1) - 0.5)) for i in range(n)]
        for res in RESOLUTIONS:
            sim = Simulation(seed=seed)  # common random numbers: same arrivals for every arm
            sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5))
            store = EventualStore(sim, n, w=1, r=1, resolution=res, clocks=clocks,
                                  anti_entropy_interval_s=p.anti_entropy_interval_s, record_versions=True)
            wl = KVWorkload(sim, store, clients=p.clients, rate=p.rate, keys=p.keys, write_ratio=1.0,
                            timeout_s=1.0, stop_at=p.duration_s)
            sim.run(until=p.duration_s + 20 * p.anti_entropy_interval_s)
            lost, acked = superseded_writes(wl.history, store)
            histories[f"history_{res}_{skew_ms:g}ms"] = wl.history  # histories/*.jsonl
            rows.append(dict(skew_ms=skew_ms, resolution=res, label=LABELS[res], acked=acked, lost=lost,
                             lost_fraction=lost / acked if acked else np.nan, converged=store.converged()))
    return {"summary": pd.DataFrame(rows), **histories}


def lww_lost_fraction(offsets: list[float], shares: list[float], rate_per_key: float, median_s: float,
                      sigma: float = 0.5, nodes: int = 48) -> float:
    """P(an acknowledged write is lost) under physical-timestamp LWW, for Poisson writes.

    Writes to a key arrive at ``rate_per_key``; a share ``shares[j]`` is coordinated by replica
    j, whose clock is offset by ``offsets[j]`` (W = 1, stamped on arrival). A write w stamped by
    a clock ``d = o_j - o_w > 0`` behind replica j's is lost iff some write w0 coordinated by j
    began less than ``d + l0 - l`` before w (its stamp is larger) yet completed before w began
    (more than its round trip ``l0 + l0'`` before): a window of length ``(d - l - l0')^+`` with
    l, l0' one-way LogNormal(median, sigma) legs, l shared by every j. Poisson thinning gives
    ``P(lost | l) = 1 - exp(-rate * sum_j share_j * E[(d_j - l - L)^+])``; the mean over l is
    taken by Gauss-Hermite quadrature (``nodes`` points per leg). Writes of one client never
    count (same coordinator, d = 0). Kingsbury, "The trouble with timestamps" (2013).
    """
    z, wz = np.polynomial.hermite_e.hermegauss(nodes)
    wz = wz / wz.sum()
    legs = median_s * np.exp(sigma * z)
    lost = 0.0
    for o_w, s_w in zip(offsets, shares):
        # E over L' of (d - l - L')^+ for each l on the grid, summed over the replicas ahead
        expo = np.zeros_like(legs)
        for o_j, s_j in zip(offsets, shares):
            d = o_j - o_w
            if d > 0:
                expo += s_j * (np.clip(d - legs[:, None] - legs[None, :], 0, None) @ wz)
        lost += s_w * float(wz @ (1 - np.exp(-rate_per_key * expo)))
    return lost


def validate(quick: bool) -> list[Check]:
    """LWW's lost fraction per skew against :func:`lww_lost_fraction`; version vectors lose 0.

    The write rate per key is the measured one (acknowledged writes / keys / duration: a busy
    client skips an arrival, thinning the nominal rate by a few per cent); the coordinator
    shares are the clients' home replicas. Tolerance: 4 binomial standard errors over the
    acknowledged writes of all seeds (+ 0.003 for the near-Poisson thinning).
    """
    p = QUICK if quick else Params()
    seeds = (1, 2) if quick else tuple(range(1, 9))
    s = pd.concat([run(p, seed)["summary"].assign(seed=seed) for seed in seeds], ignore_index=True)
    n = 3
    sim = Simulation(seed=0)
    homes = EventualStore(sim, n, w=1, r=1)
    names = [x.name for x in homes.nodes]
    first = [homes.route(f"kv_client{i}")[0] for i in range(p.clients)]
    shares = [first.count(nm) / p.clients for nm in names]
    checks = []
    src = "Kingsbury 2013, 'The trouble with timestamps' (LWW drops writes within the skew); closed form here"
    for skew_ms in p.skews_ms:
        if skew_ms == 0:
            continue
        g = s[(s.skew_ms == skew_ms) & (s.resolution == "lww")]
        acked = int(g.acked.sum())
        rate = acked / (p.keys * p.duration_s * len(seeds))
        skew = skew_ms / 1e3
        offsets = [skew * (i / (n - 1) - 0.5) for i in range(n)]
        pub = lww_lost_fraction(offsets, shares, rate, p.latency_median_s)
        _, ci = mean_ci95(g.lost / g.acked)  # across seeds; the row reports the pooled fraction
        m = float(g.lost.sum() / acked)
        tol = 4 * np.sqrt(max(pub * (1 - pub), 1 / acked) / acked) + 0.003
        checks.append(Check(
            source=src, setup=f"N=3 W=1, clock offsets -{skew_ms / 2:g}/0/+{skew_ms / 2:g} ms, {p.clients} clients "
                              f"(home shares {'/'.join(f'{x:.2f}' for x in shares)}), {rate:.1f} writes/s per key, "
                              f"{len(seeds)} seeds, {acked} acked writes",
            quantity="fraction of acknowledged writes lost (LWW, physical clocks)", published=pub, measured=m,
            tolerance=tol, ci95=ci,
            why="4 binomial standard errors over the acknowledged writes, + 0.003 for the busy-client thinning of "
                "the Poisson arrivals"))
    g = s[s.resolution == "vv"]
    checks.append(Check(
        source="DeCandia et al., Dynamo, SOSP 2007 §4.4 (version vectors keep concurrent writes as siblings)",
        setup=f"same runs, every skew in {list(p.skews_ms)} ms, version vectors", quantity="writes lost (count)",
        published=0.0, measured=float(g.lost.sum()), tolerance=0.0,
        why="exact: a write is superseded only by a version that has seen it"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["skew_ms", "resolution", "label"], as_index=False)[["lost", "acked"]].sum()
        s = s.assign(lost_fraction=s["lost"] / s["acked"])
    fig, ax = plt.subplots(figsize=(8.5, 5), constrained_layout=True)
    colors = plots.policy_colors(list(LABELS.values()))
    gap_ms = 1e3 * p.keys / (p.clients * p.rate)
    for res, marker in zip(RESOLUTIONS, ("o", "^", "s")):
        d = s[s["resolution"] == res].sort_values("skew_ms")
        ax.plot(d["skew_ms"], d["lost_fraction"] * 100, marker=marker, color=colors[LABELS[res]], label=LABELS[res])
    ax.axvline(gap_ms, color="0.5", ls=":", lw=1)
    ax.annotate(f"mean time between\nwrites to a key ≈ {gap_ms:.0f} ms", (gap_ms, ax.get_ylim()[1] * 0.5),
                xytext=(-6, 0), textcoords="offset points", fontsize=8, color="0.35", va="center", ha="right")
    ax.set_xscale("symlog", linthresh=1.0)
    skews = sorted(s["skew_ms"].unique())
    ax.set_xlim(0, max(skews) * 1.3 if max(skews) > 0 else 1)
    ax.set_xticks(skews, [f"{x:g}" for x in skews])
    ax.set_xlabel("clock skew between the fastest and slowest replica (ms)")
    ax.set_ylabel("acknowledged writes lost (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left")
    ax.set_title("Clock skew makes last-writer-wins silently drop acknowledged writes;\n"
                 "version vectors lose none, hybrid logical clocks (almost) none")
    return {"clock_skew_lww": fig}
