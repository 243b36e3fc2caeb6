"""Plots draw what they are given: one line per group, faults shaded, drops marked, CIs
drawn as error bars, and stable colors per name."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from simulator import Constant, Simulation, availability, latency_percentiles, plots  # noqa: E402
from simulator.runner import summarize  # noqa: E402


def small_world():
    sim = Simulation(seed=1, trace=True)
    sim.network(latency=Constant(0.01), loss=0.2)
    sim.node("s").serve("get", service=Constant(0.001), workers=2)
    c = sim.node("c")
    log = sim.metrics
    for i in range(40):
        def go(i=i):
            rid = log.begin("c", "s", "get", sim.now)
            c.call("s", "get", i, 0.05, lambda o, v, rid=rid: log.end(rid, sim.now, o))
        sim.at(i * 0.01, go)
    sim.faults.partition(at=0.1, heal_at=0.2, groups=[["c"], ["s"]])
    sim.run(until=1)
    return sim


def test_every_plot_draws_its_data():
    sim = small_world()
    df = sim.metrics.requests()
    fig = plots.latency_cdf(df, tail=True)
    assert len(fig.axes[0].lines) >= 1 and fig.axes[0].get_yscale() == "log"
    pct = latency_percentiles(df, window=0.1)
    fig = plots.percentiles_over_time(pct, fault_windows=[(0.1, 0.2, "partition")])
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.patches) == 1  # p50, p99 and one shaded window
    av = availability(df, 0.1).assign(side="all")
    fig = plots.availability_over_time(av, by="side")
    assert len(fig.axes[0].lines) == 1
    fig = plots.space_time(sim.trace.frame(), nodes=["c", "s"])
    drops = [ln for ln in fig.axes[0].lines if ln.get_marker() == "x"]
    n_drops = (sim.trace.messages()["fate"] == "drop").sum()
    assert len(drops) == n_drops + 1  # every dropped message, plus the legend's sample
    fig = plots.comparison_grid({"a": pct, "b": pct}, "window", ["p50", "p99"])
    assert len(fig.axes) == 2 and all(len(a.lines) == 2 for a in fig.axes)
    s = pd.DataFrame({"seed": [1, 2, 1, 2], "x": [1, 1, 2, 2], "y": [1.0, 2.0, 3.0, 5.0]})
    ci = summarize(s, ["x"])
    fig = plots.summary_ci(ci, x="x", metric="y")
    assert len(fig.axes[0].containers) == 1  # one errorbar series
    plt.close("all")


def test_colors_are_stable_per_name():
    a = plots.color_for("retry")
    assert plots.color_for("retry") == a
    assert plots.policy_colors(["retry", "other"])["retry"] == a
    assert plots.FAULT_COLOR not in plots.PALETTE
