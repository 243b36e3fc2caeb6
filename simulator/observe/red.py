"""RED per service and endpoint over time: Rate, Errors, Duration (Tom Wilkie's RED method).

Built on :func:`simulator.metrics.red` (one group) and :func:`simulator.metrics.latency_percentiles`;
this adds the grouping (by ``target`` node and ``op`` by default, or any columns, e.g. a
``service`` column derived from the node name) and an error count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulator.metrics import red as _red

if TYPE_CHECKING:
    import pandas as pd


def red_by(df: pd.DataFrame, window: float = 1.0, by: str | Sequence[str] = ("target", "op"),
           service_of: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (group, window): ``rate`` (completed requests/s), ``error_rate`` (fraction
    not ok), ``errors`` (count), ``p50``, ``p99`` (all completed requests' latency).
    ``service_of`` maps a target node to its service name and adds a ``service`` column
    (e.g. ``{"db-0": "db", "db-1": "db"}``), which ``by`` may then name."""
    import pandas as pd

    keys = [by] if isinstance(by, str) else list(by)
    if service_of is not None:
        df = df.assign(service=df["target"].astype(str).map(service_of).fillna(df["target"].astype(str)))
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ValueError(f"red_by: no column(s) {missing}; columns: {list(df.columns)}")
    parts = []
    for key, g in df.groupby(keys, observed=True):
        r = _red(g, window)
        r["errors"] = (r["error_rate"] * r["rate"] * window).round().astype(int)
        key = key if isinstance(key, tuple) else (key,)
        parts.append(r.assign(**dict(zip(keys, key))))
    cols = [*keys, "window", "rate", "error_rate", "errors", "p50", "p99"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]
