"""splitbrain's linearizability checker beside Porcupine's, on the same single-key kv and queue histories.

Histories come from clients of a real object, as in checker_speed.py (``object_history``: each
operation takes effect at a random instant inside its interval; kv: 50% get, 45% append, 5% put;
queue: 55% enqueue), all on ONE key, with many concurrent clients; the invalid variant has one
observation corrupted in the second half so that it is surely a violation (a get missing an append
that returned before it was invoked, with no put between: ``corrupt_kv``; a dequeue returning an
element never enqueued). kv has two more invalid variants with no lost write, which kv_part's
real-time rule does not see (``reorder_kv``): ``reorder``, one get listing two adjacent appends
against real time; ``conflict``, one get listing two concurrent appends in the order opposite to
another get's (kv_part's order rule refutes both; before it, 100 clients ended Unknown at 30 s).
A history splitbrain does not decide within the limit prints Unknown and is listed at the end.
Each history is checked by ``check_linearizable`` (the time to the verdict:
the whole call minus the counterexample shrinking Porcupine does not do) and exported
(simulator.history.porcupine_json) to a JSON file a Porcupine program reads.

Porcupine (github.com/anishathalye/porcupine, Go) is not part of splitbrain. To compare, build a
small Go program (~100 lines; see the README, "Checking against Porcupine") that takes the file
as its one argument, decodes its ops into ``porcupine.Operation``, checks them with
``porcupine.CheckOperationsTimeout`` and a kv / queue model like Porcupine's own test models, and
prints ``<Ok|Illegal|Unknown> <seconds>`` (its optional second argument: the time limit in
seconds, after which Porcupine answers Unknown). Then both checkers run here, on the same file, one after
the other, and the ratio splitbrain/porcupine is printed per history (below 1: splitbrain faster).

    python benchmarks/vs_porcupine.py                                  # splitbrain alone
    python benchmarks/vs_porcupine.py --porcupine /tmp/porc/porc-check # side by side
    python benchmarks/vs_porcupine.py --processes 10,50,100 --ops 10000 --keep /tmp/hist
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checker_speed import corrupt, object_history  # noqa: E402  (a sibling script)

from simulator.history import History  # noqa: E402
from simulator.history.linearizable import check_linearizable  # noqa: E402
from simulator.history.ops import completions, pair_ops  # noqa: E402
from simulator.history.porcupine_json import save_porcupine  # noqa: E402

VERDICT = {True: "Ok", False: "Illegal", None: "Unknown"}
VARIANTS = ("valid", "invalid", "reorder", "conflict")  # the last two: kv only (reorder_kv)


def corrupt_kv(h: History, rng: np.random.Generator) -> History | None:
    """A kv history made surely invalid: one ok get (second half) loses the token of an append ``a``
    that returned before the get was invoked, ``a``'s token not the first of the result, and no put
    that could fall between them (none invoked before the get returned and returned after ``a`` was
    invoked). Then every linearization has ``a`` before the get and no put between, so the get must
    show ``a``'s value. (checker_speed's kv corruption, dropping the last append a get saw, need not
    be a violation: that append may be concurrent with the get.)"""
    ops = [o for o in pair_ops(h) if o.type == "ok"]
    append = {o.value: o for o in ops if o.f == "append"}
    puts = [o for o in ops if o.f == "put"]
    ev = list(h.events())
    ret = completions(h)  # invoke index -> completion index
    gets = [o for o in ops if o.f == "get" and o.result and o.index >= len(ev) // 2]
    for g in sorted(gets, key=lambda _: rng.random()):
        toks = _tokens(g.result)
        for k in range(len(toks) - 1, 0, -1):
            a = append.get(toks[k])
            if a is None or not a.complete_time < g.invoke_time:
                continue
            if any(p.invoke_time < g.complete_time and p.complete_time > a.invoke_time for p in puts):
                continue
            ev[ret[g.index]] = {**ev[ret[g.index]], "value": "".join(toks[:k] + toks[k + 1:])}
            return History.from_events(ev)
    return None


def _tokens(r: str) -> list[str]:
    return ["<" + x + ">" for x in r[1:-1].split("><")] if r else []


def reorder_kv(h: History, rng: np.random.Generator, realtime: bool) -> History | None:
    """A kv history made surely invalid WITHOUT a lost write (the real-time rule of kv_part, a get
    missing a write that returned before it or naming one invoked after it, does not see it): one
    ok get (second half) lists two adjacent tokens ``a b`` of its result as ``b a``, its set of
    writes unchanged. With unique tokens a string is a put's value (or "") followed by the appends
    placed after it, in placing order, so every get naming both ``a`` and ``b`` shows them in the
    order they were placed. ``realtime``: ``a`` returned before ``b`` was invoked, so every
    linearization places ``a`` first and the get's ``b a`` is impossible. Otherwise ``a`` and ``b``
    are concurrent (either order is legal alone) and another ok get names both as ``a b``: the two
    gets contradict each other, whatever order the search picks."""
    ops = [o for o in pair_ops(h) if o.type == "ok"]
    write = {o.value: o for o in ops if o.f != "get"}
    ev = list(h.events())
    ret = completions(h)  # invoke index -> completion index
    all_gets = [o for o in ops if o.f == "get" and o.result]
    gets = [o for o in all_gets if o.index >= len(ev) // 2]
    for g in sorted(gets, key=lambda _: rng.random()):
        toks = _tokens(g.result)
        for k in range(len(toks) - 2, 0, -1):  # not the first: a put's token must stay first
            a, b = write.get(toks[k]), write.get(toks[k + 1])
            if a is None or b is None:
                continue
            if realtime != (a.complete_time < b.invoke_time):
                continue
            if not realtime and not any(o is not g and toks[k] + toks[k + 1] in o.result for o in all_gets):
                continue
            toks[k], toks[k + 1] = toks[k + 1], toks[k]
            ev[ret[g.index]] = {**ev[ret[g.index]], "value": "".join(toks)}
            return History.from_events(ev)
    return None


def run_porcupine(cmd: str, path: Path, timeout_s: float) -> tuple[str, float, float]:
    """(verdict, seconds the program reports for its check, wall seconds of the whole process)."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run([*shlex.split(cmd), str(path), f"{timeout_s:g}"], capture_output=True, text=True,
                           timeout=timeout_s + 60)
    except subprocess.TimeoutExpired:
        return "Timeout", float("nan"), time.perf_counter() - t0
    wall = time.perf_counter() - t0
    words = p.stdout.split()
    if p.returncode != 0 or len(words) < 2:
        raise SystemExit(f"--porcupine {cmd!r} failed on {path} (exit {p.returncode}): "
                         f"{(p.stderr or p.stdout).strip()[:300]}")
    return words[0], float(words[1]), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="kv,queue")
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--processes", default="10,50,100")
    ap.add_argument("--porcupine", metavar="CMD", help="a program: CMD FILE LIMIT_S prints '<verdict> <seconds>'")
    ap.add_argument("--time-limit", type=float, default=300.0, help="each checker's limit per history (s)")
    ap.add_argument("--keep", metavar="DIR", help="keep the exported histories here (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", metavar="MODEL:PROCS:VARIANT", action="append", default=[],
                    help="check only these histories (repeatable), e.g. kv:100:invalid")
    args = ap.parse_args()
    if args.ops < 10:
        raise SystemExit(f"--ops must be >= 10, got {args.ops}")
    procs_list = [int(x) for x in args.processes.split(",")]
    only = set()
    for o in args.only:
        m, _, rest = o.partition(":")
        p, _, v = rest.partition(":")
        if m not in args.models.split(",") or not p.isdigit() or v not in VARIANTS:
            raise SystemExit(f"--only must be MODEL:PROCS:VARIANT (MODEL in --models; VARIANT in "
                             f"{'|'.join(VARIANTS)}), got {o!r}")
        only.add((m, int(p), v))
        if int(p) not in procs_list:
            procs_list.append(int(p))
    if any(p < 1 for p in procs_list):
        raise SystemExit(f"--processes must be >= 1 each, got {args.processes!r}")
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vs_porcupine_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'model':>6} {'ops':>6} {'procs':>5} {'history':>8} | {'splitbrain':>10} {'s':>8} | "
          f"{'porcupine':>9} {'s':>8} {'wall s':>7} | {'sb/porc':>7}")
    agree = True
    undecided: list[str] = []
    for model in args.models.split(","):
        for procs in procs_list:
            if only and not any(m == model and p == procs for m, p, _ in only):
                continue
            rng = np.random.default_rng([args.seed, args.ops, 1, procs])
            h, _ = object_history(model, rng, args.ops, 1, procs)
            bad = corrupt_kv(h, rng) if model == "kv" else corrupt(model, h, rng)
            variants = [("valid", h), ("invalid", bad)]
            if model == "kv":  # invalid too, but with no lost write: the search must find them
                variants += [("reorder", reorder_kv(h, rng, True)), ("conflict", reorder_kv(h, rng, False))]
            for name, hist in variants:
                if only and (model, procs, name) not in only:
                    continue
                if hist is None:
                    print(f"{model:>6} {args.ops:>6} {procs:>5} {name:>8} | (nothing to corrupt)")
                    continue
                path = save_porcupine(hist, model, out / f"{model}_{args.ops}_{procs}_{name}.json")
                t0 = time.perf_counter()
                r = check_linearizable(hist, model=model, time_limit_s=args.time_limit)
                if r.valid is None:
                    undecided.append(f"{model}:{procs}:{name}")
                sb = time.perf_counter() - t0 - r.stats["shrink_seconds"]
                line = f"{model:>6} {args.ops:>6} {procs:>5} {name:>8} | {VERDICT[r.valid]:>10} {sb:>8.3f} | "
                if not args.porcupine:
                    print(line + f"{'-':>9} {'-':>8} {'-':>7} | {'-':>7}", flush=True)
                    continue
                pv, ps, pw = run_porcupine(args.porcupine, path, args.time_limit)
                decided = pv in ("Ok", "Illegal") and r.valid is not None
                mark = "" if not decided or pv == VERDICT[r.valid] else "  DISAGREE"
                agree = agree and not mark
                if pv in ("Ok", "Illegal"):
                    ratio = f"{sb / ps:>7.3f}"
                else:  # porcupine gave up at the limit: the ratio is at most this
                    ratio = f"<{sb / args.time_limit:.4f}"
                    ps = args.time_limit
                print(line + f"{pv:>9} {ps:>8.3f} {pw:>7.2f} | {ratio:>7}{mark}", flush=True)
    print(f"histories exported to {out}")
    if undecided:
        print(f"splitbrain did not decide {len(undecided)} histories within {args.time_limit:g} s "
              f"(Unknown): {', '.join(undecided)}")
    if not args.porcupine:
        print("no --porcupine given: for the comparison build the Go harness the README describes "
              "(Checking against Porcupine) and pass --porcupine /path/to/it")
    elif not agree:
        raise SystemExit("the checkers disagree on some history (marked DISAGREE)")


if __name__ == "__main__":
    main()
