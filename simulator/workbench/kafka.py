"""Maelstrom's ``kafka`` workload and its checker (jepsen-io/maelstrom ``doc/workloads.md`` "Workload:
Kafka", ``src/maelstrom/workload/kafka.clj``; the checker is Jepsen's ``jepsen.tests.kafka`` as Maelstrom
runs it: ``:sub-via #{:assign}``, no transactions). Fly.io's Gossip Glomers challenge 5 is this workload.

Servers keep append-only logs named by string keys; each offset holds one message. RPCs:
``send {key, msg}`` -> ``send_ok {offset}``; ``poll {offsets: {key: offset}}`` -> ``poll_ok {msgs: {key:
[[offset, msg], ...]}}``; ``commit_offsets {offsets}`` -> ``commit_offsets_ok``; ``list_committed_offsets
{keys}`` -> ``list_committed_offsets_ok {offsets}``.

The generator is Maelstrom's: elle's list-append transactions of length 1 (``wr-txns``: read or write at
random, 10 active keys drawn exponentially with base 2, messages 1, 2, ... per key, a key retired for a
fresh one after ``--max-writes-per-key`` 16 sends), a write being a ``send`` and a read a ``poll``; with
probability ``sub-p`` 1/64 an ``assign`` of the op's key comes first (and 1/3 of the time it also takes
every key with sent-but-unpolled messages, Jepsen's ``poll-unseen``). Each client keeps Maelstrom's
state: the offsets it polls from (advanced past what it has seen; on ``assign`` the keys it already
holds keep theirs, new ones start at the committed offset, else 0). ``assign`` is
``list_committed_offsets`` and idempotent (a timeout is ``fail``); every other timeout is ``info`` and
replaces the client, so the new one starts with no keys, as Maelstrom's non-reusable client.
The final phase polls every key from offset 0 on every client (Maelstrom: crash the client, assign all
keys seeking to the beginning, poll).

Two differences from Maelstrom, because the harness runs one RPC per operation: Maelstrom's client
commits each poll's highest offsets inside the poll operation; here a ``commit_offsets`` operation
follows every poll in the generator's sequence and commits what *its* client has polled and not yet
committed (the history then records what was committed, which Maelstrom's does not). And Maelstrom's
final generator polls repeatedly for up to 10 s; here each client polls once, so a node must answer a
poll with every message it holds from the requested offset on, or the rest count as unseen.
Maelstrom's periodic ``crash`` operations (no RPC) are not generated. Options (``TestOptions.extra``):
``kafka_sub_p`` (the assign probability, default 1/64), ``max_writes_per_key`` (default 16, Maelstrom's
``--max-writes-per-key``), ``kafka_check_commits`` (default True; False gives Maelstrom's verdict).

The checker (``check_kafka``) follows ``jepsen.tests.kafka/analysis``; names are Jepsen's:

- ``inconsistent-offsets``: two different messages at one key and offset (from sends and polls);
- ``duplicate``: one message at two offsets of a key;
- ``lost-write``: an acknowledged message below the highest offset any poll read, which no poll read;
- ``unseen``: an acknowledged message no poll ever read (the final polls read everything);
- ``G1a``: a poll read a message whose send failed (definitely did not happen);
- ``int-poll-skip`` / ``int-nonmonotonic-poll``: within one poll, consecutive messages of a key skip a
  message known to exist, or do not advance;
- ``poll-skip`` / ``nonmonotonic-poll``: between a client's successive polls of a key (reset by
  ``assign``, kept for keys it still holds);
- ``nonmonotonic-send``: a client's successive sends to a key go backwards in the log;
- ``nonmonotonic-commit`` (splitbrain's, not Jepsen's: Maelstrom records no committed offsets): a
  ``list_committed_offsets`` answered below an offset whose commit, or an earlier listing, completed
  before it began (a forgotten commit). ``check_kafka(..., commits=False)`` leaves it out.

Offsets are compared as Jepsen does, by *index* in each key's version order (the known offsets, gaps
removed), so sparse offsets are allowed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from simulator.history.ops import Op, freeze

from .base import Workload, workload

if TYPE_CHECKING:
    from .harness import TestRun

ORDER = ("inconsistent-offsets", "duplicate", "lost-write", "G1a", "int-poll-skip", "int-nonmonotonic-poll",
         "poll-skip", "nonmonotonic-poll", "nonmonotonic-send", "nonmonotonic-commit", "unseen")


class _ClientState:
    """Maelstrom's per-client ``offsets`` atom (next offset to poll per assigned key), plus what it
    polled and has not committed yet."""

    __slots__ = ("offsets", "pending")

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}
        self.pending: dict[str, int] = {}


def _option(extra: dict, name: str, default: float, lo: float, hi: float) -> float:
    v = extra.get(name, default)
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi):
        raise ValueError(f"{name}={v!r} is not allowed: need a number in [{lo}, {hi}]")
    return v


@workload
class Kafka(Workload):
    name = "kafka"
    doc = ("Kafka-style append-only logs: send, poll, commit_offsets, list_committed_offsets (via assign); "
           "final polls from offset 0; Jepsen's kafka checker (lost-write, inconsistent-offsets, "
           "poll-skip, nonmonotonic-poll, ...)")
    idempotent = frozenset({"assign"})  # maelstrom.workload.kafka: (c/with-errors op #{:assign})
    services = ("lin-kv",)
    key_count: ClassVar[int] = 10  # elle.txn/wr-txns defaults for :exponential
    key_dist_base: ClassVar[int] = 2

    def __init__(self, rng: np.random.Generator, test: TestRun) -> None:
        super().__init__(rng, test)
        extra = getattr(getattr(test, "opts", None), "extra", None) or {}
        self.sub_p = float(_option(extra, "kafka_sub_p", 1 / 64, 0.0, 1.0))
        self.max_writes = int(_option(extra, "max_writes_per_key", 16, 1, 1_000_000))
        self.check_commits = bool(extra.get("kafka_check_commits", True))
        b, n = self.key_dist_base, self.key_count
        self._scale = (b ** n - 1) * b / (b - 1)
        self.active = list(range(n))
        self.next_msg: dict[int, int] = {}
        self.generated: set[int] = set()
        self._stash: tuple | None = None
        self._commits_due = 0
        self.clients: dict[Any, _ClientState] = defaultdict(_ClientState)
        self.sent: dict[str, int] = {}  # poll-unseen: highest offset sent / polled per key
        self.polled: dict[str, int] = {}
        self._scanned = 0
        self._open: dict[Any, int] = {}

    # -- the generator ------------------------------------------------------------------------------
    def _key_index(self) -> int:
        """elle.txn/rand-key-i, :exponential: key i is base^i times as likely as key 0."""
        b = self.key_dist_base
        i = int(math.floor(math.log(self.rng.random() * self._scale + b) / math.log(b) - 1))
        return min(max(i, 0), len(self.active) - 1)

    def _draw(self) -> tuple[tuple[str, Any, Any], int]:
        while True:
            write = bool(self.rng.random() < 0.5)  # (rand/nth [:r :w])
            i = self._key_index()
            k = self.active[i]
            if not write:
                self.generated.add(k)
                return ("poll", None, {}), k
            v = self.next_msg.get(k, 1)
            if v > self.max_writes:  # this key is used up: a fresh key takes its place, draw again
                self.active[i] = max(self.active) + 1
                continue
            self.next_msg[k] = v + 1
            self.generated.add(k)
            return ("send", str(k), v), k

    def next_op(self) -> tuple[str, Any, Any]:
        if self._commits_due:
            self._commits_due -= 1
            return "commit_offsets", None, {}
        op, k = self._stash if self._stash is not None else self._draw()
        self._stash = None
        if self.rng.random() < self.sub_p:  # interleave-subscribes: the op itself still comes next
            self._stash = (op, k)
            keys = [str(k)]
            if self.rng.random() < 1 / 3:  # poll-unseen
                keys += [u for u in sorted(self.sent, key=int) if u not in keys]
            return "assign", None, keys
        if op[0] == "poll":
            self._commits_due += 1
        return op

    def final_op(self) -> tuple[str, Any, Any]:
        return "poll", "final", None

    # -- the client ---------------------------------------------------------------------------------
    def _catch_up(self) -> None:
        """Jepsen's generator ``update``: fold the completions recorded since the last request into
        the clients' states and the poll-unseen maxima."""
        h = self.test.history
        for i in range(self._scanned, len(h)):
            p, t = h.process[i], h.type[i]
            if t == "invoke":
                self._open[p] = i
                continue
            inv = self._open.pop(p, None)
            if t != "ok" or inv is None:
                continue
            f, st, res = h.f[i], self.clients[p], h.value[i]
            if f == "send":
                k = h.key[i]
                self.sent[k] = max(self.sent.get(k, -1), res)
            elif f == "poll":
                for k, pairs in res.items():
                    if pairs:
                        top = max(o for o, _ in pairs)
                        st.offsets[k] = max(st.offsets.get(k, 0), top + 1)
                        st.pending[k] = max(st.pending.get(k, -1), top)
                        self.polled[k] = max(self.polled.get(k, -1), top)
            elif f == "commit_offsets":
                for k, o in h.value[inv].items():
                    if st.pending.get(k, math.inf) <= o:
                        del st.pending[k]
            elif f == "assign":
                old = st.offsets
                st.offsets = {k: old[k] if k in old else res.get(k, 0) for k in h.value[inv]}
        self._scanned = len(h)
        for k in [k for k, o in self.sent.items() if self.polled.get(k, -1) >= o]:
            del self.sent[k]  # caught up on this key
            self.polled.pop(k, None)

    def prepare(self, process: Any, f: str, key: Any, value: Any) -> Any:
        """The client's own part of the operation, before it is recorded: a poll asks from the
        client's offsets, a commit commits what the client polled (so the history holds both)."""
        self._catch_up()
        st = self.clients[process]
        if f == "poll" and value is not None:
            return dict(st.offsets)
        if f == "commit_offsets":
            return dict(st.pending)
        return value

    def request(self, f: str, key: Any, value: Any) -> dict:
        if f == "send":
            return {"type": "send", "key": key, "msg": value}
        if f == "poll":
            if value is None:  # the final poll: every key from the beginning
                return {"type": "poll", "offsets": {str(k): 0 for k in sorted(self.generated)}}
            return {"type": "poll", "offsets": dict(value)}
        if f == "commit_offsets":
            return {"type": "commit_offsets", "offsets": dict(value)}
        return {"type": "list_committed_offsets", "keys": list(value)}

    def result(self, f: str, key: Any, value: Any, reply: dict) -> Any:
        if f == "send":
            o = reply["offset"]
            if not isinstance(o, int) or isinstance(o, bool):
                raise TypeError(f"offset must be an integer, got {o!r}")
            return o
        if f == "poll":
            msgs = reply["msgs"]
            if not isinstance(msgs, dict):
                raise TypeError("msgs must be a map of keys to [offset, msg] pairs")
            out = {}
            for k in sorted(msgs, key=str):
                pairs = msgs[k]
                if not isinstance(pairs, list) or not all(
                        isinstance(x, list) and len(x) == 2 and isinstance(x[0], int) for x in pairs):
                    raise TypeError(f"msgs[{k!r}] must be a list of [offset, msg] pairs, got {pairs!r}")
                out[str(k)] = [[o, m] for o, m in pairs]
            return out
        if f == "assign":
            offs = reply.get("offsets", {})
            if not isinstance(offs, dict) or not all(isinstance(o, int) for o in offs.values()):
                raise TypeError(f"offsets must be a map of keys to integers, got {offs!r}")
            return {str(k): offs[k] for k in sorted(offs, key=str)}
        return value

    def check(self, ops: list[Op], test: TestRun) -> dict:
        return check_kafka(ops, commits=self.check_commits)


# -- the checker ------------------------------------------------------------------------------------
def _reads(o: Op) -> dict[str, list[tuple[int, Any]]]:
    """An ok poll's [offset, msg] pairs per key (frozen messages)."""
    if o.f != "poll" or o.type != "ok" or not isinstance(o.result, dict):
        return {}
    return {k: [(p[0], freeze(p[1])) for p in v] for k, v in o.result.items()}


class _Order:
    """A key's version order (``jepsen.tests.kafka/version-orders``): ``log`` maps each known offset
    to the messages seen there; indices are positions among known offsets (gaps removed)."""

    def __init__(self, log: dict[int, set]) -> None:
        self.offsets = sorted(log)
        self.log = log
        self.by_index = [min(log[o], key=repr) for o in self.offsets]
        self.by_value = {v: i for i, v in enumerate(self.by_index)}
        self.first: dict[Any, int] = {}
        self.last: dict[Any, int] = {}
        for i, o in enumerate(self.offsets):
            for v in sorted(log[o], key=repr):
                self.first.setdefault(v, i)
                self.last[v] = i

    def delta(self, v1: Any, v2: Any) -> int:
        i1, i2 = self.by_value.get(v1), self.by_value.get(v2)
        return 1 if i1 is None or i2 is None else i2 - i1

    def between(self, v1: Any, v2: Any) -> list:
        return self.by_index[self.by_value[v1] + 1:self.by_value[v2]]


def _step(cases: dict, names: tuple[str, str], k: str, v1: Any, v2: Any, vo: _Order, ops: list[Op]) -> None:
    """Two consecutive reads of key ``k``: a skip if they jump over a known message, nonmonotonic if
    they do not advance (``names``: the skip's and the nonmonotonic's anomaly names)."""
    d = vo.delta(v1, v2)
    if d > 1:
        cases[names[0]].append({"key": k, "delta": d, "skipped": vo.between(v1, v2), "ops": ops})
    elif d < 1:
        cases[names[1]].append({"key": k, "values": [v1, v2], "delta": d, "ops": ops})


def check_kafka(ops: list[Op], *, commits: bool = True) -> dict:
    """Judge a kafka history (see the module docstring): ``valid`` False if any anomaly, None if no
    operation succeeded, else True; ``counts`` per anomaly, ``witness`` a few operations for each."""
    logs: dict[str, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    read_vals: dict[str, set] = defaultdict(set)
    writer: dict[tuple[str, Any], Op] = {}
    readers: dict[tuple[str, Any], Op] = {}
    for o in ops:
        if o.f == "send":
            writer[(o.key, freeze(o.value))] = o
            if o.type == "ok" and isinstance(o.result, int):
                logs[o.key][o.result].add(freeze(o.value))
        for k, pairs in _reads(o).items():
            for off, v in pairs:
                logs[k][off].add(v)
                read_vals[k].add(v)
                readers.setdefault((k, v), o)
    orders = {k: _Order(log) for k, log in logs.items()}
    cases: dict[str, list[dict]] = defaultdict(list)

    for k, vo in sorted(orders.items()):
        for i, off in enumerate(vo.offsets):
            if len(vo.log[off]) > 1:
                vals = sorted(vo.log[off], key=repr)
                cases["inconsistent-offsets"].append({"key": k, "offset": off, "index": i, "values": vals, "ops": [
                    x for x in ops if (x.f == "send" and x.key == k and x.result == off and x.type == "ok")
                    or any(p[0] == off for p in _reads(x).get(k, ()))][:3]})
        counts: dict[Any, list[int]] = defaultdict(list)
        for off in vo.offsets:
            for v in vo.log[off]:
                counts[v].append(off)
        for v, offs in sorted(counts.items(), key=lambda kv: repr(kv[0])):
            if len(offs) > 1:
                cases["duplicate"].append({"key": k, "value": v, "count": len(offs), "offsets": offs,
                                           "ops": [x for x in (writer.get((k, v)), readers.get((k, v))) if x]})
        seen = read_vals.get(k, set())
        bound = max((vo.first[v] for v in seen if v in vo.first), default=-1)
        must = sorted((j, repr(v), v) for v, j in vo.last.items() if j <= bound)  # last seen at or below it
        for i, _, v in must:
            w = writer.get((k, v))
            if v not in seen and w is not None and w.type == "ok":
                top = readers.get((k, vo.by_index[bound]))
                cases["lost-write"].append({"key": k, "value": v, "index": i, "max_read_index": bound,
                                            "ops": [x for x in (w, top) if x]})
    for (k, v), w in sorted(writer.items(), key=lambda kv: (kv[0][0], repr(kv[0][1]))):
        if w.type == "fail" and v in read_vals.get(k, ()):
            cases["G1a"].append({"key": k, "value": v, "ops": [w, readers[(k, v)]]})
        if w.type == "ok" and v not in read_vals.get(k, ()):
            cases["unseen"].append({"key": k, "value": v, "ops": [w]})

    by_proc: dict[Any, list[Op]] = defaultdict(list)
    for o in ops:
        by_proc[o.process].append(o)
        for k, pairs in _reads(o).items():
            for (_, v1), (_, v2) in zip(pairs, pairs[1:]):
                _step(cases, ("int-poll-skip", "int-nonmonotonic-poll"), k, v1, v2, orders[k], [o])
    for p in sorted(by_proc, key=repr):
        last_read: dict[str, Op] = {}
        last_send: dict[str, Op] = {}
        for o in by_proc[p]:
            if o.f == "assign" and o.type != "fail":
                keep = set(o.value or ())
                last_read = {k: x for k, x in last_read.items() if k in keep}
                last_send = {k: x for k, x in last_send.items() if k in keep}
            elif o.f == "poll":
                if o.key == "final":  # Maelstrom: a fresh client, assigned every key from the start
                    last_read = {}
                for k, pairs in _reads(o).items():
                    if not pairs:
                        continue  # nothing read: the client's position did not move
                    if k in last_read:
                        _step(cases, ("poll-skip", "nonmonotonic-poll"), k, _reads(last_read[k])[k][-1][1],
                              pairs[0][1], orders[k], [last_read[k], o])
                    last_read[k] = o
            elif o.f == "send" and o.type in ("ok", "info"):
                k, v = o.key, freeze(o.value)
                if k in last_send and k in orders and orders[k].delta(freeze(last_send[k].value), v) < 1:
                    cases["nonmonotonic-send"].append({"key": k, "values": [freeze(last_send[k].value), v],
                                                       "ops": [last_send[k], o]})
                last_send[k] = o
    if commits:
        cases["nonmonotonic-commit"] = _commit_regressions(ops)
    return _summary(ops, {n: c for n, c in cases.items() if c})


def _commit_regressions(ops: list[Op]) -> list[dict]:
    """Listings of committed offsets below what a commit or a listing that completed before them
    established (real-time order: the earlier one's completion precedes the later one's invocation)."""
    facts = []
    for o in ops:
        if o.type == "ok" and o.f in ("commit_offsets", "assign") and isinstance(o.result, dict):
            facts.extend((o.complete_time, k, off, o) for k, off in sorted(o.result.items()))
    facts.sort(key=lambda x: (x[0], x[1]))
    lists = sorted((o for o in ops if o.f == "assign" and o.type == "ok"), key=lambda o: o.invoke_time)
    floor: dict[str, tuple[int, Op]] = {}
    out, j = [], 0
    for li in lists:
        while j < len(facts) and facts[j][0] < li.invoke_time:
            _, k, off, o = facts[j]
            if k not in floor or off > floor[k][0]:
                floor[k] = (off, o)
            j += 1
        for k in li.value or ():
            got = (li.result or {}).get(k)
            if k in floor and (got is None or got < floor[k][0]):
                out.append({"key": k, "expected_at_least": floor[k][0], "got": got, "ops": [floor[k][1], li]})
    return out


def _summary(ops: list[Op], cases: dict[str, list[dict]]) -> dict:
    names = [n for n in ORDER if n in cases]
    witness = []
    for n in names:
        for c in cases[n][:2]:
            what = ", ".join(f"{f}={c[f]!r}" for f in ("key", "offset", "value", "values", "delta", "skipped",
                                                        "expected_at_least", "got") if f in c)
            witness.append(f"{n} ({what}): " + "; ".join(o.describe()[:160] for o in c["ops"][:3]))
    any_ok = any(o.type == "ok" for o in ops)
    unseen: dict[str, int] = defaultdict(int)
    for c in cases.get("unseen", ()):
        unseen[c["key"]] += 1
    return {"valid": False if names else (True if any_ok else None), "anomaly": names[0] if names else None,
            "error_types": sorted(names), "counts": {n: len(cases[n]) for n in names}, "witness": witness,
            "sends_ok": sum(o.f == "send" and o.type == "ok" for o in ops),
            "polls_ok": sum(o.f == "poll" and o.type == "ok" for o in ops),
            "unseen": dict(sorted(unseen.items())),
            "lost": [[c["key"], c["value"]] for c in cases.get("lost-write", ())][:20]}
