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
