"""How often do drifting clocks make services reject valid short-lived tokens, or accept expired ones?

Setup: an issuer stamps JWT-like tokens with its own clock: ``iat = nbf = issuer clock``,
``exp = iat + lifetime`` (RFC 7519 §4.1.4-4.1.6). ``services`` services each validate with their
own clock — ``nbf - leeway <= now <= exp + leeway``, the "small leeway to account for clock skew"
of RFC 7519 — and every clock (issuer's too) is a simulator clock that syncs every
``sync_interval_s`` to within ``±skew`` of true time and drifts up to ``drift_ppm`` in between.
A client uses its token at a uniformly random age within its lifetime (a *valid* request by true
time) or within ``late_window_s`` after it expired (an *expired* one), at a random service.
Measured per (lifetime, skew, leeway): the share of valid requests wrongly rejected and of expired
ones wrongly accepted; all leeways judge the same clock readings (common random numbers).

Closed form (offsets only): with the service's clock ``d`` ahead of the issuer's and leeway ``L``,
a request at age ``a`` is rejected iff ``a < -d - L`` (too early: "not yet valid") or
``a > T + L - d`` (expired early), so a valid request at the ``exp`` boundary is wrongly rejected iff
``d > L`` (at the ``nbf`` boundary iff ``-d > L``), and for ages uniform over the lifetime ``T`` the
wrong-rejection rate is ``max(0, |d| - L) / T``. Two clocks each uniform within ``±s`` give ``d``
triangular on ``[-2s, 2s]`` and a mean rate ``(2s - L)^3 / (12 s^2 T)`` for ``L < 2s``, else 0.
An expired token is accepted for ``L - d`` past its ``exp``.

Lesson: the wrong-rejection rate is the skew beyond the leeway divided by the lifetime — short
lifetimes (the product brief's advice) make skew matter, a leeway of about twice the clock bound
removes it, and that leeway is exactly how long an expired (revoked, stolen) token keeps working.

Reproduces (``validate``): the closed forms above — wrong rejections ``(2s - L)^3 / (12 s^2 T)``
and expired acceptances ``E[clip(L - d, 0, W)] / W`` — measured with drift switched off (the
closed form is for offsets only) over independent seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import Simulation
from simulator.runner import Check, mean_ci95, param, parameters


@parameters
class Params:
    lifetimes_s: tuple[float, ...] = param((30.0, 60.0, 300.0, 900.0), unit="s", gt=0, le=86_400,
                                           help="token lifetimes (exp - iat), one arm each")
    skews_s: tuple[float, ...] = param((0.0, 0.5, 2.0, 5.0), unit="s", ge=0, le=3600,
                                       help="clock sync bound: each clock within +-skew of true time after a sync")
    leeways_s: tuple[float, ...] = param((0.0, 1.0, 5.0, 10.0), unit="s", ge=0, le=3600,
                                         help="validation leeway on nbf and exp")
    drift_ppm: float = param(50.0, unit="ppm", ge=0, le=1000, help="largest clock drift between syncs")
    sync_interval_s: float = param(64.0, unit="s", gt=0, le=86_400, help="clock sync period (NTP-like)")
    services: int = param(8, unit="services", ge=1, le=1000, help="validating services, each with its own clock")
    requests: int = param(2000, unit="requests", ge=10, le=1_000_000, help="requests per (lifetime, skew) arm")
    late_share: float = param(0.2, unit="fraction", ge=0, lt=1, help="share of requests made after the token expired")
    late_window_s: float = param(10.0, unit="s", gt=0, le=86_400, help="how long after exp late requests come")


QUICK = Params(lifetimes_s=(30.0, 300.0), skews_s=(0.0, 2.0, 5.0), leeways_s=(0.0, 5.0, 10.0), requests=600)


def accepts(now: float, iat: float, lifetime_s: float, leeway_s: float) -> bool:
    """A service's check of a token issued at ``iat`` (``nbf = iat``, ``exp = iat + lifetime``)."""
    return iat - leeway_s <= now <= iat + lifetime_s + leeway_s


def expected_reject_rate(skew_s: float, leeway_s: float, lifetime_s: float) -> float:
    """Closed form for two clocks each uniform within ``±skew``: ``(2s - L)^3 / (12 s^2 T)``."""
    if skew_s == 0 or leeway_s >= 2 * skew_s:
        return 0.0
    return min(1.0, (2 * skew_s - leeway_s) ** 3 / (12 * skew_s ** 2 * lifetime_s))


def expected_accept_rate(skew_s: float, leeway_s: float, window_s: float) -> float:
    """Share of requests at ages uniform in ``[T, T + W)`` accepted: ``E[clip(L - d, 0, W)] / W``, ``d``
    triangular on ``[-2s, 2s]`` (numerically, on a fine grid)."""
    if skew_s == 0:
        return float(np.clip(leeway_s, 0, window_s) / window_s)
    d = np.linspace(-2 * skew_s, 2 * skew_s, 4001)
    w = 2 * skew_s - np.abs(d)
    return float((np.clip(leeway_s - d, 0, window_s) * w).sum() / w.sum() / window_s)


def _arm(p: Params, seed: int, lifetime: float, skew: float) -> pd.DataFrame:
    sim = Simulation(seed=seed)
    clock = dict(drift_ppm=0.0, sync_interval_s=p.sync_interval_s, sync_error_s=skew)
    offsets = sim.uniforms("tokens.clock_offsets")
    drifts = sim.uniforms("tokens.clock_drifts")

    def node(name: str):
        return sim.node(name, clock=dict(clock, offset_s=(2 * offsets() - 1) * skew,
                                         drift_ppm=(2 * drifts() - 1) * p.drift_ppm))
    issuer = node("issuer")
    services = [node(f"svc{i}") for i in range(p.services)]
    u = sim.uniforms("tokens.requests")
    horizon = 20 * p.sync_interval_s  # many syncs: many independent clock errors
    rows: list[tuple] = []
    for _ in range(p.requests):
        t0 = u() * horizon
        late = u() < p.late_share
        age = lifetime + u() * p.late_window_s if late else u() * lifetime
        svc = services[int(u() * len(services))]

        def issue(age=age, svc=svc, late=late) -> None:
            iat = issuer.clock.now()
            sim.at(age, lambda: rows.append((age, late, iat, svc.clock.now())))
        sim.at(t0, issue)
    sim.run(until=horizon + lifetime + p.late_window_s + 1)
    return pd.DataFrame(rows, columns=["age", "late", "iat", "now"]).assign(lifetime_s=lifetime, skew_s=skew)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    reqs = pd.concat([_arm(p, seed, T, s) for T in p.lifetimes_s for s in p.skews_s], ignore_index=True)
    rows = []
    for (T, s), g in reqs.groupby(["lifetime_s", "skew_s"], sort=False):
        valid, late = g[~g.late], g[g.late]
        for L in p.leeways_s:
            ok_v = (valid["iat"] - L <= valid["now"]) & (valid["now"] <= valid["iat"] + T + L)
            ok_l = (late["iat"] - L <= late["now"]) & (late["now"] <= late["iat"] + T + L)
            rows.append({"lifetime_s": T, "skew_s": s, "leeway_s": L, "valid_requests": len(valid),
                         "wrongly_rejected": float(1 - ok_v.mean()),
                         "expected_rejected": expected_reject_rate(s, L, T),
                         "expired_requests": len(late), "wrongly_accepted": float(ok_l.mean()),
                         "expected_accepted": expected_accept_rate(s, L, p.late_window_s)})
    return {"summary": pd.DataFrame(rows)}


def validate(quick: bool) -> list[Check]:
    """Every (lifetime, skew, leeway) arm whose closed form is not trivially 0, against the
    simulated clocks (drift 0: a deliberate setup difference, the formula models offsets only).

    Requests in one sync interval share clock offsets, so the binomial error understates the
    spread: the tolerance is 4 standard errors of the mean over independent seeds (about the
    99.8% Student-t interval for the seed counts used).
    """
    import dataclasses

    p = dataclasses.replace(QUICK if quick else Params(), drift_ppm=0.0)
    seeds = range(1, 13) if quick else range(1, 41)
    s = pd.concat([run(p, seed)["summary"] for seed in seeds], ignore_index=True)
    checks = []
    t_min = min(p.lifetimes_s)
    for (T, sk, L), g in s.groupby(["lifetime_s", "skew_s", "leeway_s"], sort=False):
        setup = (f"lifetime {T:g} s, clocks within +-{sk:g} s (uniform, re-drawn every {p.sync_interval_s:g} s "
                 f"sync, no drift), leeway {L:g} s, {p.services} services; {len(g)} seeds x {p.requests} requests")
        for col, pub, q, src in (
                ("wrongly_rejected", g.expected_rejected.iloc[0], "share of valid requests rejected",
                 "RFC 7519 §4.1.4-4.1.5 (exp and nbf with leeway): closed form (2s - L)^3 / (12 s^2 T)"),
                ("wrongly_accepted", g.expected_accepted.iloc[0],
                 f"share of requests within {p.late_window_s:g} s after exp accepted",
                 "RFC 7519 §4.1.4 (exp with leeway): closed form E[clip(L - d, 0, W)] / W, d triangular")):
            if pub == 0 or sk == 0 or (col == "wrongly_accepted" and T != t_min):
                continue  # trivially 0 (or exact by construction with skew 0); acceptance does not depend on T
            m, ci = mean_ci95(g[col])
            se = float(g[col].std(ddof=1) / np.sqrt(len(g)))
            checks.append(Check(source=src, setup=setup, quantity=q, published=float(pub), measured=m,
                                tolerance=4 * se, ci95=ci, why=f"4 standard errors of the mean over {len(g)} seeds"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    if "seed" in s:
        s = s.groupby(["lifetime_s", "skew_s", "leeway_s"], as_index=False).mean(numeric_only=True)
    T = min(p.lifetimes_s)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    a = s[s.lifetime_s == T]
    for L, g in a.groupby("leeway_s"):
        line, = axes[0].plot(g.skew_s, 100 * g.wrongly_rejected, "o", label=f"leeway {L:g} s")
        xs = np.linspace(0, max(p.skews_s), 60)
        axes[0].plot(xs, [100 * expected_reject_rate(x, L, T) for x in xs], "--", color=line.get_color())
    axes[0].set(xlabel="clock bound ±skew (s)", ylabel="valid requests rejected (%)",
                title=f"lifetime {T:g} s (dashed: (2s-L)³/(12s²T))")
    axes[0].legend(fontsize=8)
    b = s[s.leeway_s == min(p.leeways_s)]
    for sk, g in b.groupby("skew_s"):
        line, = axes[1].plot(g.lifetime_s, 100 * g.wrongly_rejected, "o-", label=f"skew ±{sk:g} s")
        axes[1].plot(g.lifetime_s, 100 * g.expected_rejected, "--", color=line.get_color())
    axes[1].set(xscale="log", xlabel="token lifetime (s)", ylabel="valid requests rejected (%)",
                title=f"leeway {min(p.leeways_s):g} s: shorter tokens, more rejections")
    axes[1].legend(fontsize=8)
    c = s[s.lifetime_s == T]
    for sk, g in c.groupby("skew_s"):
        line, = axes[2].plot(g.leeway_s, 100 * g.wrongly_accepted, "o", label=f"skew ±{sk:g} s")
        xs = np.linspace(0, max(p.leeways_s), 60)
        axes[2].plot(xs, [100 * expected_accept_rate(sk, x, p.late_window_s) for x in xs], "--",
                     color=line.get_color())
    axes[2].set(xlabel="leeway (s)", ylabel=f"expired requests accepted (%, within {p.late_window_s:g} s)",
                title="the price of leeway: expired tokens keep working")
    axes[2].legend(fontsize=8)
    fig.suptitle("Short-lived tokens and drifting clocks: valid requests are rejected at about "
                 "(skew - leeway) / lifetime;\n"
                 "a leeway of twice the clock bound removes that, and lets expired tokens keep working that long "
                 "(dots: measured, dashed: closed form)")
    return {"token_expiry_skew": fig}
