"""The lin-kv, txn-rw-register and txn-list-append workloads: reference nodes pass under partitions, each
wrong variant is caught with the anomaly its mistake makes, the checkers classify hand-made histories as
Maelstrom does, the generators draw Maelstrom's mix, runs are deterministic, bad options are refused."""

import math
from collections import Counter

import pytest

from models.workbench import SERVICES, reference
from simulator.history import History
from simulator.workbench.harness import TestOptions, TestRun
from simulator.workbench.kv import check_lin_kv
from simulator.workbench.workloads import WORKLOADS

SS, RC = ("strict-serializable",), ("read-committed",)
RC_ANOMALIES = {"G0", "G1a", "G1b", "G1c"}  # what read committed forbids (Adya's PL-2; Elle's names)


def _opts(wl, var="reference", seed=1, cm=SS, nem=("partition",), **kw):
    # small histories: 15 s at 20 ops/s (~300 operations); 20 ms links so replication visibly lags
    return TestOptions(workload=wl, node=reference(wl, var), node_count=5, time_limit=15, rate=20, nemesis=nem,
                       nemesis_interval=3, seed=seed, latency_ms=20, consistency_models=cm, **kw)


def _run(wl, var="reference", seed=1, cm=SS, **kw):
    svc = {s: SERVICES[s] for s in WORKLOADS[wl].services}
    t = TestRun(_opts(wl, var, seed, cm, **kw), services=svc).run()
    return t, t.results()


# -- references pass ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("wl,var,cm", [("lin-kv", "reference", SS), ("txn-rw-register", "reference", SS),
                                       ("txn-rw-register", "read-committed", RC),
                                       ("txn-list-append", "reference", SS)])
def test_reference_valid_under_partitions(wl, var, cm, seed):
    t, r = _run(wl, var, seed, cm)
    assert r["faults"] > 0
    if wl != "lin-kv":  # the lin-kv proxy talks only to the service, which no partition cuts
        assert r["net"]["dropped_partition"] > 0
    assert r["workload"]["valid"] is True, r["workload"]
    assert r["node_exceptions"] == {}
    assert r["perf"]["ok"] > 100
    if var == "read-committed":  # totally available (Glomers 6c runs it with --availability total)
        assert r["perf"]["ok"] == r["perf"]["ops"]
    # the CP references (all txns on n1) may time out behind a partition: no availability asserted


def test_lin_kv_definite_errors_are_fail():
    """Maelstrom: 20 (key missing) and 22 (cas precondition) are definite -> fail; the proxy times out
    nothing here, so every non-ok operation is one of those two."""
    t, r = _run("lin-kv", nem=())
    fails = [o for o in t.ops if o.type == "fail"]
    assert fails and r["perf"]["info"] == 0
    assert {o.result["error"] for o in fails} <= {20, 22}
    assert {o.f for o in fails if o.result["error"] == 22} == {"cas"}


# -- variants are caught -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("var", ["follower-read", "lww"])
def test_lin_kv_variants_not_linearizable(var, seed):
    _, r = _run("lin-kv", var, seed)
    w = r["workload"]
    assert w["valid"] is False and w["anomaly"] == "not-linearizable"
    assert w["witness_key"] in w["bad_keys"] and 2 <= len(w["witness"]) <= 20
    assert w["first_wrong"] in w["witness"]


@pytest.mark.parametrize("seed", [1, 2])
def test_no_isolation_breaks_read_committed(seed):
    _, r = _run("txn-rw-register", "no-isolation", seed, RC)
    w = r["workload"]
    assert w["valid"] is False and w["anomaly"] in RC_ANOMALIES, w["anomaly_types"]
    assert set(w["anomaly_types"]) <= RC_ANOMALIES  # judged against read committed alone
    assert "read-committed" not in w["models_ok"]
    assert any(s.startswith("T") for s in w["witness"]) and len(w["witness"]) >= 2


@pytest.mark.parametrize("seed", [1, 2])
def test_read_committed_reference_is_not_strict_serializable(seed):
    _, r = _run("txn-rw-register", "read-committed", seed, SS)
    w = r["workload"]
    assert w["valid"] is False and w["anomaly"] not in RC_ANOMALIES
    assert "read-committed" in w["models_ok"] and "serializable" not in w["models_ok"]
    base = {a.removesuffix("-realtime").removesuffix("-process") for a in w["anomaly_types"]}
    assert base <= {"G-single", "G-nonadjacent", "G2-item", "lost-update"}, w["anomaly_types"]


@pytest.mark.parametrize("seed", [1, 2])
def test_local_gossip_list_append_caught(seed):
    _, r = _run("txn-list-append", "local-gossip", seed, SS)
    w = r["workload"]
    assert w["valid"] is False and w["anomaly"] is not None
    # nodes apply concurrent appends in different orders: a ww cycle or a read that is no prefix
    assert {"G0", "G1c", "incompatible-order"} & set(w["anomaly_types"]), w["anomaly_types"]
    assert w["models_ok"] == []


def test_consistency_models_all_judged():
    """A variant valid for read-uncommitted but not read-committed is invalid when both are asked."""
    _, r = _run("txn-rw-register", "no-isolation", 1, ("read-uncommitted", "read-committed"))
    w = r["workload"]
    assert w["valid"] is False and w["consistency_models"] == ["read-uncommitted", "read-committed"]
    _, r = _run("txn-rw-register", "no-isolation", 1, ("read-uncommitted",))
    assert r["workload"]["valid"] is True


# -- the lin-kv checker on hand-made histories -----------------------------------------------------

def _hist(*ops):
    h = History()
    for p, f, k, v, t0, t1, typ, res in ops:
        i = h.invoke(p, f, k, v, t0)
        h.complete(i, typ, t1, res)
    return h


def test_lin_kv_checker_stale_read_and_failed_cas_information():
    ok = _hist((0, "write", 1, 3, 0.0, 1.0, "ok", None), (1, "read", 1, None, 2.0, 3.0, "ok", 3))
    assert check_lin_kv(ok)["valid"] is True
    stale = _hist((0, "write", 1, 3, 0.0, 1.0, "ok", None), (0, "write", 1, 4, 1.5, 2.0, "ok", None),
                  (1, "read", 1, None, 2.5, 3.0, "ok", 3))
    r = check_lin_kv(stale)
    assert r["valid"] is False and r["bad_keys"] == [1] and len(r["witness"]) == 3  # all needed
    # cas-register: a failed cas (22) says the value was not `from` at some instant; here it surely was
    cas = _hist((0, "write", 1, 3, 0.0, 1.0, "ok", None), (1, "cas", 1, [3, 4], 2.0, 3.0, "fail", {"error": 22}),
                (0, "read", 1, None, 4.0, 5.0, "ok", 3))
    assert check_lin_kv(cas)["valid"] is False
    # a read of a missing key (20) is a definite fail and constrains nothing (Maelstrom)
    miss = _hist((0, "write", 1, 3, 0.0, 1.0, "ok", None), (1, "read", 1, None, 2.0, 3.0, "fail", {"error": 20}))
    assert check_lin_kv(miss)["valid"] is True


# -- generators ----------------------------------------------------------------------------------------

def _workload(wl, **extra):
    return TestRun(TestOptions(workload=wl, node=reference(wl), extra=extra)).workload


def test_lin_kv_generator_mix():
    """Reads 1/2 (gen/reserve n readers of 2n threads), else write 1/3, cas 2/3; values rand-int 5.
    n = 4000 draws: the sd of a fraction p is sqrt(p(1-p)/n) <= 0.008; tolerance 4 sd."""
    w = _workload("lin-kv")
    ops = [w.next_op() for _ in range(4000)]
    c = Counter(f for f, _, _ in ops)
    assert abs(c["read"] / 4000 - 0.5) < 0.032
    assert abs(c["cas"] / (c["cas"] + c["write"]) - 2 / 3) < 0.045
    vals = [v for f, _, v in ops if f == "write"] + [x for f, _, v in ops if f == "cas" for x in v]
    assert set(vals) == set(range(5))
    per_key = Counter(k for _, k, _ in ops)  # one key in flight (5 clients < 2 x 5), 115..128 ops each
    assert all(115 <= n <= 128 for k, n in per_key.items() if k != max(per_key))


@pytest.mark.parametrize("wl,wf", [("txn-rw-register", "w"), ("txn-list-append", "append")])
def test_txn_generator_follows_elle_wr_txns(wl, wf):
    w = _workload(wl)
    txns = [w.next_op()[2] for _ in range(3000)]
    assert Counter(len(t) for t in txns).keys() == {1, 2, 3, 4}
    writes = Counter()
    for t in txns:
        for f, k, v in t:
            assert f in ("r", wf) and (v is None) == (f == "r")
            writes[k] += f == wf
    assert max(writes.values()) == 16  # max-writes-per-key, then the key is replaced
    values = [(k, v) for t in txns for f, k, v in t if f == wf]
    assert len(values) == len(set(values))  # unique per key
    assert len(w.active) == 10


def test_txn_key_distribution_is_exponential():
    """elle.txn/rand-key-i: index i with probability 2^i / (2^n - 1); n = 10, 20000 draws, 4 sd."""
    w = _workload("txn-rw-register")
    idx = Counter(w._key_index() for _ in range(20000))
    for i in range(10):
        p = 2 ** i / (2 ** 10 - 1)
        assert abs(idx[i] / 20000 - p) < 4 * math.sqrt(p * (1 - p) / 20000) + 1e-3


def test_malformed_txn_reply_is_refused():
    w = _workload("txn-list-append")
    asked = [["r", 1, None], ["append", 1, 5]]
    assert w.result("txn", None, asked, {"type": "txn_ok", "txn": [["r", 1, [2]], ["append", 1, 5]]}) == \
        [["r", 1, [2]], ["append", 1, 5]]
    for bad in ([["r", 1, [2]]], [["r", 1, 7], ["append", 1, 5]], [["r", 1, None], ["append", 1, 6]]):
        with pytest.raises(ValueError):
            w.result("txn", None, asked, {"type": "txn_ok", "txn": bad})


# -- determinism and bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("wl,var", [("lin-kv", "follower-read"), ("txn-list-append", "local-gossip")])
def test_same_seed_same_results(wl, var):
    (ta, a), (tb, b) = _run(wl, var, 5), _run(wl, var, 5)
    assert a == b and list(ta.history.events()) == list(tb.history.events())
    assert list(_run(wl, var, 6)[0].history.events()) != list(ta.history.events())  # the seed matters


@pytest.mark.parametrize("bad", [("linearizable",), ("read_committed",), (), "read-committed"])
def test_bad_consistency_model_names_the_field(bad):
    with pytest.raises(ValueError, match="consistency_models"):
        TestOptions(workload="txn-rw-register", node=reference("txn-rw-register"), consistency_models=bad)


@pytest.mark.parametrize("extra,field", [({"max_txn_length": 0}, "max_txn_length"),
                                         ({"key_count": 2.5}, "key_count"),
                                         ({"min_txn_length": 5}, "max_txn_length"),
                                         ({"max_writes_per_key": -1}, "max_writes_per_key")])
def test_bad_generator_option_names_it(extra, field):
    with pytest.raises(ValueError, match=field):
        _workload("txn-rw-register", **extra)


def test_bad_lin_kv_option_names_it():
    with pytest.raises(ValueError, match="per_key_limit"):
        _workload("lin-kv", per_key_limit=0)
