"""experiments/three_timeouts.py and models/edge/keepalive.py: a proxy idle timeout I longer than the backend's
keep-alive K gives 502s at q/(1+q), q = e^{-r(K-2d)} - e^{-rI}; the fixes (K > I, or I < K - 2d) give none; a
connect timeout bounds an unreachable host, only a request timeout bounds a slow one."""

import math

import pytest

from experiments import three_timeouts as m
from models.edge import KeepAliveBackend, KeepAlivePool, stale_connection_probability
from simulator import Constant, Simulation


def _gap_outcome(gap: float, K: float = 5.0, I: float = 60.0, d: float = 0.01) -> str:
    """Two requests on one connection, the second written ``gap`` s after the first's response arrived."""
    sim = Simulation(seed=1)
    sim.network(latency=Constant(d))
    KeepAliveBackend(sim, "b", keep_alive_s=K, work_s=0.0)
    pool = KeepAlivePool(sim, idle_timeout_s=I)
    c = sim.node("c")
    out = []

    def second(o, v):
        sim.at(gap, lambda: pool.call(c, "b", "http", None, lambda o2, v2: out.append(o2)))

    pool.call(c, "b", "http", None, second)
    sim.run(until=gap + 10)
    return out[0]


def test_the_race_window_is_k_minus_2d_to_i():
    K, I, d = 5.0, 60.0, 0.01
    assert _gap_outcome(K - 2 * d - 0.001) == "ok"      # arrives at the backend just before it closes
    assert _gap_outcome(K - 2 * d + 0.001) == "error"   # written before K, but lands after the close: RST, 502
    assert _gap_outcome(30.0) == "error"
    assert _gap_outcome(I + 0.001) == "ok"              # the proxy closed it itself and reconnects
    assert _gap_outcome(30.0, K=65.0) == "ok"           # the fix: the backend's keep-alive is the longer one


@pytest.fixture(scope="module")
def quick():
    return m.run(m.QUICK, seed=2)


def test_502_rate_follows_the_closed_form(quick):
    s = quick["summary"]
    mis = s[s.arm == m.ARMS[0]]
    for _, r in mis.iterrows():
        se = math.sqrt(max(r.theory * (1 - r.theory), 1e-4) / r.requests)
        assert r.bad_gateway_rate == pytest.approx(r.theory, abs=4 * se + 1e-3)
    # quiet traffic suffers most: the peak sits near ln(I/K)/(I-K), a busy connection rarely idles for K
    peak = mis.loc[mis.bad_gateway_rate.idxmax(), "rate"]
    assert 0.3 * m.peak_rate(m.QUICK) < peak < 3 * m.peak_rate(m.QUICK)
    assert mis.bad_gateway_rate.max() > 0.3 and mis[mis.rate == max(m.QUICK.rates)].bad_gateway_rate.iloc[0] < 0.02
    assert (s[s.arm != m.ARMS[0]].bad_gateway_rate == 0).all()  # both fixes: the window is empty


def test_connect_vs_request_timeout(quick):
    t = quick["timeouts"].set_index(["arm", "host"])
    only, conn, tight = m.TIMEOUT_ARMS
    p = m.QUICK
    assert t.loc[(only, "unreachable"), "mean_time_s"] == pytest.approx(p.request_timeout_s, abs=1e-6)
    assert t.loc[(conn, "unreachable"), "mean_time_s"] == pytest.approx(p.connect_timeout_s, abs=1e-6)
    assert t.loc[(conn, "unreachable"), "outcome"] == "unreachable"  # definite: the request was never sent
    assert t.loc[(conn, "slow"), "ok"] == 1.0 and t.loc[(conn, "slow"), "mean_time_s"] > p.slow_s  # not its job
    assert t.loc[(tight, "slow"), "mean_time_s"] == pytest.approx(p.tight_request_s, abs=0.01)
    assert t.loc[(tight, "slow"), "outcome"] == "timeout"
    assert (t.xs("healthy", level="host").ok == 1.0).all()


def test_closed_form_helper():
    q, pi = stale_connection_probability(0.05, 5.0, 60.0)
    assert q == pytest.approx(math.exp(-0.25) - math.exp(-3.0))
    assert pi == pytest.approx(q / (1 + q))
    assert stale_connection_probability(0.05, 5.0, 4.0) == (0.0, 0.0)


def test_validate_rows_pass():
    rows = m.validate(True)
    assert all(c.passed for c in rows), [(c.quantity, c.published, c.measured) for c in rows]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="fixed_idle_s"):
        m.Params(fixed_idle_s=6.0)
    with pytest.raises(ValueError, match="lb_idle_s"):
        m.Params(lb_idle_s=0)
    with pytest.raises(ValueError, match="idle_timeout_s"):
        KeepAlivePool(Simulation(seed=1), idle_timeout_s=0)
