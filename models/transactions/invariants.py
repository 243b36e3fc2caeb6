"""Business invariants of the shop, checked on a run's final state and over its timeline.

The invariants a consultant is asked about when "data is inconsistent across services":

- **money conserved**: ``sum(balances) + sum(charges)`` equals the opening total (payment's local
  transactions move money between an account and an order's charge, never create it);
- **inventory never negative**: no stock write below zero was ever observed;
- **consistent terminal state**: an ``APPROVED`` order is charged, reserved and shipped; a
  ``REJECTED`` (or, under presumed abort, never decided) order has none of these; an order still
  ``PENDING`` or held in doubt by a 2PC participant is *unfinished* (not a violation, but counted);
- **no double charge**: no order's charge exceeds its amount.

:func:`inconsistency_windows` measures the temporary inconsistency sagas trade for availability:
per order, the total time during which the participants' committed effects disagree with each
other or with the order's status (some applied, some not) — a dirty state other transactions can read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .world import TxWorld

_EPS = 1e-6


def check_invariants(world: TxWorld) -> dict[str, float]:
    """Counts per invariant on the world's current state (run it after the load drains)."""
    shop = world.shop
    pay, inv, ship = shop.store("payment"), shop.store("inventory"), shop.store("shipping")
    money = sum(v for k, v in pay.items() if k[0] in ("acct", "charge"))
    negative = len(shop.negative_stock) + sum(1 for k, v in inv.items() if k[0] == "stock" and v < 0)
    in_doubt = set()
    for p in world.participants2pc:
        in_doubt.update(p.store.prepared)
    out = dict.fromkeys(("orders", "approved", "rejected", "unfinished", "inconsistent", "double_charges"), 0)
    for o in world.client.orders:
        out["orders"] += 1
        status = world.order_status(o.id)
        charged = pay.get(("charge", o.id), 0.0)
        effects = (charged > 0, inv.get(("res", o.id), 0) > 0, ship.get(("ship", o.id), 0) > 0)
        if charged > o.amount + _EPS:
            out["double_charges"] += 1
        if status == "PENDING" or o.id in in_doubt:
            out["unfinished"] += 1
        elif status == "APPROVED":
            out["approved"] += 1
            out["inconsistent"] += not all(effects)
        else:
            out["rejected"] += 1
            out["inconsistent"] += any(effects)
    out["money_error"] = abs(money - shop.initial_money)
    out["negative_stock"] = negative
    out["violations"] = (out["inconsistent"] + out["double_charges"] + negative
                         + int(out["money_error"] > _EPS * max(1.0, shop.initial_money)))
    return out


def status_changes(world: TxWorld) -> list[tuple[float, int, str]]:
    """``(time, order_id, status)`` for every status the order service wrote."""
    out = []
    for oid, r in world.service.records.items():
        if world.protocol in ("saga", "choreography"):
            out.append((r.started, oid, "PENDING"))
            if not np.isnan(r.finished):
                out.append((r.finished, oid, r.status))
        elif not np.isnan(r.decided):
            out.append((r.decided, oid, "APPROVED" if r.outcome == "commit" else "REJECTED"))
    return out


def inconsistency_windows(world: TxWorld, until: float | None = None) -> np.ndarray:
    """Seconds each order spent with effects that disagree with each other or with its status."""
    until = world.sim.now if until is None else until
    n = len(world.services)
    events: dict[int, list] = defaultdict(list)
    for t, oid, svc, d in world.shop.effects:
        events[oid].append((t, 0, svc, d))
    for t, oid, st in status_changes(world):
        events[oid].append((t, 1, st, 0))
    out = []
    for oid in sorted(events):
        applied: dict[str, int] = defaultdict(int)
        status, bad_since, total = None, None, 0.0
        for t, kind, what, d in sorted(events[oid], key=lambda e: (e[0], e[1])):
            if kind == 0:
                applied[what] += d
            else:
                status = what
            k = sum(1 for v in applied.values() if v > 0)
            ok = (k == n and status == "APPROVED") or (k == 0 and status != "APPROVED")
            if not ok and bad_since is None:
                bad_since = t
            elif ok and bad_since is not None:
                total += t - bad_since
                bad_since = None
        if bad_since is not None:
            total += until - bad_since
        out.append(total)
    return np.asarray(out, dtype=float)


def twopc_metrics(world: TxWorld, blocked_after_s: float = 1.0) -> dict[str, float]:
    """In-doubt and lock-hold times over all 2PC participants; a transaction is *blocked* when some
    participant stayed in doubt longer than ``blocked_after_s`` (or still is at the end)."""
    now = world.sim.now
    doubt, blocked, holds = [], set(), []
    for p in world.participants2pc:
        for txid, (voted, resolved, _o) in p.votes.items():
            d = (now if np.isnan(resolved) else resolved) - voted
            doubt.append(d)
            if d > blocked_after_s or np.isnan(resolved):
                blocked.add(txid)
        holds += [b - a for _o, a, b in p.store.lock_holds]
        holds += [now - a for a in p.store.held_since()]
    doubt_a, holds_a = np.asarray(doubt or [0.0]), np.asarray(holds or [0.0])
    return {"in_doubt_mean_s": float(doubt_a.mean()), "in_doubt_max_s": float(doubt_a.max()),
            "in_doubt_total_s": float(doubt_a.sum()), "lock_hold_p99_s": float(np.quantile(holds_a, 0.99)),
            "lock_hold_max_s": float(holds_a.max()), "blocked_txns": len(blocked)}
