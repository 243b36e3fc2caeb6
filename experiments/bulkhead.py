"""Do isolated worker pools (bulkheads) contain a slow dependency?

Setup: the frontend of the ``timeouts`` experiment, with no timeout on its db call: endpoint
``a`` calls the db, endpoint ``b`` does local work only, 200 req/s each; the db slows down
50x for a while. Arms: one shared pool of 20 workers, or isolated pools of 10 per endpoint
(Hystrix's thread-pool bulkhead).

Lesson: with a shared pool the requests stuck on the db take every worker and endpoint ``b``
fails with ``a``. With bulkheads only ``a``'s pool is exhausted; ``b`` stays fully
available — the failure is contained to the compartment that depends on the slow service.
"""

from __future__ import annotations

import math

import pandas as pd

from experiments._common import SlowDependencyParams
from models.services.scenarios import slow_dependency
from simulator.plots import availability_by_arm
from simulator.runner import parameters


@parameters
class Params(SlowDependencyParams):
    """The workers are split in two pools of half each in the bulkhead arm."""


QUICK = Params(duration_s=12.0, slow_at=3.0, slow_s=5.0, rate=150.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    arms = {"shared pool": {"default": p.workers},
            "bulkheads (isolated pools)": {"a": p.workers // 2, "b": p.workers - p.workers // 2}}
    out: dict[str, list[pd.DataFrame]] = {}
    for arm, pools in arms.items():
        res = slow_dependency(seed, duration_s=p.duration_s, slow_at=p.slow_at, slow_s=p.slow_s,
                              slow_factor=p.slow_factor, rate=p.rate, dep_timeout_s=math.inf, pools=pools)
        for k in ("availability", "summary"):
            out.setdefault(k, []).append(res[k].assign(arm=arm))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    return {"bulkhead": availability_by_arm(
        results, (p.slow_at, p.slow_at + p.slow_s),
        "A shared pool lets a slow db take down endpoint b; bulkheads contain the failure")}
