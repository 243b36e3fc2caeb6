"""Bad input on every verb: one line ``splitbrain: error: ...`` naming the flag, file, field or
value, and exit code 2, before any work starts — never a traceback (issue 21 part 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.faults import ClockJump, FaultSchedule
from simulator.runner.cli import main

DEEP = 100_000  # json and tomllib recurse once per level: this is far past the interpreter's limit


def refused(capsys, argv: list[str], *fragments: str) -> str:
    """Run the CLI; assert exit 2 and one stderr line with the prefix and every fragment."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splitbrain: error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return str(p)


# -- --faults (run, sweep and hunt read it the same way) -----------------------------------------
FAULT_CASES = {
    "deep": ("[" * DEEP + "]" * DEEP, "not a fault schedule: JSON nested too deeply"),
    "negative_time": (json.dumps([{"kind": "crash", "at": 1, "node": "s0"}, {"kind": "heal", "at": 2},
                                  {"kind": "crash", "at": -1, "node": "s1"}]),
                      "fault 3 of 3: crash.at must be a time in seconds >= 0, got -1"),
    "object": ('{"kind": "crash", "at": 1, "node": "s0"}', "must be a JSON list of faults, got a JSON object"),
    "number": ("5", "must be a JSON list of faults, got a JSON number"),
    "empty": ("", "not valid JSON"),
    "missing_at": ('[{"kind": "crash", "node": "s0"}]', "fault 1 of 1: crash: missing field(s) ['at']"),
    "missing_node": ('[{"kind": "pause", "at": 1, "duration": 1}]', "pause: missing field(s) ['node']"),
    "groups_not_lists": ('[{"kind": "partition", "at": 1, "groups": 5}]',
                         "partition.groups=5 must be a list of lists of node names"),
    "item_not_object": ("[5]", "fault 1 of 1: a fault must be an object with a 'kind', got 5"),
    "node_not_string": ('[{"kind": "crash", "at": 1, "node": 5}]', "crash.node=5 must be a string"),
    "on_not_list": ('[{"kind": "loss_burst", "at": 1, "duration": 1, "loss": 0.5, "on": 7}]',
                    "loss_burst.on=7 must be a list of node names or null"),
    "nan_time": ('[{"kind": "crash", "at": NaN, "node": "s0"}]', "crash.at=nan must be a finite number"),
    "huge_number": ('[{"kind": "heal", "at": 1e400}]', "heal.at=inf must be a finite number"),
    "string_number": ('[{"kind": "loss_burst", "at": 1, "loss": "0.5"}]', "loss_burst.loss='0.5' must be a finite"),
    "nan_clock_jump": ('[{"kind": "clock_jump", "at": 1, "node": "s0", "delta_s": NaN}]',
                       "clock_jump.delta_s=nan must be a finite number"),
    "unknown_kind": ('[{"kind": "meteor", "at": 1}]', "fault 1 of 1: unknown fault kind 'meteor'; allowed:"),
    "binary": (b"\xff\xfe\x00garbage", "not a text file"),
}


@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_run_faults_file_is_refused_in_one_line(tmp_path, capsys, case):
    text, fragment = FAULT_CASES[case]
    f = write(tmp_path, "f.json", text)
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--faults", f], f"--faults {f}: ", fragment)


@pytest.mark.parametrize("case", ["deep", "negative_time", "missing_at", "object"])
def test_hunt_faults_file_is_refused_the_same_way(tmp_path, capsys, case):
    text, fragment = FAULT_CASES[case]
    f = write(tmp_path, "f.json", text)
    refused(capsys, ["hunt", "raft", "--property", "linearizable", "--seeds", "1", "--serial", "--faults", f],
            f"--faults {f}: ", fragment)


def test_a_missing_or_directory_faults_file_names_the_file(tmp_path, capsys):
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--faults", str(tmp_path / "no.json")],
            "No such file or directory")
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--faults", str(tmp_path)], "Is a directory")


def test_a_good_schedule_with_a_byte_order_mark_or_leading_space_is_read(tmp_path, capsys):
    good = '[{"kind": "crash", "at": 1, "node": "s0", "recover_at": 2}]'
    for name, raw in (("bom.json", b"\xef\xbb\xbf" + good.encode()), ("space.json", ("\n  " + good).encode())):
        f = write(tmp_path, name, raw)
        assert main(["run", "kernel_demo", "--dry-run", "--faults", f]) == 0, capsys.readouterr().err
        text, sched = FaultSchedule.read(f)
        assert not text.startswith("\ufeff") and len(sched) == 1 and sched.faults[0].node == "s0"


def test_schedule_text_is_never_taken_for_a_path():
    with pytest.raises(ValueError, match="must be a JSON list of faults, got a JSON object"):
        FaultSchedule.from_json('{"kind": "heal", "at": 1}')
    with pytest.raises(ValueError, match="must be a JSON list"):
        FaultSchedule.loads("5")  # loads is text only: "5" is not a file called 5
    s = FaultSchedule()
    s.partition(1, [["a"], ("b", "c")], heal_at=2)
    assert FaultSchedule.from_list(s.to_list()) == s  # lists, as JSON gives them
    assert FaultSchedule.from_list([f.__dict__ | {"kind": f.kind} for f in s]) == s  # tuples, as Python gives them


def test_clock_jump_refuses_a_non_finite_step():
    with pytest.raises(ValueError, match="clock_jump.delta_s must be a finite number"):
        ClockJump(at=1, node="a", delta_s=float("nan"))


# -- --config, --resume, report: files the runner reads ------------------------------------------
def test_config_nested_too_deeply_or_not_a_table(tmp_path, capsys):
    deep = write(tmp_path, "deep.toml", "[params]\nx = " + "[" * DEEP + "]" * DEEP + "\n")
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--config", deep], f"--config {deep}: TOML nested too deeply")
    flat = write(tmp_path, "flat.toml", "params = 5\n")
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--config", flat], "params must be a table ([params])")
    binary = write(tmp_path, "bin.toml", b"\xff\xfe\x00")
    refused(capsys, ["run", "kernel_demo", "--dry-run", "--config", binary], f"--config {binary}: not a text file")


@pytest.mark.parametrize(("meta", "fragment"), [
    ("{not json", "cannot read it as JSON (Expecting property name"),
    ("[" * DEEP + "]" * DEEP, "cannot read it as JSON (nested too deeply)"),
    ("[]", "is not a splitbrain run's metadata (not a JSON object)"),
])
def test_resume_with_a_broken_metadata_file(tmp_path, capsys, meta, fragment):
    (tmp_path / "metadata.json").write_text(meta)
    refused(capsys, ["run", "kernel_demo", "--quick", "--serial", "--out", str(tmp_path), "--resume"],
            "--resume: ", fragment)


def test_report_of_metadata_nested_too_deeply(tmp_path, capsys):
    (tmp_path / "metadata.json").write_text("[" * DEEP + "]" * DEEP)
    refused(capsys, ["report", str(tmp_path)], "metadata.json: cannot read it as JSON (nested too deeply)")


# -- check ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["linearizable", "transactions"])
@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("deep.jsonl", '{"process": 0, "type": "invoke", "f": "txn", "value": ' + "[" * DEEP + "]" * DEEP + "}\n",
     "nested too deeply"),
    ("deep.edn", "{:a " * 50_000 + "1" + "}" * 50_000 + "\n", "nested too deeply"),
    ("bin.jsonl", b"\xff\xfe\x00\x01", "not a text file"),
    ("bad.jsonl", '{"process": 0, "type": "invoke", "f": "write", "value": 1}\nnot json\n', ":2: not valid JSON"),
    ("empty.jsonl", "", "empty history"),
])
def test_check_bad_history_is_one_prefixed_line_naming_the_file(tmp_path, capsys, what, name, text, fragment):
    f = write(tmp_path, name, text)
    refused(capsys, ["check", what, f], f, fragment)


def test_check_transactions_errors_carry_the_prefix(tmp_path, capsys):
    refused(capsys, ["check", "transactions", str(tmp_path / "none.jsonl")], "no such file")
    good = write(tmp_path, "h.jsonl", "")
    refused(capsys, ["check", "transactions", good, "--txn-model", "nosuch"],
            "--txn-model must be one of strict-serializable", "'nosuch'")


def test_check_initial_nested_too_deeply(tmp_path, capsys):
    f = write(tmp_path, "h.jsonl", '{"process": 0, "type": "invoke", "f": "write", "value": 1}\n')
    refused(capsys, ["check", "linearizable", f, "--initial", "[" * DEEP], "--initial: JSON nested too deeply")


# -- output paths are checked before the work, not after it -------------------------------------
def test_hunt_save_into_a_missing_folder_is_refused_before_hunting(tmp_path, capsys):
    target = tmp_path / "no" / "x.json"
    refused(capsys, ["hunt", "raft", "--property", "linearizable", "--save", str(target)],
            f"--save {target}: no such directory {target.parent}")
    refused(capsys, ["hunt", "raft", "--property", "linearizable", "--save", str(tmp_path)], "is a directory")


def test_validate_refuses_bad_flags_before_printing_or_running(tmp_path, capsys):
    refused(capsys, ["validate", "--only", "nosuch"], "--only: no reproduction named nosuch")
    target = tmp_path / "no" / "v.md"
    refused(capsys, ["validate", "--quick", "--write", str(target)], f"--write {target}: no such directory")
