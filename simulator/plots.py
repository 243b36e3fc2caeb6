"""Figures from DataFrames (matplotlib, imported lazily; the kernel never imports this).

Every function draws on ``ax`` if given and returns the Figure. Colors are stable per
policy/side name (:func:`color_for`), so "retry" is the same color in every figure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Red is kept for faults (shaded windows, drops), so policies never get it.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22", "#393b79"]
FAULT_COLOR = "#d62728"
_assigned: dict[str, str] = {}

Window = tuple[float, float, str]


def color_for(name: Any) -> str:
    """A stable color for ``name``: the same name gets the same color in every figure."""
    key = str(name)
    if key not in _assigned:
        used = set(_assigned.values())
        free = [c for c in PALETTE if c not in used]
        h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little")
        _assigned[key] = free[0] if free else PALETTE[h % len(PALETTE)]
    return _assigned[key]


def policy_colors(names: Iterable[Any]) -> dict[str, str]:
    return {str(n): color_for(n) for n in names}


def _ax(ax, figsize=(8, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax.figure, ax


def shade_faults(ax, windows: Iterable[Window] | None, *, label: bool = True) -> None:
    """Shade fault windows ``(start, end, label)`` on ``ax``."""
    for i, (t0, t1, name) in enumerate(windows or ()):
        ax.axvspan(t0, t1, color=FAULT_COLOR, alpha=0.12, lw=0, label=name if label and i == 0 else None)
        ax.text((t0 + t1) / 2, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color=FAULT_COLOR)


def latency_cdf(df: pd.DataFrame, *, by: str | None = None, ax=None, title: str | None = None,
                ok_only: bool = True, log: bool = True, tail: bool = False):
    """Empirical CDF of request latency (ms), one curve per ``by`` group. ``tail=True`` draws
    the complementary CDF P(latency > x) on log axes instead, where tails are visible."""
    import numpy as np

    fig, ax = _ax(ax)
    d = df[df["outcome"] == "ok"] if ok_only and "outcome" in df else df
    groups = d.groupby(by, observed=True) if by else [("all requests", d)]
    for name, g in groups:
        x = np.sort(g["latency"].to_numpy() * 1e3)
        if len(x):
            f = np.arange(1, len(x) + 1) / len(x)
            y = 1 - f + 1 / len(x) if tail else f
            ax.step(x, y, where="post", label=str(name), color=color_for(name))
    if log:
        ax.set_xscale("log")
    if tail:
        ax.set_yscale("log")
        marks = {0.5: "p50", 0.01: "p99", 0.001: "p99.9"}
    else:
        marks = {0.5: "p50", 0.99: "p99"}
        ax.set_ylim(0, 1.01)
    for q, name in marks.items():
        ax.axhline(q, color="0.7", lw=0.8, ls=":")
        ax.text(ax.get_xlim()[0], q, f" {name}", va="bottom", fontsize=8, color="0.4")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests > x" if tail else "fraction of requests ≤ x")
    ax.legend(loc="lower left" if tail else "lower right")
    ax.set_title(title or ("Latency tail (complementary CDF)" if tail else "Latency CDF"))
    return fig


def percentiles_over_time(pct: pd.DataFrame, *, fault_windows: Iterable[Window] | None = None,
                          cols: Sequence[str] = ("p50", "p99"), by: str | None = None, ax=None,
                          title: str | None = None):
    """Latency percentiles per window (from ``metrics.latency_percentiles(..., window=)``)."""
    fig, ax = _ax(ax)
    shade_faults(ax, fault_windows)
    groups = pct.groupby(by, observed=True) if by else [(None, pct)]
    styles = ["-", "--", ":", "-."]
    for name, g in groups:
        for i, c in enumerate(cols):
            label = c if name is None else f"{name} {c}"
            color = color_for(c if name is None else name)
            ax.plot(g["window"], g[c] * 1e3, styles[i % 4], label=label, color=color)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "Latency percentiles over time")
    return fig


def availability_over_time(avail: pd.DataFrame, *, by: str | None = "side",
                           fault_windows: Iterable[Window] | None = None, ax=None, title: str | None = None):
    """Availability per window (from ``metrics.availability`` / ``availability_by_side``)."""
    fig, ax = _ax(ax)
    shade_faults(ax, fault_windows)
    groups = avail.groupby(by, observed=True) if by and by in avail else [("all", avail)]
    for name, g in groups:
        ax.step(g["window"], g["availability"], where="post", label=str(name), color=color_for(name), lw=1.8)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("availability (fraction answered)")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or "Availability over time")
    return fig


def comparison_grid(frames: dict[str, pd.DataFrame], x: str, ys: Sequence[str], *,
                    fault_windows: Iterable[Window] | None = None, title: str | None = None,
                    ylabels: dict[str, str] | None = None, logy: Sequence[str] = ()):
    """One row per metric in ``ys``, one line per policy (the keys of ``frames``), shared x."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(ys), 1, figsize=(9, 2.6 * len(ys)), sharex=True, constrained_layout=True,
                             squeeze=False)
    for ax, y in zip(axes[:, 0], ys):
        shade_faults(ax, fault_windows, label=False)
        for policy, df in frames.items():
            ax.plot(df[x], df[y], label=policy, color=color_for(policy), lw=1.6)
        ax.set_ylabel((ylabels or {}).get(y, y))
        if y in logy:
            ax.set_yscale("log")
    axes[0, 0].legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel(x)
    if title:
        fig.suptitle(title)
    return fig


def space_time(trace: pd.DataFrame, *, nodes: Sequence[str] | None = None, t0: float | None = None,
               t1: float | None = None, ax=None, title: str | None = None, max_messages: int = 400):
    """A space-time (Lamport) diagram from ``sim.trace.frame()``: one horizontal line per node,
    an arrow per delivered message, a red × where a message was dropped, partitions shaded and
    crashes marked."""
    import numpy as np

    kinds = trace["kind"]
    sends = trace[kinds == "send"]
    ends = trace[kinds.isin(["deliver", "drop"])]
    msgs = sends.merge(ends[["msg_id", "time", "kind"]], on="msg_id", suffixes=("", "_end"))
    if t0 is not None:
        msgs = msgs[msgs["time"] >= t0]
    if t1 is not None:
        msgs = msgs[msgs["time"] <= t1]
    msgs = msgs.head(max_messages)
    names = list(nodes) if nodes else sorted(set(msgs["src"]) | set(msgs["dst"]))
    y = {n: i for i, n in enumerate(names)}
    fig, ax = _ax(ax, figsize=(10, 0.6 * len(names) + 2))
    lo = msgs["time"].min() if len(msgs) else 0.0
    hi = msgs["time_end"].max() if len(msgs) else 1.0
    ax.hlines(list(y.values()), lo, hi, color="0.75", lw=1)
    cuts = trace[kinds.isin(["partition", "heal"])].sort_values("time")
    start = None
    for _, r in cuts.iterrows():
        if r["kind"] == "partition" and start is None:
            start = r["time"]
        elif r["kind"] == "heal" and start is not None:
            shade_faults(ax, [(start, r["time"], "partition")])
            start = None
    if start is not None:
        shade_faults(ax, [(start, hi, "partition")])
    for _, r in trace[kinds.isin(["crash", "recover"])].iterrows():
        if r["src"] in y:
            ax.plot(r["time"], y[r["src"]], marker="X" if r["kind"] == "crash" else "o", color="k", ms=9)
    for _, m in msgs.iterrows():
        if m["src"] not in y or m["dst"] not in y:
            continue
        ys, yd = y[m["src"]], y[m["dst"]]
        color = color_for(m["op"])
        if m["kind_end"] == "deliver":
            ax.annotate("", xy=(m["time_end"], yd), xytext=(m["time"], ys),
                        arrowprops=dict(arrowstyle="->", color=color, lw=0.9, alpha=0.8))
        else:  # dropped: a dashed stub ending in a red cross a third of the way (never on a node line)
            # a message dropped as it was sent still slants toward its destination (its direction shows)
            dt = max(m["time_end"] - m["time"], 0.03 * (hi - lo))
            xm, ym = m["time"] + 0.35 * dt, ys + 0.35 * (yd - ys)
            ax.plot([m["time"], xm], [ys, ym], ls="--", color=color, lw=0.9, alpha=0.8)
            ax.plot(xm, ym, marker="x", color=FAULT_COLOR, ms=7, mew=2)
    ops = list(dict.fromkeys(msgs["op"]))
    for op in ops[:8]:
        ax.plot([], [], color=color_for(op), label=str(op))
    ax.plot([], [], marker="x", ls="", color=FAULT_COLOR, mew=2, label="dropped")
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("true time (s)")
    ax.legend(loc="upper right", fontsize=8, ncol=min(len(ops) + 1, 5))
    ax.set_title(title or "Space-time diagram: messages between nodes")
    return fig


def summary_ci(ci: pd.DataFrame, *, x: str, metric: str, hue: str | None = None, ax=None,
               title: str | None = None, ylabel: str | None = None):
    """Means with 95% confidence intervals (from ``experiment.summarize``) of ``metric``
    against ``x``, one series per ``hue``."""
    fig, ax = _ax(ax)
    d = ci[ci["metric"] == metric]
    groups = d.groupby(hue, observed=True, sort=False) if hue else [(metric, d)]
    cat = not all(isinstance(v, (int, float)) for v in d[x])
    levels = list(dict.fromkeys(d[x]))
    for name, g in groups:
        xs = [levels.index(v) for v in g[x]] if cat else g[x]
        err = [g["mean"] - g["ci95_low"], g["ci95_high"] - g["mean"]]
        ax.errorbar(xs, g["mean"], yerr=err, fmt="o-", capsize=4, color=color_for(name), label=str(name))
    if cat:
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    if hue:
        ax.legend(fontsize=8)
    ax.set_title(title or f"{metric} (mean, 95% CI over seeds)")
    return fig


def sweep_figures(ci: pd.DataFrame, grid_keys: Sequence[str]) -> dict[str, Any]:
    """One figure for a sweep: a panel per metric (mean and 95% CI over seeds) against the first
    grid parameter, one series per value of the other columns. Small multiples read at a
    glance, and one figure saves several times faster than one per metric."""
    import matplotlib.pyplot as plt

    if ci.empty or not grid_keys:
        return {}
    x = grid_keys[0]
    others = [c for c in ci.columns if c not in (x, "metric", "mean", "std", "n", "ci95_low", "ci95_high")]
    hue = None
    if others:
        hue = "_series"
        ci = ci.assign(_series=ci[others].astype(str).agg(" ".join, axis=1))
    metrics = list(dict.fromkeys(ci["metric"]))
    cols = 2 if len(metrics) in (2, 4) else min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), constrained_layout=True, squeeze=False)
    for i, metric in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        summary_ci(ci, x=x, metric=metric, hue=hue, ax=ax, title=metric)
        if i and ax.get_legend() is not None:
            ax.get_legend().remove()  # one legend (the first panel's) is enough
    for j in range(len(metrics), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.suptitle(f"Sweep over {x}: mean and 95% CI over seeds per metric")
    return {"sweep": fig}


def availability_by_arm(frames: dict[str, pd.DataFrame], window: tuple[float, float], title: str):
    """Availability over time of endpoints a and b, one line per arm (``arm`` column): the
    slow-dependency scenario of ``models.services.scenarios``."""
    import matplotlib.pyplot as plt

    avail = frames["availability"]
    if "seed" in avail:
        avail = avail.groupby(["arm", "op", "window"], as_index=False)["availability"].mean()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, constrained_layout=True)
    for ax, op, label in zip(axes, ("a", "b"), ("endpoint a (calls the slow db)", "endpoint b (local only)")):
        shade_faults(ax, [(window[0], window[1], "db slow")])
        for i, (arm, g) in enumerate(avail[avail.op == op].groupby("arm", sort=False)):
            # Arms can coincide: vary the dash and width so an overlapped line stays visible.
            ax.step(g["window"], g["availability"], where="post", label=arm, color=color_for(arm),
                    lw=2.6 - 0.7 * i, ls=("-", "--", ":")[i % 3])
        ax.set_title(label)
        ax.set_xlabel("time (s)")
        ax.set_ylim(-0.03, 1.05)
    axes[0].set_ylabel("availability (fraction ok)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    return fig


_OP_MARKERS = {"ok": ("o", 1.0), "fail": ("x", 0.9), "info": ("^", 0.9)}


def op_latency(ops: Sequence[Any], *, ax=None, title: str | None = None):
    """Jepsen's ``latency-raw`` plot: one point per operation at its invocation time, its latency in
    ms (log scale) up, colour by function, marker by outcome (ok ●, fail ×, info ▲ — an info
    operation timed out, so its point sits at the client's timeout)."""
    fig, ax = _ax(ax, figsize=(9, 4))
    fs = sorted({o.f for o in ops})
    for f in fs:
        for typ, (marker, alpha) in _OP_MARKERS.items():
            sel = [o for o in ops if o.f == f and o.type == typ and o.complete_time is not None]
            if not sel:
                continue
            ax.scatter([o.invoke_time for o in sel], [max(1e-3, 1000 * (o.complete_time - o.invoke_time))
                                                     for o in sel],
                       s=14, marker=marker, color=color_for(f), alpha=alpha, label=f"{f} {typ}",
                       linewidths=1.2 if marker == "x" else 0)
    lat = [o.complete_time - o.invoke_time for o in ops if o.complete_time is not None]
    if lat and max(lat) <= 1e-9:  # every reply came at once: say so instead of a log axis of nothing
        ax.set_yscale("linear")
        ax.set_ylim(-1, 1)
        ax.text(0.5, 0.75, "every operation took 0 ms of simulated time: the node answered at once and\n"
                "clients sit beside their node (Maelstrom: no client latency)", transform=ax.transAxes,
                ha="center", fontsize=9, color="0.3")
        ax.set_ylabel("latency (ms)")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log)")
    ax.set_xlabel("invocation time (s, simulated)")
    if fs:
        ax.legend(loc="upper right", fontsize=8, ncol=min(4, 3 * len(fs)))
    ax.set_title(title or "Latency of every operation")
    return fig


def op_rate(ops: Sequence[Any], *, ax=None, title: str | None = None, bins: int | None = None):
    """Jepsen's ``rate`` plot: completions per second over time, one line per function and outcome
    (``bins`` buckets; default one per second, at most 60)."""
    import numpy as np

    fig, ax = _ax(ax, figsize=(9, 4))
    done = [o for o in ops if o.complete_time is not None]
    if done:
        hi = max(o.complete_time for o in done)
        n = bins or int(min(60, max(1, math.ceil(hi))))
        edges = np.linspace(0.0, max(hi, 1e-9), n + 1)
        width = edges[1] - edges[0]
        for f in sorted({o.f for o in done}):
            for typ in _OP_MARKERS:
                t = [o.complete_time for o in done if o.f == f and o.type == typ]
                if not t:
                    continue
                counts, _ = np.histogram(t, bins=edges)
                ax.plot(edges[:-1] + width / 2, counts / width, color=color_for(f),
                        ls={"ok": "-", "fail": ":", "info": "--"}[typ], label=f"{f} {typ}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("time (s, simulated)")
    ax.set_ylabel("operations per second")
    ax.set_title(title or "Throughput by function and outcome")
    return fig
