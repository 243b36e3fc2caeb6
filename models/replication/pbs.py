"""PBS: Probabilistically Bounded Staleness for Dynamo-style partial quorums (the WARS model).

Bailis, Venkataraman, Franklin, Hellerstein, Stoica, "Probabilistically Bounded Staleness for
Practical Partial Quorums", VLDB 2012 (§5; also CACM 2014, "Quantifying Eventual Consistency
with PBS", §4-5). A write coordinator sends a write to all ``n`` replicas; each write request
is delayed by a draw from **W**, each acknowledgement by a draw from **A**; the write commits
when ``w`` acks have arrived (time ``wt``). A read coordinator (possibly another node; neither
coordinator is a replica) sends a read to all ``n`` replicas ``t`` after the commit; each read
request is delayed by **R**, each response by **S**; the read returns the newest version among
the first ``r`` responses. It is *stale* when none of those ``r`` replicas had the write when
the read request reached it, i.e. for every one of them ``W[i] > wt + t + R[i]``. No read
repair and no anti-entropy: a replica gets the write only from its own write request.

Two implementations of the same equations:

* :class:`WARSCluster` — on the simulator kernel: real nodes, and the four legs are the
  network's per-direction link latencies (``coord.w -> replica``: W, ``replica -> coord.w``: A,
  ``coord.r -> replica``: R, ``replica -> coord.r``: S), each link on its own named stream.
  :func:`des_t_visibility` and :func:`des_k_staleness` run trials on it.
* :func:`wars_thresholds` — a vectorised numpy Monte Carlo (the paper's own method, §5.2):
  per trial, the smallest ``t`` at which the read is consistent,
  ``T = min over the first r responders of (W[i] - wt - R[i])``; the read at ``t`` is consistent
  iff ``t >= T``, so one sample of ``T`` gives the whole t-visibility curve.

Closed forms (§3): with read and write quorums of fixed sizes chosen uniformly at random and no
propagation beyond the write quorum, a read misses the last write with
``p = C(n-w, r) / C(n, r)`` and misses all of the last ``k`` writes with ``p**k``
(:func:`k_staleness`). In WARS the same ``p`` is P(stale at t = 0) when A, R and S are
negligible against W (then the replicas that have the write at commit are exactly the ``w``
fastest, and the first ``r`` responders are a uniform choice).

Production fits (VLDB 2012 Table 3, ms; λ in 1/ms): :data:`PRODUCTION_FITS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from simulator import Constant, Distribution, Exponential, Mixture, Pareto, Simulation

from .quorum import miss_probability

MS = 1e-3  # the paper's unit; the kernel's is the second

# VLDB 2012 Table 3 ("Distribution fits for production latency distributions"): each leg is a
# mixture (weight, ("pareto", x_m ms, alpha) | ("exp", lambda 1/ms)). LNKD-DISK keeps LNKD-SSD's
# A = R = S and has its own W.
_LNKD_SSD = ((0.9122, ("pareto", 0.235, 10.0)), (0.0878, ("exp", 1.66)))
PRODUCTION_FITS: dict[str, dict[str, tuple]] = {
    "lnkd-ssd": {"W": _LNKD_SSD, "A": _LNKD_SSD, "R": _LNKD_SSD, "S": _LNKD_SSD},
    "lnkd-disk": {"W": ((0.38, ("pareto", 1.05, 1.51)), (0.62, ("exp", 0.183))),
                  "A": _LNKD_SSD, "R": _LNKD_SSD, "S": _LNKD_SSD},
    "ymmr": {"W": ((0.939, ("pareto", 3.0, 3.35)), (0.061, ("exp", 0.0028))),
             **dict.fromkeys("ARS", ((0.982, ("pareto", 1.5, 3.8)), (0.018, ("exp", 0.0217))))},
}
LEGS = ("W", "A", "R", "S")


def parse_nrw(s: str) -> tuple[int, int, int]:
    """``"3-1-2"`` -> ``(n, r, w)``."""
    try:
        n, r, w = (int(x) for x in s.split("-"))
    except ValueError:
        raise ValueError(f"a quorum setting must read 'N-R-W' like '3-1-2', got {s!r}") from None
    if not (1 <= r <= n and 1 <= w <= n):
        raise ValueError(f"quorum setting {s!r}: need 1 <= R, W <= N")
    return n, r, w


def k_staleness(n: int, r: int, w: int, k: int) -> float:
    """P(a read returns one of the last ``k`` versions) with random, non-expanding quorums:
    ``1 - (C(n-w, r) / C(n, r)) ** k`` (VLDB 2012 Eq. 2)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 1.0 - miss_probability(n, r, w) ** k


def _leg(spec: tuple) -> Distribution:
    parts = []
    for weight, (kind, *args) in spec:
        d = Pareto(scale=args[0] * MS, alpha=args[1]) if kind == "pareto" else Exponential(mean_s=MS / args[0])
        parts.append((weight, d))
    return parts[0][1] if len(parts) == 1 else Mixture(parts)


def wars_legs(model: str, lambda_w: float = 1.0, lambda_ars: float = 1.0) -> dict[str, Distribution]:
    """The W, A, R, S one-way delay distributions (seconds) of ``model``: ``"exponential"``
    (W ~ Exp(lambda_w), A = R = S ~ Exp(lambda_ars), rates in 1/ms as in the paper's Fig. 5) or
    a production fit (``"lnkd-ssd"``, ``"lnkd-disk"``, ``"ymmr"``)."""
    if model == "exponential":
        if not (lambda_w > 0 and lambda_ars > 0):
            raise ValueError(f"exponential rates must be > 0 (1/ms), got lambda_w={lambda_w}, lambda_ars={lambda_ars}")
        ars = Exponential(mean_s=MS / lambda_ars)
        return {"W": Exponential(mean_s=MS / lambda_w), "A": ars, "R": ars, "S": ars}
    if model not in PRODUCTION_FITS:
        raise ValueError(f"unknown latency model {model!r}; allowed: exponential, {', '.join(PRODUCTION_FITS)}")
    return {leg: _leg(spec) for leg, spec in PRODUCTION_FITS[model].items()}


# -- the vectorised Monte Carlo ---------------------------------------------------------------------
def wars_thresholds(legs: dict[str, Distribution | float], n: int, r: int, w: int, trials: int,
                    rngs: dict[str, np.random.Generator], chunk: int = 200_000) -> np.ndarray:
    """Per trial, the smallest ``t`` (s) after commit at which the read is consistent
    (``T = min over the first r responders of W[i] - wt - R[i]``; negative: consistent at once).
    ``rngs`` maps each leg name to its generator (one named stream per leg)."""
    if not (1 <= r <= n and 1 <= w <= n):
        raise ValueError(f"need 1 <= r, w <= n; got n={n}, r={r}, w={w}")
    dists = {k: (v if isinstance(v, Distribution) else Constant(float(v))) for k, v in legs.items()}
    out = np.empty(trials)
    rows = np.arange(min(chunk, trials))[:, None]
    for lo in range(0, trials, chunk):
        m = min(chunk, trials - lo)
        d = {k: dists[k].draw(rngs[k], m * n).reshape(m, n) for k in LEGS}
        wt = np.partition(d["W"] + d["A"], w - 1, axis=1)[:, w - 1]
        # the first r responders; stable so ties (constant legs) go by replica index,
        # which is independent of the write's arrival order
        first = np.argsort(d["R"] + d["S"], axis=1, kind="stable")[:, :r]
        ri = rows[:m]
        out[lo:lo + m] = (d["W"][ri, first] - d["R"][ri, first]).min(axis=1) - wt
    return out


def wars_streams(sim: Simulation, prefix: str = "wars") -> dict[str, np.random.Generator]:
    """One named stream per leg (common random numbers across settings that share ``prefix``)."""
    return {k: sim.rng(f"{prefix}.{k}") for k in LEGS}


def p_consistent(thresholds: np.ndarray, t_s: Sequence[float] | np.ndarray) -> np.ndarray:
    """P(consistent read at t) for each t (s): the fraction of trials with ``T <= t``."""
    s = np.sort(thresholds)
    return np.searchsorted(s, np.asarray(t_s, dtype=float), side="right") / len(s)


def t_at(thresholds: np.ndarray, p: float) -> float:
    """The smallest t >= 0 (s) with P(consistent at t) >= p (the empirical quantile)."""
    s = np.sort(thresholds)
    i = max(int(np.ceil(p * len(s))) - 1, 0)
    return max(float(s[i]), 0.0)


def t_at_ci95(thresholds: np.ndarray, p: float) -> tuple[float, float]:
    """Distribution-free 95% CI of :func:`t_at` from binomial order statistics."""
    s = np.sort(thresholds)
    n = len(s)
    half = 1.96 * np.sqrt(n * p * (1 - p))
    lo, hi = int(max(np.floor(n * p - half) - 1, 0)), int(min(np.ceil(n * p + half) - 1, n - 1))
    return max(float(s[lo]), 0.0), max(float(s[hi]), 0.0)


# -- the discrete-event model on the kernel -----------------------------------------------------------
class WARSCluster:
    """``n`` replicas, a write coordinator ``coord.w`` and a read coordinator ``coord.r`` (not
    replicas). The legs are the network's per-direction latencies. ``fanout="all"`` is Dynamo
    (every request to all ``n``, first ``w``/``r`` replies count); ``fanout="quorum"`` sends a
    write to ``w`` and a read to ``r`` replicas chosen uniformly at random (the probabilistic
    quorums of §3: no propagation beyond the write quorum). A replica keeps the highest
    version it has received per key; there is no read repair and no anti-entropy."""

    def __init__(self, sim: Simulation, n: int, r: int, w: int, legs: dict[str, Distribution | float], *,
                 fanout: str = "all") -> None:
        if not (1 <= r <= n and 1 <= w <= n):
            raise ValueError(f"need 1 <= r, w <= n; got n={n}, r={r}, w={w}")
        if fanout not in ("all", "quorum"):
            raise ValueError(f"fanout must be 'all' or 'quorum', got {fanout!r}")
        if set(legs) != set(LEGS):
            raise ValueError(f"legs must give exactly {LEGS}, got {sorted(legs)}")
        self.sim, self.n, self.r, self.w, self.fanout = sim, n, r, w, fanout
        self.writer, self.reader = sim.node("coord.w"), sim.node("coord.r")
        self.replicas = [sim.node(f"replica{i}") for i in range(n)]
        net = sim.net
        for rep in self.replicas:
            net.link("coord.w", rep.name, symmetric=False, latency=legs["W"])
            net.link(rep.name, "coord.w", symmetric=False, latency=legs["A"])
            net.link("coord.r", rep.name, symmetric=False, latency=legs["R"])
            net.link(rep.name, "coord.r", symmetric=False, latency=legs["S"])
            store: dict = {}
            rep.on("write", self._apply(store))
            rep.on("read", lambda msg, store=store: store.get(msg.payload, 0))
        self._pick = sim.rng("pbs.quorum_choice")
        self.applied: list[tuple[float, str, object, int]] = []  # (time, replica, key, version)

    def _apply(self, store: dict) -> Callable:
        def handler(msg):
            key, version = msg.payload
            if version > store.get(key, 0):
                store[key] = version
            self.applied.append((self.sim.now, msg.dst, key, version))
            return True
        return handler

    def _targets(self, k: int) -> list[str]:
        if self.fanout == "all":
            return [rep.name for rep in self.replicas]
        return [self.replicas[i].name for i in self._pick.choice(self.n, k, replace=False)]

    def write(self, key: object, version: int, on_commit: Callable[[float], None]) -> None:
        """Send ``version`` of ``key``; ``on_commit(time)`` at the ``w``-th ack."""
        acks = [0]

        def ack(outcome: str, _value: object) -> None:
            acks[0] += 1
            if acks[0] == self.w:
                on_commit(self.sim.now)

        for dst in self._targets(self.w):
            self.writer.call(dst, "write", (key, version), callback=ack)

    def read(self, key: object, on_done: Callable[[int, float], None]) -> None:
        """Read ``key``; ``on_done(version, time)`` with the newest of the first ``r`` responses."""
        got: list[int] = []

        def resp(outcome: str, version: int) -> None:
            got.append(version)
            if len(got) == self.r:
                on_done(max(got), self.sim.now)

        for dst in self._targets(self.r):
            self.reader.call(dst, "read", key, callback=resp)


def des_t_visibility(n: int, r: int, w: int, legs: dict[str, Distribution | float], t_s: Sequence[float],
                     trials: int, seed: int) -> pd.DataFrame:
    """Run ``trials`` independent writes (each to its own key) on a :class:`WARSCluster`; after
    each commits, one read at every ``t`` in ``t_s`` (s). Reads change no state, so they do not
    disturb each other. One row per read: trial, t, stale, read_latency, write_latency."""
    sim = Simulation(seed=seed)
    c = WARSCluster(sim, n, r, w, legs)
    rows: list[tuple[int, float, bool, float, float]] = []

    def start(trial: int) -> None:
        t0 = sim.now

        def committed(at: float) -> None:
            for t in t_s:
                sim.at(t, lambda t=t: read_at(t, at))

        def read_at(t: float, at: float) -> None:
            begin = sim.now
            c.read(trial, lambda v, end: rows.append((trial, t, v < 1, end - begin, at - t0)))

        c.write(trial, 1, committed)

    for i in range(trials):
        start(i)
    _run_until_done(sim, lambda: len(rows) == trials * len(t_s), max(t_s) + 1.0, "reads")
    return pd.DataFrame(rows, columns=["trial", "t", "stale", "read_latency", "write_latency"])


def _run_until_done(sim: Simulation, done: Callable[[], bool], start: float, what: str) -> None:
    # run in doubling steps until every trial finished (heavy tails: no fixed horizon is safe)
    until = start
    while not done():
        if until > 1e7:
            raise RuntimeError(f"{what} still unfinished after {until:g} simulated seconds")
        sim.run(until=until)
        until *= 2


def des_k_staleness(n: int, r: int, w: int, k: int, trials: int, seed: int,
                    legs: dict[str, Distribution | float] | None = None) -> np.ndarray:
    """§3 on the kernel: per trial, ``k`` writes in sequence (each after the previous commits)
    to ``w`` random replicas, then a read from ``r`` random replicas. Returns per trial whether
    the read returned one of the last ``k`` versions (not the initial value)."""
    sim = Simulation(seed=seed)
    c = WARSCluster(sim, n, r, w, legs or wars_legs("exponential"), fanout="quorum")
    within = np.zeros(trials, dtype=bool)
    done = [0]

    def trial(i: int) -> None:
        def write(v: int) -> None:
            if v > k:
                c.read(i, got)
            else:
                c.write(i, v, lambda _at: write(v + 1))

        def got(version: int, _at: float) -> None:
            within[i] = version >= 1
            done[0] += 1

        write(1)

    for i in range(trials):
        trial(i)
    _run_until_done(sim, lambda: done[0] == trials, 1.0, "k-staleness trials")
    return within


__all__ = ["LEGS", "MS", "PRODUCTION_FITS", "WARSCluster", "des_k_staleness", "des_t_visibility",
           "k_staleness", "miss_probability", "p_consistent", "parse_nrw", "t_at", "t_at_ci95", "wars_legs",
           "wars_streams", "wars_thresholds"]
