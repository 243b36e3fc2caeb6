"""SLOs, error budgets and burn-rate alerts — multiwindow, multi-burn-rate, as in the Google SRE Workbook.

Source: Google SRE Workbook, ch. 5 "Alerting on SLOs" (sre.google/workbook/alerting-on-slos).
An SLO with target ``T`` over a compliance window ``W`` allows an error budget ``b = 1 - T``
(the fraction of requests that may be bad). The *burn rate* over a window ``w`` is the error
ratio in that window divided by ``b``: burning at 1 spends the budget exactly over ``W``.
An alert with window ``w`` and burn-rate threshold ``B`` fires when the error ratio over the
last ``w`` is ``>= B·b``; a *multiwindow* alert also needs the same burn rate over a short
window (the Workbook uses 1/12 of the long one) so that it resets soon after the errors stop.

Closed forms (constant request rate, error ratio ``e`` starting after a clean window):
detection time ``B·b·w/e`` if ``e >= B·b``, never otherwise; after the errors stop the window
stays above threshold for ``w·(1 - B·b/e)`` (about ``w``: the long window resets late, the
short one soon); an outage of length ``d`` at ratio ``e`` spends ``e·d/(b·W)`` of the budget.

Time scale. All windows here are in *SLO time* (a 30-day window is ``30·86400`` s). A short
simulation maps SLO time onto simulated time with ``time_scale`` = SLO seconds per simulated
second: with ``time_scale=3600`` one simulated second stands for one hour, so a 30-day window
is 720 simulated seconds and a 5-minute window 1/12 of a simulated second. Results (fire and
reset times) are reported in simulated seconds; multiply by ``time_scale`` for SLO time.

The SLI is computed per request from the request frame of :mod:`simulator.metrics` (one row
per request), by its ``end`` time (a request counts when it completes, as a metric would);
requests still in flight are not yet counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.metrics import GOOD

if TYPE_CHECKING:
    import pandas as pd

DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0


def _pos(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


@dataclass(frozen=True)
class SLO:
    """A request-based SLO. ``sli="availability"``: a request is good if its outcome is in
    ``good``; ``sli="latency"``: good if it is also no slower than ``latency_threshold_s``
    (failed requests are bad for both). ``target`` in (0, 1); ``window_s`` in SLO seconds."""

    target: float = 0.999
    window_s: float = 30 * DAY
    sli: str = "availability"
    latency_threshold_s: float | None = None
    good: tuple[str, ...] = GOOD
    name: str = "slo"

    def __post_init__(self) -> None:
        if not (isinstance(self.target, (int, float)) and 0 < self.target < 1):
            raise ValueError(f"target must be in (0, 1), e.g. 0.999, got {self.target!r}")
        _pos("window_s", self.window_s)
        if self.sli not in ("availability", "latency"):
            raise ValueError(f"sli must be 'availability' or 'latency', got {self.sli!r}")
        if self.sli == "latency":
            if self.latency_threshold_s is None:
                raise ValueError("a latency SLI needs latency_threshold_s (seconds)")
            _pos("latency_threshold_s", self.latency_threshold_s)
        elif self.latency_threshold_s is not None:
            raise ValueError("latency_threshold_s is only for sli='latency'")
        object.__setattr__(self, "good", tuple(self.good))
        if not self.good:
            raise ValueError("good must name at least one outcome")

    @property
    def budget(self) -> float:
        """The error budget: the fraction of requests allowed to be bad, ``1 - target``."""
        return 1.0 - self.target

    def bad(self, df: pd.DataFrame) -> np.ndarray:
        """Boolean per completed-or-not request: True if it counts against the SLO."""
        good = df["outcome"].isin(list(self.good)).to_numpy()
        if self.sli == "latency":
            good = good & (df["latency"].to_numpy() <= self.latency_threshold_s)
        return ~good


@dataclass(frozen=True)
class BurnRateAlert:
    """Fires when the burn rate over ``long_s`` (and over ``short_s`` unless None) is at least
    ``burn_rate``. Windows in SLO seconds; ``severity`` is "page" or "ticket"."""

    name: str
    long_s: float
    burn_rate: float
    short_s: float | None = None
    severity: str = "page"

    def __post_init__(self) -> None:
        _pos(f"{self.name}: long_s", self.long_s)
        _pos(f"{self.name}: burn_rate", self.burn_rate)
        if self.short_s is not None:
            _pos(f"{self.name}: short_s", self.short_s)
            if not self.short_s < self.long_s:
                raise ValueError(f"{self.name}: short_s must be < long_s, got {self.short_s} >= {self.long_s}")
        if self.severity not in ("page", "ticket"):
            raise ValueError(f"{self.name}: severity must be 'page' or 'ticket', got {self.severity!r}")

    def budget_at_fire(self, slo: SLO) -> float:
        """Fraction of the budget spent in the long window when it first reaches the threshold:
        ``burn_rate · long_s / window_s`` (the Workbook's 2 %, 5 %, 10 %)."""
        return self.burn_rate * self.long_s / slo.window_s


def workbook_policy(window_s: float = 30 * DAY, *, short_ratio: float = 1 / 12) -> tuple[BurnRateAlert, ...]:
    """The Workbook's recommended alerts: page on 2 % of the budget in 1 h (burn 14.4 for 30 days)
    or 5 % in 6 h (6), ticket on 10 % in 3 days (1); short windows 1/12 of the long ones
    (5 min, 30 min, 6 h). For another compliance window the burn rates keep those fractions."""
    _pos("window_s", window_s)
    tiers = (("page 1h/5m", HOUR, 0.02, "page"), ("page 6h/30m", 6 * HOUR, 0.05, "page"),
             ("ticket 3d/6h", 3 * DAY, 0.10, "ticket"))
    return tuple(BurnRateAlert(name, long, round(frac * window_s / long, 6), long * short_ratio, sev)
                 for name, long, frac, sev in tiers)


# -- the SLI as cumulative counts ------------------------------------------------------------------
@dataclass(frozen=True)
class _Counts:
    t: np.ndarray      # sorted completion times (simulated s)
    bad: np.ndarray    # cumulative bad count, bad[i] = bad among the first i events

    @classmethod
    def of(cls, df: pd.DataFrame, slo: SLO) -> _Counts:
        done = (df["outcome"] != "in_flight").to_numpy()
        t = df["end"].to_numpy()[done]
        b = slo.bad(df)[done]
        order = np.argsort(t, kind="stable")
        return cls(t[order], np.concatenate([[0], np.cumsum(b[order])]))

    def window(self, at: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
        """(requests, bad requests) completed in (at - w, at], per evaluation time."""
        hi = np.searchsorted(self.t, at, side="right")
        lo = np.searchsorted(self.t, at - w, side="right")
        return hi - lo, self.bad[hi] - self.bad[lo]


def _grid(counts: _Counts, step: float, start: float | None, until: float | None) -> np.ndarray:
    _pos("step", step)
    t0 = 0.0 if start is None else start
    t1 = (counts.t[-1] if len(counts.t) else t0) if until is None else until
    return t0 + step * np.arange(int(math.floor((t1 - t0) / step + 1e-9)) + 1)


def burn_rates(df: pd.DataFrame, slo: SLO, windows_s: Sequence[float], *, step: float, time_scale: float = 1.0,
               start: float | None = None, until: float | None = None) -> pd.DataFrame:
    """Burn rate over each window (SLO seconds) at each evaluation time ``t`` (simulated s,
    every ``step`` simulated s): columns ``t`` and ``burn_<w>`` (NaN where the window is empty)."""
    import pandas as pd

    _pos("time_scale", time_scale)
    c = _Counts.of(df, slo)
    at = _grid(c, step, start, until)
    out = {"t": at}
    for w in windows_s:
        n, bad = c.window(at, w / time_scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"burn_{w:g}"] = np.where(n > 0, bad / np.maximum(n, 1), np.nan) / slo.budget
    return pd.DataFrame(out)


def budget_consumed(df: pd.DataFrame, slo: SLO, *, step: float, time_scale: float = 1.0,
                    rate: float | None = None, start: float | None = None,
                    until: float | None = None) -> pd.DataFrame:
    """Fraction of the error budget spent in the compliance window ending at each ``t``:
    bad requests in (t - W, t] over ``b · rate · W``, where the budget in requests assumes the
    run's mean completion ``rate`` (requests per simulated second) over the whole window.
    1.0 means the budget is exhausted. Columns ``t``, ``bad``, ``consumed``."""
    import pandas as pd

    _pos("time_scale", time_scale)
    c = _Counts.of(df, slo)
    at = _grid(c, step, start, until)
    w = slo.window_s / time_scale
    if rate is None:
        span = (c.t[-1] - c.t[0]) if len(c.t) > 1 else 0.0
        rate = (len(c.t) / span) if span > 0 else 0.0
    _, bad = c.window(at, w)
    consumed = bad / (slo.budget * rate * w) if rate > 0 else np.full(len(at), np.nan)
    return pd.DataFrame({"t": at, "bad": bad, "consumed": consumed})


# -- alerts ---------------------------------------------------------------------------------------
def alert_series(df: pd.DataFrame, slo: SLO, alerts: Sequence[BurnRateAlert], *, step: float,
                 time_scale: float = 1.0, start: float | None = None, until: float | None = None) -> pd.DataFrame:
    """Whether each alert is firing at each evaluation time: columns ``t`` and one bool per alert
    name (plus ``page`` and ``ticket``: any alert of that severity firing)."""
    import pandas as pd

    _pos("time_scale", time_scale)
    if len({a.name for a in alerts}) != len(alerts):
        raise ValueError("alert names must be distinct")
    c = _Counts.of(df, slo)
    at = _grid(c, step, start, until)
    thr = slo.budget
    out: dict[str, np.ndarray] = {"t": at}
    for a in alerts:
        fires = np.ones(len(at), dtype=bool)
        for w in (a.long_s, a.short_s):
            if w is None:
                continue
            n, bad = c.window(at, w / time_scale)
            # bad/n >= B·b, written without a division; a small slack absorbs float rounding.
            fires &= (n > 0) & (bad >= a.burn_rate * thr * n * (1 - 1e-12))
        out[a.name] = fires
    for sev in ("page", "ticket"):
        names = [a.name for a in alerts if a.severity == sev]
        out[sev] = np.any([out[n] for n in names], axis=0) if names else np.zeros(len(at), dtype=bool)
    return pd.DataFrame(out)


def episodes(series: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Firing episodes from :func:`alert_series`: one row per (alert, fired_at, reset_at);
    ``reset_at`` is NaN if it was still firing at the last evaluation."""
    import pandas as pd

    cols = [c for c in series.columns if c != "t"] if columns is None else list(columns)
    t = series["t"].to_numpy()
    rows = []
    for col in cols:
        f = series[col].to_numpy().astype(np.int8)
        d = np.diff(np.concatenate([[0], f, [0]]))
        for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
            rows.append({"alert": col, "fired_at": t[s], "reset_at": t[e] if e < len(t) else math.nan})
    return pd.DataFrame(rows, columns=["alert", "fired_at", "reset_at"])


def score(eps: pd.DataFrame, incidents: Sequence[tuple[float, float]], *, slack: float = 0.0) -> dict[str, float]:
    """Judge one alert's (or severity's) episodes against the injected incidents (start, end),
    simulated seconds. An episode is *true* if it overlaps [start, end + slack] of an incident
    (``slack``: how long after an incident its errors can still hold a window above threshold,
    e.g. the alert's long window). Returns precision (true episodes / episodes; NaN with none),
    recall (incidents with a true episode / incidents), false episodes and the mean detection
    time (first fire at or after an incident's start, minus that start) and reset time (first
    reset after the incident's end, minus that end) over detected incidents."""
    fired = eps["fired_at"].to_numpy(float)
    reset = np.where(np.isnan(eps["reset_at"].to_numpy(float)), np.inf, eps["reset_at"].to_numpy(float))
    true = np.zeros(len(eps), dtype=bool)
    det, rst = [], []
    for s, e in incidents:
        hit = (fired <= e + slack) & (reset > s)
        true |= hit
        if hit.any():
            det.append(max(0.0, fired[hit].min() - s))
            after = reset[hit]
            rst.append(max(0.0, after.max() - e))
    n_inc = len(incidents)
    return {
        "episodes": float(len(eps)),
        "false_episodes": float((~true).sum()),
        "precision": float(true.mean()) if len(eps) else math.nan,
        "recall": float(len(det) / n_inc) if n_inc else math.nan,
        "detection_s": float(np.mean(det)) if det else math.nan,
        "reset_s": float(np.mean(rst)) if rst else math.nan,
    }


# -- closed forms (the Workbook's), for tests and for reading results ------------------------------
def detection_time(error_ratio: float, budget: float, window_s: float, burn_rate: float) -> float:
    """``B·b·w/e`` if ``e >= B·b`` else ``inf`` (errors start after a clean window)."""
    return burn_rate * budget * window_s / error_ratio if error_ratio >= burn_rate * budget else math.inf


def reset_time(error_ratio: float, budget: float, window_s: float, burn_rate: float) -> float:
    """After an error ratio ``e`` that filled the window stops: ``w·(1 - B·b/e)`` (about ``w``)."""
    return window_s * max(0.0, 1 - burn_rate * budget / error_ratio)


def budget_fraction(error_ratio: float, duration_s: float, slo: SLO) -> float:
    """Budget spent by ``duration_s`` (SLO seconds) at ratio ``e``: ``e·d/(b·W)``."""
    return error_ratio * duration_s / (slo.budget * slo.window_s)


# -- deterministic synthetic streams ----------------------------------------------------------------
def synthetic_requests(duration_s: float, rate: float, segments: Sequence[tuple[float, float, float]] = (),
                       *, baseline: float = 0.0, target: str = "api", op: str = "get") -> pd.DataFrame:
    """A request frame with evenly spaced requests (``rate`` per s, zero latency) whose errors
    follow ``segments`` of (start, end, error ratio) over ``baseline``, placed deterministically
    so every interval holds its ratio to within one request (``floor((i+1)e) > floor(i e)``)."""
    import pandas as pd

    _pos("duration_s", duration_s)
    _pos("rate", rate)
    t = np.arange(int(round(duration_s * rate))) / rate
    e = np.full(len(t), float(baseline))
    for s, end, ratio in segments:
        if not 0 <= ratio <= 1:
            raise ValueError(f"error ratio must be in [0, 1], got {ratio!r}")
        e[(t >= s) & (t < end)] = ratio
    i = np.arange(len(t))
    bad = np.floor((i + 1) * e + 1e-9) > np.floor(i * e + 1e-9)
    outcome = pd.Categorical(np.where(bad, "error", "ok"), categories=["in_flight", *dict.fromkeys(
        ["ok", "error"])])
    return pd.DataFrame({"client": "synthetic", "target": target, "op": op, "start": t, "end": t,
                         "latency": np.zeros(len(t)), "outcome": outcome})


__all__ = ["DAY", "HOUR", "MINUTE", "SLO", "BurnRateAlert", "alert_series", "budget_consumed", "budget_fraction",
           "burn_rates", "detection_time", "episodes", "reset_time", "score", "synthetic_requests",
           "workbook_policy"]
