"""Group a's reproductions (resilience and services): each experiment's quick ``validate`` rows
pass, and each tolerance is tight enough that a naive wrong formula would miss."""

from __future__ import annotations

import importlib

import pytest


def _checks(name: str):
    checks = importlib.import_module(f"experiments.{name}").validate(True)
    assert checks, name
    for c in checks:
        assert c.passed, c
        assert c.tolerance > 0 or c.measured == c.published, c
    return checks


def _misses(c, wrong: float) -> bool:
    """A naive alternative ``wrong`` lies outside the row's tolerance (so the row could fail)."""
    return abs(wrong - c.measured) > c.tolerance


def test_circuit_breaker_timing_follows_resilience4j_state_machine():
    opening, cycle = _checks("circuit_breaker")
    assert _misses(opening, 0.5)  # naive: opens one timeout after the crash (forgets the count window)
    assert _misses(cycle, 2.0)  # naive: a cycle is just the open wait (forgets the trial calls' timeout)
    assert cycle.published == pytest.approx(2.0 + 5 / 200 + 0.5)
