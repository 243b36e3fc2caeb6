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
# # 00 · Start here: a course in distributed thinking
#
# **Who this is for.** Engineers who build or operate services that talk over a network —
# backend developers, SREs, students who have read about CAP and want to *see* it. You need
# Python and curiosity; no distributed-systems background is assumed.
#
# **How it works.** Every notebook runs a deterministic simulator: nodes, a lossy network,
# clocks that drift, partitions, crashes. You break a small system on purpose and measure what
# its clients see. Each notebook has *predict, then run* exercises: you write down a number
# before the simulation runs, then compare it with the measurement and, where one exists, the
# closed form. Being wrong is the point — the gap is where the lesson is.
#
# ## The path (about 20–40 minutes each)
#
# - **[01 · kernel tour](01_kernel_tour.ipynb)** —
#   loss, timeouts and retries; clocks; availability per side of a partition; latency tails
# - **[02 · resilience](02_resilience.ipynb)** —
#   timeouts, retries with backoff and jitter, circuit breakers, bulkheads, load balancing
# - **[03 · CAP tradeoffs](03_cap_tradeoffs.ipynb)** —
#   CAP, PACELC, the consistency ladder; quorums and staleness; clock skew; Raft; CRDTs
# - **[04 · messaging](04_messaging.ipynb)** —
#   queue or HTTP call; visibility timeouts, poison messages; delivery semantics; acks; rebalances
# - **[05 · transactions](05_transactions.ipynb)** —
#   2PC or sagas; orchestration, choreography; idempotency keys; outbox; event sourcing; CQRS
# - **[06 · observability](06_observability.ipynb)** —
#   traces, structured logs, SLOs and burn rates; explaining one slow request
# - **[07 · architecture](07_architecture.ipynb)** —
#   anti-patterns, caching, coordination, queue disciplines, rolling deploys
# - **[08 · build it yourself](08_build_it_yourself.ipynb)** —
#   labs: write your own Maelstrom nodes (echo to transactions), graded and shrunk by the workbench
# - **[09 · Raft by hand](09_raft_by_hand.ipynb)** —
#   write Raft's leader election; election safety under partitions, downtime against the project's Raft
#
# Go in order the first time: later notebooks use words (indeterminate outcome, quorum,
# linearizable) that earlier ones define.

# %%
from simulator import Simulation, Constant, Mixture
from simulator.runner import quick_mode

QUICK = quick_mode()          # CI runs every notebook with SPLITBRAIN_QUICK=1 (small, fast presets)

# %% [markdown]
# ## Warm-up: predict, then run
#
# Write your answer in the `prediction = None` cell (replace `None`), *then* run the two cells after it:
# the simulation, and the check.

# %% [markdown]
# ### Exercise 0 · Fan-out and the tail
#
# A backend answers in 5 ms, except 1% of the time when it takes
# 200 ms (a GC pause, a cold cache). A web page fans out to **10** such backends in parallel and waits
# for all of them. **What fraction of page loads take 200 ms or more?** (a fraction between 0 and 1)

# %% tags=["answer"] splitbrain={"exercise": 0, "reference": "prediction = 0.096", "wrong": "prediction = 0.01", "rerun": false}
prediction = None   # <- your answer: fraction of pages that wait for at least one slow backend

# %% tags=["run"]
from simulator.runner.teach import agrees, check_number
backend = Mixture([(0.99, Constant(0.005)), (0.01, Constant(0.200))])
rng = Simulation(seed=1).rng("warmup")          # a named random stream: same seed, same numbers
pages = 20_000 if QUICK else 200_000
page_latency = backend.draw(rng, pages * 10).reshape(pages, 10).max(axis=1)
measured = float((page_latency >= 0.2).mean())
closed_form = 1 - 0.99 ** 10                       # P(at least one of 10 is slow)
se = (closed_form * (1 - closed_form) / pages) ** 0.5
print(f"measured {measured:.3f} (± {2 * se:.3f}) · closed form {closed_form:.3f}")
agrees(measured, closed_form, 4 * se, "1 - 0.99**10")

# %% tags=["check"]
check_number(prediction, closed_form, tol=0.02, why=(
    f"Each page is fast only if all 10 backends are fast: 0.99**10 = {0.99**10:.3f}, so {closed_form:.1%} of "
    "pages see the 200 ms tail — ten times the 1% of one backend. Fan-out turns a rare tail into a common one "
    "(Dean & Barroso, 'The Tail at Scale')."))

# %% [markdown]
# ## Explore any experiment with controls
#
# Every experiment declares its parameters once (type, unit, allowed range). `explore` turns
# that declaration into sliders and drop-downs with a **Run** button that reruns the experiment
# and redraws its figure. It needs `ipywidgets` in a live Jupyter kernel (`pip install
# ipywidgets`); without it, the cell prints how to install it and the notebook carries on.

# %%
from experiments import kernel_demo
from simulator.runner.widgets import explore, controls_spec
explore(kernel_demo)
controls_spec(kernel_demo)[:4]   # (name, control, min, max, default): read from kernel_demo.Params

# %% [markdown]
# ## Afterwards: run any experiment from the command line
#
# The notebooks call the same functions as the CLI. Once you have finished the course:
#
# ```bash
# splitbrain list                                   # every experiment and the question it answers
# splitbrain show kernel_demo                       # its parameters: default, unit, allowed range
# splitbrain run kernel_demo --quick --out /tmp/kd  # a small run: summary, figures, raw CSVs
# splitbrain run kernel_demo --param loss=0.05 --param max_attempts=1 --out /tmp/kd2
# splitbrain validate                               # reproductions of published numbers
# ```
#
# Tuples are written `a:b:c` (`--param clients=10:50:100`). Every run writes its parameters
# and seed next to its results, so you can rerun it exactly.
#
# **Next:** open [01_kernel_tour](01_kernel_tour.ipynb).
