"""A cheap subset of the QUICK-preset fingerprints (``scripts/quick_fingerprints.py``).

Pinned-seed regression, labelled as such (STYLE.md 10): these hashes say nothing about
correctness, only that the numbers seed 1 gives have not moved. Kernel optimisations (lazy
streams, ``__slots__``, ...) must keep them bit-identical; a deliberate change of a model's
numbers regenerates the file with ``python scripts/quick_fingerprints.py`` and says so in the
commit. The full set is ``python scripts/quick_fingerprints.py --check``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("quick_fingerprints", ROOT / "scripts" / "quick_fingerprints.py")
qf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qf)

GOLDEN = json.loads(qf.GOLDEN.read_text())

# The kernel and network (kernel_demo, cap_partition), queues against M/M/c (queueing), retries
# and timeouts (retry_storm), the messaging log and its delivery check (delivery_semantics,
# consumer_rebalance), clocks (clock_skew_lww), failure detection and Raft (failure_detectors,
# raft_election), fan-out tails (tail_at_scale): about 9 s together.
SUBSET = ["kernel_demo", "cap_partition", "queueing", "retry_storm", "delivery_semantics",
          "consumer_rebalance", "clock_skew_lww", "failure_detectors", "raft_election", "tail_at_scale"]


def test_golden_file_covers_every_experiment():
    assert sorted(GOLDEN) == qf.all_names()


@pytest.mark.parametrize("name", SUBSET)
def test_quick_preset_numbers_unchanged(name):
    got_name, digests, _ = qf.fingerprint(name)
    assert got_name == name
    assert digests == GOLDEN[name]["frames"], qf.differences(GOLDEN, {name: {"frames": digests}})


def test_a_changed_frame_is_reported():
    import pandas as pd

    a = pd.DataFrame({"x": [0.1, 0.2]})
    b = pd.DataFrame({"x": [0.1, 0.2 + 2**-54]})  # one ulp-ish apart: must not hash alike
    assert qf.frame_digest(a) == qf.frame_digest(a.copy())
    assert qf.frame_digest(a) != qf.frame_digest(b)
    golden = {"e": {"frames": {"f": qf.frame_digest(a)}}}
    assert qf.differences(golden, {"e": {"frames": {"f": qf.frame_digest(b)}}})
    assert not qf.differences(golden, {"e": {"frames": {"f": qf.frame_digest(a)}}})
