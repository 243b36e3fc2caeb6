"""How soon after a write commits does a read see it? (PBS t-visibility, the WARS model)

Setup: the WARS model of Bailis, Venkataraman, Franklin, Hellerstein, Stoica, "Probabilistically
Bounded Staleness for Practical Partial Quorums" (VLDB 2012, §4-5): N replicas; a write
coordinator (not a replica) sends the write to all N, each request delayed by W, each ack by A;
the write commits at the W-th ack. A read coordinator sends a read to all N ``t`` ms after the
commit, each request delayed by R, each response by S, and returns the newest of the first R
responses; it is stale if none of those replicas had the write when the read reached it. No read
repair, no anti-entropy. Latency models: ``exponential`` (W ~ Exp(λ_W), A = R = S ~ Exp(λ_ARS),
rates in 1/ms: the paper's Fig. 5 sweep; its text confirms λ_W = 4 and 0.1 with λ_ARS = 1, the
other λ_W here are our grid) and the paper's production fits (Table 3: Pareto + exponential
mixtures) ``lnkd-ssd``, ``lnkd-disk`` (LinkedIn Voldemort on SSD / spinning disk) and ``ymmr``
(Yammer Riak). Engine ``vectorised``: the paper's Monte Carlo in numpy; engine ``des``: the same
trials on the simulator kernel (nodes, per-direction link latencies) — see
``models.replication.pbs``; the tests check the two agree.

Lesson: with R + W <= N a read right after a commit is often stale (LNKD-DISK, N=3, R=W=1: ~44%
consistent), yet the probability of consistency climbs to 99.9% within milliseconds to tens of
milliseconds: eventual consistency is usually *quickly* consistent. The window is set by the
write leg's tail: SSDs (LNKD-SSD, 97% at once, 99.9% by ~2 ms) beat disks (LNKD-DISK, ~50 ms),
and fsync-bound writes (YMMR) stretch it past a second. R + W > N is consistent at every t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.replication.pbs import (
    MS,
    des_k_staleness,
    des_t_visibility,
    k_staleness,
    miss_probability,
    p_consistent,
    parse_nrw,
    t_at,
    t_at_ci95,
    wars_legs,
    wars_streams,
    wars_thresholds,
)
from simulator import Constant, Exponential, Simulation
from simulator.runner import Check, param, parameters

MODELS = ("exponential", "lnkd-ssd", "lnkd-disk", "ymmr")
SOURCE = "Bailis et al., PBS, VLDB 2012"


@parameters
class Params:
    latency_models: tuple[str, ...] = param(MODELS, choices=MODELS,
                                            help="WARS latency model(s): exponential or a production fit")
    settings: tuple[str, ...] = param(("3-1-1", "3-1-2", "3-2-1", "3-2-2"), help="quorum settings N-R-W")
    lambda_w: tuple[float, ...] = param((0.1, 0.2, 0.5, 1.0, 2.0, 4.0), unit="1/ms", gt=0, le=1000,
                                        help="exponential model: rate(s) of the write-request leg W")
    lambda_ars: float = param(1.0, unit="1/ms", gt=0, le=1000, help="exponential model: rate of A = R = S")
    t_ms: tuple[float, ...] = param((0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
                                     1000.0, 2000.0), unit="ms", ge=0, le=1e6,
                                    help="times after the write commits at which a read starts")
    trials: int = param(200_000, unit="writes", ge=100, le=20_000_000, help="Monte Carlo trials per arm")
    engine: str = param("vectorised", choices=("vectorised", "des"),
                        help="numpy Monte Carlo, or the same trials on the simulator kernel (slower)")

    def __post_init__(self) -> None:
        for s in self.settings:
            try:
                parse_nrw(s)
            except ValueError as e:
                raise ValueError(f"parameter settings: {e}") from None
        if self.engine == "des" and self.trials * len(self.t_ms) * len(self.settings) > 2_000_000:
            raise ValueError(f"engine=des runs trials x len(t_ms) x len(settings) reads per model; "
                             f"{self.trials} x {len(self.t_ms)} x {len(self.settings)} is over 2,000,000: "
                             f"lower trials")


QUICK = Params(latency_models=("lnkd-disk", "lnkd-ssd"), settings=("3-1-1", "3-2-2"), trials=20_000)


def _arms(p: Params):
    for model in p.latency_models:
        for lw in (p.lambda_w if model == "exponential" else (np.nan,)):
            legs = wars_legs(model, lw, p.lambda_ars) if model == "exponential" else wars_legs(model)
            for s in p.settings:
                yield model, float(lw), s, legs


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    t_s = np.asarray(p.t_ms) * MS
    curves, summary = [], []
    for model, lw, s, legs in _arms(p):
        n, r, w = parse_nrw(s)
        arm = dict(model=model, lambda_w=lw, setting=s, n=n, r=r, w=w, strict=r + w > n)
        if p.engine == "vectorised":
            # common random numbers: every setting of a model draws the same leg samples
            T = wars_thresholds(legs, n, r, w, p.trials, wars_streams(Simulation(seed=seed)))
            pc = p_consistent(T, t_s)
            t999, (lo, hi) = t_at(T, 0.999), t_at_ci95(T, 0.999)
        else:
            d = des_t_visibility(n, r, w, legs, list(t_s), p.trials, seed)
            pc = 1 - d.groupby("t")["stale"].mean().reindex(t_s).to_numpy()
            ok = np.flatnonzero(pc >= 0.999)
            t999 = float(t_s[ok[0]]) if len(ok) else np.nan  # only as fine as the t grid
            lo = hi = np.nan
        se = np.sqrt(pc * (1 - pc) / p.trials)
        curves.append(pd.DataFrame(dict(arm, t=t_s, t_ms=np.asarray(p.t_ms), reads=p.trials, p_consistent=pc, se=se)))
        summary.append(dict(arm, trials=p.trials, p_consistent_t0=float(pc[0]) if p.t_ms[0] == 0 else np.nan,
                            t_999_ms=t999 / MS, t_999_lo_ms=lo / MS, t_999_hi_ms=hi / MS,
                            quorum_miss_closed_form=miss_probability(n, r, w), engine=p.engine))
    return {"curves": pd.concat(curves, ignore_index=True), "summary": pd.DataFrame(summary)}


# the paper's reported points (N=3, R=W=1), drawn on the figure for comparison
PUBLISHED_POINTS = {"lnkd-ssd": ((0.0, 0.974),), "lnkd-disk": ((0.0, 0.439), (10.0, 0.925)), "ymmr": ((0.0, 0.893),)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    c = results["curves"]
    if "seed" in c:  # pool seeds: trials-weighted mean per point
        keys = ["model", "lambda_w", "setting", "strict", "t_ms"]
        c = c.assign(k=c["p_consistent"] * c["reads"]).groupby(keys, as_index=False, dropna=False)[
            ["k", "reads"]].sum()
        c = c.assign(p_consistent=c["k"] / c["reads"])
    models = list(dict.fromkeys(c["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models) + 1, 4.8), sharey=True,
                             constrained_layout=True, squeeze=False)
    colors = plots.policy_colors(list(p.settings))
    partial = [s for s in p.settings if not (lambda n, r, w: r + w > n)(*parse_nrw(s))]
    for ax, model in zip(axes[0], models):
        d = c[c["model"] == model]
        if model == "exponential":
            s0 = partial[0] if partial else p.settings[0]
            lam = sorted(set(d["lambda_w"]))
            cmap = plt.get_cmap("viridis")
            for i, lw in enumerate(lam):
                e = d[(d["lambda_w"] == lw) & (d["setting"] == s0)].sort_values("t_ms")
                ax.plot(e["t_ms"], e["p_consistent"], marker="o", ms=3, color=cmap(i / max(len(lam) - 1, 1)),
                        label=f"λ_W={lw:g}")
            ax.set_title(f"exponential, N-R-W={s0}, λ_ARS={p.lambda_ars:g}/ms\n(mean W = 1/λ_W ms)", fontsize=9)
        else:
            for s in p.settings:
                e = d[d["setting"] == s].sort_values("t_ms")
                n, r, w = parse_nrw(s)
                ax.plot(e["t_ms"], e["p_consistent"], marker="o", ms=3, color=colors[s],
                        ls="--" if r + w > n else "-", label=f"N={n} R={r} W={w}" + ("  R+W>N" if r + w > n else ""))
            pts = PUBLISHED_POINTS.get(model, ())
            if pts and "3-1-1" in p.settings:
                ax.plot(*zip(*pts), "kx", ms=9, mew=2, label="paper, N=3 R=W=1")
            ax.set_title(model.upper(), fontsize=10)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("t: time after the write committed when the read starts (ms)")
        ax.axhline(0.999, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    axes[0][0].set_ylabel("P(read returns the committed write)")
    fig.suptitle("PBS t-visibility (WARS): partial quorums are often stale right after a commit but consistent within "
                 "ms;\nthe write tail sets the window (SSD ~2 ms, disk ~50 ms, fsync'd writes > 1 s); R+W>N always "
                 "consistent (dotted: 99.9%)", fontsize=10)
    return {"staleness": fig}


# -- reproductions ----------------------------------------------------------------------------------------
# VLDB 2012 §5.3-5.6 / CACM 2014 §5: P(consistent) right after commit (text; the VLDB text says its
# t-visibility runs used 10,000 writes) and t at 99.9% (Table 4: 50,000 reads and writes).
N_PUB_P, N_PUB_T = 10_000, 50_000
_P_CHECKS = (  # (model, lambda_w, N-R-W, t ms, published P, decimals, where)
    ("exponential", 4.0, "3-1-1", 0.0, 0.94, 2, "§5.5 / Fig. 5"),
    ("exponential", 0.1, "3-1-1", 0.0, 0.41, 2, "§5.5 / Fig. 5"),
    ("lnkd-ssd", None, "3-1-1", 0.0, 0.974, 3, "§5.3 / Fig. 6"),
    ("lnkd-disk", None, "3-1-1", 0.0, 0.439, 3, "§5.3 / Fig. 6"),
    ("lnkd-disk", None, "3-1-1", 10.0, 0.925, 3, "§5.3 / Fig. 6"),
    ("ymmr", None, "3-1-1", 0.0, 0.893, 3, "§5.3 / Fig. 6"),
    ("lnkd-disk", None, "2-1-1", 0.0, 0.575, 3, "§5.6 / Fig. 7"),
    ("lnkd-disk", None, "10-1-1", 0.0, 0.211, 3, "§5.6 / Fig. 7"),
)
_T_CHECKS = (  # (model, lambda_w, N-R-W, published t ms at p = 99.9%, rounding half-unit, where)
    ("exponential", 4.0, "3-1-1", 1.0, 0.5, "§5.5 text ('99.9% after 1ms')"),
    ("exponential", 0.1, "3-1-1", 65.0, 0.5, "§5.5 text"),
    ("lnkd-ssd", None, "3-1-1", 1.85, 0.005, "Table 4"),
    ("lnkd-ssd", None, "3-1-2", 1.79, 0.005, "Table 4"),
    ("lnkd-disk", None, "3-1-1", 45.5, 0.05, "Table 4"),
    ("lnkd-disk", None, "3-1-2", 43.3, 0.05, "Table 4"),
    ("lnkd-disk", None, "3-2-1", 13.6, 0.05, "Table 4"),
    ("lnkd-disk", None, "2-1-1", 45.3, 0.05, "§5.6 text"),
    ("lnkd-disk", None, "10-1-1", 53.7, 0.05, "§5.6 text"),
    ("ymmr", None, "3-1-1", 1364.0, 0.5, "Table 4"),
    ("ymmr", None, "3-1-2", 1352.0, 0.5, "Table 4"),
    ("ymmr", None, "3-2-1", 202.0, 0.5, "Table 4"),
)


def _quantile_halfwidth(sorted_t: np.ndarray, q: float, n_est: int) -> float:
    """Half-width (ms) of the 95% spread of a q-quantile estimated from ``n_est`` samples,
    read off our (much larger) sample of the same distribution."""
    h = 1.96 * np.sqrt(q * (1 - q) / n_est)
    lo, hi = np.quantile(sorted_t, [max(q - h, 0), min(q + h, 1)])
    return float(max(hi, 0) - max(lo, 0)) / 2 / MS


def validate(quick: bool) -> list[Check]:
    trials = 200_000 if quick else 2_000_000
    des_trials = 3_000 if quick else 30_000
    checks: list[Check] = []
    cache: dict = {}

    def thresholds(model: str, lw: float | None, s: str) -> np.ndarray:
        key = (model, lw, s)
        if key not in cache:
            n, r, w = parse_nrw(s)
            legs = wars_legs(model, lw) if model == "exponential" else wars_legs(model)
            cache[key] = np.sort(wars_thresholds(legs, n, r, w, trials, wars_streams(Simulation(seed=1))))
        return cache[key]

    # (c) k-staleness: Eq. 2 against the kernel (random write/read quorums, no propagation)
    for i, (n, r, w, k) in enumerate(((3, 1, 1, 1), (3, 1, 1, 3), (3, 1, 2, 2), (5, 2, 2, 2))):
        within = des_k_staleness(n, r, w, k, des_trials, seed=100 + i)
        pub, m = k_staleness(n, r, w, k), float(within.mean())
        se = np.sqrt(pub * (1 - pub) / des_trials)
        checks.append(Check(source=f"{SOURCE}, Eq. 2 (closed form)", setup=f"N={n} R={r} W={w}, k={k}, random "
                            f"quorums, kernel DES, {des_trials} trials", quantity="P(read within k versions)",
                            published=pub, measured=m, tolerance=3 * se,
                            why="3 binomial standard errors of the simulated fraction (the formula is exact)"))
    # the same p as P(stale at t=0) in WARS when A = R = S are negligible against W (here 0)
    legs0 = {"W": Exponential(MS), "A": Constant(0.0), "R": Constant(0.0), "S": Constant(0.0)}
    for n, r, w in ((3, 1, 1), (5, 1, 2), (5, 2, 2)):
        T = wars_thresholds(legs0, n, r, w, trials, wars_streams(Simulation(seed=2)))
        pub, m = miss_probability(n, r, w), float(1 - p_consistent(T, [0.0])[0])
        checks.append(Check(source=f"{SOURCE}, Eq. 1", setup=f"WARS N={n} R={r} W={w}, W ~ Exp(1/ms), A=R=S=0, "
                            f"t=0, {trials} trials", quantity="P(stale read) = C(N-W,R)/C(N,R)",
                            published=pub, measured=m, tolerance=3 * np.sqrt(pub * (1 - pub) / trials),
                            why="3 binomial standard errors (exact in this limit: the replicas holding the write "
                                "at commit are the W fastest, the first R responders a uniform choice)"))
    # (a, b) the paper's t-visibility numbers
    for model, lw, s, t_ms, pub, dec, where in _P_CHECKS:
        T = thresholds(model, lw, s)
        m = float(p_consistent(T, [t_ms * MS])[0])
        se_ours, se_pub = np.sqrt(m * (1 - m) / trials), np.sqrt(pub * (1 - pub) / N_PUB_P)
        tol = 0.5 * 10 ** -dec + 1.96 * np.hypot(se_ours, se_pub)
        checks.append(Check(
            source=f"{SOURCE}, {where}", setup=_setup(model, lw, s, trials), quantity=f"P(consistent) at t={t_ms:g} ms",
            published=pub, measured=m, tolerance=tol, ci95=(m - 1.96 * se_ours, m + 1.96 * se_ours),
            why=f"rounding ({0.5 * 10 ** -dec:g}) + 1.96 x the combined binomial error of our {trials} and the "
                f"paper's ~{N_PUB_P} trials"))
    for model, lw, s, pub, rnd, where in _T_CHECKS:
        T = thresholds(model, lw, s)
        m = t_at(T, 0.999) / MS
        lo, hi = (x / MS for x in t_at_ci95(T, 0.999))
        tol = rnd + _quantile_halfwidth(T, 0.999, N_PUB_T) + (hi - lo) / 2
        miss = ("" if abs(m - pub) <= tol else
                "same WARS equations and Table 3 fits; P(t=0) and P(t=10 ms) match, but the paper's 99.9% "
                "points sit lower for the heavy-tailed write fits (LNKD-DISK, YMMR): the quantile lives in "
                "the fitted tail, which the paper's 50,000-write runs sample thinly; we did not audit the "
                "authors' own simulator (pbailis/pbs-vldb-historical-paper-material) for a difference")
        checks.append(Check(
            source=f"{SOURCE}, {where}", setup=_setup(model, lw, s, trials),
            quantity="t (ms) for 99.9% consistent reads",
            published=pub, measured=m, tolerance=tol, ci95=(lo, hi), cause=miss,
            why=f"rounding + 95% order-statistic spread of a 99.9% quantile from the paper's {N_PUB_T} reads and "
                f"from our {trials}"))
    return checks


def _setup(model: str, lw: float | None, s: str, trials: int) -> str:
    n, r, w = parse_nrw(s)
    legs = f"W~Exp({lw:g}/ms), A=R=S~Exp(1/ms)" if model == "exponential" else f"{model.upper()} fits (Table 3)"
    return f"WARS N={n} R={r} W={w}, {legs}, {trials} trials"
