"""Does a well-chosen timeout stop one slow dependency from taking down unrelated endpoints?

Setup: a frontend with 20 thread-per-request workers serves endpoint ``a`` (calls the ``db``
service) and endpoint ``b`` (local work only), 200 req/s each; clients give up after 1 s.
The db slows down 50x for a while. Arms: no timeout on the db call, a too-long timeout (2 s,
longer than the clients wait), and a well-chosen one (60 ms, a little above the db's normal
p99 of ~50 ms).

Lesson: without a timeout (or with one longer than anyone waits) workers pile up waiting on
the db, the pool is exhausted and endpoint ``b`` — which never touches the db — fails too: a
cascading failure. A timeout near the dependency's normal tail frees the workers; ``a``
fails fast and ``b`` is untouched.
"""

from __future__ import annotations

import math

import pandas as pd

from experiments._common import SlowDependencyParams
from models.services.scenarios import slow_dependency
from simulator.plots import availability_by_arm
from simulator.runner import param, parameters

ARMS = {"no timeout": math.inf, "too long (2 s)": 2.0, "well-chosen (60 ms)": 0.06}


@parameters
class Params(SlowDependencyParams):
    well_chosen_s: float = param(0.06, unit="s", gt=0, le=60, help="the well-chosen timeout arm's timeout")


QUICK = Params(duration_s=12.0, slow_at=3.0, slow_s=5.0, rate=150.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    out: dict[str, list[pd.DataFrame]] = {}
    arms = {k: v for k, v in ARMS.items() if not k.startswith("well-chosen")}
    arms[f"well-chosen ({p.well_chosen_s * 1e3:g} ms)"] = p.well_chosen_s
    for arm, t in arms.items():
        res = slow_dependency(seed, duration_s=p.duration_s, slow_at=p.slow_at, slow_s=p.slow_s,
                              slow_factor=p.slow_factor, rate=p.rate, dep_timeout_s=t,
                              pools={"default": p.workers})
        for k in ("availability", "summary"):
            out.setdefault(k, []).append(res[k].assign(arm=arm))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    return {"timeouts": availability_by_arm(
        results, (p.slow_at, p.slow_at + p.slow_s),
        "Without a good timeout a slow db exhausts the workers and takes down endpoint b too")}
