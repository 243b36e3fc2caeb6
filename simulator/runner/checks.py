"""One row of ``splitbrain validate``: a published figure beside splitbrain's, with a verdict.

A reproduction is any function ``validate(quick: bool) -> list[Check]`` defined by an
experiment module (or by :mod:`simulator.runner.reproductions` for the kernel's queueing
results). The verdict is mechanical: the measured value must lie within ``tolerance`` of the
published one; ``why`` says where the tolerance comes from (sampling error, the precision a
figure can be read to, a deliberate difference of setup). A miss stays a miss: ``cause``
explains it; nothing is fitted to the published number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    source: str  # paper / post, and figure or table: "Ongaro & Ousterhout 2014, Fig. 16"
    setup: str  # the setup in a few words: "5 servers, timeouts 150-300 ms, ..."
    quantity: str  # what is compared: "median election time (ms)"
    published: float
    measured: float
    tolerance: float  # absolute, in the quantity's unit
    why: str  # where the tolerance comes from
    ci95: tuple[float, float] | None = None  # splitbrain's 95% CI, where replications give one
    cause: str = ""  # for a miss (or a known difference): why the figures differ

    @property
    def passed(self) -> bool:
        return math.isfinite(self.measured) and abs(self.measured - self.published) <= self.tolerance

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "MISS"


def mean_ci95(x) -> tuple[float, tuple[float, float]]:
    """Mean and Student-t 95% CI of replications ``x`` (at least two)."""
    import numpy as np
    from scipy.special import stdtrit  # Student t quantiles; scipy.stats takes 3x longer to import

    a = np.asarray(x, dtype=float)
    m = float(a.mean())
    if len(a) < 2:
        return m, (math.nan, math.nan)
    half = float(stdtrit(len(a) - 1, 0.975) * a.std(ddof=1) / math.sqrt(len(a)))
    return m, (m - half, m + half)
