"""Which traces and log lines survive sampling and buffering: the ones you need during an incident?

Setup, part 1 (traces): a client sends ``rate`` requests per second to a service (exponential
``service_mean_s``); a request fails with probability ``error_p`` (``incident_error_p`` during the
incident ``[incident_at, incident_at + incident_s)``) and is slow (``slow_s``) with probability ``slow_p``.
Each request is one trace. Both samplers store the same number of traces, ``head_ratio x rate`` per
second: *head sampling* (OpenTelemetry's ``TraceIdRatioBased(head_ratio)``, decided from the trace id at
the start) and *tail sampling* (the Collector's ``tail_sampling`` processor: keep every ERROR and every
trace slower than ``slow_threshold_s``, fill the rest of the per-second budget at random;
``simulator.observe.sampling``).

Part 2 (logs): services emit ``log_rate`` lines per second, ``incident_log_rate`` during the incident
(the lines that explain it), through a shipper buffer of ``buffer_lines`` drained at ``drain_rate`` lines
per second, full-buffer policy ``block`` (back-pressure), ``drop_newest`` or ``drop_oldest``.

Closed forms: head sampling keeps a fraction ``head_ratio`` of the error traces (binomial), whatever
happens. Tail sampling keeps ``E[min(H, b)] / E[H]`` of them with ``H`` the interesting traces per second
(Poisson) and ``b = head_ratio x rate`` the budget: ~1 while ``rate x (error_p + slow_p) < b``, and
``b / (rate x (incident_error_p + slow_p))`` once the incident's errors exceed it. A buffer drained at
``mu`` that receives ``lambda`` for ``D`` seconds loses ``(lambda - mu) D - K`` lines (K its size) when it
drops, every one of them an incident line; back-pressure loses none but delivers the last incident line
``(lambda - mu) D / mu`` late (and stalls the producers). Drop-newest keeps the incident's first lines
(the cause) and loses the rest; drop-oldest loses its first lines and keeps the last K.

Lesson: head sampling is cheap and blind — at 5% it keeps 5% of the errors, so a rare failure is rarely
traced; tail sampling spends the same budget on the traces worth reading and keeps all of them until the
incident outgrows the budget. A log pipeline under an incident spike loses exactly the incident's lines
unless it pushes back; choose which end to lose (drop-newest keeps how it started). Sources:
OpenTelemetry specification "Trace SDK: Sampling" (TraceIdRatioBased) and opentelemetry.io "Sampling"
(head vs tail); opentelemetry-collector-contrib ``tailsamplingprocessor`` README (status_code, latency,
probabilistic, rate_limiting policies; decision_wait); Fluent Bit and Vector buffer docs (block vs drop).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.observe.sampling import LogBuffer, head_sampled, tail_kept_fraction, tail_sampled
from simulator.runner import param, parameters

LOG_POLICIES = LogBuffer.POLICIES


@parameters
class Params:
    duration_s: float = param(60.0, unit="s", gt=0, le=86_400, help="simulated time")
    rate: float = param(200.0, unit="req/s", gt=0, le=1e5, help="requests (traces) per second")
    service_mean_s: float = param(0.02, unit="s", gt=0, le=60, help="mean service time")
    error_p: float = param(0.01, unit="fraction", ge=0, le=1, help="error probability outside the incident")
    incident_error_p: float = param(0.2, unit="fraction", ge=0, le=1, help="error probability during it")
    slow_p: float = param(0.01, unit="fraction", ge=0, le=1, help="probability a request is slow")
    slow_s: float = param(0.5, unit="s", gt=0, le=60, help="extra time of a slow request")
    slow_threshold_s: float = param(0.25, unit="s", gt=0, le=60, help="tail sampler's latency policy")
    head_ratio: float = param(0.05, unit="fraction", gt=0, le=1, help="head ratio; sets both samplers' budget")
    incident_at: float = param(30.0, unit="s", ge=0, le=86_400, help="incident start")
    incident_s: float = param(10.0, unit="s", gt=0, le=86_400, help="incident length")
    log_rate: float = param(50.0, unit="lines/s", gt=0, le=1e6, help="log lines per second, normally")
    incident_log_rate: float = param(500.0, unit="lines/s", gt=0, le=1e6, help="log lines per second, incident")
    drain_rate: float = param(100.0, unit="lines/s", gt=0, le=1e6, help="central pipeline's ingest rate")
    buffer_lines: int = param(500, unit="lines", ge=1, le=10_000_000, help="shipper buffer size")

    def __post_init__(self) -> None:
        if not self.incident_at + self.incident_s < self.duration_s:
            raise ValueError(f"need incident_at + incident_s < duration_s, got {self.incident_at} + "
                             f"{self.incident_s} >= {self.duration_s}")


QUICK = Params(duration_s=50.0, incident_at=25.0, rate=150.0, head_ratio=0.0666667)


def budget(p: Params) -> int:
    """Traces stored per second by either sampler: head_ratio x rate (rounded)."""
    return int(round(p.head_ratio * p.rate))


def _traces(p: Params, seed: int) -> pd.DataFrame:
    from models.services import PoissonClient

    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    work = sim.sampler(Exponential(p.service_mean_s), "svc.work")
    u = sim.uniforms("svc.faults")
    node = sim.node("svc")
    inc = (p.incident_at, p.incident_at + p.incident_s)

    def handle(msg):
        e = p.incident_error_p if inc[0] <= sim.now < inc[1] else p.error_p
        err, slow = u() < e, u() < p.slow_p
        node.after(work() + (p.slow_s if slow else 0.0), lambda: node.reply(msg, "boom" if err else "ok",
                                                                             "error" if err else "ok"))
        return NO_REPLY
    node.on("get", handle)
    PoissonClient(sim, "client", ["svc"], rate=p.rate, timeout_s=10.0, stop_at=p.duration_s)
    sim.run(until=p.duration_s + 3)
    df = sim.metrics.requests()
    df["error"] = df.outcome != "ok"
    df["slow"] = df.latency > p.slow_threshold_s
    df["incident"] = (df.start >= inc[0]) & (df.start < inc[1])
    df["head"] = head_sampled(seed, len(df), p.head_ratio)
    ut = sim.rng("sampling.tail").random(len(df))
    df["tail"] = tail_sampled(df.start.to_numpy(), (df.error | df.slow).to_numpy(), budget(p), ut)
    return df


def _logs(p: Params, seed: int, policy: str) -> pd.DataFrame:
    sim = Simulation(seed=seed)
    buf = LogBuffer(sim, p.buffer_lines, p.drain_rate, policy)
    gap_n = sim.sampler(Exponential(1.0 / p.log_rate), "logs.normal")
    gap_i = sim.sampler(Exponential(1.0 / p.incident_log_rate), "logs.incident")
    t_emit: list[float] = []
    incident: list[bool] = []
    inc0, inc1 = p.incident_at, p.incident_at + p.incident_s

    def emit() -> None:
        now = sim.now
        if now >= p.duration_s:
            return
        during = inc0 <= now < inc1
        t_emit.append(now)
        incident.append(during)
        buf.emit(len(t_emit) - 1)
        sim.at(gap_i() if during else gap_n(), emit)
    sim.at(gap_n(), emit)
    sim.run(until=p.duration_s + 10 * p.incident_s * p.incident_log_rate / p.drain_rate)
    d = np.full(len(t_emit), np.nan)
    for i, t in buf.delivered.items():
        d[i] = t
    return pd.DataFrame({"t": t_emit, "incident": incident, "delivered_at": d, "policy": policy})


def expected_lost(p: Params) -> float:
    """Fluid closed form: (lambda - mu) D - K lines lost by a dropping buffer (0 if it never fills)."""
    return max(0.0, (p.incident_log_rate - p.drain_rate) * p.incident_s - p.buffer_lines)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    df = _traces(p, seed)
    b = budget(p)
    rows = []
    for phase, g in (("normal", df[~df.incident]), ("incident", df[df.incident])):
        e = p.incident_error_p if phase == "incident" else p.error_p
        hot_rate = p.rate * (1 - (1 - e) * (1 - p.slow_p))   # errors or slow, per second
        for sampler in ("head", "tail"):
            err = g[g.error]
            rows.append({"phase": phase, "sampler": sampler, "traces": len(g), "errors": len(err),
                         "slow": int(g.slow.sum()), "stored_per_s": g[sampler].sum() / (
                             p.incident_s if phase == "incident" else p.duration_s - p.incident_s),
                         "errors_kept": float(err[sampler].mean()) if len(err) else math.nan,
                         "slow_kept": float(g[g.slow][sampler].mean()) if g.slow.any() else math.nan,
                         "expected_errors_kept": p.head_ratio if sampler == "head" else
                         tail_kept_fraction(hot_rate, b)})
    logs = pd.concat([_logs(p, seed, pol) for pol in LOG_POLICIES], ignore_index=True)
    lrows = []
    first = p.incident_at + 1.0
    for pol, g in logs.groupby("policy", sort=False):
        inc = g[g.incident]
        lost = g.delivered_at.isna()
        delay = (g.delivered_at - g.t)
        last = inc[inc.t >= p.incident_at + p.incident_s - 1]
        lrows.append({"policy": pol, "lines": len(g), "lost": int(lost.sum()),
                      "incident_lost": int(inc.delivered_at.isna().sum()),
                      "expected_lost": 0.0 if pol == "block" else expected_lost(p),
                      "first_second_kept": float(inc[inc.t < first].delivered_at.notna().mean()),
                      "last_second_kept": float(last.delivered_at.notna().mean()),
                      "max_delay_s": float(delay.max()),
                      "expected_max_delay_s": (p.incident_log_rate - p.drain_rate) * p.incident_s / p.drain_rate
                      if pol == "block" else p.buffer_lines / p.drain_rate})
    return {"summary": pd.DataFrame(rows), "logs": pd.DataFrame(lrows), "traces": df[["start", "latency", "error",
                                                                                     "slow", "incident", "head",
                                                                                     "tail"]]}


def validate(quick: bool = True) -> list:
    from simulator.runner.checks import Check

    p = QUICK if quick else Params()
    res = run(p, 1)
    s, tr = res["summary"].set_index(["phase", "sampler"]), res["traces"]
    err = tr[tr.error]
    q = p.head_ratio
    se_h = math.sqrt(q * (1 - q) / len(err))
    r = s.loc[("incident", "tail")]
    qt = r.expected_errors_kept
    se_t = math.sqrt(qt * (1 - qt) / r.errors)
    return [
        Check(source="OpenTelemetry TraceIdRatioBased: keeps a fraction p of every kind of trace",
              setup=f"{p.rate:g} req/s for {p.duration_s:g} s, ratio {q:.3g} ({len(err)} error traces)",
              quantity="fraction of error traces kept by head sampling", published=q,
              measured=float(err["head"].mean()), tolerance=4 * se_h,
              why="4 binomial SE over the error traces (trace ids are hashes: independent decisions)"),
        Check(source="tail_sampling (status_code + latency + probabilistic) under a rate limit: E[min(H, b)]/E[H]",
              setup=f"budget {budget(p)} traces/s; incident: {p.rate:g} req/s, {p.incident_error_p:g} errors "
                    f"({r.errors} error traces)",
              quantity="fraction of the incident's error traces kept by tail sampling", published=qt,
              measured=r.errors_kept, tolerance=4 * se_t + 0.01,
              why="4 binomial SE over the error traces (+1 point: the per-second windows at the incident's edges)"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"].groupby(["phase", "sampler"], as_index=False, sort=False).mean(numeric_only=True)
    lg = results["logs"].groupby("policy", as_index=False, sort=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    x = np.arange(2)
    for k, sampler in enumerate(("head", "tail")):
        d = s[s.sampler == sampler].set_index("phase").loc[["normal", "incident"]]
        a1.bar(x + (k - 0.5) * 0.38, 100 * d.errors_kept, width=0.36, label=f"{sampler} sampling",
               color=["tab:gray", "tab:blue"][k])
        a1.scatter(x + (k - 0.5) * 0.38, 100 * d.expected_errors_kept, marker="_", s=500, color="k", zorder=3,
                   label="closed form" if k == 0 else None)
        for xi, v, st in zip(x + (k - 0.5) * 0.38, d.errors_kept, d.stored_per_s):
            a1.annotate(f"{v:.0%}\n({st:.1f}/s stored)", (xi, 100 * v), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=8)
    a1.set_xticks(x, ["normal traffic", "during the incident"])
    a1.set(ylabel="error traces kept (%)", ylim=(0, 125),
           title=f"same storage: {budget(p)} traces/s of {p.rate:g} (head ratio {p.head_ratio:.3g})")
    a1.legend(fontsize=8, loc="upper right")
    y = np.arange(len(lg))
    a2.barh(y - 0.2, 100 * lg.first_second_kept, height=0.38, label="incident's first second (the cause)",
            color="tab:red")
    a2.barh(y + 0.2, 100 * lg.last_second_kept, height=0.38, label="incident's last second", color="tab:orange")
    for i, r in lg.iterrows():
        a2.text(102, i, f"lost {r.lost:.0f} (closed form {r.expected_lost:.0f})\nmax delay {r.max_delay_s:.0f} s",
                va="center", fontsize=8)
    a2.set_yticks(y, lg.policy)
    a2.invert_yaxis()
    a2.set(xlim=(0, 160), xlabel="incident log lines delivered (%)",
           title=f"log spike {p.incident_log_rate:g}/s for {p.incident_s:g} s into a {p.buffer_lines}-line buffer "
                 f"drained at {p.drain_rate:g}/s")
    a2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.suptitle("Observability under an incident: head sampling keeps p of the errors, tail sampling all of them "
                 "until the budget binds;\na dropping log buffer loses exactly the incident's lines — drop-newest "
                 "keeps how it started, back-pressure keeps all, late")
    return {"trace_sampling": fig}
