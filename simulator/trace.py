"""Message trace for space-time (Lamport) diagrams. Off by default: when off,
``sim.trace`` is None and the hot path pays one ``is not None`` test per event."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("send", "deliver", "drop", "partition", "heal", "crash", "recover")


class Trace:
    """Columnar event list: time, kind, src, dst, op, message id."""

    __slots__ = ("time", "kind", "src", "dst", "op", "msg_id")

    def __init__(self) -> None:
        self.time: list[float] = []
        self.kind: list[str] = []
        self.src: list[str] = []
        self.dst: list[str] = []
        self.op: list[str] = []
        self.msg_id: list[int] = []

    def event(self, t: float, kind: str, src: str, dst: str, op: str, msg_id: int) -> None:
        self.time.append(t)
        self.kind.append(kind)
        self.src.append(src)
        self.dst.append(dst)
        self.op.append(str(op))
        self.msg_id.append(msg_id)

    def __len__(self) -> int:
        return len(self.time)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({
            "time": self.time, "kind": self.kind, "src": self.src, "dst": self.dst,
            "op": self.op, "msg_id": self.msg_id,
        })

    def messages(self) -> pd.DataFrame:
        """One row per message copy sent: send time, and deliver or drop time (NaN if still
        in flight). A duplicated message appears once per copy delivered."""
        import pandas as pd

        f = self.frame()
        sends = f[f["kind"] == "send"][["msg_id", "time", "src", "dst", "op"]].rename(
            columns={"time": "t_send"})
        ends = f[f["kind"].isin(["deliver", "drop"])][["msg_id", "time", "kind"]].rename(
            columns={"time": "t_end", "kind": "fate"})
        m = sends.merge(ends, on="msg_id", how="left")
        m["fate"] = m["fate"].fillna("in_flight")
        return m.reset_index(drop=True) if len(m) else pd.DataFrame(
            columns=["msg_id", "t_send", "src", "dst", "op", "t_end", "fate"])
