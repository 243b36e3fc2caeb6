"""``explain``: the story of one request, in words and as a waterfall, read off its spans.

Works on DataFrames (``Spans.frame()`` with an ``events`` column from ``spans.with_events``, the
requests frame, an optional faults frame with ``kind, target, start, end``), so it serves a live
simulation and a run folder (``data/spans.parquet``, ``data/requests.parquet``,
``data/faults.parquet``) alike. A client span splits into network out (``arrive - start``),
queueing (``served - arrive``), service (``replied - served``, including the server's own calls)
and network back (``end - replied``); a span the server never answered has only what it saw.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from .export import _events_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def load_run(run: str | Path, arm: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """(spans, requests, faults) of a run folder, restricted to one ``arm`` (default: the first)."""
    import pandas as pd

    data = Path(run) / "data"
    sp_path = data / "spans.parquet"
    if not sp_path.exists():
        raise FileNotFoundError(f"{sp_path} not found: the run saved no spans (an experiment must return a "
                                f"'spans' frame, e.g. retry_amplification)")
    spans = pd.read_parquet(sp_path)
    reqs = pd.read_parquet(data / "requests.parquet") if (data / "requests.parquet").exists() else None
    faults = pd.read_parquet(data / "faults.parquet") if (data / "faults.parquet").exists() else None
    if "arm" in spans:
        arms = list(dict.fromkeys(spans["arm"]))
        arm = arms[0] if arm is None else arm
        if arm not in arms:
            raise ValueError(f"--arm must be one of {arms}, got {arm!r}")
        spans = spans[spans["arm"] == arm]
        if reqs is not None and "arm" in reqs:
            reqs = reqs[reqs["arm"] == arm]
    if "seed" in spans and spans["seed"].nunique() > 1:
        spans = spans[spans["seed"] == spans["seed"].iloc[0]]
    return spans.reset_index(drop=True), None if reqs is None else reqs.reset_index(drop=True), faults


def pick_traces(spans: pd.DataFrame, requests: pd.DataFrame | None, *, request: int | None = None,
                trace: int | None = None, worst: int | None = None) -> list[int]:
    """Trace ids: of request ``request`` (its metrics row), ``trace`` itself, or the ``worst`` N by latency."""
    if trace is not None:
        if trace not in set(spans["trace_id"]):
            raise ValueError(f"--trace {trace}: no such trace (0..{spans['trace_id'].max()})")
        return [int(trace)]
    roots = spans[spans["parent_id"] < 0]
    if request is not None:
        r = roots[roots["request"] == request]
        if not len(r):
            raise ValueError(f"--request {request}: no traced request with that id")
        return [int(r["trace_id"].iloc[0])]
    n = worst or 1
    dur = roots["end"].fillna(roots["end"].max()) - roots["start"]
    return [int(t) for t in roots.assign(d=dur).sort_values(["d", "trace_id"], ascending=[False, True])
            ["trace_id"].head(n)]


def _ms(x: float) -> str:
    return "?" if x != x else f"{x * 1e3:.1f} ms"


def _parts(r) -> dict[str, float]:
    # A caller that timed out before the server replied saw no reply: its span ends at the timeout,
    # so the server-side parts are cut at the span's end and there is no "network back".
    end = r.end
    cut = (lambda t: min(t, end)) if end == end else (lambda t: t)
    served, replied = cut(r.served), cut(r.replied)
    back = end - r.replied if (end == end and r.replied == r.replied and r.replied <= end) else math.nan
    return {"network out": cut(r.arrive) - r.start, "queueing": served - cut(r.arrive), "service": replied - served,
            "network back": back}


def _faults_on(r, faults: pd.DataFrame | None) -> str:
    if faults is None or not len(faults):
        return ""
    end = r.end if r.end == r.end else math.inf
    hit = [f"{f.kind} of {f.target} ({f.start:g}-{f.end:g} s)" for f in faults.itertuples(index=False)
           if f.target in (r.peer, r.node) and f.start <= end and r.start < f.end]
    return f"; fault active: {', '.join(hit)}" if hit else ""


def story(spans: pd.DataFrame, trace_id: int, faults: pd.DataFrame | None = None) -> str:
    """The request's story: one line per span (depth-indented), its events, and why it ended."""
    t = spans[spans["trace_id"] == trace_id].sort_values(["start", "span_id"])
    if not len(t):
        raise ValueError(f"no spans in trace {trace_id}")
    children: dict[int, list] = {}
    for r in t.itertuples(index=False):
        children.setdefault(int(r.parent_id), []).append(r)
    root = children.get(-1, [t.iloc[0]])[0] if -1 in children else next(t.itertuples(index=False))
    req = f"request {int(root.request)}, " if root.request >= 0 else ""
    lines = [f"Trace {trace_id} ({req}{root.op} from {root.node} to {root.peer}): started at {root.start:.4f} s, "
             f"ended {root.outcome} after {_ms(root.end - root.start)}."]

    def walk(r, depth: int) -> None:
        pad = "  " * depth
        if r.kind == "client":
            hedge = " (hedge copy)" if r.hedge else ""
            p = _parts(r)
            known = ", ".join(f"{k} {_ms(v)}" for k, v in p.items() if v == v)
            lines.append(f"{pad}- attempt {int(r.attempt)}{hedge}: {r.node} -> {r.peer} {r.op} at {r.start:.4f} s: "
                         f"{r.outcome} after {_ms(r.end - r.start)}" + (f" [{known}]" if known else
                                                                          " [never reached the server]")
                         + _faults_on(r, faults))
        else:
            lines.append(f"{pad}* {r.node} calls {r.peer} {r.op} (resilience pipeline): {r.outcome} after "
                         f"{_ms(r.end - r.start)}" + _faults_on(r, faults))
        for tt, name, detail in _events_of(getattr(r, "events", "") or ""):
            lines.append(f"{pad}    ! {tt:.4f} s {name}: {detail}")
        for c in children.get(int(r.span_id), []):
            walk(c, depth + 1)

    walk(root, 0)
    lines.append(_why(root, children))
    return "\n".join(lines)


def _why(root, children) -> str:
    kids = children.get(int(root.span_id), [])
    if root.outcome == "ok":
        tries = sum(1 for k in kids if k.kind == "client")
        return f"Why: it succeeded{f' on attempt {tries}' if tries > 1 else ''}."
    if root.outcome == "in_flight":
        return "Why: it had not ended when the run stopped."
    attempts = [k for k in kids if k.kind == "client"]
    last = attempts[-1] if attempts else None
    ev = _events_of(getattr(root, "events", "") or "")
    final = [n for _, n, _ in ev if n != "retry scheduled"]
    reason = (f"the last of {len(attempts)} attempt(s) ended {last.outcome}" if last is not None
              else "no attempt was sent")
    if final:
        reason += f", then: {', '.join(final)}"
    elif attempts and attempts[-1].attempt >= 1 and not final:
        reason += " and no retry was left"
    return f"Why it ended {root.outcome}: {reason}."


def waterfall(spans: pd.DataFrame, trace_id: int, faults: pd.DataFrame | None = None,
              max_rows: int = 60) -> Figure:
    """One bar per span (start order, indented by depth); client spans split into network /
    queueing / service; events as markers; active faults shaded."""
    import matplotlib.pyplot as plt

    t = spans[spans["trace_id"] == trace_id].sort_values(["start", "span_id"]).reset_index(drop=True)
    depth: dict[int, int] = {}
    for r in t.itertuples(index=False):
        depth[int(r.span_id)] = depth.get(int(r.parent_id), -1) + 1
    shown = t.head(max_rows)
    n = len(shown)
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.28 * n))
    colors = {"network out": "#95a5a6", "queueing": "#e67e22", "service": "#2980b9", "network back": "#bdc3c7"}
    t_end = float(t["end"].max()) if t["end"].notna().any() else float(t["start"].max())
    for y, r in enumerate(shown.itertuples(index=False)):
        end = r.end if r.end == r.end else t_end
        bad = r.outcome not in ("ok", "in_flight")
        if r.kind == "client" and r.arrive == r.arrive:
            x = r.start
            for k, v in _parts(r).items():
                if v == v and v > 0:
                    ax.barh(y, v, left=x, color=colors[k], edgecolor="none")
                    x += v
            if r.replied != r.replied:  # no reply: waited for nothing until it ended
                ax.barh(y, end - r.served if r.served == r.served else end - r.arrive, left=x, color="#f5b7b1")
        else:
            ax.barh(y, max(end - r.start, 1e-9), left=r.start, color="white" if r.kind != "client" else "#f5b7b1",
                    edgecolor="#c0392b" if bad else "#27ae60", hatch="//" if r.kind != "client" else None)
        for tt, name, _ in _events_of(getattr(r, "events", "") or ""):
            ax.plot(tt, y, marker="v" if name == "retry scheduled" else "x", color="black", ms=5)
        tag = f"#{int(r.attempt)}{' hedge' if r.hedge else ''}" if r.kind == "client" else "call"
        label = f"{'  ' * depth[int(r.span_id)]}{r.node}->{r.peer} {tag}"
        ax.text(end, y, f" {r.outcome}", va="center", fontsize=7, color="#c0392b" if bad else "#27ae60")
        ax.annotate(label, (0, y), xycoords=("axes fraction", "data"), xytext=(-4, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=7, family="monospace")
    if faults is not None:
        for f in faults.itertuples(index=False):
            ax.axvspan(max(f.start, float(t["start"].min())), min(f.end, t_end), color="red", alpha=0.07)
    ax.set_yticks([])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("time (s)")
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=k) for k, c in colors.items()] + [
        Patch(facecolor="white", edgecolor="black", hatch="//", label="resilience call (retries inside)"),
        Patch(color="#f5b7b1", label="waiting, no reply")]
    if faults is not None and len(faults):
        handles.append(Patch(color="red", alpha=0.15, label="fault active"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    root = t[t["parent_id"] < 0]
    r0 = root.iloc[0] if len(root) else t.iloc[0]
    more = f" (first {max_rows} of {len(t)} spans)" if len(t) > max_rows else ""
    ax.set_title(f"Trace {trace_id}: {r0['op']} ended {r0['outcome']} after {_ms(r0['end'] - r0['start'])}, "
                 f"{int((t['kind'] == 'client').sum())} RPC attempts{more}", fontsize=10)
    fig.subplots_adjust(left=0.2, right=0.8)
    return fig
