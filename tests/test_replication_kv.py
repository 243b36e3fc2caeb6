"""The key-value workload contract: well-formed Jepsen histories, unique values, accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.replication.kv import KVStoreBase, KVWorkload, Zipf
from simulator import NO_REPLY, Constant, RpcError, Simulation
from simulator.history import History


class Op:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def pair_ops(h: History) -> list[Op]:
    """Operations in invocation order (raises if a process ever has two open ops)."""
    History.from_events(h.events())  # validates the pairing: one open op per process
    open_by_proc: dict = {}
    ops: list[Op] = []
    for i, t in enumerate(h.type):
        if t == "invoke":
            o = Op(process=h.process[i], f=h.f[i], key=h.key[i], value=h.value[i], result=None,
                   type="info", invoke_time=h.time[i])
            open_by_proc[h.process[i]] = o
            ops.append(o)
        else:
            o = open_by_proc.pop(h.process[i])
            o.type, o.result = t, h.value[i]
    return ops


class DictStore(KVStoreBase):
    """One register per key on every replica; replica ``r0`` is the only one that serves
    (others answer not_leader pointing at it); a write to key 'slow' never replies."""

    def __init__(self, sim: Simulation, n: int = 2) -> None:
        self.sim, self.name = sim, "dict"
        self.nodes = [sim.node(f"r{i}") for i in range(n)]
        self.data: dict = {}
        for node in self.nodes:
            node.on("kv.read", self._read(node))
            node.on("kv.write", self._write(node))
            node.on("kv.cas", self._cas(node))

    def _guard(self, node):
        if node.name != "r0":
            raise RpcError(("not_leader", "r0"))

    def _read(self, node):
        def h(msg):
            self._guard(node)
            return self.data.get(msg.payload[0])
        return h

    def _write(self, node):
        def h(msg):
            self._guard(node)
            key, value = msg.payload
            self.data[key] = value
            return NO_REPLY if key == 0 and value % 7 == 0 else True  # some writes time out
        return h

    def _cas(self, node):
        def h(msg):
            self._guard(node)
            key, exp, new = msg.payload
            if self.data.get(key) != exp:
                raise RpcError("cas_mismatch")
            self.data[key] = new
            return True
        return h


def test_history_is_well_formed_and_every_op_is_accounted_for():
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.001))
    store = DictStore(sim)
    # half the clients start at the follower: they must be redirected within the same op
    wl = KVWorkload(sim, store, clients=["a", "b", "c", "d"], rate=200, keys=3, write_ratio=0.4,
                    cas_ratio=0.2, timeout_s=0.05, stop_at=2.0,
                    client_placement={"a": ["r1", "r0"], "b": "r1"})
    sim.run(until=3.0)
    ops = pair_ops(wl.history)  # raises if any process had two open ops
    assert len(ops) == wl.issued == len(sim.metrics)
    df = sim.metrics.requests()
    assert set(df["outcome"].astype(str)) <= {"ok", "error", "timeout"}
    # history and metrics agree op by op on the outcome class
    hist = [o.type for o in ops]
    met = ["ok" if o == "ok" else "info" if o == "timeout" else "fail" for o in df["outcome"].astype(str)]
    assert hist == met
    writes = [o.value for o in ops if o.f == "write"] + [o.value[1] for o in ops if o.f == "cas"]
    assert len(writes) == len(set(writes)), "written values must be unique"
    # timeouts happened (writes of multiples of 7 to key 0) and each started a fresh process
    infos = [o for o in ops if o.type == "info"]
    assert infos
    for o in infos:
        later = [p for p in ops if p.process == o.process and p.invoke_time > o.invoke_time]
        assert not later, "a process that ended in info must never invoke again"
    # redirected ops took 2 attempts and still succeeded
    assert (df[(df.client == "b") & (df.outcome == "ok")]["attempts"] == 2).all()
    assert wl.skipped >= 0 and (df["outcome"] == "ok").mean() > 0.5


def test_reads_see_the_values_written():
    sim = Simulation(seed=1)
    store = DictStore(sim, n=1)
    wl = KVWorkload(sim, store, clients=1, rate=100, keys=2, write_ratio=0.5, timeout_s=0.05, stop_at=1.0)
    sim.run(until=2.0)
    ops = pair_ops(wl.history)
    last: dict = {}
    for o in ops:  # one sequential client on a single register: a read sees the last write
        if o.type != "ok":
            if o.f == "write":
                last[o.key] = None  # unknown
            continue
        if o.f == "write":
            last[o.key] = o.value
        elif o.key in last and last[o.key] is not None:
            assert o.result == last[o.key]


def test_zipf_key_frequencies_follow_the_law():
    sim = Simulation(seed=5)
    z = Zipf(5, s=1.2)
    draw = z.sampler(sim, "keys")
    n = 40_000
    counts = np.bincount([draw() for _ in range(n)], minlength=5)
    p = z.probabilities()
    # each frequency within 5 binomial standard errors
    assert np.all(np.abs(counts / n - p) <= 5 * np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("kwargs, field", [
    (dict(rate=0), "rate"), (dict(write_ratio=1.5), "write_ratio"),
    (dict(write_ratio=0.8, cas_ratio=0.3), "cas_ratio"), (dict(timeout_s=0), "timeout_s"),
    (dict(clients=0), "clients"), (dict(stop_at=-1.0), "stop_at"), (dict(rate=math.inf), "rate"),
])
def test_bad_parameters_are_refused(kwargs, field):
    sim = Simulation(seed=1)
    store = DictStore(sim, n=1)
    with pytest.raises(ValueError, match=field):
        KVWorkload(sim, store, **kwargs)
