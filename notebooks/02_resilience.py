# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Resilience patterns and the failures they fix
#
# Every pattern here is a bet: spend a little (latency, load, complexity) to avoid a large
# failure. Each section runs one experiment — the same function `splitbrain run NAME` calls —
# and shows the failure mode first, then the pattern that fixes it (or the misuse that makes
# it worse). All arms of a comparison share their random streams, so the difference you see is
# the policy, not the noise.
#
# **By the end you will be able to reason about:** how retries turn a short spike into a
# self-sustaining overload and what stops it (backoff, jitter, budgets); what a circuit breaker and a
# bulkhead each protect; how to choose a timeout; why fan-out makes the tail common and what hedging
# costs; and which load balancer routes around a slow replica. (About 35 minutes.)

# %%
import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()

# %% [markdown]
# ## 1. Retry storms and metastable failure
#
# The toy model of Bronson et al. (HotOS 2021): a database that does 10× the work per query once
# it is overloaded (thrashing), clients that retry once after a 1 s timeout, and a 2 s latency
# spike as the trigger.

# %%
from experiments import retry_storm
p = retry_storm.QUICK if QUICK else retry_storm.Params()
res = retry_storm.run(p, seed=1)
figs = retry_storm.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# The aggressive arm never recovers: once the database thrashes, its
# queue waits longer than the timeout, *every* attempt times out and is retried, so it receives 2×
# the load at a tenth of its capacity — the trigger is gone, the overload sustains itself (stable
# only below 1/(2·10) = 5% of capacity). Exponential backoff with jitter plus a retry **budget**
# keeps the load near 1× and the system recovers when the spike ends.

# %%
explore(retry_storm)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 2. Backoff needs jitter
#
# N clients update one row with optimistic concurrency (read the version, write if unchanged) and
# retry conflicts with capped exponential backoff — the setup of Marc Brooker's "Exponential
# Backoff And Jitter" (AWS Architecture Blog, 2015).

# %%
from experiments import backoff_jitter
p = backoff_jitter.QUICK if QUICK else backoff_jitter.Params()
res = backoff_jitter.run(p, seed=1)
figs = backoff_jitter.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Without jitter the clients stay nearly in
# lock-step (with a fixed network delay exactly one wins per wave: N(N+1)/2 calls); at 100 clients
# plain exponential backoff does about 2.3× the calls of full jitter and takes about 13× as long.
# Jitter (full, equal or decorrelated) breaks the synchrony; no backoff at all finishes fastest
# but does the most work.

# %%
explore(backoff_jitter)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 3. Circuit breakers
#
# A dependency goes down for a while. Without a breaker every call waits out its timeout.

# %%
from experiments import circuit_breaker
p = circuit_breaker.QUICK if QUICK else circuit_breaker.Params()
res = circuit_breaker.run(p, seed=1)
figs = circuit_breaker.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# With a breaker, callers fail fast (here onto a cached fallback) and the dependency
# gets only a trickle of half-open probes — room to recover. The bottom panel is the breaker's
# state machine: closed → open → half_open → open … → closed.

# %%
explore(circuit_breaker)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 4. Timeouts: none, too long, well chosen
#
# Endpoint `a` calls a database that slows down 50×; endpoint `b` never touches it. Both share
# the frontend's workers.

# %%
from experiments import timeouts
p = timeouts.QUICK if QUICK else timeouts.Params()
res = timeouts.run(p, seed=1)
figs = timeouts.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Without a timeout — or with one longer than the clients wait —
# threads pile up on the slow database and endpoint `b` dies too: a cascading failure. A timeout
# just above the dependency's normal tail frees the workers.

# %%
explore(timeouts)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 5. Bulkheads
#
# Same frontend, no timeout, but now the two endpoints get separate worker pools.

# %%
from experiments import bulkhead
p = bulkhead.QUICK if QUICK else bulkhead.Params()
res = bulkhead.run(p, seed=1)
figs = bulkhead.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Isolation contains the failure to the compartment that depends on the slow service.

# %%
explore(bulkhead)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 6. The tail at scale, and hedged requests
#
# A root request fans out to n leaves; 1% of leaf calls are slow.

# %%
from experiments import tail_at_scale
p = tail_at_scale.QUICK if QUICK else tail_at_scale.Params()
res = tail_at_scale.run(p, seed=1)
figs = tail_at_scale.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# The fraction of slow
# fan-outs follows 1 − (1 − p)ⁿ. Hedging — a second copy after the p95 — buys most of the tail
# back for about 5% extra load.

# %%
explore(tail_at_scale)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 7. Load balancing around a slow instance
#
# One of five backends is 5× slower (alive and passing health checks: a gray failure).

# %%
from experiments import load_balancing
p = load_balancing.QUICK if QUICK else load_balancing.Params()
res = load_balancing.run(p, seed=1)
figs = load_balancing.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Random and round robin keep feeding it its full share; least-outstanding and the
# power of two choices notice its queue and route around it.

# %%
explore(load_balancing)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## Exercises: predict, then run
#
# Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
# cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
# then compares your prediction with the measurement and, where one exists, the closed form, and
# explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
# wrong is the point: the explanation is where the lesson is.

# %% [markdown]
# ### Exercise 1 · Retries at every layer
#
# A call chain `client → A → B → C → D`: the client, A, B and
# C each call the next service with **3 attempts** (exponential backoff, full jitter). D is crashed and
# refuses connections, so every call to it fails at once. During D's outage, **how many calls
# reach D per user request?** (`experiments/retry_amplification.py`.)

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 81", "wrong": "prediction = 12", "rerun": false}
prediction = None   # <- your answer: calls reaching D per user request during its outage

# %% tags=["run"]
from experiments import retry_amplification
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
agrees(measured, closed_form, 0.0, "attempts ** layers (D fails every call)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.5, why=(
    "Retries multiply, they do not add: C tries D 3 times per call it gets, B calls C 3 times, A calls B 3 times "
    "and the client calls A 3 times, so one user request becomes 3**4 = 81 calls to D (80 of them retries), "
    "not 3 x 4 = 12. The measurement is exact because D refuses every call during the outage; requests "
    "straddling D's recovery make fewer. When D restarts it meets 81x its normal load: retry at one layer "
    "(3x) — the client, which knows whether the user still waits — and put a budget on it."))

# %% [markdown]
# ### Exercise 2 · Backoff without jitter
#
# **10 clients** update one row with optimistic concurrency
# (read the version, write if unchanged) and retry a conflict with capped exponential backoff **without
# jitter**. Every network message takes exactly 10 ms (no randomness). **How many write calls reach the
# row until every client has succeeded?**

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "prediction = 55", "wrong": "prediction = 20", "rerun": false}
prediction = None   # <- your answer: total write calls, 10 clients, no jitter

# %% tags=["run"]
import dataclasses
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
agrees(measured, closed_form, 0.0, "N(N+1)/2")

# %% tags=["check"]
check_number(prediction, closed_form, tol=2, unit="calls", why=(
    "Without jitter every loser computes the same backoff and comes back at the same instant, so each wave is "
    "another 10-way, 9-way, 8-way ... collision with exactly one winner: 10 + 9 + ... + 1 = N(N+1)/2 = 55 calls. "
    "Backoff without jitter only delays the collision (and makes the run much longer); full jitter spreads the "
    "clients over the backoff window so several win per wave (about 40 calls here). With a noisy network the "
    "lockstep is slightly broken and plain exponential measures a little under 55 (51 in the lesson's setup)."))

# %% [markdown]
# ### Exercise 3 · How often is a fan-out slow?
#
# A search root fans out to **40 leaves** and waits for
# all of them. Each leaf call is independently slow (1 s instead of ~5 ms) with probability **2%**.
# **What fraction of root requests are slow?**

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 0.55", "wrong": "prediction = 0.8", "rerun": false}
prediction = None   # <- your answer: fraction of root requests that take >= 1 s (0..1)

# %% tags=["run"]
import dataclasses
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
agrees(measured, closed_form, 4 * se, "1 - (1 - p)**n")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.06, why=(
    f"The root is fast only if all 40 leaves are: 0.98**40 = {1 - closed_form:.2f}, so {closed_form:.0%} of roots "
    "are slow — the median request is slow, although 98% of leaf calls are fast. n x p = 0.8 is the union bound: "
    "it counts twice the requests with two slow leaves and exceeds 1 for n > 50. The measurement differs from "
    "the formula by sampling noise (the realised per-leaf rate p̂ is not exactly 2%). Hedging after the leaves' "
    "p95 makes a leaf slow only if both copies are (p**2 per leaf): 1 - (1 - 0.0004)**40 = 1.6%, for ~5% more "
    "leaf calls."))

# %% [markdown]
# ### Exercise 4 · Tune the retry policy through the spike
#
# The lesson's world again: 60% load, a
# database that thrashes (10× slower) above 80 queries inside, and a **2 s latency spike that adds
# 0.6 s to every message** (request and reply). The cell below ships with the lesson's *aggressive*
# policy (1 s timeout, 1 immediate retry), which leaves the system down after the spike.
#
# **Choose a per-attempt timeout, a number of attempts, a backoff and a retry budget** so that
# - availability (ok fraction of the requests started during the spike) is **≥ 99% through the spike**,
# - availability of the requests started 5 s after the spike is **≥ 99%** (the system recovers), and
# - the **peak load on the database** (queries per second reaching it, in any 1 s window, over the
#   offered load) stays **below 2×**.
#
# Knobs: `timeout_s` (seconds per attempt), `max_attempts` (including the first), `backoff`
# (`"none"`, `"fixed"` or `"exponential"`; jittered, base 50 ms, cap 1 s), `retry_budget` (`None`,
# or the tokens a success earns, gRPC retry throttling: 10 tokens, a failure costs 1, retries stop
# below 5).

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "timeout_s = 2.0\nmax_attempts = 3\nbackoff = \"exponential\"\nretry_budget = 0.1", "wrong": "timeout_s = 1.0\nmax_attempts = 3\nbackoff = \"exponential\"\nretry_budget = 0.1", "rerun": true}
timeout_s = 1.0          # per-attempt timeout (s)
max_attempts = 2         # attempts per request, including the first
backoff = "none"         # "none" (retry at once), "fixed" or "exponential" (full jitter, base 50 ms, cap 1 s)
retry_budget = None      # None, or tokens earned per success (e.g. 0.1: at most ~10% retries)

# %% tags=["run"]
import numpy as np
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
      "when the spike ends, the attempts it delayed land together with the new ones")

# %% tags=["check", "raises-exception"]
check_targets([("availability during the spike", avail_during, ">=", 0.99),
               ("availability after the spike", avail_after, ">=", 0.99),
               ("peak DB load (x offered)", db_load, "<", 2.0)], hint=(
    "Each knob moves a different number. Availability DURING the spike is set by the timeout alone: the spike "
    "makes a healthy reply slow (the extra latency is added to the request AND to the reply), and an attempt that "
    "times out fails even though the DB answers it — retrying it only sends the same slow round trip again. "
    "Availability AFTER the spike and the DB load are set by how many attempts a timed-out request makes and how "
    "fast: immediate retries double the load exactly when the DB is slowest, it starts thrashing and never drains "
    "(metastable). Backoff with jitter spreads retries out, a retry budget caps them at a fraction of the "
    "successes. Backoff and a budget alone save the DB but not the requests during the spike."))

# %% [markdown]
# ## 8. How services talk: connection pools, HTTP/2 streams, one gRPC stream, and GraphQL's N+1
#
# A gateway calls a fast endpoint and a slow one (each slow request waits 0.5 s on a slow dependency).
# The transport decides who waits for whom: a shared HTTP/1.1 pool of P connections, a pool per endpoint,
# one HTTP/2 connection with 100 concurrent streams, or one ordered gRPC stream. The slow endpoint's
# offered concurrency λ·S grows along the x axis. The third panel: a GraphQL list of N items whose
# resolvers call the backend once per item, against a DataLoader's single batched call.

# %%
from experiments import service_communication
p = service_communication.QUICK if QUICK else service_communication.Params()
res = service_communication.run(p, seed=1)
figs = service_communication.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Little's law is the whole story: the slow endpoint holds λ·S connections on average, and once that
# (plus the fast endpoint's small share) reaches the pool's size the queue grows without bound and every
# request behind it — fast or slow — waits until its deadline. The same exhaustion in a pool of its own is an
# accidental bulkhead: only the slow endpoint suffers. N+1 resolvers cost 1 + N calls; sequential ones also
# cost N round trips; a DataLoader makes it 2 calls.

# %%
explore(service_communication)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ### Exercise 5 · When does the slow endpoint fill the pool?
#
# The gateway's HTTP/1.1 client has **one pool of 10 connections** for both endpoints; a connection
# carries one request at a time. Each request to the slow endpoint holds its connection for **0.5 s**.
# Ignoring the fast endpoint's tiny share, **at what request rate to the slow endpoint (req/s) is the pool
# saturated**, so that fast requests start waiting behind slow ones without bound?

# %% tags=["answer"] splitbrain={"exercise": 5, "reference": "prediction = 20", "wrong": "prediction = 10", "rerun": false}
prediction = None   # <- your answer: slow-endpoint requests per second that saturate a pool of 10

# %% tags=["run"]
import dataclasses
from simulator.runner.teach import agrees, check_number
pc = dataclasses.replace(service_communication.QUICK, loads=(0.5, 1.5))
closed_form = pc.pool_size / pc.slow_s                   # Little: lambda * S = P
shared = service_communication.ARMS[0]
rows = {x: service_communication.transport_point(pc, 1, shared, x) for x in pc.loads}
for x, r in rows.items():
    print(f"slow rate {x * closed_form:g} req/s: connections held {r['mean_held']:.1f} of {pc.pool_size} · fast "
          f"requests within {pc.fast_slo_ms:g} ms {r['fast_within_slo']:.0%} · slow answered {r['slow_availability']:.0%}")
agrees(rows[1.5]["mean_held"], pc.pool_size, 0.05, "a saturated pool holds all P connections")

# %% tags=["check"]
check_number(prediction, closed_form, tol=2, unit="req/s", why=(
    "Little's law: connections in use = arrival rate x holding time, so the slow endpoint alone holds "
    "lambda x 0.5 s connections and fills 10 at lambda = 10 / 0.5 = 20 req/s. Above that, requests arrive faster "
    "than the pool releases connections: the FIFO wait grows until it reaches the deadline, and the fast "
    "endpoint's requests, queued behind slow ones, wait as long. (The fast endpoint's share, 100 req/s x 6 ms "
    "= 0.6 connections, moves the threshold to about 18.8 req/s.) Give the slow endpoint its own pool and its "
    "exhaustion hurts only itself; HTTP/2's 100 streams move the limit to 200 req/s."))

# %% [markdown]
# ## 9. Three timeouts: connect, request, idle
#
# Left: a proxy (an AWS ALB) keeps a connection to a backend open between requests and closes it after its
# idle timeout I = 60 s; the backend (a Node.js server) closes it after its keep-alive K = 5 s. A request the
# proxy writes on a connection the backend has just closed meets a TCP RST: a 502. Right: a connect timeout
# and a request timeout against a healthy, an unreachable (packets dropped) and a slow host.

# %%
from experiments import three_timeouts
p = three_timeouts.QUICK if QUICK else three_timeouts.Params()
res = three_timeouts.run(p, seed=1)
figs = three_timeouts.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# The 502 rate is the chance that an idle gap falls between K and I — quiet services suffer most, busy
# ones rarely idle for 5 s. The fix is an ordering: the side that *reuses* the connection must give up on it
# first (K > I, as AWS documents, or I < K). A connect timeout learns in one round trip that nobody answers;
# only a request timeout bounds a host that answers slowly.

# %%
explore(three_timeouts)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ### Exercise 6 · How many 502s does a quiet service see?
#
# An ALB with the default **idle timeout of 60 s** sits in front of a Node.js service with the default
# **keep-alive of 5 s**. The service gets **one request every 20 s** on average (Poisson, 0.05 req/s) on one
# connection. **What fraction of requests get a 502?** (Exponential idle gaps; a request that finds the
# connection idle between 5 s and 60 s meets a closed one; after a 502 the next request opens a fresh
# connection.)

# %% tags=["answer"] splitbrain={"exercise": 6, "reference": "prediction = 0.42", "wrong": "prediction = 0.05", "rerun": false}
prediction = None   # <- your answer: fraction of requests answered 502 (0..1)

# %% tags=["run"]
import dataclasses
import math
from simulator.runner.teach import agrees, check_number
pi = dataclasses.replace(three_timeouts.QUICK, requests=2000)
row = three_timeouts.idle_point(pi, 1, three_timeouts.ARMS[0], 0.05)
fixed = three_timeouts.idle_point(pi, 1, three_timeouts.ARMS[1], 0.05)
closed_form = row["theory"]
se = math.sqrt(closed_form * (1 - closed_form) / row["requests"])
print(f"{row['requests']} requests · 502s {row['bad_gateway_rate']:.1%} (closed form q/(1+q) = {closed_form:.1%}, "
      f"q = e^-0.25 - e^-3 = {row['q']:.3f}) · with keep-alive 65 s > idle 60 s: {fixed['bad_gateway_rate']:.1%}")
agrees(row["bad_gateway_rate"], closed_form, 4 * se, "q / (1 + q), q = exp(-rK) - exp(-rI)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.06, why=(
    "An idle gap is exponential with mean 20 s, so P(gap > 5 s) = e^-0.25 = 0.78 and P(gap > 60 s) = e^-3 = 0.05: "
    "q = 0.73 of the requests that find an open connection find one the backend already closed (the proxy's own "
    "60 s timer has not fired yet). The request after a 502 opens a fresh connection and is safe, so per request "
    "pi = q (1 - pi), pi = q / (1 + q) = 0.42. The quiet service is the worst case: the rate ln(I/K)/(I - K) = "
    "0.045/s maximises it. Make the backend's keep-alive longer than the proxy's idle timeout (65 s > 60 s) and "
    "the window is empty: no 502s at any rate."))

# %% [markdown]
# ## 10. The service mesh: stacked retries, retry budgets, mesh timeouts, canaries
#
# An application calls a dependency through its sidecar. Left: the dependency hangs; the app tries 3 times,
# the sidecar 3 times per app call — and Envoy's retry budget (20% of active requests may be retries).
# Middle: the app waits 1 s; the sidecar's route timeout is Envoy's default 15 s, or aligned with the app's
# deadline. Right: a bad version rolled out as a canary (1%, 5%, 25%, 50%, 100%), with an analysis every
# interval that rolls back when the canary's error rate passes 1%.

# %%
from experiments import mesh_retries
p = mesh_retries.QUICK if QUICK else mesh_retries.Params()
res = mesh_retries.run(p, seed=1)
figs = mesh_retries.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Adding a mesh under an application that already retries adds a retry layer: 3 × 3 = 9 calls per user
# request reach the failing dependency. The budget caps the sidecar's share at 1/(1 − β). A route timeout
# longer than the app's deadline keeps sending tries for a caller who has left. A canary's automated rollback
# limits a clear regression to the first step's traffic; a subtle one (3% errors against a 1% threshold)
# passes the first, small checks by luck and is caught later, at a larger weight.

# %%
explore(mesh_retries)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ### Exercise 7 · How much of a broken canary do users see?
#
# A new version answers **500 to every request**. It is rolled out as a canary at **1%** of **100 req/s**
# (then 5%, 25%, 50%, 100%); the analysis checks the canary's error rate every **10 s** and rolls back at the
# first failed check. **How many requests does the broken version serve before the rollback?**

# %% tags=["answer"] splitbrain={"exercise": 7, "reference": "prediction = 10", "wrong": "prediction = 50", "rerun": false}
prediction = None   # <- your answer: requests served by the broken canary before the rollback

# %% tags=["run"]
import dataclasses
from models.edge import canary_exposure
from simulator.runner.teach import agrees, check_number
pm = dataclasses.replace(mesh_retries.QUICK, bad_error_rate=1.0, trials=20)
trials = [mesh_retries.canary_trial(pm, 1, mesh_retries.VERSIONS[0], t) for t in range(pm.trials)]
served = [t["canary_requests"] for t in trials]
measured = sum(served) / len(served)
closed_form = canary_exposure(pm.steps, pm.canary_rate, pm.interval_s, 1.0, pm.max_error_rate)["requests"]
print(f"{pm.trials} rollouts · broken-canary requests served {served} · mean {measured:.1f} (closed form "
      f"w1 x rate x interval = {closed_form:.1f}) · rolled back at {trials[0]['decided_at_s']:g} s")
agrees(measured, closed_form, 4 * (closed_form / pm.trials) ** 0.5, "w1 x rate x interval (Poisson)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=2.5, unit="requests", why=(
    "The first check fails for sure (every canary request is an error), so the canary only ever serves its first "
    "step: 1% x 100 req/s x 10 s = 10 requests, all of them errors users see. The number is set by the first "
    "step's weight and the analysis interval, not by the later steps — halve either and you halve the blast "
    "radius (at the price of a slower rollout, or of checks on fewer requests, which let subtle regressions "
    "through)."))

# %% [markdown]
# ## Summary
#
# Every resilience pattern spends something small to avoid something large: backoff and budgets spend
# latency to avoid a retry storm, breakers spend a fallback to give a dependency room, bulkheads spend
# capacity to contain a failure, hedging spends ~5% load to cut the tail. Misused — retries at every
# layer, timeouts longer than the caller waits — the same patterns cause the outage.
# The transport and the mesh add their own copies of these patterns — connection pools that are accidental
# bulkheads or accidental outages, idle timers that must expire on the reusing side first, sidecar retries
# that multiply the app's — so count them as layers too.
#
# **Try next:** `splitbrain sweep retry_storm --grid trigger_s=0.5:1:2:4` to find how long a trigger must
# last to tip the system into the metastable state; `splitbrain run tail_at_scale --param hedge_quantile=0.99`; then
# notebook [03_cap_tradeoffs](03_cap_tradeoffs.ipynb).
