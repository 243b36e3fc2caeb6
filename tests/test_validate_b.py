"""Group b's reproductions (replication, consistency, coordination, observability): each quick
``validate`` row passes, and its tolerance is narrower than the gap to a naive wrong answer, so
the row could fail."""

from __future__ import annotations

import math


def _rows(module):
    checks = module.validate(True)
    assert checks, "no rows"
    for c in checks:
        assert math.isfinite(c.measured) and c.tolerance >= 0 and c.why and c.source, c
        assert c.passed, c
    return checks


def test_cap_partition_rows_follow_gilbert_lynch():
    from experiments import cap_partition

    rows = _rows(cap_partition)
    avail = [c for c in rows if "availability" in c.quantity]
    lin = [c for c in rows if "linearizable" in c.quantity]
    assert [c.published for c in avail] == [0.0, 1.0] and [c.published for c in lin] == [1.0, 0.0]
    # the wrong answer (the other arm's figure) lies outside each row's tolerance
    for c, other in ((avail[0], avail[1]), (avail[1], avail[0]), (lin[0], lin[1]), (lin[1], lin[0])):
        assert abs(other.published - c.published) > c.tolerance
