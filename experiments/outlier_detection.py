"""One of five instances starts answering 500 fast: do client retries or sidecar outlier ejection protect users?

Setup: open-loop clients send ``rate`` req/s to a cluster of ``instances`` backends (exponential 5 ms service
time); at ``fail_at`` one backend turns into a gray failure: it stays up and answers every request with a fast
500 (``error``). Arms, on the same random streams: *no protection* (each request to a uniformly random
instance); *client retries* (the client library retries an error up to ``attempts`` times in all, each time to a
new random instance, 10 ms exponential backoff with full jitter); *outlier ejection* (a sidecar balances round
robin and ejects with Envoy's semantics: ``consecutive_5xx`` errors in a row eject a host, the k-th ejection lasts
k x ``base_ejection_time_s``, hosts return on the next ``interval_s`` tick, at most ``max_ejection_percent`` of
hosts ejected, and always at least one — Envoy, "Outlier detection", architecture overview); *ejection + retries*
(the sidecar also retries once on another host, Envoy's ``previous_hosts`` retry predicate).

Lesson: without protection a fifth of the requests fail for as long as the instance is sick. Client retries hide
it — the failure rate falls to (1/n)^attempts (0.8% for 5 instances and 3 attempts) — but the sick instance keeps
receiving its full share of first attempts forever, and every request pays 1 + 1/n + ... attempts. Outlier
ejection removes the instance after ``consecutive_5xx`` errors (a fraction of a second at this rate) and then
costs only ``consecutive_5xx`` errors each time the host is let back in, at intervals that double, triple, ... as
it keeps failing; with one retry on another host on top, users see no error at all.

Reproduces (``validate``): error rates 1/n unprotected and (1/n)^attempts with retries, at
1 + 1/n + ... attempts a request; Envoy's outlier detection: ejection after consecutive_5xx
errors (((c - 1) n + (n + 1)/2) requests after the failure under round robin), exactly
consecutive_5xx user errors per ejection, and the k-th ejection ending at the first interval
sweep after k x base_ejection_time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.edge import OutlierCaller, OutlierDetectionConfig
from models.resilience import RetryPolicy
from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.runner import Check, mean_ci95, param, parameters

ARMS = ("no protection", "client retries", "outlier ejection", "ejection + retries")


@parameters
class Params:
    duration_s: float = param(120.0, unit="s", gt=0, le=86_400, help="simulated time")
    fail_at: float = param(10.0, unit="s", ge=0, le=86_400, help="when one instance starts answering 500")
    rate: float = param(200.0, unit="req/s", gt=0, le=1e5, help="client requests per second")
    instances: int = param(5, unit="instances", ge=2, le=1000, help="backend instances")
    attempts: int = param(3, unit="attempts", ge=2, le=10, help="client-retry arm: attempts in all")
    consecutive_5xx: int = param(5, unit="errors", ge=1, le=1000, help="Envoy consecutive_5xx")
    interval_s: float = param(10.0, unit="s", gt=0, le=3600, help="Envoy interval (the un-ejection sweep)")
    base_ejection_time_s: float = param(30.0, unit="s", gt=0, le=3600, help="Envoy base_ejection_time")
    max_ejection_percent: float = param(10.0, unit="%", ge=0, le=100, help="Envoy max_ejection_percent")
    bin_s: float = param(1.0, unit="s", gt=0, le=3600, help="width of the error-rate bins in the figure")

    def __post_init__(self) -> None:
        if not self.fail_at < self.duration_s:
            raise ValueError(f"need fail_at < duration_s, got {self.fail_at} >= {self.duration_s}")


QUICK = Params(duration_s=40.0, fail_at=5.0, rate=100.0, interval_s=5.0, base_ejection_time_s=10.0)


def _backends(sim: Simulation, p: Params) -> list[str]:
    names = [f"backend-{i}" for i in range(p.instances)]
    work = sim.sampler(Exponential(0.005), "backend.work")
    for name in names:
        node = sim.node(name)
        sick = name == names[0]

        def handle(msg, node=node, sick=sick):
            if sick and sim.now >= p.fail_at:
                node.after(0.0005, lambda: node.reply(msg, "500 internal error", "error"))
            else:
                node.after(work(), lambda: node.reply(msg, "ok"))
            return NO_REPLY

        node.on("get", handle)
    return names


def _one(p: Params, seed: int, arm: str):
    from models.services import PoissonClient

    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    hosts = _backends(sim, p)
    cfg = OutlierDetectionConfig(consecutive_5xx=p.consecutive_5xx, interval_s=p.interval_s,
                                 base_ejection_time_s=p.base_ejection_time_s,
                                 max_ejection_percent=p.max_ejection_percent, max_ejection_time_s=86_400)
    retry_err = RetryPolicy(max_attempts=p.attempts, base_s=0.01, cap_s=0.1, retry_on=frozenset({"error", "timeout"}))
    sidecar = None
    if arm == "no protection":
        PoissonClient(sim, "users", hosts, rate=p.rate, timeout_s=1.0, stop_at=p.duration_s)
    elif arm == "client retries":
        PoissonClient(sim, "users", hosts, rate=p.rate, timeout_s=1.0, retry=retry_err, stop_at=p.duration_s)
    else:
        retry = RetryPolicy(max_attempts=2, base_s=0.0, cap_s=0.0, backoff="none",
                            retry_on=frozenset({"error", "timeout"})) if arm == "ejection + retries" else None
        sidecar = OutlierCaller(sim, hosts, config=cfg, timeout_s=1.0, retry=retry, name="sidecar")
        PoissonClient(sim, "users", ["backend"], rate=p.rate, caller=sidecar, stop_at=p.duration_s)
    sim.run(until=p.duration_s + 2)
    df = sim.metrics.requests()
    ev = sidecar.detector.events_frame() if sidecar is not None else pd.DataFrame(
        columns=["time", "host", "event", "ejection"])
    return df, ev, (sidecar.attempts[hosts[0]] if sidecar is not None else None)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, series, events = [], [], []
    for arm in ARMS:
        df, ev, _ = _one(p, seed, arm)
        after = df[df.start >= p.fail_at]
        err = after.outcome != "ok"
        ejects = ev[ev.event == "eject"]
        first = float(ejects.time.min()) - p.fail_at if len(ejects) else math.nan
        rows.append({"arm": arm, "requests": len(df), "error_rate_after_failure": float(err.mean()),
                     "errors_after_failure": int(err.sum()),
                     "time_to_eject_s": first, "ejections": len(ejects),
                     "attempts_per_request": float(after.attempts.mean()),
                     "p99_latency_ms": float(after.latency.quantile(0.99) * 1e3)})
        b = (df.start // p.bin_s) * p.bin_s
        s = (df.outcome != "ok").groupby(b).mean()
        series.append(pd.DataFrame({"arm": arm, "t": s.index.astype(float), "error_rate": s.values}))
        if len(ev):
            events.append(ev.assign(arm=arm))
    ev_all = pd.concat(events, ignore_index=True) if events else pd.DataFrame(
        columns=["time", "host", "event", "ejection", "arm"])
    return {"summary": pd.DataFrame(rows), "error_rate": pd.concat(series, ignore_index=True), "ejections": ev_all}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts = results["error_rate"].groupby(["arm", "t"], as_index=False)["error_rate"].mean()
    s = results["summary"].groupby("arm", sort=False, as_index=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [2.2, 1]})
    for arm in ARMS:
        d = ts[ts.arm == arm]
        a1.step(d.t, d.error_rate * 100, where="post", color=plots.color_for(f"outlier:{arm}"), label=arm, lw=1.6)
    a1.axvline(p.fail_at, color="0.4", ls=":")
    a1.text(p.fail_at, 40, " instance starts answering 500", fontsize=8, va="bottom")
    ev = results["ejections"]
    for t in ev[(ev.event == "eject") & (ev.arm == "outlier ejection")].time.unique():
        a1.axvline(t, color="0.75", lw=0.8, ls="--")
    a1.set_yscale("symlog", linthresh=1)
    a1.set_ylim(0, 100)
    a1.set_xlabel("time (s); dashed: ejections")
    a1.set_ylabel(f"errors seen by users (% per {p.bin_s:g} s)")
    a1.legend(loc="upper right", fontsize=8)
    colors = [plots.color_for(f"outlier:{a}") for a in s.arm]
    a2.barh(s.arm, s.attempts_per_request, color=colors)
    for i, r in s.iterrows():
        a2.text(r.attempts_per_request, i, f" {r.error_rate_after_failure:.2%} errors", va="center", fontsize=8)
    a2.set_xlabel("attempts per request after the failure")
    a2.invert_yaxis()
    a2.set_xlim(0, max(2.0, s.attempts_per_request.max() * 1.6))
    fig.suptitle("A gray failure: retries hide it by re-sending ~1/n of the load forever; "
                 f"outlier ejection removes the host after {p.consecutive_5xx} errors")
    return {"outlier_detection": fig}


_ENVOY = "Envoy docs, architecture overview 'Outlier detection' (consecutive_5xx, ejection time k x base, interval)"


def validate(quick: bool) -> list[Check]:
    """:func:`run` on QUICK over several seeds, against closed forms.

    Unprotected error rate 1/n, client retries (each attempt to an independent uniform instance)
    (1/n)^a and 1 + 1/n + ... + 1/n^(a-1) attempts; tolerance 4 binomial (or replication) SE.
    Ejection (round robin: the sick host gets every n-th request, its first turn after the failure
    uniform among the next n): ejected at request (c - 1) n + (n + 1)/2 after the failure, i.e. that
    over rate seconds later; tolerance 4 SE of seeds. Users' errors = c per ejection after an
    un-ejection (the first ejection may cost one more: a success answered just before the failure,
    but slowly, can land after the first 500 and reset the count), and the first ejection ends at the
    first sweep (ticks every interval from 0) at or after eject + base: exact.
    """
    p = QUICK
    seeds = range(3) if quick else range(40)
    res = [run(p, seed=s) for s in seeds]
    n, a, c = p.instances, p.attempts, p.consecutive_5xx
    sm = [r["summary"].set_index("arm") for r in res]
    after = [x.loc["no protection", "requests"] * (1 - p.fail_at / p.duration_s) for x in sm]
    setup = (f"{n} instances, one answers 500 from {p.fail_at:g} s, {p.rate:g} req/s, {p.duration_s:g} s; "
             f"{len(seeds)} seeds")
    checks = []
    for arm, q, pub in (("no protection", "error rate after the failure, 1/n", 1 / n),
                        ("client retries", f"error rate after the failure, (1/n)^{a}", (1 / n) ** a)):
        m = float(np.mean([x.loc[arm, "error_rate_after_failure"] for x in sm]))
        tot = float(np.sum(after))
        se = math.sqrt(max(m, 1 / tot) * (1 - m) / tot)
        checks.append(Check("independent uniform choice of instance per attempt", setup, q, round(pub, 6), m,
                            4 * se, f"4 binomial SE of ~{tot:.0f} requests"))
    xs = [x.loc["client retries", "attempts_per_request"] for x in sm]
    m, ci = mean_ci95(xs)
    checks.append(Check("independent uniform choice of instance per attempt", setup,
                        f"client retries: attempts per request, sum of (1/n)^i, i < {a}",
                        round(sum((1 / n) ** i for i in range(a)), 6), m,
                        4 * float(np.std(xs, ddof=1) / math.sqrt(len(xs))), f"4 SE of {len(seeds)} seeds", ci))
    xs = [x.loc["outlier ejection", "time_to_eject_s"] for x in sm]
    m, ci = mean_ci95(xs)
    checks.append(Check(_ENVOY, setup + ", round robin", f"time to eject (s): ((c - 1) n + (n + 1)/2)/rate, c = {c}",
                        ((c - 1) * n + (n + 1) / 2) / p.rate, m, 4 * float(np.std(xs, ddof=1) / math.sqrt(len(xs))),
                        f"4 SE of {len(seeds)} seeds (Poisson arrivals)", ci))
    errs = ej = 0
    for seed in seeds:  # from the first un-ejection on: the first ejection can cost more (see docstring)
        df, ev, _ = _one(p, seed, "outlier ejection")
        back = ev[ev.event == "uneject"].time.min()
        errs += int(((df.start >= back) & (df.outcome != "ok")).sum())
        ej += int(((ev.event == "eject") & (ev.time >= back)).sum())
    checks.append(Check(_ENVOY, setup, "users' errors per re-ejection (ejection arm) = consecutive_5xx", float(c),
                        errs / ej, 0.0, "deterministic once the host is sick: round robin sends it one request "
                        "at a time, each a fast 500"))
    gaps = []
    for r in res:
        ev = r["ejections"]
        ev = ev[ev.arm == "outlier ejection"]
        ej1 = ev[(ev.event == "eject") & (ev.ejection == 1)].time.iloc[0]
        un1 = ev[(ev.event == "uneject") & (ev.ejection == 1)].time.iloc[0]
        due = math.ceil((ej1 + p.base_ejection_time_s) / p.interval_s - 1e-9) * p.interval_s
        gaps.append(un1 - due)
    checks.append(Check(_ENVOY, setup + f", base {p.base_ejection_time_s:g} s, interval {p.interval_s:g} s",
                        "1st un-ejection minus the first sweep >= eject + base (s)", 0.0, float(np.max(np.abs(gaps))),
                        1e-9, "deterministic: the sweep runs on interval ticks (largest |gap| over seeds shown)"))
    return checks
