"""Maelstrom's services as built-in nodes (jepsen-io/maelstrom ``doc/services.md``,
``src/maelstrom/service.clj``): a node sends them RPCs like to any node, by name.

- ``lin-kv``: a linearizable key-value store (one state; every request applied atomically);
- ``seq-kv``: sequentially consistent — Maelstrom's ``Sequential`` wrapper: the service keeps its last
  32 states; a request from a client runs on a random state between the last one that client saw
  and the newest; if it would change that state it runs on the newest instead (so the total order
  holds and each client sees a monotonic sequence, yet reads may be stale);
- ``lww-kv``: last-write-wins over 5 independent replicas with Lamport clocks, merged at random on
  every request (Maelstrom's ``Eventual``): "intentionally pathological";
- ``lin-tso``: a linearizable timestamp oracle (``ts`` → ``ts_ok`` with 0, 1, 2, ...).

The key-value API is lin-kv's: ``read`` (error 20 if missing), ``write``, ``cas`` with ``from``/``to``
(error 22 if the value differs; 20 if missing unless ``create_if_not_exists``). Randomness comes from
the service's own named stream, so results are deterministic. Services never crash and are never
partitioned (Maelstrom's nemesis targets the test's nodes only).
"""

from __future__ import annotations

from typing import Any

from simulator.workbench import Message, Node

MISSING = object()


def kv_apply(state: dict, body: dict) -> tuple[dict, dict]:
    """Maelstrom's ``PersistentKV.handle``: (new state, reply body); ``state`` is never mutated."""
    t, k = body.get("type"), _key(body.get("key"))
    cur = state.get(k, MISSING)
    if t == "read":
        if cur is MISSING:
            return state, {"type": "error", "code": 20, "text": "key does not exist"}
        return state, {"type": "read_ok", "value": cur}
    if t == "write":
        return {**state, k: body.get("value")}, {"type": "write_ok"}
    if t == "cas":
        if cur is MISSING:
            if body.get("create_if_not_exists"):
                return {**state, k: body.get("to")}, {"type": "cas_ok"}
            return state, {"type": "error", "code": 20, "text": "key does not exist"}
        if cur == body.get("from"):
            return {**state, k: body.get("to")}, {"type": "cas_ok"}
        return state, {"type": "error", "code": 22, "text": f"current value {cur!r} is not {body.get('from')!r}"}
    return state, {"type": "error", "code": 10, "text": f"{t!r} is not supported"}


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


class LinKV(Node):
    """``lin-kv``: one state, each request applied atomically on arrival."""

    def __init__(self) -> None:
        self.state: dict = {}

    def on_read(self, msg: Message) -> None:
        """``read``, ``write`` and ``cas``: apply the request atomically to the one state and
        answer (Maelstrom's ``PersistentKV``).
        """
        self._do(msg)

    on_write = on_cas = on_read

    def _do(self, msg: Message) -> None:
        self.state, res = kv_apply(self.state, msg.body)
        self.reply(msg, res)


class SeqKV(LinKV):
    """``seq-kv``: Maelstrom's ``Sequential`` wrapper over the same KV (see the module docstring)."""

    buffer_size = 32

    def __init__(self) -> None:
        self.buffer: list[dict] = [{}]  # the last states; buffer[-1] is the newest
        self.last_index = 0
        self.clients: dict[str, int] = {}

    def _do(self, msg: Message) -> None:
        ci = self.clients.get(msg.src, 0)
        first = self.last_index - len(self.buffer) + 1
        ci = max(ci, first)
        index = ci + int(self.rng.integers(self.last_index - ci + 1))
        state = self.buffer[index - first]
        new, res = kv_apply(state, msg.body)
        if new is state:
            self.clients[msg.src] = index
        else:
            new, res = kv_apply(self.buffer[-1], msg.body)
            self.last_index += 1
            self.buffer.append(new)
            if len(self.buffer) > self.buffer_size:
                self.buffer.pop(0)
            self.clients[msg.src] = self.last_index
        self.reply(msg, res)


class LWWKV(LinKV):
    """``lww-kv``: 5 replicas, each request merges one random replica into another, then runs on a
    third; values carry Lamport timestamps and merge by the higher one (Maelstrom's ``Eventual``)."""

    replicas = 5

    def __init__(self) -> None:
        self.reps: list[tuple[int, dict]] = [(0, {}) for _ in range(self.replicas)]

    def _do(self, msg: Message) -> None:
        n = len(self.reps)
        src, dst = int(self.rng.integers(n)), int(self.rng.integers(n))
        (c1, m1), (c2, m2) = self.reps[src], self.reps[dst]
        merged = dict(m2)
        for k, (ts, v) in m1.items():
            if k not in merged or merged[k][0] < ts:
                merged[k] = (ts, v)
        self.reps[dst] = (max(c1, c2), merged)
        i = int(self.rng.integers(n))
        clock, m = self.reps[i]
        view = {k: v for k, (_, v) in m.items()}
        new, res = kv_apply(view, msg.body)
        if new is not view:
            k = _key(msg.body.get("key"))
            m = {**m, k: (clock, new[k])}
            clock += 1
        self.reps[i] = (clock, m)
        self.reply(msg, res)


class LinTSO(Node):
    """``lin-tso``: ``ts`` answers ``ts_ok`` with a strictly increasing integer, from 0."""

    def __init__(self) -> None:
        self.ts = 0

    def on_ts(self, msg: Message) -> None:
        """``ts``: answer the next timestamp, 0, 1, 2, ..."""
        self.reply(msg, {"type": "ts_ok", "ts": self.ts})
        self.ts += 1


SERVICES: dict[str, type[Node]] = {"lin-kv": LinKV, "seq-kv": SeqKV, "lww-kv": LWWKV, "lin-tso": LinTSO}
