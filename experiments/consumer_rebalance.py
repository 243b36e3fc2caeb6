"""When do stop-the-world pauses turn a Kafka consumer group into a rebalance storm, and what cures it?

Setup: a producer writes ``rate`` messages per second (Poisson, 50 keys) to ``partitions``
partitions of a 3-broker Kafka-like log (acks=all); a consumer group of ``consumers`` members
reads them, ``service_ms`` per record, up to ``max_poll_records`` per batch, committing after
processing (at-least-once), range assignment. Every member freezes now and then for
``pause_s`` (a stop-the-world GC pause or VM stall: ``node.pause``), at exponential gaps of mean
``pause_every_s``, the same instants in every arm. Arms: a ``session_s`` session timeout shorter
than the pauses (heartbeat every third of it, Kafka's advice); the cure of a session timeout
longer than any pause (``long_session_s``); and the cure of shorter pauses (``short_pause_s``,
e.g. a tuned or concurrent collector) under the short timeout.

Lesson (Apache Kafka documentation, consumer configs ``session.timeout.ms`` and
``heartbeat.interval.ms``; KIP-62 and KIP-345 (static membership, which avoids rebalances on
restarts but still needs a session timeout longer than the pause); Confluent, "Kafka consumer
group rebalance" troubleshooting notes): a member that is silent longer than the session timeout
is evicted — one rebalance — and rejoins when it wakes — another. With range assignment most
partitions change owner each time, and every batch that was processed but not yet committed is
processed again by its next owner: duplicates. The repeats eat the spare capacity, lag and
latency grow while useful throughput falls — a rebalance storm from pauses that would otherwise
cost only their own length. Either cure — a session timeout above the pause, or pauses below
the timeout — gives no rebalance after the first and no duplicate.

Reproduces (``validate``): two rebalances per pause longer than ``session.timeout.ms`` (an
eviction and a rejoin) on top of one per initial join, and none from pauses below it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.messaging.group import lag_sampler
from models.messaging.scenarios import log_world
from simulator import Simulation
from simulator.history.delivery import check_delivery
from simulator.runner import param, parameters
from simulator.runner.checks import Check

STORM, LONG, SHORT = "short session timeout (storm)", "cure: longer session timeout", "cure: shorter pauses"


@parameters
class Params:
    rate: float = param(2000.0, unit="msg/s", gt=0, le=100_000, help="producer rate (Poisson)")
    partitions: int = param(8, unit="partitions", ge=1, le=256, help="partitions of the topic")
    consumers: int = param(4, unit="members", ge=1, le=64, help="consumer group members")
    service_ms: float = param(1.5, unit="ms", gt=0, le=10_000, help="handling time per record")
    max_poll_records: int = param(200, unit="records", ge=1, le=10_000, help="records per batch (max.poll.records)")
    session_s: float = param(1.0, unit="s", gt=0, le=600, help="the short session timeout (session.timeout.ms)")
    long_session_s: float = param(6.0, unit="s", gt=0, le=600, help="the cure: a session timeout above the pauses")
    pause_s: float = param(1.5, unit="s", gt=0, le=600, help="length of each stop-the-world pause")
    short_pause_s: float = param(0.5, unit="s", gt=0, le=600, help="the cure: pauses this long instead")
    pause_every_s: float = param(8.0, unit="s", gt=0, le=3600, help="mean gap between one member's pauses")
    produce_s: float = param(30.0, unit="s", gt=0, le=3600, help="how long the producer writes (pauses stop too)")
    drain_s: float = param(10.0, unit="s", gt=0, le=3600, help="extra simulated time for the group to catch up")
    window_s: float = param(1.0, unit="s", gt=0, le=600, help="width of the time-series windows")

    def __post_init__(self) -> None:
        if not self.pause_s > self.session_s:
            raise ValueError(f"need pause_s > session_s for a storm, got {self.pause_s} <= {self.session_s}")
        if not self.long_session_s > self.pause_s + self.long_session_s / 3:
            raise ValueError(f"long_session_s must exceed pause_s plus a heartbeat interval (a third of it), got "
                             f"{self.long_session_s} for pause_s {self.pause_s}")
        if not self.short_pause_s + self.session_s / 3 < self.session_s:
            raise ValueError(f"short_pause_s plus a heartbeat interval (session_s / 3) must stay below session_s, "
                             f"got {self.short_pause_s} + {self.session_s / 3:.3g} >= {self.session_s}")
        if not self.rate * self.service_ms / 1e3 < self.consumers:
            raise ValueError(f"rate x service_ms ({self.rate * self.service_ms / 1e3:.2f}) must be below consumers "
                             f"({self.consumers}): the group could never keep up")


QUICK = Params(rate=1000.0, partitions=6, consumers=3, service_ms=2.0, pause_every_s=4.0, produce_s=10.0,
               drain_s=6.0)


def arms(p: Params) -> dict[str, tuple[float, float]]:
    """arm -> (session timeout, pause length)."""
    return {STORM: (p.session_s, p.pause_s), LONG: (p.long_session_s, p.pause_s), SHORT: (p.session_s, p.short_pause_s)}


def pause_starts(p: Params, seed: int) -> dict[str, list[float]]:
    """Each member's pause start times (the same in every arm): exponential gaps of mean
    ``pause_every_s`` after the previous pause ended (so one member's pauses never overlap)."""
    rng = Simulation(seed=seed).rng("gc.pauses")  # the same named stream a world of this seed would give
    out = {}
    for c in range(p.consumers):
        ts, t = [], 1.0 + rng.exponential(p.pause_every_s)
        while t < p.produce_s:
            ts.append(float(t))
            t += max(p.pause_s, p.short_pause_s) + rng.exponential(p.pause_every_s)
        out[f"consumer{c}"] = ts
    return out


def _world(p: Params, seed: int, session: float, pause: float, starts: dict[str, list[float]]):
    w = log_world(seed, partitions=p.partitions, consumers=p.consumers, rate=p.rate, stop_at=p.produce_s,
                  session_timeout_s=session, heartbeat_interval_s=session / 3,
                  max_poll_records=p.max_poll_records, service=p.service_ms / 1e3, tick_s=0.01)
    for node, ts in starts.items():
        for t in ts:
            w.sim.faults.pause(t, node, pause)
    return w


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, series, lags, rbs = [], [], [], []
    starts = pause_starts(p, seed)
    end = p.produce_s + p.drain_s
    grid = np.arange(0.0, end, p.window_s)
    for arm, (session, pause) in arms(p).items():
        w = _world(p, seed, session, pause, starts)
        lag = lag_sampler(w.sim, w.cluster, w.topic, w.committed, 0.5, until=end)
        w.sim.run(until=end)
        r = check_delivery(w.log)
        ev = w.log.frame()
        pr = ev[ev.event == "process"]
        repeat = pr.duplicated("msg").to_numpy()
        win = np.floor(pr.time.to_numpy() / p.window_s) * p.window_s
        first = pd.Series(win[~repeat]).value_counts().reindex(grid, fill_value=0).to_numpy()
        again = pd.Series(win[repeat]).value_counts().reindex(grid, fill_value=0).to_numpy()
        series.append(pd.DataFrame({"time": grid, "useful_per_s": first / p.window_s,
                                    "repeated_per_s": again / p.window_s, "arm": arm}))
        ld = pd.DataFrame(lag, columns=["time", "partition", "hw", "committed", "lag"])
        lags.append(ld.groupby("time", as_index=False)["lag"].sum().assign(arm=arm))
        tab = r["table"]
        rbs.append(pd.DataFrame({"time": w.coordinator.rebalance_times, "arm": arm}))
        n_pauses = sum(len(ts) for ts in starts.values())
        rows.append({"arm": arm, "session_timeout_s": session, "pause_s": pause, "pauses": n_pauses,
                     "evictions": sum(c.incarnation - 1 for c in w.consumers),
                     "rebalances": w.coordinator.rebalances, "sent": r["sent"], "acked": r["acked"],
                     "lost": r["lost"], "duplicated": r["duplicated"],
                     "extra_processings": r["extra_processings"],
                     "useful_throughput_per_s": float((tab.first_processed_at <= p.produce_s).sum() / p.produce_s),
                     "max_lag": int(lags[-1].lag.max()),
                     "latency_p50_s": float(tab.latency.quantile(0.5)),
                     "latency_p99_s": r["latency_p99_s"]})
    return {"summary": pd.DataFrame(rows), "timeseries": pd.concat(series, ignore_index=True),
            "lag": pd.concat(lags, ignore_index=True), "rebalance_times": pd.concat(rbs, ignore_index=True),
            "pauses": pd.DataFrame([(n, t) for n, ts in starts.items() for t in ts], columns=["member", "start"])}


def _close_pairs(starts: dict[str, list[float]], within_s: float) -> int:
    """Pairs of different members' pauses starting less than ``within_s`` apart."""
    ev = sorted((t, m) for m, ts in starts.items() for t in ts)
    return sum(1 for i, (t, m) in enumerate(ev) for u, n in ev[i + 1:] if u - t < within_s and n != m)


def validate(quick: bool) -> list[Check]:
    """Rebalances against the Kafka docs' consumer configs: ``session.timeout.ms`` — "if no heartbeats
    are received by the broker before the expiration of this session timeout, then the broker will
    remove this consumer from the group and initiate a rebalance" — and the member's rejoin when it
    wakes, another rebalance. So a run has one rebalance per initial join, plus 2 per pause longer
    than the session timeout, plus none per pause shorter than it less a heartbeat interval.
    """
    p = Params(rate=300.0, partitions=6, consumers=3, service_ms=2.0, pause_every_s=3.0, produce_s=8.0, drain_s=2.0)
    seeds = (1,) if quick else tuple(range(1, 11))
    got = {a: 0 for a in arms(p)}
    pauses = merge = 0
    for s in seeds:
        starts = pause_starts(p, s)
        pauses += sum(len(ts) for ts in starts.values())
        merge += _close_pairs(starts, p.session_s / 3)
        for arm, (session, pause) in arms(p).items():
            w = _world(p, s, session, pause, starts)
            w.sim.run(until=p.produce_s + p.drain_s)
            got[arm] += w.coordinator.rebalances
    joins = p.consumers * len(seeds)
    setup = (f"{p.consumers} members, {p.partitions} partitions, exponential pauses (mean gap {p.pause_every_s:g} s); "
             f"{len(seeds)} seed(s), {pauses} pauses")
    why = (f"evictions found in the same coordinator check merge into one rebalance: at most one per pair of "
           f"pauses starting within a heartbeat interval ({merge} such pairs in this schedule)")
    src = "Kafka documentation, consumer configs session.timeout.ms / heartbeat.interval.ms"
    return [
        Check(src, f"pauses {p.pause_s:g} s > session {p.session_s:g} s; " + setup,
              "storm: rebalances (joins + 2 x pauses)", joins + 2 * pauses, float(got[STORM]), float(merge), why),
        Check(src, f"pauses {p.pause_s:g} s < session {p.long_session_s:g} s; " + setup,
              "longer session timeout: rebalances (joins only)", joins, float(got[LONG]), 0.0,
              "a rule: a heartbeat arrives within every session, so nobody is evicted"),
        Check(src, f"pauses {p.short_pause_s:g} s < session {p.session_s:g} s - heartbeat; " + setup,
              "shorter pauses: rebalances (joins only)", joins, float(got[SHORT]), 0.0,
              "a rule: a heartbeat arrives within every session, so nobody is evicted"),
    ]


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts, lag, rb, s = results["timeseries"], results["lag"], results["rebalance_times"], results["summary"]
    pauses = results["pauses"]
    if "seed" in ts:  # several seeds: averages, and the first seed's events
        ts = ts.groupby(["arm", "time"], as_index=False).mean(numeric_only=True)
        lag = lag.groupby(["arm", "time"], as_index=False).mean(numeric_only=True)
        s = s.groupby("arm", as_index=False, sort=False).mean(numeric_only=True)
        rb = rb[rb.seed == rb.seed.min()]
        pauses = pauses[pauses.seed == pauses.seed.min()]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9.5), sharex=True, constrained_layout=True)
    a_rb, a_dup, a_lag = axes
    for t in pauses.start:
        for ax in axes:
            ax.axvspan(t, t + p.pause_s, color="0.88", lw=0)
    end = p.produce_s + p.drain_s
    for arm in arms(p):
        c = plots.color_for(arm)
        row = s[s.arm == arm].iloc[0]
        t = np.sort(rb[rb.arm == arm].time.to_numpy())
        a_rb.step(np.r_[0.0, t, end], np.r_[0, np.arange(1, len(t) + 1), len(t)], where="post", color=c,
                  label=f"{arm}: {row['rebalances']:.0f} rebalances, {row['duplicated']:.0f} records duplicated, "
                        f"useful throughput {row['useful_throughput_per_s']:.0f}/s")
        g = ts[ts.arm == arm]
        a_dup.plot(g.time, np.cumsum(g.repeated_per_s * p.window_s), color=c)
        lg = lag[lag.arm == arm]
        a_lag.plot(lg.time, lg.lag, color=c)
    a_rb.set_ylim(0, 1.6 * max(rb.groupby("arm").size().max(), 1))  # room for the legend
    a_rb.set_ylabel("rebalances (cumulative)")
    a_rb.legend(fontsize=8, loc="upper left")
    a_dup.set_ylabel("records processed again\n(cumulative duplicates)")
    a_lag.set_ylabel("consumer lag (records,\nsum over partitions)")
    a_lag.set_xlabel(f"time (s); grey: a member's stop-the-world pause ({p.pause_s:g} s; arrival rate {p.rate:g}/s)")
    fig.suptitle(f"{p.pause_s:g} s pauses against a {p.session_s:g} s session timeout: every pause is two "
                 "rebalances, re-processed batches\nand a growing lag (a rebalance storm); a longer timeout or "
                 "shorter pauses: no rebalance, no duplicate")
    return {"consumer_rebalance": fig}
