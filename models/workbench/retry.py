"""Retrying an RPC until the peer acknowledges it — the pattern Gossip Glomers 3c asks for (a message sent
into a partition is dropped; send it again after a timeout until the neighbour answers)."""

from __future__ import annotations

from simulator.workbench import Node


def send_until_acked(node: Node, dest: str, body: dict, retry_s: float) -> None:
    """Send ``body`` to ``dest`` as an RPC with a ``retry_s`` timeout; on an error reply (a timeout
    included) send it again ``retry_s`` later, until one is acknowledged. Each try gets its own copy
    of ``body``."""

    def done(reply: dict) -> None:
        if reply.get("type") == "error":
            node.after(retry_s, lambda: send_until_acked(node, dest, body, retry_s))

    node.rpc(dest, dict(body), timeout=retry_s, callback=done)
