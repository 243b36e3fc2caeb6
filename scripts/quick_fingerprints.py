"""Fingerprints of every experiment's QUICK preset: a guard that kernel optimisations change no number.

Runs each experiment of :func:`simulator.runner.catalog.registry` with its ``QUICK`` parameters
for seed 1 and records a SHA-256 of every frame it returns (columns, dtypes, index and values;
floats in their shortest round-trip form, so two hashes agree only if the frames are
bit-identical). A recorded history is hashed by its JSON Lines events.

    python scripts/quick_fingerprints.py            # write tests/data/quick_fingerprints.json
    python scripts/quick_fingerprints.py --check    # compare; print what differs, exit 1 if any
    python scripts/quick_fingerprints.py --check kernel_demo queueing   # only these

``tests/test_quick_fingerprints.py`` checks a cheap subset of the experiments on every test run.

numpy's AVX-512 builds of ``exp``/``log`` (SVML, used where the CPU has X86_V4) round the last
bit differently from its portable ones; the simulations do not use those ufuncs (numpy's
generators call libm), but the Monte Carlo and quadrature closed forms of ``chatty_services`` and
``cqrs_read_lag`` do. Their recorded digests (from an earlier machine) differed on an AMD EPYC
with AVX2 only, while their simulated frames matched, which is what that rounding difference
would do. The script therefore turns numpy's AVX-512 dispatch off before numpy is imported, so
those closed forms take the portable paths on every x86-64 CPU (the two were re-recorded so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# before numpy is imported (here or in the workers, which inherit the environment): see above
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "quick_fingerprints.json"
SEED = 1


def frame_digest(frame) -> str:
    """SHA-256 of a DataFrame (or a recorded History): identical iff the data are identical."""
    from simulator.history import History

    h = hashlib.sha256()
    if isinstance(frame, History):
        for e in frame.events():
            h.update(json.dumps(e, separators=(",", ":"), sort_keys=True).encode())
            h.update(b"\n")
        return "history:" + h.hexdigest()
    h.update(repr(list(frame.columns)).encode())
    h.update(repr([str(t) for t in frame.dtypes]).encode())
    # CSV writes floats in Python's shortest round-trip repr, so equal text means equal bits;
    # it also copes with object columns (lists, dicts) that parquet or hash_pandas_object refuse.
    h.update(frame.to_csv(index=True, lineterminator="\n").encode())
    return h.hexdigest()


def fingerprint(name: str) -> tuple[str, dict[str, str], float]:
    """Run ``name``'s QUICK preset for seed 1; the digest of each returned frame, and seconds."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from simulator.runner.catalog import make_params, module_by_name

    mod = module_by_name(name)
    started = time.perf_counter()
    frames = mod.run(make_params(mod, {}, quick=True), SEED)
    seconds = time.perf_counter() - started
    return name, {k: frame_digest(v) for k, v in sorted(frames.items())}, seconds


def all_names() -> list[str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from simulator.runner.catalog import registry

    # The package's experiments only: tests may register extra modules (catalog.register).
    return [name for name, mod in registry().items() if mod.__name__.startswith("experiments.")]


def compute(names: list[str], workers: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name, digests, seconds in pool.map(fingerprint, names):
            out[name] = {"frames": digests, "seconds": round(seconds, 2)}
            print(f"  {name:40s} {seconds:7.2f} s  {len(digests)} frame(s)", flush=True)
    return out


def differences(golden: dict[str, dict], got: dict[str, dict]) -> list[str]:
    """One line per experiment or frame whose digest differs from (or is missing in) ``golden``."""
    lines = []
    for name, entry in got.items():
        if name not in golden:
            lines.append(f"{name}: not in the golden file")
            continue
        want, have = golden[name]["frames"], entry["frames"]
        for frame in sorted(set(want) | set(have)):
            if want.get(frame) != have.get(frame):
                old, new = want.get(frame, "(absent)"), have.get(frame, "(absent)")
                lines.append(f"{name}.{frame}: {old[:16]} -> {new[:16]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the golden file instead of writing it")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("names", nargs="*", help="experiments (default: all)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be >= 1, got {args.workers}")
    known = all_names()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown experiment(s) {unknown}; available: {', '.join(known)}")
    names = args.names or known
    started = time.perf_counter()
    got = compute(names, args.workers)
    print(f"{len(names)} experiment(s) in {time.perf_counter() - started:.1f} s")
    if not args.check:
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() and args.names else {}
        old.update(got)
        GOLDEN.write_text(json.dumps(dict(sorted(old.items())), indent=1) + "\n")
        print(f"wrote {GOLDEN.relative_to(ROOT)}")
        return 0
    diff = differences(json.loads(GOLDEN.read_text()), got)
    for line in diff:
        print("DIFFERS", line)
    print("fingerprints: " + (f"{len(diff)} difference(s)" if diff else "all identical"))
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
