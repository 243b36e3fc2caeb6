"""The exercise verdicts: right answers pass, wrong ones raise NotQuite with the reasoning, None only reminds."""

import math

import pytest

from simulator.runner.teach import MISSING, NotQuite, agrees, check_choice, check_number, check_targets


def test_check_number(capsys):
    check_number(0.1, 0.0975, tol=0.01, why="because")
    assert "✓" in capsys.readouterr().out
    with pytest.raises(NotQuite, match=r"you predicted 0.2, the answer is 0.0975.*because"):
        check_number(0.2, 0.0975, tol=0.01, why="because")
    check_number(None, 0.0975, tol=0.01, why="secret")
    out = capsys.readouterr().out
    assert MISSING in out and "secret" not in out and "0.0975" not in out   # no answer given away
    for bad in ("0.1", math.nan, True):
        with pytest.raises(NotQuite, match="as a number"):
            check_number(bad, 0.1, tol=0.01, why="")


def test_check_choice(capsys):
    check_choice("B", "b", choices=("a", "b", "c"), why="w")
    assert "✓" in capsys.readouterr().out
    with pytest.raises(NotQuite, match="you chose 'a', the answer is 'b'"):
        check_choice("a", "b", choices=("a", "b", "c"), why="w")
    with pytest.raises(NotQuite, match="choose one of"):
        check_choice("d", "b", choices=("a", "b", "c"), why="w")


def test_check_targets(capsys):
    check_targets([("availability", 0.995, ">=", 0.99), ("db load", 1.5, "<", 2.0)], hint="h")
    assert capsys.readouterr().out.count("✓") == 3
    with pytest.raises(NotQuite, match=r"db load = 2.5, need < 2.*hint"):
        check_targets([("availability", 0.995, ">=", 0.99), ("db load", 2.5, "<", 2.0)], hint="hint")
    with pytest.raises(NotQuite):
        check_targets([("availability", math.nan, ">=", 0.99)], hint="h")
    with pytest.raises(ValueError, match="op must be"):
        check_targets([("x", 1.0, "=>", 0.0)], hint="")


def test_agrees_is_a_bug_report_not_a_verdict():
    agrees(0.5, 0.5, 0.0, "x")
    with pytest.raises(AssertionError, match="report a bug") as e:
        agrees(0.6, 0.5, 0.01, "the closed form")
    assert not isinstance(e.value, NotQuite)
