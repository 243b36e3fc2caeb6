"""Does every created order produce exactly one event downstream when the service crashes between its writes?

Setup: an order service creates orders at ``rate`` per second and must tell a billing consumer
about each through an SQS-like queue (``models.messaging.QueueBroker``). The service crashes at
random (mean every ``crash_every_s``, down ``down_s``) and the broker is down once
(``broker_down_at`` for ``broker_down_s``). Arms: *dual write* (commit the order row, then publish —
``gap_s`` apart, 3 publish tries); *publish first* (publish, then commit); *outbox* (row + outbox row
in one local transaction, a relay publishes at least once, the consumer deduplicates by event id);
*outbox, no dedupe* (the same relay, a consumer that applies every delivery). After the load stops
the system drains, then every order is compared with what billing applied.

Lesson (Richardson, "Microservices Patterns" §3.3.7, *Transactional outbox* and §3.3.6, *Idempotent
consumer*): two writes to two systems are not atomic. Writing the database first loses the events of
orders whose publish a crash or a broker outage prevented; publishing first invents events for
orders that never committed. The outbox makes the event part of the order's local transaction, so
nothing is lost or invented — but its relay is at-least-once, so only a deduplicating consumer
applies each event exactly once.

Reproduces (``validate``): dual-write loss = P(crash between the two writes) = 1 - exp(-gap /
crash_every) per order; publish-first phantoms = P(crash between the publish and the commit);
the outbox loses and invents none, and with a deduplicating consumer applies each event once.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.transactions.outbox import OutboxConfig, build_outbox_world, check_outbox
from simulator import LogNormal, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95

ARMS = {"dual write (DB, then publish)": ("dual_write", True), "publish first (then DB)": ("publish_first", True),
        "outbox + dedupe": ("outbox", True), "outbox, no dedupe": ("outbox", False)}


@parameters
class Params:
    rate: float = param(100.0, unit="orders/s", gt=0, le=10_000, help="order creation rate")
    load_s: float = param(20.0, unit="s", gt=0, le=3600, help="how long orders arrive")
    crash_every_s: float = param(1.5, unit="s", gt=0, le=3600, help="mean time between order-service crashes")
    down_s: float = param(0.2, unit="s", gt=0, le=600, help="how long the order service stays down")
    gap_s: float = param(0.02, unit="s", gt=0, le=10, help="time between the two writes of a dual write")
    broker_down_at: float = param(8.0, unit="s", ge=0, le=3600, help="the broker crashes")
    broker_down_s: float = param(1.0, unit="s", gt=0, le=600, help="the broker's outage")
    drain_s: float = param(10.0, unit="s", gt=0, le=3600, help="time after the load to drain")

    def __post_init__(self) -> None:
        if not self.broker_down_at + self.broker_down_s <= self.load_s:
            raise ValueError(f"need broker_down_at + broker_down_s <= load_s, got {self.broker_down_at} + "
                             f"{self.broker_down_s} > {self.load_s}")


LATENCY = LogNormal(median=0.002, sigma=0.3)
STORE_S = 0.01  # the broker persists a message before acknowledging it (build_outbox_world's default)
QUICK = Params(load_s=8.0, crash_every_s=0.7, broker_down_at=4.0, drain_s=6.0)


def _arm(p: Params, seed: int, mode: str, dedupe: bool, broker_outage: bool = True) -> tuple[dict, int]:
    sim = Simulation(seed=seed)
    sim.network(latency=LATENCY)
    w = build_outbox_world(sim, mode, rate=p.rate, stop_at=p.load_s, dedupe=dedupe,
                           config=OutboxConfig(mode=mode, gap_s=p.gap_s), store_s=STORE_S)
    rng = sim.rng("outbox.crashes")  # the same crash times in every arm
    t = rng.exponential(p.crash_every_s)
    crashes = 0
    while t + p.down_s < p.load_s:
        sim.faults.crash(t, "orders", recover_at=t + p.down_s)
        crashes += 1
        t += p.down_s + rng.exponential(p.crash_every_s)
    if broker_outage:
        sim.faults.crash(p.broker_down_at, "broker", recover_at=p.broker_down_at + p.broker_down_s)
    sim.run(until=p.load_s + p.drain_s)
    return check_outbox(w), crashes


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows = []
    for arm, (mode, dedupe) in ARMS.items():
        r, crashes = _arm(p, seed, mode, dedupe)
        per = 1000.0 / max(1, r["orders"])
        rows.append({"arm": arm, "mode": mode, "dedupe": dedupe, **r, "crashes": crashes,
                     "lost_per_1000": r["lost"] * per, "phantom_per_1000": r["phantom"] * per,
                     "duplicated_per_1000": r["duplicated"] * per})
    return {"summary": pd.DataFrame(rows)}


def validate(quick: bool) -> list[Check]:
    """Lost and phantom events against the chance that a crash falls between the two writes.

    Crashes come at exponential gaps of mean C while the service is up (memoryless), so an order
    committed at t loses its event iff the next crash comes within the ``gap_s`` before its publish
    is sent: 1 - exp(-gap / C). Publishing first, the window is the publish round trip (two network
    hops and the broker's ``store_s``) plus the gap. No broker outage here, so every loss is a crash
    between the writes (Richardson §3.3.7: "the service must atomically update the database and
    publish"). The outbox: none lost, none invented; with dedupe none duplicated (§3.3.6).
    """
    p = Params(load_s=10.0 if quick else 80.0, crash_every_s=0.5, gap_s=0.05, drain_s=4.0)
    c = p.crash_every_s
    hop = LATENCY.median * math.exp(LATENCY.sigma ** 2 / 2)
    setup = (f"{p.rate:g} orders/s for {p.load_s:g} s; service crashes at exponential gaps (mean {c:g} s, down "
             f"{p.down_s:g} s); gap between writes {p.gap_s * 1e3:g} ms; no broker outage")
    seeds = tuple(range(1, 6)) if quick else tuple(range(1, 31))
    rows = []
    for arm, window, what in (("dual_write", p.gap_s, "lost"), ("publish_first", p.gap_s + 2 * hop + STORE_S,
                                                                  "phantom")):
        fr = []
        for sd in seeds:
            r, _ = _arm(p, sd, arm, True, broker_outage=False)
            fr.append(r[what] / (r["orders"] if what == "lost" else r["events_applied"]))
        q = 1 - math.exp(-window / c)
        m, ci = mean_ci95(fr)
        rows.append(Check("Richardson, Microservices Patterns §3.3.7 (dual write is not atomic); crash process "
                          "memoryless", f"{arm}; " + setup + f"; {len(seeds)} seeds",
                          f"{arm}: {what} events per {'order' if what == 'lost' else 'event applied'} "
                          f"(1 - exp(-{window * 1e3:.0f} ms / C))", q, m,
                          4 * float(np.std(fr, ddof=1)) / math.sqrt(len(fr)),
                          f"4 SE of {len(seeds)} independent runs (one crash takes rate x window orders with it, so "
                          "losses cluster: a per-order binomial SE would be too small)", ci))
    for dedupe in (True, False):
        r, _ = _arm(p, seeds[0], "outbox", dedupe, broker_outage=False)
        rows.append(Check("Richardson, Microservices Patterns §3.3.7 (transactional outbox)", "outbox; " + setup,
                          f"outbox{'' if dedupe else ', no dedupe'}: lost + phantom events", 0.0,
                          float(r["lost"] + r["phantom"]), 0.0, "a guarantee: the event is in the row's transaction"))
        if dedupe:
            rows.append(Check("Richardson, Microservices Patterns §3.3.6 (idempotent consumer)", "outbox + dedupe; "
                              + setup, "outbox + dedupe: events applied twice", 0.0, float(r["duplicated"]), 0.0,
                              "a guarantee: the consumer records each event id it applied"))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt
    import numpy as np

    s = results["summary"].groupby("arm", sort=False).mean(numeric_only=True)
    fig, ax = plt.subplots(figsize=(11, 4.8), constrained_layout=True)
    x = np.arange(len(s))
    for off, col, color in ((-0.27, "lost", "tab:red"), (0, "phantom", "tab:purple"),
                            (0.27, "duplicated", "tab:orange")):
        ax.bar(x + off, s[col], 0.27, color=color, label=f"{col} events")
        for i, v in enumerate(s[col]):
            ax.text(x[i] + off, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [f"{a}\n({s['orders'].iloc[i]:.0f} orders)" for i, a in enumerate(s.index)], fontsize=8)
    ax.set_ylabel("events (orders compared with what billing applied)")
    ax.set_title(f"order service crashes every ~{p.crash_every_s:g} s for {p.down_s:g} s; broker down "
                 f"{p.broker_down_s:g} s at {p.broker_down_at:g} s", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("Two writes are not atomic: DB-then-publish loses events, publish-then-DB invents them;\n"
                 "the outbox loses and invents none, and its at-least-once relay needs a deduplicating consumer")
    return {"outbox_vs_dual_write": fig}
