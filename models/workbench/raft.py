"""The project's own Raft (:class:`models.replication.consensus.RaftCluster`) served as a Maelstrom
``lin-kv`` node, so the workbench's lin-kv workload, nemeses, linearizability checker and hunt test it
exactly as they test a learner's node (``splitbrain test -w lin-kv --node reference:raft``).

Each server n1..nN is a Raft replica (the cluster runs on those kernel nodes, so the nemesis crashes,
pauses and partitions the replicas themselves). A client's ``read``/``write``/``cas`` arrives at its
server, which forwards it as a kernel RPC to the replica it believes leads — itself first, then the
leader hint of a ``not_leader`` refusal, up to ``max_hops`` hops — as a Maelstrom lin-kv solution proxies
to its leader (Maelstrom ``doc/06-raft``). Replies map to Maelstrom's errors (``doc/protocol.md``):

- ``not_leader`` with no usable hint: 11 *temporarily-unavailable* (definite: no log holds it);
- the cas precondition failed: 22 *precondition-failed* (definite; a cas of a missing key also
  gives 22 here where Maelstrom's lin-kv service says 20 — both are definite, so the checker sees
  the same history);
- a read of a key never written: 20 *key-does-not-exist*;
- a forward that timed out: 0 *timeout* (indefinite: a leader may have logged it before it died).

Variant ``raft-follower-read``: a server answers reads from its own replica's applied state without
asking the leader — the classic stale read (Raft paper §8: a read must go through the leader and
confirm its leadership, or it can return a value a newer leader has already overwritten).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.replication.consensus import RaftCluster, RaftConfig
from models.replication.kv import CAS, CAS_MISMATCH, READ, WRITE, not_leader_hint
from simulator.workbench import System
from simulator.workbench.protocol import KEY_DOES_NOT_EXIST, PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE, TIMEOUT

if TYPE_CHECKING:
    from simulator.core import Simulation
    from simulator.network import Message as Wire


class RaftLinKV(System):
    """Raft as a lin-kv node (see the module docstring)."""

    config = RaftConfig()  # the paper's timers: election 150-300 ms, heartbeat 50 ms; read_index reads
    forward_timeout_s = 1.0  # per hop; Maelstrom's client gives up after 5 s
    max_hops = 3
    follower_reads = False

    def __init__(self, sim: Simulation, names: list[str]) -> None:
        super().__init__(sim, names)
        self.cluster = RaftCluster(sim, len(names), config=self.config, names=names)
        self.install_init()
        for n in names:
            node = sim.nodes[n]
            for t in ("read", "write", "cas"):
                node.on(t, lambda w, n=n: self._request(n, w))

    def _request(self, n: str, w: Wire) -> None:
        b = w.payload
        t, key = b["type"], b.get("key")
        if t == "read" and self.follower_reads:
            value = self.cluster.replicas[n].kv.get(key)
            self._read_reply(n, w, value)
            return
        if t == "read":
            op, payload = READ, (key,)
        elif t == "write":
            op, payload = WRITE, (key, b.get("value"))
        else:
            op, payload = CAS, (key, b.get("from"), b.get("to"))
        self._forward(n, w, t, op, payload, n, 0)

    def _forward(self, n: str, w: Wire, t: str, op: str, payload: tuple, target: str, hops: int) -> None:
        def done(outcome: str, value: Any) -> None:
            if outcome == "ok":
                if t == "read":
                    self._read_reply(n, w, value)
                else:
                    self.answer(n, w, {"type": f"{t}_ok"})
                return
            if outcome == "error":
                redirect, hint = not_leader_hint(value)
                if redirect and hint is not None and hint != target and hops < self.max_hops:
                    self._forward(n, w, t, op, payload, hint, hops + 1)
                elif redirect:
                    self.error(n, w, TEMPORARILY_UNAVAILABLE, f"no leader known at {target}")
                elif value == CAS_MISMATCH:
                    self.error(n, w, PRECONDITION_FAILED, "cas: current value differs from 'from'")
                else:
                    self.error(n, w, TEMPORARILY_UNAVAILABLE, f"{target}: {value}")
                return
            if outcome == "timeout":
                self.error(n, w, TIMEOUT, f"no answer from {target} within {self.forward_timeout_s} s")
            else:  # crashed / unreachable / rejected: refused before it reached any log (definite)
                self.error(n, w, TEMPORARILY_UNAVAILABLE, f"{target}: {outcome}")

        self.sim.nodes[n].call(target, op, payload, self.forward_timeout_s, done)

    def _read_reply(self, n: str, w: Wire, value: Any) -> None:
        if value is None:
            self.error(n, w, KEY_DOES_NOT_EXIST, "key does not exist")
        else:
            self.answer(n, w, {"type": "read_ok", "value": value})


class RaftFollowerRead(RaftLinKV):
    """Wrong: reads answered from the local replica's applied state (stale after a leader change)."""

    follower_reads = True
