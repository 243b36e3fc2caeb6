"""Service-to-service credentials: X.509 certificates checked on the verifier's own clock, a CA that
renews before expiry, and a JWKS cached for a TTL.

- A certificate is valid from ``not_before`` to ``not_after`` inclusive (RFC 5280 §4.1.2.5), judged by
  the *verifier's* clock — a node whose clock is behind sees a fresh certificate as "not yet valid".
  A CA may backdate ``not_before`` by ``backdate_s`` to absorb such skew.
- Renewal ``renew_before_s`` ahead of expiry is cert-manager's ``renewBefore`` (and SPIFFE/SPIRE's
  rotation at half the SVID's lifetime): old and new certificates overlap by that much; a workload
  picks the new file up at its next reload.
- A JWT names its signing key with ``kid`` (RFC 7515 §4.1.4); verifiers fetch the issuer's JWK Set
  (RFC 7517 §5) and may cache it (HTTP caching, RFC 9111: ``max-age``). A key published ``overlap``
  before it starts signing is known to every cache whose TTL is at most that overlap.
The token check itself (``nbf``/``exp`` with a leeway, RFC 7519) is experiments/token_expiry_skew.py's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from simulator import PhysicalClock, Simulation


@dataclass(frozen=True)
class Certificate:
    """An X.509 certificate reduced to what rotation needs: a serial and its validity window (seconds)."""

    serial: int
    not_before: float
    not_after: float

    def valid_at(self, now: float) -> bool:
        """RFC 5280's validity check at the verifier's clock reading ``now``."""
        return self.not_before <= now <= self.not_after


class CertificateAuthority:
    """Issues certificates of ``lifetime_s`` stamped with its own ``clock``, ``backdate_s`` early."""

    def __init__(self, clock: PhysicalClock, lifetime_s: float, backdate_s: float = 0.0) -> None:
        if not (math.isfinite(lifetime_s) and lifetime_s > 0):
            raise ValueError(f"lifetime_s must be > 0 seconds, got {lifetime_s!r}")
        if not (math.isfinite(backdate_s) and backdate_s >= 0):
            raise ValueError(f"backdate_s must be >= 0 seconds, got {backdate_s!r}")
        self.clock, self.lifetime_s, self.backdate_s = clock, lifetime_s, backdate_s
        self.issued = 0

    def issue(self) -> Certificate:
        """A new certificate: ``not_before`` = the CA's clock minus ``backdate_s``, valid ``lifetime_s`` from now."""
        self.issued += 1
        nb = self.clock.now() - self.backdate_s
        return Certificate(self.issued, nb, nb + self.backdate_s + self.lifetime_s)


def schedule_rotation(sim: Simulation, ca: CertificateAuthority, renew_before_s: float,
                      on_issue: Callable[[Certificate], None], until: float) -> None:
    """Issue a first certificate now and each next one ``renew_before_s`` before the current expires
    (true time: the renewal job's timer); ``on_issue(cert)`` publishes it (e.g. writes the secret)."""
    if not 0 <= renew_before_s < ca.lifetime_s:
        raise ValueError(f"renew_before_s must be in [0, lifetime_s = {ca.lifetime_s}), got {renew_before_s!r}")
    period = ca.lifetime_s - renew_before_s

    def issue() -> None:
        on_issue(ca.issue())
        if sim.now + period < until:
            sim.at(period, issue)
    issue()


class JwksCache:
    """A verifier's cached copy of the issuer's key ids, refetched every ``ttl_s`` from ``phase_s`` on."""

    def __init__(self, sim: Simulation, fetch: Callable[[], frozenset[str]], ttl_s: float, phase_s: float = 0.0,
                 ) -> None:
        if not (math.isfinite(ttl_s) and ttl_s > 0):
            raise ValueError(f"ttl_s must be > 0 seconds, got {ttl_s!r}")
        self.sim, self.fetch, self.ttl_s = sim, fetch, ttl_s
        self.kids: frozenset[str] = fetch()
        self.fetches = 1
        sim.at(phase_s, self._refresh)

    def _refresh(self) -> None:
        self.kids = self.fetch()
        self.fetches += 1
        self.sim.at(self.ttl_s, self._refresh)

    def verifies(self, kid: str) -> bool:
        """Whether a token signed with key ``kid`` verifies against the cached JWKS."""
        return kid in self.kids


def expected_jwks_rejection_s(ttl_s: float, overlap_s: float) -> float:
    """Mean time a verifier rejects new-key tokens per rotation, cache phase uniform:
    E[max(0, U ttl - overlap)] = (ttl - overlap)^2 / (2 ttl) for overlap < ttl, else 0 (ttl/2 at no overlap)."""
    return (ttl_s - overlap_s) ** 2 / (2 * ttl_s) if overlap_s < ttl_s else 0.0


def expected_not_yet_valid_s(skew_s: float, reload_s: float) -> float:
    """Mean time a verifier ``skew_s`` behind rejects a new certificate per rotation when the workload
    loads it a uniform ``[0, reload)`` after issue: E[max(0, skew - U reload)]."""
    if skew_s <= 0:
        return 0.0
    if skew_s >= reload_s:
        return skew_s - reload_s / 2
    return skew_s ** 2 / (2 * reload_s)
