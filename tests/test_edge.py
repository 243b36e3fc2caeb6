"""models.edge: Envoy's outlier-detection schedule and the API gateway's routing, limits, timeouts and
aggregation, each checked against its definition."""

from __future__ import annotations

import math

import pytest

from models.edge import ApiGateway, OutlierCaller, OutlierDetectionConfig, OutlierDetector, Route
from models.resilience import TokenBucketConfig
from simulator import Exponential, Simulation

# -- outlier detection (Envoy: consecutive_5xx, interval, base_ejection_time x k, max_ejection_percent) --------


def test_ejected_exactly_after_consecutive_5xx_and_success_resets():
    d = OutlierDetector(OutlierDetectionConfig(consecutive_5xx=5, max_ejection_percent=100), ["a", "b"])
    for _ in range(4):
        d.record("a", "error", 0.0)
    assert not d.is_ejected("a")
    d.record("a", "ok", 0.0)  # a success resets the streak
    for _ in range(4):
        d.record("a", "timeout", 0.0)  # local-origin failures count as 5xx
    assert not d.is_ejected("a")
    d.record("a", "error", 0.0)  # the 5th in a row
    assert d.is_ejected("a") and d.healthy() == ["b"]


def test_kth_ejection_lasts_k_times_base_at_interval_granularity():
    interval, base = 1.0, 3.0
    d = OutlierDetector(OutlierDetectionConfig(consecutive_5xx=3, interval_s=interval, base_ejection_time_s=base,
                                               max_ejection_percent=100, max_ejection_time_s=1e9), ["bad", "ok"])
    t = 0.0
    while t < 80:  # the host always fails: it is re-ejected as soon as it is back
        t += interval
        d.tick(t)
        if not d.is_ejected("bad"):
            for _ in range(3):
                d.record("bad", "error", t + 0.25)
    ev = d.events_frame()
    ej, un = ev[ev.event == "eject"], ev[ev.event == "uneject"]
    assert len(un) >= 5
    for k in range(1, 6):
        start = float(ej[ej.ejection == k].time.iloc[0])
        end = float(un[un.ejection == k].time.iloc[0])
        # un-ejected at the first tick at or after start + k*base: lasts k*base plus less than one interval
        assert k * base <= end - start < k * base + interval, (k, start, end)


def test_max_ejection_time_caps_the_schedule():
    d = OutlierDetector(OutlierDetectionConfig(consecutive_5xx=1, interval_s=1, base_ejection_time_s=10,
                                               max_ejection_time_s=25, max_ejection_percent=100), ["h", "g"])
    d.times_ejected["h"] = 7
    d.record("h", "error", 0.0)
    assert d.ejected_until["h"] == pytest.approx(25.0)


@pytest.mark.parametrize("hosts,pct,cap", [(10, 30.0, 3), (5, 10.0, 1), (4, 50.0, 2)])
def test_never_more_than_max_ejection_percent(hosts, pct, cap):
    # cap = max(1, floor(hosts * pct / 100)): Envoy always ejects the first outlier, then only while the
    # ejected share stays within max_ejection_percent.
    names = [f"h{i}" for i in range(hosts)]
    d = OutlierDetector(OutlierDetectionConfig(consecutive_5xx=2, interval_s=1, base_ejection_time_s=2,
                                               max_ejection_percent=pct), names)
    most = 0
    for step in range(60):  # every host fails all the time
        d.tick(float(step))
        for h in names:
            d.record(h, "error", step + 0.5)
        most = max(most, len(d.ejected_until))
    assert most == cap == max(1, math.floor(hosts * pct / 100))
    assert d.skipped > 0


def test_sidecar_ejects_the_failing_host_and_stops_sending_it_traffic():
    sim = Simulation(seed=3)
    sim.network(latency=0.001)
    hosts = [f"b-{i}" for i in range(5)]
    for h in hosts:
        n = sim.node(h)
        if h == "b-0":
            n.on("get", lambda m, n=n: n.reply(m, "500", "error"))
        else:
            n.on("get", lambda m: "fine")
    cfg = OutlierDetectionConfig(consecutive_5xx=5, interval_s=1.0, base_ejection_time_s=30.0,
                                 max_ejection_percent=20)
    sc = OutlierCaller(sim, hosts, config=cfg, timeout_s=1.0)
    client = sim.node("c")
    outcomes = []
    gap = sim.sampler(Exponential(0.01), "t.gaps")

    def send():
        if sim.now < 10:
            sc.call(client, "backend", "get", None, lambda o, v: outcomes.append((sim.now, o)))
            sim.at(gap(), send)

    sim.at(0.0, send)
    sim.run(until=12)
    errs = [t for t, o in outcomes if o != "ok"]
    # round robin: b-0 gets every 5th request, so its 5th error comes after ~25 requests (~0.25 s)
    assert len(errs) == 5
    first = sc.detector.events[0]
    assert first[1] == "b-0" and first[2] == "eject" and first[0] < 1.0
    assert max(errs) <= first[0] + 1e-9


# -- API gateway -----------------------------------------------------------------------------------


def _world(seed=1, slow_s=2.0):
    sim = Simulation(seed=seed)
    sim.network(latency=0.001)
    for name in ("users-0", "orders-0", "recs-0", "slow-0"):
        n = sim.node(name)
        if name == "slow-0":
            def slow(m, n=n):
                yield n.sleep(slow_s)
                return "late"
            n.on("get", slow)
        else:
            n.on("get", lambda m, name=name: f"from {name}")
    ups = {"users": ["users-0"], "orders": ["orders-0"], "recs": ["recs-0"], "slow": ["slow-0"]}
    return sim, ups


def _ask(sim, client, payload, out, key=None):
    client.call("gateway", "request", payload, 30.0,
                lambda o, v, t0=sim.now: out.append((key, o, v, sim.now - t0)))


def test_routing_by_longest_prefix_and_404():
    sim, ups = _world()
    ApiGateway(sim, ups, [Route("/", service="users"), Route("/orders", service="orders")])
    c, out = sim.node("c"), []
    for path in ("/orders/7", "/users/1", "/ordersx"):
        _ask(sim, c, {"path": path}, out)
    sim.run(until=1)
    assert [v for _, _, v, _ in out] == ["from orders-0", "from users-0", "from orders-0"]


def test_per_key_token_bucket_holds():
    sim, ups = _world()
    rate, burst, T = 10.0, 5.0, 5.0
    gw = ApiGateway(sim, ups, [Route("/", service="users")], rate_limit=TokenBucketConfig(rate=rate, burst=burst),
                    key_limits={"gold": TokenBucketConfig(rate=40.0, burst=20.0)})
    c, out = sim.node("c"), []

    def sender(key):
        gap = sim.sampler(Exponential(1 / 200), f"t.{key}")  # 200 req/s offered per key, far above the limits

        def send():
            if sim.now < T:
                _ask(sim, c, {"path": "/", "api_key": key}, out, key)
                sim.at(gap(), send)
        return send

    for key in ("k1", "k2", "gold"):
        sim.at(0.0, sender(key))
    sim.run(until=T + 1)
    df = gw.requests()
    for key, (r, b) in {"k1": (rate, burst), "k2": (rate, burst), "gold": (40.0, 20.0)}.items():
        ok = int(((df.api_key == key) & (df.outcome == "ok")).sum())
        bound = b + r * T
        # a token bucket admits at most burst + rate*t; saturated by 20x the rate it admits nearly that many
        # (it loses < 1 token at each refill boundary only while empty: mean gap 5 ms vs 1/rate >= 25 ms)
        assert 0.9 * bound <= ok <= bound, (key, ok, bound)
    assert set(o for _, o, _, _ in out) == {"ok", "rejected"}


def test_aggregation_returns_partial_when_one_backend_is_down():
    sim, ups = _world()
    gw = ApiGateway(sim, ups, [Route("/home", aggregate=("users", "orders", "recs"), timeout_s=0.2)])
    sim.nodes["recs-0"].crash()
    c, out = sim.node("c"), []
    _ask(sim, c, {"path": "/home"}, out)
    sim.run(until=1)
    (_, outcome, value, latency), = out
    assert outcome == "ok" and value["partial"] and value["missing"] == ["recs"]
    assert set(value["parts"]) == {"users", "orders"}
    assert latency <= 0.2 + 0.01  # bounded by the route timeout (+ two 1 ms hops)
    assert bool(gw.requests().partial.iloc[0])
    for n in ("users-0", "orders-0"):
        sim.nodes[n].crash()
    _ask(sim, c, {"path": "/home"}, out)
    sim.run(until=2)
    assert out[-1][1] == "error"  # nothing came back: not a partial answer but a failure


def test_per_route_timeout_is_respected():
    sim, ups = _world(slow_s=2.0)
    ApiGateway(sim, ups, [Route("/slow", service="slow", timeout_s=0.1), Route("/patient", service="slow",
                                                                             timeout_s=5.0)])
    c, out = sim.node("c"), []
    _ask(sim, c, {"path": "/slow"}, out, "short")
    _ask(sim, c, {"path": "/patient"}, out, "long")
    sim.run(until=5)
    res = {k: (o, lat) for k, o, _, lat in out}
    assert res["short"][0] == "timeout" and 0.1 <= res["short"][1] <= 0.1 + 0.005  # + the client-gateway hops
    assert res["long"][0] == "ok" and res["long"][1] >= 2.0


def test_route_validation_names_the_field():
    with pytest.raises(ValueError, match="timeout_s"):
        Route("/x", service="a", timeout_s=0)
    with pytest.raises(ValueError, match="exactly one"):
        Route("/x")


# -- the experiment's lesson on its QUICK preset ------------------------------------------------------------------


def test_outlier_detection_lesson():
    from experiments import outlier_detection as m

    p = m.QUICK
    s = m.run(p, seed=4)["summary"].set_index("arm")
    n = p.instances
    # no protection: the sick instance's share 1/n of requests fails (binomial, ~3500 requests: sd ~0.007)
    assert s.loc["no protection", "error_rate_after_failure"] == pytest.approx(1 / n, abs=0.03)
    # client retries to a random instance: (1/n)^attempts fail; attempts per request 1 + 1/n + ... (geometric)
    r = s.loc["client retries"]
    assert r.error_rate_after_failure == pytest.approx((1 / n) ** p.attempts, abs=0.006)
    assert r.attempts_per_request == pytest.approx(sum((1 / n) ** k for k in range(p.attempts)), abs=0.03)
    # ejection: after consecutive_5xx errors at round robin, i.e. ~consecutive_5xx * n requests (< 1 s at 100 req/s)
    e = s.loc["outlier ejection"]
    assert e.time_to_eject_s < 3 * p.consecutive_5xx * n / p.rate
    # each ejection cycle costs exactly consecutive_5xx errors
    assert e.errors_after_failure == p.consecutive_5xx * e.ejections
    assert e.error_rate_after_failure < r.error_rate_after_failure
    assert e.attempts_per_request == 1.0
    assert s.loc["ejection + retries", "errors_after_failure"] == 0
