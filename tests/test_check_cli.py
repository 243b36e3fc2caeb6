"""`splitbrain check linearizable`: options, exit codes (0 valid, 1 anomaly, 2 bad input, 3 unknown)
and one line naming the file and line number for each kind of bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.history.synth import atomic_register_history
from simulator.runner.cli import main

DATA = Path(__file__).parent / "data"
GOOD = [{"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 0.0},
        {"process": 0, "type": "ok", "f": "write", "key": "x", "value": 1, "time": 1.0},
        {"process": 1, "type": "invoke", "f": "read", "key": "x", "value": None, "time": 2.0},
        {"process": 1, "type": "ok", "f": "read", "key": "x", "value": 1, "time": 3.0}]


def write(tmp_path, lines, name="h.jsonl") -> str:
    p = tmp_path / name
    p.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return str(p)


def test_exit_codes_and_json(tmp_path, capsys):
    assert main(["check", "linearizable", write(tmp_path, GOOD)]) == 0
    bad = [*GOOD[:3], {**GOOD[3], "value": 2}]
    assert main(["check", "linearizable", write(tmp_path, bad), "--json"]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["valid"] is False and out["verdict"] == "anomaly" and out["counterexample_size"] == 1
    assert out["keys"][0]["counterexample"][0]["result"] == 2
    # --initial (JSON) and --model
    init = [GOOD[2], {**GOOD[3], "value": 0}]
    assert main(["check", "linearizable", write(tmp_path, init), "--initial", "0"]) == 0
    assert main(["check", "linearizable", write(tmp_path, init)]) == 1
    assert main(["check", "linearizable", str(DATA / "porcupine_kv_bad.edn"), "--model", "kv"]) == 1
    assert main(["check", "linearizable", str(DATA / "porcupine_kv_ok.edn"), "--model", "kv", "--json"]) == 0


def test_unknown_exits_3(tmp_path, capsys):
    h = atomic_register_history(np.random.default_rng(5), 20_000, keys=1, processes=20)
    path = h.save_jsonl(tmp_path / "big.jsonl")
    assert main(["check", "linearizable", str(path), "--time-limit", "0.001", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["verdict"] == "unknown"


BAD = {
    "empty": ([], r"empty history"),
    "completion first": ([GOOD[1], GOOD[0]], r":1: ok for process 0 with no open invocation"),
    "time null": ([GOOD[0], {**GOOD[1], "time": None}], r":2: time must be a finite number, got null"),
    "not an object": ([GOOD[0], "[1, 2]"], r":2: expected an event object"),
    "unknown operation": ([GOOD[0], GOOD[1], {**GOOD[2], "f": "frob"}, {**GOOD[3], "f": "frob"}],
                          r":3: f='frob' is not an operation of the 'register' model"),
    "truncated line": ([GOOD[0], GOOD[1], json.dumps(GOOD[2])[:25]], r":3: not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, capsys, case):
    lines, pattern = BAD[case]
    path = write(tmp_path, lines)
    assert main(["check", "linearizable", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err
    assert __import__("re").search(pattern, err), err


def test_directory_and_bad_flags(tmp_path, capsys):
    assert main(["check", "linearizable", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["check", "linearizable", write(tmp_path, GOOD), "--time-limit", "0"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["check", "linearizable", write(tmp_path, GOOD), "--model", "nope"])
    assert e.value.code == 2


def test_check_transactions_verdicts_and_exit_codes(tmp_path, capsys):
    """`splitbrain check transactions`: 0 valid, 1 anomaly (a stale read after a committed append
    is G-single with real-time order), 2 bad input."""
    import json as _json

    from simulator.runner.cli import main as cli

    w = [{"process": 0, "type": "invoke", "f": "txn", "value": [["append", "x", 1]], "time": 0.0},
         {"process": 0, "type": "ok", "f": "txn", "value": [["append", "x", 1]], "time": 1.0},
         {"process": 1, "type": "invoke", "f": "txn", "value": [["r", "x", None]], "time": 2.0}]
    for name, seen, code in (("good", [1], 0), ("stale", [], 1)):
        events = w + [{"process": 1, "type": "ok", "f": "txn", "value": [["r", "x", seen]], "time": 3.0}]
        f = tmp_path / f"{name}.jsonl"
        f.write_text("\n".join(_json.dumps(e) for e in events) + "\n")
        assert cli(["check", "transactions", str(f)]) == code
    assert "G-single" in capsys.readouterr().out
    assert cli(["check", "transactions", str(tmp_path)]) == 2
    assert cli(["check", "transactions", str(tmp_path / "stale.jsonl"), "--workload", "list-append", "--json"]) == 1
    assert _json.loads(capsys.readouterr().out.strip().splitlines()[-1])["valid"] is False
