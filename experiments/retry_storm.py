"""Can a short trigger leave a system down after the trigger is gone (a metastable failure)?

Setup (the toy model of Bronson, Aghayev, Charapko & Zhu, "Metastable Failures in
Distributed Systems", HotOS 2021, §2.1): clients send an open-loop Poisson load to a
database; each request is one query plus one retry after a 1 s timeout (``attempts=2``, no
backoff). The DB serves ``workers`` queries at a time (exponential service, healthy capacity
``capacity_qps``); while more than ``thrash_above`` queries are inside it (serving + queued)
its working set no longer fits in memory and every query costs ``overload_factor`` (10x)
more work. The DB keeps working on queries whose client has already given up. A trigger —
a network latency ``spike``, a DB ``pause`` (GC, VM stall) or a DB ``outage`` (crash and
restart) — lasts a few seconds. Two arms at 60% load share their random streams:
*aggressive retries* and *backoff + jitter + budget* (3 attempts, exponential backoff with
full jitter, gRPC-style retry throttling). A sweep over the offered load (fraction of
capacity) asks, per trigger kind, whether goodput is back to >= 95% of the offered load
``recover_within_s`` after the trigger ends.

Derivation (:func:`derived_threshold`). Once the DB thrashes it serves C/f queries/s
(capacity C, factor f). If its queue is longer than C/f x timeout, every attempt times out,
so each request sends all r attempts: the DB receives r*load. It drains iff r*load < C/f.
Hence the system recovers from any trigger only below load = 1/(r*f) of capacity (5% for
r=2, f=10): the paper's *stable* region; between that and capacity it is *vulnerable* —
fine until a trigger that builds enough backlog. A queue bound short enough that a full queue
waits less than the timeout removes the retry amplification (threshold 1/f); a queue bound
below the thrashing point removes the slowdown (threshold 1/r, or capacity if also short).
Not every trigger builds a backlog (:func:`trigger_backlog`): a pause holds every attempt;
a latency spike or an outage adds no work itself, only the retries it provokes (and, when a
spike ends, the attempts it delayed arriving with new ones), so with the defaults they tip
the DB only above ~41% (spike) and ~69% (outage) of capacity.

Lesson: the retry doubles the load exactly when the system is least able to take it; with a
10x work amplification the system is stable only below 5% of its capacity, and a 2 s latency
spike at 60% leaves it down long after the spike (goodput ~0, 2 attempts per request).
Backoff, jitter and a retry budget keep the load near 1x during the spike, so no backlog
builds and the system recovers as soon as the spike ends. They do not make 60% stable: it is
above 1/f = 10%, so a trigger that builds a backlog itself (a long pause) would leave even
careful clients down; only keeping the DB from thrashing (a queue bound below the thrashing
point, load shedding) removes that.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.resilience import Pipeline, RetryBudgetConfig, RetryPolicy, TimeoutConfig
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("aggressive retries", "backoff + jitter + budget")
TRIGGERS = ("spike", "pause", "outage")
_CHECK_S = 0.01  # how often the DB's memory pressure (queries inside) is looked at: half a healthy query
_JUDGE_S = 5.0  # recovery is judged on the requests issued in the last 5 s of the recovery window


@parameters
class Params:
    duration_s: float = param(60.0, unit="s", gt=0, le=3600, help="simulated time of the two-arm run")
    load: float = param(0.6, unit="fraction of capacity", gt=0, le=2, help="offered load of the two-arm run")
    capacity_qps: float = param(200.0, unit="queries/s", gt=0, le=100_000,
                                help="healthy DB capacity = workers / mean service time")
    workers: int = param(4, unit="queries", ge=1, le=10_000, help="queries the DB serves at once")
    overload_factor: float = param(10.0, unit="x", ge=1, le=1000,
                                   help="work per query while the DB thrashes (1 = no slowdown)")
    thrash_above: int = param(80, unit="queries", ge=0, le=10_000_000,
                              help="the DB thrashes while more queries than this are inside it")
    queue_limit: int = param(2000, unit="queries", ge=0, le=10_000_000,
                             help="queue bound; attempts past it are rejected")
    attempts: int = param(2, unit="attempts", ge=1, le=20, help="aggressive arm: attempts per request, no backoff")
    timeout_s: float = param(1.0, unit="s", gt=0, le=60, help="client timeout per attempt")
    trigger: str = param("spike", choices=TRIGGERS, help="trigger of the two-arm run")
    trigger_at: float = param(10.0, unit="s", ge=0, le=3600, help="trigger start")
    trigger_s: float = param(2.0, unit="s", gt=0, le=600, help="trigger length (two-arm run)")
    spike_extra_s: float = param(0.6, unit="s", ge=0, le=60, help="latency added to every message during a spike")
    window_s: float = param(1.0, unit="s", gt=0, le=60, help="time-series window")
    sweep_loads: tuple[float, ...] = param(
        (0.02, 0.03, 0.04, 0.045, 0.05, 0.055, 0.06, 0.07, 0.08, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7),
        unit="fraction of capacity", gt=0, le=2, min_len=0, help="offered loads of the sweep (empty: no sweep)")
    sweep_triggers: tuple[str, ...] = param(("pause", "spike"), choices=TRIGGERS, help="trigger kinds of the sweep")
    sweep_trigger_s: float = param(8.0, unit="s", gt=0, le=600, help="trigger length in the sweep")
    recover_within_s: float = param(120.0, unit="s", ge=2 * _JUDGE_S, le=3600,
                                    help="sweep: recovered = goodput >= 95% of offered this long after the trigger")

    def __post_init__(self) -> None:
        if not self.trigger_at + self.trigger_s + 2 * self.window_s < self.duration_s:
            raise ValueError(f"need trigger_at + trigger_s + 2 * window_s < duration_s, got trigger_at="
                             f"{self.trigger_at}, trigger_s={self.trigger_s}, window_s={self.window_s}, "
                             f"duration_s={self.duration_s}")

    @property
    def rate(self) -> float:
        """Offered requests/s of the two-arm run."""
        return self.load * self.capacity_qps


QUICK = Params(duration_s=20.0, trigger_at=4.0, sweep_loads=(0.03, 0.08), sweep_triggers=("pause",),
               recover_within_s=20.0)


# -- the model ----------------------------------------------------------------------------------
class ThrashingDB:
    """A FIFO database whose queries cost ``overload_factor`` x more while more than
    ``thrash_above`` queries are inside it (cache/buffer-pool thrashing). The load on it is
    looked at every ``_CHECK_S``; a query's cost is fixed when it starts."""

    def __init__(self, sim: Simulation, p: Params, name: str = "db") -> None:
        self.sim, self.p = sim, p
        self.node = sim.node(name)
        self.pool = self.node.serve("get", service=Exponential(p.workers / p.capacity_qps), workers=p.workers,
                                    queue_limit=p.queue_limit)
        self.thrashing_s = 0.0
        sim.at(0.0, self._check)

    @property
    def inside(self) -> int:
        return self.pool.busy + self.pool.queue_length

    def _check(self) -> None:
        thrash = self.inside > self.p.thrash_above
        self.node.slow_factor = self.p.overload_factor if thrash else 1.0
        self.thrashing_s += _CHECK_S if thrash else 0.0
        self.sim.at(_CHECK_S, self._check)


def stable_threshold(p: Params) -> float:
    """Largest load (fraction of capacity) from which the model drains once it is in the bad
    state (thrashing, every attempt timing out): r * load < C / f."""
    c = p.capacity_qps
    slow = c / p.overload_factor if _can_thrash(p) else c
    full_queue_wait = p.queue_limit / slow  # FIFO wait behind a full queue at the slow rate
    amp = p.attempts if full_queue_wait > p.timeout_s else 1  # every attempt times out, or none does
    return min(1.0, slow / amp / c)


def _can_thrash(p: Params) -> bool:
    return p.thrash_above < p.workers + p.queue_limit


def trigger_backlog(p: Params, trigger: str, trigger_s: float, load: float) -> float:
    """Approximate queries a trigger leaves queued at the DB beyond what it serves (fluid model,
    aggressive policy: r attempts, no backoff). A pause holds every attempt made during it; a
    spike (when it makes every attempt time out) sends r*load, and when it ends the attempts it
    delayed arrive together with new ones: 2*r*load for ``spike_extra_s``; after an outage the
    retries of the requests it failed arrive with new requests: r*load for one timeout."""
    lam, c, r, t = load * p.capacity_qps, p.capacity_qps, p.attempts, p.timeout_s
    if trigger == "pause":
        return lam * sum(max(0.0, trigger_s - k * t) for k in range(r))
    if trigger == "outage":
        return max(0.0, r * lam - c) * t
    e = p.spike_extra_s
    amp = r if 2 * e >= t else 1  # a round trip longer than the timeout: every attempt times out
    return max(0.0, amp * lam - c) * max(0.0, trigger_s - (amp - 1) * t) + max(0.0, 2 * amp * lam - c) * e


def derived_threshold(p: Params, trigger: str = "pause", trigger_s: float | None = None) -> float:
    """Largest load (fraction of capacity) from which the model recovers after ``trigger``: it
    must both tip the DB into the bad state (a backlog past the thrashing point, or past the
    queue whose wait exceeds the timeout if it cannot thrash) and the load must be above
    :func:`stable_threshold` for the bad state to last."""
    d = p.sweep_trigger_s if trigger_s is None else trigger_s
    entry = p.thrash_above - p.workers if _can_thrash(p) else p.timeout_s * p.capacity_qps
    lo, hi = 0.0, 2.0  # bisection: the backlog grows with the load
    if trigger_backlog(p, trigger, d, hi) <= entry:
        return max(stable_threshold(p), hi)
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if trigger_backlog(p, trigger, d, mid) <= entry else (lo, mid)
    return max(stable_threshold(p), lo)


def world(p: Params, seed: int, trigger: str | None = None,
          trigger_s: float | None = None) -> tuple[Simulation, ThrashingDB]:
    """The lesson's world without clients: the network, the thrashing DB and the trigger (``p.trigger``
    for ``p.trigger_s`` unless given) — add any client policy to it (notebook 02's policy exercise does)."""
    trigger = p.trigger if trigger is None else trigger
    trigger_s = p.trigger_s if trigger_s is None else trigger_s
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.3))
    db = ThrashingDB(sim, p)
    if trigger == "spike":
        sim.faults.latency_spike(p.trigger_at, trigger_s, extra_s=p.spike_extra_s)
    elif trigger == "pause":
        sim.faults.pause(p.trigger_at, "db", trigger_s)
    else:
        sim.faults.crash(p.trigger_at, "db", recover_at=p.trigger_at + trigger_s)
    return sim, db


def _aggressive(p: Params) -> RetryPolicy:
    return RetryPolicy(max_attempts=p.attempts, backoff="none")


def _client(sim: Simulation, arm: str, p: Params, rate: float, stop_at: float) -> PoissonClient:
    if arm == ARMS[0]:
        return PoissonClient(sim, "clients", ["db"], rate=rate, stop_at=stop_at, timeout_s=p.timeout_s,
                             retry=_aggressive(p))
    caller = Pipeline(sim, timeout=TimeoutConfig(request_s=p.timeout_s), name="client",
                      retry=RetryPolicy(max_attempts=3, backoff="exponential", base_s=0.05, cap_s=1.0, jitter="full"),
                      retry_budget=RetryBudgetConfig(max_tokens=10, token_ratio=0.1))
    return PoissonClient(sim, "clients", ["db"], rate=rate, stop_at=stop_at, caller=caller)


def run_arm(p: Params, seed: int, arm: str) -> tuple[pd.DataFrame, dict]:
    sim, db = world(p, seed)
    _client(sim, arm, p, p.rate, p.duration_s)
    samples: list[tuple[float, int, float]] = []

    def sample() -> None:
        samples.append((sim.now, db.inside, db.node.slow_factor))
        sim.at(p.window_s, sample)

    sim.at(0.0, sample)
    sim.run(until=p.duration_s + p.attempts * p.timeout_s + 2)
    df = sim.metrics.requests()
    w = (df.start // p.window_s) * p.window_s
    g = df.assign(window=w, good=df.outcome == "ok").groupby("window")
    s = pd.DataFrame({"goodput": g["good"].sum() / p.window_s,
                      "attempts_per_s": g["attempts"].sum() / p.window_s}).reset_index()
    q = pd.DataFrame(samples, columns=["window", "queue", "slow_factor"])
    s = s.merge(q, on="window", how="left").assign(arm=arm)
    end = p.trigger_at + p.trigger_s
    after = s[(s.window >= end + 5) & (s.window < p.duration_s - p.window_s)]
    row = {"arm": arm,
           "goodput_after_spike": float(after.goodput.mean()) if len(after) else math.nan,
           "offered_load_x_after": float(after.attempts_per_s.mean() / p.rate) if len(after) else math.nan,
           "attempts_per_request_after": float(df[df.start >= end + 5].attempts.mean()),
           "ok_fraction": float((df.outcome == "ok").mean()),
           "max_queue": int(s["queue"].max()),
           "thrashing_s": round(db.thrashing_s, 6)}
    return s, row


def recovers(p: Params, seed: int, trigger: str, load: float) -> dict:
    """One sweep cell: the aggressive policy at ``load`` hit by ``trigger`` for ``sweep_trigger_s``."""
    end = p.trigger_at + p.sweep_trigger_s
    horizon = end + p.recover_within_s
    sim, db = world(p, seed, trigger, p.sweep_trigger_s)
    _client(sim, ARMS[0], p, load * p.capacity_qps, horizon)
    backlog = {}
    sim.at(end + _CHECK_S, lambda: backlog.setdefault("q", db.inside))  # just after a pause releases its held queries
    sim.run(until=horizon + p.attempts * p.timeout_s + 1)
    df = sim.metrics.requests()
    judged = df[(df.start >= horizon - _JUDGE_S) & (df.start < horizon)]
    ok = float((judged.outcome == "ok").mean()) if len(judged) else math.nan
    after = df[df.start >= end]
    win = ((after.start - end) // 1.0).astype(int)
    bad = (after.outcome != "ok").groupby(win).mean()
    bad = bad[bad > 0.05]
    recovered = ok >= 0.95
    return {"trigger": trigger, "load": load, "ok_fraction_at_end": ok, "recovered": bool(recovered),
            "time_to_recover_s": float(bad.index.max() + 1) if recovered and len(bad) else 0.0 if recovered
            else math.nan,
            "backlog_at_trigger_end": int(backlog.get("q", -1)),
            "attempts_per_request_at_end": float(judged.attempts.mean()) if len(judged) else math.nan,
            "thrashing_s": round(db.thrashing_s, 6)}


def thresholds(sweep: pd.DataFrame, p: Params) -> pd.DataFrame:
    """Per trigger: the largest swept load below which every load recovered, beside the derivation."""
    rows = []
    for trig, g in sweep.groupby("trigger", sort=False):
        g = g.sort_values("load")
        fails = g[~g.recovered.astype(bool)]
        first_fail = float(fails.load.min()) if len(fails) else math.nan
        ok = g[g.load < first_fail] if len(fails) else g
        rows.append({"trigger": trig, "measured_threshold": float(ok.load.max()) if len(ok) else math.nan,
                     "first_failing_load": first_fail, "derived_threshold": derived_threshold(p, trig),
                     "stable_threshold": stable_threshold(p)})
    return pd.DataFrame(rows)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary = [], []
    for arm in ARMS:
        s, row = run_arm(p, seed, arm)
        series.append(s)
        summary.append(row)
    out = {"timeseries": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(summary)}
    if p.sweep_loads:
        sweep = pd.DataFrame([recovers(p, seed, t, x) for t in p.sweep_triggers for x in p.sweep_loads])
        out["sweep"] = sweep
        out["thresholds"] = thresholds(sweep, p)
    return out


# -- the published claim -----------------------------------------------------------------------------
def validate(quick: bool) -> list[Check]:
    """The measured recovery threshold after a pause against r*load < C/f; the retry doubling the load."""
    fine = tuple(np.round(np.arange(0.03, 0.0801, 0.0025), 4))
    grid = (0.03, 0.04, 0.045, 0.05, 0.055, 0.06, 0.07) if quick else fine
    seeds = (1,) if quick else (1, 2, 3, 4, 5)
    p = Params(sweep_loads=grid, sweep_triggers=("pause",))
    derived = derived_threshold(p, "pause")
    measured, backlogs = [], []
    for seed in seeds:
        sweep = pd.DataFrame([recovers(p, seed, "pause", x) for x in grid])
        measured.append(float(thresholds(sweep, p).measured_threshold.iloc[0]))
        near = sweep[(sweep.load - derived).abs() <= 0.01]
        backlogs += near.backlog_at_trigger_end.tolist()
    m, ci = mean_ci95(measured)
    step = float(np.diff(sorted(grid)).max())
    c, r, h = p.capacity_qps, p.attempts, p.recover_within_s - _JUDGE_S
    # the backlog past the thrashing point the pause leaves near the threshold: most and least
    most, least = (max(1, b - p.thrash_above) for b in (max(backlogs), min(backlogs)))
    # Below the threshold by d, the excess drains at r*C*d queries/s: loads closer than excess/(r*C*h)
    # have not drained when recovery is judged. Above it by d, the queue grows at r*C*d with variance
    # ~2*C/f per second; a random walk escapes back below the thrashing point with probability
    # exp(-2*r*C*d*excess/var) — under 5% once d > 3*var/(2*r*C*excess).
    drain_bias = most / (r * c * h)
    escape_bias = 3 * (2 * c / p.overload_factor) / (2 * r * c * least)
    tol = step + max(drain_bias, escape_bias)
    q = Params(duration_s=25.0, trigger_at=4.0, sweep_loads=())
    _, row = run_arm(q, 1, ARMS[0])
    return [
        Check(source="Bronson et al. 2021 (HotOS), §2.1 toy model; threshold derived here",
              setup=f"C={p.capacity_qps:g} q/s, {p.workers} workers, {p.overload_factor:g}x slower above "
                    f"{p.thrash_above} queries, 1 retry after {p.timeout_s:g} s, {p.sweep_trigger_s:g} s DB pause",
              quantity="largest load (fraction of capacity) that recovers; derived 1/(r*f)",
              published=derived, measured=m, tolerance=tol, ci95=ci if len(seeds) > 1 else None,
              why=f"grid step {step:.4f} + the larger of the finite-window drain bias {drain_bias:.4f} and the "
                  f"random-walk escape bias {escape_bias:.4f} (backlog {least}-{most} queries past the "
                  "thrashing point)",
              cause="published is the paper's qualitative claim made quantitative by our derivation, "
                    "not a number printed in the paper"),
        Check(source="Bronson et al. 2021 (HotOS), §2.1: the retry doubles the load",
              setup=f"{q.load:.0%} load, {q.trigger_s:g} s latency spike of +{q.spike_extra_s:g} s/message, 2 attempts",
              quantity="attempts per request after the spike (stuck state)",
              published=float(q.attempts), measured=row["attempts_per_request_after"], tolerance=0.05,
              why="in the stuck state every attempt times out, so every request makes all r attempts; 0.05 "
                  "allows for the few requests issued just before the run ends"),
    ]


# -- figures ------------------------------------------------------------------------------------------
def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts = results["timeseries"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "window"], as_index=False)[["goodput", "queue", "attempts_per_s"]].mean()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, constrained_layout=True)
    trig = [(p.trigger_at, p.trigger_at + p.trigger_s, f"{p.trigger}")]
    for ax in (a1, a2):
        plots.shade_faults(ax, trig)
    for arm, g in ts.groupby("arm", sort=False):
        c = plots.color_for(arm)
        a1.plot(g.window, g.goodput, label=arm, color=c, lw=1.8)
        a2.plot(g.window, g.queue, label=arm, color=c, lw=1.8)
    a1.axhline(p.rate, color="0.5", ls=":", lw=1)
    a1.text(0, p.rate, " offered load", va="bottom", fontsize=8, color="0.4")
    a1.set_ylabel("goodput (ok requests/s)")
    a1.legend(loc="center right", fontsize=8)
    a2.axhline(p.thrash_above, color="0.5", ls=":", lw=1)
    a2.text(0, p.thrash_above, f" DB thrashes ({p.overload_factor:g}x slower) above", va="bottom", fontsize=8,
            color="0.4")
    a2.set_yscale("symlog", linthresh=10)
    a2.set_ylim(bottom=0)
    a2.set_ylabel(f"queries inside the DB (queue bound {p.queue_limit:,})")
    a2.set_xlabel("time (s)")
    fig.suptitle(f"At {p.load:.0%} load a {p.trigger_s:g} s {p.trigger} leaves {p.attempts}-attempt retries down "
                 "for good; backoff + jitter + a budget recover")
    figs = {"retry_storm": fig}
    if "sweep" in results:
        figs["metastable_threshold"] = _plot_sweep(results["sweep"], p)
    return figs


def _plot_sweep(sweep: pd.DataFrame, p: Params):
    import matplotlib.pyplot as plt

    from simulator import plots

    s = sweep.groupby(["trigger", "load"], as_index=False)[["ok_fraction_at_end"]].mean()
    fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
    stable = stable_threshold(p)
    lo, hi = min(s.load.min(), stable) * 0.8, max(s.load.max(), 1.0) * 1.05
    ax.axvspan(lo, stable, color="tab:green", alpha=0.08, lw=0)
    ax.axvspan(stable, 1.0, color="tab:orange", alpha=0.08, lw=0)
    ax.text(stable, 0.5, f" derived 1/(r·f) = {stable:.1%}", rotation=90, va="center", fontsize=8, color="0.3")
    ax.axvline(stable, color="0.3", ls="--", lw=1)
    ax.text(lo * 1.05, 1.02, "stable", fontsize=8, color="tab:green", va="bottom")
    ax.text(stable * 1.1, 1.02, "vulnerable: a trigger leaves it down", fontsize=8, color="tab:orange", va="bottom")
    for trig, g in s.groupby("trigger", sort=False):
        c = plots.color_for(trig)
        d = derived_threshold(p, trig)
        ax.plot(g.load, g.ok_fraction_at_end, "o-", color=c, lw=1.4,
                label=f"{trig} of {p.sweep_trigger_s:g} s (derived edge {d:.0%})")
        ax.plot([d], [-0.02], "^", color=c, ms=9, clip_on=False)
    ax.axhline(0.95, color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.03, 1.1)
    ax.set_xlabel("offered load (fraction of healthy DB capacity)")
    ax.set_ylabel(f"ok fraction {p.recover_within_s:g} s after the trigger")
    ax.legend(loc="center right", fontsize=8)
    ax.set_title(f"{p.attempts - 1} retry + a {p.overload_factor:g}x slower overloaded DB: stable only below "
                 f"{stable:.0%} of capacity;\nabove it, any trigger that builds a backlog leaves the system down",
                 fontsize=11)
    return fig
