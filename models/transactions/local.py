"""Local transactions: a small transactional key-value store owned by one service node.

Each service owns its data (Richardson, "Microservices Patterns", ch. 2 "Database per
service") in a :class:`LocalStore` with local ACID transactions:

- **Atomic**: a :class:`LocalTxn` buffers its writes and applies them all at :meth:`~LocalTxn.commit`
  (one instant of simulated time) or none of them (:meth:`~LocalTxn.abort`, or a crash before commit).
- **Isolated**: strict two-phase locking with exclusive locks and the *no-wait* rule (Bernstein,
  Hadzilacos & Goodman, "Concurrency Control and Recovery in Database Systems", 1987, ch. 3): a
  transaction that reads or writes a key locked by another owner gets :class:`LockConflict` at once
  instead of waiting, so there are no deadlocks. A transaction that commits at the instant it
  starts never holds a lock across simulated time; only a *prepared* transaction (2PC) does.
- **Durable**: with ``durable=True`` the data lives in ``node.durable`` and survives a crash; with
  ``durable=False`` it lives in ``node.state`` and a crash empties it. Locks are volatile, except
  those of prepared transactions, which :meth:`LocalStore.prepare` persists with their write set
  and a recovering node takes again (a prepared participant stays prepared across a crash).

Lock-hold intervals are recorded in ``store.lock_holds`` as ``(owner, acquired_at, released_at)``
(a crash ends the volatile ones), for the 2PC lock-hold metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator import Node

_ABSENT = object()


class LockConflict(Exception):
    """A key is locked by another transaction (no-wait: the caller aborts instead of waiting)."""

    def __init__(self, key: Hashable, holder: Hashable) -> None:
        super().__init__(f"key {key!r} is locked by {holder!r}")
        self.key, self.holder = key, holder


class LocalStore:
    """A service's key-value store with local transactions (see the module docstring)."""

    def __init__(self, node: Node, *, durable: bool = True, name: str = "kv") -> None:
        self.node, self.durable, self.name = node, bool(durable), name
        self.locks: dict[Hashable, Hashable] = {}  # key -> owner
        self._locked_at: dict[Hashable, float] = {}  # owner -> when it took its first lock
        self.lock_holds: list[tuple[Hashable, float, float]] = []
        self.commits = self.aborts = self.conflicts = 0
        self.on_write: list[Callable[[Hashable, Any], None]] = []  # observers (invariant checkers)
        self._init_data()
        node.on_crash(self._crashed)
        node.on_recover(self._recovered)

    # -- state across crashes -------------------------------------------------------------------
    def _init_data(self) -> None:
        home = self.node.durable if self.durable else self.node.state
        self.data: dict = home.setdefault(f"{self.name}.data", {})
        self.prepared: dict = self.node.durable.setdefault(f"{self.name}.prepared", {})  # owner -> (writes, keys)

    def _crashed(self) -> None:
        now = self.node.env.now
        for owner, t in self._locked_at.items():
            self.lock_holds.append((owner, t, now))
        self.locks.clear()
        self._locked_at.clear()

    def _recovered(self) -> None:
        self._init_data()
        now = self.node.env.now
        for owner, (_writes, keys) in self.prepared.items():  # a prepared txn keeps its locks
            for k in keys:
                self.locks[k] = owner
            self._locked_at[owner] = now

    def held_since(self) -> list[float]:
        """When each owner holding locks now took its first one."""
        return list(self._locked_at.values())

    # -- reads outside transactions (an observer's snapshot; no locks) ----------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        """The committed value of ``key`` (``default`` if absent), read outside any transaction,
        taking no lock.
        """
        return self.data.get(key, default)

    def items(self) -> Iterable[tuple[Hashable, Any]]:
        """The committed ``(key, value)`` pairs, as a live view."""
        return self.data.items()

    # -- transactions -------------------------------------------------------------------------
    def begin(self, owner: Hashable) -> LocalTxn:
        """Start a transaction for ``owner``; it locks each key it touches (no-wait: a conflict
        raises ``LockConflict``).
        """
        return LocalTxn(self, owner)

    def run(self, owner: Hashable, fn: Callable[[LocalTxn], Any]) -> Any:
        """Run ``fn(txn)`` as one transaction committed at once; any exception aborts it (re-raised)."""
        txn = self.begin(owner)
        try:
            result = fn(txn)
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return result

    def _lock(self, key: Hashable, owner: Hashable) -> None:
        holder = self.locks.get(key)
        if holder is None:
            self.locks[key] = owner
            self._locked_at.setdefault(owner, self.node.env.now)
        elif holder != owner:
            self.conflicts += 1
            raise LockConflict(key, holder)

    def _release(self, owner: Hashable) -> None:
        for k in [k for k, o in self.locks.items() if o == owner]:
            del self.locks[k]
        t = self._locked_at.pop(owner, None)
        if t is not None and self.node.env.now > t:  # instantaneous local txns hold nothing across time
            self.lock_holds.append((owner, t, self.node.env.now))

    def _apply(self, writes: dict) -> None:
        for k, v in writes.items():
            if v is _ABSENT:
                self.data.pop(k, None)
            else:
                self.data[k] = v
            for fn in self.on_write:
                fn(k, None if v is _ABSENT else v)

    # -- prepared transactions (2PC participants) ---------------------------------------------------
    def prepare(self, txn: LocalTxn) -> None:
        """Persist ``txn``'s write set and lock set: it can now commit or abort even after a crash."""
        self.prepared[txn.owner] = (dict(txn.writes), tuple(txn.keys))
        txn.done = True

    def commit_prepared(self, owner: Hashable) -> bool:
        """Apply a prepared transaction's writes and release its locks; False if none is prepared."""
        rec = self.prepared.pop(owner, None)
        if rec is None:
            return False
        self._apply(rec[0])
        self._release(owner)
        self.commits += 1
        return True

    def abort_prepared(self, owner: Hashable) -> bool:
        """Drop ``owner``'s prepared transaction (2PC's abort) and release its locks; False if none
        is prepared.
        """
        rec = self.prepared.pop(owner, None)
        if rec is None:
            return False
        self._release(owner)
        self.aborts += 1
        return True


class LocalTxn:
    """One local transaction: reads see its own writes; every key it touches is locked (no-wait)."""

    __slots__ = ("store", "owner", "writes", "keys", "done")

    def __init__(self, store: LocalStore, owner: Hashable) -> None:
        self.store, self.owner = store, owner
        self.writes: dict = {}
        self.keys: list = []
        self.done = False

    def _touch(self, key: Hashable) -> None:
        if self.done:
            raise RuntimeError(f"transaction {self.owner!r} already finished")
        if key not in self.keys:
            self.store._lock(key, self.owner)
            self.keys.append(key)

    def read(self, key: Hashable, default: Any = None) -> Any:
        """``key``'s value as this transaction sees it (its own writes first), locking the key."""
        self._touch(key)
        v = self.writes.get(key, _ABSENT)
        if v is _ABSENT:
            return self.store.data.get(key, default)
        return v

    def write(self, key: Hashable, value: Any) -> None:
        """Buffer ``key = value`` until commit, locking the key."""
        self._touch(key)
        self.writes[key] = value

    def delete(self, key: Hashable) -> None:
        """Buffer the deletion of ``key`` until commit, locking the key."""
        self._touch(key)
        self.writes[key] = _ABSENT

    def commit(self) -> None:
        """Apply every buffered write at once and release the locks (atomic, durable if the store
        is).
        """
        self.store._apply(self.writes)
        self.store._release(self.owner)
        self.store.commits += 1
        self.done = True

    def abort(self) -> None:
        """Discard the buffered writes and release the locks; a no-op once finished."""
        if not self.done:
            self.store._release(self.owner)
            self.store.aborts += 1
            self.done = True
