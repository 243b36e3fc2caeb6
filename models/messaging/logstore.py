"""Columnar storage for the partitioned log (models/messaging/log.py): records stored once per
partition, replicas as runs over them.

Why: a million records as ``(epoch, msg_id, key, pid, seq, sent_at)`` tuples cost ~96 bytes each
plus ~32 bytes per int object (msg_id, key, seq), and the three replicas of a partition hold
references to the same tuples anyway. Here a partition's records live once, in typed columns
(``array``: 8 bytes per msg_id, key, seq and sent_at), with the epoch and producer id stored once
per appended batch (a produce request is appended at one epoch for one producer). A replica's
log is a list of runs ``[store_lo, store_hi)``: a follower's fetch copies a run, not records, and
a truncation (KIP-101) cuts runs. The store is append-only, so a store index always names the
same record and replicas can never disagree about what an index holds; a truncated suffix stays
in the store (unreferenced) — a few records per failover.

A :class:`ReplicaLog` still reads as the old list of 6-tuples (``len``, indexing, slicing,
iteration), so ``LogCluster.log_of`` keeps its contract.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any


class Column:
    """A typed ``array`` while every value appended has exactly the Python type it holds (``int``
    for ``"q"``, ``float`` for ``"d"``), else a plain list (so any value round-trips unchanged)."""

    __slots__ = ("data", "_type")

    def __init__(self, code: str) -> None:
        self.data: array | list = array(code)
        self._type = float if code == "d" else int

    def extend(self, values: Sequence[Any]) -> None:
        """Append ``values``: typed while they are all of the column's type, else the column becomes a list."""
        d = self.data
        if type(d) is array:
            kinds = set(map(type, values))
            if not kinds or kinds == {self._type}:
                try:  # fromlist: twice as fast as extend, and all or nothing
                    d.fromlist(values if type(values) is list else list(values))
                    return
                except OverflowError:  # an int beyond 64 bits
                    pass
            self.data = d = d.tolist()
        d.extend(values)

    def __len__(self) -> int:
        return len(self.data)


class Records:
    """One partition's records, append-only: per record ``msg_id, key, seq, sent_at`` columns;
    per appended batch its first index, epoch and producer id."""

    __slots__ = ("msg", "key", "seq", "sent_at", "batch_lo", "batch_epoch", "batch_pid")

    def __init__(self) -> None:
        self.msg, self.key, self.seq, self.sent_at = Column("q"), Column("q"), Column("q"), Column("d")
        self.batch_lo = array("q")
        self.batch_epoch = array("q")
        self.batch_pid: list[Any] = []

    def __len__(self) -> int:
        return len(self.seq)

    def append(self, epoch: int, pid: Any, msgs: Sequence[Any], keys: Sequence[Any], seqs: Sequence[int],
               times: Sequence[float]) -> tuple[int, int]:
        """Append one batch (equal-length sequences); returns its store range ``(lo, hi)``."""
        lo = len(self.seq)
        if not len(seqs):
            return lo, lo
        self.batch_lo.append(lo)
        self.batch_epoch.append(epoch)
        self.batch_pid.append(pid)
        self.msg.extend(msgs)
        self.key.extend(keys)
        self.seq.extend(seqs)
        self.sent_at.extend(times)
        return lo, lo + len(seqs)

    def batch_of(self, i: int) -> int:
        """Index of the batch holding store position ``i``."""
        return bisect_right(self.batch_lo, i) - 1

    def pieces(self, lo: int, hi: int) -> Iterator[tuple[int, int, int, Any]]:
        """``(lo, hi, epoch, pid)`` for each batch that ``[lo, hi)`` overlaps, in order."""
        b, starts, n = self.batch_of(lo), self.batch_lo, len(self.batch_lo)
        while lo < hi:
            end = starts[b + 1] if b + 1 < n else hi
            end = min(end, hi)
            yield lo, end, self.batch_epoch[b], self.batch_pid[b]
            lo, b = end, b + 1

    def rows(self, lo: int, hi: int) -> list[tuple]:
        """Records ``[lo, hi)`` as ``(epoch, msg_id, key, pid, seq, sent_at)`` tuples."""
        out: list[tuple] = []
        m, k, s, t = self.msg.data, self.key.data, self.seq.data, self.sent_at.data
        for a, b, epoch, pid in self.pieces(lo, hi):
            n = b - a
            out.extend(zip(repeat(epoch, n), m[a:b], k[a:b], repeat(pid, n), s[a:b], t[a:b]))
        return out

    def last_seqs(self, lo: int, hi: int, into: dict) -> None:
        """``into[pid] = seq`` of the last record of each producer id (not None) in ``[lo, hi)``."""
        seq = self.seq.data
        for _a, b, _e, pid in self.pieces(lo, hi):
            if pid is not None:
                into[pid] = seq[b - 1]


class ReplicaLog:
    """One replica's log: runs ``[lo, hi)`` over a partition's :class:`Records`, read as a
    sequence of ``(epoch, msg_id, key, pid, seq, sent_at)`` tuples."""

    __slots__ = ("store", "run_lo", "run_hi", "run_off", "n")

    def __init__(self, store: Records) -> None:
        self.store = store
        self.run_lo: list[int] = []  # store index of each run's first record
        self.run_hi: list[int] = []
        self.run_off: list[int] = []  # log offset of each run's first record
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def _index(self, i: int) -> int:
        """The store index of log offset ``i`` (0 <= i < len)."""
        r = bisect_right(self.run_off, i) - 1
        return self.run_lo[r] + i - self.run_off[r]

    def epoch_at(self, i: int) -> int:
        """The leader epoch of the record at log offset ``i`` (negative counts from the end)."""
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"log offset {i} out of range [0, {self.n})")
        s = self.store
        return s.batch_epoch[s.batch_of(self._index(i))]

    def spans(self, a: int, b: int) -> list[tuple[int, int]]:
        """The store ranges that hold log offsets ``[a, b)`` (clipped to the log), in order."""
        b = min(b, self.n)
        out: list[tuple[int, int]] = []
        if a >= b:
            return out
        r = bisect_right(self.run_off, a) - 1
        while a < b:
            off, lo, hi = self.run_off[r], self.run_lo[r], self.run_hi[r]
            take = min(b, off + hi - lo)
            out.append((lo + a - off, lo + take - off))
            a, r = take, r + 1
        return out

    def add(self, lo: int, hi: int) -> None:
        """Append store range ``[lo, hi)`` (merged into the last run when contiguous)."""
        if hi <= lo:
            return
        if self.run_hi and self.run_hi[-1] == lo:
            self.run_hi[-1] = hi
        else:
            self.run_lo.append(lo)
            self.run_hi.append(hi)
            self.run_off.append(self.n)
        self.n += hi - lo

    def truncate(self, offset: int) -> None:
        """Drop log offsets ``>= offset``."""
        if offset >= self.n:
            return
        if offset <= 0:
            self.run_lo, self.run_hi, self.run_off, self.n = [], [], [], 0
            return
        r = bisect_right(self.run_off, offset - 1) - 1
        del self.run_lo[r + 1:], self.run_hi[r + 1:], self.run_off[r + 1:]
        self.run_hi[r] = self.run_lo[r] + offset - self.run_off[r]
        self.n = offset

    def rows(self, a: int, b: int) -> list[tuple]:
        """Log offsets ``[a, b)`` as tuples (clipped to the log)."""
        out: list[tuple] = []
        for lo, hi in self.spans(max(a, 0), b):
            out.extend(self.store.rows(lo, hi))
        return out

    def last_seqs(self) -> dict:
        """``{pid: seq}`` of each producer id's last record in this log (the idempotence state)."""
        out: dict = {}
        for lo, hi in zip(self.run_lo, self.run_hi):
            self.store.last_seqs(lo, hi, out)
        return out

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            a, b, step = i.indices(self.n)
            rows = self.rows(a, b) if step == 1 else self.rows(0, self.n)[i]
            return rows
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"log offset {i} out of range [0, {self.n})")
        j = self._index(i)
        return self.store.rows(j, j + 1)[0]

    def __iter__(self) -> Iterator[Any]:
        for lo, hi in zip(self.run_lo, self.run_hi):
            yield from self.store.rows(lo, hi)

    def __repr__(self) -> str:
        return f"ReplicaLog({self.n} records in {len(self.run_lo)} run(s))"
