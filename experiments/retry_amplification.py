"""How much load do retries at every layer of a call chain put on the bottom service during its outage?

Setup: a chain client -> A -> B -> C -> D of four retrying call layers (the client's, A's, B's and
C's calls), one instance each with ample workers, open-loop Poisson clients. D is down (crashed,
refusing connections: a fast ``crashed`` answer) during an outage window. Every caller retries a
failed call (``crashed``, ``error``, ``timeout``, ``rejected``) with exponential backoff and full
jitter. Three arms share their random streams: *retries at every layer* (``attempts`` each);
*retries at the top only* (the client; the services call once); *top only with a retry budget*
(gRPC's retry throttling, gRFC A6). The load on D is measured from the traces: every RPC attempt
is a span, so the calls that reach D per root request are counted in its trace.

Closed form: with D failing every call, a layer that tries ``a`` times turns each call into ``a``
calls one layer down, so ``L`` retrying layers send ``a^L`` calls to the bottom per root request
(3^4 = 81); retries at the top only send ``a`` (3). Source: Google SRE book, "Handling Overload"
(retries at multiple layers multiply: "a 3 times retry at each of 4 layers ... 64x" counts the
retries only, ``(a)^L`` counts the attempts); Marc Brooker, "Timeouts, retries and backoff with
jitter" (Amazon Builders' Library).

Lesson: retries compose multiplicatively: 3 attempts at each of 4 layers hit the failed bottom
service with 81 calls per user request, so the outage is also a load spike of 81x on whatever
recovers first. Retry at one layer (3x), and a retry budget keeps even that near 1x once the
outage is visible.

Reproduces (``validate``): a^L calls at the bottom per request during the outage (81 at every
layer, 3 at the top only), 1 once healthy, and gRPC's retry throttling (gRFC A6) stopping
every retry once the outage has drained the token bucket below half.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.resilience import Pipeline, RetryBudgetConfig, RetryPolicy, TimeoutConfig
from models.services import Call, Endpoint, PoissonClient, Service
from simulator import LogNormal, Simulation
from simulator.observe.spans import enable_spans, with_events
from simulator.runner import Check, param, parameters

ARMS = ("retries at every layer", "retries at the top only", "top only + retry budget")
RETRY_ON = frozenset({"crashed", "error", "timeout", "rejected", "unreachable"})
LAYERS = ("A", "B", "C", "D")


@parameters
class Params:
    rate_rps: float = param(20.0, unit="requests/s", gt=0, le=1000, help="client request rate (Poisson)")
    duration_s: float = param(30.0, unit="s", gt=0, le=3600, help="time during which clients issue requests")
    outage_at: float = param(10.0, unit="s", ge=0, le=3600, help="the bottom service D crashes")
    outage_s: float = param(10.0, unit="s", gt=0, le=3600, help="outage length (D recovers after)")
    attempts: int = param(3, unit="attempts", ge=1, le=6, help="attempts per call at a retrying layer")
    base_s: float = param(0.005, unit="s", gt=0, le=10, help="exponential backoff base (full jitter)")
    cap_s: float = param(0.1, unit="s", gt=0, le=60, help="backoff cap")
    timeout_s: float = param(30.0, unit="s", gt=0, le=600, help="per-attempt timeout at every layer")
    work_ms: float = param(1.0, unit="ms", gt=0, le=1000, help="median local work per service call")
    workers: int = param(2000, unit="workers", ge=1, le=100_000, help="worker pool per service instance")
    budget_tokens: float = param(10.0, unit="tokens", gt=0, le=10_000, help="retry budget: max tokens")
    budget_ratio: float = param(0.1, unit="tokens per success", gt=0, le=10, help="retry budget: refill per success")
    window_s: float = param(1.0, unit="s", gt=0, le=60, help="time-series window for the load on D")

    def __post_init__(self) -> None:
        if self.cap_s < self.base_s:
            raise ValueError(f"need base_s <= cap_s, got base_s={self.base_s}, cap_s={self.cap_s}")


QUICK = Params(rate_rps=5.0, duration_s=8.0, outage_at=2.0, outage_s=4.0)


def theory_bottom_calls(attempts: int, retrying_layers: int) -> int:
    """Calls reaching a bottom service that fails every call, per root request: attempts^layers."""
    return attempts ** retrying_layers


def build(p: Params, seed: int, arm: str) -> Simulation:
    """The chain with spans on; D is down during the outage."""
    sim = Simulation(seed=seed)
    enable_spans(sim)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    policy = RetryPolicy(max_attempts=p.attempts, backoff="exponential", base_s=p.base_s, cap_s=p.cap_s,
                         jitter="full", retry_on=RETRY_ON)
    once = RetryPolicy(max_attempts=1)
    timeout = TimeoutConfig(request_s=p.timeout_s)
    work = LogNormal(median=p.work_ms / 1e3, sigma=0.3)
    for i, name in enumerate(LAYERS):
        below = LAYERS[i + 1] if i + 1 < len(LAYERS) else None
        caller = Pipeline(sim, timeout=timeout, retry=policy if arm == ARMS[0] else once, name=f"{name}.calls")
        Service(sim, name, endpoints={"get": Endpoint(work=work, calls=(Call(below),) if below else ())},
                pools={"default": p.workers}, caller=caller)
    budget = RetryBudgetConfig(max_tokens=p.budget_tokens, token_ratio=p.budget_ratio) if arm == ARMS[2] else None
    top = Pipeline(sim, timeout=timeout, retry=policy, retry_budget=budget, name="client.calls")
    PoissonClient(sim, "client", ["A-0"], rate=p.rate_rps, caller=top, stop_at=p.duration_s)
    d = sim.nodes["D-0"]
    d.refuse_when_down = True
    sim.at(p.outage_at, d.crash)
    sim.at(p.outage_at + p.outage_s, d.recover)
    return sim


def bottom_calls_per_root(spans: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Per root request (a metrics row with its trace id): spans of its trace calling each layer."""
    calls = spans[spans["kind"] == "client"]
    layer = calls["peer"].str.split("-").str[0]
    counts = pd.crosstab(calls["trace_id"], layer)
    out = requests[["trace_id", "start", "outcome"]].copy()
    for name in LAYERS:
        col = counts[name] if name in counts else pd.Series(dtype=float)
        out[f"calls_{name}"] = out["trace_id"].map(col).fillna(0).astype(int)
    return out


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    summary, load, spans_all, reqs_all = [], [], [], []
    until = p.duration_s + 60.0  # long enough for every retry tree to finish
    for arm in ARMS:
        sim = build(p, seed, arm)
        sim.run(until=until)
        sp = sim.spans
        spans = sp.frame()
        reqs = sim.metrics.requests().reset_index(names="request")
        per_root = bottom_calls_per_root(spans, reqs)
        in_out = per_root[(per_root["start"] >= p.outage_at) & (per_root["start"] < p.outage_at + p.outage_s)]
        healthy = per_root[per_root["start"] < p.outage_at]
        layers_retrying = len(LAYERS) if arm == ARMS[0] else 1
        d_calls = spans[(spans["kind"] == "client") & spans["peer"].str.startswith("D-")]
        edges = np.arange(0.0, until + p.window_s, p.window_s)
        hist, _ = np.histogram(d_calls["start"], bins=edges)
        load.append(pd.DataFrame({"arm": arm, "t": edges[:-1], "d_calls_per_s": hist / p.window_s}))
        summary.append({
            "arm": arm, "roots_in_outage": len(in_out),
            "d_calls_per_root_outage": float(in_out["calls_D"].mean()) if len(in_out) else np.nan,
            "d_calls_per_root_max": int(in_out["calls_D"].max()) if len(in_out) else 0,
            "theory_if_every_call_fails": theory_bottom_calls(p.attempts, layers_retrying),
            "d_calls_per_root_healthy": float(healthy["calls_D"].mean()) if len(healthy) else np.nan,
            "peak_d_calls_per_s": float(hist.max() / p.window_s),
            "offered_rps": p.rate_rps,
            "availability_outage": float(in_out["outcome"].isin(["ok", "fallback"]).mean()) if len(in_out) else np.nan,
            "spans": len(spans),
        })
        spans_all.append(with_events(spans, sp.events_frame()).assign(arm=arm))
        reqs_all.append(reqs.assign(arm=arm))
    faults = pd.DataFrame({"kind": ["crash"], "target": ["D-0"], "start": [p.outage_at],
                           "end": [p.outage_at + p.outage_s]})
    return {"summary": pd.DataFrame(summary), "load": pd.concat(load, ignore_index=True),
            "spans": pd.concat(spans_all, ignore_index=True), "requests": pd.concat(reqs_all, ignore_index=True),
            "faults": faults}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"].set_index("arm")
    load = results["load"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.3]})
    colors = ("#c0392b", "#2980b9", "#27ae60")
    x = np.arange(len(ARMS))
    ax1.bar(x, s.loc[list(ARMS), "d_calls_per_root_outage"], color=colors)
    ax1.scatter(x, s.loc[list(ARMS), "theory_if_every_call_fails"], marker="_", s=900, color="black", zorder=3,
                label="closed form a^L (every call fails, no budget)")
    for xi, v in zip(x, s.loc[list(ARMS), "d_calls_per_root_outage"]):
        ax1.annotate(f"{v:.1f}x", (xi, v), ha="center", va="bottom")
    ax1.set_yscale("log")
    ax1.set_xticks(x, [a.replace(" + ", "\n+ ").replace(" at ", "\nat ") for a in ARMS])
    ax1.set_ylabel("calls reaching D per user request (from traces)")
    ax1.legend(loc="upper right", fontsize=8)
    for arm, c in zip(ARMS, colors):
        d = load[load["arm"] == arm]
        ax2.step(d["t"], d["d_calls_per_s"], where="post", color=c, label=arm)
    ax2.axvspan(p.outage_at, p.outage_at + p.outage_s, color="grey", alpha=0.15, label="D down")
    ax2.axhline(p.rate_rps, color="black", ls=":", lw=1, label="user requests/s")
    ax2.set_yscale("symlog", linthresh=1)
    ax2.set_ylim(0, max(1.0, load["d_calls_per_s"].max()) * 3)
    ax2.set_xlim(0, p.duration_s + 5)
    ax2.set_xlabel("time (s)")
    ax2.set_ylabel("calls arriving at D per second")
    ax2.legend(fontsize=8, loc="upper right", ncol=2)
    all_x = s.loc[ARMS[0], "d_calls_per_root_outage"]
    fig.suptitle(f"Retries at every layer multiply: {p.attempts} attempts x {len(LAYERS)} layers sent "
                 f"{all_x:.0f} calls per request to the failed service (top only: "
                 f"{s.loc[ARMS[1], 'd_calls_per_root_outage']:.0f}, with a budget: "
                 f"{s.loc[ARMS[2], 'd_calls_per_root_outage']:.1f})", fontsize=10)
    fig.tight_layout()
    return {"retry_amplification": fig}


def validate(quick: bool) -> list[Check]:
    """The closed form a^L, measured from the traces of :func:`run` (every RPC attempt a span).

    While D refuses every call, each root request started in the outage sends exactly a^L calls to D
    (no sampling: every call fails, every layer exhausts its attempts), except roots whose retry tree
    is cut by D's recovery — so roots started in the outage's last ``_TREE_S`` seconds are left out
    (a tree lasts at most sum over layers of the backoffs, base 5 ms x (1 + 2) per layer, nested: well
    under 1 s). With the budget (gRFC A6: a failure costs 1 token, retries only while tokens >
    max/2), the first max/2 failures use the allowance; roots started after the first second retry
    never. Tolerance 0: these counts are deterministic.
    """
    p = QUICK if quick else Params(rate_rps=10.0, duration_s=16.0, outage_at=3.0, outage_s=10.0)
    s = run(p, seed=11)
    res = s["requests"]
    sp = s["spans"]
    checks = []
    src = ("Google SRE book, 'Handling Overload' (retries at each of several layers multiply); gRFC A6 "
           "(retry throttling)")
    for arm, layers in ((ARMS[0], len(LAYERS)), (ARMS[1], 1), (ARMS[2], 0)):
        per_root = bottom_calls_per_root(sp[sp.arm == arm], res[res.arm == arm])
        lo = p.outage_at + (1.0 if arm == ARMS[2] else 0.0)
        inside = per_root[(per_root.start >= lo) & (per_root.start < p.outage_at + p.outage_s - _TREE_S)]
        healthy = per_root[per_root.start < p.outage_at]
        label = ("a^0 = 1 (token bucket below max/2: no retry)" if layers == 0
                 else f"a^L, a = {p.attempts}, L = {layers}")
        checks.append(Check(
            src, f"{arm}; chain of 4 services, D down {p.outage_s:g} s; {len(inside)} roots inside the outage",
            f"calls reaching D per root request in the outage, {label}", float(p.attempts ** layers),
            float(inside.calls_D.mean()), 0.0, "deterministic: every call to D fails, so every layer exhausts "
            "its attempts; no sampling error"))
        if arm == ARMS[0]:
            checks.append(Check(src, f"{arm}; before the outage; {len(healthy)} roots",
                                "calls reaching D per root request while healthy", 1.0,
                                float(healthy.calls_D.mean()), 0.0, "deterministic: no call fails, no retry"))
    return checks


_TREE_S = 1.0  # a root's whole retry tree ends within this (see validate's docstring)
