"""What does one message that always fails do to a queue — and what does a dead-letter queue change?

Setup: a producer sends ``rate`` messages per second (Poisson) spread over ``groups`` message
groups to an SQS-like queue; ``consumers`` consumer slots handle them (``service_ms`` each). The
``poison_at``-th second's message is *poison*: its handler always fails. Arms, same seeds: a
standard queue and a FIFO queue, each without and with a redrive policy (``max_receive_count``
receives, then the dead-letter queue); a failed message is abandoned to its visibility timeout
(``visibility_s``: the SQS behaviour when a handler throws). A fifth arm requeues a failure at
once (RabbitMQ ``basic.nack`` with ``requeue=true``, or ``ChangeMessageVisibility`` to 0) with no
DLQ.

Lesson (Amazon SQS Developer Guide, "Using dead-letter queues" and "Amazon SQS FIFO queues":
"messages that belong to the same message group are processed one by one"; RabbitMQ docs,
"Consumer Acknowledgements": requeued deliveries "can lead to a redelivery loop"): without a DLQ
the poison message never leaves. In a standard queue it costs little throughput but is received
every visibility timeout forever (and ApproximateAgeOfOldestMessage climbs without end, so the
age alarm is useless); requeued at once it becomes a redelivery storm — hundreds of failed
receives a second. In a FIFO queue it blocks its whole message group: every later message of
that group waits behind it forever (head-of-line blocking), a 1/``groups`` share of the traffic.
A redrive policy bounds all of it: the poison message is received exactly ``max_receive_count``
times and the group is blocked for ``max_receive_count x visibility_s`` seconds, then drains.

Reproduces (``validate``): with a redrive policy, m = maxReceiveCount receives (standard and
FIFO) and an m x V head-of-line block; without one, a receive every V for as long as it runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.messaging import ConsumerConfig, HandlerConfig, QueueBroker, QueueConfig, QueueConsumer, QueueProducer
from simulator import Exponential, LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, delivery_table
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95

# arm -> (fifo, dead-letter queue, on_failure)
ARMS = {"standard, no DLQ": (False, False, "abandon"),
        "standard, no DLQ, requeue at once": (False, False, "nack"),
        "standard + DLQ": (False, True, "abandon"),
        "FIFO, no DLQ": (True, False, "abandon"),
        "FIFO + DLQ": (True, True, "abandon")}


@parameters
class Params:
    rate: float = param(100.0, unit="msg/s", gt=0, le=5000, help="producer rate (Poisson)")
    groups: int = param(4, unit="groups", ge=1, le=1000, help="message groups (FIFO order is per group)")
    consumers: int = param(4, unit="slots", ge=1, le=1000, help="consumer slots (concurrency)")
    service_ms: float = param(10.0, unit="ms", gt=0, le=10_000, help="handler time per message (exponential mean)")
    visibility_s: float = param(5.0, unit="s", gt=0, le=43_200, help="visibility timeout (SQS default 30 s)")
    max_receive_count: int = param(3, unit="receives", ge=1, le=1000, help="redrive policy's maxReceiveCount")
    poison_at: float = param(5.0, unit="s", gt=0, le=3600, help="the message sent about then is the poison one")
    produce_s: float = param(60.0, unit="s", gt=0, le=3600, help="how long the producer sends")
    duration_s: float = param(70.0, unit="s", gt=0, le=7200, help="simulated time")
    window_s: float = param(1.0, unit="s", gt=0, le=600, help="width of the time-series windows")

    def __post_init__(self) -> None:
        if not self.poison_at < self.produce_s <= self.duration_s:
            raise ValueError(f"need poison_at < produce_s <= duration_s, got {self.poison_at}, {self.produce_s}, "
                             f"{self.duration_s}")
        if not self.rate * self.service_ms / 1e3 < 0.8 * self.consumers:
            raise ValueError(f"rate x service_ms must stay below 80% of the consumers' capacity, got "
                             f"{self.rate} x {self.service_ms} ms for {self.consumers} slots")


QUICK = Params(rate=60.0, visibility_s=2.0, poison_at=2.0, produce_s=16.0, duration_s=20.0)


def poison_id(p: Params) -> int:
    """Message ids count sends from 1, so the poison one is the ``rate x poison_at``-th."""
    return max(1, round(p.rate * p.poison_at))


def _arm(p: Params, seed: int, fifo: bool, dlq: bool, on_failure: str):
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.3))
    redrive = dict(max_receive_count=p.max_receive_count, dead_letter_queue="dlq") if dlq else {}
    queues = {"q": QueueConfig(fifo=fifo, visibility_timeout_s=p.visibility_s, **redrive)}
    if dlq:
        queues["dlq"] = QueueConfig(fifo=fifo)
    broker = QueueBroker(sim, "broker", queues=queues)
    log = DeliveryLog()
    QueueProducer(sim, "producer", "broker", "q", rate=p.rate, log=log, groups=p.groups, stop_at=p.produce_s)
    cons = QueueConsumer(sim, "consumer", "broker", "q", log=log,
                         handler=HandlerConfig(Exponential(p.service_ms / 1e3), poison={poison_id(p)}),
                         config=ConsumerConfig(concurrency=p.consumers, on_failure=on_failure))
    broker.sample_every(0.5, until=p.duration_s)
    sim.run(until=p.duration_s)
    return broker, log, cons


def _waiting(tab: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Messages sent by each time and not yet processed then (never-processed count as waiting)."""
    sent = np.sort(tab.sent_at.to_numpy())
    done = np.sort(tab.first_processed_at.fillna(np.inf).to_numpy())
    return np.searchsorted(sent, times, "right") - np.searchsorted(done, times, "right")


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, series, ages = [], [], []
    k = poison_id(p)
    grid = np.arange(0.0, p.duration_s + 1e-9, p.window_s)
    for arm, (fifo, dlq, on_failure) in ARMS.items():
        broker, log, cons = _arm(p, seed, fifo, dlq, on_failure)
        tab = delivery_table(log)
        g = tab.loc[tab.msg == k, "key"].iloc[0]
        others = tab[tab.msg != k]
        rec = np.array([r[2] for r in cons.receipts if r[0] == k])
        first = rec[0] if len(rec) else np.nan
        later = others[(others.key == g) & (others.msg > k)]
        # head-of-line block: from the poison message's first receive until its group moves again
        # (still blocked at the end: counted until then, ``group_unblocked`` False)
        nxt = later.first_processed_at.min() if len(later) else np.nan
        proc = others.first_processed_at.dropna().to_numpy()
        w = np.floor(proc / p.window_s) * p.window_s
        tput = pd.Series(w).value_counts().reindex(grid[:-1], fill_value=0) / p.window_s
        poison_cum = np.searchsorted(np.sort(rec), grid, "right")
        series.append(pd.DataFrame({"time": grid[:-1], "throughput": tput.to_numpy(),
                                    "poison_receives": poison_cum[1:],
                                    "group_waiting": _waiting(others[others.key == g], grid[1:]),
                                    "arm": arm}))
        m = broker.metrics()
        ages.append(m[m.queue == "q"][["time", "oldest_age_s"]].assign(arm=arm))
        rows.append({"arm": arm, "fifo": fifo, "dlq": dlq, "on_failure": on_failure,
                     "sent": len(tab), "processed": int((others.processed > 0).sum()),
                     "stuck": int((others.processed == 0).sum()),
                     "stuck_in_poison_group": int((later.processed == 0).sum()),
                     "poison_group_sent_after": len(later),
                     "throughput_per_s": float((others.first_processed_at <= p.produce_s).sum() / p.produce_s),
                     "poison_first_receive_s": float(first), "poison_receives": len(rec),
                     # receives per second while it stays in the queue (with a DLQ it leaves: not a rate)
                     "poison_receives_per_s": np.nan if dlq else len(rec) / (p.duration_s - first),
                     "dead_lettered": broker.counters("q")["dead_lettered"],
                     "hol_block_s": (float(nxt - first) if nxt == nxt else p.duration_s - first) if fifo else 0.0,
                     "group_unblocked": bool(nxt == nxt) or not fifo,
                     "oldest_age_end_s": float(m[m.queue == "q"].oldest_age_s.iloc[-1]),
                     "latency_p99_s": float(others.latency.quantile(0.99))})
    return {"summary": pd.DataFrame(rows), "timeseries": pd.concat(series, ignore_index=True),
            "oldest_age": pd.concat(ages, ignore_index=True)}


def _worst(values: list[float], target: float) -> float:
    """The replication farthest from ``target`` (a rule that must hold in every run)."""
    return max(values, key=lambda v: abs(v - target))


def validate(quick: bool) -> list[Check]:
    """The redrive policy's arithmetic (Amazon SQS Developer Guide, "Using dead-letter queues": "when
    the ReceiveCount for a message exceeds the maxReceiveCount for a queue, Amazon SQS moves the
    message to a dead-letter-queue"; "Amazon SQS FIFO queues": a group's messages are processed one
    by one) and the visibility timeout's (a failed receive is visible again after V).
    """
    p = QUICK
    seeds = (1, 2, 3) if quick else tuple(range(1, 21))
    m, v = p.max_receive_count, p.visibility_s
    k = poison_id(p)
    recv = {a: [] for a in ("standard + DLQ", "FIFO + DLQ", "standard, no DLQ")}
    expect_loop, block = [], []
    for s in seeds:
        for arm in recv:
            _, log, cons = _arm(p, s, *ARMS[arm])
            rec = sorted(r[2] for r in cons.receipts if r[0] == k)
            recv[arm].append(float(len(rec)))
            if arm == "standard, no DLQ":
                expect_loop.append(1 + (p.duration_s - rec[0]) // v)
            if arm == "FIFO + DLQ":
                tab = delivery_table(log)
                g = tab.loc[tab.msg == k, "key"].iloc[0]
                later = tab[(tab.key == g) & (tab.msg > k)]
                block.append(float(later.first_processed_at.min() - rec[0]))
    setup = (f"{p.rate:g} msg/s over {p.groups} groups, {p.consumers} slots x {p.service_ms:g} ms, V = {v:g} s, "
             f"maxReceiveCount = {m}, one poison message; {len(seeds)} seed(s)")
    src = "Amazon SQS Developer Guide, 'Using dead-letter queues' (maxReceiveCount)"
    rows = [Check(src, f"{arm}; " + setup, f"{arm}: receives of the poison message", float(m),
                  _worst(recv[arm], m), 0.0, "a rule: every run must give exactly maxReceiveCount")
            for arm in ("standard + DLQ", "FIFO + DLQ")]
    hb, ci = mean_ci95(block) if len(block) > 1 else (block[0], None)
    rows.append(Check(src + "; 'Amazon SQS FIFO queues' (message groups)", "FIFO + DLQ; " + setup,
                      "FIFO + DLQ: head-of-line block of the poison group (s)", m * v, float(_worst(block, m * v)),
                      0.1, "after the last expiry: the next receive, a round trip and one handling (~10 ms), "
                      "well under one V", ci))
    loop = [r - e for r, e in zip(recv["standard, no DLQ"], expect_loop)]
    rows.append(Check("Amazon SQS Developer Guide, 'Amazon SQS visibility timeout'", "standard, no DLQ; " + setup,
                      "no DLQ: receives - (1 + floor((end - first receive) / V))", 0.0, float(_worst(loop, 0.0)),
                      1.0, "each redelivery waits for a receive after the expiry (ms), which can cost one "
                      "cycle by the end of the run"))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    from simulator import plots

    ts, ages = results["timeseries"], results["oldest_age"]
    if "seed" in ts:
        ts = ts.groupby(["arm", "time"], as_index=False).mean(numeric_only=True)
        ages = ages.groupby(["arm", "time"], as_index=False).mean(numeric_only=True)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    (a_rec, a_grp), (a_tp, a_age) = axes
    for arm in ARMS:
        c = plots.color_for(arm)
        g = ts[ts.arm == arm]
        ls = "--" if "FIFO" in arm else "-"
        a_rec.plot(g.time, g.poison_receives.clip(lower=0.8), color=c, ls=ls, label=arm)
        a_grp.plot(g.time, g.group_waiting, color=c, ls=ls, label=arm)
        a_tp.plot(g.time, g.throughput, color=c, ls=ls, label=arm, lw=1)
        a = ages[ages.arm == arm]
        a_age.plot(a.time, a.oldest_age_s, color=c, ls=ls, label=arm)
    a_rec.set_yscale("log")
    a_rec.axhline(p.max_receive_count, color="0.4", lw=0.8, ls=":")
    a_rec.text(0, p.max_receive_count * 1.1, f"maxReceiveCount = {p.max_receive_count}", fontsize=8, color="0.3")
    a_rec.set_title("receives of the poison message (cumulative): with a DLQ it stops", fontsize=10)
    a_rec.set_ylabel("receives (log)")
    a_rec.legend(fontsize=8)
    a_grp.set_title("its message group's messages waiting: a FIFO group stays blocked without a DLQ", fontsize=10)
    a_grp.set_ylabel("messages")
    a_tp.set_title(f"throughput (other messages): FIFO without DLQ loses ~1/{p.groups} of it", fontsize=10)
    a_tp.set_ylabel("processed / s")
    a_tp.set_xlabel("time (s)")
    a_age.set_title("age of the oldest message: without a DLQ the alarm climbs forever", fontsize=10)
    a_age.set_ylabel("ApproximateAgeOfOldestMessage (s)")
    a_age.set_xlabel("time (s)")
    fig.suptitle("One poison message: without a dead-letter queue it is redelivered forever (a storm if requeued at "
                 "once)\nand blocks its FIFO group for good; a redrive policy caps it at maxReceiveCount receives")
    return {"poison_messages": fig}
