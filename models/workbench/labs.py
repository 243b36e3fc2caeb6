"""Starters and extra references for notebook 08's labs (Gossip Glomers' order, on the workbench).

A *starter* is the node a lab hands the learner: it runs, and the lab's check refuses it in an
instructive way. The correct nodes are :mod:`models.workbench.reference`'s, plus
:class:`BroadcastDirect`, the efficient broadcast of challenge 3d (fly.io/dist-sys/3d: 25 nodes,
100 ms links, under 30 messages per operation, median stable latency under 400 ms, maximum under
600 ms).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simulator.workbench import Message, Node

from .reference import Broadcast, UniqueIdsCounter
from .retry import send_until_acked


class EchoStarter(Node):
    """Answers echo_ok — but forgets the payload."""

    def on_echo(self, msg: Message) -> None:
        """Reply echo_ok (the payload is missing: the bug)."""
        self.reply(msg, {"type": "echo_ok"})


# Counts from 1 on every node: unique on one node, duplicated across nodes (the "counter" variant).
UniqueIdsStarter = UniqueIdsCounter


class BroadcastStarter(Node):
    """Keeps what it is told and never tells anyone: fine on one node, lost on five."""

    def __init__(self) -> None:
        self.messages: set = set()

    def on_topology(self, msg: Message) -> None:
        """Acknowledge the topology (and ignore it)."""
        self.reply(msg, {"type": "topology_ok"})

    def on_broadcast(self, msg: Message) -> None:
        """Keep the message; tell nobody."""
        self.messages.add(msg.body["message"])
        self.reply(msg, {"type": "broadcast_ok"})

    def on_read(self, msg: Message) -> None:
        """The messages this node holds."""
        self.reply(msg, {"type": "read_ok", "messages": sorted(self.messages)})


class KafkaStarter(Node):
    """Challenge 5a's single-node log, kept in this node's memory: correct on one node; on three, each
    node numbers its own appends (two messages at offset 0 of one key) and polls only its own log."""

    def __init__(self) -> None:
        self.logs: dict[str, list] = {}
        self.committed: dict[str, int] = {}

    def on_send(self, msg: Message) -> None:
        """Append to this node's log of the key; the offset is its position there."""
        log = self.logs.setdefault(msg.body["key"], [])
        log.append(msg.body["msg"])
        self.reply(msg, {"type": "send_ok", "offset": len(log) - 1})

    def on_poll(self, msg: Message) -> None:
        """``[offset, msg]`` pairs from each requested offset on, from this node's logs."""
        out = {k: [[i, m] for i, m in enumerate(self.logs.get(k, ()))][start:]
               for k, start in msg.body["offsets"].items()}
        self.reply(msg, {"type": "poll_ok", "msgs": {k: v for k, v in out.items() if v}})

    def on_commit_offsets(self, msg: Message) -> None:
        """Remember each key's committed offset (it only grows)."""
        for k, off in msg.body["offsets"].items():
            self.committed[k] = max(off, self.committed.get(k, off))
        self.reply(msg, {"type": "commit_offsets_ok"})

    def on_list_committed_offsets(self, msg: Message) -> None:
        """The committed offsets this node remembers."""
        offsets = {k: self.committed[k] for k in msg.body["keys"] if k in self.committed}
        self.reply(msg, {"type": "list_committed_offsets_ok", "offsets": offsets})


class BroadcastDirect(Broadcast):
    """Challenge 3d: the node a client told sends the message straight to every other node (one hop of
    100 ms instead of up to 8 across the grid), each send an RPC retried until acknowledged; a node
    that hears it from another node does not pass it on."""

    def on_topology(self, msg: Message) -> None:
        """Every other node is a neighbour (the grid is ignored)."""
        self.neighbours = [n for n in self.node_ids if n != self.node_id]
        self.durable["neighbours"] = self.neighbours
        self.reply(msg, {"type": "topology_ok"})

    def on_gossip(self, msg: Message) -> None:
        """Keep it; its origin told everyone already."""
        self.reply(msg, {"type": "gossip_ok"})
        self.seen.add(msg.body["message"])  # learnt from its origin: nothing to pass on


class BroadcastBatched(BroadcastDirect):
    """Challenge 3e (fly.io/dist-sys/3e: under 20 messages per operation, median stable latency under
    1 s, maximum under 2 s, same 25 nodes and 100 ms links): the origin still sends straight to every
    other node, but collects what clients told it and sends it every ``flush_s`` as one batch per peer,
    each batch an RPC retried until acknowledged. A client's message waits up to ``flush_s`` plus one
    100 ms hop; a node sends at most 2 x 24 messages per ``flush_s`` however many it was told."""

    flush_s = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.pending: list = []

    def on_init(self, msg: Message) -> None:
        """Reload the peers (a restart) and start the flush timer."""
        super().on_init(msg)
        self.every(self.flush_s, self._flush)

    def on_broadcast(self, msg: Message) -> None:
        """Acknowledge, keep the message and queue it for the next batch."""
        self.reply(msg, {"type": "broadcast_ok"})
        m = msg.body["message"]
        if m not in self.seen:
            self.seen.add(m)
            self.pending.append(m)

    def on_batch(self, msg: Message) -> None:
        """A peer's batch: acknowledge and keep every message (its origin told everyone)."""
        self.reply(msg, {"type": "batch_ok"})
        self.seen.update(msg.body["messages"])

    def _flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            for n in self.neighbours:
                self._send_batch(n, batch)

    def _send_batch(self, dest: str, batch: list) -> None:
        send_until_acked(self, dest, {"type": "batch", "messages": batch}, self.retry_s)


class UniqueIdsCentral(Node):
    """A counter on one node: every node asks n1 for the next number. Unique — and unavailable to every
    node cut off from n1 (the CP choice for a problem that needs no coordination at all)."""

    def __init__(self) -> None:
        self.n = 0

    def on_next(self, msg: Message) -> None:
        """n1 hands out the next number."""
        self.n += 1
        self.reply(msg, {"type": "next_ok", "n": self.n})

    def on_generate(self, msg: Message) -> Generator[Any, Any, None]:
        """Ask n1 (or, on n1, count)."""
        if self.node_id == "n1":
            self.n += 1
            self.reply(msg, {"type": "generate_ok", "id": self.n})
            return
        res = yield self.rpc("n1", {"type": "next"}, timeout=1.0)
        self.reply(msg, {"type": "generate_ok", "id": res["n"]})
