"""Countermeasures for a saga's missing isolation, and a record of what happens without them.

A saga is ACD, not ACID (Garcia-Molina & Salem, "Sagas", SIGMOD 1987): each step commits locally, so
other transactions see a saga's intermediate state and may act on it. Richardson, "Microservices
Patterns" (2018), sec. 4.3 "Handling the lack of isolation", names the anomalies and the cures:

- **dirty read**: a reader (or another saga) sees a value a saga later compensates — here a stock
  count with a reservation that is released again when the order fails;
- **lost update**: one saga overwrites another's change without reading it — here an absolute write
  ``stock := s - qty`` computed from a read ``s`` made steps earlier, or a compensation that restores
  the before-image ``stock := s`` over reservations other sagas made meanwhile;
- **semantic lock** (``semantic_lock``): the first step marks the item *pending* (owner: the saga)
  until the saga ends; another saga on the item gets ``locked`` and waits (the orchestrator retries it
  with backoff until its ``saga_timeout_s``, then rejects the order); a reader that finds the item
  pending is answered ``pending`` and asks again after ``reader_poll_s``;
- **commutative updates** (``commutative``): reserve is ``stock -= qty`` and its compensation
  ``stock += qty`` on the value current at that instant, so neither the order of updates nor that of
  compensations matters;
- **re-reading values** (``reread``): the reserving step re-reads the stock before writing (before the
  pivot) and aborts the saga — compensating what it did — if it changed since the saga's first read
  (Fowler's optimistic offline lock).

:class:`IsolatedInventory` takes over the inventory node of a :class:`~models.transactions.shop.Shop`
and serves two saga steps — ``inventory.check`` (read the stock, and take the semantic lock) and
``inventory.reserve`` (write it) — plus ``stock.get`` for :class:`StockReader` clients. Every write of
a stock row gets a unique version, so the reads and writes of readers, sagas (one transaction each,
``ok`` if approved, ``fail`` if compensated) and compensations form an rw-register history with
unique writes: :meth:`IsolatedInventory.history` feeds Elle's checker (G1a = dirty read, i.e. a read of
a write by a transaction that aborted; ``lost-update``), and :meth:`IsolatedInventory.tally` counts
the same anomalies directly from the versions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from simulator import Exponential, Message
from simulator.history import History

from .local import LocalTxn
from .saga import SagaStep
from .shop import SAGA_DO, SAGA_UNDO, BusinessError

if TYPE_CHECKING:
    from simulator import Simulation

    from .world import TxWorld

MODES = ("none", "semantic_lock", "commutative", "reread")
READ, RELEASE = "stock.get", "stock.release"
CHECK, RESERVE = "inventory.check", "inventory.reserve"
# read the stock, charge, reserve, then ship (the pivot: a refusal there compensates everything before it)
STEPS = (SagaStep("inventory", name=CHECK), SagaStep("payment"), SagaStep("inventory", name=RESERVE),
         SagaStep("shipping", kind="pivot"))


class _Locked(Exception):
    pass


class IsolatedInventory:
    """The inventory service with one countermeasure (``mode``, one of :data:`MODES`)."""

    def __init__(self, world: TxWorld, mode: str = "none") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.world, self.mode = world, mode
        self.sim = world.sim
        self.part = world.shop.participants["inventory"]
        self.node, self.store = self.part.node, self.part.store
        for op, fn in ((SAGA_DO, self._do), (SAGA_UNDO, self._undo), (READ, self._read), (RELEASE, self._release)):
            self.node.on(op, fn)
        self.orchestrator = world.service
        self.orchestrator.on_finish.append(self._saga_finished)
        # measurements (outside the simulated world)
        self._ver = 0
        self.writer: dict[int, tuple[str, Any]] = {}  # version -> ("saga" | "comp" | "init", saga id)
        self.reads: list[tuple[float, str, Any, int, int]] = []  # (t, who, id, item, version): readers and checks
        self.lost_updates = 0
        self.events: list[tuple[float, int, dict]] = []  # (time, seq, Elle event)
        self._saga_ops: dict[Any, list] = defaultdict(list)
        self._saga_inv: dict[Any, int] = {}
        for k, _v in sorted(self.store.items()):
            if k[0] == "stock":
                ver = self._new_version("init", None)
                self.store.data[("ver", k[1])] = ver
                self._event("init", "ok", [["w", _key(k[1]), ver]])

    # -- recording ----------------------------------------------------------------------------------
    def _new_version(self, kind: str, sid: Any) -> int:
        self._ver += 1
        self.writer[self._ver] = (kind, sid)
        return self._ver

    def _event(self, process: Any, type_: str, ops: list) -> None:
        e = {"process": process, "type": "invoke", "f": "txn", "value": ops, "time": self.sim.now}
        if type_ != "invoke":
            self.events.append((self.sim.now, len(self.events), e))
            e = dict(e, type=type_)
        self.events.append((self.sim.now, len(self.events), e))

    # -- saga steps --------------------------------------------------------------------------------
    def _do(self, msg: Message) -> Any:
        sid, step, order = msg.payload
        work = self._check if step == CHECK else self._reserve

        def applied() -> None:
            if step == RESERVE:
                self.part.effect(order.id, +1)

        return self.part.saga_step(msg, lambda txn: work(txn, sid, order), applied, dedupe=True,
                                   conflicts=(_Locked,))

    def _check(self, txn: LocalTxn, sid: Any, o: Any) -> None:
        if self.mode == "semantic_lock":
            holder = txn.read(("lock", o.item))
            if holder is not None and holder != sid:
                raise _Locked()
            txn.write(("lock", o.item), sid)
        s, ver = txn.read(("stock", o.item), 0), txn.read(("ver", o.item))
        if sid not in self._saga_inv:
            self._saga_inv[sid] = len(self.events)
            self._event(f"saga{sid}", "invoke", [])
        if self.mode == "commutative":  # the write will not depend on this read: a read-only txn of its own
            self._event(f"check{sid}", "ok", [["r", _key(o.item), ver]])
            self.reads.append((self.sim.now, "check", sid, o.item, ver))
        else:
            self._saga_ops[sid].append(["r", _key(o.item), ver])
            self.reads.append((self.sim.now, "saga", sid, o.item, ver))
        if s < o.qty:
            raise BusinessError("out_of_stock")
        txn.write(("ctx", sid), (s, ver))

    def _reserve(self, txn: LocalTxn, sid: Any, o: Any) -> None:
        s, ver = txn.read(("ctx", sid))
        cur, cur_ver = txn.read(("stock", o.item), 0), txn.read(("ver", o.item))
        if self.mode == "commutative":
            if cur < o.qty:
                raise BusinessError("out_of_stock")
            new = cur - o.qty  # an increment on the current value: commutes with everyone else's
        else:
            if cur_ver != ver:
                if self.mode == "reread":
                    raise BusinessError("changed")  # the value read at step 1 is stale: abort before the pivot
                self.lost_updates += 1  # an absolute write over changes this saga never read
            new = s - o.qty
        nv = self._new_version("saga", sid)
        txn.write(("stock", o.item), new)
        txn.write(("ver", o.item), nv)
        txn.write(("res", o.id), o.qty)
        txn.write(("before", sid), (s, nv))
        self._saga_ops[sid].append(["w", _key(o.item), nv])

    def _undo(self, msg: Message) -> Any:
        sid, step, order = msg.payload

        def undo(txn: LocalTxn) -> bool:
            key = ("saga", sid, step)
            st = txn.read(key)
            if st == "compensated":
                return False
            txn.write(key, "compensated")
            if step == CHECK:
                if self.mode == "semantic_lock" and txn.read(("lock", order.item)) == sid:
                    txn.delete(("lock", order.item))
                return False
            rec = txn.read(("before", sid))
            if rec is None or not txn.read(("res", order.id)):
                return False
            before, own = rec
            cur = txn.read(("stock", order.item), 0)
            if self.mode == "commutative":
                new = cur + order.qty
            else:
                if txn.read(("ver", order.item)) != own:
                    self.lost_updates += 1  # restoring the before-image erases others' updates since
                new = before
            nv = self._new_version("comp", sid)
            txn.write(("stock", order.item), new)
            txn.write(("ver", order.item), nv)
            txn.delete(("res", order.id))
            self._event(f"comp{sid}", "ok", [["w", _key(order.item), nv]])
            return True

        def go() -> str:
            if self.store.run(("saga-undo", sid, step), undo):
                self.part.effect(order.id, -1)
            return "ok"

        return self.part.later(msg, go)

    # -- semantic lock release and the saga's end --------------------------------------------------
    def _saga_finished(self, sid: Any, status: str) -> None:
        if sid in self._saga_inv:
            ops = self._saga_ops.pop(sid, [])
            inv = self.events[self._saga_inv.pop(sid)][2]
            inv["value"] = [[f, k, None if f == "r" else v] for f, k, v in ops]
            inv["skip"] = not ops  # nothing to check (e.g. a commutative saga that never reserved)
            if ops:
                    self._event_done(f"saga{sid}", "ok" if status == "APPROVED" else "fail", ops)
        if self.mode == "semantic_lock" and status == "APPROVED":
            orch = self.orchestrator
            item = self.world.service.records[sid].order.item

            def send(attempt: int) -> None:
                def done(outcome: str, _v: Any) -> None:
                    if outcome != "ok":
                        orch.node.after(0.05, lambda: send(attempt + 1))

                orch.node.call(self.node.name, RELEASE, (sid, item), orch.config.step_timeout_s, done)

            send(1)

    def _event_done(self, process: Any, type_: str, ops: list) -> None:
        e = {"process": process, "type": type_, "f": "txn", "value": ops, "time": self.sim.now}
        self.events.append((self.sim.now, len(self.events), e))

    def _release(self, msg: Message) -> Any:
        sid, item = msg.payload

        def go() -> str:
            self.store.run(("release", sid), lambda t: t.delete(("lock", item)) if t.read(("lock", item)) == sid
                           else None)
            return "ok"

        return self.part.later(msg, go)

    # -- reads -----------------------------------------------------------------------------------
    def _read(self, msg: Message) -> Any:
        reader, rid, item = msg.payload

        def go() -> Any:
            if self.mode == "semantic_lock" and self.store.get(("lock", item)) is not None:
                return ("pending", None)
            ver = self.store.get(("ver", item))
            self.reads.append((self.sim.now, "reader", (reader, rid), item, ver))
            self._event(f"{reader}{rid}", "ok", [["r", _key(item), ver]])
            return ("value", self.store.get(("stock", item)))

        return self.part.later(msg, go)

    # -- analysis ------------------------------------------------------------------------------------
    def history(self) -> History:
        """The rw-register history (sagas, compensations, readers) in real-time order, for
        :func:`simulator.history.elle.check_transactions`; unfinished sagas stay open (indefinite)."""
        h = History()
        open_inv: dict[Any, int] = {}
        for _t, _s, e in sorted(self.events, key=lambda x: (x[0], x[1])):
            if e.get("skip"):
                continue
            if e["type"] == "invoke":
                open_inv[e["process"]] = h.invoke(e["process"], "txn", None, e["value"], e["time"])
            else:
                h.complete(open_inv.pop(e["process"]), e["type"], e["time"], e["value"])
        return h

    def tally(self) -> dict[str, float]:
        """Dirty reads (reads of a version a saga wrote and then compensated), by readers and by the sagas'
        first steps — those that went on to commit, or all of them under commutative updates, where the
        first read is a transaction of its own (Elle judges committed readers only) — lost updates
        (absolute writes over a version the writer never read), and the stock error:
        sum over items of |final stock - (initial - units of approved orders)|."""
        recs = self.world.service.records
        aborted = {v for v, (kind, sid) in self.writer.items() if kind == "saga" and recs[sid].status == "REJECTED"}
        dirty_r = sum(1 for _t, who, _i, _it, v in self.reads if who == "reader" and v in aborted)
        dirty_s = sum(1 for _t, who, sid, _it, v in self.reads if v in aborted and (
            who == "check" or (who == "saga" and recs[sid].status == "APPROVED")))
        n_r = sum(1 for r in self.reads if r[1] == "reader")
        cfg = self.world.shop.config
        sold: dict[int, int] = defaultdict(int)
        for r in recs.values():
            if r.status == "APPROVED":
                sold[r.order.item] += r.order.qty
        err = sum(abs(self.store.get(("stock", i), 0) - (cfg.stock - sold[i])) for i in range(cfg.items))
        return {"reads": n_r, "dirty_reads": dirty_r, "dirty_read_frac": dirty_r / max(1, n_r),
                "saga_dirty_reads": dirty_s, "lost_updates": self.lost_updates, "stock_error": err}


def _key(item: int) -> str:
    return f"stock{item}"


class StockReader:
    """A storefront reading stock rows at ``rate`` per second (Poisson, uniform over items). A ``pending``
    answer (semantic lock) is asked again after ``poll_s``; ``latencies`` hold first ask -> value."""

    def __init__(self, sim: Simulation, items: int, *, rate: float, name: str = "storefront", poll_s: float = 0.02,
                 stop_at: float = math.inf, timeout_s: float = 1.0) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be reads per second > 0, got {rate!r}")
        if not (isinstance(poll_s, (int, float)) and math.isfinite(poll_s) and poll_s > 0):
            raise ValueError(f"poll_s must be a number of seconds > 0, got {poll_s!r}")
        self.sim, self.items, self.name, self.poll_s, self.stop_at = sim, items, name, poll_s, stop_at
        self.timeout_s = timeout_s
        self.node = sim.nodes.get(name) or sim.node(name)
        self.latencies: list[float] = []
        self.pending_answers = 0
        self.n = 0
        self._gap = sim.sampler(Exponential(1.0 / rate), f"isolation.{name}.arrivals")
        self._pick = sim.uniforms(f"isolation.{name}.picks")
        sim.at(self._gap(), self._arrive)

    def _arrive(self) -> None:
        if self.sim.now >= self.stop_at:
            return
        self.sim.at(self._gap(), self._arrive)
        self.n += 1
        self._ask(self.n, int(self._pick() * self.items), self.sim.now)

    def _ask(self, rid: int, item: int, t0: float) -> None:
        def done(outcome: str, value: Any) -> None:
            if outcome == "ok" and value[0] == "value":
                self.latencies.append(self.sim.now - t0)
            elif outcome == "ok":
                self.pending_answers += 1
                self.node.after(self.poll_s, lambda: self._ask(rid, item, t0))
            else:
                self.node.after(self.poll_s, lambda: self._ask(rid, item, t0))

        self.node.call("inventory", READ, (self.name, rid, item), self.timeout_s, done)
