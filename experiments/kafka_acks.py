"""Does an acknowledged Kafka write survive a leader failover, and what does the safety cost in latency?

Setup: a 3-broker log (replication factor 3), one idempotent producer at ``rate`` messages/s
over ``partitions`` partitions, one consumer group reading everything. At ``cut_at`` the
leader of partition 0 (``kafka-b0``) is cut off from its two followers but not from clients;
at ``crash_at`` it crashes, before ``replica.lag.time.max.ms`` (Kafka's 30 s default) has
dropped the followers from the ISR, so the controller elects a follower that never received
the cut-off writes; the old leader recovers at ``recover_at`` and truncates its log to the new
leader's (KIP-101). Arms: ``acks=0``, ``acks=1`` and ``acks=all`` with
``min.insync.replicas=2`` — one world each, same seeds. The delivery checker counts acknowledged
messages never consumed ("acked but lost"); latency is send to acknowledgment.

Lesson (Apache Kafka documentation, "Replication" and the ``acks`` producer config; Kingsbury,
"Jepsen: Kafka", 2013): acks=1 acknowledges once the leader has the write, so everything the
isolated leader accepted is acknowledged and then lost; acks=all acknowledges only what every
in-sync replica holds, loses nothing, and pays a replication round trip on every write and a
stall (requests time out and are retried) while the ISR cannot make progress.

Reproduces (``validate``): acks=1 loses every write the cut-off leader accepted, rate x
(share of keys on partition 0) x (crash - cut); acks=all with min.insync.replicas=2 loses none
(the Kafka docs' acks=all guarantee).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.messaging.log import LogConfig
from models.messaging.scenarios import log_world
from simulator.history.delivery import check_delivery
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95

ARMS = {"acks=0": ("0", 1), "acks=1": ("1", 1), "acks=all, min.insync=2": ("all", 2)}


@parameters
class Params:
    rate: float = param(600.0, unit="msg/s", gt=0, le=100_000, help="producer rate")
    partitions: int = param(3, unit="partitions", ge=1, le=64, help="partitions of the topic")
    cut_at: float = param(2.0, unit="s", ge=0, le=3600, help="leader of partition 0 cut off from its followers")
    crash_at: float = param(5.0, unit="s", gt=0, le=3600, help="that leader crashes (the cut heals)")
    recover_at: float = param(8.0, unit="s", gt=0, le=3600, help="the old leader restarts")
    produce_until: float = param(12.0, unit="s", gt=0, le=3600, help="the producer stops")
    duration_s: float = param(20.0, unit="s", gt=0, le=7200, help="simulated time (consumers drain)")
    lag_max_s: float = param(30.0, unit="s", gt=0, le=3600, help="replica.lag.time.max.ms (Kafka: 30 s)")

    def __post_init__(self) -> None:
        if not self.cut_at < self.crash_at < self.recover_at < self.duration_s:
            raise ValueError(f"need cut_at < crash_at < recover_at < duration_s, got {self.cut_at}, {self.crash_at}, "
                             f"{self.recover_at}, {self.duration_s}")
        if not self.produce_until <= self.duration_s:
            raise ValueError(f"need produce_until <= duration_s, got {self.produce_until} > {self.duration_s}")


QUICK = Params(rate=400.0, produce_until=10.0, duration_s=14.0)


def _world(p: Params, seed: int, acks: str, min_isr: int):
    w = log_world(seed, acks=acks, min_insync_replicas=min_isr, partitions=p.partitions, rate=p.rate,
                  stop_at=p.produce_until, consumers=1,
                  log_config=LogConfig(broker_session_timeout_s=1.0, replica_lag_time_max_s=p.lag_max_s))
    f = w.sim.faults
    f.partition(p.cut_at, [["kafka-b0"], ["kafka-b1", "kafka-b2"]], heal_at=p.crash_at)
    f.crash(p.crash_at, "kafka-b0", recover_at=p.recover_at)
    w.sim.run(until=p.duration_s)
    return w


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, lat = [], []
    for arm, (acks, min_isr) in ARMS.items():
        w = _world(p, seed, acks, min_isr)
        r = check_delivery(w.log)
        t = r["table"]
        ack_lat = (t["acked_at"] - t["sent_at"]).dropna()
        calm = t[(t.sent_at < p.cut_at)]
        calm_lat = (calm["acked_at"] - calm["sent_at"]).dropna()
        rows.append({"arm": arm, "acks": acks, "min_insync": min_isr, "sent": r["sent"], "acked": r["acked"],
                     "acked_but_lost": r["lost"], "lost_fraction": r["lost_fraction"],
                     "duplicated": r["duplicated"], "ack_p50_calm_ms": 1e3 * float(calm_lat.median()),
                     "ack_p99_ms": 1e3 * float(np.quantile(ack_lat, 0.99)) if len(ack_lat) else float("nan"),
                     "ack_max_ms": 1e3 * float(ack_lat.max()) if len(ack_lat) else float("nan"),
                     "elections": w.cluster.elections})
        lat.append(pd.DataFrame({"arm": arm, "sent_at": t["sent_at"], "ack_latency_s": t["acked_at"] - t["sent_at"],
                                 "lost": t["verdict"] == "lost"}))
    return {"summary": pd.DataFrame(rows), "messages": pd.concat(lat, ignore_index=True)}


def validate(quick: bool) -> list[Check]:
    """acks=1's loss against the writes the isolated leader accepted; acks=all's against zero.

    Kafka docs (producer config ``acks``): with acks=1 "the leader will write the record to its local
    log but will respond without awaiting full acknowledgement from all followers ... should the
    leader fail immediately after acknowledging the record but before the followers have replicated
    it then the record will be lost"; acks=all "guarantees that the record will not be lost as long
    as at least one in-sync replica remains alive". Keys are uniform over ``keys``, so partition 0
    receives rate x k0/keys per second, and the leader cut off for ``crash_at - cut_at`` acknowledges
    all of it.
    """
    p = Params(rate=400.0, produce_until=7.0, recover_at=8.0, duration_s=11.0)
    seeds = (1,) if quick else tuple(range(1, 11))
    lost1, lost_all, share = [], [], 0.0
    for s in seeds:
        w = _world(p, s, "1", 1)
        share = w.producer._part_of.count(0) / w.producer.keys
        lost1.append(check_delivery(w.log)["lost"])
        lost_all.append(check_delivery(_world(p, s, "all", 2).log)["lost"])
    expected = p.rate * share * (p.crash_at - p.cut_at)
    m, ci = mean_ci95(lost1)
    setup = (f"3 brokers RF 3, {p.partitions} partitions, {p.rate:g} msg/s over 50 uniform keys ({share:.0%} on "
             f"partition 0); its leader cut off from followers {p.cut_at:g}-{p.crash_at:g} s, then crashes; "
             f"{len(seeds)} seed(s)")
    return [
        Check("Kafka documentation, producer config 'acks' (acks=1)", setup,
              "acks=1: acknowledged messages lost (rate x share0 x cut length)", expected,
              float(m), 4 * (expected / len(seeds)) ** 0.5 + 5,
              "4 Poisson SE of the count in the window, plus 5 for writes in flight at the cut's edges",
              ci if len(seeds) > 1 else None),
        Check("Kafka documentation, producer config 'acks' (acks=all, min.insync.replicas=2)", setup,
              "acks=all: acknowledged messages lost", 0.0, float(np.mean(lost_all)), 0.0,
              "a guarantee: one lost acknowledged write is a miss"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    s = results["summary"].groupby("arm", sort=False).mean(numeric_only=True)
    m = results["messages"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    cols = [plots.color_for(a) for a in s.index]
    a1.bar(s.index, s["acked_but_lost"], color=cols)
    for i, v in enumerate(s["acked_but_lost"]):
        a1.text(i, v, f"{v:.0f}", ha="center", va="bottom")
    a1.set_ylabel("acknowledged messages never consumed")
    a1.set_title(f"leader cut off at {p.cut_at:g} s, crashes at {p.crash_at:g} s", fontsize=9)
    for arm in s.index:
        g = m[m.arm == arm].dropna(subset=["ack_latency_s"])
        a2.plot(g["sent_at"], 1e3 * g["ack_latency_s"], ".", ms=2, color=plots.color_for(arm), label=arm)
    a2.axvspan(p.cut_at, p.crash_at, color="0.85", label="leader cut off")
    a2.axvline(p.crash_at, color="k", lw=0.8)
    a2.set_yscale("log")
    a2.set_xlabel("send time (s)")
    a2.set_ylabel("send -> acknowledged (ms)")
    a2.legend(fontsize=8, markerscale=4)
    fig.suptitle("acks=1 acknowledges writes that a leader failover then loses;\nacks=all with min.insync.replicas=2 "
                 "loses none, paying a replication round trip per write and a stall while an ISR member is cut off")
    return {"kafka_acks": fig}
