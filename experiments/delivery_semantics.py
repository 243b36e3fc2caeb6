"""When do consumers lose or repeat messages, and what makes each message take effect exactly once?

Setup: a 3-broker Kafka-like log (acks=all, min.insync.replicas=2, idempotent producer, so every
acknowledged message is in the log exactly once), ``partitions`` partitions, a consumer group of
three members (session timeout ``session_timeout_s``) handling batches of up to
``max_poll_records`` records at ``service_ms`` each. Faults, the same in every arm: a member
crashes at ``crash_at`` (back ``down_s`` later), another pauses for ``pause_s`` (longer than the
session timeout: it is evicted, then wakes up as a zombie with its batch in hand), the broker
leading a third of the partitions crashes (leader failover), and a member crashes again. Arms:
commit *before* processing (at-most-once), commit *after* (at-least-once), at-least-once with an
*idempotent consumer* (an inbox of processed ids in the consumer's database), and the offset
stored *in the same transaction* as the results (effectively-once). The delivery checker counts,
per acknowledged message, how many times its effect was applied.

Lesson (Kafka: The Definitive Guide, ch. 4 "Commits and Offsets"; Kafka docs, "Message Delivery
Semantics"): committing first loses the batches in the hands of a crashed member; committing
after repeats the batches a crashed or evicted member had processed but not committed. Neither
is a broker setting: exactly-once effects come from the consumer side — deduplicating by message
id, or committing the offset atomically with the results so a zombie's write is refused.

Reproduces (``validate``): the Kafka documentation's three guarantees, each arm against its
definition — at-most-once never redelivers, at-least-once never loses, the idempotent consumer and
the offset-in-the-transaction arm apply every acknowledged message exactly once.
"""

from __future__ import annotations

import pandas as pd

from models.messaging.scenarios import log_world
from simulator.history.delivery import check_delivery
from simulator.runner import param, parameters
from simulator.runner.checks import Check

ARMS = {"at-most-once (commit before)": ("before", None), "at-least-once (commit after)": ("after", None),
        "at-least-once + idempotent consumer": ("after", 3600.0),
        "effectively-once (offset in the transaction)": ("transactional", None)}


@parameters
class Params:
    rate: float = param(600.0, unit="msg/s", gt=0, le=100_000, help="producer rate")
    partitions: int = param(6, unit="partitions", ge=1, le=64, help="partitions of the topic")
    service_ms: float = param(4.0, unit="ms", gt=0, le=10_000, help="handling time per record")
    max_poll_records: int = param(50, unit="records", ge=1, le=10_000, help="records per batch")
    session_timeout_s: float = param(2.0, unit="s", gt=0, le=600, help="session.timeout.ms")
    crash_at: float = param(4.0, unit="s", ge=0, le=3600, help="first member crash")
    down_s: float = param(2.0, unit="s", gt=0, le=3600, help="how long a crashed member stays down")
    pause_at: float = param(9.0, unit="s", ge=0, le=3600, help="a member pauses (GC, VM stall)")
    pause_s: float = param(3.0, unit="s", gt=0, le=3600, help="pause length")
    broker_crash_at: float = param(13.0, unit="s", ge=0, le=3600, help="a broker (partition leader) crashes")
    produce_until: float = param(20.0, unit="s", gt=0, le=3600, help="the producer stops")
    duration_s: float = param(34.0, unit="s", gt=0, le=7200, help="simulated time (consumers drain)")

    def __post_init__(self) -> None:
        if not self.produce_until < self.duration_s:
            raise ValueError(f"need produce_until < duration_s, got {self.produce_until} >= {self.duration_s}")
        if not max(self.crash_at, self.pause_at, self.broker_crash_at) + 3 <= self.produce_until:
            raise ValueError("crash_at, pause_at and broker_crash_at must be at least 3 s before produce_until")


QUICK = Params(produce_until=18.0, duration_s=30.0)


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    rows, windows = [], []
    for arm, (commit, inbox) in ARMS.items():
        w = log_world(seed, commit=commit, inbox_ttl_s=inbox, partitions=p.partitions, consumers=3, rate=p.rate,
                      stop_at=p.produce_until, session_timeout_s=p.session_timeout_s,
                      heartbeat_interval_s=p.session_timeout_s / 4, max_poll_records=p.max_poll_records,
                      service=p.service_ms / 1e3)
        f = w.sim.faults
        f.crash(p.crash_at, "consumer0", recover_at=p.crash_at + p.down_s)
        f.pause(p.pause_at, "consumer1", p.pause_s)
        f.crash(p.broker_crash_at, "kafka-b1", recover_at=p.broker_crash_at + p.down_s)
        f.crash(p.broker_crash_at + 3, "consumer2", recover_at=p.broker_crash_at + 3 + p.down_s)
        w.sim.run(until=p.duration_s)
        r = check_delivery(w.log, window_s=1.0)
        rows.append({"arm": arm, "commit": commit, "idempotent_consumer": inbox is not None, "sent": r["sent"],
                     "acked": r["acked"], "lost": r["lost"], "duplicated": r["duplicated"],
                     "exactly_once": r["exactly_once"], "extra_processings": r["extra_processings"],
                     "latency_p99_s": r["latency_p99_s"], "rebalances": w.coordinator.rebalances})
        windows.append(r["windows"].assign(arm=arm))
    return {"summary": pd.DataFrame(rows), "windows": pd.concat(windows, ignore_index=True).fillna(0)}


# -- published semantics ---------------------------------------------------------------------------------
KAFKA_DOCS = "Kafka documentation, Design 4.6 'Message Delivery Semantics'"


def _faulted_arm(seed: int, commit: str, inbox: float | None) -> dict:
    """A short run with a member crash (mid-batch) and a pause past the session timeout (a zombie)."""
    w = log_world(seed, commit=commit, inbox_ttl_s=inbox, partitions=6, consumers=3, rate=200.0, stop_at=4.5,
                  session_timeout_s=1.0, heartbeat_interval_s=0.25, max_poll_records=50, service=0.004)
    w.sim.faults.crash(1.5, "consumer0", recover_at=2.5)
    w.sim.faults.pause(3.0, "consumer1", 1.5)
    w.sim.run(until=7.5)
    return check_delivery(w.log, window_s=1.0)


def validate(quick: bool) -> list[Check]:
    """Each arm against the Kafka docs' definition (Design, 'Message Delivery Semantics'): at most once,
    "messages may be lost but are never redelivered"; at least once, "messages are never lost but may
    be redelivered"; exactly once, "each message is delivered once and only once" (effects, here).

    The faults are a member crash and a pause longer than ``session.timeout.ms``; the same faults
    make the at-least-once arm repeat tens of messages, so a zero elsewhere is the commit order's
    doing, not a quiet run (tests/test_validate_c.py asserts that the faults bite).
    """
    seeds = (1,) if quick else tuple(range(1, 9))
    arms = {a: [_faulted_arm(s, c, i) for s in seeds] for a, (c, i) in ARMS.items()}
    acked = sum(r["acked"] for r in arms["at-least-once (commit after)"])
    setup = (f"3 brokers acks=all, 6 partitions, 3 members; a member crashes at 1.5 s, another pauses 1.5 s "
             f"(> session timeout 1 s); {len(seeds)} run(s), {acked} acknowledged messages")
    why = "a guarantee holds for every message: no tolerance (one violation is a miss)"
    dup_alo = sum(r["duplicated"] for r in arms["at-least-once (commit after)"])
    rows = [("at-most-once (commit before)", "duplicated", "messages applied more than once (never redelivered)"),
            ("at-least-once (commit after)", "lost", "acknowledged messages never applied (never lost)")]
    checks = [Check(KAFKA_DOCS, f"{arm}; {setup}", f"{arm}: {q}", 0.0, float(sum(r[col] for r in arms[arm])), 0.0,
                    why + (f"; the at-least-once arm duplicated {dup_alo} in the same runs" if col == "duplicated"
                           else "")) for arm, col, q in rows]
    for arm in ("at-least-once + idempotent consumer", "effectively-once (offset in the transaction)"):
        bad = sum(r["acked"] - r["exactly_once"] for r in arms[arm])
        checks.append(Check(KAFKA_DOCS + "; Kafka: The Definitive Guide ch. 4", f"{arm}; {setup}",
                            f"{arm}: acknowledged messages not applied exactly once", 0.0, float(bad), 0.0, why))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt
    import numpy as np

    s = results["summary"].groupby("arm", sort=False).mean(numeric_only=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    x = np.arange(len(s))
    for off, col, color in ((-0.2, "lost", "tab:red"), (0.2, "duplicated", "tab:orange")):
        a1.bar(x + off, s[col], 0.4, color=color, label=f"{col} (of {s['acked'].iloc[0]:.0f} acknowledged)")
        for i, v in enumerate(s[col]):
            a1.text(x[i] + off, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    a1.set_xticks(x, [a.replace(" (", "\n(").replace(" + ", "\n+ ") for a in s.index], fontsize=8)
    a1.set_ylabel("messages")
    a1.legend(fontsize=8)
    wdf = results["windows"]
    for arm in s.index:
        g = wdf[wdf.arm == arm].groupby("window_start").sum(numeric_only=True)
        bad = g.get("lost", 0) + g.get("duplicated", 0)
        a2.step(g.index, bad, where="post", label=arm)
    for t, what in ((p.crash_at, "member crash"), (p.pause_at, "pause"), (p.broker_crash_at, "broker crash"),
                    (p.broker_crash_at + 3, "member crash")):
        a2.axvline(t, color="0.6", lw=0.8, ls="--")
        a2.text(t, a2.get_ylim()[1] * 0.95, what, rotation=90, va="top", fontsize=7)
    a2.set_xlabel("send time (s), 1 s windows")
    a2.set_ylabel("lost + duplicated messages")
    a2.legend(fontsize=7)
    fig.suptitle("Commit before processing loses what a crashed consumer held, commit after repeats it;\n"
                 "only the consumer (an idempotent inbox, or the offset in the results' transaction) gets "
                 "exactly one effect")
    return {"delivery_semantics": fig}
