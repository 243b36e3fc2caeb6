"""How much work and time do jittered backoffs save when many clients contend for one row?

Setup (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015, and its
simulator, github.com/aws-samples/aws-arch-backoff-simulator, ``src/backoff_simulator.py``):
optimistic concurrency on a single row. N clients start at t = 0; each reads the row's version,
then sends a conditional write that succeeds only if the version is unchanged (and bumps it).
A failed client sleeps its backoff and starts again with a fresh read; a client stops after
its one successful write. Every one-way message (read request, read reply, write request,
write reply) takes |Normal(10 ms, 2 ms)|; the failed client's next read request leaves after
its backoff, so it reaches the row one delay + one backoff after the failure reply. Backoff
before the retry that follows failure number ``a`` (a = 1, 2, ...), base 5 ms, cap 2 s:
none: 0; exponential: expo = min(cap, base * 2**a); full jitter: U(0, expo); equal jitter:
expo/2 + U(0, expo/2); decorrelated: sleep = min(cap, U(base, 3 * previous sleep)), starting
from base. Work = write calls to the row (reads are not counted, as in the source); time = when
the last client receives its success reply. Each point averages ``trials`` runs (the source: 100).

Lesson: without jitter, exponential backoff keeps the clients in lockstep: every wave of retries
collides again, so at 100 clients it makes 2.3x the calls of full jitter and takes 13x as long
(with a deterministic network it is exactly N(N+1)/2 calls, one winner per wave). Retrying at
once (no backoff) finishes first but does the most work (3x full jitter at 100 clients). Any
jitter spreads the retries: full and equal jitter do about the same (least) work, decorrelated
a little more; equal jitter is the slowest of the three, decorrelated slightly faster than full,
as the post reports. Our numbers match the source's own output within sampling error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.resilience import RetryPolicy
from simulator import Simulation
from simulator.runner import Check, param, parameters

STRATEGIES = ("no_backoff", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter")
LABELS = {"no_backoff": "no backoff", "exponential": "exponential, no jitter", "full_jitter": "full jitter",
          "equal_jitter": "equal jitter", "decorrelated_jitter": "decorrelated jitter"}
_JITTER = {"exponential": "none", "full_jitter": "full", "equal_jitter": "equal", "decorrelated_jitter": "decorrelated"}
HORIZON_S = 1e7  # the run ends when the event queue empties; this only bounds a runaway


@parameters
class Params:
    clients: tuple[int, ...] = param(tuple(range(10, 200, 10)), unit="clients", ge=1, le=1000,
                                     help="numbers of contending clients (the post: 10, 20, ..., 190)")
    strategies: tuple[str, ...] = param(STRATEGIES, choices=STRATEGIES, help="backoff strategies compared")
    base_ms: float = param(5.0, unit="ms", gt=0, le=60_000, help="backoff base")
    cap_ms: float = param(2000.0, unit="ms", gt=0, le=600_000, help="backoff cap")
    delay_mean_ms: float = param(10.0, unit="ms", ge=0, le=10_000, help="mean one-way network delay")
    delay_sd_ms: float = param(2.0, unit="ms", ge=0, le=10_000,
                               help="sd of the one-way delay, |Normal(mean, sd)|; 0 = deterministic")
    trials: int = param(100, unit="runs", ge=1, le=10_000, help="runs averaged per point (the source: 100)")

    def __post_init__(self) -> None:
        if self.cap_ms < self.base_ms:
            raise ValueError(f"need base_ms <= cap_ms, got base_ms={self.base_ms}, cap_ms={self.cap_ms}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"parameter strategies={self.strategies!r} lists a strategy twice")


QUICK = Params(clients=(10, 50, 100), trials=4)


def policy(strategy: str, base_s: float, cap_s: float) -> RetryPolicy:
    """The strategy as a shared :class:`RetryPolicy` (its formulas are the post's, see :func:`sleep_s`)."""
    if strategy == "no_backoff":
        return RetryPolicy(backoff="none", base_s=base_s, cap_s=cap_s, jitter="none")
    return RetryPolicy(backoff="exponential", base_s=base_s, cap_s=cap_s, jitter=_JITTER[strategy])


def sleep_s(pol: RetryPolicy, failures: int, previous_s: float, u) -> float:
    """Backoff after failure number ``failures`` (1-based), as in the source's ``backoff(attempt)``.

    The source sleeps ``expo(a) = min(cap, base * 2**a)`` (2 * base after the first failure);
    :meth:`RetryPolicy.delay` uses ``base * 2**(n-1)`` for retry ``n``, hence ``n = a + 1``.
    Decorrelated jitter ignores ``a``: ``min(cap, U(base, 3 * previous_s))``, ``previous_s = 0``
    meaning "start from base" as the source does.
    """
    return pol.delay(failures + 1, previous_s, u)


def _abs_normal(rng: np.random.Generator, mean: float, sd: float):
    """Batched |Normal(mean, sd)| draws, the source's ``abs(random.normalvariate(mean, sd))``."""
    if sd == 0:
        return lambda: mean
    buf: list[float] = []
    pop = buf.pop

    def draw() -> float:
        if not buf:
            buf.extend(np.abs(rng.normal(mean, sd, 4096)).tolist())
        return pop()

    return draw


def occ_trial(seed: int, trial: int, n: int, strategy: str, p: Params, record: bool = False) -> dict:
    """One run of the source's OCC model with ``n`` clients; returns calls, completion and checks.

    Two events per attempt, both at the row (the client's own hops touch no shared state, so they
    are folded into the delays): the read request arriving, then the write request arriving one
    read-reply delay + one write-request delay later. Streams ``net/<trial>`` and
    ``backoff/<trial>`` are shared by every strategy and N (common random numbers).
    """
    sim = Simulation(seed=seed)
    delay = _abs_normal(sim.rng(f"net/{trial}"), p.delay_mean_ms / 1000, p.delay_sd_ms / 1000)
    u = sim.uniforms(f"backoff/{trial}")
    pol = policy(strategy, p.base_ms / 1000, p.cap_ms / 1000)
    at = sim.at
    row = {"version": 0, "calls": 0}
    finished: list[float] = []  # time each client receives its success reply
    write_times: list[float] = []

    def start_client() -> None:
        failures = 0
        previous = 0.0

        def read() -> None:  # the read request reaches the row
            version = row["version"]
            at(delay() + delay(), lambda: write(version))

        def write(version: int) -> None:  # the conditional write reaches the row
            nonlocal failures, previous
            row["calls"] += 1
            if record:
                write_times.append(sim.now)
            if version == row["version"]:
                row["version"] += 1
                finished.append(sim.now + delay())
                return
            reply = delay()
            failures += 1
            previous = sleep_s(pol, failures, previous, u)
            at(reply + delay() + previous, read)

        at(delay(), read)

    for _ in range(n):
        start_client()
    sim.run(until=HORIZON_S)
    out = {"strategy": strategy, "clients": n, "trial": trial, "calls": row["calls"],
           "completion_ms": 1000 * max(finished) if finished else math.nan,
           "finished": len(finished), "version": row["version"]}
    if record:
        out["write_times_s"] = write_times
    return out


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, timeline = [], []
    n_max = max(p.clients)
    for s in p.strategies:
        for n in p.clients:
            for t in range(p.trials):
                r = occ_trial(seed, t, n, s, p, record=(t == 0 and n == n_max))
                for w in r.pop("write_times_s", ()):
                    timeline.append((s, n, w))
                rows.append(r)
    trials = pd.DataFrame(rows)
    g = trials.groupby(["strategy", "clients"], sort=False)
    summary = g.agg(trials=("calls", "size"), calls=("calls", "mean"), calls_se=("calls", "sem"),
                    completion_ms=("completion_ms", "mean"), completion_ms_se=("completion_ms", "sem"),
                    finished=("finished", "min")).reset_index()
    summary["calls_per_client"] = summary.calls / summary.clients
    summary["all_finished_once"] = (g.finished.min().values == summary.clients.values) & (
        g.version.max().values == summary.clients.values)
    summary.insert(1, "label", summary.strategy.map(LABELS))
    return {"summary": summary, "trials": trials,
            "write_times": pd.DataFrame(timeline, columns=["strategy", "clients", "time_s"])}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby(["strategy", "clients"], as_index=False, sort=False)[
        ["calls", "completion_ms"]].mean()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    for strat, g in s.groupby("strategy", sort=False):
        c = plots.color_for(f"backoff: {LABELS[strat]}")
        a1.plot(g.clients, g.calls, "o-", ms=3, color=c, label=LABELS[strat])
        a2.plot(g.clients, g.completion_ms, "o-", ms=3, color=c, label=LABELS[strat])
    a1.set(xlabel="contending clients", ylabel="total write calls (work)",
           title="Work: jitter does less than half the calls of plain exponential")
    a2.set(xlabel="contending clients", ylabel="time until the last client succeeds (ms, log)", yscale="log",
           title="Time: exponential without jitter is by far the slowest")
    a1.legend()
    fig.suptitle("Exponential backoff without jitter keeps retries in lockstep; jitter spreads them "
                 "(Brooker 2015, single-row OCC)")
    figs = {"backoff_jitter": fig}
    w = results.get("write_times")
    if w is not None and len(w):
        n = int(w.clients.max())
        f2, ax = plt.subplots(figsize=(9, 3.8), constrained_layout=True)
        show = [x for x in ("exponential", "full_jitter") if x in set(w.strategy)] or list(w.strategy.unique())
        t_end = float(w[w.strategy.isin(show)].time_s.max())
        bins = np.linspace(0, t_end, 120)
        for strat in show:
            ax.hist(w[w.strategy == strat].time_s, bins=bins, histtype="step", lw=1.4,
                    color=plots.color_for(f"backoff: {LABELS[strat]}"), label=LABELS[strat])
        ax.set(xlabel="time (s)", ylabel="write calls per bin", yscale="log",
               title=f"{n} clients, one run: without jitter the calls come in synchronised spikes")
        ax.legend()
        figs["calls_over_time"] = f2
    return figs


# Output of the public simulator itself (aws-samples/aws-arch-backoff-simulator, src/backoff_simulator.py,
# simulation part transcribed unchanged, 100 runs per point as in its run(), Python random.seed(1) for N <= 50 and
# random.seed(2) for N >= 100; run locally for this reproduction): mean calls, its s.e., mean time (ms), its s.e.
SOURCE_OUTPUT = {
    ("exponential", 10): (51.0, 0.4, 3590.4, 139.6), ("decorrelated_jitter", 10): (37.9, 0.2, 434.9, 8.7),
    ("equal_jitter", 10): (42.4, 0.2, 732.8, 16.7), ("full_jitter", 10): (38.6, 0.2, 465.4, 9.9),
    ("no_backoff", 10): (50.6, 0.4, 382.2, 2.9),
    ("exponential", 50): (623.2, 3.0, 36033.5, 335.8), ("decorrelated_jitter", 50): (372.7, 1.2, 2194.7, 56.0),
    ("equal_jitter", 50): (347.1, 0.6, 4277.7, 55.7), ("full_jitter", 50): (332.4, 0.4, 2914.3, 55.7),
    ("no_backoff", 50): (690.0, 1.8, 1138.5, 4.2),
    ("exponential", 100): (1855.1, 5.4, 63675.8, 341.6), ("decorrelated_jitter", 100): (1002.2, 2.6, 4659.5, 69.6),
    ("equal_jitter", 100): (814.3, 0.8, 6666.7, 68.8), ("full_jitter", 100): (796.4, 0.7, 4873.5, 49.7),
    ("no_backoff", 100): (2420.9, 3.3, 2023.4, 4.5),
    ("exponential", 190): (5164.1, 11.5, 101519.4, 372.7), ("decorrelated_jitter", 190): (2439.5, 6.8, 8051.3, 97.5),
    ("equal_jitter", 190): (1758.3, 1.2, 9303.9, 52.6), ("full_jitter", 190): (1771.6, 1.2, 7472.3, 51.5),
    ("no_backoff", 190): (8012.1, 6.8, 3537.8, 4.8),
}
_SRC = "aws-samples/aws-arch-backoff-simulator (the post's simulator), its output"
_SETUP = "single-row OCC, |N(10,2)| ms per hop, base 5 ms, cap 2 s"


def validate(quick: bool) -> list[Check]:
    """Our model vs the public simulator's own output, and vs the post's claims (ratios at 100 clients).

    Tolerance for the numbers: 4 combined standard errors of the two Monte Carlo means (ours from
    our trials, the source's from its 100 runs): both programs sample the same model, so any
    larger gap is a semantic difference. quick: 100 clients; full: 10/50/100/190; 100 runs per point like the source.
    """
    p = Params(clients=(100,), trials=100) if quick else Params(clients=(10, 50, 100, 190), trials=100)
    s = run(p, seed=2015)["summary"].set_index(["strategy", "clients"])
    checks = []
    for (strat, n), (c_pub, c_se, t_pub, t_se) in SOURCE_OUTPUT.items():
        if n not in p.clients:
            continue
        r = s.loc[(strat, n)]
        setup = f"{n} clients, {LABELS[strat]}; {_SETUP}; {p.trials} runs (source: 100)"
        for q, pub, se_pub, m, se in (("mean write calls", c_pub, c_se, r.calls, r.calls_se),
                                      ("mean completion time (ms)", t_pub, t_se, r.completion_ms, r.completion_ms_se)):
            tol = 4 * math.hypot(se_pub, se)
            checks.append(Check(source=_SRC, setup=setup, quantity=q, published=pub, measured=float(m),
                                tolerance=round(tol, 1), ci95=(float(m - 1.96 * se), float(m + 1.96 * se)),
                                why="4 combined standard errors of two Monte Carlo means of the same model"))
    c = s.xs(100, level="clients")
    post = "Brooker 2015, AWS Architecture Blog (text, paraphrased from memory)"
    setup = f"100 clients; {_SETUP}; {p.trials} runs"
    checks.append(Check(
        source=post, setup=setup, quantity="calls, full jitter / exponential without jitter",
        published=0.25, measured=float(c.calls["full_jitter"] / c.calls["exponential"]), tolerance=0.25,
        why="the post: with 100 clients full jitter 'reduced our call count by more than half', i.e. a ratio "
            "in (0, 0.5]: published = the interval's middle, tolerance = its half-width"))
    checks.append(Check(
        source=post, setup=setup, quantity="calls, equal jitter / full jitter",
        published=1.0, measured=float(c.calls["equal_jitter"] / c.calls["full_jitter"]), tolerance=0.1,
        why="the post: calls 'approximately the same for Full and Equal jitter' (read as within 10%)"))
    checks.append(Check(
        source=post, setup=setup, quantity="completion time, exponential without jitter / full jitter",
        published=(1 + 50) / 2, measured=float(c.completion_ms["exponential"] / c.completion_ms["full_jitter"]),
        tolerance=(50 - 1) / 2,
        why="the post: no-jitter exponential 'takes so much more time we have to leave it off the graph': a "
            "ratio well above 1; we accept (1, 50] (middle +- half-width)"))
    return checks
