"""Predict-then-run exercises of notebooks/04_*.ipynb (see course.common.exercise)."""

from __future__ import annotations

from course.common import INTRO, exercise

EXERCISES: list = [
    ("md", INTRO),
    *exercise(1, "A visibility timeout equal to the mean", """An SQS-like queue; handling times are
log-normal with a **median of 1 s** and shape **σ = 0.5**, so the mean is e^(σ²/2) ≈ **1.13 s**. The
team sets the visibility timeout **V to the mean handling time, 1.13 s** ("the average job fits").
There are plenty of consumer slots and nothing crashes. **What fraction of deliveries outlive V, so
the message becomes visible again and is handled a second time?**""",
              answer="prediction = None   # <- your answer: fraction of deliveries redelivered (0..1)",
              reference="prediction = 0.40", wrong="prediction = 0.5",
              run="""import math
from models.messaging import ConsumerConfig, HandlerConfig, QueueBroker, QueueConfig, QueueConsumer, QueueProducer
from simulator import LogNormal, Simulation
from simulator.history.delivery import DeliveryLog, check_delivery
from simulator.runner.teach import agrees, check_number
median_s, sigma, rate = 1.0, 0.5, 20.0
V = median_s * math.exp(sigma ** 2 / 2)            # the mean handling time
messages = 800 if QUICK else 5000
sim = Simulation(seed=1)
broker = QueueBroker(sim, "broker", queues={"q": QueueConfig(visibility_timeout_s=V)})
log = DeliveryLog()
QueueProducer(sim, "producer", "broker", "q", rate=rate, log=log, limit=messages)
QueueConsumer(sim, "consumer", "broker", "q", log=log, handler=HandlerConfig(service=LogNormal(median=median_s,
              sigma=sigma)), config=ConsumerConfig(concurrency=100))
sim.run(until=messages / rate + 60)
c = broker.counters("q")
measured = c["visibility_expired"] / c["received"]
closed_form = 0.5 * math.erfc(math.log(V / median_s) / (sigma * math.sqrt(2)))   # 1 - Phi((ln V - ln median) / sigma)
se = (closed_form * (1 - closed_form) / c["received"]) ** 0.5
dup = check_delivery(log)["duplicated"] / messages
print(f"{c['received']} deliveries of {messages} messages · redelivered {measured:.3f} (± {2 * se:.3f}) · "
      f"closed form {closed_form:.3f} · messages handled twice or more: {dup:.1%}")
agrees(measured, closed_form, 4 * se, "1 - Phi((ln V - ln median) / sigma)")""",
              check="""check_number(prediction, closed_form, tol=0.05, why=(
    f"P(handling > V) = 1 - Phi((ln {V:.2f} - ln 1) / 0.5) = 1 - Phi({math.log(V) / sigma:.2f}) = {closed_form:.2f}. "
    "Not 0.5: half the handlings exceed the MEDIAN; a right-skewed tail pulls the mean above the median, so fewer "
    "than half exceed the mean — but still 40%, each one a duplicate and wasted work. A timeout has to clear the "
    "tail (a high percentile), not the average. The measurement differs from the formula only by sampling noise: "
    "each delivery is an independent draw."))"""),
    *exercise(2, "Choose the visibility timeout", """Same handling times (median 1 s, σ = 0.5,
mean 1.13 s), now with two consumers, one of which **crashes at t = 15 s** for 5 s: the messages it
held stay invisible until their visibility timeout expires. Targets: **fewer than 1% of messages
handled twice**, and **every message processed within 15 s of being sent** (including the crashed
consumer's). The cell ships with SQS's default, 30 s. Change it until both targets are met.""",
              answer="visibility_timeout_s = 30.0   # <- SQS's default; choose yours",
              reference="visibility_timeout_s = 5.0", wrong="visibility_timeout_s = 2.0",
              run="""from experiments import visibility_timeout as vt
from simulator.runner.teach import check_targets
pv = vt.Params(multiples=(1.0,), messages=800 if QUICK else 4000, crash_at=15.0)
r = vt.one(pv, seed=1, multiple=visibility_timeout_s / vt.mean_handling_s(pv))
duplicates, slowest = r["duplicate_fraction"], r["latency_max_s"]
print(f"V = {visibility_timeout_s:g} s · messages handled twice {duplicates:.2%} "
      f"(closed form P(handling > V) = {vt.p_outlives(pv, visibility_timeout_s):.2%}) · "
      f"slowest message {slowest:.1f} s (about V plus a handling-time tail) · median {r['latency_p50_s']:.2f} s")""",
              check="""check_targets([("messages handled twice", duplicates, "<", 0.01),
               ("slowest message, send -> processed (s)", slowest, "<", 15.0)], hint=(
    "A longer V removes duplicates (a delivery is repeated with probability P(handling > V) = "
    "1 - Phi((ln V - ln median) / sigma): solve it for 1%, and keep a margin for sampling noise), but every message "
    "the crashed consumer held waits out the whole V before anyone else gets it, so the slowest message takes about "
    "V plus a few seconds of handling. Pick V between the 99th percentile of the handling time and that bound."))""",
              policy=True),
    *exercise(3, "Draining the backlog after an outage", """The order flow over a queue (section 1):
orders arrive at **60/s**; the inventory service is **down for 10 s** while the broker keeps accepting
orders. When inventory comes back, its two workers drain the queue at **μ ≈ 194 orders/s** (8 ms of
work per order plus about 2.3 ms of broker round trips, per worker). **How many seconds after inventory
recovers is the backlog gone?**""",
              answer="prediction = None   # <- your answer in seconds",
              reference="prediction = 4.5", wrong="prediction = 3.1",
              run="""from experiments import queue_vs_http as qh
from simulator.runner.teach import agrees, check_number
pq = qh.Params(rate=60.0, outage_at=5.0, outage_s=10.0, duration_s=35.0)
row = qh.run(pq, seed=1)["summary"].set_index("arm").loc[qh.ARMS[1]]
th = qh.theory(pq)
closed_form = th["catch_up_s"]                     # backlog / (mu - rate)
measured = row["catch_up_s"]
slack = th["capacity"] - pq.rate
# Poisson noise of the backlog (4 sd), the 0.25 s sampling grid, and the "drained" threshold (20 messages)
tol = 4 * th["backlog"] ** 0.5 / slack + 0.25 + 20 / slack
print(f"peak backlog {row['peak_backlog']:.0f} (rate x outage = {th['backlog']:.0f}) · drained in {measured:.2f} s "
      f"(closed form {th['backlog']:.0f} / ({th['capacity']:.0f} - {pq.rate:.0f}) = {closed_form:.2f} s) · "
      f"orders accepted during the outage: {row['availability_during_outage']:.0%}")
agrees(measured, closed_form, tol, "backlog / (mu - rate)")""",
              check="""check_number(prediction, closed_form, tol=1.0, unit="s", why=(
    f"The backlog is rate x outage = 60 x 10 = {th['backlog']:.0f} orders. It does not drain at mu = "
    f"{th['capacity']:.0f}/s but at the spare capacity mu - rate = {slack:.0f}/s, because new orders keep arriving: "
    f"{th['backlog']:.0f} / {slack:.0f} = {closed_form:.1f} s, not {th['backlog']:.0f} / {th['capacity']:.0f} = "
    f"{th['backlog'] / th['capacity']:.1f} s. At 90% utilisation the same outage would take 10x longer to drain. The "
    "measured time differs by Poisson noise in the backlog and the coarse sampling of the queue depth."))"""),
    *exercise(4, "How long does a poison message block its FIFO group?", """A FIFO queue with
4 message groups, a **visibility timeout of 2.5 s** and a redrive policy with **maxReceiveCount = 4**.
One message's handler always fails (the consumer abandons it to its visibility timeout). **For how
many seconds, from its first receive, are the later messages of its group stuck behind it?**""",
              answer="prediction = None   # <- your answer in seconds",
              reference="prediction = 10.0", wrong="prediction = 7.5",
              run="""from experiments import poison_messages as pm
from simulator.runner.teach import agrees, check_number
pp = pm.Params(rate=60.0, visibility_s=2.5, max_receive_count=4, poison_at=2.0, produce_s=16.0, duration_s=20.0)
s = pm.run(pp, seed=1)["summary"].set_index("arm")
row = s.loc["FIFO + DLQ"]
measured = float(row["hol_block_s"])
closed_form = pp.max_receive_count * pp.visibility_s
print(s[["poison_receives", "dead_lettered", "hol_block_s", "group_unblocked", "stuck_in_poison_group"]])
print(f"FIFO + DLQ: received {row['poison_receives']} times, group blocked {measured:.2f} s · closed form "
      f"maxReceiveCount x V = {closed_form:.1f} s")
# after the last expiry the next message of the group is received and handled (~10 ms of work + round trips)
agrees(measured, closed_form, 0.2, "maxReceiveCount x visibility timeout")""",
              check="""check_number(prediction, closed_form, tol=1.0, unit="s", why=(
    "The poison message is received 4 times (maxReceiveCount counts receives, not retries after the first); "
    "each failed receive hides it for the full visibility timeout, and only after the 4th one expires does the "
    "broker move it to the dead-letter queue: 4 x 2.5 s = 10 s, plus the few milliseconds to handle the group's "
    "next message. Meanwhile the other 3 groups flow. Without a DLQ ('FIFO, no DLQ' above) the group is blocked "
    "until the end of the run — forever. A shorter V or a lower maxReceiveCount shortens the block, at the price "
    "of dead-lettering messages that a transient failure would have let through."))"""),
]
