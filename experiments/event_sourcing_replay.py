"""How long does an event-sourced service take to come back after a crash, with and without snapshots?

Setup: an event-sourced account service (``models.transactions.eventsourcing``) takes deposits and
withdrawals on ``accounts`` accounts at ``rate`` commands/s until its history holds ``events`` events;
then it crashes and recovers. Before answering again it replays every account: ``snapshot_load_s``
per snapshot plus ``replay_s`` per event since the account's last snapshot (taken every k events).
Sweep: event count × snapshot interval (``k = 0``: no snapshots).

Lesson (Fowler, "Event Sourcing"; Richardson, "Microservices Patterns" §6.1.6): recovery time is
linear in the events since the last snapshot. Without snapshots it grows with the whole history
(replay_s × N); with a snapshot every k events it stays flat at about
accounts × (snapshot_load_s + replay_s × (k − 1)/2) whatever the history length — the snapshot
interval, not the age of the system, sets the downtime.

Reproduces (``validate``): recovery = snapshot loads + replay_s x events since the snapshots
(replay_s x N without snapshots), and the flat accounts x (snapshot_load_s + replay_s (k - 1)/2).
"""

from __future__ import annotations

import math

import pandas as pd

from models.transactions.eventsourcing import COMMAND, DEPOSIT, WITHDRAW, AccountService
from simulator import Exponential, Simulation
from simulator.runner import param, parameters
from simulator.runner.checks import Check, mean_ci95


@parameters
class Params:
    events: tuple[int, ...] = param((1000, 4000, 16000), unit="events", ge=1, le=10_000_000,
                                    help="history length before the crash")
    snapshot_every: tuple[int, ...] = param((0, 10, 100, 1000), unit="events", ge=0, le=1_000_000,
                                            help="snapshot interval k (0: none)")
    accounts: int = param(20, unit="accounts", ge=1, le=100_000, help="aggregates (one stream each)")
    rate: float = param(2000.0, unit="commands/s", gt=0, le=1_000_000, help="command rate")
    replay_s: float = param(1e-4, unit="s", ge=0, le=1, help="time to fold one event on replay")
    snapshot_load_s: float = param(1e-3, unit="s", ge=0, le=10, help="time to load one snapshot")


QUICK = Params(events=(500, 2000, 6000), snapshot_every=(0, 10, 100))


def _one(p: Params, seed: int, n: int, k: int) -> dict:
    sim = Simulation(seed=seed)
    sim.network(latency=0.0005)
    svc = AccountService(sim, snapshot_every=k or None, replay_s=p.replay_s, snapshot_load_s=p.snapshot_load_s,
                         service=0.0)
    client = sim.node("client")
    gap, pick = sim.sampler(Exponential(1.0 / p.rate), "es.client.gaps"), sim.uniforms("es.client.picks")
    sent = [0]

    def arrive() -> None:
        if sent[0] >= n:
            return
        sent[0] += 1
        acct = int(pick() * p.accounts)
        kind = DEPOSIT if pick() < 0.7 else WITHDRAW  # withdrawals beyond the balance are refused
        client.call("accounts", COMMAND, (acct, kind, 10.0), 1.0, lambda o, v: None)
        sim.at(gap(), arrive)

    sim.at(gap(), arrive)
    t_crash = n / p.rate * 1.5 + 0.1  # after the history is written
    sim.faults.crash(t_crash, "accounts", recover_at=t_crash + 0.01)
    predicted, since, snaps = None, None, None

    def before() -> None:
        nonlocal predicted, since, snaps
        predicted, since, snaps = svc.replay_cost()

    sim.at(t_crash - 1e-6, before)
    sim.run(until=t_crash + 5.0 + 2 * (p.replay_s * n + p.snapshot_load_s * p.accounts))
    r = svc.recoveries[0]
    return {"events_target": n, "snapshot_every": k, "events": r.total_events, "events_replayed": r.events_replayed,
            "snapshots_loaded": r.snapshots_loaded, "recovery_s": r.duration_s, "predicted_s": predicted,
            "theory_flat_s": (p.accounts * (p.snapshot_load_s + p.replay_s * (k - 1) / 2) if k
                              else p.replay_s * r.total_events)}


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    return {"summary": pd.DataFrame([_one(p, seed, n, k) for k in p.snapshot_every for n in p.events])}


def validate(quick: bool) -> list[Check]:
    """Recovery time against Fowler's / Richardson's (§6.1.6) replay model: the state is rebuilt by
    loading the latest snapshot and folding the events after it. Exact arithmetic for one run, and
    the snapshot interval's average: events since a snapshot taken every k events are uniform on
    0..k-1, mean (k - 1)/2 per account (SD sqrt((k^2 - 1)/12))."""
    p = QUICK
    n = 6000
    seeds = (1, 2, 3) if quick else tuple(range(1, 31))
    rows = []
    r = _one(p, 1, n, 0)
    rows.append(Check("Fowler 2005, 'Event Sourcing' (rebuild by replaying the log)",
                      f"{p.accounts} accounts, {r['events']} events, no snapshots, replay "
                      f"{p.replay_s * 1e3:g} ms/event",
                      "no snapshots: recovery (s) = replay_s x N", p.replay_s * r["events"], r["recovery_s"], 1e-9,
                      "exact arithmetic (float rounding only)"))
    r = _one(p, 1, n, 100)
    rows.append(Check("Richardson, Microservices Patterns §6.1.6 (snapshot + events since)",
                      f"{p.accounts} accounts, {r['events']} events, snapshot every 100; {r['snapshots_loaded']} "
                      f"snapshots, {r['events_replayed']} events since",
                      "recovery (s) = snapshots x load + events since x replay_s",
                      r["snapshots_loaded"] * p.snapshot_load_s + r["events_replayed"] * p.replay_s, r["recovery_s"],
                      1e-9, "exact arithmetic (float rounding only)"))
    for k in (10, 100):
        rec = [_one(p, s, n, k)["recovery_s"] for s in seeds]
        m, ci = mean_ci95(rec)
        sd = p.replay_s * math.sqrt(p.accounts * (k * k - 1) / 12)  # one run's SD: accounts independent uniforms
        rows.append(Check("Richardson §6.1.6; events since a snapshot uniform on 0..k-1",
                          f"{p.accounts} accounts, ~{n} events (every account past its first snapshot), snapshot "
                          f"every {k}; {len(seeds)} seeds",
                          f"k = {k}: mean recovery (s) = accounts x (load + replay_s (k - 1)/2)",
                          p.accounts * (p.snapshot_load_s + p.replay_s * (k - 1) / 2), m,
                          4 * sd / math.sqrt(len(seeds)), f"4 SE: the uniform's SD over {p.accounts} accounts and "
                          f"{len(seeds)} runs", ci))
    return rows


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    s = results["summary"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    for k, g in s.groupby("snapshot_every"):
        label = "no snapshots" if k == 0 else f"snapshot every {k} events"
        line, = a1.plot(g.events, g.recovery_s * 1e3, "o-", label=label)
        a1.plot(g.events, g.theory_flat_s * 1e3, ":", color=line.get_color())
        a2.plot(g.events_replayed, g.recovery_s * 1e3, "o", color=line.get_color(), label=label)
    a1.set_xlabel("events in the store at the crash")
    a1.set_ylabel("recovery time (ms)")
    a1.set_title("dotted: replay_s × N (none), accounts × (snapshot_load_s + replay_s (k − 1)/2)", fontsize=9)
    a1.legend(fontsize=8)
    a2.set_xlabel("events replayed (since each account's last snapshot)")
    a2.set_ylabel("recovery time (ms)")
    a2.set_title(f"linear: {p.replay_s * 1e3:g} ms per event + {p.snapshot_load_s * 1e3:g} ms per snapshot",
                 fontsize=9)
    a2.legend(fontsize=8)
    fig.suptitle("Replay time is linear in the events since the last snapshot: without snapshots downtime grows "
                 "with the history,\nwith snapshots every k events it stays flat")
    return {"event_sourcing_replay": fig}
