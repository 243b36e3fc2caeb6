"""Predict-then-run exercises of notebooks/05_*.ipynb (see course.common.exercise)."""

from __future__ import annotations

from course.common import INTRO, exercise

SAGA_QUESTION = """One order through the orchestrated saga of section 1, with the steps in the order
**inventory** (compensatable: reserve stock) → **payment** (the pivot: charge the card) →
**shipping** (retriable). The customer's account holds 5 and the order costs 10, so the payment step
fails (a business refusal: insufficient funds) **after the inventory was reserved**. Nothing crashes.

**What does the user see, and in what order do the services act?**

- (a) the user's `place` call waits while inventory reserves the stock, payment refuses, inventory
  releases the stock and the order is marked REJECTED; then the user gets an error reply
- (b) the user is told "accepted" at once (the order is PENDING); then inventory reserves the stock,
  payment refuses, inventory releases the stock, and the order is marked REJECTED
- (c) the user is told "accepted" at once; then inventory reserves the stock, payment refuses, the
  order is marked REJECTED, and inventory releases the stock afterwards
- (d) the user is told "accepted" at once; then inventory reserves the stock, payment refuses,
  payment refunds the charge, inventory releases the stock, and the order is marked REJECTED"""

SAGA_RUN = """from simulator import Simulation
from simulator.runner.teach import check_choice
from models.transactions.saga import PLACE, SagaOrchestrator, SagaStep
from models.transactions.shop import Order, Shop, ShopConfig
sim = Simulation(seed=1, trace=True)               # trace=True: every message sent and delivered
sim.network(latency=0.002)
shop = Shop(sim, ShopConfig(customers=1, items=1, balance=5.0, stock=10))
saga = SagaOrchestrator(sim, (SagaStep("inventory"), SagaStep("payment", "pivot"),
                              SagaStep("shipping", "retriable")))
user = sim.node("user")
order = Order(id=1, customer=0, item=0, qty=1, amount=10.0)   # costs 10, the account holds 5
replies = []
user.call("orders", PLACE, order, 1.0,
          lambda out, value: replies.append((sim.now, out, value, saga.order_status(order.id))))
sim.run(until=2.0)

# The timeline, from what actually happened: the message trace, each service's applied and undone
# effects (shop.effects: +1 applied, -1 compensated) and the saga's record.
t_reply, outcome, value, status_then = replies[0]
events = [(t_reply, "user", f"told {outcome} {value}: order {status_then}")]
words = {("inventory", 1): "reserves the stock", ("inventory", -1): "releases the stock",
         ("payment", 1): "charges the card", ("payment", -1): "refunds the charge",
         ("shipping", 1): "schedules a delivery", ("shipping", -1): "cancels the delivery"}
events += [(t, svc, words[svc, d]) for t, _, svc, d in shop.effects]
msgs = sim.trace.messages()
refusals = msgs[(msgs.src == "payment") & (msgs.op == "error")]
events += [(t, "payment", "refuses (insufficient funds)") for t in refusals.t_send]
rec = saga.records[order.id]
events += [(rec.finished, "orders", f"marks the order {rec.status}")]
events.sort()
for t, who, what in events:
    print(f"{t * 1e3:6.1f} ms  {who:9s} {what}")
seen = [f"{who} {what}" for _, who, what in events]
accepted = f"user told ok ('accepted', {order.id}): order PENDING"
options = {
    "a": ["inventory reserves the stock", "payment refuses (insufficient funds)", "inventory releases the stock",
          "orders marks the order REJECTED", "user told error"],
    "b": [accepted, "inventory reserves the stock", "payment refuses (insufficient funds)",
          "inventory releases the stock", "orders marks the order REJECTED"],
    "c": [accepted, "inventory reserves the stock", "payment refuses (insufficient funds)",
          "orders marks the order REJECTED", "inventory releases the stock"],
    "d": [accepted, "inventory reserves the stock", "payment refuses (insufficient funds)",
          "payment refunds the charge", "inventory releases the stock", "orders marks the order REJECTED"],
}
matching = [k for k, seq in options.items() if seq == seen]
assert len(matching) == 1, f"the saga's timeline {seen} matches no option: please report a bug"
measured = matching[0]
print(f"the trace matches option ({measured}); {len(msgs)} messages; the order stayed PENDING for "
      f"{(rec.finished - rec.started) * 1e3:.0f} ms, {rec.compensations} compensation(s)")"""

SAGA_CHECK = """check_choice(prediction, measured, choices=("a", "b", "c", "d"), why=(
    "An orchestrated saga answers the user as soon as the order and its saga are logged (one local "
    "transaction): 'accepted', status PENDING — the user does not wait for the steps. Then the steps run in "
    "order; the payment's refusal is definite, so the saga fails at step 2 and runs the compensations of the "
    "completed steps in reverse — exactly k − 1 = 1 for a failure at step k = 2: inventory releases the stock. "
    "Payment is not refunded because it never charged (its local transaction rolled back). Only when every "
    "compensation has succeeded is the order marked REJECTED, so a REJECTED order never still holds stock. "
    f"The user learns the outcome by reading the order again: PENDING for {(rec.finished - rec.started) * 1e3:.0f} "
    "ms here (seconds under faults), during which other customers see one unit less in stock — a saga has "
    "no isolation."))"""

IDEM_QUESTION = """The payment service charges every request that reaches it. **800 customers** place one
order each; each **reply** is lost with probability **q = 0.3** (the charge happened, but the client
times out), and the client retries up to **3 attempts in all**, **without idempotency keys**.

**How many extra charges (charges beyond the one each customer owes) do the 800 customers get in
total, on average?**"""

IDEM_RUN = """import dataclasses
from experiments import idempotency_keys
from simulator.runner.teach import agrees, check_number
pi = dataclasses.replace(idempotency_keys.QUICK if QUICK else idempotency_keys.Params(), requests=800,
                         reply_loss=0.3, attempts=(3,))
rows = idempotency_keys.run(pi, seed=1)["summary"].set_index("arm")
nk = rows.loc["no keys"]
q, n, N = pi.reply_loss, 3, pi.requests
measured = float(nk.extra_charges)
per_order = sum(q ** i for i in range(1, n))       # attempt i+1 happens iff the first i replies were lost
closed_form = N * per_order
var_k = sum((2 * k - 1) * q ** (k - 1) for k in range(1, n + 1)) - (1 + per_order) ** 2   # Var(charges per order)
se = (N * var_k) ** 0.5
print(rows[["charges_per_request", "extra_charges", "double_charged", "succeeded"]])
print(f"no keys: measured {measured:.0f} extra charges (± {2 * se:.0f}) · closed form N (q + q²) = {closed_form:.0f}"
      f" · customers charged more than once {int(nk.double_charged)} (closed form N q = {N * q:.0f})")
agrees(measured, closed_form, 4 * se, "N (q + q^2)")"""

IDEM_CHECK = """check_number(prediction, closed_form, tol=0.1 * closed_form, unit="charges", why=(
    f"The second attempt is sent only if the first reply was lost (probability q), the third only if the second "
    f"reply was lost too (q²), and every attempt that arrives charges again: N (q + q²) = {N} × {per_order:.2f} = "
    f"{closed_form:.0f} extra charges. N q = {N * q:.0f} counts the customers charged at least twice, not the "
    f"charges: a customer whose first two replies were lost pays three times. The run measured {measured:.0f}; "
    f"the gap is sampling noise (± {2 * se:.0f}). The irony: the {q ** n:.1%} of customers whose three replies "
    "were all lost were charged three times and still saw an error. The 'keys' row charges exactly once."))"""

TWOPC_QUESTION = """Each of the three participants (payment, inventory, shipping) crashes now and then,
independently of the others: up for 2.7 s on average, then down for 0.3 s on average — **each is up
90% of the time**. Orders arrive steadily and each needs all three.

**With two-phase commit, what fraction of the orders commit?** (The next cell also runs the saga
on the same orders and the same crashes.)"""

TWOPC_RUN = """import numpy as np
from models.transactions import ShopConfig, TwoPCConfig, build_world
from simulator import LogNormal, Simulation
from simulator.runner.teach import agrees, check_number
T, up_s, down_s, rate = (120.0 if QUICK else 600.0), 2.7, 0.3, 20.0
a = up_s / (up_s + down_s)                         # each participant's availability


def covered(spans):
    \"\"\"Seconds covered by the union of the (start, end) spans.\"\"\"
    total, end = 0.0, -1.0
    for s, e in sorted(spans):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


result = {}
for protocol in ("2pc", "saga"):
    sim = Simulation(seed=1)
    sim.network(latency=LogNormal(median=0.002, sigma=0.4))
    # many accounts and items: no two orders contend for a row, so only the crashes cost availability
    w = build_world(sim, protocol, shop=ShopConfig(customers=10_000, items=1000), rate=rate, stop_at=T,
                    client_timeout_s=1.0,
                    twopc=TwoPCConfig(prepare_timeout_s=0.5, inquiry_s=0.5))
    rng = sim.rng("ex05.outages")                  # the same crashes in both arms
    down = {}
    for name in ("payment", "inventory", "shipping"):
        t, spans = rng.exponential(up_s), []
        while t < T:
            d = rng.exponential(down_s)
            sim.faults.crash(t, name, recover_at=t + d)
            spans.append((t, min(t + d, T)))
            t += d + rng.exponential(up_s)
        down[name] = spans
    sim.run(until=T + 3)
    df = sim.metrics.requests()
    result[protocol] = float((df.outcome == "ok").mean())
measured, orders = result["2pc"], len(df)
up = {name: 1 - covered(s) / T for name, s in down.items()}
all_up = 1 - covered([x for s in down.values() for x in s]) / T
closed_form = a ** 3
se = (all_up * (1 - all_up) / orders) ** 0.5
print(f"{orders} orders over {T:g} s · each participant up {', '.join(f'{k} {v:.3f}' for k, v in up.items())}")
print(f"2PC commits {measured:.3f} of the orders (± {2 * se:.3f}) · all three up {all_up:.3f} of the time · "
      f"closed form a³ = {a:.1f}³ = {closed_form:.3f} · the saga accepted {result['saga']:.3f}")
agrees(measured, all_up, 4 * se + 0.01, "the fraction of time all three participants are up")"""

TWOPC_CHECK = """check_number(prediction, closed_form, tol=0.05, why=(
    f"2PC commits only if every participant votes yes, so an order needs all three up at once: with independent "
    f"failures that is the product a³ = {closed_form:.3f}, not the weakest participant's {a:.2f} — every participant "
    f"added to a 2PC transaction multiplies its availability down. This run measured {measured:.3f}: its crash "
    f"schedule left all three up {all_up:.3f} of the time (a finite sample of random outages, so not exactly "
    f"{closed_form:.3f}), give or take the orders caught mid-vote by a crash. With few hot rows it measures lower "
    "still: a participant that crashed after voting yes keeps that transaction's locks in doubt after it recovers, "
    "until it learns the decision, and orders on the same rows abort (section 1). "
    f"The saga accepted {result['saga']:.3f} of the same orders and finished them after the participants came "
    "back: its price is the PENDING window, not availability."))"""

TTL_QUESTION = """Back to idempotency keys: replies are lost with probability **q = 0.3**; the client
times out after **0.05 s** and retries with exponential backoff (**0.2 s, 0.4 s, 0.8 s, …**, no jitter),
reusing the order's key on every retry. The key store is small: it may hold at most **200 live keys**
at once (a key lives for the TTL; orders arrive at 20 per second).

The cell below ships with 3 attempts and a 0.5 s TTL. **Choose the number of attempts and the key TTL**
so that
- **at most 1%** of the requests end without an answer,
- **no customer is charged twice**, and
- the key store holds **at most 200** live keys."""

TTL_ANSWER = """attempts = 3        # <- tries per request, the first included
key_ttl_s = 0.5     # <- how long the service keeps a key's stored response (s)"""

TTL_RUN = """from models.resilience import RetryPolicy
from models.transactions.idempotency import ChargeService, IdempotencyConfig, PayingClient
from simulator import Simulation
from simulator.runner.teach import check_targets
q, timeout_s, base_s, gap_s, orders = 0.3, 0.05, 0.2, 0.05, (800 if QUICK else 4000)
sim = Simulation(seed=1)
sim.network(latency=0.001)
svc = ChargeService(sim, config=IdempotencyConfig(ttl_s=key_ttl_s), service=0.005)
client = PayingClient(sim, "payments", requests=orders, gap_s=gap_s, use_keys=True, timeout_s=timeout_s,
                      retry=RetryPolicy(max_attempts=attempts, base_s=base_s, cap_s=1e4, jitter="none"))
sim.net.link("payments", "client", symmetric=False, loss=q)   # replies lost, requests arrive
live = []                                          # live keys in the store, sampled every second


def sample():
    stored = [v for k, v in svc.store.data.items() if isinstance(k, tuple) and k[0] == "key"]
    live.append(sum(1 for t, _ in stored if sim.now - t < key_ttl_s))
    sim.at(1.0, sample)


sim.at(1.0, sample)
horizon = sum(base_s * 2 ** i for i in range(attempts - 1)) + (attempts - 1) * timeout_s
sim.run(until=orders * gap_s * 1.5 + horizon + 5)
charged_twice = sum(1 for c in svc.executions.values() if c > 1)
unanswered = sum(1 for o in client.outcomes.values() if o != "ok") / orders
peak_keys = max(live)
print(f"{attempts} attempts · last retry sent {horizon:.2f} s after the first attempt · TTL {key_ttl_s:g} s")
print(f"unanswered {unanswered:.2%} (q^n = {q ** attempts:.2%}) · charged twice {charged_twice} · "
      f"peak live keys {peak_keys} (rate × TTL = {key_ttl_s / gap_s:.0f})")"""

TTL_CHECK = """check_targets([("requests without an answer", unanswered, "<=", 0.01),
               ("customers charged twice", charged_twice, "==", 0),
               ("peak live keys in the store", peak_keys, "<=", 200)], hint=(
    "A request ends without an answer only if all its replies are lost: q^n, so pick n with q^n well below 1% "
    "(800 requests are a noisy sample: leave a margin). A retry charges again if the key has expired when it "
    "arrives, so the TTL must outlast the retry horizon: add up the backoffs and the timeouts before the last "
    "attempt — it doubles with every attempt you add. And the store holds about rate × TTL keys, so the TTL "
    "cannot be a day here: choose it between the horizon and the store's limit."))"""

EXERCISES = [
    ("md", INTRO),
    *exercise(1, "A payment fails after the stock was reserved", SAGA_QUESTION,
              answer='prediction = None   # <- "a", "b", "c" or "d"',
              reference='prediction = "b"', wrong='prediction = "a"', run=SAGA_RUN, check=SAGA_CHECK),
    *exercise(2, "Retries without idempotency keys", IDEM_QUESTION,
              answer="prediction = None   # <- your answer: extra charges over the 800 orders",
              reference="prediction = 312", wrong="prediction = 240", run=IDEM_RUN, check=IDEM_CHECK),
    *exercise(3, "How available is two-phase commit?", TWOPC_QUESTION,
              answer="prediction = None   # <- your answer: fraction of orders 2PC commits (0..1)",
              reference="prediction = 0.73", wrong="prediction = 0.9", run=TWOPC_RUN, check=TWOPC_CHECK),
    *exercise(4, "Choose the key's TTL", TTL_QUESTION, answer=TTL_ANSWER,
              reference="attempts = 5\nkey_ttl_s = 5.0", wrong="attempts = 5\nkey_ttl_s = 3.0",
              run=TTL_RUN, check=TTL_CHECK, policy=True),
]
