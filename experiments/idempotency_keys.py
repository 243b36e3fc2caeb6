"""How many customers are charged twice when clients retry, with and without idempotency keys?

Setup: a client charges ``requests`` orders on a payment service (one charge = one local
transaction); each reply is lost with probability ``reply_loss`` (the charge happened, the client
times out after ``timeout_s``) and the client retries with exponential backoff (``base_s``, 2x per
retry) up to ``attempts`` tries. Arms: *no keys* (every attempt that arrives is executed); *keys*
(the client reuses one key across a request's retries; the service stores key -> response for 24 h,
Stripe's TTL, and a duplicate arriving while its key is in progress is rejected, Stripe's 409);
*keys, short TTL* (the stored response expires after ``short_ttl_s``, shorter than the retry
horizon). Common random numbers: every arm sees the same losses.

Lesson (Richardson, "Microservices Patterns" §3.3.6; Leach, "Implementing Stripe-like Idempotency
Keys in Postgres", 2017): retries are what turn lost replies into successes, and without keys each
one that follows a lost reply charges again — 1 + q + ... + q^(n-1) charges per request on average.
A key makes every request charge exactly once, but only while the key outlives the last retry: keep
the TTL longer than the retry horizon.

Reproduces (``validate``): 1 + q + ... + q^(n-1) executions per request without keys, exactly 1
with keys (TTL above the retry horizon), and 1 - q^n of requests answered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.resilience import RetryPolicy
from models.transactions.idempotency import ChargeService, IdempotencyConfig, PayingClient
from simulator import Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check

ARMS = ("no keys", "keys", "keys, short TTL")


@parameters
class Params:
    requests: int = param(3000, unit="requests", ge=1, le=1_000_000, help="charges issued")
    reply_loss: float = param(0.3, unit="probability", ge=0, lt=1, help="each reply is lost")
    attempts: tuple[int, ...] = param((1, 2, 3, 4, 6), unit="attempts", ge=1, le=20, help="max tries per request")
    base_s: float = param(0.2, unit="s", gt=0, le=60, help="first backoff (doubles per retry)")
    timeout_s: float = param(0.05, unit="s", gt=0, le=60, help="client timeout per attempt")
    short_ttl_s: float = param(0.5, unit="s", gt=0, le=86_400, help="the short arm's key TTL")
    gap_s: float = param(0.05, unit="s", gt=0, le=60, help="mean time between requests")


QUICK = Params(requests=800, attempts=(1, 2, 4, 6))


def _one(p: Params, seed: int, arm: str, n: int) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=0.001)
    cfg = None if arm == "no keys" else IdempotencyConfig(ttl_s=p.short_ttl_s if "short" in arm else 86_400.0)
    svc = ChargeService(sim, config=cfg, service=0.005)
    cl = PayingClient(sim, "payments", requests=p.requests, gap_s=p.gap_s, use_keys=cfg is not None,
                      timeout_s=p.timeout_s, retry=RetryPolicy(max_attempts=n, base_s=p.base_s, cap_s=1e4,
                                                               jitter="none"))
    sim.net.link("payments", "client", symmetric=False, loss=p.reply_loss)
    horizon = p.base_s * (2 ** max(n - 1, 0)) + n * p.timeout_s
    sim.run(until=p.requests * p.gap_s * 2 + horizon + 5)
    ex = np.array([svc.executions.get(i, 0) for i in range(1, p.requests + 1)])
    ok = sum(1 for o in cl.outcomes.values() if o == "ok")
    return {"arm": arm, "attempts": n, "requests": p.requests, "charges_per_request": float(ex.mean()),
            "theory_no_keys": sum(p.reply_loss ** i for i in range(n)),
            "double_charged": int((ex > 1).sum()), "extra_charges": int(np.maximum(ex - 1, 0).sum()),
            "succeeded": ok / p.requests, "retry_horizon_s": p.base_s * (2 ** (n - 1) - 1) if n > 1 else 0.0,
            "key_hits": svc.key_hits}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = [_one(p, seed, arm, n) for arm in ARMS for n in p.attempts]
    return {"summary": pd.DataFrame(rows)}


def executions_moments(q: float, n: int) -> tuple[float, float]:
    """Mean and variance of the executions of one request without keys: attempt k runs iff the
    k - 1 replies before it were lost, so X = min(Geometric(1 - q), n)."""
    m = sum(q ** i for i in range(n))
    m2 = sum((2 * k - 1) * q ** (k - 1) for k in range(1, n + 1))  # E[X^2] = sum_k (2k - 1) P(X >= k)
    return m, m2 - m * m


def validate(quick: bool) -> list[Check]:
    """Executions per request against 1 + q + ... + q^(n-1) (each retry follows a lost reply, which
    happens w.p. q; Richardson §3.3.6), exactly one with Stripe-style keys (Leach 2017; Stripe API
    docs, "Idempotent requests": the stored result is returned for a repeated key), and the
    fraction answered, 1 - q^n."""
    p = Params(requests=4000 if quick else 40_000)
    q, rows = p.reply_loss, []
    for n in (2, 4, 6):
        r = _one(p, 1, "no keys", n)
        m, var = executions_moments(q, n)
        rows.append(Check("Richardson, Microservices Patterns §3.3.6: a retry after a lost reply executes again",
                          f"replies lost w.p. q = {q:g}, up to n = {n} attempts, no keys; {p.requests} requests",
                          f"no keys, n = {n}: executions per request", m, r["charges_per_request"],
                          4 * (var / p.requests) ** 0.5, f"4 SE over {p.requests} requests (X = min(Geom, n))"))
    for n in (4,):
        r = _one(p, 1, "keys", n)
        rows.append(Check("Leach 2017, 'Implementing Stripe-like Idempotency Keys'; Stripe API 'Idempotent requests'",
                          f"q = {q:g}, n = {n}, key TTL 24 h > retry horizon; {p.requests} requests",
                          f"keys, n = {n}: executions per request", 1.0, r["charges_per_request"], 0.0,
                          "a guarantee: every request executes exactly once"))
        a = 1 - q ** n
        rows.append(Check("retries: a request fails only if all n replies are lost", f"q = {q:g}, n = {n}, keys",
                          f"keys, n = {n}: requests answered (1 - q^n)", a, r["succeeded"],
                          4 * (a * (1 - a) / p.requests) ** 0.5, f"4 binomial SE over {p.requests} requests"))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"].groupby(["arm", "attempts"], sort=False).mean(numeric_only=True).reset_index()
    colors = {"no keys": "tab:red", "keys": "tab:green", "keys, short TTL": "tab:orange"}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    for arm in ARMS:
        d = s[s.arm == arm]
        lab = f"{arm} (TTL {p.short_ttl_s:g} s)" if "short" in arm else arm
        a1.plot(d.attempts, d.charges_per_request, "o-", color=colors[arm], label=lab)
        a2.plot(d.attempts, d.succeeded, "o-", color=colors[arm], label=lab)
    d = s[s.arm == "no keys"]
    a1.plot(d.attempts, d.theory_no_keys, "k--", lw=1, label=f"1 + q + ... + q^(n-1), q = {p.reply_loss:g}")
    a1.set_xlabel("max attempts per request (n)")
    a1.set_ylabel("charges per request (1 = exactly once)")
    a1.legend(fontsize=8)
    a1.set_title(f"replies lost w.p. {p.reply_loss:g}; backoff {p.base_s:g} s x 2 per retry", fontsize=9)
    a2.set_xlabel("max attempts per request (n)")
    a2.set_ylabel("requests that got an answer")
    a2.set_ylim(0, 1.05)
    a2.legend(fontsize=8)
    a2.set_title("retries are what make requests succeed", fontsize=9)
    fig.suptitle("Retrying without idempotency keys charges customers twice; a key makes it exactly once —\n"
                 "until the key expires before the last retry (keep the TTL longer than the retry horizon)")
    return {"idempotency_keys": fig}
