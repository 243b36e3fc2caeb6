"""Kernel scaling: samplers hold few samples until used (batches start at FIRST_BATCH and
double up to BATCH), a named stream's values do not depend on batch sizes nor on other
streams, and the adaptive samplers still draw from the right laws. No timing assertions:
memory is checked by counting buffered samples (``buffered_count(sample)``)."""

import math

import numpy as np
import pytest

from models.services import PoissonClient
from simulator import Constant, Empirical, Exponential, LogNormal, Mixture, Normal, Pareto, Simulation, Uniform
from simulator.distributions import BATCH, FIRST_BATCH, buffered, buffered_count

DISTS = [
    Constant(0.003), Uniform(0.001, 0.005), Exponential(0.004), Normal(0.01, 0.004),
    Normal(0.001, 0.002),  # about 31% of raw draws rejected by the truncation at 0
    LogNormal(0.002, 0.5), Pareto(0.001, 3.5), Empirical([0.001, 0.002, 0.01]),
    Mixture([(0.99, Constant(0.001)), (0.01, Exponential(0.1))]),
    Mixture([(0.5, Exponential(0.001)), (0.3, Mixture([(0.5, Constant(0.002)), (0.5, Uniform(0, 1))])),
             (0.2, Normal(0.001, 0.002))]),
]


def _gen(seed: int = 3) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def test_ten_thousand_nodes_serving_one_request_each_hold_few_samples():
    """Each server's service sampler drew one batch of FIRST_BATCH and used one sample of it,
    so 10,000 servers hold (FIRST_BATCH - 1) * 10,000 samples, not ~4,095 * 10,000 (~1.3 GB as
    Python floats) as with fixed 4,096-sample batches."""
    k = 10_000
    sim = Simulation(seed=1)
    sim.network(latency=LogNormal(median=0.001, sigma=0.5))
    names = [f"s{i}" for i in range(k)]
    service = Exponential(0.004)
    pools = [sim.node(s).serve("get", service=service, workers=1) for s in names]
    assert sum(buffered_count(p.service) for p in pools) == 0  # nothing is drawn before first use
    client = sim.node("client")
    for i, s in enumerate(names):  # one request per server, spread over a second
        sim.at(i / k, lambda s=s: client.call(s, "get", timeout_s=1.0, callback=lambda o, v: None))
    sim.run(until=3.0)
    assert all(p.served == 1 for p in pools)
    assert sum(buffered_count(p.service) for p in pools) == k * (FIRST_BATCH - 1)
    # the shared latency sampler drew 2 * k samples: its buffer is bounded by what it used
    assert buffered_count(sim.net._default.latency) <= 2 * k + FIRST_BATCH


def test_streams_are_made_on_first_draw_and_constants_make_none():
    """A named stream's generator (~10-20 us and ~1 KB) is made on a sampler's first draw, not
    when the sampler is made; a constant never makes one. 1,000 idle nodes make no stream."""
    sim = Simulation(seed=1)
    for i in range(1000):
        sim.node(f"c{i}").serve("get", service=0.001)
    s = sim.node("s").serve("get", service=Exponential(0.004))
    assert sim.nodes["c7"]._pools["get"].service() == 0.001
    assert not [n for n in sim._streams if n.startswith("service.")]
    s.service()
    assert [n for n in sim._streams if n.startswith("service.")] == ["service.s.get"]


@pytest.mark.parametrize("dist", DISTS, ids=repr)
def test_a_lazily_made_stream_gives_the_numbers_of_one_made_at_once(dist):
    """Made on first draw, mid-way through another sampler's use of the same stream name, or
    eagerly with ``rng(name)``: the same values (a named stream depends on seed and name only)."""
    eager = dist.sampler(Simulation(seed=9).rng("service.x.get"))
    want = [eager() for _ in range(3000)]
    sim = Simulation(seed=9)
    lazy = sim.sampler(dist, "service.x.get")
    sim.rng("other")  # other streams made first shift nothing
    assert [lazy() for _ in range(3000)] == want


def test_a_default_clock_made_late_reads_as_if_made_with_its_node():
    sim = Simulation(seed=1)
    sim.run(until=0.1)
    n = sim.node("late")  # born at 0.1; its clock is made on first read, at 0.7
    sim.run(until=0.7)
    assert n.clock.now() == 0.1 + (sim.now - 0.1) * 1.0
    assert n.clock.error() == n.clock.now() - sim.now


@pytest.mark.parametrize("used", [0, 1, 3, 4, 5, 15, 16, 17, 100, 1000, 5000, 20_000])
def test_buffer_never_exceeds_what_was_used_nor_batch(used):
    """Refill sizes are 4, 8, 16, …: a refill of size s happens after 4 + … + s/2 = s - 4
    samples were used, so the buffer holds at most ``used + FIRST_BATCH`` and at most BATCH."""
    s = Exponential(1.0).sampler(_gen())
    for _ in range(used):
        s()
    assert buffered_count(s) <= min(used + FIRST_BATCH, BATCH)


@pytest.mark.parametrize("dist", DISTS, ids=repr)
def test_values_do_not_depend_on_batch_sizes(dist):
    """The same generator gives the same sequence with adaptive, fixed-small and fixed-large
    batches (and, except Mixture's child-stream sampler, the same as one large ``draw``)."""
    n = 9000  # spans refills of 4 … 4096 and then full batches
    seqs = []
    for batch, first in ((BATCH, FIRST_BATCH), (7, 7), (BATCH, BATCH), (100, 1)):
        s = dist.sampler(_gen(), batch=batch, first=first)
        seqs.append([s() for _ in range(n)])
    for other in seqs[1:]:
        assert other == seqs[0]
    if not isinstance(dist, Mixture):
        assert seqs[0] == dist.draw(_gen(), n).tolist()


def test_uniforms_follow_the_generator_order():
    sim = Simulation(seed=5)
    u = sim.uniforms("x")
    got = [u() for _ in range(5000)]
    assert got == Simulation(seed=5).rng("x").random(5000).tolist()


def test_same_seed_same_samples_and_streams_are_independent_of_other_use():
    def draws(seed: int, busy_other: bool) -> list[float]:
        sim = Simulation(seed=seed)
        mine = sim.sampler(LogNormal(0.002, 0.5), "service.a.get")
        other = sim.sampler(Exponential(0.004), "service.b.get")
        out = []
        for i in range(3000):
            if busy_other:
                for _ in range(i % 7):
                    other()
            out.append(mine())
        return out

    assert draws(7, False) == draws(7, True) == draws(7, True)
    assert draws(7, False) != draws(8, False)


@pytest.mark.parametrize("dist", [Exponential(0.004), LogNormal(0.002, 0.5), Normal(0.001, 0.002),
                                  Pareto(0.001, 3.5), Empirical([0.001, 0.002, 0.01]),
                                  Mixture([(0.9, Constant(0.001)), (0.1, Exponential(0.1))])], ids=repr)
def test_adaptive_sampler_mean(dist):
    """Sample mean of N = 50,000 draws within 5 standard errors (sd / sqrt(N)) of the closed form;
    5 SE makes a false failure ~1e-6 per case. Draws are taken through the refills 4 … 4096."""
    n = 50_000
    s = dist.sampler(_gen(11))
    xs = np.array([s() for _ in range(n)])
    assert (xs >= 0).all()
    assert abs(xs.mean() - dist.mean) < 5 * xs.std() / math.sqrt(n)


def test_mixture_and_empirical_frequencies():
    """Each component / value is picked with its probability, within 5 binomial SE."""
    n = 50_000
    m = Mixture([(0.7, Constant(1.0)), (0.2, Constant(2.0)), (0.1, Constant(3.0))]).sampler(_gen(2))
    e = Empirical([1.0, 2.0, 3.0, 4.0]).sampler(_gen(2))
    xm = np.array([m() for _ in range(n)])
    xe = np.array([e() for _ in range(n)])
    for v, p in ((1.0, 0.7), (2.0, 0.2), (3.0, 0.1)):
        assert abs((xm == v).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    for v in (1.0, 2.0, 3.0, 4.0):
        assert abs((xe == v).mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)


def test_poisson_client_run_is_bit_identical_for_the_same_seed():
    def run(seed: int):
        sim = Simulation(seed=seed)
        sim.network(latency=LogNormal(median=0.001, sigma=0.5), loss=0.01)
        names = [f"s{i}" for i in range(50)]
        for s in names:
            sim.node(s).serve("get", service=Exponential(0.004), workers=2)
        PoissonClient(sim, "c", names, rate=1000, timeout_s=0.05, limit=2000)
        sim.run(until=5)
        return sim.metrics.requests()

    a, b = run(3), run(3)
    assert a.equals(b)
    assert not a["end"].equals(run(4)["end"])


def test_buffered_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch and first"):
        buffered(_gen().random, batch=0)
    with pytest.raises(ValueError, match="batch and first"):
        buffered(_gen().random, first=0)
