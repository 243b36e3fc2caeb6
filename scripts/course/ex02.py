"""Predict-then-run exercises of notebooks/02_*.ipynb (see course.common.exercise)."""

from __future__ import annotations

from course.common import INTRO, exercise

POLICY_RUN = """import numpy as np
from experiments import retry_storm
from models.resilience import Pipeline, RetryBudgetConfig, RetryPolicy, TimeoutConfig
from models.services import PoissonClient
from simulator.runner.teach import check_targets
ps = retry_storm.QUICK if QUICK else retry_storm.Params()
sim, db = retry_storm.world(ps, seed=1)           # the world of the lesson: same DB, same 2 s latency spike
caller = Pipeline(sim, timeout=TimeoutConfig(request_s=timeout_s), name="client",
                  retry=RetryPolicy(max_attempts=max_attempts, backoff=backoff, base_s=0.05, cap_s=1.0,
                                    jitter="none" if backoff == "none" else "full"),
                  retry_budget=None if retry_budget is None else RetryBudgetConfig(max_tokens=10,
                                                                                   token_ratio=retry_budget))
PoissonClient(sim, "clients", ["db"], rate=ps.rate, stop_at=ps.duration_s, caller=caller)
arrivals = []                                      # queries that reached the DB, sampled every second
def sample():
    arrivals.append((sim.now, db.pool.arrivals))
    sim.at(1.0, sample)
sim.at(0.0, sample)
sim.run(until=ps.duration_s + max_attempts * (timeout_s + 1.0) + 2)
reqs = sim.metrics.requests()
spike_end = ps.trigger_at + ps.trigger_s
during = reqs[(reqs.start >= ps.trigger_at) & (reqs.start < spike_end)]
after = reqs[(reqs.start >= spike_end + 5) & (reqs.start < ps.duration_s)]
avail_during = float((during.outcome == "ok").mean())
avail_after = float((after.outcome == "ok").mean())
a = np.array(arrivals)
per_s = np.diff(a[:, 1]) / ps.rate                 # DB load per 1 s window, in multiples of the offered load
db_load = float(per_s[a[:-1, 0] < ps.duration_s].max())
print(f"{ps.load:.0%} load · {ps.trigger_s:g} s spike of +{ps.spike_extra_s:g} s per message "
      f"at t = {ps.trigger_at:g} s")
print(f"availability during the spike {avail_during:.3f} · 5 s after it {avail_after:.3f} · "
      f"peak DB load {db_load:.2f}x · attempts per request after the spike {after.attempts.mean():.2f} · "
      f"DB thrashed {db.thrashing_s:.1f} s")
print(f"even a policy that never retries peaks at about 1 + {ps.spike_extra_s:g} = {1 + ps.spike_extra_s:.1f}x: "
      "when the spike ends, the attempts it delayed land together with the new ones")"""


EXERCISES = [
    ("md", INTRO),
    *exercise(1, "Retries at every layer", """A call chain `client → A → B → C → D`: the client, A, B and
C each call the next service with **3 attempts** (exponential backoff, full jitter). D is crashed and
refuses connections, so every call to it fails at once. During D's outage, **how many calls
reach D per user request?** (`experiments/retry_amplification.py`.)""",
              answer="prediction = None   # <- your answer: calls reaching D per user request during its outage",
              reference="prediction = 81", wrong="prediction = 12",
              run="""from experiments import retry_amplification
from simulator.runner.teach import agrees, check_number
pa = retry_amplification.QUICK if QUICK else retry_amplification.Params()
per_arm = {}
for arm in retry_amplification.ARMS[:2]:          # retries at every layer; at the top only
    sim = retry_amplification.build(pa, 1, arm)
    sim.run(until=pa.duration_s + 60)
    roots = sim.metrics.requests()
    per_root = retry_amplification.bottom_calls_per_root(sim.spans.frame(), roots)
    inside = (roots.start >= pa.outage_at) & (roots.end <= pa.outage_at + pa.outage_s)  # whole tree in the outage
    per_arm[arm] = per_root[inside.to_numpy()].calls_D
measured = float(per_arm[retry_amplification.ARMS[0]].mean())
closed_form = retry_amplification.theory_bottom_calls(pa.attempts, 4)   # attempts ** layers
print(f"{len(per_arm[retry_amplification.ARMS[0]])} requests wholly inside the outage · calls reaching D per "
      f"request: every layer retries {measured:g} (closed form {pa.attempts}**4 = {closed_form}) · only the "
      f"client retries {per_arm[retry_amplification.ARMS[1]].mean():g} (closed form {pa.attempts})")
agrees(measured, closed_form, 0.0, "attempts ** layers (D fails every call)")""",
              check="""check_number(prediction, closed_form, tol=0.5, why=(
    "Retries multiply, they do not add: C tries D 3 times per call it gets, B calls C 3 times, A calls B 3 times "
    "and the client calls A 3 times, so one user request becomes 3**4 = 81 calls to D (80 of them retries), "
    "not 3 x 4 = 12. The measurement is exact because D refuses every call during the outage; requests "
    "straddling D's recovery make fewer. When D restarts it meets 81x its normal load: retry at one layer "
    "(3x) — the client, which knows whether the user still waits — and put a budget on it."))"""),
    *exercise(2, "Backoff without jitter", """**10 clients** update one row with optimistic concurrency
(read the version, write if unchanged) and retry a conflict with capped exponential backoff **without
jitter**. Every network message takes exactly 10 ms (no randomness). **How many write calls reach the
row until every client has succeeded?**""",
              answer="prediction = None   # <- your answer: total write calls, 10 clients, no jitter",
              reference="prediction = 55", wrong="prediction = 20",
              run="""import dataclasses
import numpy as np
from experiments import backoff_jitter
from simulator.runner.teach import agrees, check_number
pb = dataclasses.replace(backoff_jitter.QUICK, delay_sd_ms=0.0)   # a deterministic network
calls = {s: [backoff_jitter.occ_trial(1, t, 10, s, pb)["calls"] for t in range(pb.trials)]
         for s in ("exponential", "full_jitter")}
measured = float(np.mean(calls["exponential"]))
closed_form = 10 * 11 / 2                          # N(N+1)/2: one winner per wave
print(f"write calls, 10 clients, {pb.trials} runs · no jitter {calls['exponential']} (closed form N(N+1)/2 = "
      f"{closed_form:g}) · full jitter {calls['full_jitter']}")
agrees(measured, closed_form, 0.0, "N(N+1)/2")""",
              check="""check_number(prediction, closed_form, tol=2, unit="calls", why=(
    "Without jitter every loser computes the same backoff and comes back at the same instant, so each wave is "
    "another 10-way, 9-way, 8-way ... collision with exactly one winner: 10 + 9 + ... + 1 = N(N+1)/2 = 55 calls. "
    "Backoff without jitter only delays the collision (and makes the run much longer); full jitter spreads the "
    "clients over the backoff window so several win per wave (about 40 calls here). With a noisy network the "
    "lockstep is slightly broken and plain exponential measures a little under 55 (51 in the lesson's setup)."))"""),
    *exercise(3, "How often is a fan-out slow?", """A search root fans out to **40 leaves** and waits for
all of them. Each leaf call is independently slow (1 s instead of ~5 ms) with probability **2%**.
**What fraction of root requests are slow?**""",
              answer="prediction = None   # <- your answer: fraction of root requests that take >= 1 s (0..1)",
              reference="prediction = 0.55", wrong="prediction = 0.8",
              run="""import dataclasses
from experiments import tail_at_scale
from simulator.runner.teach import agrees, check_number
from models.services import fan_out_theory
pt = dataclasses.replace(tail_at_scale.QUICK if QUICK else tail_at_scale.Params(), slow_fraction=0.02)
fo = tail_at_scale.fan_out(1, 40, pt)
measured = fo["slow_fraction"]
closed_form = fan_out_theory(0.02, 40)            # 1 - (1 - p)**n
se = (closed_form * (1 - closed_form) / fo["requests"]) ** 0.5
print(f"{fo['requests']} root requests · slow {measured:.3f} (± {2 * se:.3f}) · closed form 1 - 0.98**40 = "
      f"{closed_form:.3f} · measured per-leaf p̂ = {fo['p_hat']:.4f} · root p50 {fo['p50_s'] * 1e3:.0f} ms")
agrees(measured, closed_form, 4 * se, "1 - (1 - p)**n")""",
              check="""check_number(prediction, closed_form, tol=0.06, why=(
    f"The root is fast only if all 40 leaves are: 0.98**40 = {1 - closed_form:.2f}, so {closed_form:.0%} of roots "
    "are slow — the median request is slow, although 98% of leaf calls are fast. n x p = 0.8 is the union bound: "
    "it counts twice the requests with two slow leaves and exceeds 1 for n > 50. The measurement differs from "
    "the formula by sampling noise (the realised per-leaf rate p̂ is not exactly 2%). Hedging after the leaves' "
    "p95 makes a leaf slow only if both copies are (p**2 per leaf): 1 - (1 - 0.0004)**40 = 1.6%, for ~5% more "
    "leaf calls."))"""),
    *exercise(4, "Tune the retry policy through the spike", """The lesson's world again: 60% load, a
database that thrashes (10× slower) above 80 queries inside, and a **2 s latency spike that adds
0.6 s to every message** (request and reply). The cell below ships with the lesson's *aggressive*
policy (1 s timeout, 1 immediate retry), which leaves the system down after the spike.

**Choose a per-attempt timeout, a number of attempts, a backoff and a retry budget** so that
- availability (ok fraction of the requests started during the spike) is **≥ 99% through the spike**,
- availability of the requests started 5 s after the spike is **≥ 99%** (the system recovers), and
- the **peak load on the database** (queries per second reaching it, in any 1 s window, over the
  offered load) stays **below 2×**.

Knobs: `timeout_s` (seconds per attempt), `max_attempts` (including the first), `backoff`
(`"none"`, `"fixed"` or `"exponential"`; jittered, base 50 ms, cap 1 s), `retry_budget` (`None`,
or the tokens a success earns, gRPC retry throttling: 10 tokens, a failure costs 1, retries stop
below 5).""",
              answer="""timeout_s = 1.0          # per-attempt timeout (s)
max_attempts = 2         # attempts per request, including the first
backoff = "none"         # "none" (retry at once), "fixed" or "exponential" (full jitter, base 50 ms, cap 1 s)
retry_budget = None      # None, or tokens earned per success (e.g. 0.1: at most ~10% retries)""",
              reference="""timeout_s = 2.0
max_attempts = 3
backoff = "exponential"
retry_budget = 0.1""",
              wrong="""timeout_s = 1.0
max_attempts = 3
backoff = "exponential"
retry_budget = 0.1""",
              run=POLICY_RUN,
              check="""check_targets([("availability during the spike", avail_during, ">=", 0.99),
               ("availability after the spike", avail_after, ">=", 0.99),
               ("peak DB load (x offered)", db_load, "<", 2.0)], hint=(
    "Each knob moves a different number. Availability DURING the spike is set by the timeout alone: the spike "
    "makes a healthy reply slow (the extra latency is added to the request AND to the reply), and an attempt that "
    "times out fails even though the DB answers it — retrying it only sends the same slow round trip again. "
    "Availability AFTER the spike and the DB load are set by how many attempts a timed-out request makes and how "
    "fast: immediate retries double the load exactly when the DB is slowest, it starts thrashing and never drains "
    "(metastable). Backoff with jitter spreads retries out, a retry budget caps them at a fraction of the "
    "successes. Backoff and a budget alone save the DB but not the requests during the spike."))""",
              policy=True),
]
