"""How soon after a write commits does a read see it? (PBS t-visibility curves)

Setup: a Dynamo-style quorum store, N = 3, one coordinator per client (its home replica);
lognormal network latency and an exponential delay before a remote replica applies a write
(the asynchronous propagation of the PBS "WARS" model: W). Clients read and write random keys
(open-loop Poisson). From the history, for every successful read: ``t`` = the time from the
commit (ack) of the latest write that completed before the read began, to the read's start;
the read is *consistent* if it returned that write or a later one (it is not ordered strictly
before a write that had completed before it started). The curve is
P(consistent | t) per (R, W). Computed here from the history (``t_visibility``); the shared
helpers in ``simulator/history/staleness.py`` did not exist when this was written.

Lesson: with R + W <= N a read right after a commit is often stale, but the probability of
consistency climbs to ~1 within a few propagation delays (Bailis et al., "Probabilistically
Bounded Staleness", VLDB 2012): eventual consistency is usually *quickly* consistent. With
R + W > N every read is consistent at every t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.replication.kv import KVWorkload
from models.replication.quorum import QuorumStore
from simulator import Exponential, LogNormal, Simulation
from simulator.history import History


def parse_nrw(s: str) -> tuple[int, int, int]:
    """``"3-1-2"`` -> ``(n, r, w)``."""
    try:
        n, r, w = (int(x) for x in s.split("-"))
    except ValueError:
        raise ValueError(f"a quorum setting must read 'N-R-W' like '3-1-2', got {s!r}") from None
    if not (1 <= r <= n and 1 <= w <= n):
        raise ValueError(f"quorum setting {s!r}: need 1 <= R, W <= N")
    return n, r, w


def read_freshness(history: History) -> pd.DataFrame:
    """One row per ok read: ``t`` (s since the latest write that completed before the read
    began; NaN if none), ``stale`` (the value read is ordered strictly before a write that had
    completed before the read began, in real time; reading nothing counts as the oldest)."""
    ops: dict = {}
    done = []
    for i, typ in enumerate(history.type):
        p = history.process[i]
        if typ == "invoke":
            ops[p] = [history.f[i], history.key[i], history.value[i], history.time[i]]
        else:
            f, key, value, start = ops.pop(p)
            done.append((f, key, value, start, typ, history.time[i], history.value[i]))
    writes = {}
    acked: dict = {}
    for f, key, value, start, typ, end, _ in done:
        if f == "write":
            writes[value] = (start, end)
            if typ == "ok":
                acked.setdefault(key, []).append((end, start))
    ends = {k: np.array(sorted(v)) for k, v in acked.items()}
    rows = []
    for f, key, _, start, typ, _, result in done:
        if f != "read" or typ != "ok":
            continue
        arr = ends.get(key)
        if arr is None:
            rows.append((key, start, np.nan, False))
            continue
        before = arr[arr[:, 0] < start]
        if not len(before):
            rows.append((key, start, np.nan, False))
            continue
        w0_end = writes[result][1] if result in writes else -np.inf
        stale = bool((before[:, 1] > w0_end).any())
        rows.append((key, start, start - before[:, 0].max(), stale))
    return pd.DataFrame(rows, columns=["key", "start", "t", "stale"])


def t_visibility(fresh: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """P(consistent) per bin of ``t`` with ``[edges[i], edges[i+1])``; binomial standard error."""
    d = fresh.dropna(subset=["t"])
    idx = np.digitize(d["t"].to_numpy(), edges) - 1
    rows = []
    for i in range(len(edges) - 1):
        m = idx == i
        n = int(m.sum())
        p = float(1 - d["stale"].to_numpy()[m].mean()) if n else np.nan
        rows.append((0.5 * (edges[i] + edges[i + 1]), n, p, np.sqrt(p * (1 - p) / n) if n else np.nan))
    return pd.DataFrame(rows, columns=["t", "reads", "p_consistent", "se"])


@dataclass(frozen=True)
class Params:
    settings: tuple[str, ...] = ("3-1-1", "3-1-2", "3-2-1", "3-2-2")
    duration_s: float = 30.0
    clients: int = 6
    rate: float = 100.0  # ops/s per client
    keys: int = 10
    write_ratio: float = 0.2
    latency_median_s: float = 0.001
    write_delay_mean_s: float = 0.01  # remote replica's apply delay (PBS "W")
    t_max_s: float = 0.06
    bins: int = 24

    def __post_init__(self) -> None:
        if not self.settings:
            raise ValueError("settings must list at least one 'N-R-W'")
        for s in self.settings:
            parse_nrw(s)
        for nm in ("duration_s", "rate", "latency_median_s", "t_max_s"):
            if not getattr(self, nm) > 0:
                raise ValueError(f"{nm} must be > 0, got {getattr(self, nm)}")
        if not self.write_delay_mean_s >= 0:
            raise ValueError(f"write_delay_mean_s must be >= 0 seconds, got {self.write_delay_mean_s}")
        if not (0 < self.write_ratio < 1):
            raise ValueError(f"write_ratio must be in (0, 1): reads and writes both needed, got {self.write_ratio}")
        if not (isinstance(self.clients, int) and self.clients >= 1 and isinstance(self.keys, int) and self.keys >= 1):
            raise ValueError("clients and keys must be integers >= 1")
        if not (isinstance(self.bins, int) and self.bins >= 2):
            raise ValueError(f"bins must be an integer >= 2, got {self.bins}")


QUICK = Params(duration_s=5.0, settings=("3-1-1", "3-2-2"), bins=12)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    edges = np.linspace(0.0, p.t_max_s, p.bins + 1)
    curves, summary = [], []
    for s in p.settings:
        n, r, w = parse_nrw(s)
        sim = Simulation(seed=seed)  # common random numbers across settings
        sim.network(latency=LogNormal(median=p.latency_median_s, sigma=0.5))
        delay = Exponential(p.write_delay_mean_s) if p.write_delay_mean_s > 0 else 0.0
        store = QuorumStore(sim, n=n, r=r, w=w, write_delay=delay, replica_timeout_s=1.0)
        wl = KVWorkload(sim, store, clients=p.clients, rate=p.rate, keys=p.keys, write_ratio=p.write_ratio,
                        timeout_s=2.0, stop_at=p.duration_s)
        sim.run(until=p.duration_s + 2.5)
        fresh = read_freshness(wl.history)
        curves.append(t_visibility(fresh, edges).assign(setting=s, strict=r + w > n))
        summary.append(dict(setting=s, n=n, r=r, w=w, strict=r + w > n, reads=len(fresh),
                            stale_rate=float(fresh["stale"].mean()) if len(fresh) else np.nan))
    return {"curves": pd.concat(curves, ignore_index=True), "summary": pd.DataFrame(summary)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    c = results["curves"]
    if "seed" in c:  # pool seeds: reads-weighted mean per bin
        c = c.assign(k=c["p_consistent"] * c["reads"]).groupby(["setting", "t", "strict"], as_index=False)[
            ["k", "reads"]].sum()
        c = c.assign(p_consistent=c["k"] / c["reads"])
        c = c.assign(se=np.sqrt(c["p_consistent"] * (1 - c["p_consistent"]) / c["reads"]))
    fig, ax = plt.subplots(figsize=(8.5, 5), constrained_layout=True)
    colors = plots.policy_colors(p.settings)
    for s in p.settings:
        d = c[c["setting"] == s].sort_values("t")
        n, r, w = parse_nrw(s)
        label = f"N={n} R={r} W={w}" + ("  (R+W>N)" if r + w > n else "")
        ax.errorbar(d["t"] * 1e3, d["p_consistent"], yerr=1.96 * d["se"], marker="o", ms=4, capsize=2,
                    color=colors[s], label=label, ls="--" if r + w > n else "-")
    ax.set_xlabel("time since the latest write committed, when the read starts (ms)")
    ax.set_ylabel("P(read returns the latest committed write)")
    ax.set_ylim(min(0.5, float(np.nanmin(c["p_consistent"])) - 0.05), 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"t-visibility: partial quorums are often stale right after a commit, consistent within a few "
                 f"propagation delays\n"
                 f"(write propagation ~Exp(mean {p.write_delay_mean_s * 1e3:g} ms); R+W>N is always consistent;"
                 f" 95% CI)", fontsize=10)
    return {"staleness": fig}
