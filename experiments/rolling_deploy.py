"""What does a rolling deploy cost users — with a compatible change, a breaking one, and no readiness check?

Setup: a service of ``instances`` instances behind a load balancer (``models.services`` balancer,
random by default) serves Poisson requests (``rate`` per second) from clients of two versions:
a fraction ``v2_clients`` already speaks v2 (say, a new mobile app), the rest v1. From
``start_s`` on, the service is rolled from v1 to v2 one instance at a time, one every ``step_s``:
the instance is taken out of the balancer (drained for ``drain_s``), restarted (down for
``restart_s``), and comes back as v2. A fresh v2 process is *alive* at once but is not *ready*
for ``warmup_s`` (cold caches, JIT, connection pools): meanwhile each request it serves takes
an extra exponential ``cold_s`` on average, and clients give up after ``timeout_s``. Three arms,
same seeds:

- **additive, readiness check**: v2 only *adds* an optional field (Postel's tolerant reader):
  every (client, instance) version pair works; the balancer takes the new instance in only at
  the first readiness probe (every ``probe_s``) after warm-up;
- **breaking, readiness check**: v2 *renames* a field: a v1 request to a v2 instance, and a v2
  request to a v1 instance, are refused (a definite ``error``, like HTTP 400);
- **additive, liveness only**: no readiness probe; the balancer routes to the new instance as
  soon as its process is up (the liveness check passes), warm-up and all.

Lesson (Kubernetes documentation, "Configure Liveness, Readiness and Startup Probes" and
"Performing a Rolling Update"; Newman, *Building Microservices*, 2nd ed., ch. 5 "Handling change
between microservices" and "expand and contract"; Kleppmann, *DDIA*, ch. 4 "Modes of dataflow",
on backward and forward compatibility during rolling upgrades): during a rollout both versions
serve at once, so a change must be compatible *both ways*. An additive change costs nothing. A
breaking change fails every request that meets a mismatched pair: with a fraction ``f(t)`` of the
balancer's instances on v2 and a fraction ``c`` of v2 clients, the error rate is
``(1 - c) f(t) + c (1 - f(t))`` — it climbs with the rollout's progress (and falls to ``1 - c``
only when the v1 clients are gone). Without a readiness check, each new instance takes its
``1/n`` share of the traffic while cold: about ``rate x warmup_s x exp(-timeout_s / cold_s) / n``
requests time out per instance restarted (with a random balancer; ``rate x warmup_s x
exp(-timeout_s / cold_s)`` over the whole rollout), and the rest are slow; a
readiness probe holds the traffic until the instance is warm, at the cost of a slightly longer
rollout.

Reproduces (``validate``): the breaking change's error rate over the rollout, the time average of
``(1 - c) f(t) + c (1 - f(t))`` for the deterministic schedule (each step: n - 1 members with k on v2
while one instance is out, then n with k + 1); the liveness-only arm's timeouts, ``rate x warmup_s
x exp(-timeout_s / cold_s)`` (times E[exp(warm time / cold_s)]); none of either for the additive
change with a readiness check.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.services import BALANCERS, make_balancer
from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("additive, readiness check", "breaking, readiness check", "additive, liveness only")
TAIL_S = 5.0  # simulated time after the last instance is back


@parameters
class Params:
    instances: int = param(4, unit="instances", ge=2, le=200, help="instances of the service rolled from v1 to v2")
    rate: float = param(200.0, unit="req/s", gt=0, le=100_000, help="client requests per second (Poisson)")
    v2_clients: float = param(0.2, unit="fraction", ge=0, le=1, help="fraction of requests from v2 clients")
    start_s: float = param(10.0, unit="s", ge=0, le=86_400, help="when the rollout starts")
    step_s: float = param(10.0, unit="s", gt=0, le=86_400, help="time between two instances' restarts")
    drain_s: float = param(0.5, unit="s", ge=0, le=3600, help="out of the balancer before the restart")
    restart_s: float = param(1.0, unit="s", ge=0, le=3600, help="down time of a restart")
    warmup_s: float = param(4.0, unit="s", ge=0, le=3600, help="time a new process is alive but not ready")
    cold_s: float = param(2.0, unit="s", gt=0, le=3600, help="mean extra service time while warming up (exp.)")
    probe_s: float = param(1.0, unit="s", gt=0, le=3600, help="readiness probe period")
    work_ms: float = param(5.0, unit="ms", gt=0, le=10_000, help="mean service time of a warm request (exp.)")
    timeout_s: float = param(1.0, unit="s", gt=0, le=3600, help="client timeout")
    balancer: str = param("random", choices=BALANCERS, help="the load balancer's policy")

    def __post_init__(self) -> None:
        back = self.drain_s + self.restart_s + math.ceil(self.warmup_s / self.probe_s + 1e-9) * self.probe_s
        if back >= self.step_s:
            raise ValueError(f"need drain_s + restart_s + warmup_s (rounded up to probe_s) < step_s so that one "
                             f"instance at a time is out, got {back:g} >= step_s={self.step_s:g}")


QUICK = Params(instances=4, rate=150.0, start_s=4.0, step_s=8.0)


def rollout_end(p: Params) -> float:
    return p.start_s + p.instances * p.step_s


def theory(change: str, v2_clients: float, f_v2: float) -> float:
    """P(a request meets a mismatched pair) with a fraction ``f_v2`` of the balancer's instances on v2."""
    if change == "additive":
        return 0.0
    return (1 - v2_clients) * f_v2 + v2_clients * (1 - f_v2)


def _world(p: Params, seed: int, arm: str) -> pd.DataFrame:
    change, readiness = arm.split(", ")[0], arm.endswith("readiness check")
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    names = [f"svc-{i}" for i in range(p.instances)]
    version = dict.fromkeys(names, 1)
    ready_at = dict.fromkeys(names, 0.0)
    work = sim.sampler(Exponential(p.work_ms / 1e3), "svc.work")
    cold = sim.sampler(Exponential(p.cold_s), "svc.cold")
    for n in names:
        node = sim.node(n)

        def handle(msg, node=node, n=n):
            client_v = msg.payload
            delay = work() + (cold() if sim.now < ready_at[n] else 0.0)
            compatible = change == "additive" or client_v == version[n]
            outcome, value = ("ok", f"v{version[n]}") if compatible else \
                ("error", "unknown field 'name'" if version[n] == 2 else "unknown field 'full_name'")
            node.after(delay, lambda: node.reply(msg, value, outcome))
            return NO_REPLY

        node.on("get", handle)
    lb = make_balancer(p.balancer, names, sim.uniforms("lb.balance"))
    members = list(names)

    def set_members() -> None:
        lb.set_instances(members)

    def restart(n: str) -> None:
        members.remove(n)
        set_members()

        def down() -> None:
            sim.nodes[n].crash()

        def up() -> None:
            sim.nodes[n].recover()
            version[n] = 2
            ready_at[n] = sim.now + p.warmup_s
            wait = math.ceil(p.warmup_s / p.probe_s + 1e-9) * p.probe_s if readiness else 0.0

            def join() -> None:
                members.append(n)
                members.sort()
                set_members()
            sim.at(wait, join)

        sim.at(p.drain_s, down)
        sim.at(p.drain_s + p.restart_s, up)

    for i, n in enumerate(names):
        sim.at(p.start_s + i * p.step_s, lambda n=n: restart(n))

    client = sim.node("clients")
    gap = sim.sampler(Exponential(1 / p.rate), "clients.arrivals")
    pick_v = sim.uniforms("clients.version")
    stop = rollout_end(p) + TAIL_S
    cols: dict[str, list] = {k: [] for k in ("start", "end", "client_version", "instance", "instance_version",
                                             "p_mismatch", "p_cold", "outcome")}

    def arrive() -> None:
        if sim.now >= stop:
            return
        cv = 2 if pick_v() < p.v2_clients else 1
        f_v2 = sum(version[m] == 2 for m in members) / len(members)
        n_cold = sum(ready_at[m] > sim.now for m in members)
        inst = lb.choose()
        i = len(cols["start"])
        for k, v in (("start", sim.now), ("end", math.nan), ("client_version", cv), ("instance", inst),
                     ("instance_version", version[inst]), ("p_mismatch", theory(change, p.v2_clients, f_v2)),
                     ("p_cold", n_cold / len(members)), ("outcome", "")):
            cols[k].append(v)

        def done(outcome, _v) -> None:
            lb.done(inst)
            cols["end"][i] = sim.now
            cols["outcome"][i] = outcome

        client.call(inst, "get", cv, p.timeout_s, done)
        sim.at(gap(), arrive)

    sim.at(gap(), arrive)
    sim.run(until=stop + p.timeout_s + 1.0)
    df = pd.DataFrame(cols)
    df["latency"] = df.end - df.start
    return df.assign(arm=arm)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, reqs, series = [], [], []
    t0, t1 = p.start_s, rollout_end(p)
    p_to = math.exp(-p.timeout_s / p.cold_s)  # P(a cold request outlasts the timeout), warm work neglected
    for arm in ARMS:
        df = _world(p, seed, arm)
        during = df[(df.start >= t0) & (df.start < t1)]
        ok = df[df.outcome == "ok"]
        rows.append({"arm": arm, "requests": len(df), "requests_rollout": len(during),
                     "error_rate_rollout": float((during.outcome == "error").mean()),
                     "error_rate_theory": float(during.p_mismatch.mean()),
                     "error_rate_se": float(math.sqrt((during.p_mismatch * (1 - during.p_mismatch)).sum()))
                     / max(len(during), 1),
                     "timeouts": int((df.outcome == "timeout").sum()),
                     "timeouts_theory": float(df.p_cold.sum() * p_to),
                     "failed_rate_rollout": float((during.outcome != "ok").mean()),
                     "latency_p99_ms": float(ok.latency.quantile(0.99) * 1e3),
                     "latency_p999_ms": float(ok.latency.quantile(0.999) * 1e3),
                     "rollout_s": t1 - t0})
        b = np.floor(df.start).astype(int)
        g = df.assign(t=b, failed=df.outcome != "ok", timeout=df.outcome == "timeout",
                      v2=df.instance_version == 2).groupby("t")
        series.append(pd.DataFrame({"t": g.size().index, "arm": arm, "requests": g.size().values,
                                    "failed_rate": g.failed.mean().values,
                                    "timeout_rate": g.timeout.mean().values,
                                    "mismatch_theory": g.p_mismatch.mean().values,
                                    "v2_share": g.v2.mean().values}))
        reqs.append(df)
    return {"summary": pd.DataFrame(rows), "timeline": pd.concat(series, ignore_index=True),
            "requests": pd.concat(reqs, ignore_index=True)}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    tl = results["timeline"]
    s = results["summary"]
    if "seed" in tl:
        tl = tl.groupby(["arm", "t"], as_index=False).mean(numeric_only=True)
    if "seed" in s:
        s = s.groupby("arm", as_index=False, sort=False).mean(numeric_only=True)
    s = s.set_index("arm")
    fig, axes = plt.subplots(1, 2, figsize=(15, 5), constrained_layout=True)
    ax = axes[0]
    for arm in ARMS[:2]:
        g = tl[tl.arm == arm]
        ax.step(g.t + 0.5, g.failed_rate, where="mid", color=plots.color_for(arm),
                label=f"{arm}: measured (rollout mean {s.loc[arm, 'error_rate_rollout']:.3f})")
    g = tl[tl.arm == ARMS[1]]
    ax.plot(g.t + 0.5, g.mismatch_theory, "k--", lw=1,
            label=f"theory (1-c) f + c (1-f), c = {p.v2_clients:g} "
                  f"(rollout mean {s.loc[ARMS[1], 'error_rate_theory']:.3f})")
    ax.plot(g.t + 0.5, g.v2_share, ":", color="grey", lw=1.2, label="f: share of requests routed to v2 instances")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("failed requests (fraction, per second)")
    ax.set_title("renaming a field fails every mismatched (client, instance) pair; adding one fails none", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    for arm in (ARMS[0], ARMS[2]):
        g = tl[tl.arm == arm]
        ax.step(g.t + 0.5, g.timeout_rate, where="mid", color=plots.color_for(arm),
                label=f"{arm}: {int(s.loc[arm, 'timeouts'])} timeouts (theory {s.loc[arm, 'timeouts_theory']:.0f}), "
                      f"p99 {s.loc[arm, 'latency_p99_ms']:.0f} ms")
    for i in range(p.instances):
        up = p.start_s + i * p.step_s + p.drain_s + p.restart_s
        ax.axvspan(up, up + p.warmup_s, color="orange", alpha=0.15, lw=0, label="warming up" if i == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("timed-out requests (fraction, per second)")
    ax.set_title(f"without a readiness check each new instance takes its 1/{p.instances} share while cold", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    top = max(0.05, float(tl[tl.arm == ARMS[2]].timeout_rate.max()) * 1.6)
    ax.set_ylim(0, top)
    fig.suptitle("During a rolling deploy both versions serve at once: an additive change costs nothing, a breaking "
                 "one fails requests in proportion to the rollout's progress,\nand a new instance that takes traffic "
                 "before it is ready times out requests that a readiness check would have held back")
    return {"rolling_deploy": fig}


def breaking_error_rate(p: Params) -> float:
    """Time average over the rollout of ``theory("breaking", c, f(t))`` for the deterministic schedule:
    in step k (k instances already v2) one instance is out for drain + restart + the readiness wait,
    leaving n - 1 members with k on v2, then all n are in with k + 1 on v2. Poisson arrivals see time
    averages (PASTA), so this is the expected error rate of requests issued during the rollout."""
    n, c = p.instances, p.v2_clients
    out = p.drain_s + p.restart_s + math.ceil(p.warmup_s / p.probe_s + 1e-9) * p.probe_s
    total = sum(out * theory("breaking", c, k / (n - 1)) + (p.step_s - out) * theory("breaking", c, (k + 1) / n)
                for k in range(n))
    return total / (n * p.step_s)


def cold_timeouts(p: Params) -> float:
    """Expected timeouts of the liveness-only rollout: each of n instances is routed 1/n of ``rate``
    while cold for ``warmup_s``, and a cold request outlasts the timeout with probability
    P(Exp(cold) + warm work + RTT > timeout) = exp(-timeout/cold) E[exp((work + RTT)/cold)]."""
    w = p.work_ms / 1e3
    rtt = 2 * 0.0005 * math.exp(0.3 ** 2 / 2)
    return p.rate * p.warmup_s * math.exp(-p.timeout_s / p.cold_s) / (1 - w / p.cold_s) * math.exp(rtt / p.cold_s)


def validate(quick: bool) -> list[Check]:
    """:func:`run` on QUICK over seeds against :func:`breaking_error_rate` and :func:`cold_timeouts`, and
    the additive change with readiness against 0 errors and 0 timeouts. Tolerances: 4 binomial SE of
    the rollout's requests; 4 Poisson SE of the timeouts; 0 where nothing can fail.
    """
    p = QUICK
    seeds = range(2) if quick else range(30)
    sm = [run(p, seed=s)["summary"].set_index("arm") for s in seeds]
    setup = (f"{p.instances} instances, {p.v2_clients:.0%} v2 clients, {p.rate:g} req/s, step {p.step_s:g} s, "
             f"warm-up {p.warmup_s:g} s (cold +{p.cold_s:g} s), timeout {p.timeout_s:g} s; {len(seeds)} seeds")
    src = ("Kubernetes docs, 'Performing a Rolling Update' and readiness probes; Kleppmann, DDIA ch. 4 "
           "(compatibility both ways during a rolling upgrade)")
    b = "breaking, readiness check"
    n = sum(x.loc[b, "requests_rollout"] for x in sm)
    m = float(sum(x.loc[b, "error_rate_rollout"] * x.loc[b, "requests_rollout"] for x in sm) / n)
    pub = breaking_error_rate(p)
    checks = [Check(src, setup, "breaking change: error rate during the rollout, mean of (1-c) f + c (1-f)",
                    round(pub, 5), m, 4 * math.sqrt(pub * (1 - pub) / n), f"4 binomial SE of {n} requests")]
    xs = [float(x.loc["additive, liveness only", "timeouts"]) for x in sm]
    pub = cold_timeouts(p)
    m, ci = mean_ci95(xs)
    checks.append(Check(src, setup, "liveness only: timeouts per rollout, rate x warmup x exp(-timeout/cold)",
                        round(pub, 2), m, 4 * math.sqrt(pub / len(xs)), f"4 Poisson SE over {len(xs)} seeds", ci))
    a = "additive, readiness check"
    bad = sum(x.loc[a, "timeouts"] + x.loc[a, "error_rate_rollout"] * x.loc[a, "requests_rollout"] for x in sm)
    checks.append(Check(src, setup, "additive + readiness: errors and timeouts", 0.0, float(bad), 0.0,
                        "deterministic: every version pair works and no cold instance is in the balancer"))
    return checks
