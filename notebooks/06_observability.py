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
# # 06 · Observability: traces, logs, SLOs and "explain this request"
#
# In production you see a distributed system through what it records: traces (one span per RPC,
# linked by a trace id), structured logs carrying that id, RED dashboards per service, and SLO
# alerts on the error budget. A simulator records the whole causal story of every request, so we
# can ask which of these views actually points at a failure's cause. Each section runs one
# experiment (the function `splitbrain run NAME` calls); the last one tells one request's story.
#
# **By the end you will be able to reason about:** how retries at every layer multiply the load a
# trace shows; what an error budget is and how burn-rate alerts trade detection time for false pages;
# why dashboards show a failure's blast radius while traces point at its cause; and how to tell one
# request's story from its spans and logs. (About 25 minutes.)

# %%
import matplotlib.pyplot as plt
from simulator.runner import quick_mode
from simulator.runner.widgets import explore
QUICK = quick_mode()

# %% [markdown]
# ## 1. Retries at every layer, measured with traces
#
# A four-layer chain whose bottom service is down for a while; every layer retries 3 times, or only
# the top one, or the top one under a retry budget. Every RPC attempt is a span, so the calls that
# reach the bottom per user request are counted in each request's trace.

# %%
from experiments import retry_amplification
p = retry_amplification.QUICK if QUICK else retry_amplification.Params()
res = retry_amplification.run(p, seed=1)
figs = retry_amplification.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# Retries compose multiplicatively: a^L calls reach the failed service per user request
# (3^4 = 81). Retry at one layer, and a retry budget keeps even that near 1x once the outage shows.

# %%
explore(retry_amplification)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 2. SLO burn-rate alerts
#
# A fast-burn outage, a slow-burn partial degradation and a short harmless spike, against
# single-window threshold alerts and the SRE Workbook's multiwindow, multi-burn-rate alerts.

# %%
from experiments import slo_burn_alerts
p = slo_burn_alerts.QUICK if QUICK else slo_burn_alerts.Params()
res = slo_burn_alerts.run(p, seed=1)
figs = slo_burn_alerts.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# A single window must choose between paging late and paging on noise. Pairing a long window
# (is the budget really burning?) with a short one (is it still burning?) pages fast on the outage,
# still catches the slow burn, resets soon after recovery and stays quiet for the spike.

# %%
explore(slo_burn_alerts)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 3. Debugging a cascading failure with traces
#
# Five services, api -> orders -> {inventory -> db, pricing}. The db turns slow; inventory's calls to
# it time out, and the failure climbs the graph. What do the per-service RED dashboards show, and
# what do the traces show?

# %%
from experiments import debugging_with_traces
p = debugging_with_traces.QUICK if QUICK else debugging_with_traces.Params()
res = debugging_with_traces.run(p, seed=1)
figs = debugging_with_traces.plot(res, p)
plt.show()
res["summary"]

# %% [markdown]
# The dashboards show the blast radius, not the cause: api, orders, inventory and db all
# error and are slow at once — the api, at the top, looks worst. In every failed trace the span with
# the largest self time is the call to the db. And the logs: finding one failed request's lines by
# timestamp means reading every service's lines from a dozen interleaved requests; its trace id
# selects exactly its own.

# %%
explore(debugging_with_traces)   # change any parameter and rerun (controls need Jupyter with ipywidgets)

# %% [markdown]
# ## 4. Explain one request
#
# `splitbrain explain RUN --worst 3` reads a run folder; the same functions work on the frames a
# run returns. Here: the slowest request of the debugging run above, in words and as a waterfall
# (network, queueing and service time per span; the fault active on its path shaded).

# %%
from simulator.observe.explain import pick_traces, story, waterfall

worst = pick_traces(res["spans"], res["requests"], worst=3)
print(story(res["spans"], worst[0], res["faults"]))
waterfall(res["spans"], worst[0], res["faults"])
plt.show()

# %% [markdown]
# The story walks the trace from the client down: every hop adds a little network and
# service time, and the time sits in the db's span (queueing behind its slow workers, then cut off by
# inventory's timeout) while the db's slowdown is shown as the fault active on that path.

# %%
import tempfile
from pathlib import Path
from simulator.observe import logs

path = Path(tempfile.mkdtemp()) / "logs.jsonl"
h = logs.attach_json_log(path)
logs.emit_span_logs(res["spans"], seed=1)
logs.detach(h)
lines = logs.read_json_log(path)
tid = logs.trace_hex(1, worst[0])
lines[lines["trace_id"] == tid]

# %% [markdown]
# ## 5. Sampling traces and shipping logs through an incident
#
# Storing every trace is too expensive, so both samplers below store the same number per second:
# OpenTelemetry's head sampler (`TraceIdRatioBased`, decided from the trace id when the request starts) and
# the Collector's tail sampler (keep every error and slow trace, fill the budget at random). Then a log
# shipper's bounded buffer meets a 10x burst of incident log lines: back-pressure, drop-newest, drop-oldest.

# %%
from experiments import trace_sampling
p = trace_sampling.QUICK if QUICK else trace_sampling.Params()
res_s = trace_sampling.run(p, seed=1)
figs = trace_sampling.plot(res_s, p)
plt.show()
res_s["summary"]

# %% [markdown]
# Head sampling is blind to outcomes: at ratio p it keeps p of the errors and p of the slow requests. Tail
# sampling spends the same storage on the traces worth reading — all of them in normal traffic, and
# b / (rate x (error + slow share)) of them once an incident produces more than the budget b. A dropping log
# buffer loses (λ − μ)·D − K lines, all from the incident; drop-newest keeps how it started (usually the
# cause), drop-oldest how it ended, and back-pressure keeps every line but delivers them late and stalls
# the producers.

# %% [markdown]
# ## Exercises: predict, then run
#
# Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
# cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
# then compares your prediction with the measurement and, where one exists, the closed form, and
# explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
# wrong is the point: the explanation is where the lesson is.

# %% [markdown]
# ### Exercise 1 · How long does an error budget last?
#
# A service has a **99.9 % availability SLO over
# 30 days**: its error budget is 0.1 % of requests, or 43.2 minutes of total outage. A bad deploy makes it
# fail **2 % of requests** (not all of them), and nobody notices. **After how many hours is the whole
# 30-day budget spent?**

# %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 36", "wrong": "prediction = 0.72", "rerun": false}
prediction = None   # <- your answer in hours (SLO time) from the start of the 2 % errors

# %% tags=["run"]
from models.services import PoissonClient
from simulator import Constant, RpcError, Simulation
from simulator.observe.slo import DAY, HOUR, MINUTE, SLO, budget_consumed
from simulator.runner.teach import agrees, check_number

TS = 3600.0   # SLO seconds per simulated second (as in slo_burn_alerts): one simulated second is one hour


def slo_requests(per_hour, hours, segments, baseline=0.0, seed=1):
    """One service failing each request with probability `ratio` during each (start_h, end_h, ratio) segment."""
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(0.1 / TS))
    fail = sim.uniforms("api.failures")
    segs = [(s * HOUR / TS, e * HOUR / TS, r) for s, e, r in segments]

    def handle(msg):
        if fail() < next((r for s, e, r in segs if s <= sim.now < e), baseline):
            raise RpcError("injected")
        return "ok"

    sim.node("api").on("get", handle)
    PoissonClient(sim, "users", ["api"], rate=per_hour * TS / HOUR, timeout_s=60 / TS, stop_at=hours * HOUR / TS)
    sim.run(until=hours * HOUR / TS)
    return sim.metrics.requests()


slo = SLO(target=0.999, window_s=30 * DAY)
rate, e = (1000 if QUICK else 4000), 0.02        # requests per SLO hour; error ratio of the bad deploy
df = slo_requests(rate, 42, [(1, 42, e)])        # the deploy lands at hour 1
spent = budget_consumed(df, slo, step=MINUTE / TS, time_scale=TS, rate=rate * TS / HOUR)
measured = float(spent.loc[spent["consumed"] >= 1, "t"].iloc[0]) * TS / HOUR - 1
burn = e / slo.budget                            # 20x: the budget goes 20 times faster than planned
closed_form = slo.window_s / HOUR / burn         # 720 h / 20
k = slo.budget * rate * slo.window_s / HOUR      # the budget in requests (720 bad ones at 1000/h)
sd = k ** 0.5 / (rate * e)                       # the k-th bad request arrives at a Poisson time
print(f"{len(df)} requests · budget = {k:.0f} bad requests · spent after {measured:.1f} h (± {2 * sd:.1f}) · "
      f"closed form 720 h / burn rate {burn:.0f} = {closed_form:.1f} h")
agrees(measured, closed_form, 4 * sd + 0.1, "window / burn rate")

# %% tags=["check"]
check_number(prediction, closed_form, tol=4, unit="h", why=(
    f"The burn rate is the error ratio over the budget: 0.02 / 0.001 = {burn:.0f}. Burning at 1 spends the budget in "
    f"exactly 30 days; at 20 in 30/20 = 1.5 days = {closed_form:.0f} h. The 43.2 minutes (0.72 h) is the budget for "
    "a TOTAL outage (burn rate 1000); a partial failure stretches it, which is why SLOs count bad requests, not "
    f"minutes of downtime. The measurement wanders by ± {sd:.1f} h because bad requests arrive at random."))

# %% [markdown]
# ### Exercise 2 · When does the fast-burn page fire?
#
# Same 2 % errors (burn rate 20), now watched by the
# SRE Workbook's fast-burn page: it fires when the error ratio over the **last hour** *and* over the last
# 5 minutes both reach **14.4 × the budget** (14.4 × 0.1 % = 1.44 %). The hour before the deploy was clean.
# **How many minutes after the deploy does it page?** (The lesson's outage failed 10 % of requests.)

# %% tags=["answer"] splitbrain={"exercise": 2, "reference": "prediction = 43", "wrong": "prediction = 8.6", "rerun": false}
prediction = None   # <- your answer in minutes after the errors start

# %% tags=["run"]
from simulator.observe.slo import BurnRateAlert, alert_series, detection_time

rate2 = 12000 if QUICK else 40000                 # requests per SLO hour
df = slo_requests(rate2, 2.2, [(1, 2.2, e)])      # clean first hour, then 2 % errors
fast_page = BurnRateAlert("page 1h/5m", HOUR, 14.4, short_s=5 * MINUTE)
firing = alert_series(df, slo, [fast_page], step=MINUTE / TS, time_scale=TS, start=HOUR / TS)
measured = (float(firing.loc[firing["page"], "t"].iloc[0]) * TS - HOUR) / MINUTE
closed_form = detection_time(e, slo.budget, HOUR, 14.4) / MINUTE   # B·b·w / e
k = 14.4 * slo.budget * rate2                     # bad requests the 1 h window needs (~173 at 12000/h)
sd = (k + k * k / rate2) ** 0.5 / (rate2 * e) * 60  # minutes: Poisson bad count and window size
print(f"paged {measured:.0f} min after the deploy (± {2 * sd:.0f}) · closed form 14.4 × 0.001 × 60 min / 0.02 = "
      f"{closed_form:.1f} min · at 10 % errors: {detection_time(0.10, slo.budget, HOUR, 14.4) / MINUTE:.1f} min")
agrees(measured, closed_form, 4 * sd + 1, "B·b·w/e")

# %% tags=["check"]
check_number(prediction, closed_form, tol=6, unit="min", why=(
    "The 1 h window's error ratio grows as e·t/w while the errors fill it; it reaches B·b = 1.44 % at "
    f"t = B·b·w/e = 14.4 × 0.001 × 60 / 0.02 = {closed_form:.1f} min (the 5-minute window is above 1.44 % within "
    "minutes). Detection time is inversely proportional to the error ratio: 8.6 min at 10 % errors, 43 min at 2 %, "
    f"never below 1.44 %. By then {14.4 * HOUR / slo.window_s:.0%} of the monthly budget is gone (B·w/W) — the page "
    "is designed to fire at a fixed fraction of the budget, not after a fixed time."))

# %% [markdown]
# ### Exercise 3 · Averages hide tails
#
# A RED dashboard (rate, errors, duration) for one service:
# **98 %** of its requests are fast (median 5 ms), but **2 %** hit a cold shard and take about **200 ms**
# (median). The dashboard's mean latency reads about 11 ms — "fine". **What is the p99 latency, in ms?**

# %% tags=["answer"] splitbrain={"exercise": 3, "reference": "prediction = 200", "wrong": "prediction = 25", "rerun": false}
prediction = None   # <- your answer: p99 latency in ms

# %% tags=["run"]
import math
from simulator import LogNormal, Mixture
from simulator.observe.red import red_by

sim = Simulation(seed=1)
sim.network(latency=Constant(0.0005))
fast, slow = LogNormal(median=0.005, sigma=0.5), LogNormal(median=0.200, sigma=0.25)
sim.node("shard").serve("get", service=Mixture([(0.98, fast), (0.02, slow)]), workers=100)
PoissonClient(sim, "client", ["shard"], rate=1000, timeout_s=2.0, stop_at=20.0 if QUICK else 100.0)
sim.run(until=25.0 if QUICK else 105.0)
df = sim.metrics.requests()
print(red_by(df, window=5.0).round(4).head(4))      # the dashboard: per 5 s window
mean_ms, measured = df["latency"].mean() * 1e3, df["latency"].quantile(0.99) * 1e3
# p99 lies where 1 % of requests are slower: half of the 2 % slow ones, i.e. the slow mode's median (+ 1 ms network)
closed_form = 200 + 1
density = 0.02 / (0.200 * 0.25 * math.sqrt(2 * math.pi))   # requests per second of latency at the slow median
se = (0.99 * 0.01 / len(df)) ** 0.5 / density * 1e3        # standard error of a sample quantile, ms
mean_cf = (0.98 * fast.mean + 0.02 * slow.mean) * 1e3 + 1
print(f"{len(df)} requests · mean {mean_ms:.1f} ms (closed form {mean_cf:.1f})"
      f" · p50 {df['latency'].median() * 1e3:.1f} ms · p99 {measured:.0f} ms (± {2 * se:.0f}) · closed form "
      f"{closed_form} ms")
agrees(measured, closed_form, 4 * se, "the slow mode's median")

# %% tags=["check"]
check_number(prediction, closed_form, tol=30, unit="ms", why=(
    f"The mean ({mean_ms:.0f} ms) is 98 % × ~5 ms + 2 % × ~200 ms: the slow 2 % only double it, so it looks healthy. "
    "p99 is the latency that 1 % of requests exceed; 2 % are slow, so p99 sits in the middle of the slow mode: its "
    "median, ~200 ms — 20 times the mean. A latency SLO or alert on the mean would never see the cold shard; one "
    "on p99 does. (With exactly 1 % slow, p99 would sit on the edge between the modes and jump between them from "
    "window to window: watch p99.9 too.)"))

# %% [markdown]
# ### Exercise 4 · Design a burn-rate page
#
# Your own page, one alert: it fires when the burn rate over a
# long window **and** over a short window both reach a threshold (`short_window_min = None`: long window
# only). The day's traffic, 99.9 % SLO over 30 days: errors at **1× the budget** all day (0.1 %, spending it
# exactly as planned: no page), a harmless **5-minute spike at 5 %** at hour 4, and a real **10× burn**
# (1 % errors) from hour 8 to hour 12. **Targets:** page within **2 h** of the 10× burn starting, and
# **no paging** before it or more than **30 min** after it ends. The shipped policy is the lesson's "long
# window only" page; tune the three knobs, rerun, and check.

# %% tags=["answer"] splitbrain={"exercise": 4, "reference": "long_window_h = 2.0\nburn_rate = 6.0\nshort_window_min = 30.0", "wrong": "long_window_h = 5 / 60\nburn_rate = 14.4\nshort_window_min = None", "rerun": true}
long_window_h = 6.0       # hours
burn_rate = 6.0           # x budget
short_window_min = None   # minutes, or None

# %% tags=["run"]
import numpy as np
from simulator.observe.slo import episodes
from simulator.runner.teach import check_targets

rate4, base, burn_e = (3000 if QUICK else 12000), 0.001, 0.01
day = slo_requests(rate4, 15, [(4, 4 + 5 / 60, 0.05), (8, 12, burn_e)], baseline=base)
alert = BurnRateAlert("page", long_window_h * HOUR, burn_rate,
                      None if short_window_min is None else short_window_min * MINUTE)
pages = episodes(alert_series(day, slo, [alert], step=MINUTE / TS, time_scale=TS, start=2 * HOUR / TS), ["page"])
t0, t1, grace = 8.0, 12.0, 0.5                       # SLO hours
on = pages["fired_at"].to_numpy(float) * TS / HOUR
off = np.nan_to_num(pages["reset_at"].to_numpy(float) * TS / HOUR, nan=15.0)
hit = (on <= t1) & (off > t0)
detect_min = (on[hit].min() - t0) * 60 if hit.any() else float("inf")
outside_min = 60 * float(np.sum(np.clip(np.minimum(off, t0) - on, 0, None)
                                + np.clip(off - np.maximum(on, t1 + grace), 0, None)))
thr = burn_rate * slo.budget
det_cf = (long_window_h * 60 * (thr - base) / (burn_e - base)) if thr < burn_e else float("inf")
tails = [w * max(0.0, 1 - (thr - base) / (burn_e - base))         # minutes each window stays above B·b after
         for w in (long_window_h * 60, short_window_min) if w]        # the burn ends (its ratio decays linearly)
print(pages.assign(fired_at_h=on, reset_at_h=off)[["fired_at_h", "reset_at_h"]].round(2).head(8))
print(f"{len(pages)} page episode(s) · first page {detect_min:.0f} min into the burn (closed form "
      f"w·(B·b - e0)/(e - e0) = {det_cf:.0f} min) · paging outside the burn (+30 min): {outside_min:.0f} min · "
      f"the windows stay above threshold {', '.join(f'{x:.0f}' for x in tails)} min after the burn ends")

# %% tags=["check", "raises-exception"]
check_targets([("minutes from the 10x burn's start to the first page", detect_min, "<=", 120),
               ("minutes paging outside the burn (before it, or > 30 min after)", outside_min, "==", 0)],
              hint=("Detection takes about w·(B - 1)/9 for a window w and threshold B against this 10x burn over a 1x "
                    "baseline: a shorter long window or a lower threshold pages sooner, but too short a window sees "
                    "the 5 % spike as a fast burn, and a threshold near 1 pages on the normal 1x errors. After the "
                    "burn, a long window stays above its threshold for much of its length; pairing it with a short "
                    "window (a small fraction of the long one, yet long enough that a few random errors at 1x do "
                    "not reach the threshold) ends the page within minutes."))

# %% [markdown]
# ### Exercise 5 · Tail sampling when the incident outgrows the budget
#
# A service takes **150 requests/s**; a tail sampler may store **10 traces per second** and keeps errors
# and slow traces (1% of requests are slow) first. During an incident **20%** of the requests fail.
# **What fraction of the incident's error traces does the tail sampler keep?**

# %% tags=["answer"] splitbrain={"exercise": 5, "reference": "prediction = 0.32", "wrong": "prediction = 1.0", "rerun": false}
prediction = None   # <- your answer: fraction of the incident's error traces kept

# %% tags=["run"]
import math
from experiments import trace_sampling
from simulator.runner.teach import agrees, check_number
pt = trace_sampling.QUICK
rs = trace_sampling.run(pt, seed=1)["summary"].set_index(["phase", "sampler"]).loc[("incident", "tail")]
closed_form = rs.expected_errors_kept          # E[min(H, b)] / E[H], H ~ Poisson(150 x 0.208) per second
se = math.sqrt(closed_form * (1 - closed_form) / rs.errors)
print(f"{rs.errors} error traces in the incident · tail sampling kept {rs.errors_kept:.3f} · closed form "
      f"{closed_form:.3f} (~ 10 / (150 x 0.208) = {10 / (150 * 0.208):.3f}) · head sampling keeps {pt.head_ratio:.3f}")
agrees(rs.errors_kept, closed_form, 4 * se + 0.01, "E[min(H, b)] / E[H]")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.05, why=(
    "In normal traffic the tail sampler keeps every error, because about 150 x 0.02 = 3 interesting traces a "
    "second fit in a budget of 10. During the incident about 150 x (1 - 0.8 x 0.99) = 31 traces a second are "
    "errors or slow, and the budget still holds 10: it keeps a random 10/31 = 0.32 of them (not 1.0 — the "
    "budget binds — and still five times head sampling's 0.067). Exemplars of every error kind survive; "
    "counts must come from metrics, not from the sampled traces."))

# %% [markdown]
# ## Summary
#
# Metrics tell you *that* something is wrong and how much budget it costs; traces tell you *where* —
# the span with the largest self time, not the service with the worst dashboard; a trace id in every
# log line turns a grep through interleaved logs into one request's story. Multiwindow burn-rate
# alerts page fast on real budget burns and stay quiet on short spikes.
#
# **Try next:** `splitbrain run debugging_with_traces --out /tmp/dbg` then `splitbrain explain /tmp/dbg
# --worst 3`, and open the exported Chrome trace in `chrome://tracing` or Perfetto; `splitbrain hunt raft
# --property linearizable --variant figure8 --seeds 2000` to search for the seed and minimal fault schedule
# that break a deliberately unsafe Raft; then notebook
# `07_architecture`.
