"""Leases (a lock with a TTL) and fencing tokens.

After Martin Kleppmann, "How to do distributed locking" (2016): a client takes a lease from a
lock service, checks that it still holds it, does some work and writes to a storage service.
If the client pauses (a GC pause, ``node.pause``) between the check and the write, the lease can
expire meanwhile and another client take it; the first one then wakes and writes anyway. The
cure is a **fencing token**: each grant carries a number one higher than the last, the storage
remembers the highest token it has seen and refuses writes with a lower one.

Time: the lock service measures the TTL on its own clock; a client measures its lease on *its*
clock from the moment it sent the request (a safe start, since the grant happens later), so a
client clock that runs slow (negative ``drift_ppm``) believes the lease lasts longer than the
service does — unsafe unless ``margin_s`` covers the drift: ttl · |drift| <= margin.

Records: ``LockService.grants`` ``(true time, client, token, expiry)``; ``Storage.applied`` and
``Storage.refused`` ``(true time, client, token)``. A write is *stale* when it is applied after
a write with a higher token (the newer holder's data is overwritten by the old holder's: the
corruption fencing prevents) and *outside its lease* when applied after its lease expired at
the lock service.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator import RpcError

if TYPE_CHECKING:
    from simulator import Message, Simulation

ACQUIRE, WRITE = "lock.acquire", "store.write"


class LockService:
    """A lock service node granting one lease at a time for ``ttl_s`` seconds (on its own clock),
    each grant with a fencing token one higher than the last (Kleppmann, "How to do distributed
    locking", 2016). Records ``grants`` ``(true time, client, token, true expiry)``.
    """
    def __init__(self, sim: Simulation, name: str = "lock", *, ttl_s: float = 1.0) -> None:
        if not (math.isfinite(ttl_s) and ttl_s > 0):
            raise ValueError(f"ttl_s must be a finite number of seconds > 0, got {ttl_s!r}")
        self.sim, self.name, self.ttl_s = sim, name, float(ttl_s)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.holder: str | None = None
        self.expiry = -math.inf  # on this service's clock
        self.token = 0
        self.grants: list[tuple[float, str, int, float]] = []  # (true time, client, token, true expiry)
        self.node.on(ACQUIRE, self._acquire)

    def _acquire(self, msg: Message):
        client = msg.payload
        clock = self.node.clock.now()
        if self.holder not in (None, client) and clock < self.expiry:
            raise RpcError(("held", self.holder))
        self.token += 1
        self.holder, self.expiry = client, clock + self.ttl_s
        # the same instant in true time: the service's TTL, converted through its clock's rate
        true_expiry = self.sim.now + self.ttl_s / (1 + self.node.clock.drift_ppm * 1e-6)
        self.grants.append((self.sim.now, client, self.token, true_expiry))
        return self.token


class Storage:
    """A storage node that applies client writes; with ``fencing`` it refuses a write whose token
    is lower than the highest seen (Kleppmann 2016). Records ``applied`` and ``refused`` ``(true
    time, client, token)``.
    """
    def __init__(self, sim: Simulation, name: str = "storage", *, fencing: bool = True) -> None:
        self.sim, self.name, self.fencing = sim, name, bool(fencing)
        self.node = sim.nodes.get(name) or sim.node(name)
        self.max_token = 0
        self.applied: list[tuple[float, str, int]] = []
        self.refused: list[tuple[float, str, int]] = []
        self.node.on(WRITE, self._write)

    def _write(self, msg: Message):
        client, token = msg.payload
        if self.fencing and token < self.max_token:
            self.refused.append((self.sim.now, client, token))
            raise RpcError(("stale_token", token, self.max_token))
        self.max_token = max(self.max_token, token)
        self.applied.append((self.sim.now, client, token))
        return True


class LeaseClient:
    """Loops: acquire the lease; while it is valid on this client's clock (minus ``margin_s``),
    check it, work ``work_s``, then write with the token; after a refusal or the lease's end,
    try to acquire again after ``retry_s``."""

    def __init__(self, sim: Simulation, name: str, *, lock: str = "lock", storage: str = "storage",
                 ttl_s: float = 1.0, work_s: float = 0.05, margin_s: float = 0.0, retry_s: float = 0.05,
                 start_at: float = 0.0, rpc_timeout_s: float = 0.5, clock: dict | None = None) -> None:
        for n, v in (("ttl_s", ttl_s), ("work_s", work_s), ("retry_s", retry_s), ("rpc_timeout_s", rpc_timeout_s)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number of seconds > 0, got {v!r}")
        if not (math.isfinite(margin_s) and 0 <= margin_s < ttl_s):
            raise ValueError(f"margin_s must be in [0, ttl_s), got {margin_s!r}")
        self.sim, self.name, self.lock, self.storage = sim, name, lock, storage
        self.node = sim.nodes.get(name) or sim.node(name, clock=clock)
        self.ttl_s, self.work_s, self.margin_s, self.retry_s, self.rpc_timeout_s = (
            ttl_s, work_s, margin_s, retry_s, rpc_timeout_s)
        self.writes_sent = 0
        sim.at(start_at, self._acquire)

    def _acquire(self) -> None:
        sent_at = self.node.clock.now()

        def got(outcome: str, token) -> None:
            if outcome == "ok":
                self._work(token, sent_at + self.ttl_s - self.margin_s)
            else:
                self.node.after(self.retry_s, self._acquire)

        self.node.call(self.lock, ACQUIRE, self.name, self.rpc_timeout_s, got)

    def _work(self, token: int, valid_until: float) -> None:
        if self.node.clock.now() >= valid_until:  # the check: still ours?
            self.node.after(self.retry_s, self._acquire)
            return
        # ... it is: work, then write. A pause during the work delays the write past the check.
        def write() -> None:
            self.writes_sent += 1

            def done(outcome: str, value) -> None:
                if outcome == "ok":
                    self._work(token, valid_until)
                else:
                    self.node.after(self.retry_s, self._acquire)

            self.node.call(self.storage, WRITE, (self.name, token), self.rpc_timeout_s, done)

        self.node.after(self.work_s, write)


def audit(lock: LockService, storage: Storage) -> dict[str, int]:
    """Stale writes (applied after a higher token's write) and writes applied outside their lease."""
    expiry = {tok: exp for _, _, tok, exp in lock.grants}
    stale = outside = 0
    highest = 0
    for t, _client, tok in storage.applied:
        if tok < highest:
            stale += 1
        highest = max(highest, tok)
        if t > expiry.get(tok, math.inf):
            outside += 1
    return {"applied": len(storage.applied), "refused": len(storage.refused), "stale_writes": stale,
            "outside_lease": outside, "grants": len(lock.grants)}
