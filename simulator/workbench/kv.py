"""Maelstrom's key-value workloads: ``lin-kv``, ``txn-rw-register`` and ``txn-list-append``.

Each follows jepsen-io/maelstrom ``doc/workloads.md`` and ``src/maelstrom/workload/`` (``lin_kv.clj``,
``txn_rw_register.clj``, ``txn_list_append.clj``): the same request and reply bodies, the same
generators (Jepsen's ``jepsen.tests.linearizable-register``; Elle's ``elle.txn/wr-txns``), the same
error rules (``maelstrom.client/with-errors``: a definite error is ``fail``; a timed-out lin-kv read is
``fail``, every other timeout ``info``) and checkers of the same kind, splitbrain's own:

- ``lin-kv``: linearizability per key against the ``cas-register`` model. Maelstrom hands Knossos
  the history, and Knossos drops every ``fail`` (it did not happen). Here a cas that failed with
  22 *precondition-failed* is kept as information — the server evaluated the precondition, so the
  value differed from ``from`` at some instant inside its interval (Porcupine's etcd model) — and
  every other failure (11 *temporarily-unavailable*, 20 on a read, ...) is dropped, as Knossos does:
  it never ran, so it says nothing about the value. (Found by hunting our own Raft: a cas refused
  with 11 by a server that knew no leader was taken as "the value was not 4" and failed a correct
  history.) ``valid`` is None when the search gives up (``checker_time_limit_s``).
- ``txn-rw-register`` / ``txn-list-append``: Elle's cycle and non-cycle anomalies
  (:func:`simulator.history.elle.check_transactions`), judged against every model in
  ``TestOptions.consistency_models`` (Maelstrom's ``--consistency-models``, default
  strict-serializable): valid iff no anomaly any of them prohibits was found.

Generator options come from ``TestOptions.extra`` (Maelstrom's CLI flags of the same name):
``per_key_limit`` (lin-kv, Jepsen's default 128), ``key_count`` (10), ``min_txn_length`` (1),
``max_txn_length`` (Maelstrom's default 4), ``max_writes_per_key`` (Maelstrom's default 16) and
``checker_time_limit_s`` (lin-kv's search, default 60 s).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from simulator.history import History
from simulator.history.elle import check_transactions
from simulator.history.linearizable import check_linearizable
from simulator.history.txn.models import MODELS as TXN_MODELS
from simulator.history.txn.models import forbids
from simulator.history.txn.parse import TxnInputError

from .base import Workload, workload
from .protocol import PRECONDITION_FAILED

if TYPE_CHECKING:
    from simulator.history.ops import Op

    from .harness import TestRun


def _opt(extra: dict, name: str, default: float, lo: float, integer: bool = True) -> Any:
    """An option from ``TestOptions.extra``, checked (``ValueError`` names it and the allowed range)."""
    v = extra.get(name, default)
    ok = (isinstance(v, int) if integer else isinstance(v, (int, float)) and math.isfinite(v)) \
        and not isinstance(v, bool) and v >= lo
    if not ok:
        raise ValueError(f"extra[{name!r}]={v!r} is not allowed: need {'an integer' if integer else 'a number'} "
                         f">= {lo}")
    return v


@workload
class LinKV(Workload):
    """Jepsen's linearizable-register test over independent keys, as Maelstrom runs it.

    Jepsen gives each key ``2 x node-count`` threads (``independent/concurrent-generator``), half of them
    reserved for reads (``gen/reserve n r``), the rest a ``gen/mix [w cas cas]``; values are
    ``rand-int 5``; each key takes ``per-key-limit`` x U[0.9, 1) operations, then its threads move on
    to a fresh key. The harness hands each operation to the next free client, so threads are not
    bound to keys or roles here: the ``concurrency // (2 x node-count)`` keys in flight (at least one)
    draw operations in turn at random, each a read with probability 1/2 (the reserved half), else a
    write (1/3) or a cas (2/3) — the same mix and per-key concurrency in expectation."""

    name = "lin-kv"
    doc = ("a linearizable key-value store: read (error 20 if missing), write, cas (22 if from differs); "
           "independent keys, values 0..4, reads/writes/cas; linearizability per key (cas-register model)")
    idempotent = frozenset({"read"})  # maelstrom.workload.lin-kv: (c/with-errors op #{:read} ...)
    # the reference proxies to lin-kv; its "lww" variant to lww-kv (Maelstrom runs every service in
    # every test, so a node may call either)
    services = ("lin-kv", "lww-kv")

    def __init__(self, rng: np.random.Generator, test: TestRun) -> None:
        super().__init__(rng, test)
        extra = test.opts.extra
        self.per_key_limit = _opt(extra, "per_key_limit", 128, 1)
        self.check_time_limit_s = _opt(extra, "checker_time_limit_s", 60.0, 1e-3, integer=False)
        self.groups = max(1, test.opts.clients // (2 * test.opts.node_count))
        self.next_key = 0
        self.active = [self._fresh() for _ in range(self.groups)]  # [key, operations left]

    def _fresh(self) -> list[int]:
        k = self.next_key
        self.next_key += 1
        return [k, max(1, int(self.per_key_limit * (0.9 + 0.1 * self.rng.random())))]

    def next_op(self) -> tuple[str, Any, Any]:
        g = int(self.rng.integers(self.groups)) if self.groups > 1 else 0
        slot = self.active[g]
        k = slot[0]
        slot[1] -= 1
        if slot[1] <= 0:
            self.active[g] = self._fresh()
        if self.rng.random() < 0.5:
            return "read", k, None
        if int(self.rng.integers(3)) == 0:
            return "write", k, int(self.rng.integers(5))
        return "cas", k, [int(self.rng.integers(5)), int(self.rng.integers(5))]

    def request(self, f: str, key: Any, value: Any) -> dict:
        if f == "read":
            return {"type": "read", "key": key}
        if f == "write":
            return {"type": "write", "key": key, "value": value}
        return {"type": "cas", "key": key, "from": value[0], "to": value[1]}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        want = {"read": "read_ok", "write": "write_ok", "cas": "cas_ok"}[f]
        if reply.get("type") != want:
            raise ValueError(f"expected {want}")
        return reply["value"] if f == "read" else value

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return check_lin_kv(test.history, self.check_time_limit_s)


def _executed(history: Any) -> History:
    """``history`` without the failed operations that never ran (every ``fail`` but a cas refused with
    22 precondition-failed): see the module docstring."""
    h = history
    never_ran = set()  # invocation indices whose failure means it never ran
    pend: dict[Any, int] = {}
    for i in range(len(h)):
        if h.type[i] == "invoke":
            pend[h.process[i]] = i
            continue
        inv = pend.pop(h.process[i], None)
        if inv is not None and h.type[i] == "fail":
            v = h.value[i]
            if not (h.f[i] == "cas" and isinstance(v, dict) and v.get("error") == PRECONDITION_FAILED):
                never_ran.add(inv)
    out = History()
    kept: dict[Any, int | None] = {}  # process -> its open invocation in ``out`` (None: dropped)
    for i in range(len(h)):
        p = h.process[i]
        if h.type[i] == "invoke":
            kept[p] = None if i in never_ran else out.invoke(p, h.f[i], h.key[i], h.value[i], h.time[i])
        elif (new := kept.pop(p, None)) is not None:
            out.complete(new, h.type[i], h.time[i], h.value[i])
    return out


def check_lin_kv(history: Any, time_limit_s: float | None = None) -> dict:
    """Linearizability per key (``cas-register`` model): ``valid`` True/False/None (the search gave up),
    and for the first key that is not linearizable the shrunk counterexample as ``witness``."""
    r = check_linearizable(_executed(history), model="cas-register", time_limit_s=time_limit_s)
    bad = [k for k in r.per_key.values() if k.valid is False]
    unknown = [k.key for k in r.per_key.values() if k.valid is None]
    res: dict[str, Any] = {"valid": r.valid, "anomaly": "not-linearizable" if bad else None, "model": r.model,
                           "keys": r.stats["keys"], "checked_ops": r.stats["checked_ops"],
                           "bad_keys": [k.key for k in bad], "unknown_keys": unknown, "witness": []}
    if bad:
        k = bad[0]
        res["witness_key"] = k.key
        res["witness"] = [o.describe() for o in k.counterexample or ()]
        res["witness_minimal"] = k.minimal
        if k.cut_op is not None:
            res["first_wrong"] = k.cut_op.describe()
    elif unknown:
        res["message"] = r.message
    return res


class _Txn(Workload):
    """Elle's ``wr-txns`` generator (elle.txn; Maelstrom passes its CLI options through): a transaction of
    ``min..max-txn-length`` micro-ops, each a read or a write with probability 1/2, on a key drawn from
    ``key-count`` active keys with Elle's default exponential distribution (key i of the pool is 2^i
    times as likely as the first); write values count 1, 2, ... per key, so writes are unique, and a key
    that has had ``max-writes-per-key`` writes is replaced by a fresh one (as Elle did before it drew
    each key's budget from a Zipf distribution)."""

    idempotent = frozenset()  # maelstrom.workload.txn-*: (c/with-errors op #{} ...): a timeout is info
    write_f: ClassVar[str] = "w"
    elle_workload: ClassVar[str] = "rw-register"
    base = 2.0

    def __init__(self, rng: np.random.Generator, test: TestRun) -> None:
        super().__init__(rng, test)
        extra = test.opts.extra
        self.key_count = _opt(extra, "key_count", 10, 1)
        self.min_len = _opt(extra, "min_txn_length", 1, 1)
        self.max_len = _opt(extra, "max_txn_length", 4, 1)
        if self.max_len < self.min_len:
            raise ValueError(f"extra['max_txn_length']={self.max_len!r} is not allowed: need >= min_txn_length "
                             f"({self.min_len})")
        self.max_writes = _opt(extra, "max_writes_per_key", 16, 1)
        self.active = list(range(self.key_count))
        self.next_value: dict[int, int] = {}
        b, n = self.base, self.key_count
        self.scale = b * (b ** n - 1) / (b - 1)  # elle.txn/key-dist-scale

    def _key_index(self) -> int:
        """elle.txn/rand-key-i, exponential: floor(log_b(U x scale + b) - 1), an index in [0, key-count)."""
        x = math.floor(math.log(self.rng.random() * self.scale + self.base) / math.log(self.base) - 1)
        return min(max(int(x), 0), len(self.active) - 1)

    def next_op(self) -> tuple[str, Any, Any]:
        length = self.min_len + int(self.rng.integers(self.max_len - self.min_len + 1))
        txn: list[list] = []
        while len(txn) < length:
            write = bool(self.rng.random() < 0.5)
            i = self._key_index()
            k = self.active[i]
            if not write:
                txn.append(["r", k, None])
                continue
            v = self.next_value.get(k, 1)
            if v > self.max_writes:  # this key has had its writes: a fresh key takes its place
                self.active[i] = max(self.active) + 1
                del self.next_value[k]
                continue
            self.next_value[k] = v + 1
            txn.append([self.write_f, k, v])
        return "txn", None, txn

    def request(self, f: str, key: Any, value: Any) -> dict:
        return {"type": "txn", "txn": [list(m) for m in value]}  # a copy: the node must not edit the history

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        """The completed transaction; a reply that is not one (other micro-ops, a changed write, a list
        read that is not a list) raises ValueError, so the harness records the operation ``info``."""
        if reply.get("type") != "txn_ok":
            raise ValueError("expected txn_ok")
        got = reply["txn"]
        if not isinstance(got, list) or len(got) != len(value):
            raise ValueError("the txn must have the same micro-ops as the request")
        out = []
        for asked, m in zip(value, got):
            if not isinstance(m, list) or len(m) != 3 or m[0] != asked[0] or m[1] != asked[1]:
                raise ValueError(f"micro-op {m!r} does not answer {asked!r}")
            if m[0] != "r" and m[2] != asked[2]:
                raise ValueError(f"micro-op {m!r} changed the value of {asked!r}")
            if m[0] == "r" and self.write_f == "append" and not (m[2] is None or isinstance(m[2], list)):
                raise ValueError(f"a list-append read must return a list or null, got {m!r}")
            out.append(list(m))
        return out

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return check_txns(test.history, self.elle_workload, test.opts.consistency_models)


def _rank(anomaly: str) -> tuple[int, str]:
    """Anomalies that rule out weaker models first (G0 before G1c before G-single ...), then by name."""
    for i, m in enumerate(reversed(TXN_MODELS)):
        if forbids(m, anomaly):
            return i, anomaly
    return len(TXN_MODELS), anomaly


def check_txns(history: Any, elle_workload: str, consistency_models: tuple[str, ...] | list[str]) -> dict:
    """Elle's check (real-time edges on, as Maelstrom's) against each of ``consistency_models``:
    ``anomaly_types`` are the anomalies found that some of them prohibit (Elle's names: G0, G1a, G1b,
    G1c, G-single, G2-item, incompatible-order, ... with ``-process`` / ``-realtime`` when the cycle
    needs those edges); ``witness`` shows the transactions and the reasoning for the first one."""
    models = list(consistency_models)
    for m in models:
        if m not in TXN_MODELS:
            raise ValueError(f"consistency_models: {m!r} is not one of {', '.join(TXN_MODELS)}")
    try:
        r = check_transactions(history, elle_workload, realtime=True, model=models[0])
    except TxnInputError as e:
        return {"valid": False, "anomaly": "bad-history", "anomaly_types": ["bad-history"],
                "consistency_models": models, "witness": [str(e)]}
    bad = sorted((a for a in r.anomalies if any(forbids(m, a) for m in models)), key=_rank)
    res: dict[str, Any] = {"valid": not bad, "anomaly": bad[0] if bad else None, "anomaly_types": bad,
                           "consistency_models": models, "anomaly_counts": r.counts, "models_ok": r.models_ok,
                           "strongest": r.strongest, "transactions": r.n_txns, "witness": [], "notes": r.notes}
    if bad:
        w = r.anomalies[bad[0]][0]
        res["witness"] = [r.txns.get(t, f"T{t}") for t in w["txns"]] + list(w["explanation"])
    return res


@workload
class TxnRWRegister(_Txn):
    name = "txn-rw-register"
    doc = ("transactions of reads and writes over integer registers: txn [[r, k, null], [w, k, v]] -> txn_ok "
           "with the reads filled in (null: never written); Elle's checker against --consistency-models")
    services = ("lin-kv",)  # the reference needs none; the no-isolation variant keeps its data in lin-kv


@workload
class TxnListAppend(_Txn):
    name = "txn-list-append"
    doc = ("transactions of reads and appends over lists: txn [[r, k, null], [append, k, v]] -> txn_ok with "
           "the lists read filled in (null: never appended); Elle's checker against --consistency-models")
    write_f = "append"
    elle_workload = "list-append"
