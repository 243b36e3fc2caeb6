"""An API changes under slowly upgrading clients: which versioning and rollout keep old clients working, how long?

Setup: ``clients`` clients call an API through the gateway (``models.edge.ApiGateway``) at ``rate``
requests per second in all, each request from a uniformly random client. At ``release_at`` v2 ships and
each client upgrades after an exponential time of mean ``tau_s`` (app-store updates, SDK bumps), so a
fraction ``exp(-(t - release_at) / tau_s)`` is still on v1 at time t. Arms, on the same random streams:

- **URL versioning, N-1**: routes ``/v1`` and ``/v2`` to the v1 and v2 deployments; v1 is removed
  ``remove_after_s`` after the release (its route deleted: a 404);
- **header versioning, default = latest**: one path, the gateway routes on ``Accept-Version``; old clients
  send no header and the default moves to v2 at the release — v2 *renamed* a field (a breaking change);
- **additive change, default = latest**: the same routing, but v2 only adds an optional field (tolerant
  reader), so v1 requests are served by v2;
- **flag, all at once** / **flag, gradual**: no new version — the new response shape is behind a feature
  flag (``models.services.FeatureFlag``, sticky per client) turned on for 100% at ``release_at``, or in
  stages 1% → 10% → 50% → 100% every ``stage_s``; a guard halts the rollout when an analysis interval
  (``stage_s``) sees more than ``guard_error_rate`` of flagged requests fail (old clients cannot parse the
  new shape).

Closed forms: removing v1 ``T`` after the release fails a fraction ``exp(-T / tau)`` of the requests —
the clients not yet upgraded — so supporting N-1 for ``tau ln(1/eps)`` keeps that below ``eps`` (for
requests in ``[T, T + w)``: ``(tau / w) (e^{-T/tau} - e^{-(T+w)/tau})``). A breaking change behind a
"latest" default fails every old client's request at once: ``exp(-(t - release) / tau)``. A flag at ``f``%
for one interval fails ``rate x f x tau (1 - e^{-s/tau})`` requests (``s`` the interval) before the guard
halts it.

Lesson: URL versions are explicit and let old clients keep working for as long as N-1 is supported; the
cost of removing v1 is exactly the share of clients that have not upgraded. Header versioning with a
"latest" default turns a breaking change into an outage for every client that never sent the header. An
additive change needs no new version. A gradual flag with a guard turns a full outage into the errors of
its first stage. Sources: Microsoft REST API Guidelines and Google AIP-185 (API versioning); Fowler,
"Tolerant Reader"; Newman, *Building Microservices* 2nd ed. ch. 5 (expand and contract, coexisting
endpoints); Unleash and LaunchDarkly docs (gradual / percentage rollouts); Argo Rollouts (analysis).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.edge import ApiGateway, Route
from models.services.flags import FeatureFlag
from simulator import Constant, Exponential, RpcError, Simulation
from simulator.runner import param, parameters

ARMS = ("URL versioning, N-1", "header versioning, default = latest", "additive change, default = latest",
        "flag, all at once", "flag, gradual")


@parameters
class Params:
    clients: int = param(5000, unit="clients", ge=10, le=1_000_000, help="distinct clients (API keys)")
    rate: float = param(100.0, unit="req/s", gt=0, le=1e5, help="requests per second, all clients")
    tau_s: float = param(30.0, unit="s", gt=0, le=1e7, help="mean time for a client to upgrade after the release")
    release_at: float = param(10.0, unit="s", ge=0, le=1e7, help="when v2 ships")
    remove_after_s: float = param(60.0, unit="s", gt=0, le=1e7, help="URL arm: v1 removed this long after release")
    duration_s: float = param(120.0, unit="s", gt=0, le=1e7, help="simulated time")
    stage_s: float = param(10.0, unit="s", gt=0, le=1e6, help="flag: time per stage and the guard's interval")
    guard_error_rate: float = param(0.05, unit="fraction", ge=0, le=1, help="flag guard: halt above this")
    sweep_after_s: tuple[float, ...] = param((15.0, 30.0, 60.0, 90.0), unit="s", gt=0, le=1e7,
                                             help="removal times T swept (after the release)")
    sweep_window_s: float = param(5.0, unit="s", gt=0, le=1e6, help="requests counted after each removal")
    bin_s: float = param(2.0, unit="s", gt=0, le=1e6, help="figure's time bins")

    def __post_init__(self) -> None:
        if not self.release_at + self.remove_after_s < self.duration_s:
            raise ValueError(f"need release_at + remove_after_s < duration_s, got {self.release_at} + "
                             f"{self.remove_after_s} >= {self.duration_s}")


QUICK = Params(clients=3000, rate=80.0, duration_s=100.0, sweep_after_s=(15.0, 30.0, 60.0), sweep_window_s=10.0)

STAGES = (1.0, 10.0, 50.0, 100.0)


def not_upgraded(t_since_release: float, tau_s: float) -> float:
    """Fraction of clients still on v1: exp(-t / tau)."""
    return math.exp(-max(0.0, t_since_release) / tau_s)


def failing_after_removal(T: float, tau_s: float, window_s: float) -> float:
    """Mean share of requests in [T, T + w) still sent by v1 clients: (tau/w)(e^{-T/tau} - e^{-(T+w)/tau})."""
    return tau_s / window_s * (math.exp(-T / tau_s) - math.exp(-(T + window_s) / tau_s))


def flag_stage_errors(p: Params, pct: float) -> float:
    """Expected errors in a flag's first interval at ``pct``%: rate f tau (1 - e^{-s/tau})."""
    return p.rate * pct / 100 * p.tau_s * (1 - math.exp(-p.stage_s / p.tau_s))


def _world(p: Params, seed: int, arm: str, remove_after: float, until: float):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0005))
    breaking = not arm.startswith("additive")
    flag = None
    if arm.startswith("flag"):
        stages = [(p.release_at, 100.0)] if arm == "flag, all at once" else \
            [(p.release_at + i * p.stage_s, pct) for i, pct in enumerate(STAGES)]
        flag = FeatureFlag("new-order-shape", stages, window_s=p.stage_s, max_error_rate=p.guard_error_rate,
                           min_requests=1)
        for i in range(1, int(until / p.stage_s) + 2):
            sim.at(p.release_at + i * p.stage_s, lambda: flag.analyse(sim.now))
    v1, v2 = sim.node("orders-v1"), sim.node("orders-v2")
    v1.on("get", lambda msg: {"shape": "v1"})

    def v2_get(msg):
        if breaking and msg.payload.get("schema") == "v1":
            raise RpcError("400: field 'customer' renamed to 'buyer'")
        return {"shape": "v2"}
    v2.on("get", v2_get)
    svc = sim.node("orders")  # the flag arms: one deployment, the new shape behind a flag
    svc.on("get", lambda msg: {"shape": "v2" if flag.enabled(msg.payload["key"], sim.now) else "v1"})
    if arm == "URL versioning, N-1":
        gw = ApiGateway(sim, {"v1": ["orders-v1"], "v2": ["orders-v2"]},
                        [Route("/v1", service="v1"), Route("/v2", service="v2")])
        sim.at(p.release_at + remove_after, lambda: setattr(gw, "routes", [Route("/v2", service="v2")]))
    elif arm.startswith("flag"):
        gw = ApiGateway(sim, {"orders": ["orders"]}, [Route("/orders", service="orders")])
    else:
        gw = ApiGateway(sim, {"v1": ["orders-v1"], "v2": ["orders-v2"]},
                        [Route("/v1", service="v1"), Route("/v2", service="v2")],
                        version_header="Accept-Version", default_version="v1")
        sim.at(p.release_at, lambda: setattr(gw, "default_version", "v2"))

    upgrade = p.release_at + sim.rng("versioning.upgrades").exponential(p.tau_s, p.clients)
    client = sim.node("clients")
    gap = sim.sampler(Exponential(1.0 / p.rate), "versioning.arrivals")
    pick = sim.uniforms("versioning.pick")
    rows: dict[str, list] = {"start": [], "client": [], "version": [], "flagged": [], "outcome": []}

    def arrive() -> None:
        if sim.now >= until:
            return
        c = int(pick() * p.clients)
        ver = "v2" if sim.now >= upgrade[c] else "v1"
        key = f"client-{c}"
        if arm == "URL versioning, N-1":
            body = {"path": f"/{ver}/orders"}
        elif arm.startswith("flag"):
            body = {"path": "/orders"}
        else:  # old clients predate the header
            body = {"path": "/orders", "headers": {"Accept-Version": "v2"} if ver == "v2" else {}}
        body.update(api_key=key, key=key, schema=ver)
        i = len(rows["start"])
        for k, v in (("start", sim.now), ("client", c), ("version", ver), ("flagged", False), ("outcome", "")):
            rows[k].append(v)

        def done(outcome: str, value) -> None:
            if outcome == "ok" and isinstance(value, dict) and value.get("shape") == "v2" and flag is not None:
                rows["flagged"][i] = True
                if ver == "v1":
                    outcome = "error"  # an old client cannot parse the new shape
                flag.record(outcome == "ok")
            rows["outcome"][i] = outcome
        client.call("gateway", "request", body, 1.0, done)
        sim.at(gap(), arrive)
    sim.at(gap(), arrive)
    sim.run(until=until + 1.5)
    return pd.DataFrame(rows).assign(arm=arm), flag


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, series = [], []
    for arm in ARMS:
        df, flag = _world(p, seed, arm, p.remove_after_s, p.duration_s)
        err = df.outcome != "ok"
        b = (df.start // p.bin_s) * p.bin_s
        s = err.groupby(b).mean()
        series.append(pd.DataFrame({"arm": arm, "t": s.index.astype(float), "failed_fraction": s.values}))
        after = df[df.start >= p.release_at]
        row = {"arm": arm, "requests": len(df), "errors": int(err.sum()),
               "errors_old_clients": int((err & (df.version == "v1")).sum()),
               "failed_fraction_after_release": float((after.outcome != "ok").mean()),
               "flag_halted_at_s": flag.halted_at if flag is not None and flag.halted_at is not None else math.nan}
        if arm == "URL versioning, N-1":
            row["migration_s"] = p.remove_after_s
            row["expected_errors"] = p.rate * p.tau_s * math.exp(-p.remove_after_s / p.tau_s) * (
                1 - math.exp(-(p.duration_s - p.release_at - p.remove_after_s) / p.tau_s))
        elif arm == "header versioning, default = latest":
            row["expected_errors"] = p.rate * p.tau_s * (1 - math.exp(-(p.duration_s - p.release_at) / p.tau_s))
        elif arm == "flag, all at once":
            row["expected_errors"] = flag_stage_errors(p, 100.0)
        elif arm == "flag, gradual":
            row["expected_errors"] = flag_stage_errors(p, STAGES[0])
        else:
            row["expected_errors"] = 0.0
        rows.append(row)
    sweep = []
    for T in p.sweep_after_s:
        df, _ = _world(p, seed, "URL versioning, N-1", T, p.release_at + T + p.sweep_window_s)
        w = df[df.start >= p.release_at + T]
        q = failing_after_removal(T, p.tau_s, p.sweep_window_s)
        sweep.append({"remove_after_s": T, "requests": len(w), "failed_fraction": float((w.outcome != "ok").mean()),
                      "expected": q, "se": math.sqrt(q * (1 - q) / max(1, len(w)) + q * (1 - q) / p.clients)})
    return {"summary": pd.DataFrame(rows), "timeline": pd.concat(series, ignore_index=True),
            "removal_sweep": pd.DataFrame(sweep)}


def validate(quick: bool = True) -> list:
    from simulator.runner.checks import Check

    p = QUICK if quick else Params()
    T = 30.0
    df, _ = _world(p, 1, "URL versioning, N-1", T, p.release_at + T + p.sweep_window_s)
    w = df[df.start >= p.release_at + T]
    q = failing_after_removal(T, p.tau_s, p.sweep_window_s)
    se = math.sqrt(q * (1 - q) / len(w) + q * (1 - q) / p.clients)
    return [Check(source="closed form: clients not yet upgraded, exp(-T/tau) (exponential upgrade times)",
                  setup=f"{p.clients} clients, tau = {p.tau_s:g} s, v1 removed T = {T:g} s after release; "
                        f"requests in the next {p.sweep_window_s:g} s",
                  quantity="fraction of requests failing after v1 is removed", published=q,
                  measured=float((w.outcome != "ok").mean()), tolerance=4 * se,
                  why="4 SE: binomial over the requests plus the binomial share of clients not yet upgraded")]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    tl = results["timeline"].groupby(["arm", "t"], as_index=False)["failed_fraction"].mean()
    sw = results["removal_sweep"].groupby("remove_after_s", as_index=False).mean(numeric_only=True)
    s = results["summary"].groupby("arm", sort=False, as_index=False).mean(numeric_only=True)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1.8, 1, 1]})
    for arm in ARMS[1:] + ARMS[:1]:  # URL last: after v1's removal it lies on the header arm's curve
        d = tl[tl.arm == arm]
        a1.step(d.t, 100 * d.failed_fraction, where="post", label=arm, color=plots.color_for(f"versioning:{arm}"),
                lw=2.4 if arm == ARMS[0] else 1.4, ls="--" if arm == ARMS[0] else "-")
    t = np.linspace(p.release_at, p.duration_s, 200)
    a1.plot(t, [100 * not_upgraded(x - p.release_at, p.tau_s) for x in t], "k:", lw=1,
            label="clients not yet upgraded, exp(−t/τ)")
    a1.axvline(p.release_at, color="0.5", ls="--", lw=0.8)
    a1.axvline(p.release_at + p.remove_after_s, color="0.5", ls="--", lw=0.8)
    a1.text(p.release_at + p.remove_after_s, 50, " v1 removed", fontsize=8)
    a1.text(p.release_at, 95, " v2 released", fontsize=8)
    a1.set(xlabel="time (s)", ylabel=f"requests failing (% per {p.bin_s:g} s)",
           title=f"clients upgrade with mean τ = {p.tau_s:g} s")
    a1.legend(fontsize=7, loc="upper right")
    xs = np.linspace(0, max(p.sweep_after_s) * 1.1, 100)
    a2.plot(xs, [100 * failing_after_removal(x, p.tau_s, p.sweep_window_s) for x in xs], "--", color="0.4",
            label="closed form (τ/w)(exp(−T/τ) − exp(−(T+w)/τ))")
    a2.errorbar(sw.remove_after_s, 100 * sw.failed_fraction, yerr=200 * sw.se, fmt="o", label="measured (±2 SE)")
    a2.set(yscale="log", xlabel="v1 removed T seconds after the release",
           ylabel="requests failing just after removal (%)", title="how long to support N-1")
    a2.legend(fontsize=8)
    fl = s[s.arm.str.startswith("flag")]
    a3.bar(["all at once", "gradual 1%→…"], fl.errors, color=[plots.color_for(f"versioning:{a}") for a in fl.arm])
    a3.scatter(range(len(fl)), fl.expected_errors, marker="_", s=900, color="k", zorder=3,
               label="closed form rate·f·τ(1 − exp(−s/τ))")
    for i, v in enumerate(fl.errors):
        a3.annotate(f"{v:.0f}", (i, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=9)
    a3.set(yscale="log", ylabel="requests failed before the guard halted the flag",
           title=f"a breaking flag, guard at {p.guard_error_rate:.0%} per {p.stage_s:g} s")
    a3.legend(fontsize=8, loc="center right")
    fig.suptitle("API versioning: removing v1 fails the clients not yet upgraded (exp(−T/τ)); a 'latest' default "
                 "breaks them all at once;\nan additive change breaks nobody; a gradual flag with a guard limits the "
                 "damage to its first stage")
    return {"api_versioning": fig}
