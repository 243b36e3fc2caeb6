"""Should the order flow call its downstream services over HTTP or hand them work over a queue?

Setup: users place orders (Poisson, ``rate`` per second, 2.5 s timeout, no retries) at an order
service; each order is charged by a payment service and reserved by an inventory service
(``inventory_ms`` of work per order, ``inventory_workers`` in parallel). Two wirings of the same
flow, same seeds: **synchronous** RPC (order calls payment calls inventory; timeouts 1.5 s and
1 s; the user's answer waits for all three) and **asynchronous** over an SQS-like queue broker
(the order service answers once the broker *stored* the order; payment consumes the
``payments`` queue and sends to the ``inventory`` queue; inventory consumes that, 10 messages per
receive). The inventory service is down from ``outage_at`` for ``outage_s`` seconds.

Lesson (Richardson, *Microservices Patterns*, ch. 3, "synchronous communication reduces
availability"; Hohpe & Woolf, *Enterprise Integration Patterns*; Amazon SQS Developer Guide,
"ApproximateAgeOfOldestMessage"): over RPC every order placed during the outage fails — the
caller's availability is the product of its dependencies'. Over a queue users never notice:
orders are accepted in a few milliseconds throughout, and the work waits in a backlog that grows
at the arrival rate (``rate x outage_s`` messages), then drains in ``backlog / (mu - rate)``
seconds at the consumers' capacity ``mu``. The price of decoupling is eventual consistency: an
order the user was told is placed is not reflected in inventory for up to ``outage_s`` plus the
catch-up — the staleness the RPC design never has.

Reproduces (``validate``): availability during the outage = the product of the chain's
availabilities (0 over RPC; 1 over the queue, whose front door needs only the broker); backlog =
rate x outage; catch-up = backlog / (mu - rate).
"""

from __future__ import annotations

import math

import pandas as pd

from models.messaging import ConsumerConfig, HandlerConfig, QueueBroker, QueueConfig, QueueConsumer
from models.messaging.flow import QueueFrontDoor, QueueRelay, RpcStage
from models.services import PoissonClient
from simulator import Exponential, LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, delivery_table
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95

ARMS = ("synchronous (RPC)", "asynchronous (queue)")
LATENCY = LogNormal(median=0.001, sigma=0.3)
BATCH = 10  # messages per receive (SQS's maximum)
USER_TIMEOUT_S = 2.5


@parameters
class Params:
    rate: float = param(100.0, unit="orders/s", gt=0, le=5000, help="order arrival rate (Poisson)")
    inventory_ms: float = param(8.0, unit="ms", gt=0, le=10_000, help="inventory work per order (exponential mean)")
    inventory_workers: int = param(2, unit="workers", ge=1, le=1000, help="inventory consumers / threads")
    outage_at: float = param(20.0, unit="s", ge=0, le=3600, help="when the inventory service goes down")
    outage_s: float = param(30.0, unit="s", gt=0, le=3600, help="how long it stays down")
    duration_s: float = param(100.0, unit="s", gt=0, le=7200, help="simulated time (orders stop 5 s before)")
    window_s: float = param(1.0, unit="s", gt=0, le=600, help="width of the time-series windows")

    def __post_init__(self) -> None:
        if not self.outage_at + self.outage_s + 5 <= self.duration_s:
            raise ValueError(f"need outage_at + outage_s + 5 <= duration_s, got {self.outage_at} + {self.outage_s} "
                             f"+ 5 > {self.duration_s}")
        if not self.rate < capacity(self):
            raise ValueError(f"rate ({self.rate}/s) must be below the inventory capacity (~{capacity(self):.0f}/s "
                             "from inventory_workers and inventory_ms), or the queue never catches up")


def capacity(p: Params) -> float:
    """The inventory consumers' drain rate mu while a backlog waits: each worker spends, per
    message, its work, one delete round trip, and a tenth of a receive round trip."""
    rtt = 2 * LATENCY.median * math.exp(LATENCY.sigma ** 2 / 2)
    return p.inventory_workers / (p.inventory_ms / 1e3 + rtt + rtt / BATCH)


def theory(p: Params) -> dict[str, float]:
    """Backlog at the end of the outage (rate x outage) and catch-up time backlog / (mu - rate)."""
    backlog = p.rate * p.outage_s
    return {"backlog": backlog, "catch_up_s": backlog / (capacity(p) - p.rate), "capacity": capacity(p)}


QUICK = Params(rate=60.0, outage_at=5.0, outage_s=10.0, duration_s=35.0)


def _world(p: Params, seed: int, arm: str):
    sim = Simulation(seed=seed)
    sim.network(latency=LATENCY)
    log = DeliveryLog()
    stop = p.duration_s - 5
    broker = None
    if arm == ARMS[0]:
        RpcStage(sim, "order", "order", work=Exponential(0.002), next_node="payment", next_op="charge", timeout_s=1.5,
                 log=log, first=True)
        RpcStage(sim, "payment", "charge", work=Exponential(0.003), next_node="inventory", next_op="reserve",
                 timeout_s=1.0)
        inv = sim.node("inventory")

        def reserve(msg):
            log.process(msg.payload, 0, sim.now)
            return msg.payload

        inv.serve("reserve", reserve, service=Exponential(p.inventory_ms / 1e3), workers=p.inventory_workers)
    else:
        broker = QueueBroker(sim, "broker", queues={"payments": QueueConfig(visibility_timeout_s=10.0),
                                                    "inventory": QueueConfig(visibility_timeout_s=10.0)})
        QueueFrontDoor(sim, "order", "order", "broker", "payments", log=log, work=Exponential(0.002), timeout_s=1.5)
        QueueRelay(sim, "payment", "broker", "payments", "inventory", handler=HandlerConfig(Exponential(0.003)),
                   config=ConsumerConfig(concurrency=4, max_messages=BATCH))
        QueueConsumer(sim, "inventory", "broker", "inventory", log=log,
                      handler=HandlerConfig(Exponential(p.inventory_ms / 1e3)),
                      config=ConsumerConfig(concurrency=p.inventory_workers, max_messages=BATCH))
        broker.sample_every(0.25, until=p.duration_s)
    PoissonClient(sim, "users", ["order"], op="order", rate=p.rate, timeout_s=USER_TIMEOUT_S, stop_at=stop)
    sim.faults.crash(p.outage_at, "inventory", recover_at=p.outage_at + p.outage_s)
    return sim, log, broker


def _catch_up(depth: pd.DataFrame, p: Params) -> tuple[float, float]:
    """(peak depth, seconds from the recovery until the depth is back to its pre-outage peak)."""
    before = depth[depth.time < p.outage_at]["depth"]
    normal = float(before.max()) if len(before) else 0.0
    after = depth[depth.time >= p.outage_at + p.outage_s]
    back = after[after.depth <= max(normal, BATCH * p.inventory_workers)]
    end = p.outage_at + p.outage_s
    return float(depth["depth"].max()), (float(back.time.iloc[0]) - end) if len(back) else math.nan


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    series, summary, depths = [], [], []
    th = theory(p)
    t0, t1 = p.outage_at, p.outage_at + p.outage_s
    for arm in ARMS:
        sim, log, broker = _world(p, seed, arm)
        sim.run(until=p.duration_s)
        req = sim.metrics.requests()
        tab = delivery_table(log)
        tab["staleness_s"] = (tab.first_processed_at - tab.acked_at).clip(lower=0.0)
        w = (req.start // p.window_s) * p.window_s
        g = req.assign(window=w, ok=req.outcome == "ok").groupby("window")
        tw = tab[tab.acked].assign(window=(tab.sent_at // p.window_s) * p.window_s).groupby("window")
        s = pd.DataFrame({"success_rate": g["ok"].mean(), "latency_p99_s": g["latency"].quantile(0.99),
                          "staleness_max_s": tw["staleness_s"].max(),
                          "staleness_mean_s": tw["staleness_s"].mean()}).reset_index().assign(arm=arm)
        series.append(s)
        during = req[(req.start >= t0) & (req.start < t1)]
        ok = req[req.outcome == "ok"]
        row = {"arm": arm, "orders": len(req), "availability": float((req.outcome == "ok").mean()),
               "availability_during_outage": float((during.outcome == "ok").mean()),
               "latency_p50_ms": float(ok.latency.quantile(0.5) * 1e3),
               "latency_p99_ms": float(ok.latency.quantile(0.99) * 1e3),
               "latency_p99_during_ms": float(during.latency.quantile(0.99) * 1e3),
               "acked_not_applied": int((tab.acked & (tab.processed == 0)).sum()),
               "staleness_p50_s": float(tab[tab.acked].staleness_s.quantile(0.5)),
               "staleness_max_s": float(tab[tab.acked].staleness_s.max()),
               "peak_backlog": 0.0, "backlog_theory": 0.0, "catch_up_s": 0.0, "catch_up_theory_s": 0.0}
        if broker is not None:
            m = broker.metrics()
            d = m[m.queue == "inventory"].assign(depth=lambda x: x.visible + x.in_flight)
            depths.append(d[["time", "depth", "oldest_age_s"]].assign(arm=arm))
            peak, cu = _catch_up(d, p)
            row.update(peak_backlog=peak, backlog_theory=th["backlog"], catch_up_s=cu,
                       catch_up_theory_s=th["catch_up_s"])
        summary.append(row)
    return {"summary": pd.DataFrame(summary), "timeseries": pd.concat(series, ignore_index=True),
            "backlog": pd.concat(depths, ignore_index=True)}


def validate(quick: bool) -> list[Check]:
    """The closed forms of the docstring, over independent seeds.

    Availability: Richardson, *Microservices Patterns* §3.4 ("the availability of a synchronous
    chain is the product of its services'"); the backlog grows at the arrival rate while the
    consumer is down (the SQS guide's ApproximateNumberOfMessagesVisible) and drains at mu - rate.
    """
    p = Params(rate=60.0, outage_at=5.0, outage_s=10.0, duration_s=26.0) if quick else Params()
    seeds = (1, 2) if quick else tuple(range(1, 11))
    rows = [run(p, s)["summary"].set_index("arm") for s in seeds]
    th = theory(p)
    n = len(seeds)
    setup = (f"{p.rate:g} orders/s, inventory {p.inventory_workers} workers x {p.inventory_ms:g} ms (mu = "
             f"{th['capacity']:.0f}/s) down {p.outage_at:g}-{p.outage_at + p.outage_s:g} s; {n} seeds")
    edge = "orders in flight at the outage's edges (a few of the rate x outage placed during it)"

    def col(arm: str, c: str) -> list[float]:
        return [float(r.loc[arm, c]) for r in rows]

    rpc, q = col(ARMS[0], "availability_during_outage"), col(ARMS[1], "availability_during_outage")
    peak, cu = col(ARMS[1], "peak_backlog"), col(ARMS[1], "catch_up_s")
    se_backlog = math.sqrt(th["backlog"] / n)  # Poisson count of arrivals during the outage
    grid = 0.25  # the broker's depth is sampled every 0.25 s
    mp, cip = mean_ci95(peak)
    mc, cic = mean_ci95(cu)
    src = "Richardson, Microservices Patterns (2018) §3.4: availability of a synchronous chain = product"
    return [
        Check(src, setup + "; order -> payment -> inventory over RPC", "RPC: orders accepted during the outage",
              1.0 * 1.0 * 0.0, float(sum(rpc) / n), 0.01, edge),
        Check(src + "; Hohpe & Woolf, EIP 'Guaranteed Delivery'", setup + "; over SQS-like queues",
              "queue: orders accepted during the outage", 1.0, float(sum(q) / n), 0.01, edge),
        Check("backlog = rate x outage (SQS guide, ApproximateNumberOfMessagesVisible)", setup,
              "inventory queue: peak depth (messages)", th["backlog"], mp,
              4 * se_backlog + p.rate * grid + BATCH * p.inventory_workers,
              "4 Poisson SE of the arrivals in the outage, plus rate x the 0.25 s sampling grid and the "
              "messages the consumers held when they went down", cip),
        Check("catch-up = backlog / (mu - rate) (fluid queue drain)", setup + "; mu from the work plus delete "
              "and 1/10 receive round trips", "inventory queue: seconds to drain after recovery", th["catch_up_s"],
              mc, (4 * se_backlog + BATCH * p.inventory_workers) / (th["capacity"] - p.rate) + grid,
              "the backlog's 4 Poisson SE and the 'drained' threshold (10 x workers messages) at mu - rate, "
              "plus the 0.25 s grid", cic),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts, bl = results["timeseries"], results["backlog"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "window"], as_index=False).mean(numeric_only=True)
        bl = bl.groupby(["arm", "time"], as_index=False).mean(numeric_only=True)
    th = theory(p)
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True, constrained_layout=True)
    for ax in axes:
        plots.shade_faults(ax, [(p.outage_at, p.outage_at + p.outage_s, "inventory down")], label=ax is axes[0])
    for arm, g in ts.groupby("arm", sort=False):
        c = plots.color_for(arm)
        axes[0].plot(g.window, g.success_rate, color=c, label=arm)
        axes[1].plot(g.window, g.latency_p99_s * 1e3, color=c, label=arm)
        axes[3].plot(g.window, g.staleness_max_s, color=c, label=arm)
    axes[0].set_ylabel("orders accepted\n(fraction, per window)")
    axes[0].legend(loc="lower left", fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("user latency p99 (ms)")
    c = plots.color_for(ARMS[1])
    axes[2].plot(bl.time, bl.depth, color=c, label="inventory queue depth (async)")
    end = p.outage_at + p.outage_s
    axes[2].plot([p.outage_at, end, end + th["catch_up_s"]], [0, th["backlog"], 0], color="0.3", ls="--", lw=1,
                 label=f"theory: rate x outage = {th['backlog']:.0f}, drained in backlog/(mu-rate) = "
                       f"{th['catch_up_s']:.0f} s")
    axes[2].set_ylabel("backlog (messages)")
    axes[2].legend(loc="upper right", fontsize=8)
    axes[3].set_ylabel("staleness: inventory lags\nthe user's 'ok' by (s, max)")
    axes[3].set_xlabel("order time (s)")
    fig.suptitle("Over RPC the inventory outage fails every order; over a queue users never see it —\n"
                 "the work waits in a backlog and inventory is stale for up to the outage plus the catch-up")
    return {"queue_vs_http": fig}
