"""Does a service mesh multiply retries and outlive deadlines — and how much of a bad canary reaches users?

Setup, part 1 (stacked retries): an application calls a dependency through its sidecar (``models.edge.mesh``):
the app tries ``app_attempts`` times, the sidecar ``sidecar_attempts`` times per app call (Envoy's
``num_retries + 1``), each try bounded by ``per_try_s``, Envoy's default back-off (25 ms base, full jitter).
During an outage the dependency hangs (every try times out). Arms, same seeds: *app retries only*, *sidecar
retries only*, *both* (the default you get when a mesh is added under an app that already retries), *both
+ retry budget* (Envoy's ``retry_budget``: at most ``budget_percent`` of the active requests may be retries,
never fewer than ``min_retry_concurrency``).

Part 2 (mesh timeout vs app deadline): the app waits ``app_deadline_s`` and gives up; the sidecar's route
timeout is Envoy's default 15 s (it keeps trying for a caller who left) or aligned with the app's deadline
(the app propagates its remaining time, e.g. ``grpc-timeout``). The dependency hangs; per-try ``per_try_s``.

Part 3 (canary): a new version takes ``steps`` percent of ``rate`` req/s, one step per ``interval_s``;
Flagger/Argo-Rollouts-style analysis checks the canary's error rate each interval against
``max_error_rate`` and rolls back at the first failed check. Two bad versions: a *clear* regression
(``bad_error_rate``) and a *subtle* one (``subtle_error_rate``, just above the threshold).

Closed forms: stacked retries multiply — ``a x b`` calls reach the dependency per user request during the
outage (Google SRE book, "Handling Overload": retries at several layers multiply); with a budget of fraction
β of active requests, retries y <= β (x + y) for x first tries in flight, so each app call costs at most
``1 / (1 - β)`` tries: ``a / (1 - β)`` (3.75 for a = 3, β = 20%). A retry holds its slot through its back-off
too (mean ``base/2`` = 12.5 ms for a first retry), so by Little's law retries per first try are
``β/(1 - β) x t / (t + base/2)``: ``a (1 + β/(1-β) x t/(t + base/2))`` = 3.67 for a per-try timeout t = 100 ms.
A route timeout R longer than the app's deadline D keeps sending tries that start after D: with per-try
timeout t, tries k = 0..b-1 start at about k t (+ back-off), so ``#{k : k t >= D}`` of every ``b`` calls are
for nobody. A canary's exposure is ``Σ_k w_k x rate x interval x P(checks 1..k-1 passed)``; a clear
regression fails the first check, so users see ``w_1 x rate x interval`` bad-version requests — the first
step's size and the interval are the knobs; a subtle regression slips through small steps (few requests per
check) and is caught later, at a larger weight.

Lesson: a mesh adds a retry layer whether or not the app already has one — budget the sidecar's retries
and make one layer own them; the mesh's timeouts must sit inside the app's deadline; a canary limits the blast
radius to the first step's traffic only for regressions its check can see in that step's sample.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.edge import AppRetries, CanaryConfig, CanaryRollout, EnvoyRetryBudgetConfig, MeshSidecar, canary_exposure
from models.resilience import RetryPolicy
from models.services import PoissonClient
from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check

ARMS = ("app retries only", "sidecar retries only", "app x sidecar", "app x sidecar + retry budget")
TIMEOUT_ARMS = ("route timeout 15 s (Envoy default)", "route timeout = app deadline")
VERSIONS = ("clear regression", "subtle regression")
ENVOY_BASE_S = 0.025  # Envoy's default retry back-off base_interval
RETRY_ON = frozenset({"error", "timeout", "unreachable", "crashed", "rejected"})


@parameters
class Params:
    rate: float = param(200.0, unit="req/s", gt=0, le=1e5, help="user requests per second")
    duration_s: float = param(20.0, unit="s", gt=0, le=86_400, help="simulated time (parts 1 and 2)")
    outage_at: float = param(5.0, unit="s", ge=0, le=86_400, help="when the dependency starts hanging")
    outage_s: float = param(10.0, unit="s", gt=0, le=86_400, help="how long it hangs")
    app_attempts: int = param(3, unit="attempts", ge=1, le=10, help="the application's attempts per call")
    sidecar_attempts: int = param(3, unit="attempts", ge=1, le=10, help="the sidecar's tries (num_retries + 1)")
    per_try_s: float = param(0.1, unit="s", gt=0, le=600, help="the sidecar's per_try_timeout")
    budget_percent: float = param(20.0, unit="%", gt=0, le=100, help="Envoy retry_budget.budget_percent")
    min_retry_concurrency: int = param(3, unit="retries", ge=0, le=100_000, help="its min_retry_concurrency")
    app_deadline_s: float = param(1.0, unit="s", gt=0, le=600, help="part 2: how long the app waits")
    deadline_per_try_s: float = param(0.5, unit="s", gt=0, le=600, help="part 2: the sidecar's per-try timeout")
    steps: tuple[float, ...] = param((1.0, 5.0, 25.0, 50.0, 100.0), unit="%", gt=0, le=100,
                                     help="part 3: the canary's traffic weights")
    interval_s: float = param(30.0, unit="s", gt=0, le=86_400, help="part 3: analysis interval")
    max_error_rate: float = param(0.01, unit="fraction", ge=0, lt=1, help="part 3: the analysis threshold")
    canary_rate: float = param(100.0, unit="req/s", gt=0, le=1e5, help="part 3: total request rate")
    bad_error_rate: float = param(0.2, unit="fraction", gt=0, le=1, help="part 3: the clear regression's errors")
    subtle_error_rate: float = param(0.03, unit="fraction", gt=0, le=1, help="part 3: the subtle one's errors")
    trials: int = param(40, unit="rollouts", ge=1, le=100_000, help="part 3: rollouts per version")

    def __post_init__(self) -> None:
        if not self.outage_at + self.outage_s <= self.duration_s:
            raise ValueError(f"need outage_at + outage_s <= duration_s, got {self.outage_at} + {self.outage_s} > "
                             f"{self.duration_s}")
        if list(self.steps) != sorted(self.steps):
            raise ValueError(f"steps must be increasing, got {self.steps}")


QUICK = Params(rate=100.0, duration_s=9.0, outage_at=2.0, outage_s=6.0, interval_s=10.0, trials=30)


def _dependency(sim: Simulation, p: Params, hang_from: float, hang_to: float) -> list[float]:
    """The dependency node ``dep``: 5 ms exponential work, no reply while it hangs; logs arrival times."""
    dep, arrivals = sim.node("dep"), []
    work = sim.sampler(Exponential(0.005), "dep.work")

    def handle(msg):
        arrivals.append(sim.now)
        if not hang_from <= sim.now < hang_to:
            dep.after(work(), lambda: dep.reply(msg, "ok"))
        return NO_REPLY

    dep.on("get", handle)
    return arrivals


def theory_calls(p: Params, arm: str) -> float:
    """Calls at the dependency per user request while it hangs (every try times out)."""
    a, b, beta = p.app_attempts, p.sidecar_attempts, p.budget_percent / 100
    t, backoff = p.per_try_s, ENVOY_BASE_S / 2  # a first retry's mean full-jitter back-off
    budgeted = 1 + beta / (1 - beta) * t / (t + backoff)  # retries hold their slot through back-off + try
    return {ARMS[0]: a, ARMS[1]: b, ARMS[2]: a * b, ARMS[3]: a * min(b, budgeted)}[arm]


def stacked_point(p: Params, seed: int, arm: str) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.2))
    arrivals = _dependency(sim, p, p.outage_at, p.outage_at + p.outage_s)
    a = p.app_attempts if arm != ARMS[1] else 1
    b = p.sidecar_attempts if arm != ARMS[0] else 1
    budget = EnvoyRetryBudgetConfig(p.budget_percent, p.min_retry_concurrency) if arm == ARMS[3] else None
    sidecar = MeshSidecar(sim, retry=RetryPolicy(max_attempts=b, base_s=ENVOY_BASE_S, cap_s=0.25,
                                            retry_on=RETRY_ON), per_try_timeout_s=p.per_try_s, budget=budget)
    app = AppRetries(sim, sidecar, RetryPolicy(max_attempts=a, base_s=0.01, cap_s=0.1, retry_on=RETRY_ON))
    PoissonClient(sim, "app", ["dep"], rate=p.rate, caller=app, stop_at=p.duration_s)
    sim.run(until=p.duration_s + 10)
    df = sim.metrics.requests()
    lo, hi = p.outage_at + 1.0, p.outage_at + p.outage_s - 1.0  # the outage's steady middle
    users = int(((df.start >= lo) & (df.start < hi)).sum())
    calls = int(((np.asarray(arrivals) >= lo) & (np.asarray(arrivals) < hi)).sum())
    return {"arm": arm, "calls_per_request": calls / max(users, 1), "theory": theory_calls(p, arm),
            "users_in_window": users, "overflow": sidecar.budget.overflow if sidecar.budget else 0,
            "availability_in_outage": float((df[(df.start >= lo) & (df.start < hi)].outcome == "ok").mean())}


def wasted_theory(p: Params, arm: str) -> float:
    """Sidecar tries per request that start after the app gave up: #{k < b : k t >= D} for the 15 s route
    timeout (back-off only delays tries), none when the route timeout is the app's deadline."""
    if arm == TIMEOUT_ARMS[1]:
        return 0.0
    return float(sum(1 for k in range(p.sidecar_attempts) if k * p.deadline_per_try_s >= p.app_deadline_s - 1e-9))


def deadline_point(p: Params, seed: int, arm: str) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.2))
    _dependency(sim, p, 0.0, math.inf)  # hangs throughout: every try times out
    route = 15.0 if arm == TIMEOUT_ARMS[0] else p.app_deadline_s
    sidecar = MeshSidecar(sim, retry=RetryPolicy(max_attempts=p.sidecar_attempts, base_s=0.025, cap_s=0.25,
                                                 retry_on=RETRY_ON),
                          per_try_timeout_s=p.deadline_per_try_s, route_timeout_s=route,
                          honour_deadline=arm == TIMEOUT_ARMS[1], name="sidecar")
    app = AppRetries(sim, sidecar, RetryPolicy(max_attempts=1), deadline_s=p.app_deadline_s)
    rate = p.rate / 10
    PoissonClient(sim, "app", ["dep"], rate=rate, caller=app, stop_at=p.duration_s)
    sim.run(until=p.duration_s + 20)
    df = sim.metrics.requests()
    att = pd.DataFrame(sidecar.attempts, columns=["t", "rid", "try"])
    gone = att.rid.map(app.given_up)
    wasted = int((att.t >= gone).sum())
    return {"arm": arm, "tries_per_request": len(att) / len(df), "wasted_per_request": wasted / len(df),
            "wasted_fraction": wasted / max(len(att), 1), "theory_wasted": wasted_theory(p, arm),
            "requests": len(df)}


def canary_trial(p: Params, seed: int, version: str, trial: int) -> dict:
    """One rollout of a bad version; stops at rollback or promotion."""
    e = p.bad_error_rate if version == VERSIONS[0] else p.subtle_error_rate
    sim = Simulation(seed=seed * 100_003 + trial)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.2))
    for name, err in (("stable", 0.0), ("canary", e)):
        node = sim.node(name)
        u = sim.uniforms(f"{name}.errors")

        def handle(msg, node=node, u=u, err=err):
            bad = u() < err
            node.after(0.005, lambda: node.reply(msg, "500" if bad else "ok", "error" if bad else "ok"))
            return NO_REPLY

        node.on("get", handle)
    ro = CanaryRollout(sim, "stable", "canary", CanaryConfig(p.steps, p.interval_s, p.max_error_rate))
    PoissonClient(sim, "users", ["svc"], rate=p.canary_rate, caller=ro, stop_at=len(p.steps) * p.interval_s + 1)
    for k in range(len(p.steps)):
        sim.run(until=(k + 1) * p.interval_s + 0.5)
        if ro.state != "progressing":
            break
    last = ro.events[-1] if ro.events else (math.nan, math.nan, "none", 0, 0)
    return {"version": version, "trial": trial, "outcome": ro.state, "decided_at_s": last[0],
            "steps_reached": ro.step + 1, "weight_at_decision": p.steps[ro.step], "canary_requests": ro.canary_requests,
            "canary_errors": ro.canary_errors}


def canary_theory(p: Params, version: str) -> dict[str, float]:
    e = p.bad_error_rate if version == VERSIONS[0] else p.subtle_error_rate
    return canary_exposure(p.steps, p.canary_rate, p.interval_s, e, p.max_error_rate)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    stacked = pd.DataFrame([stacked_point(p, seed, arm) for arm in ARMS])
    deadline = pd.DataFrame([deadline_point(p, seed, arm) for arm in TIMEOUT_ARMS])
    trials = pd.DataFrame([canary_trial(p, seed, v, t) for v in VERSIONS for t in range(p.trials)])
    return {"summary": stacked, "deadline": deadline, "canary": trials}


def validate(quick: bool) -> list[Check]:
    """Stacked retries a x b; the budget's a / (1 - β); the canary's expected exposure."""
    p = QUICK if quick else Params(trials=400)
    both, budget = stacked_point(p, 1, ARMS[2]), stacked_point(p, 1, ARMS[3])
    trials = pd.DataFrame([canary_trial(p, 1, VERSIONS[0], t) for t in range(p.trials)])
    th = canary_theory(p, VERSIONS[0])
    sd = trials.canary_requests.std(ddof=1) if len(trials) > 1 else math.sqrt(th["requests"])
    return [
        Check(source="Google SRE book, 'Handling Overload': retries at two layers multiply",
              setup=f"app {p.app_attempts} attempts x sidecar {p.sidecar_attempts} tries, dependency hangs, "
                    f"{p.rate:g} req/s", quantity="calls at the dependency per user request",
              published=theory_calls(p, ARMS[2]), measured=both["calls_per_request"], tolerance=0.3,
              why="edge effects: requests straddling the window's ends (its length is ~10 request durations)"),
        Check(source="Envoy retry_budget (budget_percent of active requests): y <= β(x + y)",
              setup=f"same, budget_percent {p.budget_percent:g}%, min_retry_concurrency {p.min_retry_concurrency}",
              quantity="calls per user request: a (1 + β/(1-β) t/(t + base/2))", published=theory_calls(p, ARMS[3]),
              measured=budget["calls_per_request"], tolerance=0.15,
              why="the cap is reached from below (a retry starts only while under it); later retries' longer "
                  "back-offs (mean base) lower it by < 0.1; edge effects of the window"),
        Check(source="Flagger canary analysis: Σ w_k rate interval P(earlier checks passed)",
              setup=f"steps {p.steps} %, {p.canary_rate:g} req/s, interval {p.interval_s:g} s, version errors "
                    f"{p.bad_error_rate:g} vs threshold {p.max_error_rate:g}, {p.trials} rollouts",
              quantity="bad-version requests served before rollback (mean)", published=th["requests"],
              measured=float(trials.canary_requests.mean()), tolerance=4 * sd / math.sqrt(len(trials)),
              why="4 standard errors of the mean over the rollouts"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby("arm", sort=False, as_index=False).mean(numeric_only=True)
    d = results["deadline"].groupby("arm", sort=False, as_index=False).mean(numeric_only=True)
    c = results["canary"]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1.2, 0.8, 1.3]})
    cols = [plots.color_for(f"mesh:{a}") for a in s.arm]
    a1.barh(s.arm, s.calls_per_request, color=cols)
    for i, r in s.iterrows():
        a1.text(r.calls_per_request, i, f" {r.calls_per_request:.2f} (closed form {r.theory:.2f})", va="center",
                fontsize=8)
    a1.invert_yaxis()
    a1.set_xlim(0, s.calls_per_request.max() * 1.6)
    a1.set_xlabel("calls at the hanging dependency per user request")
    a1.set_title(f"stacked retries: a x b = {p.app_attempts} x {p.sidecar_attempts}; a budget: <= a / (1 - β)",
                 fontsize=9)
    a2.bar(range(len(d)), d.tries_per_request - d.wasted_per_request, color="0.6", label="tries the app waited for")
    a2.bar(range(len(d)), d.wasted_per_request, bottom=d.tries_per_request - d.wasted_per_request,
           color=plots.color_for("mesh:wasted"), label="tries after the app gave up")
    a2.set_xticks(range(len(d)), [a.replace(" (", "\n(") for a in d.arm], fontsize=8)
    for i, r in d.iterrows():
        a2.text(i, r.tries_per_request, f"{r.wasted_per_request:.2f} wasted\n(closed form {r.theory_wasted:g})",
                ha="center", va="bottom", fontsize=8)
    a2.set_ylim(0, d.tries_per_request.max() * 1.35)
    a2.set_ylabel("sidecar tries per request")
    a2.set_title(f"app deadline {p.app_deadline_s:g} s, per-try {p.deadline_per_try_s:g} s", fontsize=9)
    a2.legend(fontsize=7, loc="upper right")
    w = 0.38
    k = np.arange(len(p.steps))
    for j, v in enumerate(VERSIONS):
        g = c[c.version == v]
        frac = [(g.steps_reached == i + 1).mean() for i in k]
        a3.bar(k + (j - 0.5) * w, frac, w, color=plots.color_for(f"canary:{v}"),
               label=f"{v} ({(p.bad_error_rate if j == 0 else p.subtle_error_rate):.0%} errors): "
                     f"{g.canary_requests.mean():.0f} bad requests served (closed form "
                     f"{canary_theory(p, v)['requests']:.0f}), promoted {(g.outcome == 'promoted').mean():.0%}")
    a3.set_xticks(k, [f"{s:g}%" for s in p.steps])
    a3.set_xlabel(f"canary weight when the analysis decided (interval {p.interval_s:g} s, threshold "
                  f"{p.max_error_rate:.0%} errors)")
    a3.set_ylabel(f"fraction of {p.trials} rollouts")
    a3.set_ylim(0, 1.35)
    a3.legend(fontsize=7, loc="upper right")
    a3.set_title("canary with automated rollback: a clear regression dies at the first step", fontsize=9)
    fig.suptitle("A mesh under an app that already retries multiplies the calls on a failing dependency (a budget "
                 "caps the sidecar at 1/(1-β));\nits timeouts must fit inside the app's deadline; a canary's blast "
                 "radius is the first step's traffic — for regressions the check can see in that sample")
    return {"mesh_retries": fig}
