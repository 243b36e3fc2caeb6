"""Orchestrate a saga or choreograph it: what does each cost in messages, latency and knowing where an order is?

Setup: the same order workload (``rate`` orders/s, each inventory → payment → shipping; shipping refuses
``ship_fail_p`` of the orders, so those are compensated) runs through an orchestrated saga
(``models.transactions.saga``: the order service calls each step and logs progress) and through a
choreographed one (``models.transactions.choreography``: each service reacts to events on an SQS-like
broker and publishes the next; compensation by events). The payment service is down from
``outage_at`` for ``outage_s`` — mid-saga for the orders in flight. Same seeds, same orders, same fault.

Lesson (Richardson, "Microservices Patterns" §4.2): both keep every business invariant through the
outage (orders wait and finish; choreography's events simply wait in payment's queue, the
orchestrator retries). Choreography has no coordinator to build or to crash, but every step is an
event through the broker — several times the network messages of the orchestrator's calls, and a
longer chain of hops per order — and nobody holds an order's progress: to tell where one order is
you must look at the order service, each participant's store and the broker's queues, where the
orchestrator's saga log is one place.

Reproduces (``validate``): the orchestrator's messages, 2 + 2 per step (+ 2 per compensation),
and no invariant broken or order unfinished in either style once the outage has drained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.transactions.choreography import build_choreography_world
from models.transactions.invariants import check_invariants
from models.transactions.saga import SagaStep
from models.transactions.shop import ShopConfig
from models.transactions.world import build_world
from simulator import LogNormal, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check

STEPS = ("inventory", "payment", "shipping")
ARMS = ("orchestrated", "choreographed")


@parameters
class Params:
    rate: float = param(20.0, unit="orders/s", gt=0, le=2000, help="order arrival rate")
    load_s: float = param(20.0, unit="s", gt=0, le=3600, help="how long orders arrive")
    ship_fail_p: float = param(0.1, unit="probability", ge=0, le=1, help="shipping refuses an order (compensated)")
    outage_at: float = param(8.0, unit="s", ge=0, le=3600, help="the payment service goes down")
    outage_s: float = param(3.0, unit="s", gt=0, le=600, help="how long payment stays down")
    drain_s: float = param(15.0, unit="s", gt=0, le=3600, help="time after the load for sagas to finish")

    def __post_init__(self) -> None:
        if not self.outage_at + self.outage_s <= self.load_s:
            raise ValueError(f"need outage_at + outage_s <= load_s, got {self.outage_at} + {self.outage_s} > "
                             f"{self.load_s}")


QUICK = Params(rate=15.0, load_s=8.0, outage_at=3.0, outage_s=2.0, drain_s=8.0)


def _one(p: Params, seed: int, arm: str, outage: bool = True) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.002, sigma=0.3))
    shop = ShopConfig(ship_fail_p=p.ship_fail_p)
    if arm == "orchestrated":
        w = build_world(sim, "saga", shop=shop, rate=p.rate, stop_at=p.load_s,
                        steps=tuple(SagaStep(s) for s in STEPS))
    else:
        w = build_choreography_world(sim, shop=shop, rate=p.rate, stop_at=p.load_s)
    if outage:
        sim.faults.crash(p.outage_at, "payment", recover_at=p.outage_at + p.outage_s)
    places: list[int] = []

    def snapshot() -> None:  # mid-outage: where is each unfinished order?
        for o in w.client.orders:
            if w.order_status(o.id) == "PENDING":
                # the orchestrator's saga log holds the order's step: one place, by construction
                places.append(1 if arm == "orchestrated" else w.service.places_to_look(o.id))

    sim.at(p.outage_at + p.outage_s / 2, snapshot)
    sim.run(until=p.load_s + p.drain_s)
    recs = list(w.service.records.values())
    lat = np.array([r.finished - r.started for r in recs])
    hit = np.array([p.outage_at - 1.0 <= r.started <= p.outage_at + p.outage_s for r in recs])
    inv = check_invariants(w)
    return {"arm": arm, **inv, "messages_per_order": sim.net.sent / max(1, len(recs)),
            "latency_p50_s": float(np.nanquantile(lat, 0.5)), "latency_p99_s": float(np.nanquantile(lat, 0.99)),
            "outage_orders_latency_mean_s": float(np.nanmean(lat[hit])) if hit.any() else np.nan,
            "pending_mid_outage": len(places), "places_to_look": float(np.mean(places)) if places else np.nan}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    return {"summary": pd.DataFrame([_one(p, seed, arm) for arm in ARMS])}


def validate(quick: bool) -> list[Check]:
    """Message arithmetic of orchestration (Richardson §4.2.2: the orchestrator sends each participant a
    command and waits for its reply; a failed step is undone by compensating commands in reverse
    order) and the saga's promise (§4.1: every saga ends with all its steps done or compensated).

    An approved order costs place + reply + a command and reply per step: 2 + 2 x 3 = 8; one that
    shipping refuses also costs two compensations (payment, inventory): 12.
    """
    p = QUICK if quick else Params(load_s=60.0)
    seeds = (1, 2) if quick else tuple(range(1, 11))
    r = [_one(p, s, "orchestrated", outage=False) for s in seeds]
    orders, approved, rejected = (sum(x[k] for x in r) for k in ("orders", "approved", "rejected"))
    sent = sum(x["messages_per_order"] * x["orders"] for x in r)  # recs == orders in this world
    rows = [Check("Richardson, Microservices Patterns §4.2.2 (orchestration: command + reply per step)",
                  f"no faults, {p.rate:g} orders/s, 3 steps, shipping refuses {p.ship_fail_p:.0%}; {approved} "
                  f"approved, {rejected} compensated, {len(seeds)} seed(s)",
                  "orchestrated: messages per order ((8 x approved + 12 x compensated) / orders)",
                  (8 * approved + 12 * rejected) / orders, sent / orders, 0.0, "a count: no retries without faults")]
    for arm in ARMS:
        f = [_one(p, s, arm) for s in seeds]
        bad = sum(x["violations"] + x["unfinished"] for x in f)
        rows.append(Check("Garcia-Molina & Salem 1987; Richardson §4.1 (a saga completes or compensates)",
                          f"payment down {p.outage_at:g}-{p.outage_at + p.outage_s:g} s, then drained; "
                          f"{sum(x['orders'] for x in f)} orders, {len(seeds)} seed(s)",
                          f"{arm}: invariant violations + unfinished orders after the drain", 0.0, float(bad), 0.0,
                          "a guarantee: one broken invariant or stuck order is a miss"))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"].groupby("arm", sort=False).mean(numeric_only=True).reindex(list(ARMS))
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), constrained_layout=True)
    colors = ["tab:blue", "tab:orange"]
    panels = [("messages_per_order", "network messages per order"),
              ("latency_p50_s", "order latency p50 (s)"),
              ("outage_orders_latency_mean_s", f"mean latency of orders placed\naround the {p.outage_s:g} s "
                                               "payment outage (s)"),
              ("places_to_look", "places to look to tell\none pending order's state")]
    for ax, (col, label) in zip(axes, panels, strict=True):
        ax.bar(s.index, s[col], color=colors)
        for i, v in enumerate(s[col]):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=9)
    axes[0].set_title(f"violations: {s['violations'].iloc[0]:.0f} vs {s['violations'].iloc[1]:.0f}; "
                      f"unfinished: {s['unfinished'].iloc[0]:.0f} vs {s['unfinished'].iloc[1]:.0f}", fontsize=9)
    fig.suptitle("Both styles ride out a payment outage with no invariant broken; choreography pays with several "
                 "times the messages\nand an order's state spread over many places, where the orchestrator's log "
                 "is one place to look")
    return {"saga_orchestration_vs_choreography": fig}
