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
# # 07 · Architecture: anti-patterns, caching, coordination, queues and deploys
#
# The lessons a distributed-systems architect teaches after the patterns: how a microservice
# design can be worse than the monolith it replaced (synchronous chains, chatty calls, a shared
# database), how caches keep users served through an outage (and how they stampede the origin),
# how nodes decide that another node is dead and how a lock stays safe when they are wrong, which
# queue discipline survives a retry storm, and what a rolling deploy does to users. Each section
# runs one experiment — the same function `splitbrain run NAME` calls — on its quick parameters
# in CI; arms share their random streams, so their difference is the design, not the noise.
#
# **By the end you will be able to reason about:** why a distributed monolith is less available
# than the monolith it replaced; what chatty calls cost; shared databases and noisy neighbours; caches
# that degrade gracefully and caches that stampede; failure detectors' detection time against false
# positives; leases and fencing tokens; queue disciplines under overload; and what a rolling deploy
# does to users. (About 40 minutes.)

# %%
import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()

# %% [markdown]
# ## 1. The distributed monolith
#
# The same k steps as a synchronous chain of services, or as asynchronous hand-offs through a
# queue, with every service crashing and recovering independently.

# %%
from experiments import distributed_monolith
p = distributed_monolith.QUICK if QUICK else distributed_monolith.Params()
res = distributed_monolith.run(p, seed=1)
figs = distributed_monolith.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Availabilities multiply along a synchronous chain (a^k) and latencies add up; with
# asynchronous hand-offs the user-facing path depends on one service, and the others' outages
# become delay instead of errors — the user is told "done" before the work is.

# %%
explore(distributed_monolith)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 2. Chatty services
#
# One user operation needing N sequential calls over the WAN, vs one composed call to a
# backend-for-frontend, vs a cache in front of it.

# %%
from experiments import chatty_services
p = chatty_services.QUICK if QUICK else chatty_services.Params()
res = chatty_services.run(p, seed=1)
figs = chatty_services.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# The chatty operation costs N round trips, mean and tail; a composed call pays one
# WAN round trip plus the slowest of N cheap LAN calls. A cache mostly spares the backends.

# %%
explore(chatty_services)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 3. The shared database
#
# Two services on one database connection pool; one of them spikes.

# %%
from experiments import shared_database
p = shared_database.QUICK if QUICK else shared_database.Params()
res = shared_database.run(p, seed=1)
figs = shared_database.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# With a shared pool the quiet service's queries wait behind the spike and time out,
# although nothing changed for it. A database each, or a per-service cap on the pool, confines the
# overload to the service that caused it.

# %%
explore(shared_database)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 4. Graceful degradation through a dependency outage
#
# Caching policies in front of an origin that hangs for a while: plain TTL, stale-while-revalidate,
# stale-if-error, default responses.

# %%
from experiments import graceful_degradation
p = graceful_degradation.QUICK if QUICK else graceful_degradation.Params()
res = graceful_degradation.run(p, seed=1)
figs = graceful_degradation.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Stale-if-error keeps serving every key that was cached, buying availability with
# staleness bounded by ttl + stale-if-error; a default answers the cold keys. "Available" then means
# "degraded" — a product decision.

# %%
explore(graceful_degradation)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 5. The cache stampede
#
# Hot keys expiring together; with and without jittered TTLs, request coalescing (single flight)
# and probabilistic early expiration.

# %%
from experiments import cache_stampede
p = cache_stampede.QUICK if QUICK else cache_stampede.Params()
res = cache_stampede.run(p, seed=1)
figs = cache_stampede.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Each expiry of a key read at rate λ costs 1 + λL origin calls without coalescing,
# and the burst makes L grow. Jitter desynchronises the keys; coalescing makes it one call per key
# per expiry.

# %%
explore(cache_stampede)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 6. Failure detectors
#
# A fixed heartbeat timeout and the phi-accrual detector, over a range of thresholds, under
# latency jitter, loss and GC-like pauses. (SWIM — direct and indirect probes with suspicion — is
# `models.coordination.swim`; its tests show indirect probes saving a member that one prober
# cannot reach.)

# %%
from experiments import failure_detectors
p = failure_detectors.QUICK if QUICK else failure_detectors.Params()
res = failure_detectors.run(p, seed=1)
figs = failure_detectors.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Every detector trades detection time for false positives; the knob that matters is
# how long a silence you tolerate.

# %%
explore(failure_detectors)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 7. Leases and fencing tokens
#
# A client pauses past its lease, another takes the lock, the first wakes and writes.

# %%
from experiments import fencing_tokens
p = fencing_tokens.QUICK if QUICK else fencing_tokens.Params()
res = fencing_tokens.run(p, seed=1)
figs = fencing_tokens.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# A lease alone is not mutual exclusion: fencing tokens make the storage refuse the
# stale holder's write. Leases also assume bounded clock drift: keep a margin of |drift| x TTL.

# %%
explore(fencing_tokens)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 8. Queue disciplines and the retry storm
#
# The metastable retry storm under FIFO, adaptive LIFO, CoDel and deadline dropping.

# %%
from experiments import queue_discipline
p = queue_discipline.QUICK if QUICK else queue_discipline.Params()
res = queue_discipline.run(p, seed=1)
figs = queue_discipline.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Under FIFO the storm outlives the spike; adaptive LIFO serves the clients still
# waiting, CoDel and deadline dropping shed the stale head — each recovers, at its own cost in tail
# latency.

# %%
explore(queue_discipline)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 9. Rolling deploys
#
# A service rolled from v1 to v2 one instance at a time behind a load balancer, with clients of
# both versions: an additive change, a breaking one (a renamed field), and a deploy without a
# readiness check.

# %%
from experiments import rolling_deploy
p = rolling_deploy.QUICK if QUICK else rolling_deploy.Params()
res = rolling_deploy.run(p, seed=1)
figs = rolling_deploy.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Both versions serve at once during a rollout. An additive change costs nothing; a
# breaking one fails every mismatched (client, instance) pair — (1 − c) f + c (1 − f) of the
# requests with a fraction f of instances on v2 and c of v2 clients — so errors climb with the
# rollout's progress. Without a readiness check, each new instance takes its share of traffic while
# cold, and those requests time out or crawl; expand-and-contract (add the new field, migrate the
# clients, then remove the old one) makes every step of the rollout compatible.

# %%
explore(rolling_deploy)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 10. Service discovery: stale caches and probes
#
# A registry health-checks each instance and delists a dead one after `k` missed checks; clients cache
# its answer for a TTL (DNS, or a client library) — or call a router that holds the only, watched, cache.
# One instance crashes; then a new instance that needs 40 s to start joins, with and without a readiness
# probe, and with a liveness probe that fires too early.

# %%
from experiments import service_discovery
p = service_discovery.QUICK if QUICK else service_discovery.Params()
res = service_discovery.run(p, seed=1)
figs = service_discovery.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# After a crash at a random instant, a dead instance keeps receiving its 1/n share until the registry
# notices, (k − ½)h on average, and then until every cache refreshes, another R/2: a 30 s DNS TTL costs more
# than the health checker. Server-side discovery (one watched list) removes the cache term. A readiness
# probe keeps traffic off an instance until it can serve; a liveness probe whose last allowed failure comes
# before the start-up ends (`startup > initialDelaySeconds + (failureThreshold − 1) × periodSeconds`) kills
# it again and again: CrashLoopBackOff. A startupProbe, or a longer initial delay, is the fix.

# %% [markdown]
# ## 11. API versioning and feature flags
#
# v2 of an API renames a field while clients upgrade slowly (mean τ). The gateway routes `/v1` and `/v2`
# (URL versioning, v1 removed later), or routes on an `Accept-Version` header whose default becomes the
# latest; an additive change; and the breaking change behind a feature flag, all at once or in guarded
# stages.

# %%
from experiments import api_versioning
p = api_versioning.QUICK if QUICK else api_versioning.Params()
res = api_versioning.run(p, seed=1)
figs = api_versioning.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Removing v1 T after the release fails exactly the clients that have not upgraded, e^(−T/τ) of the
# requests: supporting N-1 for τ·ln(1/ε) keeps that under ε. A header default that follows the latest
# version breaks every client that never sent the header, at once; an additive change breaks nobody. A
# flag rolled out in stages with a guard stops at its first stage's errors instead of an outage.

# %% [markdown]
# ## 12. Service-to-service auth: rotating certificates and signing keys
#
# A workload's mTLS certificate is renewed with and without overlap, one verifier's clock runs behind
# (so a fresh certificate's notBefore is in its future), and the CA backdates notBefore; then a JWT
# issuer rotates its signing key while verifiers cache its JWKS for a TTL.

# %%
from experiments import s2s_auth
p = s2s_auth.QUICK if QUICK else s2s_auth.Params()
res = s2s_auth.run(p, seed=1)
figs = s2s_auth.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# A rotation without overlap fails every call from expiry until the next reload (reload/2 on average); with
# an overlap longer than the reload period, none — unless a verifier's clock is behind, which rejects the
# new certificate as not yet valid for the skew minus the reload delay; backdating notBefore past the skew
# fixes it. A JWKS cached for t rejects new-key tokens for (t − o)²/(2t) per rotation: publish the key at
# least one TTL before signing with it.

# %% [markdown]
# ## Exercises: predict, then run
#
# Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
# cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
# then compares your prediction with the measurement and, where one exists, the closed form, and
# explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
# wrong is the point: the explanation is where the lesson is.

# %% [markdown]
# ### Exercise 1 · Five nines? Five services
#
# A checkout request passes **synchronously** through a
# chain of **k = 5 services** (svc-1 calls svc-2 ... calls svc-5); each service is up **99.5%** of the time,
# crashing and recovering independently of the others. A request succeeds only if every service on the
# path is up. **What fraction of user requests succeed?** (Then compare the asynchronous wiring, where
# the user waits on svc-1 only and the others consume from queues.)

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 0.975", "wrong": "prediction = 0.995", "rerun": false}
prediction = None   # <- your answer: fraction of requests that succeed (0..1)

# %% tags=["run"]
import dataclasses
from experiments import distributed_monolith
from simulator.runner.teach import agrees, check_number
# short, frequent outages (mean 20 ms down) so a minute of traffic sees hundreds of them
pm = dataclasses.replace(distributed_monolith.QUICK, ks=(5,), availability=0.995, mttr_s=0.02, rate=100.0,
                         duration_s=60.0 if QUICK else 300.0)
ms = distributed_monolith.run(pm, seed=1)["summary"].set_index("arm")
sync, queued = ms.loc["synchronous chain"], ms.loc["asynchronous (queue)"]
measured = float(sync.availability)
closed_form = 0.995 ** 5                           # every one of the 5 services must be up: a^k
print(f"{int(sync.requests)} requests · synchronous chain: measured {measured:.4f} (± {2 * sync.se:.4f}) · "
      f"closed form a^k = {closed_form:.4f}")
print(f"asynchronous (queue): measured {queued.availability:.4f} · closed form a = 0.995")
agrees(measured, closed_form, 4 * float(sync.se), "0.995**5")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.006, why=(
    f"The request needs all five up at once: 0.995**5 = {closed_form:.4f}, i.e. 1 - a^k ≈ k(1 - a) = 2.5% "
    "failures — five times one service's, about 18 hours a month instead of 3.6. The measurement differs "
    "from a^k by sampling noise: requests close in time see the same outage, so the error bar is wider than a "
    "binomial one. With queues the user depends on svc-1 alone (a = 0.995 whatever k is): the other outages "
    "become delay, not errors."))

# %% [markdown]
# ### Exercise 2 · Stale-if-error through an origin outage
#
# The origin hangs for **15 s** (from t = 10 s)
# in `graceful_degradation`'s quick scenario: 50 keys (Zipf popularity), 100 reads/s, an in-process cache
# with stale-if-error. Product asks for three things **during the outage**: at least **99% of reads answered
# with data**, a p99 read latency of at most **250 ms**, and a promise that no user ever sees data older
# than **20 s** (the worst case stale-if-error allows is `ttl_s + stale_if_error_s`). Normal operation
# (before the outage) must still answer 99% of reads with data. **Choose the cache TTL, the stale-if-error
# window and the origin timeout.** The shipped policy misses.

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "ttl_s = 2.0\nstale_if_error_s = 18.0\ntimeout_s = 0.2", "wrong": "ttl_s = 2.0\nstale_if_error_s = 60.0\ntimeout_s = 0.5", "rerun": true}
ttl_s = 2.0              # cache TTL (s)
stale_if_error_s = 5.0   # serve an expired entry this long after expiry if the origin fails
timeout_s = 0.5          # origin call timeout (s)

# %% tags=["run"]
import dataclasses
from experiments import graceful_degradation
from simulator.runner.teach import agrees, check_targets
pg = dataclasses.replace(graceful_degradation.QUICK, ttl_s=ttl_s, sie_s=stale_if_error_s, timeout_s=timeout_s)
gs = graceful_degradation.run(pg, seed=1)["summary"].set_index("policy").loc["stale-if-error"]
promise = ttl_s + stale_if_error_s
print(f"during the outage: {gs.data_during:.4f} answered with data · oldest data served {gs.age_max_during_s:.1f} s "
      f"(bound ttl + stale-if-error = {promise:g} s) · p99 latency {gs.p99_latency_during_s * 1e3:.0f} ms")
print(f"before the outage: {gs.data_before:.4f} answered with data")
# an entry is served at most ttl + stale-if-error after the origin produced it (plus one origin call)
agrees(min(gs.age_max_during_s, promise), gs.age_max_during_s, timeout_s + 0.1, "age <= ttl + stale_if_error")

# %% tags=["check", "raises-exception"]
check_targets([("reads answered with data during the outage", gs.data_during, ">=", 0.99),
               ("p99 read latency during the outage (s)", gs.p99_latency_during_s, "<=", 0.25),
               ("promised maximum age ttl + stale-if-error (s)", promise, "<=", 20.0),
               ("reads answered with data before the outage", gs.data_before, ">=", 0.99)], hint=(
    "An entry survives the outage only if its stale-if-error window outlasts it, counting the age it already "
    "had when the origin failed (up to the TTL, more for a rarely read key): a window shorter than the outage "
    "fails the cold tail. The promise ttl + stale-if-error caps how long that window may be, and a shorter TTL "
    "leaves more of the promise to the window. Every stale answer is served only after the origin call fails, "
    "so during the outage each read waits the full origin timeout: the p99 is the timeout — shorten it, "
    "but not below the origin's normal latency (20 ms on average), or normal reads fail too."))

# %% [markdown]
# ### Exercise 3 · How many origin calls per expiry?
#
# One hot key is read **200 times per second**
# through a cache with a **TTL of 0.5 s** and **no request coalescing**. The origin answers in **50 ms**
# (and has plenty of workers, so nothing queues there). Every read that finds the entry expired calls the
# origin itself, until the first call returns and refills the cache. **On average, how many origin calls
# does each expiry of the key cost?**

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 11", "wrong": "prediction = 1", "rerun": false}
prediction = None   # <- your answer: origin calls per expiry of the key

# %% tags=["run"]
from models.resilience.pipeline import BareCaller
from models.services.cache import CacheConfig, CachingCaller, KeyedClient
from simulator import Constant, LogNormal, Simulation
from simulator.runner.teach import agrees, check_number
lam, ttl = 200.0, 0.5
per_expiry, latency, expiries = {}, {}, {}
for coalesce in (False, True):
    sim = Simulation(seed=1)
    sim.network(latency=LogNormal(median=0.0005, sigma=0.3))
    sim.node("origin").serve("get", lambda m, sim=sim: sim.now, service=Constant(0.05), workers=1000)
    cache = CachingCaller(sim, CacheConfig(ttl_s=ttl, coalesce=coalesce), BareCaller(0.5), name="app")
    KeyedClient(sim, "app", "origin", cache, rate=lam, keys=1)
    sim.run(until=40.0 if QUICK else 200.0)
    calls = cache.origin_calls_frame()
    expiries[coalesce] = int((calls.start.diff().fillna(float("inf")) > ttl / 2).sum())   # one burst per cycle
    per_expiry[coalesce], latency[coalesce] = len(calls) / expiries[coalesce], float(calls.latency.mean())
measured = per_expiry[False]
closed_form = 1 + lam * latency[False]             # the first miss + the reads arriving while it is in flight
se = (lam * latency[False] / expiries[False]) ** 0.5      # Poisson count per burst, averaged over the bursts
print(f"{expiries[False]} expiries · without coalescing: measured {measured:.2f} (± {2 * se:.2f}) calls per expiry · "
      f"closed form 1 + λL = 1 + {lam:g} x {latency[False] * 1e3:.1f} ms = {closed_form:.2f}")
print(f"with coalescing (single flight): {per_expiry[True]:.2f} call per expiry")
agrees(measured, closed_form, 4 * se, "1 + λL")

# %% tags=["check"]
check_number(prediction, closed_form, tol=2.0, unit="calls", why=(
    "The first read after the expiry misses and calls the origin; for the L = 50 ms (plus the network) until "
    f"that call refills the cache, every other read misses too: λL = 200 x 0.05 = 10 more, so 1 + λL ≈ "
    f"{closed_form:.1f}. The measurement differs by Poisson noise (the count in each window is random). The "
    "cache does not protect the origin at the moment it matters; it multiplies the load by 1 + λL, and if the "
    "burst makes the origin queue, L grows and so does the next burst. Coalescing makes it exactly 1."))

# %% [markdown]
# ### Exercise 4 · A breaking change, three quarters rolled out
#
# Four instances behind a random load
# balancer are rolled from v1 to v2, where v2 **renames a field**: a v1 client's request to a v2 instance
# fails, and so does a v2 client's request to a v1 instance. **20%** of the requests come from clients already
# on v2. **When 3 of the 4 instances in the balancer run v2, what fraction of requests fail?**

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "prediction = 0.65", "wrong": "prediction = 0.75", "rerun": false}
prediction = None   # <- your answer: fraction of requests failing with 3 of 4 instances on v2

# %% tags=["run"]
import dataclasses
from experiments import rolling_deploy
from simulator.runner.teach import agrees, check_number
pr = dataclasses.replace(rolling_deploy.QUICK, rate=300.0) if QUICK else rolling_deploy.Params()
rq = rolling_deploy.run(pr, seed=1)["requests"]
closed_form = rolling_deploy.theory("breaking", 0.2, 0.75)     # (1 - c) f + c (1 - f)
window = rq[(rq.arm == "breaking, readiness check") & ((rq.p_mismatch - closed_form).abs() < 1e-9)]
measured = float((window.outcome == "error").mean())
se = (closed_form * (1 - closed_form) / len(window)) ** 0.5
print(f"{len(window)} requests while 3 of 4 instances ran v2 · measured {measured:.3f} (± {2 * se:.3f}) · "
      f"closed form (1 - c) f + c (1 - f) = 0.8 x 0.75 + 0.2 x 0.25 = {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "(1 - c) f + c (1 - f)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.04, why=(
    "Two kinds of requests fail: v1 clients (80%) landing on a v2 instance (75%) — 0.60 — and v2 clients (20%) "
    "landing on the last v1 instance (25%) — 0.05: 0.65 in all. It is neither the share of instances upgraded "
    "(0.75) nor the share of new clients (0.2): every mismatched pair fails, in both directions. At half way "
    "it is 0.5 whatever c is, and after the rollout 1 - c = 0.8 until the v1 clients are gone. The measured "
    "value differs by binomial noise over the few seconds at f = 3/4. Expand and contract (add the new field, "
    "migrate, then remove the old) keeps every pair compatible."))

# %% [markdown]
# ### Exercise 5 · A cached DNS answer after a crash
#
# Four instances behind a registry that health-checks every **5 s** and delists an instance after **3**
# intervals without a good check; each client caches the registry's answer for a **30 s TTL** (each at its
# own phase) and sends its requests to a random instance of its cached list. One instance crashes at a
# random instant. **What fraction of the requests sent in the 60 s after the crash fail?**

# %% tags=["answer"] splitbrain={"exercise": 5, "reference": "prediction = 0.115", "wrong": "prediction = 0.0625", "rerun": false}
prediction = None   # <- your answer: fraction of requests failing in the 60 s after the crash

# %% tags=["run"]
from experiments import service_discovery
from simulator.runner.teach import agrees, check_number
pd_ = service_discovery.QUICK if QUICK else service_discovery.Params()
r = service_discovery.crash_summary(pd_, 1, 5.0, "client", 30.0)
closed_form = service_discovery.expected_failed_fraction(pd_, 5.0, 30.0)    # (1/n) ((k - 1/2) h + R/2) / window
se = (closed_form / r["requests"]) ** 0.5 + r["exposure_se_s"] / pd_.instances / pd_.window_s
print(f"{r['requests']} requests after {pd_.trials} crashes · measured {r['failed_fraction']:.3f} · mean exposure "
      f"{r['exposure_s']:.1f} s · closed form (1/4) x (2.5 x 5 + 30/2) / 60 = {closed_form:.3f}")
agrees(r["failed_fraction"], closed_form, 4 * se, "(1/n) ((k - 1/2) h + R/2) / window")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.02, why=(
    "The dead instance keeps its 1/4 share for as long as it stays in a client's cache. The registry's last good "
    "check came a uniform 0-5 s before the crash, so it delists after (3 - 1/2) x 5 = 12.5 s on average; each "
    "cache then keeps the dead entry until its next refresh, 30/2 = 15 s on average: 27.5 s of a 60 s window, "
    "times 1/4 = 0.115. Counting only the TTL (0.0625) forgets detection; 1/4 forgets that it ends. Shorter "
    "TTLs or a watched endpoint list (server-side discovery) shrink the larger term; retries on another "
    "instance hide it."))

# %% [markdown]
# ### Exercise 6 · When can v1 go?
#
# v2 of an API ships; each client upgrades after an exponential time with a mean of **30 s** (the
# simulator's compressed weeks). v1's route is deleted **60 s** after the release. **What fraction of the
# requests sent just after the removal fail?**

# %% tags=["answer"] splitbrain={"exercise": 6, "reference": "prediction = 0.135", "wrong": "prediction = 0.0", "rerun": false}
prediction = None   # <- your answer: fraction of requests failing just after v1 is removed

# %% tags=["run"]
import dataclasses, math
from experiments import api_versioning
from simulator.runner.teach import agrees, check_number
pv = dataclasses.replace(api_versioning.QUICK, sweep_after_s=(60.0,), sweep_window_s=2.0, rate=200.0)
sw = api_versioning.run(pv, seed=1)["removal_sweep"].iloc[0]
closed_form = math.exp(-60 / 30)
print(f"{sw.requests:.0f} requests in the {pv.sweep_window_s:g} s after removal · measured {sw.failed_fraction:.3f} · "
      f"closed form e^(-60/30) = {closed_form:.3f} (averaged over the window: {sw.expected:.3f})")
agrees(sw.failed_fraction, sw.expected, 4 * sw.se, "(tau/w)(exp(-T/tau) - exp(-(T+w)/tau))")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.03, why=(
    "Every request from a client still on v1 fails once its route is gone, and with exponential upgrade times "
    "the share of clients not yet upgraded after T is e^(-T/tau) = e^(-2) = 0.135 — two mean upgrade times is "
    "far from 'everyone'. Removing it at 0.0 would need T = infinity; keeping failures under 1% needs "
    "T = tau ln(100) = 4.6 tau. Watch the v1 traffic (per API key) before removing it, not the calendar."))

# %% [markdown]
# ### Exercise 7 · A signing-key rotation without overlap
#
# An issuer starts signing with a new key the moment it publishes it in its JWKS (no overlap). Each of many
# verifiers caches the JWKS for **30 s** and refetches at its own, random phase. **For how many seconds per
# rotation does a verifier reject the new tokens, on average?**

# %% tags=["answer"] splitbrain={"exercise": 7, "reference": "prediction = 15", "wrong": "prediction = 30", "rerun": false}
prediction = None   # <- your answer: seconds of rejections per verifier per rotation

# %% tags=["run"]
from experiments import s2s_auth
from simulator.runner.teach import agrees, check_number
pj = s2s_auth.QUICK if QUICK else s2s_auth.Params()
r = s2s_auth.jwks_arm(pj, 1, 30.0, 0.0)
closed_form = r["expected_window_s"]               # (t - o)^2 / (2 t) with o = 0: t / 2
tol = 4 * r["se"] * (pj.key_rotations + 0.5) * pj.rotation_s / pj.key_rotations
print(f"{r['requests']} verifications, {pj.jwks_verifiers} verifiers, {pj.key_rotations} rotations · measured "
      f"{r['window_s']:.1f} s per rotation · closed form 30 / 2 = {closed_form:.1f} s")
agrees(r["window_s"], closed_form, tol, "(t - o)^2 / (2 t)")

# %% tags=["check"]
check_number(prediction, closed_form, tol=2.0, unit="s", why=(
    "A verifier keeps its cached JWKS until its next refetch, which comes a uniform 0-30 s after the key "
    "appears: on average 15 s, not the full TTL (30 s is the worst case, met by the verifier that refetched "
    "just before). Publish the new key at least one TTL before signing with it and nobody rejects anything: "
    "the window is (t - o)^2 / (2t), zero for o >= t. Refetching the JWKS on an unknown kid (rate-limited) "
    "is the other fix."))

# %% [markdown]
# ## Summary
#
# Architecture decides which failures users see: synchronous chains multiply unavailability,
# chatty designs multiply latency, shared databases share overload, caches buy availability with
# staleness and can stampede their origin, failure detectors trade detection time for false
# suspicion (which is why locks need fencing tokens), queue disciplines decide who is served under
# overload, and rolling deploys run two versions at once.
#
# **Try next:** `splitbrain list` for every experiment and `splitbrain validate` for the published numbers
# the simulator reproduces; design a fault schedule of your own for `kernel_demo`; or reopen any
# notebook's *Explore* cells and try to break a pattern you now trust.
