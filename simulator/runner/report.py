"""``splitbrain report RUN``: one self-contained static ``report.html`` for a run folder.

The page holds everything a reader needs with no server and no network: the run's metadata
(experiment, seeds, versions, git revision, command, wall time), its parameters with units and
ranges, the summary with 95% confidence intervals, every figure (PNGs embedded as base64
``data:`` URIs), the slowest requests' waterfalls and stories when the run saved spans (drawn
by :mod:`simulator.observe.explain`), the space-time diagram when it saved a message trace,
the fault schedule, the alerts fired, the cells and their errors. Plain HTML and inline CSS,
no JavaScript; every piece of text from the run is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .params import ExperimentError, _show

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 200  # rows shown of a long table (alerts, faults); the rest are counted, not shown
MAX_ARMS = 4  # arms whose slowest requests get waterfalls

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.question { font-size: 1.1em; color: #444; margin-top: 0; }
nav { background: #f6f8fa; border: 1px solid #ddd; padding: 0.5em 1em; font-size: 0.92em; }
nav a { margin-right: 1em; white-space: nowrap; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
table.params td:nth-child(5), table.params td:nth-child(3) { white-space: nowrap; }
td.changed { font-weight: bold; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; font-size: 0.8em;
      white-space: pre-wrap; }
.note { color: #666; font-size: 0.88em; }
.bad { color: #b03a2e; font-weight: bold; }
.ok { color: #1e8449; font-weight: bold; }
details { margin: 0.3em 0 1.5em; }
summary { cursor: pointer; color: #1f5fa8; }
code { background: #f2f2f2; padding: 0 0.2em; }
"""


# -- reading the run folder -------------------------------------------------------------------------
def read_metadata(run: str | Path) -> dict:
    """The run's metadata, or an ExperimentError saying why ``run`` is not a run folder."""
    p = Path(run)
    if not p.is_dir():
        raise ExperimentError(f"{p} is not a run folder (no such directory)")
    meta = p / "metadata.json"
    if not meta.is_file():
        raise ExperimentError(f"{p} is not a run folder: no metadata.json (make one with 'splitbrain run NAME')")
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError) as e:
        raise ExperimentError(f"{meta}: cannot read it as JSON ({e})") from None
    except RecursionError:  # json recurses once per nesting level
        raise ExperimentError(f"{meta}: cannot read it as JSON (nested too deeply)") from None
    if not isinstance(data, dict) or "experiment" not in data:
        raise ExperimentError(f"{meta} is not a splitbrain run's metadata (no 'experiment')")
    return data


def _table(run: Path, name: str) -> pd.DataFrame | None:
    import pandas as pd

    for ext, read in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        f = run / "data" / f"{name}.{ext}"
        if f.exists():
            return read(f)
    return None


# -- HTML pieces ------------------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "–"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.4g}" if 1e-4 <= abs(f) < 1e6 else f"{f:.4e}"


def _is_num(v: Any) -> bool:
    import numbers

    import numpy as np

    return isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))


def html_table(df: pd.DataFrame, *, max_rows: int = MAX_ROWS, cls: str = "",
               cell_class: Callable[[int, str], str] | None = None) -> str:
    """A bordered table of ``df`` (numbers right-aligned, everything escaped), at most ``max_rows`` rows;
    ``cell_class(row, column)`` may give a cell a CSS class."""
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    rows = []
    for i, rec in enumerate(df.head(max_rows).itertuples(index=False)):
        cells = []
        for col, v in zip(df.columns, rec, strict=True):
            klass = " ".join(x for x in ("num" if _is_num(v) else "", cell_class(i, col) if cell_class else "") if x)
            cells.append(f'<td class="{klass}">{_e(_fmt(v))}</td>' if klass else f"<td>{_e(_fmt(v))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    more = (f'<p class="note">showing {max_rows} of {len(df)} rows</p>' if len(df) > max_rows else "")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(data: bytes, caption: str, alt: str) -> str:
    return (f'<figure><img src="{_png_uri(data)}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _fig_png(fig, dpi: int = 100) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# -- sections ---------------------------------------------------------------------------------------
def _metadata_section(run: Path, meta: dict) -> str:
    git = meta.get("git") or {}
    rev = git.get("revision") or git.get("note") or "unknown"
    if git.get("dirty"):
        rev = f"{rev} (uncommitted changes)"
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())
    cmd = meta.get("command")
    complete = meta.get("complete")
    status = ('<span class="ok">complete</span>' if complete else
              '<span class="bad">incomplete</span>' if complete is False else "unknown")
    failed = meta.get("failed_cells") or []
    rows = [("experiment", _e(meta.get("experiment"))),
            ("run folder", f"<code>{_e(run)}</code>"),
            ("status", status + (f" — failed cells: {_e(', '.join(failed))}" if failed else "")),
            ("seeds", _e(", ".join(map(str, meta.get("seed_list") or [])) or meta.get("seeds"))),
            ("quick preset", _e(meta.get("quick"))),
            ("grid", _e(json.dumps(meta.get("grid") or {})) if meta.get("grid") else "none (a single cell per seed)"),
            ("command", f"<code>{_e(shlex.join(cmd))}</code>" if cmd else "(run from Python)"),
            ("git revision", f"<code>{_e(rev)}</code>"),
            ("started (UTC)", _e(meta.get("started_utc", "?"))),
            ("wall time", _e(f"{meta['wall_time_s']} s") if "wall_time_s" in meta else "?"),
            ("versions", _e(versions)),
            ("data format", _e(meta.get("format", "?")))]
    for r in meta.get("resumes") or []:
        rows.append(("resumed", _e(f"{r.get('started_utc')}: {shlex.join(r.get('command') or [])}")))
    return "<h2 id=\"metadata\">Run</h2>" + _kv_table(rows)


def _params_section(meta: dict, mod) -> str:
    import pandas as pd

    params = meta.get("params") or {}
    info: dict[str, dict] = {}
    if mod is not None:
        from .params import describe

        try:
            info = {r["name"]: r for r in describe(mod.Params, mod.Params())}
        except Exception:  # an old run of a changed experiment: show the values alone
            info = {}
    grid = meta.get("grid") or {}
    rows = []
    for k, v in params.items():
        d = info.get(k, {})
        shown = "swept: " + ", ".join(_show(_tuples(x)) for x in grid[k]) if k in grid else _show(_tuples(v))
        if len(shown) > 120:
            shown = shown[:117] + "…"
        rows.append({"name": k, "value": shown, "default": d.get("default", ""), "unit": d.get("unit", ""),
                     "range": d.get("range", ""), "help": d.get("help", "")})
    if not rows:
        return '<h2 id="parameters">Parameters</h2><p class="note">no parameters recorded</p>'
    changed = {i for i, r in enumerate(rows) if r["default"] and r["value"] != r["default"]}
    table = html_table(pd.DataFrame(rows), cls="params",
                       cell_class=lambda i, col: "changed" if col == "value" and i in changed else "")
    return ('<h2 id="parameters">Parameters</h2>' + table
            + '<p class="note">value: what this run used (<b>bold</b>: changed from the default, e.g. by '
              '<code>--quick</code>, <code>--param</code> or a sweep); default: the experiment\'s full-size '
              'default.</p>')


def _tuples(v: Any) -> Any:
    """JSON gave lists where Params hold tuples: turn them back, so values print like ``show``."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _summary_section(run: Path) -> str:
    import pandas as pd

    f = run / "summary_ci.csv"
    if not f.exists() or f.stat().st_size == 0:
        return '<h2 id="summary">Summary</h2><p class="note">no summary_ci.csv in this run</p>'
    try:
        ci = pd.read_csv(f)
    except pd.errors.EmptyDataError:
        return '<h2 id="summary">Summary</h2><p class="note">the summary is empty</p>'
    one_seed = "n" in ci and bool((ci["n"] < 2).all())
    note = ('<p class="note">One seed: no confidence intervals (replicate with <code>--seeds N</code>).</p>'
            if one_seed else '<p class="note">Each cell: mean [95% CI low, high] over seeds.</p>')
    stats = {"metric", "mean", "std", "n", "ci95_low", "ci95_high"}
    if not stats <= set(ci.columns):
        return '<h2 id="summary">Summary</h2>' + html_table(ci, max_rows=2000, cls="summary")
    keys = [c for c in ci.columns if c not in stats]
    cell = [_fmt(m) if lo != lo else f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
            for m, lo, hi in zip(ci["mean"], ci["ci95_low"], ci["ci95_high"], strict=True)]
    group = [" / ".join(f"{k}={_fmt(v)}" if len(keys) > 1 else _fmt(v) for k, v in zip(keys, row, strict=True))
             for row in ci[keys].itertuples(index=False)] if keys else ["value"] * len(ci)
    # one row per metric, one column per arm (or grid cell): the arms compare side by side
    wide = pd.DataFrame({"metric": ci["metric"], "group": group, "cell": cell}).pivot_table(
        index="metric", columns="group", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(index=list(dict.fromkeys(ci["metric"])), columns=list(dict.fromkeys(group)))
    wide = wide.fillna("–").reset_index().rename_axis(columns=None)
    n_text = "" if one_seed else f" (n = {_fmt(ci['n'].max())} seeds)"
    return (f'<h2 id="summary">Summary: mean over seeds with 95% Student-t CI{_e(n_text)}</h2>' + note
            + html_table(wide, max_rows=2000, cls="summary"))


def _figures_section(run: Path) -> str:
    figs = run / "figures"
    pngs = sorted(figs.glob("*.png")) if figs.is_dir() else []
    svgs = [p for p in sorted(figs.glob("*.svg")) if not p.with_suffix(".png").exists()] if figs.is_dir() else []
    if not pngs and not svgs:
        return '<h2 id="figures">Figures</h2><p class="note">no figures (run without --no-plots to draw them)</p>'
    parts = [_figure(p.read_bytes(), p.name, f"figure {p.stem}") for p in pngs]
    for p in svgs:  # only an SVG with no PNG twin: inline it (its own markup, produced by matplotlib)
        text = p.read_text()
        text = text[text.find("<svg"):] if "<svg" in text else ""
        parts.append(f"<figure>{text}<figcaption>{_e(p.name)}</figcaption></figure>")
    return '<h2 id="figures">Figures</h2>' + "".join(parts)


def _requests_section(run: Path, worst: int) -> str:
    if worst <= 0 or not (run / "data" / "spans.parquet").exists():
        return ""
    import pandas as pd

    from simulator.observe.explain import load_run, pick_traces, story, waterfall

    arms: list[Any] = [None]
    sp = pd.read_parquet(run / "data" / "spans.parquet", columns=None)
    if "arm" in sp:
        arms = list(dict.fromkeys(sp["arm"]))[:MAX_ARMS]
    parts = ['<h2 id="requests">Slowest requests</h2>',
             f'<p class="note">The {worst} slowest traced request(s) of each arm (first seed), read off '
             f'<code>data/spans.parquet</code>; replay with <code>splitbrain explain {_e(run)} --worst {worst}'
             f'</code>.</p>']
    for arm in arms:
        try:
            spans, reqs, faults = load_run(run, arm)
            traces = pick_traces(spans, reqs, worst=worst)
        except (FileNotFoundError, ValueError) as e:
            parts.append(f'<p class="bad">{_e(e)}</p>')
            continue
        if arm is not None:
            parts.append(f"<h3>{_e(arm)}</h3>")
        if faults is not None and "seed" in faults and "seed" in spans and len(spans):
            faults = faults[faults["seed"] == spans["seed"].iloc[0]]
        for t in traces:
            text = story(spans, t, faults)
            parts.append(f"<p>{_e(_short_story(text))}</p>")
            parts.append(_figure(_fig_png(waterfall(spans, t, faults, max_rows=40)), f"trace {t}: waterfall",
                                 f"waterfall of trace {t}"))
            n = text.count("\n") + 1
            parts.append(f"<details><summary>the whole story of trace {t} ({n} lines)</summary>"
                         f"<pre>{_e(text)}</pre></details>")
    return "".join(parts)


def _short_story(text: str) -> str:
    """A few sentences from ``explain.story``: its first line, what happened on the way, and why it ended."""
    lines = text.splitlines()
    attempts = sum(1 for ln in lines if ln.lstrip().startswith("- attempt"))
    retries = sum(1 for ln in lines if "retry scheduled" in ln)
    faults = sorted({f.strip() for ln in lines if "fault active: " in ln
                     for f in ln.split("fault active: ", 1)[1].split(", ")})
    middle = f"{attempts} RPC attempt(s) in all, {retries} retr{'y' if retries == 1 else 'ies'} scheduled"
    middle += f"; faults on its path: {', '.join(faults)}." if faults else "; no fault on its path."
    return " ".join([lines[0], middle, lines[-1] if lines[-1].startswith("Why") else ""]).strip()


def _space_time_section(run: Path) -> str:
    trace = _table(run, "trace")
    if trace is None or not {"kind", "time", "src", "dst", "msg_id"} <= set(trace.columns):
        return ""
    from simulator import plots

    if "seed" in trace and trace["seed"].nunique() > 1:
        trace = trace[trace["seed"] == trace["seed"].iloc[0]]
    fig = plots.space_time(trace)
    return ('<h2 id="spacetime">Space-time diagram</h2><p class="note">first 400 messages of the first seed</p>'
            + _figure(_fig_png(fig), "space-time diagram from data/trace", "space-time diagram"))


def _faults_section(run: Path, meta: dict) -> str:
    faults = _table(run, "faults")
    sched = (meta.get("params") or {}).get("faults_json") or ""
    if faults is None and not sched:
        return ""
    out = '<h2 id="faults">Fault schedule</h2>'
    if faults is not None:
        out += html_table(faults)
    if sched:
        try:
            sched = json.dumps(json.loads(sched), indent=1)
        except (ValueError, RecursionError):  # shown as it was saved
            pass
        out += f"<h3>Replayed schedule (--faults)</h3><pre>{_e(sched)}</pre>"
    return out


def _alerts_section(run: Path) -> str:
    alerts = _table(run, "alerts")
    if alerts is None:
        return ""
    out = '<h2 id="alerts">Alerts fired</h2>'
    fired = next((c for c in alerts.columns if str(c).startswith("fired_at")), None)
    reset = next((c for c in alerts.columns if str(c).startswith("reset_at")), None)
    keys = [c for c in alerts.columns if c not in (fired, reset, "seed")]
    if fired and reset and keys:
        unit = str(fired)[len("fired_at"):].lstrip("_") or "s"
        g = alerts.assign(_d=alerts[reset] - alerts[fired]).groupby(keys, sort=False, dropna=False)
        per = g.agg(episodes=(fired, "size"), first_fired=(fired, "min"), last_reset=(reset, "max"),
                    time_firing=("_d", "sum")).reset_index()
        per = per.rename(columns={"first_fired": f"first fired ({unit})", "last_reset": f"last reset ({unit})",
                                  "time_firing": f"time firing ({unit})"})
        seeds = alerts["seed"].nunique() if "seed" in alerts else 1
        out += f'<p class="note">{len(alerts)} alert episode(s) over {seeds} seed(s); per alert:</p>' + html_table(per)
        out += (f"<details><summary>every episode ({len(alerts)})</summary>{html_table(alerts)}</details>")
    else:
        out += html_table(alerts)
    incidents = _table(run, "incidents")
    if incidents is not None:
        out += "<h3>Injected incidents</h3>" + html_table(incidents)
    return out


def _cells_section(run: Path) -> str:
    import pandas as pd

    out = '<h2 id="cells">Cells</h2>'
    f = run / "cells.csv"
    out += html_table(pd.read_csv(f)) if f.exists() else '<p class="note">no cells.csv (the run did not finish)</p>'
    errs = sorted((run / "errors").glob("*.txt")) if (run / "errors").is_dir() else []
    out += '<h2 id="errors">Errors</h2>'
    if not errs:
        return out + '<p class="ok">none</p>'
    for p in errs:
        text = p.read_text(errors="replace")
        if len(text) > 20_000:
            text = "…" + text[-20_000:]
        out += f"<h3>{_e(p.stem)}</h3><pre>{_e(text)}</pre>"
    return out


def _tables_section(meta: dict) -> str:
    import pandas as pd

    tables = meta.get("tables") or {}
    if not tables:
        return ""
    df = pd.DataFrame([{"table": k, "rows": v.get("rows"), "file": v.get("file")} for k, v in tables.items()])
    return '<h2 id="tables">Data tables</h2>' + html_table(df)


# -- the page ---------------------------------------------------------------------------------------
def render(run: str | Path, *, worst: int = 2) -> str:
    """The report page of the run folder ``run`` as one HTML string."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    run = Path(run)
    meta = read_metadata(run)
    if meta.get("kind") == "workbench-test":
        return _render_test(run, meta)
    name = str(meta["experiment"])
    mod, question = None, ""
    try:
        from .catalog import get
        from .catalog import question as q

        mod = get(name)
        question = q(mod)
    except Exception:  # an experiment that is no longer shipped: the page still shows the run
        pass
    sections = [_metadata_section(run, meta), _params_section(meta, mod), _summary_section(run),
                _figures_section(run), _requests_section(run, worst), _space_time_section(run),
                _faults_section(run, meta), _alerts_section(run), _cells_section(run), _tables_section(meta)]
    ids = [("metadata", "Run"), ("parameters", "Parameters"), ("summary", "Summary"), ("figures", "Figures"),
           ("requests", "Slowest requests"), ("spacetime", "Space-time"), ("faults", "Faults"),
           ("alerts", "Alerts"), ("cells", "Cells"), ("errors", "Errors"), ("tables", "Data tables")]
    body = "".join(sections)
    nav = "".join(f'<a href="#{i}">{_e(t)}</a>' for i, t in ids if f'id="{i}"' in body)
    title = f"splitbrain report: {name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1>" + (f'<p class="question">{_e(question)}</p>' if question else "")
            + f"<nav>{nav}</nav>{body}"
            + '<p class="note">Made by <code>splitbrain report</code>; self-contained: no scripts, no network.</p>'
            + "</body></html>\n")


def _page(title: str, lead: str, nav_ids: list[tuple[str, str]], body: str) -> str:
    nav = "".join(f'<a href="#{i}">{_e(t)}</a>' for i, t in nav_ids if f'id="{i}"' in body)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1>{lead}<nav>{nav}</nav>{body}"
            + '<p class="note">Made by <code>splitbrain report</code>; self-contained: no scripts, no network.</p>'
            + "</body></html>\n")


def _render_test(run: Path, meta: dict) -> str:
    """The page of a ``splitbrain test`` run folder: verdict, checker results with witnesses,
    network and latency stats, the figures, the fault schedule (and its shrunk form), node logs."""
    res = json.loads((run / "results.json").read_text())
    good = res.get("valid") is True
    verdict = f'<p class="{"ok" if good else "bad"}">{_e(meta.get("verdict", ""))}</p>'
    if not meta.get("deterministic", True):
        verdict += '<p class="note">An external program ran in real time: this run is not deterministic.</p>'
    opts = meta.get("options") or {}
    body = ['<h2 id="run">Run</h2>' + _kv_table(
        [("node", _e(meta.get("node"))), ("seed", _e(meta.get("seed"))),
         ("command", f"<code>{_e(shlex.join(meta['command']))}</code>" if meta.get("command") else "–"),
         ("git", _e((meta.get("git") or {}).get("revision")))]
        + [(k, _e(_fmt(v))) for k, v in opts.items() if k != "faults"])]
    checks = []
    for part in ("workload", "availability"):
        r = res.get(part) or {}
        klass = "ok" if r.get("valid") is True else "bad"
        rows = [(k, _e(_fmt(v))) for k, v in r.items() if k != "witness"]
        wit = "".join(f"<li><code>{_e(w)}</code></li>" for w in r.get("witness") or [])
        checks.append(f'<h3>{_e(part)}: <span class="{klass}">{_e(r.get("valid"))}</span></h3>' + _kv_table(rows)
                      + (f"<p>witness:</p><ul>{wit}</ul>" if wit else ""))
    body.append('<h2 id="checks">Checkers</h2>' + "".join(checks))
    net, perf = res.get("net") or {}, res.get("perf") or {}
    body.append('<h2 id="stats">Stats</h2>' + _kv_table(
        [(k, _e(_fmt(v))) for k, v in {**net, **{k: v for k, v in perf.items() if k != "latency_ms"}}.items()]
        + [(f"latency ms ({f})", _e(_fmt(q))) for f, q in (perf.get("latency_ms") or {}).items()]
        + [("wall seconds", _e(res.get("wall_s"))), ("simulated s per wall s", _e(res.get("sim_s_per_wall_s")))]))
    figs = []
    for name, caption in (("space-time", "space-time (Lamport) diagram of the messages"),
                          ("space-time-minimal", "the same test replayed with the minimal failing schedule"),
                          ("latency", "latency of every operation"), ("rate", "operations per second")):
        f = run / "figures" / f"{name}.png"
        if f.exists():
            figs.append(_figure(f.read_bytes(), caption, caption))
    body.append('<h2 id="figures">Figures</h2>' + "".join(figs))
    faults = json.loads((run / "faults.json").read_text()) if (run / "faults.json").exists() else []
    out = f'<h2 id="faults">Fault schedule ({len(faults)} faults)</h2><pre>{_e(json.dumps(faults, indent=1))}</pre>'
    if res.get("minimal"):
        m = res["minimal"]
        out += (f"<h3>Shrunk to {len(m['faults'])} of {m['original_faults']} faults ({m['tries']} runs)</h3>"
                f"<pre>{_e(json.dumps(m['faults'], indent=1))}</pre><p>replay: <code>{_e(m['replay'])}</code></p>")
    body.append(out)
    logs = sorted((run / "node-logs").glob("*.log")) if (run / "node-logs").is_dir() else []
    if logs:
        body.append('<h2 id="logs">Node logs</h2>' + "".join(
            f"<details><summary>{_e(p.stem)}</summary><pre>{_e(p.read_text()[-20_000:])}</pre></details>"
            for p in logs))
    ids = [("run", "Run"), ("checks", "Checkers"), ("stats", "Stats"), ("figures", "Figures"),
           ("faults", "Faults"), ("logs", "Node logs")]
    return _page(f"splitbrain test: {meta.get('workload')}", verdict, ids, "".join(body))


def write_report(run: str | Path, out: str | Path | None = None, *, worst: int = 2) -> Path:
    """Write the report of ``run`` to ``out`` (default ``RUN/report.html``) and return its path."""
    page = render(run, worst=worst)
    path = Path(out) if out is not None else Path(run) / "report.html"
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise ExperimentError(f"cannot write {path}: {e.strerror or e}") from None
    return path
