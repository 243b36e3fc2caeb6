"""A crashed instance: how long do cached discovery answers keep sending it traffic, and what do probes do to a start?

Setup, part 1 (crash): ``instances`` instances register with a registry that health-checks each every
``check_interval_s`` and delists one after ``failure_threshold`` intervals without a successful check
(``models.services.Registry``, Consul/Eureka-style TTL checks). *Client-side discovery*: ``clients``
clients each cache the registry's answer and refresh it every ``ttl_s`` (a DNS answer's TTL or a client
library's refresh; each client at its own uniform phase), sending Poisson requests (``rate`` per client)
to a uniformly random instance of their cached list. *Server-side discovery*: the clients call a router
that holds the only cache, refreshed every ``router_refresh_s`` (Kubernetes' kube-proxy or Envoy's EDS
watch the endpoints). One instance crashes at a uniformly random instant; a request to it times out.
Trials share seeds across arms (common random numbers).

Closed form: the registry's last successful check came ``U x check_interval_s`` before the crash (U
uniform), so it delists ``(k - U) h`` after the crash; a cache then learns it at its next refresh, uniform
in ``[0, R)``. The exposure (crash to the cache's last dead entry) is ``E = (k - 1/2) h + R / 2`` on
average (``k`` the threshold, ``h`` the interval, ``R`` the cache's refresh period), and of the requests
started in the ``window_s`` after the crash a fraction ``(1/n) E / window_s`` fail.

Part 2 (slow start): one new instance needs ``startup_s`` before it answers anything. With a *readiness*
probe the registry lists it only once it is ready (no traffic, no errors); *without* one it is listed at
once and every request it gets fails until it is up, ``rate x clients x startup_s / n`` of them; a
*liveness* probe whose ``failure_threshold``-th probe comes before the start is over
(``startup_s > initialDelaySeconds + (failureThreshold - 1) periodSeconds``) kills it every time:
CrashLoopBackOff (Kubernetes, "Configure Liveness, Readiness and Startup Probes"; "Pod Lifecycle").

Lesson: a crashed instance keeps failing 1/n of the traffic for health-check detection plus every cache's
staleness, so the TTL of a DNS or client-side cache, not the health checker, usually dominates — server-
side discovery with a watched endpoint list removes that term. Readiness keeps traffic off a cold
instance; liveness with too short an initial delay turns a slow start into a restart loop (use a
startupProbe or a longer initialDelaySeconds). Sources: Richardson, *Microservices Patterns* ch. 3
(client- vs server-side discovery); RFC 1035 §3.2.1 and RFC 2308 (TTL: how long a resolver may cache).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.services import DiscoveryClient, DiscoveryConfig, Registry
from models.services.probes import Kubelet, ProbeConfig, crash_loop_backoff
from simulator import NO_REPLY, Constant, Exponential, RpcError, Simulation
from simulator.runner import param, parameters

SLOW_ARMS = ("readiness + liveness", "no readiness probe", "liveness delay too short")


@parameters
class Params:
    instances: int = param(4, unit="instances", ge=2, le=100, help="service instances")
    clients: int = param(8, unit="clients", ge=1, le=200, help="clients, each with its own cache")
    rate: float = param(5.0, unit="req/s", gt=0, le=1e4, help="requests per second per client")
    ttls_s: tuple[float, ...] = param((1.0, 10.0, 30.0), unit="s", gt=0, le=3600,
                                     help="client-side arms: cache refresh period (DNS TTL)")
    check_intervals_s: tuple[float, ...] = param((1.0, 5.0), unit="s", gt=0, le=600,
                                                 help="registry health-check interval, one arm each")
    failure_threshold: int = param(3, unit="checks", ge=1, le=100, help="intervals without a good check to delist")
    router_refresh_s: float = param(0.5, unit="s", gt=0, le=600, help="server-side arm: the router's refresh")
    window_s: float = param(60.0, unit="s", gt=0, le=86_400, help="requests counted after the crash")
    trials: int = param(8, unit="crashes", ge=1, le=1000, help="independent crashes per arm")
    timeout_s: float = param(0.5, unit="s", gt=0, le=60, help="client request timeout")
    startup_s: float = param(40.0, unit="s", ge=0, le=3600, help="part 2: time a new instance needs to start")
    liveness_period_s: float = param(5.0, unit="s", ge=1, le=600, help="liveness periodSeconds")
    liveness_delay_s: float = param(60.0, unit="s", ge=0, le=3600, help="liveness initialDelaySeconds (good arm)")
    short_delay_s: float = param(10.0, unit="s", ge=0, le=3600, help="initialDelaySeconds in the too-short arm")
    slow_duration_s: float = param(240.0, unit="s", gt=0, le=86_400, help="part 2: simulated time")

    def __post_init__(self) -> None:
        worst = self.failure_threshold * max(self.check_intervals_s) + max(max(self.ttls_s), self.router_refresh_s)
        if worst >= self.window_s:
            raise ValueError(f"window_s must exceed the worst exposure k*h + R = {worst:g} s, got {self.window_s}")


QUICK = Params(ttls_s=(1.0, 10.0, 30.0), trials=4, slow_duration_s=200.0)


def expected_exposure_s(k: int, h: float, refresh_s: float) -> float:
    """Mean time from a crash until a cache drops the dead instance: (k - 1/2) h + R / 2."""
    return (k - 0.5) * h + refresh_s / 2


def expected_failed_fraction(p: Params, h: float, refresh_s: float) -> float:
    """(1/n) E[exposure] / window: the share of requests after a crash that go to the dead instance."""
    return expected_exposure_s(p.failure_threshold, h, refresh_s) / p.instances / p.window_s


def _instances(sim: Simulation, p: Params) -> list:
    nodes = [sim.node(f"inst-{i}") for i in range(p.instances)]
    for nd in nodes:
        nd.on("get", lambda msg: "ok")
    return nodes


def _client_loop(sim: Simulation, name: str, p: Params, pick_from, rate: float, until: float) -> None:
    """Poisson requests from ``name`` to ``pick_from()`` (a node name, or None when nothing is known)."""
    node = sim.nodes.get(name) or sim.node(name)
    gap = sim.sampler(Exponential(1.0 / rate), f"{name}.arrivals")
    u = sim.uniforms(f"{name}.pick")
    log = sim.metrics

    def arrive() -> None:
        if sim.now >= until:
            return
        target = pick_from(u())
        if target is not None:
            rid = log.begin(name, target, "get", sim.now)
            node.call(target, "get", None, p.timeout_s, lambda o, v, rid=rid: log.end(rid, sim.now, o))
        sim.at(gap(), arrive)
    sim.at(gap(), arrive)


def crash_trial(p: Params, seed: int, h: float, mode: str, refresh_s: float) -> dict:
    """One crash. ``mode``: "client" (each client caches for ``refresh_s``) or "server" (a router does)."""
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0005))
    nodes = _instances(sim, p)
    reg = Registry(sim, config=DiscoveryConfig(ttl_s=p.failure_threshold * h, check_interval_s=h,
                                               check_timeout_s=min(0.25, h / 2)))
    for nd in nodes:
        reg.register("svc", nd)
    phase = sim.uniforms("discovery.phases")
    t_crash = p.failure_threshold * h + 2 * refresh_s + h * phase()  # uniform phase against the checks
    dead = nodes[0].name
    end = t_crash + p.window_s
    exposure: dict[int, float] = {}

    def watcher(i: int):
        def changed(insts: list[str]) -> None:
            if sim.now > t_crash and dead not in insts and i not in exposure:
                exposure[i] = sim.now - t_crash
        return changed

    caches: list[DiscoveryClient] = []
    n_caches = p.clients if mode == "client" else 1
    for i in range(n_caches):
        host = sim.node(f"client-{i}" if mode == "client" else "router")

        def start(host=host, i=i) -> None:
            caches.append(DiscoveryClient(host, "svc", refresh_s=refresh_s, on_change=watcher(i)))
        sim.at(refresh_s * phase(), start)  # each cache at its own phase

    def chooser(dc_index: int):
        def pick(u: float):
            if dc_index >= len(caches) or not caches[dc_index].instances:
                return None
            insts = caches[dc_index].instances
            return insts[int(u * len(insts))]
        return pick

    if mode == "server":
        router = sim.nodes["router"]
        fwd_u = sim.uniforms("router.pick")

        def forward(msg):
            pick = chooser(0)(fwd_u())
            if pick is None:
                raise RpcError("503: no instances known yet")
            router.call(pick, "get", None, p.timeout_s, lambda o, v: router.reply(msg, v, o))
            return NO_REPLY
        router.on("get", forward)
        for i in range(p.clients):
            _client_loop(sim, f"client-{i}", p, lambda u: "router", p.rate, end)
    else:
        for i in range(p.clients):
            _client_loop(sim, f"client-{i}", p, chooser(i), p.rate, end)
    sim.at(t_crash, nodes[0].crash)
    sim.run(until=end + 2 * p.timeout_s)
    df = sim.metrics.requests()
    after = df[(df.start >= t_crash) & (df.start < end)]
    return {"requests": len(after), "failed": int((after.outcome != "ok").sum()),
            "exposure_s": float(np.mean(list(exposure.values()))) if len(exposure) == n_caches else math.nan}


def crash_summary(p: Params, seed: int, h: float, mode: str, refresh_s: float) -> dict:
    trials = [crash_trial(p, seed * 1000 + t, h, mode, refresh_s) for t in range(p.trials)]
    req = sum(t["requests"] for t in trials)
    failed = sum(t["failed"] for t in trials)
    exp = np.array([t["exposure_s"] for t in trials])
    # Per-trial exposure varies with the crash phase (Var h^2/12) and each cache's phase (R^2/12 over caches)
    n_c = p.clients if mode == "client" else 1
    se_exp = math.sqrt((h ** 2 / 12 + refresh_s ** 2 / 12 / n_c) / p.trials)
    return {"discovery": "client-side" if mode == "client" else "server-side", "check_interval_s": h,
            "cache_refresh_s": refresh_s, "requests": req, "failed_fraction": failed / req,
            "expected_failed_fraction": expected_failed_fraction(p, h, refresh_s),
            "exposure_s": float(exp.mean()), "expected_exposure_s": expected_exposure_s(p.failure_threshold, h,
                                                                                       refresh_s),
            "exposure_se_s": se_exp}


def restart_times(p: Params, delay_s: float) -> list[float]:
    """Kill times of a container that never comes up before its liveness probe gives up (closed form)."""
    k, h, out, start = p.failure_threshold, p.liveness_period_s, [], 0.0
    probe_timeout = 1.0
    while True:
        kill = start + delay_s + (k - 1) * h + probe_timeout
        if kill > p.slow_duration_s:
            return out
        out.append(kill)
        start = kill + crash_loop_backoff(len(out))


def slow_start(p: Params, seed: int, arm: str) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.0005))
    nodes = _instances(sim, p)
    reg = Registry(sim, config=DiscoveryConfig(ttl_s=p.failure_threshold * 1.0, check_interval_s=1.0,
                                               check_timeout_s=0.25))
    for nd in nodes[1:]:
        reg.register("svc", nd)
    new = sim.node("inst-new")
    boot = {"up_at": 0.0}

    def get(msg):
        if sim.now < boot["up_at"]:
            raise RpcError("503: not listening yet")
        return "ok"
    new.on("get", get)
    new.on("__live__", lambda msg: True if sim.now >= boot["up_at"] else NO_REPLY)
    ready = (lambda: sim.now >= boot["up_at"]) if arm != "no readiness probe" else None
    reg.register("svc", new, ready=ready, listed_at_once=arm == "no readiness probe")
    delay = p.short_delay_s if arm == "liveness delay too short" else p.liveness_delay_s
    kube = Kubelet(sim, new, ProbeConfig(initial_delay_s=delay, period_s=p.liveness_period_s,
                                         failure_threshold=p.failure_threshold),
                   on_start=lambda: boot.__setitem__("up_at", sim.now + p.startup_s))
    caches = []
    listed_at: list[float] = []
    for i in range(p.clients):
        host = sim.node(f"client-{i}")

        def seen(insts, i=i):
            if i == 0 and "inst-new" in insts and not listed_at:
                listed_at.append(sim.now)
        caches.append(DiscoveryClient(host, "svc", refresh_s=1.0, on_change=seen))

        def pick(u, dc=caches[-1]):
            return dc.instances[int(u * len(dc.instances))] if dc.instances else None
        _client_loop(sim, f"client-{i}", p, pick, p.rate, p.slow_duration_s)
    sim.run(until=p.slow_duration_s + 1)
    df = sim.metrics.requests()
    to_new = df[df.target == "inst-new"]
    return {"arm": arm, "requests": len(df), "failed": int((df.outcome != "ok").sum()),
            "requests_to_new": len(to_new), "restarts": len(kube.restarts),
            "listed_at_s": listed_at[0] if listed_at else math.nan,
            "expected_restarts": len(restart_times(p, delay)) if ProbeConfig(
                initial_delay_s=delay, period_s=p.liveness_period_s,
                failure_threshold=p.failure_threshold).kills_slow_start(p.startup_s) else 0,
            "expected_failed": p.rate * p.clients * p.startup_s / p.instances if arm == "no readiness probe" else 0.0}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for h in p.check_intervals_s:
        for ttl in p.ttls_s:
            rows.append(crash_summary(p, seed, h, "client", ttl))
        rows.append(crash_summary(p, seed, h, "server", p.router_refresh_s))
    slow = pd.DataFrame([slow_start(p, seed, arm) for arm in SLOW_ARMS])
    return {"summary": pd.DataFrame(rows), "slow_start": slow}


def validate(quick: bool = True) -> list:
    from simulator.runner.checks import Check

    p = Params(trials=6 if quick else 40, clients=8, rate=2.0)
    h, ttl = 1.0, 10.0
    r = crash_summary(p, 1, h, "client", ttl)
    se_frac = math.sqrt(r["expected_failed_fraction"] / r["requests"]) + \
        r["exposure_se_s"] / p.instances / p.window_s
    return [
        Check(source="closed form: detection (k - 1/2) h + cache staleness R/2 (Consul-style TTL check, DNS TTL)",
              setup=f"{p.instances} instances, k = {p.failure_threshold}, h = {h:g} s, client cache R = {ttl:g} s, "
                    f"{p.trials} crashes",
              quantity="mean exposure after a crash (s)", published=r["expected_exposure_s"],
              measured=r["exposure_s"], tolerance=4 * r["exposure_se_s"] + 0.05,
              why="4 SE of uniform crash and cache phases (Var h²/12 + R²/(12 caches)) per crash, +50 ms for "
                  "network round trips"),
        Check(source="closed form: (1/n) E[exposure] / window",
              setup=f"same; requests counted for {p.window_s:g} s after the crash",
              quantity="fraction of requests failing", published=r["expected_failed_fraction"],
              measured=r["failed_fraction"], tolerance=4 * se_frac,
              why="4 x (Poisson SE of the failure count + the exposure's SE scaled by 1/(n window))"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    c = results["summary"]
    if "seed" in c:
        c = c.groupby(["discovery", "check_interval_s", "cache_refresh_s"], as_index=False).mean(numeric_only=True)
    s = results["slow_start"]
    if "seed" in s:
        s = s.groupby("arm", as_index=False, sort=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1.6, 1]})
    xs = np.linspace(0, max(p.ttls_s) * 1.05, 50)
    for h, g in c.groupby("check_interval_s"):
        cl = g[g.discovery == "client-side"]
        line, = a1.plot(cl.cache_refresh_s, 100 * cl.failed_fraction, "o", ms=7,
                        label=f"client-side cache, health check every {h:g} s")
        a1.plot(xs, [100 * expected_failed_fraction(p, h, x) for x in xs], "--", color=line.get_color(), lw=1)
        sv = g[g.discovery == "server-side"]
        a1.plot(sv.cache_refresh_s, 100 * sv.failed_fraction, "*", ms=14, color=line.get_color(),
                label=f"server-side (router watch {p.router_refresh_s:g} s), check every {h:g} s")
    a1.set(xlabel="cache refresh period R = DNS / client-cache TTL (s)",
           ylabel=f"requests failing in the {p.window_s:g} s after a crash (%)",
           title=f"dashed: (1/n)·((k − ½)h + R/2)/window, n = {p.instances}, k = {p.failure_threshold}")
    a1.set_ylim(bottom=0)
    a1.legend(fontsize=8, loc="upper left")
    y = np.arange(len(s))
    a2.barh(y, s.failed, color=["tab:green", "tab:red", "tab:orange"][:len(s)])
    for i, r in s.reset_index(drop=True).iterrows():
        note = (f" {r.failed:.0f} failed; listed at {r.listed_at_s:.0f} s" if math.isfinite(r.listed_at_s)
                else f" {r.failed:.0f} failed; never ready, {r.restarts:.0f} restarts")
        a2.text(r.failed, i, note, va="center", fontsize=8)
    a2.set_yticks(y, s.arm)
    a2.invert_yaxis()
    a2.set_xlim(0, max(10.0, s.failed.max() * 2.2))
    a2.set(xlabel="failed requests", title=f"a new instance needing {p.startup_s:g} s to start")
    fig.suptitle("Service discovery: a crashed instance keeps getting 1/n of the traffic for detection + cache TTL;\n"
                 "readiness keeps traffic off a starting instance, a too-early liveness probe kills it in a loop")
    return {"service_discovery": fig}
