"""Latency and service-time distributions, sampled in batches.

Every distribution is a frozen dataclass (a value: printable, comparable, JSON-able via
``to_dict``) that validates its parameters at construction. ``sampler(rng)`` returns a
zero-argument callable that hands out one float per call from a buffer refilled by a single
vectorised numpy draw, so the hot path costs a list pop, not a numpy call per sample.

Batches are adaptive: the first refill draws ``FIRST_BATCH`` (4) samples and each refill
doubles it, up to ``BATCH`` (4096). A world of 10,000 nodes that each serve a handful of
requests then holds a few dozen samples per node, not 4,096 (~130 KB as Python floats), while
a busy stream reaches full batches after a few hundred samples.

The values a sampler hands out do not depend on the batch sizes: every draw here consumes its
generator sample by sample (numpy's vectorised ``random``/``uniform``/``exponential``/
``normal``/``lognormal``/``pareto`` are sequential loops, ziggurat rejections included), so
batches of 16, 32, … concatenate to the same sequence as one large draw. ``Normal`` keeps its
non-negative draws in order and ``Empirical`` indexes with uniform doubles to keep this
property; ``Mixture`` picks and draws components on child streams spawned from its stream.
(These three changed their sequences once, when batches became adaptive; the laws did not.)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

BATCH = 4096  # the largest refill
FIRST_BATCH = 4  # the first refill; each later one doubles, up to BATCH


def buffered(draw: Callable[[int], np.ndarray], batch: int = BATCH, first: int = FIRST_BATCH) -> Callable[[], float]:
    """A ``() -> float`` handing out, one by one, the values of successive ``draw(n)`` calls,
    with ``n`` starting at ``first`` and doubling on each refill up to ``batch``.

    :func:`buffered_count` gives the number of values drawn but not yet handed out (memory, tests).
    """
    buf: list[float] = []
    if batch is BATCH and first is FIRST_BATCH:  # the defaults (every kernel sampler): valid, first < batch
        refill = _Refill(draw, buf, first, batch)
    else:
        if not (isinstance(batch, int) and batch >= 1 and isinstance(first, int) and first >= 1):
            raise ValueError(f"batch and first must be integers >= 1, got batch={batch!r}, first={first!r}")
        refill = _Refill(draw, buf, min(first, batch), batch)

    # The buffer, its pop and the refill are default arguments, not closure cells: fast locals
    # on the hot path, and 4 fewer objects per sampler for the cyclic GC to track (a world of
    # 100,000 nodes has 100,000 service samplers). Never pass arguments to a sampler.
    def sample(buf=buf, pop=buf.pop, refill=refill) -> float:
        if not buf:
            refill()
        return pop()

    return sample


def buffered_count(sample: Callable[[], float]) -> int:
    """How many values ``sample`` (any sampler made here) has drawn but not yet handed out.
    (Not an attribute of the sampler: a function's attribute dict costs ~250 bytes per sampler.)"""
    own = getattr(sample, "buffered", None)  # Constant's and Mixture's samplers say it themselves
    return own() if own is not None else len(sample.__defaults__[0])


class _Refill:
    """Refills a sampler's buffer with the next ``draw(size)`` values; ``size`` doubles up to ``batch``."""

    __slots__ = ("draw", "buf", "size", "batch")

    def __init__(self, draw: Callable[[int], np.ndarray], buf: list[float], size: int, batch: int) -> None:
        self.draw, self.buf, self.size, self.batch = draw, buf, size, batch

    def __call__(self) -> None:
        size = self.size
        # Reversed so that pop() (O(1) from the end) yields draws in numpy's order.
        self.buf.extend(self.draw(size)[::-1].tolist())
        if size < self.batch:
            self.size = min(2 * size, self.batch)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _finite_nonneg(name: str, value: float) -> None:
    _check(
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
        f"{name} must be a finite number >= 0, got {value!r}",
    )


class Distribution:
    """Base class: subclasses implement ``draw(rng, n) -> ndarray`` of non-negative floats."""

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @property
    def mean(self) -> float:
        """Closed-form mean (``nan`` where none is implemented)."""
        return math.nan

    def sampler(self, rng: np.random.Generator, batch: int = BATCH, first: int = FIRST_BATCH) -> Callable[[], float]:
        """A fast ``() -> float`` drawing from ``rng`` in batches growing from ``first`` to ``batch``."""
        return buffered(partial(self.draw, rng), batch, first)

    def to_dict(self) -> dict:
        d = {"type": type(self).__name__}
        d.update(self.__dict__)
        return d

    @staticmethod
    def from_dict(d: dict) -> Distribution:
        d = dict(d)
        kind = d.pop("type")
        cls = _REGISTRY.get(kind)
        if cls is None:
            raise ValueError(f"unknown distribution type {kind!r}; allowed: {sorted(_REGISTRY)}")
        if cls is Mixture:
            d["components"] = [(w, Distribution.from_dict(c)) for w, c in d["components"]]
        return cls(**d)


@dataclass(frozen=True)
class Constant(Distribution):
    value: float

    def __post_init__(self) -> None:
        _finite_nonneg("Constant.value", self.value)

    def draw(self, rng, n):
        return np.full(n, float(self.value))

    def sampler(self, rng, batch=BATCH, first=FIRST_BATCH):
        v = float(self.value)
        sample = lambda: v
        sample.buffered = lambda: 0
        return sample

    @property
    def mean(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def __post_init__(self) -> None:
        _finite_nonneg("Uniform.low", self.low)
        _finite_nonneg("Uniform.high", self.high)
        _check(self.high >= self.low, f"Uniform.high must be >= low ({self.low}), got {self.high}")

    def draw(self, rng, n):
        return rng.uniform(self.low, self.high, n)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential with the given mean (seconds), i.e. rate = 1 / mean."""

    mean_s: float

    def __post_init__(self) -> None:
        _check(
            isinstance(self.mean_s, (int, float)) and math.isfinite(self.mean_s) and self.mean_s > 0,
            f"Exponential.mean_s must be a finite number > 0, got {self.mean_s!r}",
        )

    def draw(self, rng, n):
        return rng.exponential(self.mean_s, n)

    @property
    def mean(self) -> float:
        return float(self.mean_s)


@dataclass(frozen=True)
class Normal(Distribution):
    """Normal(mu, sigma) truncated at 0 by rejection (the mean is of the truncated law)."""

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        _check(math.isfinite(self.mu), f"Normal.mu must be finite, got {self.mu!r}")
        _finite_nonneg("Normal.sigma", self.sigma)
        _check(
            self.sigma > 0 or self.mu >= 0,
            f"Normal with sigma=0 needs mu >= 0, got mu={self.mu}",
        )
        _check(
            self.sigma == 0 or self.mu / self.sigma > -5,
            f"Normal.mu/sigma must be > -5 (else truncation at 0 rejects almost all draws), "
            f"got {self.mu}/{self.sigma}",
        )

    def draw(self, rng, n):
        # The first n non-negative values of the generator's normal sequence, in order: the
        # last batch of each round is all kept when the loop ends, so the generator stops just
        # after the n-th kept value and consecutive draws concatenate like one draw.
        out = rng.normal(self.mu, self.sigma, n)
        out = out[out >= 0]
        while out.size < n:
            more = rng.normal(self.mu, self.sigma, n - out.size)
            out = np.concatenate((out, more[more >= 0]))
        return out

    @property
    def mean(self) -> float:
        if self.sigma == 0:
            return float(self.mu)
        from scipy.stats import truncnorm

        a = -self.mu / self.sigma
        return float(truncnorm.mean(a, math.inf, loc=self.mu, scale=self.sigma))


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Lognormal given its median (seconds) and sigma (of the underlying normal)."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.median) and self.median > 0,
            f"LogNormal.median must be a finite number > 0, got {self.median!r}",
        )
        _finite_nonneg("LogNormal.sigma", self.sigma)

    def draw(self, rng, n):
        return rng.lognormal(math.log(self.median), self.sigma, n)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True)
class Pareto(Distribution):
    """Pareto (Type I) with minimum ``scale`` and tail index ``alpha``: heavy-tailed.

    P(X > x) = (scale / x) ** alpha for x >= scale; the mean is finite only for alpha > 1.
    """

    scale: float
    alpha: float

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.scale) and self.scale > 0,
            f"Pareto.scale must be a finite number > 0, got {self.scale!r}",
        )
        _check(
            math.isfinite(self.alpha) and self.alpha > 0,
            f"Pareto.alpha must be a finite number > 0, got {self.alpha!r}",
        )

    def draw(self, rng, n):
        return self.scale * (1.0 + rng.pareto(self.alpha, n))

    @property
    def mean(self) -> float:
        return self.alpha * self.scale / (self.alpha - 1) if self.alpha > 1 else math.inf


@dataclass(frozen=True)
class Empirical(Distribution):
    """Resamples (with replacement) from observed samples."""

    samples: tuple[float, ...]

    def __init__(self, samples: Sequence[float]) -> None:
        arr = np.asarray(samples, dtype=float)
        _check(arr.ndim == 1 and arr.size > 0, "Empirical.samples must be a non-empty 1-D sequence")
        _check(
            bool(np.all(np.isfinite(arr)) and np.all(arr >= 0)),
            "Empirical.samples must all be finite and >= 0",
        )
        object.__setattr__(self, "samples", tuple(arr.tolist()))

    def draw(self, rng, n):
        # Indexed by uniform doubles (one per sample) rather than rng.choice, whose 32-bit
        # buffered integers make a batch's end depend on its size.
        arr = np.asarray(self.samples)
        return arr[np.minimum((rng.random(n) * arr.size).astype(np.intp), arr.size - 1)]

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))


@dataclass(frozen=True)
class Mixture(Distribution):
    """A weighted mixture, e.g. ``Mixture([(0.99, fast), (0.01, slow)])``."""

    components: tuple[tuple[float, Distribution], ...] = field(default=())

    def __init__(self, components: Sequence[tuple[float, Distribution]]) -> None:
        comps = tuple((float(w), d) for w, d in components)
        _check(len(comps) > 0, "Mixture.components must be non-empty")
        for w, d in comps:
            _check(math.isfinite(w) and w > 0, f"Mixture weights must be > 0, got {w}")
            _check(isinstance(d, Distribution), f"Mixture component must be a Distribution, got {d!r}")
        object.__setattr__(self, "components", comps)

    @property
    def weights(self) -> np.ndarray:
        w = np.array([c[0] for c in self.components])
        return w / w.sum()

    def draw(self, rng, n):
        which = rng.choice(len(self.components), size=n, p=self.weights)
        out = np.empty(n)
        for i, (_, d) in enumerate(self.components):
            mask = which == i
            k = int(mask.sum())
            if k:
                out[mask] = d.draw(rng, k)
        return out

    def sampler(self, rng, batch=BATCH, first=FIRST_BATCH):
        # draw() interleaves the choice and the components' draws on one generator, in an order
        # that depends on n; here the choice and each component get their own child stream
        # (``rng.spawn``: derived from rng's seed, not its state), so batch sizes don't matter.
        children = rng.spawn(len(self.components) + 1)
        cdf = np.cumsum(self.weights).tolist()
        cdf[-1] = 1.0
        u = buffered(children[0].random, batch, first)
        parts = [d.sampler(g, batch, first) for (_, d), g in zip(self.components, children[1:])]
        if len(parts) == 2:
            p0, a, b = cdf[0], parts[0], parts[1]
            sample = lambda: a() if u() < p0 else b()
        else:
            sample = lambda: parts[bisect_right(cdf, u())]()
        sample.buffered = lambda: buffered_count(u) + sum(buffered_count(p) for p in parts)
        return sample

    @property
    def mean(self) -> float:
        return float(sum(w * d.mean for w, (_, d) in zip(self.weights, self.components)))

    def to_dict(self) -> dict:
        return {"type": "Mixture", "components": [[w, d.to_dict()] for w, d in self.components]}


_REGISTRY = {c.__name__: c for c in (Constant, Uniform, Exponential, Normal, LogNormal, Pareto, Empirical, Mixture)}


def as_distribution(value: float | Distribution, name: str) -> Distribution:
    """Accept a plain number (a constant) or a Distribution; reject anything else clearly."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _finite_nonneg(name, float(value))
        return Constant(float(value))
    raise ValueError(f"{name} must be a Distribution or a number >= 0, got {value!r}")
