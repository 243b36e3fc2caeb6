"""``splitbrain test``: test a protocol node as ``maelstrom test`` does — in simulated time, deterministic.

    splitbrain test -w broadcast --node reference --node-count 5 --time-limit 20 --nemesis partition
    splitbrain test -w broadcast --node reference:no-retry --nemesis partition      # caught, then shrunk
    splitbrain test -w echo --node mynode.py:Echo
    splitbrain test -w echo --bin python3 echo.py                                   # any language, real time

The flags are ``maelstrom test``'s (jepsen-io/maelstrom ``doc/01-getting-ready.md`` and
``src/maelstrom/core.clj``): ``-w/--workload``, ``--node-count``, ``--time-limit``, ``--rate``,
``--concurrency``, ``--latency`` (ms) with ``--latency-dist``, ``--nemesis``, ``--nemesis-interval``,
``--topology``, ``--availability``, ``--consistency-models``, ``--seed``; ``--node`` names an
in-process node (``FILE.py:Class``, ``package.module:Class``, ``reference``, ``reference:VARIANT``)
where Maelstrom's ``--bin`` names a program (also accepted here: an external host, in real time).

Everything is checked before any work (exit 2). A test writes a run folder (never overwriting one):
``history.jsonl`` and ``history.edn`` (Jepsen's format), ``results.json`` (every checker's verdict with
its witness, the network stats, latency quantiles, availability), ``faults.json`` (the schedule,
replayable with ``--faults``), ``node-logs/``, ``figures/`` (space-time diagram, latency and rate plots),
``metadata.json`` and ``report.html``. When the test fails and its schedule has faults, the schedule is
shrunk (delta debugging, :func:`simulator.runner.hunt.shrink`) to a 1-minimal one, saved as
``faults-minimal.json`` with its own space-time diagram and a replay command. The verdict is one line.
Exit 0 valid, 1 invalid, 2 bad input, 3 unknown.

``simulator`` never imports ``models`` statically: the reference nodes and Maelstrom's services
(``models.workbench``) are found by module name at run time, as the experiment catalog is.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from .params import ExperimentError

PROTOCOLS = "models.workbench"  # the reference nodes and services, found by name at run time
EXIT = "exit codes: 0 valid; 1 invalid (an anomaly was found); 2 bad input (nothing was run); 3 unknown"


# -- resolving --node -----------------------------------------------------------------------------
def resolve_node(spec: str, workload: str) -> type:
    """The node class ``spec`` names: ``reference[:VARIANT]``, ``FILE.py:Class`` or ``module:Class``."""
    from simulator.workbench import Node, System

    if spec == "reference" or spec.startswith("reference:"):
        variant = spec.partition(":")[2] or "reference"
        try:
            return importlib.import_module(PROTOCOLS).reference(workload, variant)
        except ValueError as e:
            raise ExperimentError(f"--node {spec}: {e}") from None
    where, sep, cls_name = spec.rpartition(":")
    if not sep or not where or not cls_name:
        raise ExperimentError(f"--node {spec!r}: need FILE.py:Class, package.module:Class, reference or "
                              f"reference:VARIANT")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ExperimentError(f"--node {spec}: no such file {where}")
        name = "splitbrain_node_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        mod = sys.modules.get(name)
        if mod is None:
            loader_spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = mod
            try:
                loader_spec.loader.exec_module(mod)
            except Exception as e:  # the user's file does not import: say where, in one line
                del sys.modules[name]
                raise ExperimentError(f"--node {spec}: {where} fails to import: {type(e).__name__}: {e}") from None
    else:
        try:
            mod = importlib.import_module(where)
        except ImportError as e:
            raise ExperimentError(f"--node {spec}: cannot import module {where!r} ({e})") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        have = sorted(k for k, v in vars(mod).items() if isinstance(v, type) and issubclass(v, Node) and v is not Node)
        raise ExperimentError(f"--node {spec}: {where} has no class {cls_name!r}; node classes there: "
                              f"{', '.join(have) or 'none'}")
    if not (isinstance(cls, type) and issubclass(cls, (Node, System))):
        raise ExperimentError(f"--node {spec}: {cls_name} is not a subclass of simulator.workbench.Node "
                              f"(or System)")
    return cls


def services_for(workload: str) -> dict[str, type]:
    """Maelstrom's services the workload's clients or nodes use (lin-kv, seq-kv, lww-kv, lin-tso)."""
    from simulator.workbench.workloads import WORKLOADS

    all_services = importlib.import_module(PROTOCOLS).SERVICES
    return {name: all_services[name] for name in WORKLOADS[workload].services}


# -- options ------------------------------------------------------------------------------------
def add_test_options(p, *, seed_default: int | None = 0, faults: bool = True) -> None:
    """The flags ``test`` and ``hunt --workload`` share (``maelstrom test``'s names)."""
    from simulator.workbench import nemesis as nem
    from simulator.workbench.topology import TOPOLOGIES

    p.add_argument("--node", metavar="SPEC", help="the node: FILE.py:Class, package.module:Class, reference, or "
                   "reference:VARIANT (a workload's deliberately wrong node)")
    p.add_argument("--bin", nargs="+", metavar="PROGRAM", help="an external program speaking Maelstrom's "
                   "protocol on stdin/stdout, with its arguments (real time: not deterministic)")
    p.add_argument("--node-count", type=int, default=5, metavar="N", help="server nodes n1..nN (default 5)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                   help="seconds of simulated client operations (default 10)")
    p.add_argument("--rate", type=float, default=5.0, metavar="R", help="operations per second in all (default 5)")
    p.add_argument("--concurrency", type=int, default=None, metavar="K",
                   help="client threads (default: one per node)")
    p.add_argument("--latency", type=float, default=0.0, metavar="MS",
                   help="mean latency of every link between servers in ms (default 0)")
    p.add_argument("--latency-dist", default="constant", metavar="DIST",
                   help="constant (default), uniform on [0, 2 x latency], or exponential")
    p.add_argument("--nemesis", default="", metavar="KINDS",
                   help=f"comma-separated faults: {', '.join(nem.KINDS)} (default none)")
    p.add_argument("--nemesis-interval", type=float, default=10.0, metavar="S",
                   help="mean seconds between nemesis actions (default 10)")
    p.add_argument("--topology", default="grid", metavar="T", help=f"broadcast's topology: {', '.join(TOPOLOGIES)}")
    p.add_argument("--availability", default=None, metavar="A",
                   help="require availability: total, majority, or a fraction of operations ok (e.g. 0.99)")
    p.add_argument("--consistency-models", default="strict-serializable", metavar="MODELS",
                   help="transactional workloads: comma-separated models to check (default strict-serializable)")
    p.add_argument("--recovery", type=float, default=10.0, metavar="S",
                   help="seconds between healing every fault and the final reads (Maelstrom: 10)")
    if faults:
        p.add_argument("--faults", metavar="SCHEDULE.json", help="replay this fault schedule instead of the nemesis")
    if seed_default is not None:
        p.add_argument("--seed", type=int, default=seed_default, help="the run's seed (default 0)")


def _float_arg(flag: str, v: Any) -> float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ExperimentError(f"{flag} must be a finite number, got {v}")
    return v


def options_from_args(args, *, seed: int | None = None, trace: bool = True) -> tuple[Any, str]:
    """A checked :class:`TestOptions` and the node spec (``bin:...`` for an external program)."""
    from simulator.faults import FaultSchedule
    from simulator.workbench.harness import TestOptions
    from simulator.workbench.workloads import WORKLOADS

    if args.workload not in WORKLOADS:
        raise ExperimentError(f"--workload {args.workload!r} is not a workload; workloads: "
                              f"{', '.join(sorted(WORKLOADS))}")
    if (args.node is None) == (args.bin is None):
        raise ExperimentError("say which node to test: --node SPEC (in process) or --bin PROGRAM [ARGS] (external), "
                              "exactly one of them")
    for flag, v in (("--time-limit", args.time_limit), ("--rate", args.rate), ("--latency", args.latency),
                    ("--nemesis-interval", args.nemesis_interval), ("--recovery", args.recovery)):
        _float_arg(flag, v)
    avail: Any = args.availability
    if avail is not None and avail not in ("total", "majority"):
        try:
            avail = float(avail)
        except ValueError:
            raise ExperimentError(f"--availability {args.availability!r}: need total, majority or a fraction "
                                  f"in [0, 1]") from None
    faults = None
    if getattr(args, "faults", None):
        try:
            _, faults = FaultSchedule.read(args.faults)
        except OSError as e:
            raise ExperimentError(f"--faults {args.faults}: {e.strerror or e}") from None
        except ValueError as e:
            raise ExperimentError(f"--faults {args.faults}: {str(e).splitlines()[0] if str(e) else 'malformed'}") \
                from None
    kinds = tuple(k for k in args.nemesis.split(",") if k) if args.nemesis else ()
    models = tuple(m for m in args.consistency_models.split(",") if m)
    spec = args.node if args.node is not None else "bin:" + shlex.join(args.bin)
    where, sep, cls_name = spec.rpartition(":")
    if sep and where.endswith(".py"):  # absolute, so a hunt's worker processes find the same file
        spec = f"{Path(where).resolve()}:{cls_name}"
    node = resolve_node(args.node, args.workload) if args.node is not None else None
    kw: dict[str, Any] = {}
    if args.bin is not None:
        kw["bin"] = tuple(args.bin)
    try:
        opts = TestOptions(workload=args.workload, node=node, node_count=args.node_count, time_limit=args.time_limit,
                           rate=args.rate, concurrency=args.concurrency, latency_ms=args.latency,
                           latency_dist=args.latency_dist, nemesis=kinds, nemesis_interval=args.nemesis_interval,
                           topology=args.topology, availability=avail, consistency_models=models,
                           recovery_s=args.recovery, seed=args.seed if seed is None else seed, faults=faults,
                           trace=trace, **kw)
    except TypeError as e:  # a TestOptions without the field (an external host is not built in)
        raise ExperimentError(f"{spec}: {e}") from None
    except ValueError as e:
        raise ExperimentError(_flag_message(str(e))) from None
    return opts, spec


def _flag_message(msg: str) -> str:
    """TestOptions names its fields (``node_count=0 is not allowed``); the CLI user typed flags."""
    field, sep, rest = msg.partition("=")
    if sep and field.isidentifier():
        return f"--{field.removesuffix('_ms').removesuffix('_s').replace('_', '-')}={rest}"
    return msg


# -- running ------------------------------------------------------------------------------------
def build(opts: Any) -> Any:
    """A ready :class:`TestRun` of ``opts`` with the workload's services."""
    from simulator.workbench.harness import TestRun

    return TestRun(opts, services=services_for(opts.workload))


def verdict_line(res: dict, opts: Any) -> str:
    """One line: everything looked good, or which anomaly was found (and a piece of its witness)."""
    w, a = res["workload"], res["availability"]
    perf, net = res["perf"], res["net"]
    lat = perf.get("latency_ms_all") or {}
    facts = (f"{opts.workload}, {_n(opts.node_count, 'node')}, {opts.time_limit:g} s, {_n(res['faults'], 'fault')}; "
             f"{perf['ops']} ops ({perf['ok']} ok, {perf['fail']} fail, {perf['info']} info); "
             f"{net['msgs_per_op']} server msgs/op")
    if lat:
        facts += f"; latency median {lat.get('0.5')} ms, max {lat.get('1')} ms"
    stable = w.get("stable_latencies_ms")
    if stable:  # broadcast's figure of merit (Gossip Glomers 3d/3e): how long until every read holds it
        facts += f"; stable latency median {stable.get('0.5')} ms, max {stable.get('1')} ms"
    if res["valid"] is True:
        return f"valid: everything looks good ({facts})"
    problems = []
    if w["valid"] is not True:
        what = w.get("anomaly") or ("unknown" if w["valid"] is None else "invalid")
        wit = f" — {_clip(w['witness'][0])}" if w.get("witness") else ""
        problems.append(f"{opts.workload} checker: {what}{wit}")
    if a["valid"] is not True:
        problems.append(f"availability {a.get('observed', '?')} below {a.get('required', opts.availability)}")
    if res.get("node_exceptions"):
        problems.append(f"node exceptions {res['node_exceptions']}")
    head = "UNKNOWN" if res["valid"] is None else "INVALID"
    return f"{head}: {'; '.join(problems)} ({facts})"


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _clip(text: str, n: int = 110) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def shrink_test(opts: Any, *, budget_s: float = 60.0) -> dict:
    """Shrink the failing test's fault schedule to a 1-minimal one (same seed: deterministic)."""
    from simulator.faults import FaultSchedule

    from .hunt import shrink

    first = build(opts)
    faults = list(first.schedule.faults)

    quiet = replace(opts, trace=False)  # a shrinking run needs only the verdict

    def fails(xs: list) -> bool:
        return build(replace(quiet, faults=FaultSchedule(list(xs)))).run().results()["valid"] is False

    res = shrink(faults, fails, budget_s=budget_s)
    res["schedule"] = FaultSchedule(list(res.pop("faults")))
    return res


def run_test_cmd(args, argv: Sequence[str] | None = None) -> int:
    """``splitbrain test``: check everything, run, write the run folder, print the verdict."""
    opts, spec = options_from_args(args)
    if not 0 < args.shrink_time <= 86_400 or not math.isfinite(args.shrink_time):
        raise ExperimentError(f"--shrink-time must be in (0, 86400] seconds, got {args.shrink_time}")
    from simulator.workbench.checkers import quantiles_ms

    from .run import new_run_dir

    payload = {"workload": opts.workload, "node": spec, "options": _plain_options(opts)}
    if opts.faults is not None:  # a replayed schedule must name this test's nodes, before any work
        from simulator.workbench import Node

        # a plain Node stands in for an external program here: nothing is started to check names
        probe = build(replace(opts, bin=None, node=Node) if opts.bin is not None else opts)
        try:
            probe.schedule.validate(probe.sim)
        except ValueError as e:
            raise ExperimentError(f"--faults {args.faults}: {e} (this test's nodes: {', '.join(probe.nodes)})") \
                from None
    folder, _ = new_run_dir(f"test/{opts.workload}", payload, args.out, resume=False)
    t0 = time.perf_counter()
    test = build(opts)
    test.run()
    wall = time.perf_counter() - t0
    res = test.results()
    res["perf"]["latency_ms_all"] = quantiles_ms([o.complete_time - o.invoke_time for o in test.ops if o.type == "ok"])
    res["wall_s"] = round(wall, 3)
    res["sim_s_per_wall_s"] = round(test.sim.now / wall, 1) if wall > 0 else None
    line = verdict_line(res, opts)
    minimal = None
    if res["valid"] is False and args.shrink and len(test.schedule) > 0 and res["deterministic"]:
        print(f"test: {line}\nshrinking the {len(test.schedule)}-fault schedule ...", file=sys.stderr, flush=True)
        sh = shrink_test(opts, budget_s=args.shrink_time)
        sh["schedule"].to_json(folder / "faults-minimal.json")
        replay = shlex.join(["splitbrain", "test", *_replay_argv(argv), "--faults",
                             str(folder / "faults-minimal.json")])
        minimal = {"faults": sh["schedule"].to_list(), "original_faults": sh["original"],
                   "tries": sh["tries"], "seconds": round(sh["seconds"], 3), "replay": replay}
        res["minimal"] = minimal
        fig = failure_figure(opts, sh["schedule"])
        if fig is not None:
            _save(fig, folder / "figures" / "space-time-minimal")
    write_folder(folder, test, res, opts, spec, argv, line)
    print(line)
    if minimal is not None:
        if minimal["faults"]:
            print(f"shrunk to {len(minimal['faults'])} of {minimal['original_faults']} faults "
                  f"({minimal['tries']} runs, {minimal['seconds']:.1f} s):")
        else:
            print(f"it fails with none of the {minimal['original_faults']} faults: the bug needs no fault "
                  f"({minimal['tries']} runs)")
        for f in sh["schedule"].faults:
            print(f"  {fault_label(f)}")
        print(f"replay: {minimal['replay']}")
    if not res["deterministic"]:
        print("note: an external program ran in real time: this result is NOT deterministic "
              "(the same seed may give a different history)")
    print(f"run folder: {folder}  (report: {folder / 'report.html'})")
    return {True: 0, False: 1, None: 3}[res["valid"]]


def _fault_end(f: Any) -> float:
    for attr in ("heal_at", "recover_at"):
        end = getattr(f, attr, None)
        if end is not None:
            return float(end)
    return float(f.at) + float(getattr(f, "duration", 0.0) or 0.0)


def fault_label(f: Any) -> str:
    """A fault in a few words: ``partition 9.4-9.639 s n2,n3 | n1,n4,n5``."""
    d = f.to_dict()
    kind, at = d.pop("kind"), d.pop("at")
    end = _fault_end(f)
    for k in ("heal_at", "recover_at", "duration"):
        d.pop(k, None)
    groups = d.pop("groups", None)
    parts = [f"{kind} {at:g}-{end:g} s"]
    if groups:
        parts.append(" | ".join(",".join(g) for g in groups))
    parts += [f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in d.items()
              if v not in (None, False, "split", [], ())]
    return " ".join(parts)


def _replay_argv(argv: Sequence[str] | None) -> list[str]:
    """The command's own arguments without --faults/--out (the replay gets its own)."""
    out: list[str] = []
    it = iter(list(argv or [])[1:])  # argv[0] is "test"
    for a in it:
        if a in ("--faults", "--out"):
            next(it, None)
            continue
        if a.startswith(("--faults=", "--out=")):
            continue
        out.append(a)
    return out


def _plain_options(opts: Any) -> dict:
    d = {k: v for k, v in asdict(opts).items() if k not in ("node", "faults", "extra")}
    d["faults"] = None if opts.faults is None else opts.faults.to_list()
    return json.loads(json.dumps(d, default=str))


# -- hunting: the workbench as a hunt scenario -------------------------------------------------
HUNT_FLAGS = ("node_count", "time_limit", "rate", "concurrency", "latency_ms", "latency_dist", "nemesis",
              "nemesis_interval", "topology", "availability", "consistency_models", "recovery_s")
PROPERTIES = ("valid", "workload", "availability")


def hunt_spec(args) -> str:
    """The hunt scenario name of a ``hunt --workload`` command: ``workbench:`` and the test as JSON
    (a string, so worker processes and Dask workers rebuild the same test)."""
    if args.bin is not None:
        raise ExperimentError("hunt needs a deterministic node: --node (an external --bin program runs in real "
                              "time, so a seed does not replay it)")
    opts, spec = options_from_args(args, seed=0, trace=False)
    d = {k: getattr(opts, k) for k in HUNT_FLAGS}
    return "workbench:" + json.dumps({"workload": opts.workload, "node": spec, **d}, sort_keys=True)


def scenario_parts(name: str) -> dict:
    """The :class:`simulator.runner.hunt.Scenario` fields of a ``workbench:`` scenario name."""
    from simulator.faults import FaultSchedule
    from simulator.workbench.harness import TestOptions

    d = json.loads(name[len("workbench:"):])
    spec = d.pop("node")
    workload = d.pop("workload")
    node = resolve_node(spec, workload)
    for k in ("nemesis", "consistency_models"):
        d[k] = tuple(d[k])
    base = TestOptions(workload=workload, node=node, trace=False, **d)

    def run(seed: int, schedule: FaultSchedule | None, variant: str, properties: Sequence[str]) -> dict:
        res = build(replace(base, seed=seed, faults=schedule)).run().results()
        got = {"valid": res["valid"], "workload": res["workload"]["valid"],
               "availability": res["availability"]["valid"]}
        return {p: got[p] is not False for p in properties}  # unknown is not a failure found

    def nemesis(seed: int, variant: str) -> FaultSchedule:
        return build(replace(base, seed=seed)).schedule

    return {"doc": f"{workload} with --node {spec}", "properties": PROPERTIES, "variants": ("shipped",),
            "run": run, "nemesis": nemesis}


def hunt_replay(name: str, seed: int, faults: str | None = None) -> str:
    """The ``splitbrain test`` command that replays one seed of a workbench hunt."""
    d = json.loads(name[len("workbench:"):])
    argv = ["splitbrain", "test", "-w", d["workload"], "--node", d["node"]]
    flag = {"latency_ms": "--latency", "recovery_s": "--recovery"}
    from simulator.workbench.harness import TestOptions

    defaults = {f.name: f.default for f in fields(TestOptions)}
    for k in HUNT_FLAGS:
        v = d[k]
        if v == defaults[k] or isinstance(v, list) and tuple(v) == defaults[k]:
            continue
        argv += [flag.get(k, "--" + k.replace("_", "-")), ",".join(v) if isinstance(v, list) else str(v)]
    argv += ["--seed", str(seed)]
    if faults:
        argv += ["--faults", faults]
    return shlex.join(argv)


# -- the run folder -------------------------------------------------------------------------------
def write_folder(folder: Path, test: Any, res: dict, opts: Any, spec: str, argv: Sequence[str] | None,
                 line: str) -> None:
    """Everything a test leaves behind (see the module docstring)."""
    from .run import _git, _versions

    test.history.save_jsonl(folder / "history.jsonl")
    write_edn(test.history, folder / "history.edn")
    test.schedule.to_json(folder / "faults.json")
    (folder / "results.json").write_text(json.dumps(res, indent=1, default=str))
    logs = folder / "node-logs"
    logs.mkdir(exist_ok=True)
    for name, host in test.hosts.items():
        lines = getattr(host, "logs", None)
        if lines:
            (logs / f"{name}.log").write_text("".join(f"{t:.6f} {text}\n" for t, text in lines))
    figs = folder / "figures"
    figs.mkdir(exist_ok=True)
    _space_time(test, figs / "space-time", f"{opts.workload}: messages between nodes (first 400)")
    _op_plots(test, figs)
    meta = {"kind": "workbench-test", "experiment": f"test/{opts.workload}", "workload": opts.workload,
            "node": spec, "options": _plain_options(opts),
            "seed": opts.seed, "verdict": line, "valid": res["valid"], "deterministic": res["deterministic"],
            "command": ["splitbrain", *argv] if argv is not None else None, "versions": _versions(),
            "git": _git()}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    from .report import write_report

    write_report(folder)


def write_edn(history: Any, path: Path) -> Path:
    """The history in Jepsen's ``history.edn`` shape: one map per line, keywords for type and f,
    ``:time`` in nanoseconds, ``:index``; a keyed operation's value as Jepsen's independent ``[k v]``."""
    import edn_format
    from edn_format import Keyword as K

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {K(str(k)) if isinstance(k, str) else k: plain(x) for k, x in v.items()}
        return v

    with path.open("w") as fh:
        for i, e in enumerate(history.events()):
            value = plain(e["value"])
            if e["key"] is not None and e["key"] != "final":
                value = [e["key"], value]
            rec = {K("index"): i, K("time"): int(round(e["time"] * 1e9)), K("type"): K(e["type"]),
                   K("process"): e["process"], K("f"): K(str(e["f"])), K("value"): value}
            if e["key"] == "final":
                rec[K("final?")] = True
            fh.write(edn_format.dumps(rec) + "\n")
    return path


def _save(fig: Any, base: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    base.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "splitbrain"}):
        fig.savefig(base.with_suffix(".png"), dpi=110, metadata={"Software": None})
        fig.savefig(base.with_suffix(".svg"), metadata={"Date": None})
    plt.close(fig)


def space_time_figure(test: Any, title: str, t0: float | None = None, t1: float | None = None) -> Any:
    """The space-time diagram of a test run with the message trace on (None if it ran without)."""
    from simulator import plots

    if test.sim.trace is None:
        return None
    nodes = [*test.nodes, *[n for n in test.hosts if n not in test.nodes]]
    return plots.space_time(test.sim.trace.frame(), nodes=nodes, title=title, t0=t0, t1=t1)


def minimal_window(schedule: Any, time_limit: float) -> tuple[float, float]:
    """The time window a diagram of ``schedule``'s faults should show (0.5 s before to 1.5 s after)."""
    fs = schedule.faults
    lo = min((f.at for f in fs), default=0.0)
    hi = max((_fault_end(f) for f in fs), default=time_limit)
    return max(0.0, lo - 0.5), hi + 1.5


def failure_figure(opts: Any, schedule: Any) -> Any:
    """The space-time diagram of ``opts`` replayed with ``schedule`` (a shrunk failing one), zoomed on
    its faults; with no fault left, the first 3 s (the bug needs no fault)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    again = build(replace(opts, faults=schedule, trace=True)).run()
    if len(schedule):
        t0, t1 = minimal_window(schedule, opts.time_limit)
        title = "minimal failing schedule: " + "; ".join(fault_label(f) for f in schedule.faults)
    else:
        quiet = again.results()["net"]["servers"] == 0
        t0, t1 = 0.0, min(opts.time_limit, 3.0)
        title = "it fails with no fault at all (first 3 s)" + (": no server ever sends another a message"
                                                               if quiet else "")
    return space_time_figure(again, title, t0, t1)


def _space_time(test: Any, base: Path, title: str, t0: float | None = None, t1: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    fig = space_time_figure(test, title, t0, t1)
    if fig is not None:
        _save(fig, base)


def _op_plots(test: Any, figs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from simulator import plots

    ops = test.ops
    _save(plots.op_latency(ops, title=f"{test.opts.workload}: latency of every operation"), figs / "latency")
    _save(plots.op_rate(ops, title=f"{test.opts.workload}: operations per second"), figs / "rate")


# -- the parser -----------------------------------------------------------------------------------
def add_parser(sub) -> None:
    p = sub.add_parser("test", help="test a protocol node as Maelstrom does (simulated time, deterministic)",
                       epilog=EXIT, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Test a protocol node as 'maelstrom test' does: in simulated time,\n"
                                   "deterministic, a failure shrunk to its few faults. For example:\n\n"
                                   + "\n".join(ln for ln in __doc__.splitlines() if ln.startswith("    splitbrain")))
    p.add_argument("-w", "--workload", required=True, help="echo, unique-ids, broadcast, g-set, g-counter, "
                   "pn-counter, kafka, lin-kv, txn-rw-register, txn-list-append (those installed)")
    add_test_options(p)
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/test/WORKLOAD/<time>-<hash>); never "
                   "overwritten")
    p.add_argument("--shrink", action=argparse.BooleanOptionalAction, default=True,
                   help="shrink a failing test's fault schedule to a minimal one (default on)")
    p.add_argument("--shrink-time", type=float, default=60.0, metavar="S",
                   help="time budget for shrinking in seconds (default 60)")
