"""HTTP/1.1 pools, HTTP/2 streams, one gRPC stream — and GraphQL's N+1: how does the transport decide who waits?

Setup, part 1 (one slow dependency): a gateway calls two endpoints of a backend: ``fast`` (exponential
``fast_ms``, ``fast_rate`` req/s) and ``slow`` (it waits on a slow dependency: ``slow_s`` each). The slow
endpoint's offered concurrency ``λ_slow x slow_s`` is swept as a multiple (``loads``) of the pool size ``P``.
Every request has a ``timeout_s`` deadline, waiting for a connection included (a request still waiting
when it passes is refused). Four transports, same seeds (the connection/stream limit is a FIFO semaphore,
``models.resilience.Bulkhead``, inside a ``Pipeline``):

- **HTTP/1.1 shared pool**: ``P`` keep-alive connections for both endpoints; a connection carries one
  request at a time (RFC 9112 §9.3: without pipelining, the next request waits for the response), so a
  request without a free connection waits for one (Apache HttpClient's ``maxTotal``, Go's
  ``MaxConnsPerHost``, Envoy's ``max_connections``/``max_pending_requests``);
- **HTTP/1.1 pool per endpoint**: ``P/2`` connections each (two clients, or a route-level pool);
- **HTTP/2 one connection**: every request is a stream on one multiplexed connection (RFC 9113 §5),
  at most ``max_streams`` at once (``SETTINGS_MAX_CONCURRENT_STREAMS``, §6.5.2: "no smaller than 100"
  recommended); a stream beyond it waits (Go's ``StrictMaxConcurrentStreams``);
- **gRPC one ordered stream**: every request is a message on one long-lived bidirectional stream; gRPC
  keeps a stream's messages in order and a handler that reads them in a loop serves one at a time (gRPC
  docs, "Core concepts": "the order of messages in each stream is preserved") — a pool of one.

Closed form (Little's law, L = λW): the slow endpoint holds ``λ_slow x slow_s`` connections on average; a
pool of ``P`` saturates when ``λ_slow x slow_s + λ_fast x fast_s >= P`` — the slow endpoint alone does it
at ``λ_slow x slow_s >= P`` — and then its queue grows without bound and every request behind it, fast or
slow, waits until its deadline. Its own pool of ``P/2`` saturates at ``λ_slow x slow_s = P/2``, but only the
slow endpoint suffers: pool exhaustion is an accidental bulkhead when pools are per endpoint and an
accidental outage when one pool is shared. HTTP/2 moves the limit to ``max_streams`` (100 here); one ordered
stream is head-of-line blocking in its purest form: every fast message queues behind each slow one.

Setup, part 2 (GraphQL, N+1): a query asks for a list of ``N`` items and one field of each; the naive
resolvers make one backend call per item after the list call — ``1 + N`` calls — one after the other
(sequential resolvers: ``(1 + N) x (RTT + call cost)``) or all at once (graphql-js resolves a list's fields
concurrently: two round trips' latency, still ``1 + N`` calls); a DataLoader (graphql/dataloader) coalesces
the N loads of the same tick into one batched call: 2 calls, ``2 x RTT + 2 c + (1 + N) k`` for a call
overhead ``c`` and per-key cost ``k``.

Lesson: the transport is a queue with a size, and who shares it decides who waits. Not modelled (said, not
hidden): TCP's own head-of-line blocking of all HTTP/2 streams after a lost packet (QUIC's motive, RFC 9000),
connection set-up costs, and HTTP/2 flow-control windows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.resilience import BulkheadConfig, Pipeline, TimeoutConfig
from models.services import DataLoader, Endpoint, PoissonClient, Service
from simulator import NO_REPLY, Exponential, LogNormal, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check

ARMS = ("HTTP/1.1 shared pool", "HTTP/1.1 pool per endpoint", "HTTP/2 one connection", "gRPC one ordered stream")
MODES = ("N+1 sequential", "N+1 parallel", "DataLoader batched")
SIGMA = 0.2  # log-normal shape of a one-way network delay
WARMUP_S = 2.0


@parameters
class Params:
    duration_s: float = param(30.0, unit="s", gt=WARMUP_S, le=86_400, help="simulated time per load point")
    pool_size: int = param(10, unit="connections", ge=2, le=10_000, help="HTTP/1.1 connections (P) in all")
    max_streams: int = param(100, unit="streams", ge=1, le=100_000, help="HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS")
    slow_s: float = param(0.5, unit="s", gt=0, le=60, help="the slow endpoint's service time")
    fast_ms: float = param(5.0, unit="ms", gt=0, le=10_000, help="the fast endpoint's service time (exp. mean)")
    fast_rate: float = param(100.0, unit="req/s", gt=0, le=1e5, help="requests per second to the fast endpoint")
    loads: tuple[float, ...] = param((0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0), unit="x P", gt=0, le=100,
                                     help="slow endpoint's offered concurrency λ x slow_s, in multiples of P")
    timeout_s: float = param(2.0, unit="s", gt=0, le=600, help="each request's deadline, pool wait included")
    fast_slo_ms: float = param(100.0, unit="ms", gt=0, le=600_000, help="the fast endpoint's latency objective")
    rtt_ms: float = param(1.0, unit="ms", gt=0, le=10_000, help="median network round trip")
    items: tuple[int, ...] = param((1, 2, 5, 10, 20, 50), unit="items", ge=1, le=10_000,
                                   help="GraphQL: list lengths N")
    call_ms: float = param(2.0, unit="ms", ge=0, le=10_000, help="GraphQL: a backend call's fixed cost c")
    per_key_ms: float = param(0.2, unit="ms", ge=0, le=10_000, help="GraphQL: cost k per key in a call")
    queries: int = param(200, unit="queries", ge=10, le=1_000_000, help="GraphQL: queries per (N, resolver) point")


QUICK = Params(duration_s=12.0, loads=(0.2, 0.6, 0.9, 1.1, 1.6, 2.0), items=(1, 5, 20, 50), queries=100)


def saturation_loads(p: Params) -> dict[str, float]:
    """The slow load (λ_slow slow_s / P) at which each transport's limit is reached (Little's law):
    the pool's capacity minus what the fast endpoint holds (its service time plus a round trip)."""
    fast_held = p.fast_rate * (p.fast_ms + p.rtt_ms * math.exp(SIGMA ** 2 / 2)) / 1e3
    P = p.pool_size
    return {ARMS[0]: (P - fast_held) / P, ARMS[1]: (P // 2) / P, ARMS[2]: (p.max_streams - fast_held) / P,
            ARMS[3]: (1 - fast_held) / P}


def _bulkhead(p: Params, arm: str) -> BulkheadConfig:
    size, shared = {ARMS[0]: (p.pool_size, True), ARMS[1]: (p.pool_size // 2, False),
                    ARMS[2]: (p.max_streams, True), ARMS[3]: (1, True)}[arm]
    return BulkheadConfig(max_concurrent=size, max_wait_s=p.timeout_s, per_dependency=not shared)


def transport_world(p: Params, seed: int, arm: str, load: float) -> tuple[Simulation, Pipeline, list[float]]:
    """The gateway and backend for one transport and slow load; the pool's occupancy by slow
    requests is sampled every 10 ms into the returned list (per-endpoint arm: its own pool)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.rtt_ms / 2e3, sigma=SIGMA))
    Service(sim, "fast", endpoints={"get": Endpoint(work=Exponential(p.fast_ms / 1e3))}, pools={"default": 100_000})
    Service(sim, "slow", endpoints={"get": Endpoint(work=p.slow_s)}, pools={"default": 100_000})
    pipe = Pipeline(sim, timeout=TimeoutConfig(total_s=p.timeout_s), bulkhead=_bulkhead(p, arm), name="gateway")
    PoissonClient(sim, "users-fast", ["fast-0"], rate=p.fast_rate, caller=pipe, stop_at=p.duration_s)
    PoissonClient(sim, "users-slow", ["slow-0"], rate=load * p.pool_size / p.slow_s, caller=pipe,
                  stop_at=p.duration_s)
    held: list[float] = []

    def sample() -> None:
        bh = pipe.bulkheads.get("slow-0" if arm == ARMS[1] else "*")
        if sim.now >= WARMUP_S:
            held.append(bh.in_use if bh is not None else 0)
        if sim.now < p.duration_s:
            sim.at(0.01, sample)

    sim.at(0.0, sample)
    return sim, pipe, held


def transport_point(p: Params, seed: int, arm: str, load: float) -> dict:
    sim, _, held = transport_world(p, seed, arm, load)
    sim.run(until=p.duration_s + p.timeout_s + 1)
    df = sim.metrics.requests()
    df = df[df.start >= WARMUP_S]
    row = {"arm": arm, "load": load, "slow_concurrency": load * p.pool_size,
           "mean_held": float(np.mean(held)) if held else math.nan}
    for ep in ("fast", "slow"):
        d = df[df.client == f"users-{ep}"]
        ok = d.outcome == "ok"
        row[f"{ep}_availability"] = float(ok.mean())
        if ep == "fast":
            row["fast_within_slo"] = float((ok & (d.latency <= p.fast_slo_ms / 1e3)).mean())
        row[f"{ep}_p99_ms"] = float(d.latency.quantile(0.99) * 1e3)
    return row


# -- GraphQL ------------------------------------------------------------------------------------------------
def graphql_world(p: Params, seed: int, mode: str, n: int) -> tuple[Simulation, dict]:
    """A GraphQL server resolving ``{ items(first: n) { owner } }`` against a backend: one list call,
    then the owners per ``mode``. ``counts["calls"]`` counts backend calls."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=p.rtt_ms / 2e3, sigma=SIGMA))
    db, gql = sim.node("db"), sim.node("graphql")
    c, k = p.call_ms / 1e3, p.per_key_ms / 1e3
    counts = {"calls": 0, "busy": 0.0}

    def backend(cost_keys):
        def handle(msg):
            counts["calls"] += 1
            keys = cost_keys(msg.payload)
            counts["busy"] += c + k * len(keys)
            db.after(c + k * len(keys), lambda: db.reply(msg, [f"owner-{x}" for x in keys]))
            return NO_REPLY
        return handle

    db.on("list", backend(lambda pl: [0]))  # the list query: one call's cost, returns n ids
    db.on("get", backend(lambda pl: [pl]))
    db.on("get_many", backend(lambda pl: pl["keys"]))

    def query(msg):
        def resolve_owners(outcome, _):
            if outcome != "ok":
                gql.reply(msg, None, outcome)
                return
            ids, got, left = list(range(n)), {}, [n]

            def one(i, o, v):
                got[i] = v
                left[0] -= 1
                if left[0] == 0:
                    gql.reply(msg, [got[j] for j in ids])
                elif mode == MODES[0]:
                    gql.call("db", "get", ids[i + 1], math.inf, lambda o, v, j=i + 1: one(j, o, v))

            if mode == MODES[0]:
                gql.call("db", "get", ids[0], math.inf, lambda o, v: one(0, o, v))
            elif mode == MODES[1]:
                for i in ids:
                    gql.call("db", "get", i, math.inf, lambda o, v, i=i: one(i, o, v))
            else:
                loader = DataLoader(gql, "db", "get_many")  # one loader per request (dataloader's advice)
                for i in ids:
                    loader.load(i, lambda o, v, i=i: one(i, o, v))

        gql.call("db", "list", n, math.inf, resolve_owners)
        return NO_REPLY

    gql.on("query", query)
    rate = 10.0
    PoissonClient(sim, "client", ["graphql"], op="query", rate=rate, timeout_s=60.0, limit=p.queries)
    counts["until"] = p.queries / rate * 2 + 60
    return sim, counts


def graphql_theory(p: Params, n: int) -> dict[str, float]:
    """Mean latency (s) without the client's own hop: sequential (1 + n)(RTT + c + k); batched
    2 RTT + 2c + (1 + n)k; calls 1 + n vs 2. RTT's mean is 2 x median x exp(σ²/2) (log-normal)."""
    rtt = p.rtt_ms / 1e3 * math.exp(SIGMA ** 2 / 2)
    c, k = p.call_ms / 1e3, p.per_key_ms / 1e3
    return {"sequential_s": rtt + (1 + n) * (rtt + c + k), "batched_s": rtt + 2 * rtt + 2 * c + (1 + n) * k,
            "calls_naive": 1 + n, "calls_batched": 2}


def graphql_point(p: Params, seed: int, mode: str, n: int) -> dict:
    sim, counts = graphql_world(p, seed, mode, n)
    sim.run(until=counts["until"])
    df = sim.metrics.requests()
    ok = df[df.outcome == "ok"]
    th = graphql_theory(p, n)
    return {"mode": mode, "n": n, "queries": len(df), "ok": len(ok), "calls_per_query": counts["calls"] / len(df),
            "backend_ms_per_query": counts["busy"] / len(df) * 1e3,
            "mean_ms": float(ok.latency.mean() * 1e3), "p99_ms": float(ok.latency.quantile(0.99) * 1e3),
            "theory_ms": {MODES[0]: th["sequential_s"], MODES[2]: th["batched_s"]}.get(mode, math.nan) * 1e3,
            "theory_calls": th["calls_batched"] if mode == MODES[2] else th["calls_naive"]}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    sat = saturation_loads(p)
    rows = [transport_point(p, seed, arm, load) | {"saturates_at_load": sat[arm]} for arm in ARMS for load in p.loads]
    gql = [graphql_point(p, seed, mode, n) for mode in MODES for n in p.items]
    return {"summary": pd.DataFrame(rows), "graphql": pd.DataFrame(gql)}


def validate(quick: bool) -> list[Check]:
    """Little's law on the slow endpoint's own pool, and the N+1 / DataLoader latency closed forms."""
    p = Params(duration_s=22.0 if quick else 200.0, queries=100 if quick else 1000)
    load = 0.2  # offered 2 connections of its 5: waits are rare and short, nothing is refused
    r = transport_point(p, 1, ARMS[1], load)
    hold = p.slow_s + p.rtt_ms / 1e3 * math.exp(SIGMA ** 2 / 2)
    lam = load * p.pool_size / p.slow_s
    T = p.duration_s - WARMUP_S
    se = math.sqrt(lam * hold ** 2 / T)  # Poisson count of arrivals, each holding `hold` seconds
    n = 20
    seq, bat = graphql_point(p, 1, MODES[0], n), graphql_point(p, 1, MODES[2], n)
    th = graphql_theory(p, n)
    med = p.rtt_ms / 2e3
    hop_sd = med * math.sqrt(math.exp(SIGMA ** 2) * (math.exp(SIGMA ** 2) - 1))
    se_seq = hop_sd * math.sqrt(2 * (2 + n)) / math.sqrt(p.queries) * 1e3
    se_bat = hop_sd * math.sqrt(2 * 3) / math.sqrt(p.queries) * 1e3
    return [
        Check(source="Little's law, L = λW (Little 1961)",
              setup=f"HTTP/1.1 pool of {p.pool_size // 2} for the slow endpoint, λ = {lam:g}/s, "
                    f"held {hold * 1e3:.1f} ms (service + round trip)",
              quantity="mean connections held by slow requests", published=lam * hold, measured=r["mean_held"],
              tolerance=4 * se, why=f"4 standard errors of a Poisson count of arrivals over {T:g} s"),
        Check(source="GraphQL N+1, sequential resolvers: (1 + N)(RTT + c + k) + the client's RTT",
              setup=f"N = {n}, c = {p.call_ms:g} ms, k = {p.per_key_ms:g} ms, RTT median {p.rtt_ms:g} ms",
              quantity="mean query latency (ms)", published=th["sequential_s"] * 1e3, measured=seq["mean_ms"],
              tolerance=4 * se_seq, why=f"4 standard errors of {2 * (2 + n)} log-normal hops over {p.queries} queries"),
        Check(source="graphql/dataloader: one batched call per tick: 2 RTT + 2c + (1 + N)k + the client's RTT",
              setup=f"N = {n}, same costs", quantity="mean query latency (ms)", published=th["batched_s"] * 1e3,
              measured=bat["mean_ms"], tolerance=4 * se_bat,
              why=f"4 standard errors of 6 log-normal hops over {p.queries} queries"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    t = results["summary"].groupby(["arm", "load"], sort=False, as_index=False).mean(numeric_only=True)
    g = results["graphql"].groupby(["mode", "n"], sort=False, as_index=False).mean(numeric_only=True)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    sat = saturation_loads(p)
    for arm, style in zip(ARMS, ("o-", "s--", "^-", "v-"), strict=True):
        d = t[t.arm == arm]
        col = plots.color_for(f"transport:{arm}")
        lw = 3.0 if arm == ARMS[1] else 1.6  # drawn under HTTP/2's line where both stay at 1
        a1.plot(d.load, d.fast_within_slo, style, color=col, label=arm, lw=lw)
        a2.plot(d.load, d.slow_availability, style, color=col, label=arm, lw=lw)
    a1.axvline(sat[ARMS[0]], color=plots.color_for(f"transport:{ARMS[0]}"), ls="--", lw=1)
    a1.text(sat[ARMS[0]], 0.5, " shared pool full:\n λ·S + fast's share = P", fontsize=8)
    a2.axvline(sat[ARMS[0]], color=plots.color_for(f"transport:{ARMS[0]}"), ls="--", lw=1)
    a2.axvline(sat[ARMS[1]], color=plots.color_for(f"transport:{ARMS[1]}"), ls="--", lw=1)
    a2.text(sat[ARMS[1]], 0.3, " own pool full:\n λ·S = P/2", fontsize=8)
    for ax, ep in ((a1, "fast"), (a2, "slow")):
        ax.set_xlabel(f"slow endpoint's offered concurrency λ·S / P  (P = {p.pool_size})")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"the {ep} endpoint", fontsize=9)
    a1.set_ylabel(f"fast: fraction answered within {p.fast_slo_ms:g} ms")
    a2.set_ylabel(f"slow: fraction answered within its {p.timeout_s:g} s deadline")
    a1.legend(fontsize=7, loc="center left")
    for mode in MODES:
        d = g[g["mode"] == mode]
        col = plots.color_for(f"graphql:{mode}")
        last = d.iloc[-1]
        a3.plot(d.n, d.mean_ms, "o-", color=col, label=f"{mode}: at N = {last.n:.0f}, {last.calls_per_query:.0f} "
                f"calls, {last.backend_ms_per_query:.0f} ms of backend work")
        if mode != MODES[1]:
            a3.plot(d.n, d.theory_ms, ":", color="k", lw=1)
    a3.set_xlabel("N items in the list")
    a3.set_ylabel("mean query latency (ms); dotted: closed form")
    a3.set_title("GraphQL: 1 + N resolver calls vs a DataLoader's 2", fontsize=9)
    a3.legend(fontsize=7, loc="upper left")
    fig.suptitle("One shared HTTP/1.1 pool lets a slow endpoint take the fast one down (Little: λ·S ≥ P); its own pool "
                 "is a bulkhead, HTTP/2 streams\nraise the limit, one ordered gRPC stream blocks everything behind "
                 "each slow message — and N+1 resolvers cost N round trips that batching folds into one")
    return {"service_communication": fig}
