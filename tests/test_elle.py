"""Elle-style transactional checker: one hand-built history per anomaly, the Elle README's and paper's
examples, serializable-by-construction histories (always valid), injected anomalies (always found),
bad input and the CLI entry point."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.history.elle import TxnInputError, check_transactions, main_check_transactions
from simulator.history.txn.synth import inject_aborted_read, inject_stale_read, serializable_list_append


def _pair(p, value, typ="ok"):
    inv = [[f, k, None if f == "r" else v] for f, k, v in value]
    return ({"type": "invoke", "process": p, "f": "txn", "value": inv},
            {"type": typ, "process": p, "f": "txn", "value": value if typ == "ok" else inv})


def serial(*txns):
    """Each (process, micro-ops[, type]) invoked and completed before the next begins."""
    out = []
    for t in txns:
        out.extend(_pair(*t))
    return out


def concurrent(*txns):
    """All invoked, then all completed: no real-time order among them."""
    pairs = [_pair(*t) for t in txns]
    return [a for a, _ in pairs] + [b for _, b in pairs]


def check(h, workload="list-append", **kw):
    return check_transactions(h, workload, **kw)


# -- list-append, one history per anomaly ------------------------------------------------------------
def test_g0_write_cycle():
    h = concurrent((0, [["append", "x", 1], ["append", "y", 2]]), (1, [["append", "x", 2], ["append", "y", 1]]))
    h += serial((2, [["r", "x", [1, 2]], ["r", "y", [1, 2]]]))
    r = check(h, realtime=False)
    assert "G0" in r.anomalies and not r.valid
    assert r.models_ok == []  # even read uncommitted forbids G0 (Adya PL-1)
    w = r.anomalies["G0"][0]
    assert sorted(w["txns"]) == [0, 1] and [e[1] for e in w["cycle"]] == ["ww", "ww"]


def test_g1a_aborted_read():
    r = check(serial((0, [["append", "x", 1]], "fail"), (1, [["r", "x", [1]]])))
    assert list(r.anomalies) == ["G1a"]
    assert "failed" in r.anomalies["G1a"][0]["explanation"][0]
    assert r.strongest == ["read-uncommitted"]


def test_g1b_intermediate_read():
    h = concurrent((0, [["append", "x", 1], ["append", "x", 2]]), (1, [["r", "x", [1]]]))
    r = check(h, realtime=False)
    assert "G1b" in r.anomalies and "read-committed" not in r.models_ok
    assert "intermediate" in r.anomalies["G1b"][0]["explanation"][0]


def test_g1c_readme_demo():
    """Elle's README demo: T1 appends 1 to x and reads y=[1]; T2 appends 2 to x and 1 to y; T3 reads
    x=[1, 2]. T2 wr-> T1 (y) and T1 ww-> T2 (x): G1c, cyclic information flow."""
    h = concurrent((0, [["append", "x", 1], ["r", "y", [1]]]), (1, [["append", "x", 2], ["append", "y", 1]]))
    h += serial((2, [["r", "x", [1, 2]]]))
    r = check(h, realtime=False)
    assert list(r.anomalies) == ["G1c"]
    assert sorted(e[1] for e in r.anomalies["G1c"][0]["cycle"]) == ["wr", "ww"]
    assert r.models_ok == ["read-uncommitted"]
    text = " ".join(r.anomalies["G1c"][0]["explanation"])
    assert "T1 appended 1 to 'y'" in text and "T0 ww-precedes T1" in text


def test_g_single_read_skew():
    h = concurrent((0, [["append", "x", 1], ["append", "y", 1]]), (1, [["r", "x", []], ["r", "y", [1]]]))
    r = check(h, realtime=False)
    assert list(r.anomalies) == ["G-single"]
    assert r.strongest == ["read-committed"]  # G-single rules out SI and repeatable read
    assert "T1 read 'x' = [] without 1, which T0 appended" in r.anomalies["G-single"][0]["explanation"][0]


def test_g2_item_write_skew_is_allowed_by_snapshot_isolation():
    h = concurrent((0, [["r", "x", []], ["r", "y", []], ["append", "x", 1]]),
                   (1, [["r", "x", []], ["r", "y", []], ["append", "y", 1]]))
    r = check(h, realtime=False)
    assert list(r.anomalies) == ["G2-item"]
    assert [e[1] for e in r.anomalies["G2-item"][0]["cycle"]] == ["rw", "rw"]
    assert "snapshot-isolation" in r.models_ok and "repeatable-read" not in r.models_ok
    assert r.strongest == ["strong-session-snapshot-isolation"]  # process order is always used


def test_lost_update():
    h = concurrent((0, [["r", "x", []], ["append", "x", 1]]), (1, [["r", "x", []], ["append", "x", 2]]))
    h += serial((2, [["r", "x", [1, 2]]]))
    r = check(h, realtime=False)
    assert "lost-update" in r.anomalies and sorted(r.anomalies["lost-update"][0]["txns"]) == [0, 1]
    assert "snapshot-isolation" not in r.models_ok and "repeatable-read" not in r.models_ok


def test_internal_inconsistency():
    r = check(serial((0, [["append", "x", 1], ["r", "x", []]])))
    assert list(r.anomalies) == ["internal"]
    # Elle's table (after Cerone et al.): INT is required by serializability and SI, not by PL-2.99
    assert "serializable" not in r.models_ok and "snapshot-isolation" not in r.models_ok
    assert "repeatable-read" in r.models_ok


def test_incompatible_order_duplicates_and_garbage():
    h = serial((0, [["append", "x", 1], ["append", "x", 2], ["append", "x", 3]]), (1, [["r", "x", [1, 2]]]),
               (2, [["r", "x", [1, 3]]]), (3, [["r", "y", [7, 7]]]), (4, [["r", "z", [9]]]))
    r = check(h)
    assert {"incompatible-order", "duplicate-elements", "garbage-read"} <= set(r.anomalies)
    assert r.models_ok == []


def test_valid_serial_history_is_strict_serializable():
    h = serial((0, [["append", "x", 1], ["r", "y", []]]), (1, [["r", "x", [1]], ["append", "y", 2]]),
               (0, [["r", "x", [1]], ["r", "y", [2]], ["append", "x", 3]]), (2, [["append", "x", 4]], "info"),
               (3, [["r", "x", [1, 3]]]))
    r = check(h)
    assert r.valid and r.anomalies == {} and r.models_ok[0] == "strict-serializable"
    assert r.strongest == ["strict-serializable"]
    assert "no anomalies" in str(r)


def test_realtime_and_process_variants():
    """T1 finishes appending before T2 starts, yet T2 reads x empty: serializable (T2 first), but not
    strictly — a G-single through a real-time edge; on one process it is a session violation too."""
    h = serial((0, [["append", "x", 1]]), (1, [["r", "x", []]]))
    r = check(h)
    assert list(r.anomalies) == ["G-single-realtime"] and not r.valid
    assert "serializable" in r.models_ok and "strict-serializable" not in r.models_ok
    assert check(h, realtime=False).valid
    same = serial((0, [["append", "x", 1]]), (0, [["r", "x", []]]))
    rp = check(same, realtime=False)
    assert list(rp.anomalies) == ["G-single-process"]
    assert rp.strongest == ["serializable"] and "strong-session-serializable" not in rp.models_ok


def test_info_transaction_seen_is_committed_unseen_is_ignored():
    h = serial((0, [["append", "x", 1]], "info"), (1, [["r", "x", [1]]]), (2, [["append", "y", 5]], "info"))
    assert check(h).valid


def test_elle_paper_example():
    """histories/paper-example.edn in jepsen-io/elle (the paper's running example, four transactions on
    keys 250-256), transcribed with processes added (the file has none). By Elle's rules, worked by hand:
    T3 read 255 = [2 3 4 5] without 8, which T1 appended next (rw); T2 read 255 ending in T1's 8 (wr); T3's
    append of 3 to 256 was never read, so it came after 4, the last element read, which T2 appended (ww).
    T3 -rw-> T1 -wr-> T2 -ww-> T3 has one anti-dependency: G-single (read skew)."""
    h = serial(
        (0, [["append", 253, 1], ["append", 253, 3], ["append", 253, 4], ["append", 255, 2], ["append", 255, 3],
             ["append", 255, 4], ["append", 255, 5], ["append", 256, 1], ["append", 256, 2]]))
    h += concurrent(
        (1, [["append", 255, 8], ["r", 253, [1, 3, 4]]]),
        (2, [["append", 256, 4], ["r", 255, [2, 3, 4, 5, 8]], ["r", 256, [1, 2, 4]], ["r", 253, [1, 3, 4]]]),
        (3, [["append", 250, 10], ["r", 253, [1, 3, 4]], ["r", 255, [2, 3, 4, 5]], ["append", 256, 3]]))
    r = check(h)
    assert list(r.anomalies) == ["G-single"]
    assert r.anomalies["G-single"][0]["cycle"] == [[3, "rw", 1], [1, "wr", 2], [2, "ww", 3]]
    assert r.strongest == ["read-committed"]


# -- rw-register -----------------------------------------------------------------------------------
def test_register_anomalies():
    reg = lambda h, **kw: check(h, "rw-register", realtime=False, **kw)  # noqa: E731
    skew = concurrent((0, [["r", "x", None], ["r", "y", None], ["w", "x", 1]]),
                      (1, [["r", "x", None], ["r", "y", None], ["w", "y", 1]]))
    assert list(reg(skew).anomalies) == ["G2-item"] and reg(skew).strongest == ["strong-session-snapshot-isolation"]
    g1c = concurrent((0, [["w", "x", 1], ["r", "y", 1]]), (1, [["r", "x", 1], ["w", "y", 1]]))
    assert "G1c" in reg(g1c).anomalies
    gsingle = concurrent((0, [["w", "x", 1], ["w", "y", 1]]), (1, [["r", "x", None], ["r", "y", 1]]))
    assert list(reg(gsingle).anomalies) == ["G-single"]
    assert "G1a" in reg(serial((0, [["w", "x", 1]], "fail"), (1, [["r", "x", 1]]))).anomalies
    assert "G1b" in reg(serial((0, [["w", "x", 1], ["w", "x", 2]]), (1, [["r", "x", 1]]))).anomalies
    lost = concurrent((0, [["r", "x", None], ["w", "x", 1]]), (1, [["r", "x", None], ["w", "x", 2]]))
    assert "lost-update" in reg(lost).anomalies
    assert list(reg(serial((0, [["w", "x", 1], ["r", "x", 2]]))).anomalies) == ["internal"]
    ok = serial((0, [["w", "x", 1]]), (1, [["r", "x", 1], ["w", "x", 2]]), (2, [["r", "x", 2], ["w", "y", 3]]))
    assert check(ok, "rw-register").valid


# -- generated histories ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), keys=st.integers(1, 6),
       procs=st.integers(1, 8), window=st.floats(0.0, 6.0))
def test_serializable_by_construction_is_always_valid(seed, n, keys, procs, window):
    ev = serializable_list_append(np.random.default_rng(seed), n, keys=keys, processes=procs, window=window,
                                  max_appends_per_key=8)
    r = check(ev)
    assert r.valid and r.anomalies == {}, f"seed={seed}: {r}"


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), window=st.floats(0.5, 6.0))
def test_injected_anomalies_are_found(seed, window):
    rng = np.random.default_rng(seed)
    ev = serializable_list_append(rng, 80, keys=3, processes=5, window=window, fail_ratio=0.1)
    bad = inject_stale_read(ev, rng)
    if bad is not None:  # the reader now misses a write that finished before it began
        r = check(bad)
        assert not r.valid and any(a.startswith(("G-single", "G2", "G-nonadjacent", "G1c")) for a in r.anomalies)
    aborted = inject_aborted_read(ev)
    if aborted is not None:
        assert "G1a" in check(aborted).anomalies


# -- input and CLI -------------------------------------------------------------------------------------
def test_duplicate_appends_are_bad_input():
    with pytest.raises(TxnInputError, match="twice"):
        check(serial((0, [["append", "x", 1]]), (1, [["append", "x", 1]])))


def test_bad_files_name_the_line(tmp_path):
    f = tmp_path / "h.jsonl"
    f.write_text(json.dumps(_pair(0, [["append", "x", 1]])[0]) + "\n{not json\n")
    with pytest.raises(TxnInputError, match=r"h.jsonl:2: not valid JSON"):
        check(str(f))
    f.write_text('{"type": "invoke", "process": 0, "value": [["cas", "x", 1]]}\n')
    with pytest.raises(TxnInputError, match=r"h.jsonl:1: .*cas"):
        check(str(f))
    f.write_text("")
    with pytest.raises(TxnInputError, match="empty"):
        check(str(f))
    with pytest.raises(TxnInputError, match="directory"):
        check(str(tmp_path))


def test_cli_entry_exit_codes(tmp_path, capsys):
    good, bad, broken = tmp_path / "good.jsonl", tmp_path / "bad.jsonl", tmp_path / "broken.jsonl"
    good.write_text("".join(json.dumps(e) + "\n" for e in serial((0, [["append", "x", 1]]), (1, [["r", "x", [1]]]))))
    bad.write_text("".join(json.dumps(e) + "\n" for e in serial((0, [["append", "x", 1]]), (1, [["r", "x", []]]))))
    broken.write_text("[1, 2]\n")
    assert main_check_transactions(str(good), "list-append", False) == 0
    assert main_check_transactions(str(bad), "list-append", True) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["valid"] is False and "G-single-realtime" in out["anomalies"]
    assert main_check_transactions(str(broken), "list-append", False) == 2
    assert "broken.jsonl:1:" in capsys.readouterr().err


def test_tiny_search_budget_still_reports_every_cyclic_component():
    """Witness length may suffer when searches run out of budget, the verdict may not."""
    h = concurrent((0, [["r", "x", []], ["r", "y", []], ["append", "x", 1]]),
                   (1, [["r", "x", []], ["r", "y", []], ["append", "y", 1]]))
    r = check(h, realtime=False, budget=0)
    assert not r.valid and "G2-item" in r.anomalies and "budget" in r.notes[0]


def test_edn_history_loads(tmp_path):
    """The paper example again, as Jepsen writes EDN (keywords, nil, vectors; times in nanoseconds)."""
    t0 = "[:append 253 1] [:append 253 3] [:append 253 4] [:append 255 2] [:append 256 1] [:append 256 2]"
    rows = [(0, "invoke", f"[{t0}]"), (0, "ok", f"[{t0}]"),
            (1, "invoke", "[[:append 255 8] [:r 253 nil]]"),
            (2, "invoke", "[[:append 256 4] [:r 255 nil] [:r 256 nil]]"),
            (3, "invoke", "[[:r 255 nil] [:append 256 3]]"),
            (1, "ok", "[[:append 255 8] [:r 253 [1 3 4]]]"),
            (2, "ok", "[[:append 256 4] [:r 255 [2 8]] [:r 256 [1 2 4]]]"),
            (3, "ok", "[[:r 255 [2]] [:append 256 3]]")]
    f = tmp_path / "history.edn"
    f.write_text("".join(f"{{:type :{t}, :f :txn, :value {v}, :process {p}, :time {i * 1000}}}\n"
                         for i, (p, t, v) in enumerate(rows)) + "{:type :info, :f :kill, :process :nemesis}\n")
    r = check(str(f))
    assert list(r.anomalies) == ["G-single"] and r.n_txns == 4


def test_project_history_object():
    from simulator.history import History

    h = History()
    a = h.invoke(0, "txn", None, [["append", "x", 1]], 0.0)
    h.ok(a, 1.0)
    b = h.invoke(1, "txn", None, [["r", "x", None]], 2.0)
    h.ok(b, 3.0, [["r", "x", []]])
    assert list(check(h).anomalies) == ["G-single-realtime"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 100), keys=st.integers(1, 4), window=st.floats(0.0, 6.0))
def test_serializable_register_histories_are_valid(seed, n, keys, window):
    ev = serializable_list_append(np.random.default_rng(seed), n, keys=keys, processes=4, window=window,
                                  registers=True)
    r = check(ev, "rw-register")
    assert r.valid and r.anomalies == {}, f"seed={seed}: {r}"
