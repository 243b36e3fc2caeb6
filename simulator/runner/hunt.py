"""Hunting failing seeds: run a scenario over many seeds with random nemeses, report every seed
whose property fails with a one-line replay command, and shrink the first failure's fault
schedule to a minimal one (FoundationDB-style simulation testing; Jepsen's nemesis + checker).

A **scenario** is a workload x system x nemesis x checker in one function::

    run(seed, schedule: FaultSchedule | None, variant: str, properties) -> {property: bool}

(``True`` = the property holds), plus ``nemesis(seed, variant) -> FaultSchedule`` that draws the
random fault schedule of a seed. ``schedule=None`` means "the seed's own nemesis"; passing a
schedule replays exactly that one (a saved JSON file, or a shrunk candidate). Every fault a
nemesis draws heals itself (``heal_at`` / ``recover_at`` / a pause's duration), so any subset of
a schedule is a valid schedule: that is what lets delta debugging drop faults freely.

Shrinking (Zeller & Hildebrandt, "Simplifying and Isolating Failure-Inducing Input", TSE 2002):
``ddmin`` over the schedule's faults gives a 1-minimal subset (removing any one fault makes the
failure go away); then each fault's duration is halved and its start time rounded while the
failure persists. The simulation is deterministic, so "still fails" is a plain re-run.

Built-in scenarios (models/replication/hunt_scenarios.py): ``raft`` — a 5-node :class:`RaftCluster` under a KV workload
and a random nemesis of crashes, isolations, pauses and partitions at the election-timeout
scale; properties ``linearizable``, ``no_lost_acked_writes`` and ``raft_safety`` (the cluster's
own ``violations``: election safety, leader completeness, state machine safety). Variant
``figure8`` switches on ``RaftConfig.unsafe_commit_previous_terms``, the Figure 8 bug.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from simulator.faults import Fault, FaultSchedule, Pause

Verdicts = dict[str, bool]


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    properties: tuple[str, ...]
    variants: tuple[str, ...]
    run: Callable[..., Verdicts]  # (seed, schedule | None, variant, properties) -> verdicts
    nemesis: Callable[[int, str], FaultSchedule]


# Built-in scenarios live beside the protocols they exercise (simulator/ never imports models/);
# like the experiment catalog, they are found by module name at run time.
SCENARIO_MODULES = ("models.replication.hunt_scenarios",)
_SCENARIOS: dict[str, Scenario] = {}
_WORKBENCH: dict[str, Scenario] = {}  # workbench tests, by their JSON name


def scenarios() -> dict[str, Scenario]:
    if not _SCENARIOS:
        import importlib

        for m in SCENARIO_MODULES:
            for name, parts in importlib.import_module(m).SCENARIOS.items():
                _SCENARIOS[name] = Scenario(name=name, **parts)
    return _SCENARIOS


def get_scenario(name: str) -> Scenario:
    if name.startswith("workbench:"):  # a workbench test (splitbrain hunt --workload W --node ...)
        if name not in _WORKBENCH:
            from .workbench_cmd import scenario_parts

            _WORKBENCH[name] = Scenario(name=name, **scenario_parts(name))
        return _WORKBENCH[name]
    sc = scenarios()
    if name not in sc:
        raise ValueError(f"unknown scenario {name!r}; scenarios: {', '.join(sc)}")
    return sc[name]


# -- running seeds ------------------------------------------------------------------------------
def run_chunk(scenario: str, prop: str, variant: str, seeds: Sequence[int],
              schedule_json: str | None = None) -> tuple[int, list[int], list[tuple[int, str]]]:
    """Run ``seeds``; return (how many ran, failing seeds, (seed, traceback) of crashed runs).
    Only failures travel back, so a chunk of 500 passing seeds costs one small message."""
    import traceback

    sc = get_scenario(scenario)
    sched = None if schedule_json is None else FaultSchedule.loads(schedule_json)
    failing, errors = [], []
    for s in seeds:
        try:
            if not sc.run(s, _copy(sched), variant, (prop,))[prop]:
                failing.append(s)
        except Exception:  # a crashing seed is data (and worth a look), not the end of the hunt
            errors.append((s, traceback.format_exc()))
    return len(seeds), failing, errors


def _copy(sched: FaultSchedule | None) -> FaultSchedule | None:
    return None if sched is None else FaultSchedule(list(sched.faults))  # a schedule binds to one sim


def chunks(start: int, n: int, workers: int) -> list[list[int]]:
    """Seeds in chunks: ~8 per worker for balance, at most 250 seeds each for steady progress."""
    size = max(1, min(250, math.ceil(n / (8 * max(1, workers)))))
    return [list(range(a, min(start + n, a + size))) for a in range(start, start + n, size)]


def hunt(scenario: str, prop: str, seeds: int, start: int = 0, variant: str = "shipped", *,
         workers: int | None = None, dask: str | None = None, schedule_json: str | None = None,
         progress: Callable[[int, int, float], None] | None = None) -> dict:
    """Run the seeds (serial if ``workers == 1``); return failing seeds, errors and timing."""
    t0 = time.perf_counter()
    w = 1 if dask is None and workers == 1 else (workers or os.cpu_count() or 1)
    parts = chunks(start, seeds, w)
    failing: list[int] = []
    errors: list[tuple[int, str]] = []
    done = 0

    def take(res) -> None:
        nonlocal done
        n, f, e = res
        done += n
        failing.extend(f)
        errors.extend(e)
        if progress:
            progress(done, len(failing), time.perf_counter() - t0)

    if dask is not None:
        _dask_run(dask, parts, (scenario, prop, variant), schedule_json, take)
    elif w == 1 or len(parts) == 1:
        for p in parts:
            take(run_chunk(scenario, prop, variant, p, schedule_json))
    else:
        lost = _pool_run(parts, w, (scenario, prop, variant), schedule_json, take)
        for p in lost:  # a worker died (OOM kill, segfault): each lost chunk again, alone
            if _pool_run([p], 1, (scenario, prop, variant), schedule_json, take):
                errors.extend((s, "the worker process died running this seed's chunk, twice") for s in p)
    dt = time.perf_counter() - t0
    return {"failing": sorted(failing), "errors": sorted(errors), "seconds": dt, "seeds_per_s": seeds / dt,
            "workers": w if dask is None else None}


def _pool_run(parts, n, args, schedule_json, take) -> list[list[int]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from .executors import _watch_parent

    lost = []
    with ProcessPoolExecutor(max_workers=n, initializer=_watch_parent) as ex:
        futs = {ex.submit(run_chunk, *args, p, schedule_json): i for i, p in enumerate(parts)}
        for f in as_completed(futs):
            try:
                res = f.result()
            except BrokenProcessPool:
                lost.append(parts[futs[f]])
                continue
            take(res)
    return lost


def _dask_run(address, parts, args, schedule_json, take) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError('--dask needs the Dask extra: pip install "splitbrain[dask]"') from None
    try:
        client = Client(address, timeout="10s")
    except OSError as e:
        raise ValueError(f"--dask {address}: cannot reach the scheduler ({e})") from None
    with client:
        futs = [client.submit(run_chunk, *args, p, schedule_json, pure=False) for p in parts]
        for f in as_completed(futs):
            take(f.result())


# -- shrinking ----------------------------------------------------------------------------------
def ddmin(items: Sequence, fails: Callable[[list], bool]) -> list:
    """Zeller's ddmin: a 1-minimal sublist of ``items`` on which ``fails`` still holds (assumes
    ``fails(items)``). Tries complements of n chunks, then the chunks, doubling n up to len."""
    items = list(items)
    n = 2
    while len(items) >= 2:
        size = math.ceil(len(items) / n)
        subsets = [items[i:i + size] for i in range(0, len(items), size)]
        reduced = False
        for sub in subsets:  # a chunk alone
            if fails(sub):
                items, n, reduced = sub, 2, True
                break
        if not reduced:
            for i in range(len(subsets)):  # a complement
                comp = [x for j, s in enumerate(subsets) if j != i for x in s]
                if fails(comp):
                    items, n, reduced = comp, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    if len(items) == 1 and fails([]):
        return []
    return items


def _shorter(f: Fault, factor: float) -> Fault | None:
    """``f`` lasting ``factor`` x as long (None if it has no duration or would be < 10 ms)."""
    if isinstance(f, Pause):
        d = round(f.duration * factor, 3)
        return replace(f, duration=d) if d >= 0.01 else None
    for attr in ("heal_at", "recover_at"):
        end = getattr(f, attr, None)
        if end is not None:
            d = round((end - f.at) * factor, 3)
            return replace(f, **{attr: round(f.at + d, 3)}) if d >= 0.01 else None
    return None


def _moved(f: Fault, at: float) -> Fault:
    kw = {"at": at}
    for attr in ("heal_at", "recover_at"):
        end = getattr(f, attr, None)
        if end is not None:
            kw[attr] = round(at + (end - f.at), 3)
    return replace(f, **kw)


def shrink(faults: Sequence[Fault], fails: Callable[[list[Fault]], bool], *, budget_s: float = 120.0) -> dict:
    """ddmin over the faults, then shorten each fault's duration (halving) and round its start
    (to 0.1 s, then 0.01 s) while the failure persists, and ddmin again after any edit, to a fixed
    point (or the budget). Returns the minimal list and counts; 1-minimal unless the budget ran out."""
    t0 = time.perf_counter()
    tries = 0

    def f(xs: list[Fault]) -> bool:
        nonlocal tries
        tries += 1
        return fails(xs)

    cur = ddmin(list(faults), f)
    after_ddmin = len(cur)
    changed, first = True, True
    while changed and time.perf_counter() - t0 < budget_s:
        changed = False
        if len(cur) > 1 and not first:  # an edited fault can make another one unnecessary: stay 1-minimal
            again = ddmin(cur, f)
            changed = len(again) < len(cur)
            cur = again
        first = False
        for i in range(len(cur)):
            cands = [_shorter(cur[i], 0.5)]
            for digits in (1, 2):
                at = round(cur[i].at, digits)
                if at != cur[i].at:
                    cands.append(_moved(cur[i], at))
            for c in cands:
                if c is None or time.perf_counter() - t0 >= budget_s:
                    continue
                trial = cur[:i] + [c] + cur[i + 1:]
                if f(trial):
                    cur, changed = trial, True
                    break
    return {"faults": cur, "original": len(faults), "after_ddmin": after_ddmin, "tries": tries,
            "seconds": time.perf_counter() - t0}


def shrink_seed(scenario: str, prop: str, seed: int, variant: str, schedule: FaultSchedule | None = None,
                budget_s: float = 120.0) -> dict:
    sc = get_scenario(scenario)
    start = sc.nemesis(seed, variant) if schedule is None else schedule

    def fails(xs: list[Fault]) -> bool:
        return not sc.run(seed, FaultSchedule(list(xs)), variant, (prop,))[prop]

    res = shrink(list(start.faults), fails, budget_s=budget_s)
    res["schedule"] = FaultSchedule(list(res.pop("faults")))
    return res


# -- the command --------------------------------------------------------------------------------
def replay_command(scenario: str, prop: str, seed: int, variant: str, faults: str | None = None) -> str:
    if scenario.startswith("workbench:"):
        from .workbench_cmd import hunt_replay

        return hunt_replay(scenario, seed, faults)
    cmd = f"splitbrain hunt {scenario} --property {prop} --seeds 1 --start {seed}"
    if variant != "shipped":
        cmd += f" --variant {variant}"
    return cmd + (f" --faults {faults}" if faults else "")


def main(args) -> int:
    """``splitbrain hunt``: exit 0 nothing found, 1 failing seeds found, 2 bad input."""
    import json

    from .params import ExperimentError

    if (args.scenario is None) == (args.workload is None):
        raise ExperimentError("hunt what? a SCENARIO (" + ", ".join(scenarios()) + ") or --workload W --node SPEC, "
                              "exactly one of them")
    if args.workload is not None:
        from .workbench_cmd import hunt_spec

        sc = get_scenario(hunt_spec(args))
        args.property = args.property or "valid"
    elif args.scenario not in scenarios():
        raise ExperimentError(f"unknown scenario {args.scenario!r}; scenarios: {', '.join(scenarios())}")
    else:
        sc = scenarios()[args.scenario]
    if args.property is None:
        raise ExperimentError(f"--property is required for {sc.name}; properties: {', '.join(sc.properties)}")
    if args.property not in sc.properties:
        raise ExperimentError(f"--property {args.property!r} is not a property of {sc.name}; "
                              f"properties: {', '.join(sc.properties)}")
    if args.variant not in sc.variants:
        raise ExperimentError(f"--variant {args.variant!r} is not a variant of {sc.name}; "
                              f"variants: {', '.join(sc.variants)}")
    if not 1 <= args.seeds <= 10_000_000:
        raise ExperimentError(f"--seeds must be in 1..10000000, got {args.seeds}")
    if not 0 <= args.start <= 2**63 - 10_000_000:
        raise ExperimentError(f"--start must be an integer >= 0, got {args.start}")
    if args.workers is not None and not 1 <= args.workers <= 512:
        raise ExperimentError(f"--workers must be in 1..512, got {args.workers}")
    if args.progress_every is not None and args.progress_every < 1:
        raise ExperimentError(f"--progress-every must be >= 1 seeds, got {args.progress_every}")
    if not (args.shrink_time > 0 and math.isfinite(args.shrink_time)):
        raise ExperimentError(f"--shrink-time must be a positive number of seconds, got {args.shrink_time}")
    if args.save is not None:  # checked now, not after the hunt and the shrink have run
        save = Path(args.save)
        if save.is_dir() or not save.parent.is_dir():
            why = "is a directory" if save.is_dir() else f"no such directory {save.parent}"
            raise ExperimentError(f"--save {args.save}: {why}")
    schedule_json = None
    if args.faults:
        from .catalog import read_faults

        schedule_json, _ = read_faults(args.faults)
    every = args.progress_every or max(100, args.seeds // 10)
    mark = [every]

    def progress(done: int, nfail: int, dt: float) -> None:
        if done >= mark[0] or done == args.seeds:
            while mark[0] <= done:
                mark[0] += every
            print(f"hunt: {done}/{args.seeds} seeds, {nfail} failing, {done / dt:.1f} seeds/s",
                  file=sys.stderr, flush=True)

    workers = 1 if args.serial else args.workers
    try:
        res = hunt(sc.name, args.property, args.seeds, args.start, args.variant, workers=workers,
                   dask=args.dask, schedule_json=schedule_json, progress=None if args.json else progress)
    except ValueError as e:
        raise ExperimentError(str(e)) from None
    failing = res["failing"]
    label = sc.doc if sc.name.startswith("workbench:") else f"{sc.name} ({args.variant})"
    out = {"scenario": label, "property": args.property, "variant": args.variant, "seeds": args.seeds,
           "start": args.start, "workers": res["workers"], "seconds": round(res["seconds"], 3),
           "seeds_per_s": round(res["seeds_per_s"], 2),
           "failing": [{"seed": s, "replay": replay_command(sc.name, args.property, s, args.variant, args.faults)}
                       for s in failing],
           "errors": [{"seed": s, "traceback": tb} for s, tb in res["errors"]], "minimal": None}
    if not args.json:
        print(f"{label}, property {args.property}: {len(failing)} of {args.seeds} seeds fail "
              f"({res['seconds']:.1f} s, {res['seeds_per_s']:.1f} seeds/s)")
        for f in out["failing"]:
            print(f"  seed {f['seed']}: {f['replay']}")
        for s, tb in res["errors"]:
            print(f"  seed {s} CRASHED: {tb.strip().splitlines()[-1]}")
    if failing and args.shrink:
        seed = failing[0]
        given = None if schedule_json is None else FaultSchedule.loads(schedule_json)
        sh = shrink_seed(sc.name, args.property, seed, args.variant, given, budget_s=args.shrink_time)
        stem = (f"{args.workload}-{_slug(args.node or 'bin')}" if sc.name.startswith("workbench:")
                else f"{sc.name}-{args.variant}")
        path = Path(args.save or f"hunt-{stem}-{args.property}-seed{seed}.json")
        sh["schedule"].to_json(path)
        out["minimal"] = {"seed": seed, "faults": sh["schedule"].to_list(), "original_faults": sh["original"],
                          "after_ddmin": sh["after_ddmin"], "tries": sh["tries"],
                          "seconds": round(sh["seconds"], 3), "file": str(path),
                          "replay": replay_command(sc.name, args.property, seed, args.variant, str(path))}
        if not args.json:
            print(f"\nshrunk seed {seed}'s schedule from {sh['original']} to {len(sh['schedule'])} fault(s) "
                  f"({sh['tries']} runs, {sh['seconds']:.1f} s):")
            print(sh["schedule"])
            print(f"saved: {path}\nreplay: {out['minimal']['replay']}")
    if args.json:
        print(json.dumps(out))
    return 1 if failing or res["errors"] else 0


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(text).name)[:40]


def add_parser(sub, epilog: str) -> None:
    p = sub.add_parser("hunt", help="run a scenario over many seeds with random faults; shrink a failure",
                       epilog="exit codes: 0 nothing failed; 1 failing (or crashing) seeds found; 2 bad input",
                       description="Run SCENARIO once per seed, each with the seed's random nemesis (or --faults); "
                                   "report every seed whose property fails with a command that replays it, and "
                                   "shrink the first one's fault schedule to a minimal one (delta debugging).")
    p.add_argument("scenario", nargs="?", help="a built-in scenario: raft (see simulator/runner/hunt.py); or "
                   "give --workload and --node to hunt any workbench test")
    p.add_argument("--property", default=None, help="the property to check, e.g. raft's linearizable, "
                   "no_lost_acked_writes, raft_safety; a workbench test's valid (default), workload or availability")
    p.add_argument("-w", "--workload", default=None, help="hunt a workbench test of this workload (with --node and "
                   "splitbrain test's flags; each seed draws its own nemesis schedule)")
    from .workbench_cmd import add_test_options

    add_test_options(p, seed_default=None, faults=False)
    p.add_argument("--seeds", type=int, default=100, help="how many seeds: START..START+N-1 (default 100)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--variant", default="shipped",
                   help="protocol variant: shipped (default) or a broken-on-purpose one, e.g. raft's figure8")
    p.add_argument("--faults", metavar="SCHEDULE.json", help="replay this fault schedule for every seed "
                   "instead of the seeds' random nemeses")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--serial", action="store_true", help="run the seeds in this process")
    g.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    g.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster at tcp://HOST:PORT")
    p.add_argument("--shrink", action=__import__("argparse").BooleanOptionalAction, default=True,
                   help="shrink the first failing seed's fault schedule (default on)")
    p.add_argument("--shrink-time", type=float, default=120.0, metavar="S",
                   help="time budget for shrinking in seconds (default 120)")
    p.add_argument("--save", metavar="FILE.json", help="where to save the minimal schedule "
                   "(default hunt-SCENARIO-VARIANT-PROPERTY-seedS.json)")
    p.add_argument("--progress-every", type=int, metavar="N", help="a progress line every N seeds")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
