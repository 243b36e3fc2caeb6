"""The ``splitbrain`` command: list, show, run and sweep experiments; check histories.

    splitbrain list
    splitbrain show NAME
    splitbrain run NAME [--param k=v ...] [--seeds N] [--quick] [--out DIR]
    splitbrain sweep NAME --grid k=v1,v2 [--grid k2=a,b] [--seeds N] [--quick] [--out DIR]
    splitbrain check linearizable FILE.jsonl

Exit codes: 0 success; 1 a cell failed or a history is not linearizable; 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import experiment as ex


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="splitbrain", description="Watch distributed systems fail; measure it.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="experiments and the question each answers")
    show = sub.add_parser("show", help="an experiment's description and parameters")
    show.add_argument("name")
    for cmd in ("run", "sweep"):
        p = sub.add_parser(cmd, help="run an experiment" if cmd == "run" else "run a parameter grid")
        p.add_argument("name")
        p.add_argument("--param", action="append", default=[], metavar="K=V", help="override a parameter")
        if cmd == "sweep":
            p.add_argument("--grid", action="append", default=[], required=True, metavar="K=V1,V2",
                           help="a swept parameter and its values")
        p.add_argument("--seeds", type=int, default=1, help="replications (root seeds seed..seed+N-1)")
        p.add_argument("--seed", type=int, default=1, help="first root seed (default 1)")
        p.add_argument("--quick", action="store_true", help="use the experiment's QUICK preset")
        p.add_argument("--out", help="run folder (default: runs/NAME/<timestamp>-<hash>)")
        p.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--serial", action="store_true", help="run cells one after another")
        g.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
        g.add_argument("--dask", metavar="ADDRESS", help="run cells on a Dask cluster")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("--no-plots", action="store_true")
    chk = sub.add_parser("check", help="check a recorded history")
    chk.add_argument("what", choices=["linearizable"])
    chk.add_argument("file")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args, argv)
    except ex.ExperimentError as e:
        print(f"splitbrain: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args, argv) -> int:
    if args.cmd == "list":
        reg = ex.registry()
        width = max((len(n) for n in reg), default=0)
        for name, mod in reg.items():
            print(f"{name:<{width}}  {ex.question(mod)}")
        return 0
    if args.cmd == "show":
        mod = ex.get(args.name)
        print((mod.__doc__ or "").strip())
        print("\nparameters (name (type) = default):")
        print(ex.describe_params(mod))
        print("\n--quick uses:")
        print(ex.describe_params(mod, mod.QUICK))
        return 0
    if args.cmd == "check":
        return _check(args.file)
    mod = ex.get(args.name)
    overrides = ex.parse_overrides(mod, args.param)
    grid = ex.parse_grid(mod, args.grid) if args.cmd == "sweep" else {}
    if args.workers is not None and args.workers < 1:
        raise ex.ExperimentError(f"--workers must be >= 1, got {args.workers}")
    if args.dask:
        executor = ex.dask_executor(args.dask)
    elif args.serial:
        executor = ex.serial_executor
    else:
        executor = ex.process_executor(args.workers)
    res = ex.run_experiment(
        args.name, overrides=overrides, grid=grid, seeds=args.seeds, seed=args.seed, quick=args.quick,
        out=args.out, resume=args.resume, executor=executor,
        progress=not args.no_progress and sys.stderr.isatty() or bool(os.environ.get("SPLITBRAIN_PROGRESS")),
        plots=not args.no_plots, command=["splitbrain", *argv],
    )
    _print_summary(res)
    if res.failed:
        print(f"splitbrain: {len(res.failed)} cell(s) failed: {', '.join(res.failed)} "
              f"(tracebacks in {res.folder / 'errors'})", file=sys.stderr)
        return 1
    return 0


def _print_summary(res: ex.RunResult) -> None:
    import pandas as pd

    ci = res.summary_ci
    if not ci.empty:
        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 200):
            print(ci.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if (ci["n"] < 2).all():
            print("(one seed: no confidence intervals; replicate with --seeds N)")
    print(f"\nrun folder: {res.folder}")
    for p in res.figures:
        print(f"figure: {p}")


def _check(path: str) -> int:
    try:
        from .history.linearizable import check_linearizable_file
    except ImportError as e:  # pragma: no cover - present in a complete install
        raise ex.ExperimentError(f"checker not available: {e}") from None
    if not os.path.exists(path):
        raise ex.ExperimentError(f"no such history file: {path}")
    try:
        result = check_linearizable_file(path)
    except ValueError as e:
        raise ex.ExperimentError(f"{path}: {e}") from None
    print(result)
    return 0 if result.valid else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
