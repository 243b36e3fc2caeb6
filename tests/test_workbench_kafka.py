"""The kafka workload: the reference node passes Jepsen's kafka checker, the per-node-offsets variant is
caught, the checker fails each anomaly on a tiny bad history and passes its repaired twin, the client
keeps Maelstrom's per-client state, and runs are deterministic."""

import pytest

from models.workbench import SERVICES, reference
from simulator.history.ops import Op
from simulator.workbench.harness import TestOptions, TestRun
from simulator.workbench.kafka import check_kafka


def _run(var, nem=("partition",), seed=1, rate=50, **extra):
    o = TestOptions(workload="kafka", node=reference("kafka", var), node_count=5, time_limit=20, rate=rate,
                    nemesis=nem, nemesis_interval=3, seed=seed, latency_ms=10, extra=extra)
    return TestRun(o, services={"lin-kv": SERVICES["lin-kv"]}).run()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_reference_is_valid_under_partitions(seed):
    res = _run("reference", seed=seed).results()
    w = res["workload"]
    assert w["valid"] is True, w["witness"]
    assert w["sends_ok"] > 100 and w["polls_ok"] > 100  # the checker had a real history to judge
    assert res["valid"] is True


def test_reference_is_valid_when_nodes_are_killed():
    res = _run("reference", nem=("kill", "pause"), seed=3).results()
    assert res["workload"]["valid"] is True, res["workload"]["witness"]
    assert res["perf"]["info"] > 0  # some sends were cut off mid-way: indefinite, and still no anomaly


def test_per_node_offsets_gives_inconsistent_offsets():
    w = _run("per-node-offsets").results()["workload"]
    assert w["valid"] is False
    assert w["anomaly"] == "inconsistent-offsets" and w["counts"]["inconsistent-offsets"] >= 1
    assert "send" in w["witness"][0]


def test_same_seed_same_results():
    assert _run("reference", seed=7).results() == _run("reference", seed=7).results()


def test_clients_poll_from_where_they_left_off_and_commit_what_they_polled():
    """Maelstrom's client: a poll asks for 1 + the highest offset this client read of each key it still
    holds (assign keeps held keys, starts new ones at the committed offset or 0); a commit commits at
    most what the client polled. Every client ends with one final poll of every key from 0."""
    run = _run("reference", seed=2)
    ops = run.ops
    state: dict = {}
    checked = 0
    for o in ops:
        st = state.setdefault(o.process, {"off": {}, "top": {}})
        if o.f == "assign" and o.type == "ok":
            st["off"] = {k: st["off"].get(k, o.result.get(k, 0)) for k in o.value}
        elif o.f == "poll" and o.key != "final":
            assert o.value == st["off"]
            checked += bool(o.value)
            if o.type == "ok":
                for k, pairs in o.result.items():
                    if pairs:
                        st["off"][k] = max(st["off"].get(k, 0), pairs[-1][0] + 1)
                        st["top"][k] = max(st["top"].get(k, -1), pairs[-1][0])
        elif o.f == "commit_offsets":
            assert all(off <= st["top"][k] for k, off in o.value.items())
    assert checked > 20
    finals = [o for o in ops if o.key == "final"]
    assert len(finals) == run.opts.clients and all(o.type == "ok" for o in finals)


def test_bad_option_names_it():
    with pytest.raises(ValueError, match="kafka_sub_p"):
        _run("reference", kafka_sub_p=2)


# -- the checker on hand-built histories ----------------------------------------------------------------
def _ops(*specs):
    """Each spec: (process, f, key, value, result, type); op i runs over [i, i + 0.5]."""
    return [Op(i, p, f, k, v, r, t, float(i), i + 0.5) for i, (p, f, k, v, r, t) in enumerate(specs)]


def send(p, msg, off, t="ok", k="a"):
    return (p, "send", k, msg, off if t == "ok" else {"error": 0}, t)


def poll(p, *pairs, k="a", at=0):
    return (p, "poll", None, {k: at}, {k: [list(x) for x in pairs]}, "ok")


SENDS = [send(0, 1, 0), send(0, 2, 1), send(0, 3, 2)]
CASES = {
    # name: (bad history, good twin)
    "inconsistent-offsets": ([send(0, 1, 0), send(1, 2, 0), poll(2, (0, 1), (1, 2))],
                             [send(0, 1, 0), send(1, 2, 1), poll(2, (0, 1), (1, 2))]),
    "duplicate": ([send(0, 1, 0), send(0, 2, 1), poll(1, (0, 1), (1, 2), (2, 1))],
                  [send(0, 1, 0), send(0, 2, 1), poll(1, (0, 1), (1, 2))]),
    "lost-write": (SENDS + [poll(1, (0, 1)), poll(2, (2, 3), at=2)],
                   SENDS + [poll(1, (0, 1)), poll(2, (1, 2), (2, 3), at=1)]),
    "unseen": ([send(0, 1, 0), send(0, 2, 0, k="b"), poll(1, (0, 2), k="b")],
               [send(0, 1, 0), send(0, 2, 0, k="b"), poll(1, (0, 2), k="b"), poll(1, (0, 1))]),
    "G1a": ([send(0, 5, None, t="fail"), poll(1, (0, 5))], [send(0, 5, 0), poll(1, (0, 5))]),
    "int-poll-skip": (SENDS + [poll(1, (0, 1), (2, 3)), poll(2, (1, 2), at=1)],
                      SENDS + [poll(1, (0, 1), (1, 2), (2, 3)), poll(2, (1, 2), at=1)]),
    "int-nonmonotonic-poll": (SENDS + [poll(1, (1, 2), (0, 1), (2, 3))],
                              SENDS + [poll(1, (0, 1), (1, 2), (2, 3))]),
    "poll-skip": (SENDS + [poll(1, (0, 1)), poll(1, (2, 3), at=1), poll(2, (1, 2), at=1)],
                  SENDS + [poll(1, (0, 1)), poll(1, (1, 2), (2, 3), at=1)]),
    "nonmonotonic-poll": (SENDS + [poll(1, (0, 1), (1, 2)), poll(1, (1, 2), (2, 3), at=1)],
                          SENDS + [poll(1, (0, 1), (1, 2)), poll(1, (2, 3), at=2)]),
    "nonmonotonic-send": ([send(0, 2, 1), send(0, 1, 0), poll(1, (0, 1), (1, 2))],
                          [send(0, 1, 0), send(0, 2, 1), poll(1, (0, 1), (1, 2))]),
    "nonmonotonic-commit": (
        [send(0, 1, 0), (0, "commit_offsets", None, {"a": 0}, {"a": 0}, "ok"),
         (1, "assign", None, ["a"], {}, "ok"), poll(1, (0, 1))],
        [send(0, 1, 0), (0, "commit_offsets", None, {"a": 0}, {"a": 0}, "ok"),
         (1, "assign", None, ["a"], {"a": 0}, "ok"), poll(1, (0, 1))]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_checker_fails_the_bad_history_and_passes_its_twin(name):
    bad, good = CASES[name]
    r = check_kafka(_ops(*bad))
    assert r["valid"] is False and name in r["error_types"], r
    assert any(w.startswith(name) for w in r["witness"])
    g = check_kafka(_ops(*good))
    assert g["valid"] is True, g


def test_assign_resets_the_poll_position_check():
    """Jepsen: skips between polls are not tracked across an assign that drops the key."""
    hist = SENDS + [poll(1, (0, 1)), (1, "assign", None, ["b"], {}, "ok"), (1, "assign", None, ["a"], {}, "ok"),
                    poll(1, (2, 3), at=2), poll(2, (1, 2), at=1)]
    assert check_kafka(_ops(*hist))["valid"] is True
    held = SENDS + [poll(1, (0, 1)), (1, "assign", None, ["a"], {}, "ok"), poll(1, (2, 3), at=2),
                    poll(2, (1, 2), at=1)]
    assert check_kafka(_ops(*held))["error_types"] == ["poll-skip"]


def test_indefinite_sends_may_be_missing_and_commits_check_is_optional():
    hist = [send(0, 1, None, t="info"), send(0, 2, 1), poll(1, (1, 2), at=0)]
    assert check_kafka(_ops(*hist))["valid"] is True  # offset 0 unknown: no lost write, no skip
    bad = CASES["nonmonotonic-commit"][0]
    assert check_kafka(_ops(*bad), commits=False)["valid"] is True
    assert check_kafka([])["valid"] is None
