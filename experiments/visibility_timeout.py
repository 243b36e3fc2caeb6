"""How short can a visibility timeout be before it breeds duplicates and wasted work; is "6x processing time" right?

Setup: an SQS-like standard queue, Poisson sends at ``rate``/s, competing consumers with
``concurrency`` slots whose handling time is log-normal (median ``median_s``, shape ``sigma``:
a tail), one consumer crashing at ``crash_at`` for ``down_s``. The visibility timeout V sweeps
``multiples`` of the mean handling time. A delivery whose handling outlives V becomes visible
again and is handled a second time in parallel (a duplicate, and wasted work); a message held
by the crashed consumer waits out V before anyone else gets it. Theory per delivery:
P(handling > V) = 1 - Phi((ln V - ln median) / sigma).

Lesson (Amazon SQS Developer Guide, "Amazon SQS visibility timeout"; AWS Lambda's guidance to
set the queue's visibility timeout to at least six times the function timeout): below the
processing-time tail V multiplies work and duplicates; at 6x the mean they are gone for a
log-normal with sigma = 0.5. The price of a long V is the time a crashed consumer's messages
stay invisible, so the latency tail after a crash grows with V.

Reproduces (``validate``): the fraction of deliveries redelivered = P(handling > V) for the
log-normal handling time, at V = 0.5x, 1x and 2x the mean (no crash, so every expiry is a slow
handler's).
"""

from __future__ import annotations

import math

import pandas as pd

from models.messaging import ConsumerConfig, HandlerConfig, QueueBroker, QueueConfig, QueueConsumer, QueueProducer
from simulator import LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, check_delivery
from simulator.runner import param, parameters
from simulator.runner.checks import Check


@parameters
class Params:
    multiples: tuple[float, ...] = param((0.5, 1.0, 2.0, 3.0, 6.0, 12.0), unit="x mean handling time", gt=0, le=1000,
                                         help="visibility timeouts to try, as multiples of the mean handling time")
    rate: float = param(20.0, unit="msg/s", gt=0, le=10_000, help="send rate")
    median_s: float = param(1.0, unit="s", gt=0, le=3600, help="median handling time")
    sigma: float = param(0.5, unit="log-normal shape", gt=0, le=3, help="handling-time tail (log-normal sigma)")
    concurrency: int = param(100, unit="slots", ge=1, le=10_000, help="consumer slots (two consumers)")
    crash_at: float = param(30.0, unit="s", ge=0, le=86_400, help="one consumer crashes")
    down_s: float = param(5.0, unit="s", gt=0, le=86_400, help="how long it stays down")
    messages: int = param(2000, unit="messages", ge=10, le=1_000_000, help="messages sent")

    def __post_init__(self) -> None:
        if not self.crash_at < self.messages / self.rate:
            raise ValueError(f"crash_at ({self.crash_at}) must fall while messages are sent "
                             f"(before messages/rate = {self.messages / self.rate:g} s)")


QUICK = Params(multiples=(0.5, 1.0, 3.0, 6.0), messages=800, crash_at=15.0)


def mean_handling_s(p: Params) -> float:
    return p.median_s * math.exp(p.sigma ** 2 / 2)


def p_outlives(p: Params, v: float) -> float:
    """P(a log-normal handling time exceeds v)."""
    return 0.5 * math.erfc((math.log(v) - math.log(p.median_s)) / (p.sigma * math.sqrt(2)))


def one(p: Params, seed: int, multiple: float, crash: bool = True) -> dict:
    v = multiple * mean_handling_s(p)
    sim = Simulation(seed=seed)
    b = QueueBroker(sim, "broker", queues={"q": QueueConfig(visibility_timeout_s=v)})
    log = DeliveryLog()
    QueueProducer(sim, "producer", "broker", "q", rate=p.rate, log=log, limit=p.messages)
    h = HandlerConfig(service=LogNormal(median=p.median_s, sigma=p.sigma))
    cs = [QueueConsumer(sim, f"consumer{i}", "broker", "q", log=log, handler=h,
                        config=ConsumerConfig(concurrency=max(1, p.concurrency // 2))) for i in range(2)]
    if crash:
        sim.faults.crash(p.crash_at, "consumer0", recover_at=p.crash_at + p.down_s)
    sim.run(until=p.messages / p.rate + v + 60 * mean_handling_s(p))
    r = check_delivery(log)
    c = b.counters("q")
    attempts = sum(x.attempts for x in cs)
    return {"multiple": multiple, "visibility_s": v, "sent": r["sent"], "lost": r["lost"],
            "duplicated": r["duplicated"], "duplicate_fraction": r["duplicated"] / r["sent"],
            "redelivered_fraction": c["visibility_expired"] / max(1, c["received"]),
            "redelivered_theory": p_outlives(p, v), "handler_runs": attempts,
            "wasted_work_fraction": 1 - r["sent"] / max(1, attempts),
            "latency_p50_s": float(r["table"]["latency"].median()), "latency_max_s": float(r["table"]["latency"].max())}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    return {"summary": pd.DataFrame([one(p, seed, m) for m in p.multiples])}


def validate(quick: bool) -> list[Check]:
    """Redelivered fraction against P(handling > V) = 1 - Phi((ln V - ln median) / sigma), the SQS
    Developer Guide's rule that a message becomes visible again when V expires before it is deleted.

    Without the crash every expiry is a handler outliving V, and each delivery draws its own
    handling time, so expiries are Bernoulli(P(handling > V)) per delivery.
    """
    p = Params(messages=800 if quick else 20_000, crash_at=15.0)
    checks = []
    for m in (0.5, 1.0, 2.0):
        r = one(p, 1, m, crash=False)
        q = r["redelivered_theory"]
        se = math.sqrt(q * (1 - q) / r["sent"])  # deliveries >= messages sent: n = sent is conservative
        checks.append(Check(
            "Amazon SQS Developer Guide, 'Amazon SQS visibility timeout'; log-normal tail",
            f"standard queue, {p.messages} messages at {p.rate:g}/s, 2 consumers x {p.concurrency // 2} slots, "
            f"handling log-normal(median {p.median_s:g} s, sigma {p.sigma:g}), V = {m:g} x mean, no crash",
            f"deliveries redelivered at V = {m:g}x mean (P(handling > V))", q, r["redelivered_fraction"], 4 * se,
            f"4 binomial SE over {r['sent']} messages (fewer than the deliveries: conservative)"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt
    import numpy as np

    s = results["summary"].groupby("multiple").mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    grid = np.geomspace(min(s.index) * 0.8, max(s.index) * 1.2, 100)
    a1.plot(grid, [p_outlives(p, g * mean_handling_s(p)) for g in grid], "--", color="0.4",
            label="P(handling > V), log-normal")
    a1.plot(s.index, s["redelivered_fraction"], "o", label="deliveries redelivered (measured)")
    a1.plot(s.index, s["duplicate_fraction"], "s", label="messages processed twice or more")
    a1.plot(s.index, s["wasted_work_fraction"], "^", label="handler runs wasted")
    a1.axvline(6, color="tab:green", lw=0.8)
    a1.text(6, 0.9, " 6x", color="tab:green")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_xticks(list(s.index), [f"{m:g}x" for m in s.index])
        ax.minorticks_off()
    a1.set_xlabel("visibility timeout V / mean handling time")
    a1.set_ylabel("fraction")
    a1.legend(fontsize=8)
    a2.plot(s.index, s["latency_max_s"], "o-", color="tab:red", label="slowest message (crash victims)")
    a2.plot(s.index, s["latency_p50_s"], "o-", color="tab:blue", label="median message")
    a2.set_xlabel("visibility timeout V / mean handling time")
    a2.set_ylabel("send -> processed (s)")
    a2.legend(fontsize=8)
    fig.suptitle("A visibility timeout inside the handling-time tail duplicates work; ~6x the mean removes it,\n"
                 "and a longer V only delays the messages a crashed consumer was holding")
    return {"visibility_timeout": fig}
