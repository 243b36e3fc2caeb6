"""How fast can a failure detector notice a crash without crying wolf?

Setup: a monitor watches a node that heartbeats every ``interval_s`` over a network with
jittery lognormal latency and some loss; the node also suffers short stop-the-world pauses (GC)
at random moments. Each trial runs ``alive_s`` seconds with the node alive (every suspicion then
is a false positive), then crashes it (the time to the first suspicion is the detection time).
Two detectors over a range of thresholds, on the same seeds and faults (common random numbers):
a fixed heartbeat timeout, and the phi-accrual detector (Hayashibara et al., SRDS 2004), which
suspects when phi = -log10 P(a heartbeat is still coming) exceeds its threshold, with the
inter-arrival distribution learnt from the last heartbeats.

A third arm adds Akka's ``acceptable-heartbeat-pause`` to phi's mean gap.

Lesson: every detector trades detection time for false positives — a threshold tight enough to
notice a crash fast also fires on pauses and late heartbeats. Phi's threshold reads as a
probability of being wrong *under its model*, but a normal fit to regular heartbeat gaps knows
nothing of GC pauses: here plain phi raises more false alarms than a fixed timeout for the same
detection time. Telling it how long a pause is acceptable (Akka) moves its curve down to about
the fixed timeout's frontier: the knob that matters is how long a silence you tolerate.

Reproduces (``validate``): phi's own reading, in the setting its model assumes (Hayashibara et
al. 2004, eq. 1-2): with normally distributed heartbeat inter-arrival times, no loss and no
pauses, a threshold phi fires falsely on a fraction 10^-phi of the heartbeat gaps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.coordination import DetectorConfig, FailureDetector
from simulator import LogNormal, Normal, Simulation
from simulator.runner import Check, param, parameters


@parameters
class Params:
    timeouts_s: tuple[float, ...] = param((0.15, 0.2, 0.3, 0.5, 0.8, 1.2), unit="s", gt=0, le=600,
                                          help="fixed-timeout thresholds")
    phis: tuple[float, ...] = param((1.0, 2.0, 4.0, 8.0, 16.0, 32.0), unit="phi", gt=0, le=1000,
                                    help="phi-accrual thresholds")
    interval_s: float = param(0.1, unit="s", gt=0, le=60, help="heartbeat period")
    latency_median_s: float = param(0.005, unit="s", gt=0, le=10, help="median one-way latency (lognormal)")
    latency_sigma: float = param(0.8, unit="lognormal shape", ge=0, le=3, help="latency jitter")
    loss: float = param(0.02, unit="probability", ge=0, lt=1, help="heartbeat loss")
    pause_rate: float = param(0.1, unit="1/s", ge=0, le=100, help="stop-the-world pauses per second of the node")
    pause_mean_s: float = param(0.3, unit="s", gt=0, le=60, help="mean pause length (exponential)")
    acceptable_pause_s: float = param(0.3, unit="s", ge=0, le=60,
                                      help="phi arm with Akka's acceptable-heartbeat-pause added to the mean")
    alive_s: float = param(60.0, unit="s", gt=0, le=86_400, help="time alive per trial (false positives)")
    trials: int = param(10, unit="trials", ge=1, le=10_000, help="crash trials per threshold")


QUICK = Params(timeouts_s=(0.15, 0.3, 0.8), phis=(1.0, 4.0, 16.0), alive_s=20.0, trials=4)


def trial_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1, np.uint64)[0] >> 1)


def one(p: Params, seed: int, kind: str, threshold: float, pause_allowance: float = 0.0) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.latency_median_s, sigma=p.latency_sigma) if p.latency_sigma > 0
                else p.latency_median_s, loss=p.loss)
    cfg = DetectorConfig(kind=kind, threshold=threshold, interval_s=p.interval_s, check_s=0.01,
                         acceptable_pause_s=pause_allowance)
    fd = FailureDetector(sim, "monitor", "node", cfg)
    if p.pause_rate > 0:
        g = sim.rng("detectors.pauses")
        t = float(g.exponential(1 / p.pause_rate))
        while t < p.alive_s - 1.0:
            d = float(g.exponential(p.pause_mean_s))
            sim.faults.pause(t, "node", d)
            t += d + float(g.exponential(1 / p.pause_rate))
    crash = p.alive_s
    sim.faults.crash(crash, "node")
    horizon = crash + 30.0 * p.interval_s + 2 * max(p.timeouts_s) + 5.0
    sim.run(until=horizon)
    sus = fd.intervals(horizon)
    false = [s for s in sus if s[0] < crash and s[1] < crash]
    after = [s[0] for s in sus if s[1] >= crash]  # the suspicion still on when it crashed, or the first after
    detect = max(0.0, after[0] - crash) if after else np.nan
    return {"false_positives": len(false), "detection_s": detect}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    arms = ([("timeout", "timeout", t, 0.0) for t in p.timeouts_s] + [("phi", "phi", f, 0.0) for f in p.phis]
            + [("phi+pause", "phi", f, p.acceptable_pause_s) for f in p.phis])
    for label, kind, thr, allow in arms:
        for i in range(p.trials):
            rows.append({"detector": label, "threshold": thr, "trial": i,
                         **one(p, trial_seed(seed, i), kind, thr, allow)})
    trials = pd.DataFrame(rows)
    summary = (trials.groupby(["detector", "threshold"], as_index=False, sort=False)
               .agg(false_positives_per_min=("false_positives", "mean"), detection_mean_s=("detection_s", "mean"),
                    detection_max_s=("detection_s", "max")))
    summary["false_positives_per_min"] *= 60.0 / p.alive_s
    return {"trials": trials, "summary": summary}


def false_positives_normal(threshold: float, seed: int, heartbeats: int, interval_s: float = 1.0,
                           latency_sd_s: float = 0.1, check_s: float = 0.01, window: int = 100) -> tuple[int, int]:
    """(false suspicions, heartbeat gaps) of a phi detector after its window has filled, with
    Normal one-way latency (so each gap, T + L_k - L_(k-1), is normal with sd sqrt(2) x latency sd),
    no loss, no pauses, and a standard-deviation floor far below the true spread."""
    sim = Simulation(seed=seed)
    sim.network(latency=Normal(5 * latency_sd_s, latency_sd_s))  # truncation at 0 is 5 sd away
    cfg = DetectorConfig(kind="phi", threshold=threshold, interval_s=interval_s, check_s=check_s, window=window,
                         min_std_s=1e-6)
    fd = FailureDetector(sim, "monitor", "node", cfg)
    warm = (window + 2) * interval_s  # before that the estimate rests on few gaps
    until = warm + heartbeats * interval_s
    sim.run(until=until)
    return sum(1 for a, _ in fd.intervals(until) if a > warm), heartbeats


def validate(quick: bool) -> list[Check]:
    """False suspicions per heartbeat gap against 10^-phi (normal inter-arrivals).

    Tolerance: 4 binomial standard errors, plus two stated setup terms: the detector looks every
    ``check_s``, so a gap must outlast the threshold by a uniform share of a check, which lowers
    the rate to (1/d) int_z^(z+d) Q(u) du (d = check / gap sd); and the mean and sd are estimated
    from the last 100 gaps, whose noise raises it by about z^3 phi(z) / (4 (n - 1)) (a second-order
    expansion of E[Q(z sd_hat / sd)]).
    """
    import math

    levels = ((1.0, 1, 800),) if quick else ((1.0, 3, 2000), (2.0, 5, 2000), (3.0, 8, 2000))
    sd_gap, check, window = math.sqrt(2) * 0.1, 0.01, 100
    checks = []
    for phi_level, runs, beats in levels:
        fp = n = 0
        for r in range(runs):
            a, b = false_positives_normal(phi_level, trial_seed(2004, r), beats)
            fp, n = fp + a, n + b
        pub = 10 ** -phi_level
        z = -_ndtri(pub)
        d = check / sd_gap
        u = np.linspace(z, z + d, 201)
        grid = pub - float(np.mean([0.5 * math.erfc(x / math.sqrt(2)) for x in u]))
        est = z ** 3 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / (4 * (window - 1))
        tol = 4 * math.sqrt(pub * (1 - pub) / n) + grid + est
        checks.append(Check(
            source="Hayashibara, Defago, Yared & Katayama, 'The phi accrual failure detector', SRDS 2004, eq. 1-2",
            setup=f"heartbeat every 1 s, one-way latency Normal(0.5 s, 0.1 s): gaps normal, sd {sd_gap:.3f} s; no "
                  f"loss or pauses; window {window}, checks every {check * 1e3:g} ms; {n} gaps in {runs} run(s)",
            quantity=f"false suspicions per heartbeat gap at phi = {phi_level:g}", published=pub, measured=fp / n,
            tolerance=tol,
            why=f"4 binomial standard errors ({4 * math.sqrt(pub * (1 - pub) / n):.3g}) + the check grid "
                f"(-{grid:.2g}) + the window's estimation noise (+{est:.2g})"))
    return checks


def _ndtri(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby(["detector", "threshold"], as_index=False, sort=False).mean(numeric_only=True)
    fig, ax = plt.subplots(figsize=(8.5, 5), constrained_layout=True)
    for kind, label, unit in (("timeout", "fixed timeout", "s"), ("phi", "phi accrual", ""),
                              ("phi+pause", f"phi + {p.acceptable_pause_s:g} s acceptable pause", "")):
        d = s[s.detector == kind].sort_values("detection_mean_s")
        y = d.false_positives_per_min.clip(lower=0.02)  # zero drawn at the floor of the log axis
        ax.plot(d.detection_mean_s * 1e3, y, "o-", color=plots.color_for(label), label=label)
        for _, r in d.iterrows():
            ax.annotate(f"{r.threshold:g}{unit}", (r.detection_mean_s * 1e3, max(r.false_positives_per_min, 0.02)),
                        xytext=(4, 4), textcoords="offset points", fontsize=7, color=plots.color_for(label))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mean time to detect a crash (ms)")
    ax.set_ylabel("false suspicions per minute of a live node (0 drawn at 0.02)")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    ax.set_title("Detecting a crash fast means suspecting live nodes more often: every threshold is a tradeoff\n"
                 f"(heartbeat {p.interval_s * 1e3:g} ms, jittery latency, {p.loss:.0%} loss, GC pauses)")
    return {"failure_detectors": fig}
