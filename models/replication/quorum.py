"""Dynamo-style quorums with tunable N, R, W.

A :class:`QuorumStore` is the leaderless :class:`~models.replication.eventual.EventualStore`
with quorum defaults: the coordinator sends a write to the ``n`` owners and acks after ``w``
acks; a read asks the owners, waits for ``r`` replies and returns the newest version (largest
timestamp; with ``resolution="vv"``, every concurrent sibling). With ``r + w > n`` every read
quorum intersects every write quorum, so a read sees the latest *completed* write (absent
sloppy quorums, and given timestamps that order writes) — Gifford, "Weighted Voting for
Replicated Data" (SOSP 1979); DeCandia et al. 2007 §4.5.

With ``selection="random"`` a write reaches only ``w`` owners and a read asks ``r`` owners,
each chosen uniformly at random. Then the read misses the latest write exactly when its ``r``
replicas all lie among the ``n - w`` that did not get it::

    P(miss) = C(n - w, r) / C(n, r)            (0 when r + w > n)

(Bailis et al., "Probabilistically Bounded Staleness for Practical Partial Quorums", VLDB 2012,
Eq. 1). :func:`miss_probability` computes it; the tests check the store against it.
"""

from __future__ import annotations

from math import comb
from typing import Any

from simulator import Distribution, Simulation

from .eventual import EventualStore


def miss_probability(n: int, r: int, w: int) -> float:
    """Probability that a random read quorum of ``r`` misses a random write quorum of ``w`` of ``n``."""
    if not (1 <= r <= n and 1 <= w <= n):
        raise ValueError(f"need 1 <= r, w <= n; got n={n}, r={r}, w={w}")
    return comb(n - w, r) / comb(n, r)


def strict(n: int, r: int, w: int) -> bool:
    """True if every read quorum intersects every write quorum (``r + w > n``)."""
    return r + w > n


class QuorumStore(EventualStore):
    """Dynamo quorums: ``n`` replicas, reads wait for ``r``, writes for ``w`` (1 <= r, w <= n)."""

    def __init__(self, sim: Simulation, n: int = 3, r: int = 2, w: int = 2, *, resolution: str = "lww",
                 selection: str = "all", write_delay: float | Distribution = 0.0,
                 replica_timeout_s: float = 0.1, read_repair: bool = False, prefix: str = "q", **kw: Any) -> None:
        super().__init__(sim, n, r=r, w=w, resolution=resolution, selection=selection, write_delay=write_delay,
                         replica_timeout_s=replica_timeout_s, read_repair=read_repair, prefix=prefix, **kw)
