"""What does a circuit breaker buy callers — and the failing dependency — during an outage?

Setup: a caller sends 200 req/s to a dependency (4 workers, 10 ms service) with a 500 ms
timeout and no retries. The dependency hangs (crashes silently) from ``fail_at`` for
``fail_s`` seconds. Arms (same random streams): no breaker, and a resilience4j-style breaker
(count window of 50 calls, at least 20 calls, 50% failure threshold, 5 s open, 5 trial calls
in half-open) with a fallback (cached value) when it is open.

Lesson: without a breaker every call during the outage waits the full timeout and fails, and
the dependency keeps receiving the full load. With a breaker, callers fail (or fall back)
in microseconds, the dependency receives only the occasional half-open probe — room to
recover — and traffic returns within one open interval of the recovery.

Reproduces (``validate``): resilience4j's documented state machine (CircuitBreaker docs,
resilience4j.readme.io/docs/circuitbreaker) as timing closed forms: a count window of N calls
at threshold f opens on the ceil(f N)-th failure, i.e. timeout + (ceil(f N) - n_in_flight)/rate
after a silent crash; in the outage each open -> half_open -> open cycle lasts
wait_duration_in_open + (permitted trial calls)/rate + timeout.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.resilience import CircuitBreakerConfig, FallbackConfig, Pipeline, TimeoutConfig
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("no breaker", "circuit breaker + fallback")
STATE_LEVEL = {"closed": 0, "half_open": 1, "open": 2}


@parameters
class Params:
    duration_s: float = param(60.0, unit="s", gt=0, le=86_400, help="simulated time")
    rate: float = param(200.0, unit="req/s", gt=0, le=1e6, help="requests per second")
    timeout_s: float = param(0.5, unit="s", gt=0, le=3600, help="the caller's timeout per call")
    fail_at: float = param(15.0, unit="s", ge=0, help="when the dependency goes down")
    fail_s: float = param(20.0, unit="s", gt=0, help="how long it stays down")
    wait_in_open_s: float = param(5.0, unit="s", gt=0, le=3600, help="breaker's wait in the open state")
    window_s: float = param(1.0, unit="s", gt=0, le=3600, help="width of the time-series windows")

    def __post_init__(self) -> None:
        if not self.fail_at + self.fail_s < self.duration_s:
            raise ValueError(f"need fail_at + fail_s < duration_s, got {self.fail_at} + {self.fail_s} >= "
                             f"{self.duration_s}")


QUICK = Params(duration_s=20.0, fail_at=5.0, fail_s=8.0, wait_in_open_s=2.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary, states = [], [], []
    for arm in ARMS:
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.001, sigma=0.3))
        dep = sim.node("dependency")
        pool = dep.serve("get", service=Exponential(0.01), workers=4)
        extra = {}
        if arm != ARMS[0]:
            extra = dict(breaker=CircuitBreakerConfig(
                sliding_window_size=50, minimum_number_of_calls=20, failure_rate_threshold=50,
                wait_duration_in_open_s=p.wait_in_open_s, permitted_calls_in_half_open=5,
                automatic_transition=True), fallback=FallbackConfig(value="cached"))
        pipe = Pipeline(sim, timeout=TimeoutConfig(request_s=p.timeout_s), name="caller", **extra)
        PoissonClient(sim, "caller", ["dependency"], rate=p.rate, stop_at=p.duration_s, caller=pipe)
        sim.faults.crash(p.fail_at, "dependency", recover_at=p.fail_at + p.fail_s)
        sim.run(until=p.duration_s + 1)
        df = sim.metrics.requests()
        sent = df.outcome != "short_circuited"
        sent &= df.fallback == 0 if arm == ARMS[0] else df.short_circuited == 0
        w = (df.start // p.window_s) * p.window_s
        g = df.assign(window=w, err=~df.outcome.isin(["ok", "fallback"]), sent=sent).groupby("window")
        s = pd.DataFrame({"error_rate": g["err"].mean(), "mean_latency_s": g["latency"].mean(),
                          "load_on_dependency": g["sent"].sum() / p.window_s}).reset_index().assign(arm=arm)
        series.append(s)
        out = df[(df.start >= p.fail_at) & (df.start < p.fail_at + p.fail_s)]
        summary.append({"arm": arm, "mean_latency_during_s": float(out.latency.mean()),
                        "answered_during": float(out.outcome.isin(["ok", "fallback"]).mean()),
                        "calls_to_dependency_during": int(sent[out.index].sum()),
                        "served_by_dependency": pool.served})
        if arm != ARMS[0]:
            states.append(pipe.breaker_transitions().assign(arm=arm))
    st = pd.concat(states, ignore_index=True) if states else pd.DataFrame()
    return {"timeseries": pd.concat(series, ignore_index=True), "summary": pd.DataFrame(summary), "breaker": st}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts = results["timeseries"]
    st = results["breaker"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "window"], as_index=False)[
            ["error_rate", "mean_latency_s", "load_on_dependency"]].mean()
        st = st[st.seed == st.seed.min()]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [2, 2, 2, 1]})
    outage = [(p.fail_at, p.fail_at + p.fail_s, "dependency down")]
    for ax in axes:
        plots.shade_faults(ax, outage, label=False)
    for arm, g in ts.groupby("arm", sort=False):
        c = plots.color_for(arm)
        # Short-circuited calls take ~0 s: floor at 1 µs so the log axis can show them.
        axes[0].plot(g.window, (g.mean_latency_s * 1e3).clip(lower=1e-3), color=c, label=arm)
        axes[1].plot(g.window, g.error_rate, color=c, label=arm)
        axes[2].plot(g.window, g.load_on_dependency, color=c, label=arm)
    axes[0].set_ylabel("caller mean latency\n(ms, floor 1 µs)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("error rate")
    axes[2].set_ylabel("calls sent to\ndependency (/s)")
    axes[0].legend(loc="upper right", fontsize=8)
    t = [0.0] + st["time"].tolist() + [p.duration_s]
    lv = [0] + [STATE_LEVEL[s] for s in st["to_state"]]
    axes[3].step(t, lv + [lv[-1]], where="post", color=plots.color_for(ARMS[1]))
    axes[3].set_yticks([0, 1, 2], ["closed", "half_open", "open"])
    axes[3].set_ylabel("breaker")
    axes[3].set_xlabel("time (s)")
    fig.suptitle("A breaker turns a 500 ms timeout into a fast fallback and takes the load off a failing dependency")
    return {"circuit_breaker": fig}


_SRC = "resilience4j CircuitBreaker docs (resilience4j.readme.io/docs/circuitbreaker), state machine"
_WINDOW, _THRESHOLD, _TRIALS, _WORKERS, _SERVICE_S, _NET_MEDIAN_S, _NET_SIGMA = 50, 0.5, 5, 4, 0.01, 0.001, 0.3


def _in_flight(rate: float) -> float:
    """Calls lost inside the dependency when it hangs: Little's law, rate x (one-way latency + M/M/c
    sojourn, Erlang C), for the setup of :func:`run` (4 workers, 10 ms exponential service)."""
    a, c = rate * _SERVICE_S, _WORKERS
    b = 1.0
    for k in range(1, c + 1):  # Erlang B by recursion, then Erlang C
        b = a * b / (k + a * b)
    erl_c = b / (1 - (a / c) * (1 - b))
    sojourn = _SERVICE_S + erl_c / (c / _SERVICE_S - rate)
    return rate * (sojourn + _NET_MEDIAN_S * math.exp(_NET_SIGMA ** 2 / 2))


def validate(quick: bool) -> list[Check]:
    """The breaker's timing against resilience4j's state machine, on :func:`run`'s own model.

    1. Closed -> open: the window holds N successes when the dependency hangs; it opens on the
       ceil(f N)-th failure. The calls in flight at the crash (Little's law) fail first, then each
       call issued after it fails ``timeout_s`` later: delay = timeout + (ceil(f N) - n)/rate
       (Poisson arrivals: the k-th after the crash comes k/rate later on average).
    2. During the outage, open -> half_open after ``wait_in_open_s`` (automatic transition), the
       permitted trial calls arrive (Gamma(trials, rate)), the last one times out, and the trial
       failure rate (100%) re-opens it: cycle = wait + trials/rate + timeout.
    Tolerance: 4 standard errors of the replications (seeds), the sampling error of Poisson arrivals.
    """
    p = QUICK
    seeds = range(6) if quick else range(80)
    opens, cycles = [], []
    for seed in seeds:
        st = run(p, seed=seed)["breaker"]
        t_open = st[st.to_state == "open"].time.to_numpy()
        opens.append(t_open[0] - p.fail_at)
        during = t_open[t_open < p.fail_at + p.fail_s]
        cycles.extend(np.diff(during))
    setup = (f"{p.rate:g} req/s, timeout {p.timeout_s * 1e3:g} ms, count window {_WINDOW}, threshold "
             f"{_THRESHOLD:.0%}, {_TRIALS} trial calls, open {p.wait_in_open_s:g} s; dependency hangs "
             f"{p.fail_s:g} s; {len(seeds)} seeds")
    k = math.ceil(_THRESHOLD * _WINDOW)
    why = "4 SE of {n} samples (Poisson arrivals: the Gamma-distributed time to the k-th call)"
    checks = []
    for q, pub, xs in (
            ("crash -> open (s): timeout + (ceil(fN) - in-flight)/rate",
             p.timeout_s + (k - _in_flight(p.rate)) / p.rate, opens),
            ("open -> open cycle in the outage (s): wait + trials/rate + timeout",
             p.wait_in_open_s + _TRIALS / p.rate + p.timeout_s, cycles)):
        m, ci = mean_ci95(xs)
        se = float(np.std(xs, ddof=1) / math.sqrt(len(xs)))
        checks.append(Check(_SRC, setup, q, round(pub, 5), m, 4 * se, why.format(n=len(xs)), ci))
    return checks
