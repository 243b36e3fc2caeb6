"""Reference nodes for the key-value workloads (``lin-kv``, ``txn-rw-register``, ``txn-list-append``) and
wrong variants named after their mistake.

    splitbrain test -w lin-kv --node reference                     # proxies to lin-kv: linearizable
    splitbrain test -w lin-kv --node reference:follower-read       # stale local reads: caught
    splitbrain test -w txn-rw-register --node reference:read-committed --consistency-models read-committed

Correct nodes other than ``reference`` are named after the consistency model they provide and must be
checked against it (``read-committed``). The transactional nodes follow Fly.io's Gossip Glomers
challenge 6 ("totally available transactions") and Maelstrom's own demos (``demo/clojure/
txn_rw_register_hat.clj``, ``txn_rw_register_no_isolation.clj``), written anew on the node API.
"""

from __future__ import annotations

from collections.abc import Generator

from simulator.workbench import Message, Node, RPCError

from .retry import send_until_acked

RPC_TIMEOUT_S = 1.0  # below the client's 5 s, so a lost request is answered (indefinite) in time


def _strip(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("msg_id", "in_reply_to")}


# -- lin-kv ------------------------------------------------------------------------------------------

class LinKVProxy(Node):
    """``lin-kv`` reference: every request goes, as it is, to Maelstrom's linearizable ``lin-kv`` service
    and its answer (an error too: 20, 22, or a timeout, indefinite) comes back to the client. The
    service applies each request atomically between its arrival and its reply, both inside the
    client's interval, so the node is linearizable; the service is never partitioned, so it is also
    available on every node."""

    service = "lin-kv"

    def on_read(self, msg: Message) -> Generator:
        """``read``, ``write`` and ``cas``: forward the request to the service and relay its
        answer, errors and timeouts included.
        """
        res = yield self.rpc(self.service, _strip(msg.body), timeout=RPC_TIMEOUT_S)
        self.reply(msg, _strip(res))

    on_write = on_cas = on_read


class LinKVLWW(LinKVProxy):
    """Wrong: proxies to ``lww-kv`` (eventually consistent, last write wins over independent replicas):
    reads come from whichever replica answers, often a stale one."""

    service = "lww-kv"


class LinKVFollowerRead(LinKVProxy):
    """Wrong: writes and cas go through ``lin-kv``, but reads are served from a local cache, kept from
    the writes this node proxied and from ``replicate`` messages its peers send once, after the fact:
    a read on one node misses a write another acknowledged a moment (or a partition) ago."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def on_read(self, msg: Message) -> None:
        """The mistake: answer a read from the local cache (error 20 if the key is not in it)."""
        k = msg.body["key"]
        if k not in self.cache:
            raise RPCError(20, "key does not exist")
        self.reply(msg, {"type": "read_ok", "value": self.cache[k]})

    def on_write(self, msg: Message) -> Generator:
        """``write`` and ``cas`` through lin-kv; on success, cache the new value and tell the peers
        once.
        """
        res = yield self.rpc(self.service, _strip(msg.body), timeout=RPC_TIMEOUT_S)
        b = msg.body
        self._saw(b["key"], b["value"] if b["type"] == "write" else b["to"])
        self.reply(msg, _strip(res))

    on_cas = on_write

    def _saw(self, k: object, v: object) -> None:
        self.cache[k] = v
        for n in self.node_ids:
            if n != self.node_id:
                self.send(n, {"type": "replicate", "key": k, "value": v})

    def on_replicate(self, msg: Message) -> None:
        """A peer's write, told once after the fact: cache it."""
        self.cache[msg.body["key"]] = msg.body["value"]


# -- transactions ----------------------------------------------------------------------------------

def apply_txn(db: dict, txn: list, append: bool) -> list:
    """Run ``txn`` on ``db`` in place, micro-op by micro-op; return it with the reads filled in (null for
    a key never written). Malformed micro-ops are refused (12, definite) before anything changes."""
    ok = {"r", "append"} if append else {"r", "w"}
    for m in txn:
        if not (isinstance(m, list) and len(m) == 3 and m[0] in ok):
            raise RPCError(12, f"micro-op must be [f, key, value] with f in {sorted(ok)}, got {m!r}")
    out = []
    for f, k, v in txn:
        if f == "r":
            cur = db.get(k)
            out.append([f, k, list(cur) if isinstance(cur, list) else cur])
        elif append:
            db[k] = [*db.get(k, ()), v]
            out.append([f, k, v])
        else:
            db[k] = v
            out.append([f, k, v])
    return out


class TxnSerial(Node):
    """Strict-serializable reference (both transactional workloads): one owner node — the first of
    ``node_ids``, n1 — runs every transaction, one at a time in arrival order, on its ``durable`` copy
    (a kill loses nothing); the others forward each ``txn`` to it and relay the answer. A serial
    execution, each transaction at one instant inside its client's interval: strict serializability
    (Papadimitriou 1979; Herlihy & Wing's real-time order). Chosen over a lock on lin-kv for being
    simplest. CP: a node cut off from n1 answers a timeout (indefinite) — availability drops."""

    append = False

    def on_txn(self, msg: Message) -> Generator | None:
        """Maelstrom's ``txn``: run it on the owner's durable copy, or forward it to the owner (n1)
        and relay the answer.
        """
        owner = self.node_ids[0] if self.node_ids else self.node_id
        if self.node_id == owner:
            txn = apply_txn(self.durable.setdefault("db", {}), msg.body["txn"], self.append)
            self.reply(msg, {"type": "txn_ok", "txn": txn})
            return None
        return self._forward(msg, owner)

    def _forward(self, msg: Message, owner: str) -> Generator:
        res = yield self.rpc(owner, {"type": "txn", "txn": msg.body["txn"]}, timeout=RPC_TIMEOUT_S)
        self.reply(msg, {"type": "txn_ok", "txn": res["txn"]})


class TxnSerialAppend(TxnSerial):
    """``txn-list-append`` reference: :class:`TxnSerial` with appends."""

    append = True


class TxnReadCommitted(Node):
    """Read-committed, totally available (Gossip Glomers 6c; Maelstrom's demo
    ``txn_rw_register_hat.clj``, after Bailis et al., "Highly Available Transactions", VLDB 2014): a node
    runs each transaction at once on its own copy and answers; then sends the transaction's *final*
    writes (one value per key, never an intermediate one) to every other node, retried until
    acknowledged, and a replica applies them together. Check it with ``--consistency-models
    read-committed``: a read sees only whole, committed transactions (no G1a, G1b), and since a
    transaction can only read (wr) or overwrite after reading (ww, as Elle infers it) what ran before
    it, no ww/wr cycle (G0, G1c) can form. Not serializable: a copy may be stale (G-single, G2)."""

    retry_s = 0.5

    def on_txn(self, msg: Message) -> None:
        """Maelstrom's ``txn``: run it on this node's copy and answer at once, then send its final
        writes to every other node, retried until acknowledged (Bailis et al., VLDB 2014).
        """
        txn = apply_txn(self.durable.setdefault("db", {}), msg.body["txn"], False)
        self.reply(msg, {"type": "txn_ok", "txn": txn})
        final = {k: v for f, k, v in txn if f == "w"}  # later writes to a key replace earlier ones
        if final:
            writes = [[k, v] for k, v in final.items()]
            for n in self.node_ids:
                if n != self.node_id:
                    self._replicate(n, writes)

    def _replicate(self, dest: str, writes: list) -> None:
        send_until_acked(self, dest, {"type": "replicate", "writes": writes}, self.retry_s)

    def on_replicate(self, msg: Message) -> None:
        """A peer's final writes: install them and acknowledge."""
        db = self.durable.setdefault("db", {})
        for k, v in msg.body["writes"]:
            db[k] = v
        self.reply(msg, {"type": "replicate_ok"})


class TxnNoIsolation(Node):
    """Wrong: keeps each key in ``lin-kv`` and runs a transaction as one lin-kv call per micro-op, with
    nothing around them (Maelstrom's ``txn_rw_register_no_isolation.clj``, spread over nodes): other
    transactions see its first write before its second (G1b, an intermediate read) and interleave with
    it (G1c: each reads the other's write), which even read committed forbids."""

    def on_txn(self, msg: Message) -> Generator:
        """The mistake: one lin-kv call per micro-op, nothing around them (Maelstrom's
        ``txn_rw_register_no_isolation.clj``).
        """
        out = []
        for f, k, v in msg.body["txn"]:
            if f == "r":
                try:
                    res = yield self.rpc("lin-kv", {"type": "read", "key": k}, timeout=RPC_TIMEOUT_S)
                    out.append([f, k, res["value"]])
                except RPCError as e:
                    if e.code != 20:
                        raise
                    out.append([f, k, None])
            else:
                yield self.rpc("lin-kv", {"type": "write", "key": k, "value": v}, timeout=RPC_TIMEOUT_S)
                out.append([f, k, v])
        self.reply(msg, {"type": "txn_ok", "txn": out})


class ListAppendLocalGossip(Node):
    """Wrong: each node runs transactions on its own copy, answers, and then gossips its appends once to
    the others, who append them on arrival. Nodes see concurrent appends in different orders
    (``incompatible-order``: one read is not a prefix of another), reads miss appends acknowledged
    elsewhere (G-single-realtime, G2) and a gossip lost in a partition loses the append for good."""

    def on_txn(self, msg: Message) -> None:
        """The mistake: run the txn on this node's copy, answer, then gossip its appends once."""
        txn = apply_txn(self.durable.setdefault("db", {}), msg.body["txn"], True)
        self.reply(msg, {"type": "txn_ok", "txn": txn})
        appends = [[k, v] for f, k, v in txn if f == "append"]
        if appends:
            for n in self.node_ids:
                if n != self.node_id:
                    self.send(n, {"type": "gossip", "appends": appends})

    def on_gossip(self, msg: Message) -> None:
        """A peer's appends: append each on arrival, in arrival order."""
        db = self.durable.setdefault("db", {})
        for k, v in msg.body["appends"]:
            db[k] = [*db.get(k, ()), v]


# workload -> {variant: node class}, merged into models.workbench.reference.REFERENCE
LIN_KV: dict[str, type[Node]] = {"reference": LinKVProxy, "follower-read": LinKVFollowerRead, "lww": LinKVLWW}
TXN_RW_REGISTER: dict[str, type[Node]] = {"reference": TxnSerial, "read-committed": TxnReadCommitted,
                                          "no-isolation": TxnNoIsolation}
TXN_LIST_APPEND: dict[str, type[Node]] = {"reference": TxnSerialAppend, "local-gossip": ListAppendLocalGossip}
