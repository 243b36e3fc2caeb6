"""Every notebook runs top to bottom (quick parameters) in the test environment's Python, with
each exercise answered by its reference answer (which must pass its check) and then probed with
a wrong answer (which its check must refuse with ``NotQuite``), so a broken exercise fails CI."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from simulator.runner.teach import cell_tags as tags
from simulator.runner.teach import exercises, with_reference_answers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


def build(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_notebooks_are_current_with_their_sources():
    """Each ``notebooks/NN_name.py`` (jupytext percent format) is the source of its ``.ipynb``: building
    would change no notebook, and no notebook lacks a source."""
    out = build("--check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_check_notices_a_stale_notebook(tmp_path):
    assert build("--out", tmp_path).returncode == 0
    assert build("--check", "--out", tmp_path).returncode == 0
    stale = tmp_path / NOTEBOOKS[1].name
    stale.write_text(stale.read_text().replace("cell-01", "cell-xx"))
    out = build("--check", "--out", tmp_path)
    assert out.returncode == 1 and stale.name in out.stdout


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_every_notebook_teaches(path):
    """Opens with what you will reason about, has >= 3 exercises (each with a wrong answer to refuse),
    closes with a summary and pointers, and offers controls for its experiments."""
    nb = nbformat.read(path, as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert "you will be able to reason about" in md[0].lower()
    assert "try next" in md[-1].lower()
    exs = exercises(nb)
    assert len(exs) >= 3, f"{path.name} has {len(exs)} exercises"
    for ex in exs:
        assert ex["check"] and ex["run"] and ex["wrong"] != ex["reference"], ex
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    if path.name.startswith(("08_", "09_")):  # a lab notebook: its controls are the learner's nodes, graded
        assert sum(("check_lab(" in src or "check_election(" in src) for src in code) >= 1
    else:
        assert any("explore(" in src for src in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("SPLITBRAIN_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "store notebooks without outputs"
    nb = with_reference_answers(nb, probes=True)
    # "python3" resolves to the running interpreter's ipykernel (the native kernel).
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells if "check" in tags(c)]
    assert all("✓" in t for t in text), "a reference answer was not accepted"
    assert sum("refused:" in "".join(o.get("text", "")) for c in nb.cells for o in c.get("outputs", [])) \
        == len(exercises(nb))
    assert os.environ["SPLITBRAIN_QUICK"] == "1"


def test_the_html_course_is_current():
    """``docs/course`` has a page per notebook showing each of its exercises (rebuild with
    ``python scripts/build_course.py`` after changing a notebook)."""
    import html
    import re

    for path in NOTEBOOKS:
        page = ROOT / "docs" / "course" / ("index.html" if path.name.startswith("00_") else path.stem + ".html")
        assert page.exists(), f"{page} is missing: run scripts/build_course.py"
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))   # code is highlighted
        nb = nbformat.read(path, as_version=4)
        for ex in exercises(nb):
            assert ex["reference"] in text, f"{page.name} lacks {ex['reference']!r}: run scripts/build_course.py"
        for c in nb.cells:
            if c.cell_type == "markdown" and c.source.startswith("### Exercise"):
                assert c.source.splitlines()[0][4:] in text, f"{page.name} is stale: run scripts/build_course.py"
