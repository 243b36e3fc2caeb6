"""Render the course to static HTML: execute every notebook with its exercises' reference answers
(the worked solutions) and write ``docs/course/NN_name.html`` plus ``index.html`` (notebook 00),
so a learner can read the course without installing anything.

    pip install -e ".[notebooks]"          # jupyter (nbconvert), ipykernel
    python scripts/build_course.py --full   # full parameters, as committed (about 9 min on 2 cores)
    python scripts/build_course.py          # quick presets (about 80 s)

Links between notebooks (``NN_name.ipynb``) are rewritten to the HTML pages. Each page states which
preset produced it. The pages are generated: rebuild them rather than editing them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]


def render(path: Path, out: Path, quick: bool) -> Path:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from simulator.runner.teach import with_reference_answers

    nb = with_reference_answers(nbformat.read(path, as_version=4))
    preset = "quick presets (`SPLITBRAIN_QUICK=1`)" if quick else "full parameters"
    banner = nbformat.v4.new_markdown_cell(
        f"*Static copy of `notebooks/{path.name}`, executed with {preset} and the exercises' reference answers "
        "(worked solutions). To predict before you look, and to use the parameter controls, run the notebook "
        "in Jupyter: `pip install -e \".[notebooks]\"`, then `jupyter lab notebooks/`.*")
    banner["id"] = "course-banner"   # a stable id: rebuilding changes nothing that did not change
    nb.cells.insert(1, banner)
    env = {k: v for k, v in os.environ.items() if k not in ("SPLITBRAIN_QUICK", "MPLBACKEND")}
    env["SPLITBRAIN_WIDGETS"] = "0"                # no live widgets in a static page
    if quick:                                      # (no MPLBACKEND: the kernel's inline backend draws figures)
        env["SPLITBRAIN_QUICK"] = "1"
    with mock.patch.dict(os.environ, env, clear=True):   # restored afterwards, whatever happens
        NotebookClient(nb, timeout=3600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise SystemExit(f"{path.name}: a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    body = re.sub(r'href="(\d\d_[a-z_]+)\.ipynb"', r'href="\1.html"', body)
    body = shared_styles(body, out / "style.css")
    target = out / ("index.html" if path.name.startswith("00_") else path.with_suffix(".html").name)
    target.write_text(body, encoding="utf-8")
    return target


STYLE = re.compile(r'<style type="text/css">.*?</style>\s*', re.S)


def shared_styles(body: str, css: Path) -> str:
    """Move the template's inline style sheets (the same on every page) into one ``style.css``."""
    blocks = STYLE.findall(body)
    text = "\n".join(b.strip()[len('<style type="text/css">'):-len("</style>")] for b in blocks)
    if css.exists() and css.read_text(encoding="utf-8") != text:
        return body                       # this page's styles differ (another nbconvert?): keep them inline
    css.write_text(text, encoding="utf-8")
    first = True

    def link(_: re.Match) -> str:
        nonlocal first
        out, first = ('<link rel="stylesheet" href="style.css">\n' if first else ""), False
        return out

    return STYLE.sub(link, body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="full parameters instead of the quick presets")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "course", help="output folder (default docs/course)")
    ap.add_argument("--only", nargs="*", default=None, metavar="NN", help="only these notebooks, e.g. --only 00 03")
    args = ap.parse_args(argv)
    try:
        import nbconvert  # noqa: F401
    except ImportError:
        print('error: rendering needs nbconvert: pip install -e ".[notebooks]"', file=sys.stderr)
        return 2
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        unknown = sorted(set(args.only) - {p.name[:2] for p in paths})
        if unknown:
            print(f"error: --only {' '.join(unknown)}: no such notebook (have {', '.join(p.name[:2] for p in paths)})",
                  file=sys.stderr)
            return 2
        paths = [p for p in paths if p.name[:2] in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(paths)}] executing {path.name} ...", flush=True)
        target = render(path, args.out, quick=not args.full)
        print(f"      wrote {target} ({target.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
