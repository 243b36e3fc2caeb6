"""A system: a cluster written on the kernel directly, served to the workbench's clients as Maelstrom nodes.

Most nodes are :class:`~simulator.workbench.Node` objects, one per server, hosted for you. A
*system* is the other shape: a protocol that already runs on the kernel (``models.replication``'s
``RaftCluster``, say) owns the kernel nodes ``n1..nN`` itself and answers the clients' Maelstrom
bodies on them. The harness then creates no hosts; everything else — clients, workload, nemesis
(it crashes, pauses and partitions those same kernel nodes), checkers, hunting — is the same, so one
hunt serves a learner's node and the project's own protocols alike.

A subclass implements ``__init__(sim, names)``: build the cluster on kernel nodes ``names`` and
register handlers for the workload's request types and for ``init`` (answer ``init_ok``; it comes
again after every restart). :meth:`answer` replies to a client as a Maelstrom node would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.network import ONEWAY

if TYPE_CHECKING:
    from simulator.core import Simulation
    from simulator.network import Message as Wire


class System:
    """Base class of a system (see the module docstring)."""

    def __init__(self, sim: Simulation, names: list[str]) -> None:
        self.sim = sim
        self.names = list(names)
        self.replies = 0  # messages to clients (the rest of the system's sends are server-to-server)

    def answer(self, node: str, request: Wire, body: dict) -> None:
        """Reply to the Maelstrom request ``request`` (received by kernel node ``node``) with ``body``;
        nothing if ``node`` is down (a crashed server answers nobody)."""
        if not self.sim.nodes[node].up:
            return
        mid = request.payload.get("msg_id")
        out = body if mid is None else {**body, "in_reply_to": mid}
        self.replies += 1
        self.sim.net.send(node, request.src, out["type"], out, 0, ONEWAY)

    def error(self, node: str, request: Wire, code: int, text: str) -> None:
        """Answer with a Maelstrom error body (``simulator.workbench.ERRORS`` codes)."""
        self.answer(node, request, {"type": "error", "code": code, "text": text})

    def install_init(self) -> None:
        """Answer ``init`` on every node with ``init_ok`` (the cluster knows its members already)."""
        for n in self.names:
            self.sim.nodes[n].on("init", lambda w, n=n: self.answer(n, w, {"type": "init_ok"}))


def is_system(obj: Any) -> bool:
    """True if ``obj`` is a :class:`System` subclass (the harness builds it instead of hosts)."""
    return isinstance(obj, type) and issubclass(obj, System)
