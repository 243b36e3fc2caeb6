"""`splitbrain hunt`: ddmin finds a 1-minimal failing subset; the hunt loop, replay commands and input
checks; Raft as shipped passes a block of seeds."""

import itertools

import pytest

from simulator.faults import Crash, FaultSchedule, Pause
from simulator.runner.cli import main
from simulator.runner.hunt import chunks, ddmin, hunt, replay_command, shrink


def test_ddmin_finds_a_1_minimal_subset_of_a_synthetic_predicate():
    # fails iff {3, 7} (both) or {12} are present: the answer must be 1-minimal (no single item removable)
    def fails(xs):
        s = set(xs)
        return {3, 7} <= s or 12 in s

    for items in (list(range(20)), [3, 7, 1, 2], [12], list(range(11, 0, -1)) + [7]):
        out = ddmin(items, fails)
        assert fails(out)
        assert all(not fails(out[:i] + out[i + 1:]) for i in range(len(out)))
    assert sorted(ddmin(list(range(20)), fails)) in ([12], [3, 7])


def test_shrink_shortens_faults_while_the_failure_persists():
    faults = [Crash(at=1.23, node="a", recover_at=2.0), Pause(at=0.5, node="b", duration=1.0)]

    def fails(xs):  # fails iff a crash of 'a' lasting >= 0.1 s is present
        return any(isinstance(f, Crash) and f.recover_at - f.at >= 0.1 for f in xs)

    res = shrink(faults, fails)
    (f,) = res["faults"]
    assert isinstance(f, Crash) and 0.1 <= f.recover_at - f.at < 0.2 and f.at == 1.2


def test_chunks_cover_every_seed_once():
    for start, n, w in itertools.product((0, 5), (1, 7, 10_000), (1, 2)):
        cs = chunks(start, n, w)
        assert [s for c in cs for s in c] == list(range(start, start + n))
        assert max(len(c) for c in cs) <= 250


def test_raft_as_shipped_passes_a_block_of_seeds_serial_and_pooled():
    a = hunt("raft", "raft_safety", 6, 0, "shipped", workers=1)
    b = hunt("raft", "raft_safety", 6, 0, "shipped", workers=2)
    assert a["failing"] == b["failing"] == [] and a["errors"] == b["errors"] == []
    c = hunt("raft", "linearizable", 3, 0, "shipped", workers=1)
    assert c["failing"] == []


def test_replay_command_and_saved_schedule(tmp_path, capsys):
    assert replay_command("raft", "linearizable", 1234, "figure8") == \
        "splitbrain hunt raft --property linearizable --seeds 1 --start 1234 --variant figure8"
    p = tmp_path / "s.json"
    FaultSchedule([Crash(at=1.0, node="raft0", recover_at=1.5)]).to_json(p)
    assert main(["hunt", "raft", "--property", "raft_safety", "--seeds", "1", "--faults", str(p), "--serial"]) == 0


@pytest.mark.parametrize("argv, word", [
    (["hunt", "nope", "--property", "linearizable"], "unknown scenario"),
    (["hunt", "raft", "--property", "nope"], "--property"),
    (["hunt", "raft", "--property", "linearizable", "--variant", "x"], "--variant"),
    (["hunt", "raft", "--property", "linearizable", "--seeds", "0"], "--seeds"),
    (["hunt", "raft", "--property", "linearizable", "--start", "-1"], "--start"),
    (["hunt", "raft", "--property", "linearizable", "--workers", "0"], "--workers"),
    (["hunt", "raft", "--property", "linearizable", "--faults", "/nonexistent.json"], "--faults"),
])
def test_bad_input_exits_2_with_one_line(argv, word, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and len(err.splitlines()) == 1
