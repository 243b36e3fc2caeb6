"""Reference nodes for the ``kafka`` workload (Gossip Glomers challenges 5b and 5c, fly.io/dist-sys/5b:
"your nodes can use the linearizable key/value store provided by Maelstrom"), and the typical mistake.

Every key's log lives in ``lin-kv`` as one value, the list of its ``[offset, msg]`` pairs; a ``send``
appends with a compare-and-set from the log this node last knew, so the offset (the log's length) is
allocated and the message stored in one linearizable step, and any node can serve any poll. 5c's economy:
the node caches each log and each committed offset, so a send costs one ``cas`` unless another node
appended meanwhile (then a ``read`` and a retry), and a commit that would not raise the committed offset
costs nothing. A poll reads the key's log from ``lin-kv`` (no stale answer can skip a message: the log is
append-only, so every version is a prefix of the next). Committed offsets are ``lin-kv`` keys that only
grow (``cas`` from the current value to a higher one). Keys in ``lin-kv``: ``log-<key>``, ``commit-<key>``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simulator.workbench import Message, Node, RPCError

KV = "lin-kv"
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22


class Kafka(Node):
    """Correct: offsets allocated by ``cas`` on the shared log in ``lin-kv`` (see the module docstring)."""

    timeout_s = 1.0

    def __init__(self) -> None:
        self.logs: dict[str, list] = {}  # a prefix of each key's log in lin-kv
        self.committed: dict[str, int] = {}  # a lower bound of each key's committed offset

    # -- lin-kv helpers -------------------------------------------------------------------------
    def _read(self, key: str, default):
        try:
            res = yield self.rpc(KV, {"type": "read", "key": key}, timeout=self.timeout_s)
            return res["value"]
        except RPCError as e:
            if e.code == KEY_DOES_NOT_EXIST:
                return default
            raise

    def _read_log(self, k: str):
        log = yield from self._read(f"log-{k}", [])
        if len(log) >= len(self.logs.get(k, ())):
            self.logs[k] = log
        return log

    def _append(self, k: str, entry_for):
        """Append ``entry_for(log)`` to key ``k``'s log with a cas, retried on conflict; the entry."""
        log = self.logs.get(k)
        while True:
            if log is None:
                log = yield from self._read_log(k)
            entry = entry_for(log)
            new = [*log, entry]
            try:
                yield self.rpc(KV, {"type": "cas", "key": f"log-{k}", "from": log, "to": new,
                                    "create_if_not_exists": not log}, timeout=self.timeout_s)
            except RPCError as e:
                if e.code != PRECONDITION_FAILED:
                    raise  # a timeout may have appended it: indefinite, never retried blindly
                log = None
                continue
            self.logs[k] = new
            return entry

    # -- the kafka RPCs -------------------------------------------------------------------------
    def on_send(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's kafka ``send``: append ``msg`` to the key's log in lin-kv by ``cas``, the
        offset being the log's length; answer ``send_ok`` with it.
        """
        k = msg.body["key"]
        entry = yield from self._append(k, lambda log: [len(log), msg.body["msg"]])
        self.reply(msg, {"type": "send_ok", "offset": entry[0]})

    def on_poll(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's kafka ``poll``: for each key, its ``[offset, msg]`` pairs from the given
        offset on, read from lin-kv.
        """
        out = {}
        for k, start in sorted(msg.body["offsets"].items()):
            log = yield from self._read_log(k)
            pairs = sorted((p for p in log if p[0] >= start), key=lambda p: p[0])
            if pairs:
                out[k] = pairs
        self.reply(msg, {"type": "poll_ok", "msgs": out})

    def on_commit_offsets(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's kafka ``commit_offsets``: raise each key's committed offset in lin-kv by
        ``cas`` (it only grows); free when the cache says it is already as high.
        """
        for k, off in sorted(msg.body["offsets"].items()):
            cur = self.committed.get(k)
            while cur is None or cur < off:
                try:
                    yield self.rpc(KV, {"type": "cas", "key": f"commit-{k}", "from": cur, "to": off,
                                        "create_if_not_exists": cur is None}, timeout=self.timeout_s)
                    cur = off
                except RPCError as e:
                    if e.code != PRECONDITION_FAILED:
                        raise
                    cur = yield from self._read(f"commit-{k}", None)
            self.committed[k] = max(cur, self.committed.get(k, cur))
        self.reply(msg, {"type": "commit_offsets_ok"})

    def on_list_committed_offsets(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's kafka ``list_committed_offsets``: each key's committed offset from lin-kv
        (keys never committed are left out).
        """
        out = {}
        for k in msg.body["keys"]:
            cur = yield from self._read(f"commit-{k}", None)
            if cur is not None:
                out[k] = cur
                self.committed[k] = max(cur, self.committed.get(k, cur))
        self.reply(msg, {"type": "list_committed_offsets_ok", "offsets": out})


class KafkaPerNodeOffsets(Kafka):
    """Wrong: each node numbers a key's messages from its own counter, then stores them in the shared
    log — two nodes hand out the same offset for different messages (Jepsen's inconsistent-offsets)."""

    def __init__(self) -> None:
        super().__init__()
        self.next: dict[str, int] = {}

    def on_send(self, msg: Message) -> Generator[Any, Any, None]:
        """The mistake: number the key's messages from this node's own counter, then append; two
        nodes give out the same offset.
        """
        k = msg.body["key"]
        off = self.next.get(k, 0)
        self.next[k] = off + 1
        yield from self._append(k, lambda log: [off, msg.body["msg"]])
        self.reply(msg, {"type": "send_ok", "offset": off})


KAFKA: dict[str, type[Node]] = {"reference": Kafka, "per-node-offsets": KafkaPerNodeOffsets}
