"""experiments/service_communication.py: a shared HTTP/1.1 pool saturates at λ·S + the fast share = P (Little's
law) and takes the fast endpoint down; per-endpoint pools contain it; HTTP/2 raises the limit; one ordered stream
blocks everything; GraphQL's N+1 costs 1 + N calls and (1 + N) round trips, a DataLoader 2."""

import math

import pytest

from experiments import service_communication as m


@pytest.fixture(scope="module")
def quick():
    return m.run(m.QUICK, seed=3)


def test_pool_exhaustion_is_a_bulkhead_or_an_outage(quick):
    p = m.QUICK
    s = quick["summary"].set_index(["arm", "load"])
    sat = m.saturation_loads(p)
    shared, own, h2, grpc = m.ARMS
    below = [x for x in p.loads if x < 0.5 * sat[shared]]  # (nearer, M/D/P queueing already delays some)
    above = [x for x in p.loads if x > 1.25 * sat[shared]]  # past the transient in which the queue builds up
    assert below and above
    for x in below:  # far below saturation every transport but the ordered stream keeps the fast endpoint fast
        assert s.loc[(shared, x), "fast_within_slo"] > 0.97
    for x in above:  # past λS + fast share = P the FIFO wait is the deadline: fast requests wait behind slow ones
        assert s.loc[(shared, x), "fast_within_slo"] < 0.05
        assert s.loc[(shared, x), "mean_held"] == pytest.approx(p.pool_size, abs=0.05)  # the pool is full
    just = min(x for x in p.loads if x > sat[shared])
    assert s.loc[(shared, just), "fast_within_slo"] < 0.5
    for x in p.loads:
        assert s.loc[(own, x), "fast_within_slo"] > 0.97  # its own pool: the accidental bulkhead
        assert s.loc[(h2, x), "fast_within_slo"] > 0.97 and s.loc[(h2, x), "slow_availability"] > 0.99
        assert s.loc[(grpc, x), "fast_within_slo"] < 0.05  # one ordered stream: head-of-line blocking
        if x > 1.5 * sat[own]:  # (past the transient) the slow endpoint's own pool of P/2 is full and it alone suffers
            assert s.loc[(own, x), "slow_availability"] < 0.7
            assert s.loc[(own, x), "mean_held"] == pytest.approx(p.pool_size // 2, abs=0.05)


def test_littles_law_below_saturation(quick):
    p = m.QUICK
    r = quick["summary"].set_index(["arm", "load"]).loc[(m.ARMS[1], 0.2)]
    lam = 0.2 * p.pool_size / p.slow_s
    hold = p.slow_s + p.rtt_ms / 1e3 * math.exp(m.SIGMA ** 2 / 2)
    se = math.sqrt(lam * hold ** 2 / (p.duration_s - m.WARMUP_S))  # Poisson count of arrivals
    assert r.mean_held == pytest.approx(lam * hold, abs=4 * se)


def test_graphql_n_plus_one_and_dataloader(quick):
    g = quick["graphql"].set_index(["mode", "n"])
    seq, par, bat = m.MODES
    for n in m.QUICK.items:
        assert g.loc[(seq, n), "calls_per_query"] == 1 + n
        assert g.loc[(par, n), "calls_per_query"] == 1 + n
        assert g.loc[(bat, n), "calls_per_query"] == 2
        # closed forms; 2% is ~10 standard errors of 100 queries' log-normal hops (sigma 0.2)
        for mode in (seq, bat):
            assert g.loc[(mode, n), "mean_ms"] == pytest.approx(g.loc[(mode, n), "theory_ms"], rel=0.02)
    big = max(m.QUICK.items)
    assert g.loc[(seq, big), "mean_ms"] > 5 * g.loc[(bat, big), "mean_ms"]
    assert g.loc[(par, big), "mean_ms"] < g.loc[(seq, big), "mean_ms"] / 5  # parallel: latency, not load
    assert g.loc[(par, big), "backend_ms_per_query"] > 5 * g.loc[(bat, big), "backend_ms_per_query"]


def test_validate_rows_pass():
    rows = m.validate(True)
    assert len(rows) == 3 and all(c.passed for c in rows), [(c.quantity, c.published, c.measured) for c in rows]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="pool_size"):
        m.Params(pool_size=1)
    with pytest.raises(ValueError, match="loads"):
        m.Params(loads=(0.5, -1.0))
