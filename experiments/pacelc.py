"""Without any partition, what does a stronger quorum cost? (the "ELC" of PACELC)

Setup: a Dynamo-style quorum store with no faults at all: lognormal network latency and an
exponential apply delay at each remote replica. Clients (one home coordinator each) read and
write a few hot keys. For each N/R/W setting: the mean and p99 latency of successful
operations, and the stale-read rate — the fraction of successful reads that returned a value
certainly ordered before a write that had completed before the read began
(``simulator.history.staleness.staleness``: ``k_stale > 0``). All settings share seeds and stream names.

Lesson: Abadi's PACELC (IEEE Computer 2012): *else* — when there is no partition — a
replicated system still trades latency against consistency. Waiting for more replicas (larger
R and W) removes stale reads (none at all once R + W > N) but every operation waits for the
slower of more replicas, so mean and tail latency grow; R = W = 1 is fastest and stalest.

Reproduces (``validate``): the mean read and write latency against the order statistic of the
replica legs (Bailis et al., PBS, VLDB 2012 §5, the WARS model): an operation completes when the
R-th (W-th) replica answers; the coordinator is itself one of the owners and answers at once, so
latency = client -> coordinator + the (K-1)-th fastest of N-1 remote legs + coordinator -> client.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.replication.kv import KVWorkload
from models.replication.pbs import parse_nrw
from models.replication.quorum import QuorumStore
from simulator import Exponential, LogNormal, Simulation
from simulator.history.staleness import staleness
from simulator.runner import Check, param, parameters


@parameters
class Params:
    settings: tuple[str, ...] = param(("3-1-1", "3-1-2", "3-2-1", "3-2-2", "3-1-3", "3-3-1", "3-3-3",
                                       "5-1-1", "5-2-2", "5-3-3"), unit="N-R-W",
                                      help="quorum settings, each 'N-R-W' with 1 <= R, W <= N")
    duration_s: float = param(20.0, unit="s", gt=0, le=3600, help="simulated time")
    clients: int = param(6, unit="clients", ge=1, le=1000, help="workload clients")
    rate: float = param(100.0, unit="ops/s", gt=0, le=100_000, help="operations per second per client")
    keys: int = param(5, unit="keys", ge=1, le=100_000, help="distinct keys")
    write_ratio: float = param(0.3, unit="fraction", gt=0, lt=1, help="share of writes")
    latency_median_s: float = param(0.002, unit="s", gt=0, le=60, help="median one-way latency (lognormal)")
    latency_sigma: float = param(0.6, unit="lognormal shape", gt=0, le=3, help="spread of the one-way latency")
    write_delay_mean_s: float = param(0.005, unit="s", ge=0, le=60, help="mean extra time a replica takes to apply "
                                                                      "a write (exponential)")

    def __post_init__(self) -> None:
        for s in self.settings:
            try:
                parse_nrw(s)
            except ValueError as e:
                raise ValueError(f"parameter settings={self.settings!r}: {e}") from None


QUICK = Params(duration_s=4.0, settings=("3-1-1", "3-2-2", "3-3-3"))


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, histories = [], {}
    for s in p.settings:
        n, r, w = parse_nrw(s)
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=p.latency_median_s, sigma=p.latency_sigma))
        delay = Exponential(p.write_delay_mean_s) if p.write_delay_mean_s > 0 else 0.0
        store = QuorumStore(sim, n=n, r=r, w=w, write_delay=delay, replica_timeout_s=1.0)
        wl = KVWorkload(sim, store, clients=p.clients, rate=p.rate, keys=p.keys, write_ratio=p.write_ratio,
                        timeout_s=2.0, stop_at=p.duration_s)
        sim.run(until=p.duration_s + 2.5)
        df = sim.metrics.requests()
        ok = df[df["outcome"] == "ok"]
        fresh = staleness(wl.history)
        histories[f"history_{s}"] = wl.history  # histories/*.jsonl, for splitbrain check
        lat = ok["latency"].to_numpy()
        rd = ok[ok["op"] == "read"]["latency"].to_numpy()
        wr = ok[ok["op"] == "write"]["latency"].to_numpy()
        rows.append(dict(setting=s, n=n, r=r, w=w, strict=r + w > n, ops=len(df), ok=len(ok),
                         mean_latency_s=float(lat.mean()), p99_latency_s=float(np.quantile(lat, 0.99)),
                         read_mean_s=float(rd.mean()), write_mean_s=float(wr.mean()),
                         stale_read_rate=float((fresh["k_stale"] > 0).mean()), reads=len(fresh)))
    return {"summary": pd.DataFrame(rows), **histories}


def quorum_latency(n: int, k: int, median_s: float, sigma: float, delay_mean_s: float,
                   dx: float = 5e-6, xmax: float = 0.25) -> tuple[float, float]:
    """Mean and standard deviation (s) of a quorum operation's latency, by numerical integration.

    Each one-way message is LogNormal(median, sigma); a remote leg is two of them (plus an
    Exponential apply delay of mean ``delay_mean_s`` for writes); the operation needs ``k`` of
    ``n`` owners, one being the coordinator (zero time), so it waits for the (k-1)-th smallest of
    n-1 iid remote legs: P(X_(j) <= x) = sum_{i>=j} C(m, i) F(x)^i (1 - F(x))^(m-i) (David &
    Nagaraja, "Order Statistics", Eq. 2.1.3). The client's two legs add independently.
    """
    from math import comb, exp, sqrt

    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    e_leg = median_s * exp(sigma ** 2 / 2)
    v_leg = (exp(sigma ** 2) - 1) * median_s ** 2 * exp(sigma ** 2)
    if k == 1:
        return 2 * e_leg, sqrt(2 * v_leg)
    x = (np.arange(int(xmax / dx)) + 0.5) * dx  # cell midpoints
    one = np.exp(-np.log(x / median_s) ** 2 / (2 * sigma ** 2)) / x
    one /= one.sum()
    size = 1 << int(np.ceil(np.log2(3 * len(x))))
    f = np.fft.rfft(one, size) ** 2
    shift = 1.0  # two midpoints add to a cell edge: the sum of the legs sits on (i + 1) dx
    if delay_mean_s > 0:
        d = np.exp(-x / delay_mean_s)
        f = f * np.fft.rfft(d / d.sum(), size)
        shift = 1.5
    cdf = np.clip(np.cumsum(np.fft.irfft(f, size)[: len(x)]), 0.0, 1.0)
    m, j = n - 1, k - 1
    g = sum(comb(m, i) * cdf ** i * (1 - cdf) ** (m - i) for i in range(j, m + 1))
    pmf = np.diff(g, prepend=0.0)
    grid = (np.arange(len(x)) + shift) * dx
    mean = float((grid * pmf).sum())
    var = float((grid ** 2 * pmf).sum()) - mean ** 2
    return 2 * e_leg + mean, sqrt(2 * v_leg + var)


def validate(quick: bool) -> list[Check]:
    """Mean read and write latency of each setting against :func:`quorum_latency`.

    Tolerance: 4 standard errors of the simulated mean (the theory's own standard deviation over
    the number of successful operations); the grid integration errs by < 1 us.
    """
    p = QUICK if quick else Params()
    seeds = (1,) if quick else (1, 2, 3)
    s = pd.concat([run(p, seed)["summary"] for seed in seeds], ignore_index=True)
    checks = []
    for setting, g in s.groupby("setting", sort=False):
        n, r, w = parse_nrw(setting)
        reads, writes = int(g.reads.sum()), int((g.ok - g.reads).sum())
        for op, k, delay, count, col in (("read", r, 0.0, reads, "read_mean_s"),
                                         ("write", w, p.write_delay_mean_s, writes, "write_mean_s")):
            mean, sd = quorum_latency(n, k, p.latency_median_s, p.latency_sigma, delay)
            m = float((g[col] * (g.reads if op == "read" else g.ok - g.reads)).sum() / count)
            se = sd / np.sqrt(count)
            checks.append(Check(
                source="Bailis et al., PBS, VLDB 2012, §5 (WARS: a quorum waits for its K-th replica); "
                       "Abadi, PACELC, IEEE Computer 2012",
                setup=f"N={n} R={r} W={w}, one-way LogNormal(median {p.latency_median_s * 1e3:g} ms, sigma "
                      f"{p.latency_sigma:g}), apply delay Exp({p.write_delay_mean_s * 1e3:g} ms), no faults; "
                      f"{count} {op}s over {len(seeds)} seed(s)",
                quantity=f"mean {op} latency (ms), {k} of {n} replicas", published=mean * 1e3,
                measured=m * 1e3, tolerance=4 * se * 1e3, ci95=((m - 1.96 * se) * 1e3, (m + 1.96 * se) * 1e3),
                why=f"4 standard errors of a mean of {count} {op}s (sd from the theory: {sd * 1e3:.2f} ms)"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["setting", "n", "r", "w", "strict"], as_index=False)[
            ["mean_latency_s", "p99_latency_s", "stale_read_rate"]].mean()
    from simulator import plots

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5), sharey=True, constrained_layout=True)
    colors = plots.policy_colors(list(s["setting"]))
    for ax, col, name in ((axes[0], "mean_latency_s", "mean"), (axes[1], "p99_latency_s", "p99")):
        for _, row in s.iterrows():
            label = f"N={row.n} R={row.r} W={row.w}" + ("  R+W>N" if row.strict else "")
            ax.scatter(row[col] * 1e3, row.stale_read_rate * 100, marker="s" if row.strict else "o", s=60,
                       color=colors[row.setting], edgecolor="black", lw=0.5, label=label, zorder=3)
        ax.set_xlabel(f"{name} latency of successful operations (ms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("stale reads (% of successful reads)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="circle: partial, square: strict",
                   fontsize=8, title_fontsize=8)
    fig.suptitle("PACELC, no partition: stronger quorums cost latency even without partitions; "
                 "R+W>N reads are never stale")
    return {"pacelc": fig}
