"""``splitbrain export RUN``: a run folder's saved spans as files other tools read.

    splitbrain export RUN [--otlp FILE.json] [--chrome FILE.json] [--logs FILE.jsonl] [--force] [--epoch S]

``--otlp``: OTLP/JSON (an ``ExportTraceServiceRequest``) for Jaeger, Tempo or an OpenTelemetry
Collector's otlphttp receiver; ``--chrome``: Chrome trace-event JSON for Perfetto or
chrome://tracing; ``--logs``: the services' JSON log lines with the same trace and span ids.

A run folder's ``data/spans.parquet`` may hold several simulations (arms, seeds, grid cells:
every column that is not a span field). Each keeps its own id space: one simulation exports
the ids a live export of it would (:func:`simulator.observe.spans.otel_ids` under its seed);
several are told apart by a label (``seed=1/arm=…``) that seeds their ids, names their Chrome
processes, and rides on OTLP's resource attributes and the log lines' fields. Everything is
checked before anything is written; a file is written whole (a temporary file, then renamed)
and an existing one only with ``--force``. Identical runs export byte-identical files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .params import ExperimentError

if TYPE_CHECKING:
    import argparse

    import pandas as pd

FORMATS = ("otlp", "chrome", "logs")


def add_parser(sub, epilog: str) -> None:
    p = sub.add_parser("export", epilog=epilog,
                       help="a run's spans as OTLP/JSON (Jaeger, Tempo), Chrome trace JSON (Perfetto) or JSON logs",
                       description="Export the spans a run folder saved (data/spans.parquet). Give at least one of "
                                   "--otlp, --chrome, --logs; existing files are kept unless --force.")
    p.add_argument("run", help="a run folder whose data/ holds spans.parquet (e.g. from retry_amplification)")
    p.add_argument("--otlp", metavar="FILE.json", help="OTLP/JSON traces (Jaeger, Tempo, an OpenTelemetry Collector)")
    p.add_argument("--chrome", metavar="FILE.json", help="Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing)")
    p.add_argument("--logs", metavar="FILE.jsonl", help="JSON-lines service logs carrying trace_id and span_id")
    p.add_argument("--force", action="store_true", help="overwrite output files that exist")
    p.add_argument("--epoch", type=int, default=0, metavar="S",
                   help="OTLP only: Unix time (s) that simulated time 0 maps to (default 0, i.e. 1970; "
                        "e.g. $(date +%%s) so a viewer's 'last hour' search finds the traces)")


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    outs = {f: Path(getattr(args, f)) for f in FORMATS if getattr(args, f)}
    if not outs:
        raise ExperimentError("export needs at least one of --otlp FILE, --chrome FILE, --logs FILE")
    seen: dict[Path, str] = {}
    for fmt, path in outs.items():
        if path.resolve() in seen:
            raise ExperimentError(f"--{fmt} {path}: the same file as --{seen[path.resolve()]}")
        seen[path.resolve()] = fmt
        if path.is_dir():
            raise ExperimentError(f"--{fmt} {path}: is a directory, not a file")
        parent = path.parent
        if not parent.is_dir():
            raise ExperimentError(f"--{fmt} {path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise ExperimentError(f"--{fmt} {path}: folder {parent} is not writable")
        if path.exists() and not args.force:
            raise ExperimentError(f"--{fmt} {path}: exists; pass --force to overwrite it")
    return outs


def _load(run: str) -> pd.DataFrame:
    import pandas as pd

    folder = Path(run)
    if not folder.is_dir():
        raise ExperimentError(f"RUN {run}: no such run folder")
    path = folder / "data" / "spans.parquet"
    if not path.is_file():
        raise ExperimentError(f"RUN {run}: {path} not found: the run saved no spans (an experiment must return "
                              f"a 'spans' frame, e.g. retry_amplification)")
    try:
        spans = pd.read_parquet(path)
    except Exception as e:  # a damaged file: say which, in one line
        raise ExperimentError(f"RUN {run}: {path} is not a readable Parquet file ({type(e).__name__})") from None
    missing = {"trace_id", "span_id", "parent_id", "kind", "node", "peer", "op", "start", "end"} - set(spans)
    if missing:
        raise ExperimentError(f"RUN {run}: {path} is not a spans table (no {', '.join(sorted(missing))})")
    if not len(spans):
        raise ExperimentError(f"RUN {run}: {path} holds no spans")
    return spans


def simulations(spans: pd.DataFrame) -> list[tuple[int | str, dict[str, str], pd.DataFrame]]:
    """``(id seed, labels, spans)`` per simulation in the table, in the order they were saved."""
    from simulator.observe.spans import SPAN_COLUMNS

    keys = [c for c in spans.columns if c not in SPAN_COLUMNS and c != "events"]
    if not keys:
        return [(0, {}, spans)]
    out = []
    for vals, g in spans.groupby(keys, sort=False, dropna=False):
        vals = vals if isinstance(vals, tuple) else (vals,)
        labels = {k: str(v) for k, v in zip(keys, vals)}
        out.append((labels, g.reset_index(drop=True)))
    if len(out) == 1:
        labels, g = out[0]
        return [(int(labels["seed"]) if "seed" in labels else 0, labels, g)]
    return [("/".join(f"{k}={v}" for k, v in labels.items()), labels, g) for labels, g in out]


def _otlp(sims, epoch_s: int) -> str:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from simulator.observe.export import otlp_json, otlp_request

    req = ExportTraceServiceRequest()
    for seed, labels, g in sims:
        req.MergeFrom(otlp_request(g, seed=seed, epoch_ns=epoch_s * 10**9,
                                   resource={f"splitbrain.{k}": v for k, v in labels.items()}))
    return otlp_json(req)


def _chrome(sims) -> str:
    from simulator.observe.export import chrome_trace

    events: list[dict] = []
    pid = 1
    for seed, _labels, g in sims:
        prefix = f"{seed} " if len(sims) > 1 else ""
        events.extend(chrome_trace(g, prefix=prefix, first_pid=pid)["traceEvents"])
        pid += g["node"].nunique()
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}, separators=(",", ":"))


def _logs(sims) -> str:
    from simulator.observe.logs import span_log_lines

    lines = []
    for seed, labels, g in sims:
        lines.extend(span_log_lines(g, seed, extra=labels if len(sims) > 1 else None))
    return "".join(line + "\n" for line in lines)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExperimentError(f"{path}: {e.strerror or e}") from None


def main(args: argparse.Namespace) -> int:
    """Exit 0, files written (one line each); 2 bad input, nothing written."""
    if not 0 <= args.epoch < 2**32:
        raise ExperimentError(f"--epoch must be a Unix time in seconds (0..2**32-1), got {args.epoch}")
    outs = _outputs(args)
    sims = simulations(_load(args.run))
    texts = {}
    if "otlp" in outs:
        try:
            texts["otlp"] = _otlp(sims, args.epoch)
        except ImportError:
            raise ExperimentError("--otlp needs opentelemetry-proto: pip install 'splitbrain[otel]'") from None
    if "chrome" in outs:
        texts["chrome"] = _chrome(sims)
    if "logs" in outs:
        texts["logs"] = _logs(sims)
    n = sum(len(g) for _, _, g in sims)
    for fmt, path in outs.items():
        _write(path, texts[fmt])
        print(f"{fmt}: {path} ({n} spans from {len(sims)} simulation(s))")
    return 0
