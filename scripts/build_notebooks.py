"""Write each teaching notebook ``notebooks/NN_name.ipynb`` (without outputs) from its source
``notebooks/NN_name.py``, a notebook in jupytext's percent format.

The ``.py`` files are the course: edit a lesson there, then run ``python scripts/build_notebooks.py``
(``--check`` writes nothing and fails if a notebook differs from its source). Jupyter with jupytext
opens the ``.py`` directly and saves both files (``notebooks/jupytext.toml`` pairs them); rerun this
script afterwards to settle cell ids. Adding a notebook is adding a ``.py`` file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# how the .py is laid out, not what the notebook says: kept out of the .ipynb
LAYOUT_KEYS = ("lines_to_next_cell", "lines_to_end_of_cell_marker")


def sources(folder: Path = NOTEBOOKS) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def notebook_text(source: Path) -> str:
    """The ``.ipynb`` text for ``source``: its cells and kernelspec, positional cell ids, no outputs."""
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata.pop("jupytext", None)      # pairing lives in notebooks/jupytext.toml, not in each notebook
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"        # stable ids: rebuilding changes nothing that did not change
        for key in LAYOUT_KEYS:
            cell.metadata.pop(key, None)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=NOTEBOOKS, help="folder to write into (default notebooks/)")
    ap.add_argument("--check", action="store_true", help="write nothing; fail if a notebook is not current")
    args = ap.parse_args(argv)
    stale = []
    for src in sources():
        target, text = args.out / src.with_suffix(".ipynb").name, notebook_text(src)
        current = target.exists() and target.read_text(encoding="utf-8") == text
        if args.check:
            stale += [] if current else [target.name]
        elif not current:
            args.out.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print("wrote", target)
    if args.check:
        known = {src.with_suffix(".ipynb").name for src in sources()}
        orphans = sorted(p.name for p in args.out.glob("*.ipynb") if p.name not in known)
        for name in stale:
            print(f"{name} differs from its source: run python scripts/build_notebooks.py")
        for name in orphans:
            print(f"{name} has no source notebooks/{Path(name).stem}.py")
        return 1 if stale or orphans else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
