"""Reference nodes for the workbench's workloads — a correct one per workload, and named wrong variants
that make the typical mistakes, so a newcomer can watch a correct and a broken node side by side.

    splitbrain test -w broadcast --node reference              # correct
    splitbrain test -w broadcast --node reference:no-retry     # caught under --nemesis partition

Each is written on the node API exactly as a learner would write a Maelstrom solution (Fly.io's
Gossip Glomers challenges are the same workloads).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simulator.workbench import Message, Node, RPCError

from . import kv
from .kafka import KAFKA
from .raft import RaftFollowerRead, RaftLinKV
from .retry import send_until_acked


class Echo(Node):
    """Challenge 1: answer ``echo`` with ``echo_ok`` and the same payload."""

    def on_echo(self, msg: Message) -> None:
        """Maelstrom's ``echo``: answer ``echo_ok`` with the request's body."""
        self.reply(msg, {**msg.body, "type": "echo_ok"})


class EchoWrong(Echo):
    """Wrong: echoes a fixed string instead of the payload."""

    def on_echo(self, msg: Message) -> None:
        """The mistake: answer ``echo_ok`` with a fixed "hello" instead of the request's ``echo``.
        """
        self.reply(msg, {"type": "echo_ok", "echo": "hello"})


class UniqueIds(Node):
    """Challenge 2: ids unique without coordination — (node id, a counter kept durable so a restarted
    node never repeats one). Totally available: no message between nodes."""

    def on_generate(self, msg: Message) -> None:
        """Maelstrom's ``generate``: answer ``<node id>-<n>``, ``n`` from a durable per-node
        counter.
        """
        n = self.durable.get("next", 0)
        self.durable["next"] = n + 1
        self.reply(msg, {"type": "generate_ok", "id": f"{self.node_id}-{n}"})


class UniqueIdsCounter(Node):
    """Wrong: a per-node counter without the node id — two nodes hand out the same ids."""

    def __init__(self) -> None:
        self.n = 0

    def on_generate(self, msg: Message) -> None:
        """The mistake: answer the bare per-node counter, which other nodes repeat."""
        self.n += 1
        self.reply(msg, {"type": "generate_ok", "id": self.n})


class UniqueIdsVolatile(UniqueIds):
    """Wrong: the counter is volatile — a killed and restarted node repeats the ids it gave before."""

    def __init__(self) -> None:
        self.n = 0

    def on_generate(self, msg: Message) -> None:
        """The mistake: ``<node id>-<n>`` from a volatile counter, which restarts at 1 after a
        kill.
        """
        self.n += 1
        self.reply(msg, {"type": "generate_ok", "id": f"{self.node_id}-{self.n}"})


class Broadcast(Node):
    """Challenge 3: broadcast over the given topology; every gossip to a neighbour is an RPC retried
    until acknowledged, so a partition only delays delivery (3c, fault tolerant). Messages are kept
    in ``durable`` so a restarted node still serves what it had acknowledged."""

    retry_s = 0.5

    def __init__(self) -> None:
        self.neighbours: list[str] = []

    @property
    def seen(self) -> set:
        """The messages this node has learnt, kept in ``durable`` (they survive a kill)."""
        return self.durable.setdefault("seen", set())

    def on_topology(self, msg: Message) -> None:
        """Maelstrom's ``topology``: keep this node's neighbours (durably) and answer
        ``topology_ok``.
        """
        self.neighbours = list(msg.body["topology"].get(self.node_id, []))
        self.durable["neighbours"] = self.neighbours
        self.reply(msg, {"type": "topology_ok"})

    def on_init(self, msg: Message) -> None:
        """After init (and after a restart): reload the neighbours from ``durable``."""
        self.neighbours = list(self.durable.get("neighbours", []))

    def on_broadcast(self, msg: Message) -> None:
        """Maelstrom's ``broadcast``: acknowledge, then learn the message and gossip it to the
        neighbours.
        """
        self.reply(msg, {"type": "broadcast_ok"})
        self._learn(msg.body["message"], msg.src)

    def on_gossip(self, msg: Message) -> None:
        """A neighbour's gossip: acknowledge (so its retries stop) and learn the message."""
        self.reply(msg, {"type": "gossip_ok"})
        self._learn(msg.body["message"], msg.src)

    def on_read(self, msg: Message) -> None:
        """Maelstrom's ``read``: every message learnt, sorted."""
        self.reply(msg, {"type": "read_ok", "messages": sorted(self.seen)})

    def _learn(self, m: int, src: str) -> None:
        if m in self.seen:
            return
        self.seen.add(m)
        for n in self.neighbours:
            if n != src:
                self._gossip(n, m)

    def _gossip(self, dest: str, m: int) -> None:
        send_until_acked(self, dest, {"type": "gossip", "message": m}, self.retry_s)


class BroadcastNoRetry(Broadcast):
    """Wrong (3b's solution under 3c's faults): gossip is sent once and never retried — a message
    sent across a partition is lost for good, and the nodes behind it never converge."""

    def _gossip(self, dest: str, m: int) -> None:
        self.send(dest, {"type": "gossip", "message": m})

    def on_gossip(self, msg: Message) -> None:
        """A one-way gossip: learn the message, send no acknowledgement."""
        self._learn(msg.body["message"], msg.src)


class BroadcastVolatile(Broadcast):
    """Wrong: messages kept in volatile memory — a killed node forgets everything it acknowledged."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set = set()

    @property
    def seen(self) -> set:
        """The mistake: the messages learnt, kept in volatile memory (lost on a kill)."""
        return self._seen


class GSet(Node):
    """A grow-only set CRDT: add locally, gossip the whole set to every other node every 0.5 s and
    merge by union (state-based CRDT, Shapiro et al. 2011; Maelstrom's 04-crdts chapter)."""

    def __init__(self) -> None:
        self.every(0.5, self._gossip)

    @property
    def items(self) -> set:
        """The set's elements, kept in ``durable``."""
        return self.durable.setdefault("items", set())

    def on_add(self, msg: Message) -> None:
        """Maelstrom's g-set ``add``: add the element locally and answer ``add_ok``."""
        self.items.add(msg.body["element"])
        self.reply(msg, {"type": "add_ok"})

    def on_read(self, msg: Message) -> None:
        """Maelstrom's g-set ``read``: the elements this node knows, sorted."""
        self.reply(msg, {"type": "read_ok", "value": sorted(self.items)})

    def on_replicate(self, msg: Message) -> None:
        """A peer's whole set: merge it by union (the join)."""
        self.items.update(msg.body["value"])

    def _gossip(self) -> None:
        for n in self.node_ids:
            if n != self.node_id:
                self.send(n, {"type": "replicate", "value": sorted(self.items)})


class GSetLocal(GSet):
    """Wrong: never gossips — each node only knows its own adds."""

    def _gossip(self) -> None:
        return None


class PNCounter(Node):
    """A PN-counter CRDT: per-node increment and decrement totals, gossiped to every node and merged by
    per-node maximum (Shapiro et al. 2011). ``value`` = sum(P) - sum(N)."""

    def __init__(self) -> None:
        self.every(0.5, self._gossip)

    @property
    def p(self) -> dict:
        """Per-node increment totals (the P half), kept in ``durable``."""
        return self.durable.setdefault("p", {})

    @property
    def n(self) -> dict:
        """Per-node decrement totals (the N half), kept in ``durable``."""
        return self.durable.setdefault("n", {})

    def on_add(self, msg: Message) -> None:
        """Maelstrom's pn-counter ``add``: add ``|delta|`` to this node's P (delta >= 0) or N
        total.
        """
        d = msg.body["delta"]
        side = self.p if d >= 0 else self.n
        side[self.node_id] = side.get(self.node_id, 0) + abs(d)
        self.reply(msg, {"type": "add_ok"})

    def on_read(self, msg: Message) -> None:
        """Maelstrom's pn-counter ``read``: sum(P) - sum(N) as this node knows them."""
        self.reply(msg, {"type": "read_ok", "value": sum(self.p.values()) - sum(self.n.values())})

    def on_replicate(self, msg: Message) -> None:
        """A peer's P and N: merge by per-node maximum (the join)."""
        for mine, theirs in ((self.p, msg.body["p"]), (self.n, msg.body["n"])):
            for k, v in theirs.items():
                if v > mine.get(k, 0):
                    mine[k] = v

    def _gossip(self) -> None:
        for other in self.node_ids:
            if other != self.node_id:
                self.send(other, {"type": "replicate", "p": self.p, "n": self.n})


class PNCounterSum(PNCounter):
    """Wrong: gossips deltas and adds what it receives — every repeated gossip counts again."""

    def on_replicate(self, msg: Message) -> None:
        """The mistake: add a peer's totals to ours, so every repeated gossip counts again."""
        for mine, theirs in ((self.p, msg.body["p"]), (self.n, msg.body["n"])):
            for k, v in theirs.items():
                if k != self.node_id:
                    mine[k] = mine.get(k, 0) + v


class GCounter(Node):
    """Challenge 4: a grow-only counter on Maelstrom's sequentially consistent ``seq-kv``: an add is a
    read then a compare-and-set, retried until the cas wins (so no increment is lost). A read first
    writes a fresh value to a key of its own — a seq-kv read may be stale, but an operation after a
    write by the same client sees that write's order (sequential consistency's per-process order)."""

    key = "counter"

    def on_add(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's g-counter ``add``: read, then ``cas`` on seq-kv from that value to value +
        delta, retried on a lost race (errors 20, 22) until it wins; a timeout fails indefinite.
        """
        delta = msg.body["delta"]
        while True:
            cur = yield from self._read()
            try:
                yield self.rpc("seq-kv", {"type": "cas", "key": self.key, "from": cur, "to": cur + delta,
                                          "create_if_not_exists": True}, timeout=1.0)
                break
            except RPCError as e:
                if e.code not in (20, 22):  # a timeout may have applied it: do not add twice
                    raise
        self.reply(msg, {"type": "add_ok"})

    def on_read(self, msg: Message) -> Generator[Any, Any, None]:
        """Maelstrom's g-counter ``read``: write a fresh value to this node's own seq-kv key first,
        so the read that follows is ordered after it, then read the counter.
        """
        n = self.durable.get("sync", 0) + 1
        self.durable["sync"] = n
        yield self.rpc("seq-kv", {"type": "write", "key": f"sync-{self.node_id}", "value": n}, timeout=1.0)
        value = yield from self._read()
        self.reply(msg, {"type": "read_ok", "value": value})

    def _read(self):
        try:
            res = yield self.rpc("seq-kv", {"type": "read", "key": self.key}, timeout=1.0)
            return res["value"]
        except RPCError as e:
            if e.code == 20:
                return 0
            raise


class GCounterBlindWrite(GCounter):
    """Wrong: read-modify-write with a blind ``write`` instead of ``cas`` — two concurrent adds read the
    same value and one increment is lost."""

    def on_add(self, msg: Message) -> Generator[Any, Any, None]:
        """The mistake: read, then a blind ``write`` of value + delta; concurrent adds overwrite
        each other.
        """
        cur = yield from self._read()
        yield self.rpc("seq-kv", {"type": "write", "key": self.key, "value": cur + msg.body["delta"]}, timeout=1.0)
        self.reply(msg, {"type": "add_ok"})


class GCounterStaleRead(GCounter):
    """Wrong: reads seq-kv directly — sequential consistency lets a read return a stale value forever."""

    def on_read(self, msg: Message) -> Generator[Any, Any, None]:
        """The mistake: read seq-kv directly, which may return a stale value forever."""
        value = yield from self._read()
        self.reply(msg, {"type": "read_ok", "value": value})


# workload -> {variant: node class}; "reference" is the correct one.
REFERENCE: dict[str, dict[str, type[Node]]] = {
    "echo": {"reference": Echo, "wrong-payload": EchoWrong},
    "unique-ids": {"reference": UniqueIds, "counter": UniqueIdsCounter, "volatile": UniqueIdsVolatile},
    "broadcast": {"reference": Broadcast, "no-retry": BroadcastNoRetry, "volatile": BroadcastVolatile},
    "g-set": {"reference": GSet, "no-gossip": GSetLocal},
    "pn-counter": {"reference": PNCounter, "sum-gossip": PNCounterSum},
    "g-counter": {"reference": GCounter, "blind-write": GCounterBlindWrite, "stale-read": GCounterStaleRead},
    "kafka": KAFKA,
    # our own Raft (models.replication) served as a lin-kv node, and its follower-read mistake
    "lin-kv": {**kv.LIN_KV, "raft": RaftLinKV, "raft-follower-read": RaftFollowerRead},
    "txn-rw-register": kv.TXN_RW_REGISTER,  # also "read-committed": correct only for that model
    "txn-list-append": kv.TXN_LIST_APPEND,
}


def reference(workload: str, variant: str = "reference") -> type[Node]:
    """The reference node of ``workload`` (``variant``: one of its wrong ones)."""
    if workload not in REFERENCE:
        raise ValueError(f"no reference node for workload {workload!r}; workloads with one: "
                         f"{', '.join(sorted(REFERENCE))}")
    v = REFERENCE[workload]
    if variant not in v:
        raise ValueError(f"--node reference:{variant}: workload {workload} has variants "
                         f"{', '.join(k for k in v if k != 'reference')}")
    return v[variant]


def variants(workload: str) -> list[str]:
    """The names of ``workload``'s wrong variants (every node but "reference"); empty if it has
    none.
    """
    return [k for k in REFERENCE.get(workload, {}) if k != "reference"]

