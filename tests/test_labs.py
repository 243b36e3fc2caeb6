"""Notebook 08's labs: run as shipped (the learner's starters), every lab's check refuses its starter;
with the reference answers the notebook test (tests/test_notebooks.py) has every check pass."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from simulator.runner.teach import cell_tags, exercises

NB = Path(__file__).resolve().parents[1] / "notebooks" / "08_build_it_yourself.ipynb"


def test_every_starter_fails_its_lab(monkeypatch):
    monkeypatch.setenv("SPLITBRAIN_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(NB.parent)}}).execute()
    checks = [c for c in nb.cells if "check" in cell_tags(c)]
    assert len(checks) == len(exercises(nb)) >= 5
    for c in checks:
        errs = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert [e["ename"] for e in errs] == ["NotQuite"], c.source[:80]
    others = [o for c in nb.cells if "check" not in cell_tags(c) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not others, [o["evalue"][:200] for o in others]
