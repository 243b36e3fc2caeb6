"""Rotating service-to-service credentials: when do mTLS certificate and JWT key rotations reject valid calls?

Setup, part 1 (mTLS): a CA issues the client workload certificates of ``cert_lifetime_s``; the client
reloads its certificate file every ``reload_s`` (at a uniform phase) and calls ``verifiers`` services at
``rate`` requests per second, each checking the certificate's validity window on its *own* clock
(``models.edge.auth``, RFC 5280 §4.1.2.5; node clocks from ``simulator.clock``). Arms: *no overlap* (the
next certificate is issued when the current expires); *overlap* (issued ``renew_before_s`` before:
cert-manager's ``renewBefore``); *overlap, slow clock* (one verifier's clock is ``skew_s`` behind, drifting
``drift_ppm`` slower, so a fresh certificate's ``notBefore`` lies in its future); *overlap, slow clock,
backdated* (the CA backdates ``notBefore`` by ``backdate_s``).

Part 2 (JWT): an issuer signs tokens with one key and rotates every ``rotation_s``, publishing the new
key in its JWKS ``overlap_s`` before signing with it; ``jwks_verifiers`` services cache the JWKS for
``jwks_ttl_s`` (each at a uniform phase) and reject a token whose ``kid`` they do not know.

Closed forms: without overlap every call fails from expiry until the client's next reload, ``reload/2``
on average per rotation; a verifier ``s`` behind rejects a new certificate for ``E[max(0, s - U reload)]``
(``s - reload/2`` when ``s >= reload``) per rotation — ``1/verifiers`` of the calls — unless ``notBefore``
is backdated by at least ``s``. A JWKS cached for TTL ``t`` with overlap ``o`` rejects new-key tokens for
``E[max(0, U t - o)] = (t - o)^2 / (2t)`` per rotation: ``t/2`` with no overlap, nothing when ``o >= t``.

Lesson: every credential rotation needs the new credential to be trusted everywhere *before* it is
used: an overlap at least as long as the slowest consumer's reload (certificates) or cache TTL (JWKS),
and a notBefore backdated past the worst clock skew. Sources: RFC 5280, RFC 7515 §4.1.4, RFC 7517,
RFC 7519; cert-manager docs (Certificate ``renewBefore``); SPIFFE/SPIRE (SVID rotation); Istio docs
(workload certificate rotation).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.edge.auth import (
    CertificateAuthority,
    JwksCache,
    expected_jwks_rejection_s,
    expected_not_yet_valid_s,
    schedule_rotation,
)
from simulator import Exponential, Simulation
from simulator.runner import param, parameters

CERT_ARMS = ("no overlap", "overlap", "overlap, slow clock", "overlap, slow clock, backdated")


@parameters
class Params:
    cert_lifetime_s: float = param(60.0, unit="s", gt=0, le=1e7, help="certificate lifetime")
    renew_before_s: float = param(20.0, unit="s", ge=0, le=1e7, help="overlap: renew this long before expiry")
    reload_s: float = param(5.0, unit="s", gt=0, le=1e6, help="client's certificate reload period")
    clients: int = param(8, unit="workloads", ge=1, le=1000, help="client workloads, each reloading at its phase")
    verifiers: int = param(4, unit="services", ge=1, le=1000, help="services verifying the client certificate")
    rate: float = param(50.0, unit="req/s", gt=0, le=1e5, help="client calls per second")
    skew_s: float = param(8.0, unit="s", ge=0, le=1e5, help="slow verifier's clock behind true time")
    drift_ppm: float = param(50.0, unit="ppm", ge=0, le=1000, help="slow verifier's clock runs this much slow")
    backdate_s: float = param(30.0, unit="s", ge=0, le=1e6, help="backdated arm: notBefore this much early")
    rotations: int = param(12, unit="rotations", ge=1, le=10_000, help="certificate rotations per arm")
    rotation_s: float = param(100.0, unit="s", gt=0, le=1e7, help="JWT signing-key rotation period")
    jwks_ttls_s: tuple[float, ...] = param((10.0, 30.0, 60.0), unit="s", gt=0, le=1e6, help="JWKS cache TTLs")
    overlap_fractions: tuple[float, ...] = param((0.0, 0.5, 1.0), unit="x TTL", ge=0, le=10,
                                                 help="JWKS overlap as a multiple of the TTL")
    jwks_verifiers: int = param(20, unit="services", ge=1, le=10_000, help="services caching the JWKS")
    jwt_rate: float = param(100.0, unit="req/s", gt=0, le=1e5, help="token verifications per second")
    key_rotations: int = param(6, unit="rotations", ge=1, le=10_000, help="signing-key rotations per arm")

    def __post_init__(self) -> None:
        if not self.renew_before_s < self.cert_lifetime_s:
            raise ValueError(f"need renew_before_s < cert_lifetime_s, got {self.renew_before_s} >= "
                             f"{self.cert_lifetime_s}")
        worst = max(self.jwks_ttls_s) * max(1.0, max(self.overlap_fractions))
        if not worst < self.rotation_s:
            raise ValueError(f"rotation_s must exceed the largest TTL and overlap = {worst:g} s, "
                             f"got {self.rotation_s}")


QUICK = Params(rotations=8, key_rotations=4, jwks_verifiers=64, rate=40.0, jwt_rate=60.0)


def _calls(sim: Simulation, rate: float, stream: str, until: float, fn) -> None:
    gap = sim.sampler(Exponential(1.0 / rate), f"{stream}.arrivals")

    def arrive() -> None:
        if sim.now < until:
            fn()
            sim.at(gap(), arrive)
    sim.at(gap(), arrive)


def cert_arm(p: Params, seed: int, arm: str) -> dict:
    sim = Simulation(seed=seed)
    overlap = 0.0 if arm == "no overlap" else p.renew_before_s
    slow = "slow clock" in arm
    ca = CertificateAuthority(sim.node("ca").clock, p.cert_lifetime_s, p.backdate_s if "backdated" in arm else 0.0)
    vs = [sim.node(f"verifier-{i}", clock=dict(offset_s=-p.skew_s, drift_ppm=-p.drift_ppm) if slow and i == 0
                   else None) for i in range(p.verifiers)]
    period = p.cert_lifetime_s - overlap
    until = p.rotations * period
    latest: list = []
    loaded: list = [None] * p.clients

    def publish(cert) -> None:
        latest[:] = [cert]
        for c in range(p.clients):
            if loaded[c] is None:
                loaded[c] = cert  # the first certificate is there when the workloads start
    schedule_rotation(sim, ca, overlap, publish, until)
    u = sim.uniforms("auth.phases")

    def reload(c: int) -> None:
        loaded[c] = latest[0]
        sim.at(p.reload_s, lambda: reload(c))
    phases = [u() * p.reload_s for _ in range(p.clients)]
    for c, ph in enumerate(phases):
        sim.at(ph, lambda c=c: reload(c))
    pick = sim.uniforms("auth.pick")
    rows: list[tuple[float, int, bool]] = []

    def call() -> None:
        c, i = int(pick() * p.clients), int(pick() * p.verifiers)
        rows.append((sim.now, i, loaded[c].valid_at(vs[i].clock.now())))
    _calls(sim, p.rate, "auth.client", until, call)
    sim.run(until=until)
    df = pd.DataFrame(rows, columns=["t", "verifier", "ok"])
    # Each later certificate k is loaded (phase - t_k) mod reload after its issue: the exact windows for
    # this run's phase, and their mean over a uniform phase (the closed form).
    delays = [(ph - k * period) % p.reload_s for ph in phases for k in range(1, p.rotations)]
    eff = max(0.0, p.skew_s - ca.backdate_s) if slow else 0.0
    if arm == "no overlap":
        exact, uniform = sum(delays) / p.clients, (p.rotations - 1) * p.reload_s / 2
    elif slow:  # the first certificate is in use from t = 0, so its window is the whole skew
        exact = eff + sum(max(0.0, eff - d) for d in delays) / p.clients
        uniform = eff + (p.rotations - 1) * expected_not_yet_valid_s(eff, p.reload_s)
        exact, uniform = exact / p.verifiers, uniform / p.verifiers
    else:
        exact = uniform = 0.0
    return {"arm": arm, "requests": len(df), "rejected_fraction": float(1 - df.ok.mean()),
            "expected_rejected_fraction": uniform / until, "expected_given_phase": exact / until,
            "certificates": ca.issued,
            "slow_verifier_rejected": float(1 - df[df.verifier == 0].ok.mean())}


def jwks_arm(p: Params, seed: int, ttl: float, overlap: float) -> dict:
    sim = Simulation(seed=seed)
    keys = {"published": ["k0"], "signing": "k0"}
    n = p.key_rotations

    def rotate(k: int) -> None:
        sim.at(p.rotation_s - overlap, lambda: keys["published"].append(f"k{k}"))
        sim.at(p.rotation_s, lambda: keys.__setitem__("signing", f"k{k}"))
        if k < n:
            sim.at(p.rotation_s, lambda: rotate(k + 1))
    rotate(1)
    u = sim.uniforms("jwks.phases")
    caches = [JwksCache(sim, lambda: frozenset(keys["published"]), ttl, phase_s=u() * ttl)
              for _ in range(p.jwks_verifiers)]
    pick = sim.uniforms("jwks.pick")
    rows: list[tuple[float, bool]] = []

    def verify() -> None:
        c = caches[int(pick() * len(caches))]
        rows.append((sim.now, c.verifies(keys["signing"])))
    until = (n + 0.5) * p.rotation_s
    _calls(sim, p.jwt_rate, "jwks.tokens", until, verify)
    sim.run(until=until)
    df = pd.DataFrame(rows, columns=["t", "ok"])
    e = expected_jwks_rejection_s(ttl, overlap)
    e2 = (ttl - overlap) ** 3 / (3 * ttl) if overlap < ttl else 0.0
    sd_w = math.sqrt(max(0.0, e2 - e * e))
    # a verifier's phase can repeat across rotations: count only the verifiers as independent (conservative)
    se = sd_w / math.sqrt(p.jwks_verifiers) * n / until + math.sqrt(e * n / until / max(1, len(df)))
    return {"jwks_ttl_s": ttl, "overlap_s": overlap, "requests": len(df), "rejected_fraction": float(1 - df.ok.mean()),
            "expected_rejected_fraction": e * n / until, "expected_window_s": e,
            "window_s": float(1 - df.ok.mean()) * until / n, "se": se}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    certs = pd.DataFrame([cert_arm(p, seed, a) for a in CERT_ARMS])
    jwks = pd.DataFrame([jwks_arm(p, seed, t, f * t) for t in p.jwks_ttls_s for f in p.overlap_fractions])
    return {"summary": certs, "jwks": jwks}


def validate(quick: bool = True) -> list:
    from simulator.runner.checks import Check

    p = QUICK if quick else Params(jwks_verifiers=100, key_rotations=20)
    r = jwks_arm(p, 1, 30.0, 0.0)
    c = cert_arm(p, 1, "overlap, slow clock")
    se_c = math.sqrt(max(c["expected_rejected_fraction"], 1e-9) / c["requests"]) + \
        p.reload_s / math.sqrt(12 * p.clients) / (p.cert_lifetime_s - p.renew_before_s) / p.verifiers
    return [
        Check(source="closed form: JWKS cached for TTL t, no overlap: new-key tokens rejected for t/2 per rotation",
              setup=f"{p.jwks_verifiers} verifiers, TTL 30 s at uniform phases, rotation every {p.rotation_s:g} s, "
                    f"{p.key_rotations} rotations",
              quantity="mean rejection window per verifier per rotation (s)", published=r["expected_window_s"],
              measured=r["window_s"], tolerance=4 * r["se"] * (p.key_rotations + 0.5) * p.rotation_s / p.key_rotations,
              why="4 SE: the verifiers' uniform phases (sd t/sqrt(12) each, verifiers counted as the independent "
                  "draws) plus binomial noise over the requests"),
        Check(source="closed form: verifier clock s behind, notBefore = issue time: E[max(0, s - U reload)] "
                     "per rotation (RFC 5280 validity)",
              setup=f"{p.verifiers} verifiers, one {p.skew_s:g} s behind; reload every {p.reload_s:g} s; "
                    f"{p.rotations} certificates",
              quantity="fraction of calls rejected", published=c["expected_rejected_fraction"],
              measured=c["rejected_fraction"], tolerance=4 * se_c + 0.002,
              why="4 SE (Poisson count + the spread of the clients' uniform reload phases) + 0.2 points for the "
                  "slow clock's drift, which adds up to drift x run time to its lag"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    c = results["summary"].groupby("arm", sort=False, as_index=False).mean(numeric_only=True)
    j = results["jwks"].groupby(["jwks_ttl_s", "overlap_s"], as_index=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    x = np.arange(len(c))
    a1.bar(x, 100 * c.rejected_fraction, color=[plots.color_for(f"auth:{a}") for a in c.arm])
    a1.scatter(x, 100 * c.expected_rejected_fraction, marker="_", s=900, color="k", zorder=3,
               label="closed form, uniform reload phase")
    a1.scatter(x, 100 * c.expected_given_phase, marker="o", s=25, color="k", zorder=3,
               label="closed form, this run's phases")
    for i, v in enumerate(c.rejected_fraction):
        a1.annotate(f"{v:.2%}", (i, 100 * v), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=9)
    a1.set_xticks(x, [a.replace(", ", ",\n") for a in c.arm], fontsize=8)
    a1.set(ylabel="calls rejected (%)",
           title=f"mTLS: {p.cert_lifetime_s:g} s certificates, reload every {p.reload_s:g} s, "
                 f"overlap {p.renew_before_s:g} s,\none verifier {p.skew_s:g} s slow, backdate {p.backdate_s:g} s")
    a1.legend(fontsize=8)
    for f in p.overlap_fractions:
        d = j[np.isclose(j.overlap_s, f * j.jwks_ttl_s)]
        line, = a2.plot(d.jwks_ttl_s, d.window_s, "o", ms=7, label=f"overlap = {f:g} x TTL")
        xs = np.linspace(0, max(p.jwks_ttls_s), 60)
        a2.plot(xs, [expected_jwks_rejection_s(t, f * t) for t in xs], "--", color=line.get_color(), lw=1)
    a2.set(xlabel="JWKS cache TTL t (s)", ylabel="new-key tokens rejected per rotation (s per verifier)",
           title="JWT signing-key rotation, JWKS cached for t, new key published o early:\n"
                 "dashed (t − o)²/(2t): t/2 without overlap, 0 once o ≥ t")
    a2.legend(fontsize=8)
    fig.suptitle("Rotating credentials: trust the new one everywhere before using it — overlap ≥ reload / cache TTL, "
                 "notBefore backdated past the clock skew")
    return {"s2s_auth": fig}
