"""Request records in typed columns, and the derived views (percentiles, availability, RED).

A client calls ``rid = log.begin(client, target, op, t)`` when a request is issued and
``log.end(rid, t, outcome, attempts)`` when it completes. Columns are ``array.array``s of
machine types (strings interned to small integer codes), so a million requests cost tens of
MB, not a dict each; the DataFrame is built once, on demand. A request that has not ended is
``in_flight`` in the frame: every issued request is accounted for.

Protocol modules may add their own columns (``log.column("hedged", "b")``) and set them per
request (``log.set(rid, "hedged", 1)``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

OUTCOME_CODES = ("in_flight", "ok", "error", "timeout", "unreachable", "crashed", "rejected",
                 "short_circuited", "fallback", "cancelled")
_OUT = {o: i for i, o in enumerate(OUTCOME_CODES)}
# Outcomes that count as "the service answered usefully" for availability.
GOOD = ("ok", "fallback")


class _Interner:
    __slots__ = ("codes", "names")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, s: str) -> int:
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.names)
            self.names.append(s)
        return c


class RequestLog:
    """Columnar log of client requests (one row per request, including retried ones once)."""

    def __init__(self) -> None:
        self._strings = _Interner()
        self.client = array("i")
        self.target = array("i")
        self.op = array("i")
        self.start = array("d")
        self.end_ = array("d")
        self.outcome = array("b")
        self.attempts = array("h")
        self.trace_id = array("q")
        self._extra: dict[str, array] = {}
        self._extra_default: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.start)

    # -- recording (hot path) -------------------------------------------------------------
    def begin(self, client: str, target: str, op: str, t: float, trace_id: int = -1) -> int:
        rid = len(self.start)
        s = self._strings
        codes = s.codes  # the interner's lookup, inlined: names repeat (a new one is interned)
        c = codes.get(client)
        self.client.append(s(client) if c is None else c)
        c = codes.get(target)
        self.target.append(s(target) if c is None else c)
        c = codes.get(op)
        self.op.append(s(op) if c is None else c)
        self.start.append(t)
        self.end_.append(math.nan)
        self.outcome.append(0)
        self.attempts.append(0)
        self.trace_id.append(rid if trace_id < 0 else trace_id)
        if self._extra:
            for k, col in self._extra.items():
                col.append(self._extra_default[k])
        return rid

    def end(self, rid: int, t: float, outcome: str, attempts: int = 1) -> None:
        if self.outcome[rid] != 0:
            raise RuntimeError(f"request {rid} already ended as {OUTCOME_CODES[self.outcome[rid]]}")
        code = _OUT.get(outcome)
        if code is None or code == 0:
            raise ValueError(f"outcome must be one of {OUTCOME_CODES[1:]}, got {outcome!r}")
        self.end_[rid] = t
        self.outcome[rid] = code
        self.attempts[rid] = attempts

    def column(self, name: str, typecode: str = "d", default: float = 0) -> None:
        """Add a per-request column (``typecode`` as in ``array``), filled with ``default``."""
        if name in self._extra:
            return
        reserved = {"client", "target", "op", "start", "end", "latency", "outcome", "attempts", "trace_id"}
        if name in reserved:
            raise ValueError(f"column name {name!r} is reserved; reserved: {sorted(reserved)}")
        self._extra[name] = array(typecode, [default]) * len(self)
        self._extra_default[name] = default

    def set(self, rid: int, name: str, value: float) -> None:
        self._extra[name][rid] = value

    def get(self, rid: int, name: str, default: float | None = None) -> float:
        """Column ``name`` of request ``rid``; ``default`` if no such column was added."""
        col = self._extra.get(name)
        if col is None:
            if default is None:
                raise KeyError(f"no column {name!r}; columns: {sorted(self._extra)}")
            return default
        return col[rid]

    # -- views -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Requests per outcome (``in_flight`` included): they sum to ``len(self)``."""
        c = np.bincount(np.frombuffer(self.outcome, dtype=np.int8).astype(np.int64),
                        minlength=len(OUTCOME_CODES))
        return {o: int(n) for o, n in zip(OUTCOME_CODES, c)}

    def requests(self) -> pd.DataFrame:
        """One row per request: client, target, op, start, end, latency, outcome, attempts,
        trace_id (+ any extra columns). Strings are pandas categoricals."""
        import pandas as pd

        cats = pd.CategoricalDtype(self._strings.names) if self._strings.names else None

        def cat(col: array) -> pd.Categorical:
            codes = np.frombuffer(col, dtype=np.int32)
            if cats is None:
                return pd.Categorical([])
            return pd.Categorical.from_codes(codes, dtype=cats)

        start = np.frombuffer(self.start, dtype=np.float64).copy()
        end = np.frombuffer(self.end_, dtype=np.float64).copy()
        out = pd.Categorical.from_codes(
            np.frombuffer(self.outcome, dtype=np.int8).astype(np.int16),
            dtype=pd.CategoricalDtype(OUTCOME_CODES),
        )
        data = {
            "client": cat(self.client),
            "target": cat(self.target),
            "op": cat(self.op),
            "start": start,
            "end": end,
            "latency": end - start,
            "outcome": out,
            "attempts": np.frombuffer(self.attempts, dtype=np.int16).copy(),
            "trace_id": np.frombuffer(self.trace_id, dtype=np.int64).copy(),
        }
        for k, col in self._extra.items():
            data[k] = np.array(col)
        return pd.DataFrame(data)


# -- derived views: functions of the DataFrame ------------------------------------------------
def latency_percentiles(
    df: pd.DataFrame,
    qs: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    *,
    by: str | Sequence[str] | None = None,
    window: float | None = None,
    ok_only: bool = True,
) -> pd.DataFrame:
    """Latency quantiles (columns ``p50``, ``p99`` …), overall, per ``by`` group and/or per
    time window of ``window`` seconds (by request start). ``ok_only``: successful requests."""
    import pandas as pd

    for q in qs:
        if not 0 <= q <= 1:
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
    d = df[df["outcome"] == "ok"] if ok_only else df[df["outcome"] != "in_flight"]
    keys: list = [] if by is None else ([by] if isinstance(by, str) else list(by))
    if window is not None:
        _window_check(window)
        d = d.assign(window=(d["start"] // window) * window)
        keys.append("window")
    cols = {f"p{_qname(q)}": q for q in qs}
    if not keys:
        row = {name: float(d["latency"].quantile(q)) if len(d) else math.nan for name, q in cols.items()}
        row["count"] = len(d)
        return pd.DataFrame([row])
    g = d.groupby(keys, observed=True)["latency"]
    res = pd.DataFrame({name: g.quantile(q) for name, q in cols.items()})
    res["count"] = g.size()
    return res.reset_index()


def _qname(q: float) -> str:
    s = f"{q * 100:.10g}"
    return s.replace(".", "")


def _window_check(window: float) -> None:
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise ValueError(f"window must be a number of seconds > 0, got {window!r}")


def availability(
    df: pd.DataFrame,
    window: float = 1.0,
    *,
    by: str | Sequence[str] | None = None,
    good: Iterable[str] = GOOD,
    until: float | None = None,
) -> pd.DataFrame:
    """Fraction of requests answered usefully (``good`` outcomes), per window of request
    start time (and per ``by`` group). Requests still in flight count as not answered."""
    import pandas as pd

    _window_check(window)
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    d = df if until is None else df[df["start"] < until]
    d = d.assign(window=(d["start"] // window) * window, good=d["outcome"].isin(list(good)))
    g = d.groupby(keys + ["window"], observed=True)["good"]
    out = pd.DataFrame({"requests": g.size(), "good": g.sum()})
    out["availability"] = out["good"] / out["requests"]
    return out.reset_index()


def availability_by_side(df: pd.DataFrame, side_of: dict[str, str], window: float = 1.0) -> pd.DataFrame:
    """Availability per window for each side of a partition; ``side_of`` maps client -> side."""
    d = df.assign(side=df["client"].astype(str).map(side_of).fillna("unassigned"))
    return availability(d, window, by="side")


def red(df: pd.DataFrame, window: float = 1.0) -> pd.DataFrame:
    """RED per window: request rate (/s), error rate (fraction not ok), duration p50/p99."""
    import pandas as pd

    _window_check(window)
    done = df[df["outcome"] != "in_flight"]
    d = done.assign(window=(done["start"] // window) * window, err=done["outcome"] != "ok")
    g = d.groupby("window")
    out = pd.DataFrame({
        "rate": g.size() / window,
        "error_rate": g["err"].mean(),
        "p50": g["latency"].quantile(0.5),
        "p99": g["latency"].quantile(0.99),
    })
    return out.reset_index()
