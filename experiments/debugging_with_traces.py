"""When one database deep in a call graph turns slow, which service do the dashboards blame, and which do the traces?

Setup: five services, api -> orders -> {inventory -> db, pricing} (orders calls inventory and
pricing in parallel), one instance each, open-loop Poisson clients calling the api. Every caller
has a per-attempt timeout (shorter at each layer down, as deadlines should be) and no retries.
During an incident the db turns ``slow_factor`` times slower: inventory's calls to it time out,
so inventory answers errors, so orders and the api do too — a cascading failure. Spans are on;
the services' JSON logs (``simulator.observe.logs``) carry the trace and span ids.

Three views of the same run. *RED dashboards* (Tom Wilkie's RED method: rate, errors, duration
per service, measured by its callers): during the incident every service on the failing path
shows errors and high latency. *Traces* (Sigelman et al., "Dapper", Google 2010): in each failed
request's trace, the span with the largest self time (its duration minus its children's) is the
root cause; counted over the incident's failed traces, it names the db. *Correlation ids*: to
find one failed request's story without a trace id you read every line any service logged while
it was in flight (other requests' lines interleave); with its trace id you filter on one value.

Lesson: per-service dashboards show the blast radius, not the cause — every service upstream of
a slow dependency is slow and erroring too, and the one at the top looks worst. A trace puts the
time where it was spent: the db's span holds it. And a correlation id turns a grep across five
services' logs by timestamp into one exact query.

Reproduces (``validate``): Dapper's attribution — in every failed trace the span with the largest
self time is the db call (Sigelman et al. 2010) — and the deadline arithmetic behind the RED
dashboards: with no queueing at the db, a request fails iff the slow query plus its round trip
outlives inventory's timeout, P(S + L1 + L2 > T), and with no retries that failure reaches the
api one for one (the api's error rate equals the db's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.resilience import Pipeline, RetryPolicy, TimeoutConfig
from models.services import Call, Endpoint, PoissonClient, Service
from simulator import LogNormal, Simulation
from simulator.observe.logs import service_of, span_log_records
from simulator.observe.spans import enable_spans, with_events
from simulator.runner import Check, param, parameters

SERVICES = ("api", "orders", "inventory", "pricing", "db")
DEPTH = {"api": 1, "orders": 2, "inventory": 3, "pricing": 3, "db": 4}


@parameters
class Params:
    rate_rps: float = param(50.0, unit="requests/s", gt=0, le=2000, help="client request rate (Poisson)")
    duration_s: float = param(30.0, unit="s", gt=0, le=3600, help="time during which clients issue requests")
    incident_at: float = param(10.0, unit="s", ge=0, le=3600, help="the db turns slow")
    incident_s: float = param(10.0, unit="s", gt=0, le=3600, help="how long the db stays slow")
    slow_factor: float = param(100.0, unit="x", ge=1, le=10_000, help="db service-time multiplier during the incident")
    db_ms: float = param(2.0, unit="ms", gt=0, le=1000, help="median db query time when healthy")
    work_ms: float = param(1.0, unit="ms", gt=0, le=1000, help="median local work in the other services")
    db_workers: int = param(8, unit="workers", ge=1, le=10_000, help="db worker pool (queueing when slow)")
    workers: int = param(200, unit="workers", ge=1, le=100_000, help="worker pool of the other services")
    timeout_ms: float = param(200.0, unit="ms", gt=0, le=60_000,
                              help="inventory's timeout on the db; each layer up adds timeout_step_ms")
    timeout_step_ms: float = param(100.0, unit="ms", ge=0, le=60_000, help="extra timeout per layer up")
    window_s: float = param(1.0, unit="s", gt=0, le=60, help="RED dashboard window")

    def __post_init__(self) -> None:
        if self.incident_at >= self.duration_s:
            raise ValueError(f"need incident_at < duration_s, got incident_at={self.incident_at}, "
                             f"duration_s={self.duration_s}")


QUICK = Params(rate_rps=30.0, duration_s=6.0, incident_at=2.0, incident_s=2.0)


def timeouts(p: Params) -> dict[str, float]:
    """Per caller layer: the timeout (s) on its calls — inventory's on the db is the shortest."""
    t, step = p.timeout_ms / 1e3, p.timeout_step_ms / 1e3
    return {"inventory": t, "pricing": t, "orders": t + step, "api": t + 2 * step, "client": t + 3 * step}


def build(p: Params, seed: int) -> Simulation:
    sim = Simulation(seed=seed)
    enable_spans(sim)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    to = timeouts(p)
    once = RetryPolicy(max_attempts=1)

    def caller(name: str) -> Pipeline:
        return Pipeline(sim, timeout=TimeoutConfig(request_s=to[name]), retry=once, name=f"{name}.calls")

    work = LogNormal(median=p.work_ms / 1e3, sigma=0.3)
    Service(sim, "api", endpoints={"get": Endpoint(work=work, calls=(Call("orders"),))},
            pools={"default": p.workers}, caller=caller("api"))
    Service(sim, "orders", endpoints={"get": Endpoint(work=work, calls=(Call("inventory"), Call("pricing")),
                                                      fan_out=True)},
            pools={"default": p.workers}, caller=caller("orders"))
    Service(sim, "inventory", endpoints={"get": Endpoint(work=work, calls=(Call("db"),))},
            pools={"default": p.workers}, caller=caller("inventory"))
    Service(sim, "pricing", endpoints={"get": Endpoint(work=work)}, pools={"default": p.workers},
            caller=caller("pricing"))
    db = Service(sim, "db", endpoints={"get": Endpoint(work=LogNormal(median=p.db_ms / 1e3, sigma=0.3))},
                 pools={"default": p.db_workers})
    PoissonClient(sim, "client", ["api-0"], rate=p.rate_rps, caller=caller("client"), stop_at=p.duration_s)
    node = db.nodes[0]
    sim.at(p.incident_at, lambda: node.slow_down(p.slow_factor))
    sim.at(p.incident_at + p.incident_s, lambda: node.slow_down(1.0))
    return sim


def self_times(spans: pd.DataFrame) -> pd.Series:
    """Per span: its duration minus its children's (clipped at 0) — the time spent in it alone.
    An unfinished span counts up to the last time seen in the trace."""
    end = spans["end"].fillna(spans.groupby("trace_id")["end"].transform("max"))
    dur = (end - spans["start"]).clip(lower=0)
    child = dur[spans["parent_id"] >= 0].groupby(spans.loc[spans["parent_id"] >= 0, "parent_id"]).sum()
    own = dur - spans["span_id"].map(child).fillna(0.0).to_numpy()
    return own.clip(lower=0)


def root_causes(spans: pd.DataFrame) -> pd.DataFrame:
    """Per trace: the client span with the largest self time, and the service it called."""
    calls = spans.assign(self_s=self_times(spans))
    calls = calls[calls["kind"] == "client"]
    idx = calls.sort_values(["self_s", "span_id"], ascending=[False, True]).groupby("trace_id").head(1)
    return pd.DataFrame({"trace_id": idx["trace_id"].to_numpy(), "blamed": idx["peer"].map(service_of).to_numpy(),
                         "self_s": idx["self_s"].to_numpy()})


def red_per_service(spans: pd.DataFrame, p: Params) -> pd.DataFrame:
    """RED per called service per window, from the calls made to it (what its dashboard shows)."""
    calls = spans[(spans["kind"] == "client") & (spans["outcome"] != "in_flight")]
    d = pd.DataFrame({"service": calls["peer"].map(service_of), "window": (calls["start"] // p.window_s) * p.window_s,
                      "latency": calls["end"] - calls["start"], "err": calls["outcome"] != "ok"})
    g = d.groupby(["service", "window"])
    return pd.DataFrame({"rate": g.size() / p.window_s, "error_rate": g["err"].mean(),
                         "p99_ms": g["latency"].quantile(0.99) * 1e3}).reset_index()


def correlation_cost(spans: pd.DataFrame, roots: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per failed request: log lines (and services) to read without a trace id — every line logged
    while it was in flight — vs with it (the lines carrying its id)."""
    recs = span_log_records(spans, seed)
    logs = pd.DataFrame({"time": [r[0] for r in recs], "service": [service_of(r[1]) for r in recs],
                         "trace": [r[4] for r in recs]})
    logs = logs[logs["service"].isin(SERVICES)]  # the five services' logs (the load generator keeps none)
    t = logs["time"].to_numpy()
    order = np.argsort(t, kind="stable")
    ts = t[order]
    rows = []
    for tr, start, end in zip(roots["trace_id"], roots["start"], roots["end"]):
        lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "right")
        window = logs.iloc[order[lo:hi]]
        mine = logs[logs["trace"] == tr]
        rows.append({"trace_id": tr, "lines_without_id": len(window),
                     "services_without_id": window["service"].nunique(),
                     "requests_interleaved": window["trace"].nunique(), "lines_with_id": len(mine),
                     "services_with_id": mine["service"].nunique()})
    return pd.DataFrame(rows)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    sim = build(p, seed)
    sim.run(until=p.duration_s + 5.0)
    sp = sim.spans
    spans = sp.frame()
    reqs = sim.metrics.requests().reset_index(names="request")
    roots = spans[spans["parent_id"] < 0]
    t0, t1 = p.incident_at, p.incident_at + p.incident_s
    in_inc = roots[(roots["start"] >= t0) & (roots["start"] < t1)]
    failed = in_inc[in_inc["outcome"] != "ok"]
    causes = root_causes(spans[spans["trace_id"].isin(failed["trace_id"])])
    red = red_per_service(spans, p)
    inc = red[(red["window"] >= t0) & (red["window"] < t1)]
    base = red[red["window"] < t0]
    blamed = causes["blamed"].value_counts()
    summary = []
    for s in SERVICES:
        i, b = inc[inc["service"] == s], base[base["service"] == s]
        summary.append({"service": s, "depth": DEPTH[s],
                        "error_rate_base": float(b["error_rate"].mean()) if len(b) else np.nan,
                        "error_rate_incident": float(i["error_rate"].mean()) if len(i) else np.nan,
                        "p99_ms_base": float(b["p99_ms"].median()) if len(b) else np.nan,
                        "p99_ms_incident": float(i["p99_ms"].median()) if len(i) else np.nan,
                        "traces_blaming": int(blamed.get(s, 0)),
                        "share_blaming": float(blamed.get(s, 0) / len(causes)) if len(causes) else np.nan})
    cost = correlation_cost(spans, failed, seed)
    summary = pd.DataFrame(summary)
    for c in ("lines_without_id", "services_without_id", "requests_interleaved", "lines_with_id", "services_with_id"):
        summary[f"median_{c}"] = float(cost[c].median()) if len(cost) else np.nan
    summary["failed_requests_incident"] = len(failed)
    summary["requests_incident"] = len(in_inc)
    faults = pd.DataFrame({"kind": ["slow"], "target": ["db-0"], "start": [t0], "end": [t1]})
    return {"summary": summary, "red": red, "root_causes": causes, "correlation": cost,
            "spans": with_events(spans, sp.events_frame()), "requests": reqs, "faults": faults}


def p_timeout(p: Params, nodes: int = 40) -> float:
    """P(db query + round trip > inventory's timeout) during the incident, with no queueing: the
    query is LogNormal(db_ms x slow_factor, 0.3), each network leg LogNormal(0.5 ms, 0.3);
    Gauss-Hermite quadrature over the two legs, the query's tail in closed form."""
    import math

    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    legs = 0.0005 * np.exp(0.3 * z)
    rtt = (legs[:, None] + legs[None, :]).ravel()
    ww = (w[:, None] * w[None, :]).ravel()
    left = np.clip(timeouts(p)["inventory"] - rtt, 1e-300, None)
    med = p.db_ms / 1e3 * p.slow_factor
    tail = np.array([0.5 * math.erfc(math.log(x / med) / (0.3 * math.sqrt(2))) for x in left])
    return float(ww @ tail)


def validate(quick: bool) -> list[Check]:
    """Three rows over several seeds, with a db pool too large to queue (``db_workers`` = 1000, a
    deliberate setup difference: queueing would add waits the closed form leaves out)."""
    import dataclasses
    import math

    p = dataclasses.replace(QUICK if quick else Params(), db_workers=1000)
    seeds = (1, 2, 3, 4) if quick else (1, 2, 3, 4, 5, 6)
    results = [run(p, seed) for seed in seeds]
    runs = [r["summary"].set_index("service") for r in results]
    failed = sum(int(r.failed_requests_incident.iloc[0]) for r in runs)
    total = sum(int(r.requests_incident.iloc[0]) for r in runs)
    blamed = sum(int(r.loc["db", "traces_blaming"]) for r in runs)
    setup = (f"api -> orders -> {{inventory -> db, pricing}}, db {p.slow_factor:g}x slower for {p.incident_s:g} s "
             f"(median {p.db_ms * p.slow_factor:g} ms), inventory timeout {p.timeout_ms:g} ms, no retries, "
             f"{p.rate_rps:g} req/s, db pool 1000; {len(seeds)} seeds")
    pub = p_timeout(p)
    se = math.sqrt(pub * (1 - pub) / total)
    mismatched = 0
    for r in results:
        sp = r["spans"]
        roots = sp[(sp.parent_id < 0) & (sp.start >= p.incident_at) & (sp.start < p.incident_at + p.incident_s)]
        db = sp[(sp.kind == "client") & (sp.peer.map(service_of) == "db") & sp.trace_id.isin(roots.trace_id)]
        db_failed = db.groupby("trace_id").outcome.agg(lambda o: bool((o != "ok").any()))
        root_failed = roots.set_index("trace_id").outcome != "ok"
        mismatched += int((root_failed != db_failed.reindex(root_failed.index, fill_value=False)).sum())
    return [
        Check(source="Sigelman et al., 'Dapper', Google Technical Report 2010 (spans, self time)", setup=setup,
              quantity="share of failed traces whose largest-self-time span is the db call", published=1.0,
              measured=blamed / failed, tolerance=0.0,
              why=f"exact in this setup: every other span's self time is a few ms; the db call holds the "
                  f"{p.timeout_ms:g} ms timeout ({failed} failed traces)"),
        Check(source="deadline arithmetic: P(query + round trip > timeout); Wilkie's RED method (errors)",
              setup=setup, quantity="share of requests started in the incident that fail", published=pub,
              measured=failed / total, tolerance=4 * se,
              why=f"4 binomial standard errors over {total} requests"),
        Check(source="Wilkie's RED method; no retries: one failed db call fails one api request", setup=setup,
              quantity="requests whose api outcome differs from their db call's (failed vs ok)", published=0.0,
              measured=float(mismatched), tolerance=0.0,
              why=f"exact: each api request makes one db call, and a failure propagates unchanged ({total} "
                  "requests; the dashboards' per-window rates differ only by window edges)"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"].set_index("service")
    red = results["red"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    ax1, ax2, ax3 = axes
    colors = {"api": "#8e44ad", "orders": "#2980b9", "inventory": "#e67e22", "pricing": "#27ae60", "db": "#c0392b"}
    for svc in SERVICES:
        d = red[red["service"] == svc].sort_values("window")
        ax1.step(d["window"], d["p99_ms"], where="post", color=colors[svc], label=svc,
                 lw=2.5 if svc == "db" else 1.5)
    ax1.axvspan(p.incident_at, p.incident_at + p.incident_s, color="grey", alpha=0.15, label="db slow")
    ax1.set_yscale("log")
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("p99 latency seen by callers (ms)")
    ax1.set_title("RED dashboards: four services turn slow at once", fontsize=10)
    ax1.legend(fontsize=8, ncol=2)
    x = np.arange(len(SERVICES))
    ax2.bar(x, [s.loc[v, "error_rate_incident"] for v in SERVICES], color=[colors[v] for v in SERVICES])
    ax2.set_xticks(x, SERVICES)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("error rate during the incident")
    ax2.set_title("RED: every upstream service is erroring", fontsize=10)
    ax2b = ax3
    ax2b.bar(x, [s.loc[v, "share_blaming"] for v in SERVICES], color=[colors[v] for v in SERVICES])
    ax2b.set_xticks(x, SERVICES)
    ax2b.set_ylim(0, 1.05)
    ax2b.set_ylabel("share of failed traces whose largest\nself-time span is a call to it")
    w, wi = s["median_lines_without_id"].iloc[0], s["median_lines_with_id"].iloc[0]
    ax2b.set_title(f"Traces: the root cause (logs to read per request:\n{w:.0f} lines by time, "
                   f"{wi:.0f} by trace id)", fontsize=10)
    share = s.loc["db", "share_blaming"]
    fig.suptitle(f"A slow db deep in the graph: RED shows {int((s['error_rate_incident'] > 0.05).sum())} services "
                 f"failing, the traces blame the db in {share:.0%} of failed requests", fontsize=11)
    fig.tight_layout()
    return {"debugging_with_traces": fig}
