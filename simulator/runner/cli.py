"""The ``splitbrain`` command: list, show, run and sweep experiments; check histories; validate.

    splitbrain list
    splitbrain show NAME
    splitbrain run NAME [--param k=v ...] [--config F.toml] [--seeds N] [--quick] [--out DIR]
    splitbrain sweep NAME --grid k=v1,v2 [--grid k2=a,b] [--seeds N] [--dry-run]
    splitbrain check linearizable FILE [--model M] [--initial V] [--time-limit S] [--json]
    splitbrain validate [--quick]
    splitbrain test -w WORKLOAD --node FILE.py:Class|reference[:VARIANT] [maelstrom test's flags]
    splitbrain hunt SCENARIO --property P [--seeds N] [--start S] [--variant V] [--workers K | --serial]
    splitbrain report RUN [--out FILE] [--worst N]
    splitbrain export RUN [--otlp FILE.json] [--chrome FILE.json] [--logs FILE.jsonl] [--force]

Exit codes: 0 success; 1 a cell failed, a history is not linearizable or a reproduction
missed; 2 bad input (refused before any work starts); 3 a check could not decide (unknown).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import catalog as reg
from .executors import dask_executor, process_executor, serial_executor
from .params import TUPLE_SYNTAX, ExperimentError
from .run import plan, run_experiment

EXIT_CODES = ("exit codes: 0 success; 1 a cell failed, a history is not linearizable or a reproduction "
              "missed; 2 bad input (nothing was run); 3 a check could not decide")
PARAM_HELP = (f"override a parameter (repeatable); see 'splitbrain show NAME' for names, units and ranges. "
              f"{TUPLE_SYNTAX}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, like every other refusal
        self.exit(2, f"splitbrain: error: {message} (see: {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = _Parser(prog="splitbrain", description="Watch distributed systems fail; measure it.",
                 epilog=EXIT_CODES, formatter_class=fmt)
    ap.add_argument("--version", action="version", version=f"splitbrain {_version()}")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="experiments and the question each answers", epilog=EXIT_CODES)
    show = sub.add_parser("show", help="an experiment's description and typed parameters", epilog=EXIT_CODES)
    show.add_argument("name", help="experiment name (see 'splitbrain list')")
    for cmd in ("run", "sweep"):
        p = sub.add_parser(cmd, help="run an experiment" if cmd == "run" else "run a parameter grid",
                           epilog=EXIT_CODES, formatter_class=fmt,
                           description=("Run NAME once per seed." if cmd == "run" else
                                        "Run NAME for every combination of the grid's values, once per seed.")
                           + " Every cell is checked before a folder is made or a simulation starts.")
        p.add_argument("name", help="experiment name (see 'splitbrain list')")
        p.add_argument("--param", action="append", default=[], metavar="K=V", help=PARAM_HELP)
        if cmd == "sweep":
            p.add_argument("--grid", action="append", default=[], metavar="K=V1,V2",
                           help="a swept parameter and its comma-separated values (each axis once; "
                                "no repeated values: use --seeds to replicate); several --grid flags "
                                "form their product")
        p.add_argument("--config", metavar="FILE.toml",
                       help="parameters from a TOML file: a [params] table (and for sweep a [grid] table "
                            "of lists); --param values override it")
        p.add_argument("--faults", metavar="SCHEDULE.json",
                       help="replay a saved fault schedule (FaultSchedule.to_json) in an experiment that "
                            "takes one; it replaces the experiment's own faults")
        p.add_argument("--seeds", type=int, default=1, help="replications: root seeds SEED..SEED+N-1 (1..100000)")
        p.add_argument("--seed", type=int, default=1, help="first root seed (default 1)")
        p.add_argument("--quick", action="store_true", help="start from the experiment's QUICK preset")
        p.add_argument("--out", help="run folder (default: runs/NAME/<timestamp>-<hash>); never overwritten")
        p.add_argument("--resume", action="store_true",
                       help="finish an interrupted run in --out without redoing finished cells")
        p.add_argument("--format", choices=("parquet", "csv"), default="parquet",
                       help="data tables as Parquet (default) or CSV")
        p.add_argument("--dry-run", action="store_true", help="list the cells and their parameters; run nothing")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--serial", action="store_true", help="run cells one after another in this process")
        g.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
        g.add_argument("--dask", metavar="ADDRESS",
                       help='run cells on a Dask cluster at tcp://HOST:PORT (needs pip install "splitbrain[dask]")')
        p.add_argument("--no-progress", action="store_true", help="no progress bars or lines")
        p.add_argument("--no-plots", action="store_true", help="write data only, no figures")
    chk = sub.add_parser("check", help="check a recorded history (JSON Lines or Jepsen EDN)",
                         epilog="exit codes: 0 valid; 1 anomaly found; 2 bad input; 3 unknown (time limit)")
    # each property checked is one `what`: add new ones to CHECKS (and their options below)
    chk.add_argument("what", choices=sorted(CHECKS), help="the property to check")
    chk.add_argument("file", help="a history: JSON Lines (simulator.history) or EDN (Jepsen, Knossos, Porcupine)")
    from simulator.history.models import MODELS

    chk.add_argument("--model", default="register", choices=sorted(MODELS),
                     help="linearizable: the object's sequential specification (default register)")
    chk.add_argument("--initial", metavar="V", default=None,
                     help="linearizable: each key's value before any write, as JSON (e.g. 0, \"\", null)")
    chk.add_argument("--time-limit", type=float, default=300.0, metavar="S",
                     help="give up after S seconds and answer unknown (exit 3); default 300")
    chk.add_argument("--shrink-time", type=float, default=None, metavar="S",
                     help="linearizable: seconds for shrinking a counterexample (default 3x the verdict time, >= 2 s)")
    chk.add_argument("--workload", default="list-append", choices=("list-append", "rw-register"),
                     help="transactions: the micro-operations (Elle's list-append or rw-register); default list-append")
    chk.add_argument("--txn-model", default=None, metavar="MODEL",
                     help="transactions: the consistency model to judge against (default strict-serializable)")
    chk.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    from .workbench_cmd import add_parser as add_test

    add_test(sub)
    from .hunt import add_parser as add_hunt

    add_hunt(sub, EXIT_CODES)
    val = sub.add_parser("validate", help="reproduce published results and print the comparison",
                         epilog=EXIT_CODES)
    val.add_argument("--quick", action="store_true", help="the CI-sized run (under 2 minutes)")
    val.add_argument("--only", action="append", default=[], metavar="NAME",
                     help="only these reproductions (repeatable)")
    val.add_argument("--write", metavar="FILE.md", help="also write the table as Markdown (e.g. docs/validation.md)")
    exp = sub.add_parser("explain", help="the story of one request from a run's spans, in words and a waterfall",
                         epilog=EXIT_CODES)
    exp.add_argument("run", help="a run folder whose data/ holds spans.parquet (e.g. from retry_amplification)")
    which = exp.add_mutually_exclusive_group()
    which.add_argument("--request", type=int, metavar="ID", help="a request id (row of data/requests.parquet)")
    which.add_argument("--trace", type=int, metavar="ID", help="a trace id")
    which.add_argument("--worst", type=int, metavar="N", help="the N slowest requests (default: the slowest)")
    exp.add_argument("--arm", default=None, help="the arm whose spans to read (default: the first)")
    exp.add_argument("--out", default=None, metavar="DIR", help="where to write waterfall PNGs (default: RUN/figures)")
    rep = sub.add_parser("report", help="a self-contained report.html of a run folder (opens from disk, no network)",
                         epilog=EXIT_CODES)
    rep.add_argument("run", help="a run folder (holding metadata.json)")
    rep.add_argument("--out", default=None, metavar="FILE", help="where to write the page (default: RUN/report.html)")
    rep.add_argument("--worst", type=int, default=2, metavar="N",
                     help="waterfalls of the N slowest requests per arm when the run saved spans (0..20; default 2)")
    from .export_cmd import add_parser as add_export

    add_export(sub, EXIT_CODES)
    return ap


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("splitbrain")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args, argv)
    except ExperimentError as e:
        print(f"splitbrain: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args, argv) -> int:
    if args.cmd == "list":
        experiments = reg.registry()
        width = max((len(n) for n in experiments), default=0)
        for name, mod in experiments.items():
            print(f"{name:<{width}}  {reg.question(mod)}")
        return 0
    if args.cmd == "show":
        mod = reg.get(args.name)
        print((mod.__doc__ or "").strip())
        print("\nparameters:")
        print(reg.describe_params(mod))
        quick = [n for n in reg.param_types(mod) if getattr(mod.QUICK, n) != getattr(mod.Params(), n)]
        print("\n--quick changes: " + (", ".join(f"{n}={getattr(mod.QUICK, n)!r}" for n in quick) or "nothing"))
        print(f"\n{TUPLE_SYNTAX}")
        return 0
    if args.cmd == "check":
        return _check(args)
    if args.cmd == "test":
        from .workbench_cmd import run_test_cmd

        return run_test_cmd(args, argv)
    if args.cmd == "hunt":
        return _hunt(args)
    if args.cmd == "validate":
        from .validate import main as validate_main

        return validate_main(quick=args.quick, only=args.only, write=args.write)
    if args.cmd == "explain":
        return _explain(args)
    if args.cmd == "report":
        return _report(args)
    if args.cmd == "export":
        from .export_cmd import main as export_main

        return export_main(args)
    return _run(args, argv)


def _report(args) -> int:
    from .report import write_report

    if not 0 <= args.worst <= 20:
        raise ExperimentError(f"--worst must be between 0 and 20, got {args.worst}")
    print(write_report(args.run, args.out, worst=args.worst))
    return 0


def _explain(args) -> int:
    from simulator.observe.explain import load_run, pick_traces, story, waterfall

    if args.worst is not None and not 1 <= args.worst <= 100:
        raise ExperimentError(f"--worst must be between 1 and 100, got {args.worst}")
    try:
        spans, reqs, faults = load_run(args.run, args.arm)
        traces = pick_traces(spans, reqs, request=args.request, trace=args.trace, worst=args.worst)
    except (FileNotFoundError, ValueError) as e:
        raise ExperimentError(str(e)) from None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out) if args.out else Path(args.run) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for t in traces:
        print(story(spans, t, faults))
        fig = waterfall(spans, t, faults)
        path = out / f"explain_trace_{t}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"waterfall: {path}\n")
    return 0


def _run(args, argv) -> int:
    mod = reg.get(args.name)
    overrides, grid = reg.read_config(mod, args.config) if args.config else ({}, {})
    if args.cmd == "run" and grid:
        raise ExperimentError(f"--config {args.config} has a [grid] table: use 'splitbrain sweep'")
    for k, v in reg.parse_overrides(mod, args.param).items():
        overrides[k] = v
    if args.cmd == "sweep":
        cli_grid = reg.parse_grid(mod, args.grid)
        both = set(cli_grid) & set(grid)
        if both:
            raise ExperimentError(f"grid axis {sorted(both)} given in --config and as --grid; give it once")
        grid.update(cli_grid)
        for k in set(grid) & set(overrides):  # a --param fixes what the config swept
            if k not in cli_grid:
                del grid[k]
        if not grid:
            raise ExperimentError("sweep needs at least one --grid K=V1,V2 (or a [grid] table in --config)")
    if args.faults:
        overrides = {**overrides, **_faults_override(mod, args.faults)}
    if args.workers is not None and not 1 <= args.workers <= 512:
        raise ExperimentError(f"--workers must be in 1..512, got {args.workers}")
    base, cells = plan(args.name, overrides=overrides, grid=grid, seeds=args.seeds, seed=args.seed,
                       quick=args.quick)
    if args.dry_run:
        print(f"{len(cells)} cell(s) of {args.name}:")
        changed = {k: v for k, v in base.__dict__.items() if v != getattr(mod.Params(), k)}
        print("  fixed: " + (", ".join(f"{k}={v!r}" for k, v in changed.items()) or "the defaults"))
        for c in cells:
            print(f"  {c.key}: " + ", ".join(f"{k}={v!r}" for k, v in c.grid) + f" seed={c.seed}")
        return 0
    if args.dask:
        executor = dask_executor(args.dask)
    elif args.serial:
        executor = serial_executor
    else:
        executor = process_executor(args.workers)
    interactive = sys.stderr.isatty() or bool(os.environ.get("SPLITBRAIN_PROGRESS"))
    show_progress = not args.no_progress
    reporter = _CellProgress(sys.stderr.isatty()) if show_progress and len(cells) == 1 else None

    def announce(folder: Path) -> None:
        print(f"run folder: {folder}  ({len(cells)} cell(s); resume with --out {folder} --resume)",
              file=sys.stderr, flush=True)

    from simulator.core import watch_progress

    with watch_progress(reporter) if reporter else contextlib.nullcontext():
        res = run_experiment(
            args.name, overrides=overrides, grid=grid, seeds=args.seeds, seed=args.seed, quick=args.quick,
            out=args.out, resume=args.resume, executor=executor, progress=show_progress and interactive,
            plots=not args.no_plots, command=["splitbrain", *argv], fmt=args.format, announce=announce)
    if reporter:
        reporter.close()
    _print_summary(res)
    if res.failed:
        print(f"splitbrain: {len(res.failed)} cell(s) failed: {', '.join(res.failed)} "
              f"(tracebacks in {res.folder / 'errors'})", file=sys.stderr)
        return 1
    return 0


def _faults_override(mod, path: str) -> dict:
    if "faults_json" not in reg.param_types(mod):
        takers = [n for n, m in reg.registry().items() if "faults_json" in reg.param_types(m)]
        raise ExperimentError(f"--faults: {mod.__name__.rsplit('.', 1)[-1]} takes no fault schedule; "
                              f"experiments that do: {', '.join(takers) or '(none)'}")
    text, _ = reg.read_faults(path)
    return {"faults_json": text}



class _CellProgress:
    """Progress inside a one-cell run in simulated time: a tqdm bar on a terminal, a plain line
    every 10 s otherwise. Each ``Simulation.run`` of the cell is one pass (an experiment may
    run several simulations, one per arm)."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.bar, self.until, self.sims = tty, None, None, 0
        self.t0 = self.last = time.monotonic()

    def __call__(self, now: float, until: float) -> None:
        if self.until != until or (self.bar is not None and now <= self.bar.n):
            self._new_sim(until)
        if self.tty:
            self.bar.update(now - self.bar.n)
            return
        t = time.monotonic()
        if t - self.last >= 10:
            self.last = t
            frac = now / until if until else 1.0
            eta = (t - self.t0) * (1 - frac) / frac if frac > 0 else float("nan")
            print(f"  simulation {self.sims}: {now:.1f}/{until:.1f} s simulated ({frac:.0%}), "
                  f"about {eta:.0f} s left in this simulation", file=sys.stderr, flush=True)

    def _new_sim(self, until: float) -> None:
        self.close()
        self.sims += 1
        self.until, self.t0 = until, time.monotonic()
        if self.tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=until, desc=f"simulation {self.sims}", unit="sim-s",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} sim-s "
                                       "[{elapsed}<{remaining}]")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "nan"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))  # counts stay integers: 11850, not 1.185e+04
    return f"{f:.4g}" if 1e-4 <= abs(f) < 1e6 else f"{f:.4e}"


def _print_summary(res) -> None:
    import pandas as pd

    ci = res.summary_ci
    if not ci.empty:
        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 200):
            print(ci.to_string(index=False, formatters={c: _fmt for c in ci.columns}))
        if (ci["n"] < 2).all():
            print("(one seed: no confidence intervals; replicate with --seeds N)")
    print(f"\nrun folder: {res.folder}")
    for p in res.figures:
        print(f"figure: {p}")


CHECKS = ("linearizable", "transactions")  # `splitbrain check WHAT`: one entry (and one branch in _check) each


def _check(args) -> int:
    """Exit 0 valid, 1 anomaly found, 2 bad input (one line naming the file and line), 3 unknown."""
    import json

    from simulator.history.linearizable import check_linearizable_file

    if args.what == "transactions":
        from simulator.history.elle import MODELS as TXN_MODELS
        from simulator.history.elle import main_check_transactions

        if os.path.isdir(args.file):
            raise ExperimentError(f"{args.file} is a directory, not a history file")
        if args.txn_model is not None and args.txn_model not in TXN_MODELS:
            raise ExperimentError(f"--txn-model must be one of {', '.join(TXN_MODELS)}; got {args.txn_model!r}")
        return main_check_transactions(args.file, args.workload, args.json, model=args.txn_model)
    for flag, v in (("--time-limit", args.time_limit), ("--shrink-time", args.shrink_time)):
        if v is not None and not (v > 0 and v < float("inf")):
            raise ExperimentError(f"{flag} must be a positive number of seconds, got {v}")
    initial = None
    if args.initial is not None:
        try:
            initial = json.loads(args.initial)
        except json.JSONDecodeError:
            initial = args.initial  # a bare word: the string itself
        except RecursionError:  # json recurses once per nesting level
            raise ExperimentError("--initial: JSON nested too deeply (give one value, e.g. 0, \"\", null)") from None
    try:
        result = check_linearizable_file(args.file, model=args.model, initial=initial,
                                         time_limit_s=args.time_limit, shrink_time_s=args.shrink_time)
    except ValueError as e:
        raise ExperimentError(str(e).splitlines()[0]) from None
    if args.json:
        print(json.dumps(_linearizability_json(result, args.file), default=repr))
    else:
        print(result)
    if result.valid is None:
        return 3
    return 0 if result.valid else 1


def _hunt(args) -> int:
    """Exit 0 nothing failed, 1 failing seeds found (each with a replay command), 2 bad input."""
    from .hunt import main as hunt_main

    return hunt_main(args)


def _linearizability_json(result, path: str) -> dict:
    def op(o) -> dict:
        return {"index": o.index, "process": o.process, "type": o.type, "f": o.f, "key": o.key, "value": o.value,
                "result": o.result, "invoke_time": o.invoke_time, "complete_time": o.complete_time}

    keys = [{"key": r.key, "valid": r.valid, "ops": r.ops, "states": r.states, "seconds": r.seconds,
             "counterexample": None if r.counterexample is None else [op(o) for o in r.counterexample],
             "counterexample_minimal": r.minimal if r.valid is False else None,
             "shrink_seconds": r.shrink_seconds} for r in result.per_key.values()]
    cx = result.counterexample
    return {"file": str(path), "check": "linearizable", "model": result.model, "valid": result.valid,
            "verdict": {True: "valid", False: "anomaly", None: "unknown"}[result.valid],
            "counterexample_size": None if cx is None else len(cx), "stats": result.stats,
            "message": result.message, "keys": keys}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
