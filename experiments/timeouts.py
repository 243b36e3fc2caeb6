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

Reproduces (``validate``): the fraction of calls a timeout T cuts off in normal operation,
P(RTT + S > T) = exp(-T/s) E[exp(RTT/s)] for the db's exponential service of mean s (no
queueing at 0.75 erlangs on 8 workers) — 0.27% for the 60 ms timeout, whose db p99 is
RTT + s ln 100 ~ 47 ms.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments._common import SlowDependencyParams
from models.services.scenarios import slow_dependency
from simulator.plots import availability_by_arm
from simulator.runner import Check, param, parameters

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


_DB_SERVICE_S, _NET_MEDIAN_S, _NET_SIGMA = 0.01, 0.0005, 0.3  # slow_dependency's db and network


def cut_off_fraction(timeout_s: float, service_s: float = _DB_SERVICE_S) -> float:
    """P(RTT + S > T) for S ~ Exponential(mean ``service_s``) and RTT the sum of two lognormal one-way
    delays: exp(-T/s) E[exp(d/s)]^2 (valid while T exceeds the RTT; Gauss-Hermite quadrature)."""
    z, w = np.polynomial.hermite_e.hermegauss(40)
    one_way = float(np.sum(w * np.exp(_NET_MEDIAN_S * np.exp(_NET_SIGMA * z) / service_s)) / math.sqrt(2 * math.pi))
    return math.exp(-timeout_s / service_s) * one_way ** 2


def validate(quick: bool) -> list[Check]:
    """The fraction of db calls a timeout cuts off in normal operation, on the experiment's own
    scenario (``slow_dependency`` with no slowdown: slow_factor 1), against the exponential tail
    P(RTT + S > T) = exp(-T/s) E[exp(RTT/s)]. The db (2 instances x 8 workers, 75 req/s each, 10 ms)
    has P(wait) ~ 1e-5 (Erlang C), so S is its bare service time. Tolerance: 4 binomial SE of the
    independent calls counted (one per request to endpoint a).
    """
    p = QUICK
    dur = 20.0 if quick else 120.0
    checks = []
    for t, runs in ((0.02, 1), (p.well_chosen_s, 2 if quick else 5)):
        fails = n = 0
        for r in range(runs):
            df = slow_dependency(500 + r, duration_s=dur, slow_at=0.0, slow_s=1.0, slow_factor=1.0, rate=p.rate,
                                 dep_timeout_s=t, pools={"default": p.workers})["requests"]
            a = df[df.op == "a"]
            fails += int((a.outcome != "ok").sum())
            n += len(a)
        m = fails / n
        se = math.sqrt(max(m, 1 / n) * (1 - m) / n)
        checks.append(Check(
            "exponential service tail: P(RTT + S > T) = exp(-T/s) E[exp(RTT/s)]",
            f"slow_dependency without slowdown: db 2 x 8 workers, Exponential({_DB_SERVICE_S * 1e3:g} ms), "
            f"{p.rate:g} req/s; timeout {t * 1e3:g} ms; {n} calls", f"fraction of calls cut off by a {t * 1e3:g} ms "
            "timeout", round(cut_off_fraction(t), 6), m, 4 * se, f"4 binomial SE of {n} independent calls"))
    return checks
