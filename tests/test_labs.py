"""The lab notebooks (08, 09) run as shipped (the learner's starters): every lab's check refuses its
starter; with the reference answers the notebook test (tests/test_notebooks.py) has every check pass."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from simulator.runner.teach import cell_tags, exercises

ROOT = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["08_build_it_yourself.ipynb", "09_raft_by_hand.ipynb"])
def test_every_starter_fails_its_lab(monkeypatch, name):
    NB = ROOT / name
    monkeypatch.setenv("SPLITBRAIN_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(NB.parent)}}).execute()
    # the lab checks (the ones shipped failing); a prediction left at None is only reminded, not refused
    checks = [c for c in nb.cells if "raises-exception" in cell_tags(c)]
    assert len(checks) >= 2 and len(exercises(nb)) >= 3
    for c in checks:
        errs = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert [e["ename"] for e in errs] == ["NotQuite"], c.source[:80]
    others = [o for c in nb.cells if "check" not in cell_tags(c) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not others, [o["evalue"][:200] for o in others]
