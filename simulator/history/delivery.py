"""Delivery histories and a Jepsen-style delivery checker for queues and logs.

A delivery history is a list of plain records ``(event, msg, key, time)`` with ``event`` one of

- ``send``: a producer asked the broker to store message ``msg`` (ids unique per history);
- ``ack``: the producer was told it is stored (definite success);
- ``fail``: the producer was told it is definitely not stored (it may have been stored anyway
  if an earlier attempt timed out: the checker does not trust ``fail`` to mean "absent");
- ``process``: a consumer's processing of ``msg`` *took effect* (its side effect was applied).

Like Jepsen's queue checkers (Kingsbury, "Jepsen: RabbitMQ", 2014; Jepsen's ``total-queue``
checker): every acknowledged send processed 0 times is **lost**, more than once **duplicated**,
exactly once **exactly_once**; a send never acknowledged (timed out, still in flight) but
processed anyway is **unacked_processed** (allowed: the broker may have stored it). Per key,
an **order violation** is a message whose first processing comes after the first processing of
a message sent later with the same key (send order = order of ``send`` events). Latency is the
time from ``send`` to the first ``process``.

:class:`DeliveryLog` records columns (cheap on the hot path); :func:`check_delivery` takes a
``DeliveryLog``, a DataFrame with the four columns, or any iterable of dicts/tuples.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EVENTS = ("send", "ack", "fail", "process")
_CODE = {e: i for i, e in enumerate(EVENTS)}


class DeliveryLog:
    """Columnar record of send/ack/fail/process events (one int code, id, key, time each)."""

    __slots__ = ("event", "msg", "key", "time", "_next_id")

    def __init__(self) -> None:
        self._next_id = 0
        self.event = array("b")
        self.msg = array("q")
        self.key: list[Any] = []
        self.time = array("d")

    def __len__(self) -> int:
        return len(self.event)

    def new_id(self) -> int:
        """A fresh message id (unique in this log)."""
        self._next_id += 1
        return self._next_id

    def skip_ids(self, n: int) -> None:
        """Reserve the next ``n`` ids (they follow the last one :meth:`new_id` returned)."""
        self._next_id += n

    def record(self, event: str, msg: int, key: Any, time: float) -> None:
        self.event.append(_CODE[event])
        self.msg.append(msg)
        self.key.append(key)
        self.time.append(time)

    def extend(self, event: str, msgs, keys, time: float) -> None:
        """Record ``event`` for many messages at one instant (a batch acknowledged or processed)."""
        n = len(msgs)
        self.event.extend(array("b", bytes([_CODE[event]]) * n))
        self.msg.extend(msgs)
        self.key.extend(keys)
        self.time.extend(array("d", [time]) * n)

    def send(self, msg: int, key: Any, time: float) -> None:
        self.record("send", msg, key, time)

    def ack(self, msg: int, key: Any, time: float) -> None:
        self.record("ack", msg, key, time)

    def fail(self, msg: int, key: Any, time: float) -> None:
        self.record("fail", msg, key, time)

    def process(self, msg: int, key: Any, time: float) -> None:
        self.record("process", msg, key, time)

    def frame(self) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        keys = np.asarray(self.key) if self.key and type(self.key[0]) is int else self.key
        if isinstance(keys, np.ndarray) and keys.dtype.kind not in "iu":
            keys = self.key  # mixed or non-integer keys stay Python objects
        codes = np.frombuffer(self.event, dtype=np.int8) if len(self.event) else np.zeros(0, np.int8)
        return pd.DataFrame({"event": pd.Categorical.from_codes(codes, EVENTS),
                             "msg": np.frombuffer(self.msg, dtype=np.int64) if len(self.msg) else np.zeros(0, np.int64),
                             "key": keys,
                             "time": np.frombuffer(self.time, dtype=np.float64) if len(self.time) else np.zeros(0)})


def _frame(history: DeliveryLog | pd.DataFrame | Iterable) -> pd.DataFrame:
    import pandas as pd

    if isinstance(history, DeliveryLog):
        return history.frame()
    if isinstance(history, pd.DataFrame):
        df = history
    else:
        rows = list(history)
        df = pd.DataFrame(rows if not rows or isinstance(rows[0], dict) else
                          [dict(zip(("event", "msg", "key", "time"), r)) for r in rows],
                          columns=["event", "msg", "key", "time"])
    missing = {"event", "msg", "key", "time"} - set(df.columns)
    if missing:
        raise ValueError(f"a delivery history needs columns event, msg, key, time; missing {sorted(missing)}")
    bad = set(df["event"].astype(str).unique()) - set(EVENTS)
    if bad:
        raise ValueError(f"unknown delivery event(s) {sorted(bad)}; allowed: {EVENTS}")
    return df


def delivery_table(history: DeliveryLog | pd.DataFrame | Iterable) -> pd.DataFrame:
    """One row per sent message: ``msg, key, sent_at, acked, acked_at, processed`` (times),
    ``first_processed_at``, ``latency`` (send to first processing), ``verdict`` by processing count
    (``lost``: acked and 0; ``exactly_once``: 1; ``duplicated``: > 1; ``unacked_absent``: not acked
    and 0) and ``unacked_processed`` (not acked, processed anyway)."""
    import numpy as np
    import pandas as pd

    df = _frame(history)
    ev = df["event"].astype(str).to_numpy()
    sends = df[ev == "send"].drop_duplicates("msg")
    t = pd.DataFrame({"msg": sends["msg"].to_numpy(), "key": sends["key"].to_numpy(),
                      "sent_at": sends["time"].to_numpy(dtype=float)})
    t["send_order"] = np.arange(len(t))
    acks = df[ev == "ack"].groupby("msg")["time"].min()
    proc = df[ev == "process"]
    counts = proc.groupby("msg").size()
    first = proc.groupby("msg")["time"].min()
    t["acked"] = t["msg"].isin(acks.index)
    t["acked_at"] = t["msg"].map(acks).astype(float)
    t["processed"] = t["msg"].map(counts).fillna(0).astype(int)
    t["first_processed_at"] = t["msg"].map(first).astype(float)
    t["latency"] = t["first_processed_at"] - t["sent_at"]
    n = t["processed"].to_numpy()
    a = t["acked"].to_numpy()
    t["verdict"] = np.select([a & (n == 0), n == 1, n > 1], ["lost", "exactly_once", "duplicated"], "unacked_absent")
    t["unacked_processed"] = ~a & (n > 0)
    return t


def order_violations(table: pd.DataFrame) -> int:
    """Messages whose first processing came after that of a later-sent message of the same key."""
    done = table.dropna(subset=["first_processed_at"]).sort_values(["first_processed_at", "send_order"])
    order = done["send_order"]
    return int((order < order.groupby(done["key"], sort=False).cummax()).sum())


def check_delivery(history: DeliveryLog | pd.DataFrame | Iterable, *, window_s: float | None = None) -> dict[str, Any]:
    """The verdict on a delivery history: counts, rates, latency and (with ``window_s``) a
    per-window table by send time. Returns a dict; ``valid_at_least_once`` is ``lost == 0``,
    ``valid_at_most_once`` is ``duplicated == 0``; ``valid_exactly_once`` both."""
    import numpy as np
    import pandas as pd

    t = delivery_table(history)
    v = t["verdict"].value_counts()
    acked = int(t["acked"].sum())
    lat = t["latency"].dropna().to_numpy()
    out: dict[str, Any] = {
        "sent": len(t), "acked": acked,
        "lost": int(v.get("lost", 0)), "exactly_once": int(v.get("exactly_once", 0)),
        "duplicated": int(v.get("duplicated", 0)), "unacked_processed": int(t["unacked_processed"].sum()),
        "unacked_absent": int(v.get("unacked_absent", 0)),
        "extra_processings": int((t["processed"] - 1).clip(lower=0).sum()),
        "order_violations": order_violations(t),
        "latency_mean_s": float(lat.mean()) if len(lat) else float("nan"),
        "latency_p99_s": float(np.quantile(lat, 0.99)) if len(lat) else float("nan"),
    }
    out["lost_fraction"] = out["lost"] / acked if acked else 0.0
    out["valid_at_least_once"] = out["lost"] == 0
    out["valid_at_most_once"] = out["duplicated"] == 0
    out["valid_exactly_once"] = out["valid_at_least_once"] and out["valid_at_most_once"]
    if window_s is not None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s!r}")
        w = (t["sent_at"] // window_s) * window_s
        out["windows"] = (pd.crosstab(w, t["verdict"]).rename_axis("window_start").reset_index()
                          .rename_axis(None, axis=1))
    out["table"] = t
    return out
