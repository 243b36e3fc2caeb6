"""`splitbrain report RUN`: a self-contained report.html, checked with an HTML parser."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simulator.runner import cli
from simulator.runner.report import write_report
from simulator.runner.run import run_experiment


class _Page(HTMLParser):
    """Collects the title, the tables (as lists of rows of cell texts), img sources and every URL."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.tables, self.imgs, self.urls, self.tags = "", [], [], [], []
        self._in_title = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data") and v]
        if tag == "title":
            self._in_title = True
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.imgs.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kd") / "run"
    run_experiment("kernel_demo", quick=True, out=out, progress=False, plots=True, command=["pytest"])
    return out


def test_report_of_a_kernel_demo_run(kernel_run: Path, tmp_path: Path) -> None:
    path = write_report(kernel_run)
    assert path == kernel_run / "report.html"
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    assert page.title == "splitbrain report: kernel_demo"
    assert "script" not in page.tags  # no JavaScript at all

    # the parameters table: one row per Params field, with this run's values
    params = json.loads((kernel_run / "metadata.json").read_text())["params"]
    ptable = next(t for t in page.tables if t and t[0][:2] == ["name", "value"])
    assert {r[0] for r in ptable[1:]} == set(params)
    assert dict((r[0], r[1]) for r in ptable[1:])["duration_s"] == str(int(params["duration_s"]))

    # the summary table names every metric of the experiment's summary
    summary = next(t for t in page.tables if t and t[0][0] == "metric")
    assert {r[0] for r in summary[1:]} == {"requests", "availability", "timeouts", "p99_latency_s"}
    assert len(summary[0]) == 3  # metric + one column per side of the partition

    # every PNG the run drew is embedded once, as a data: URI holding that very file
    pngs = sorted((kernel_run / "figures").glob("*.png"))
    assert pngs and len(page.imgs) == len(pngs)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in page.imgs if s.startswith("data:image/png;base64,")}
    assert embedded == {p.read_bytes() for p in pngs}
    # self-contained: nothing fetched from anywhere (only in-page anchors and data: URIs)
    assert all(u.startswith(("#", "data:")) for u in page.urls), [u[:40] for u in page.urls]

    # --out writes elsewhere and the CLI prints the path
    other = tmp_path / "r.html"
    assert cli.main(["report", str(kernel_run), "--out", str(other)]) == 0
    assert other.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")  # deterministic page


def test_report_escapes_text(kernel_run: Path, tmp_path: Path) -> None:
    """Text from the run (here a crafted error file) is escaped, never markup."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(kernel_run, run)
    (run / "errors").mkdir()
    (run / "errors" / "seed=9.txt").write_text('<script>alert(1)</script> & <img src="http://x/y.png">')
    page = _Page()
    text = write_report(run).read_text(encoding="utf-8")
    page.feed(text)
    assert "script" not in page.tags
    assert all(u.startswith(("#", "data:")) for u in page.urls)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img" in text


@pytest.mark.parametrize("what", ["missing", "not_a_run", "bad_json"])
def test_report_refuses_a_non_run_folder(tmp_path: Path, capsys, what: str) -> None:
    target = tmp_path / "x"
    if what != "missing":
        target.mkdir()
        (target / "notes.txt").write_text("hello")
    if what == "bad_json":
        (target / "metadata.json").write_text("{not json")
    assert cli.main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err
    assert not (target / "report.html").exists()


def test_report_draws_a_space_time_diagram_from_a_saved_trace(kernel_run: Path, tmp_path: Path) -> None:
    """A run whose data/ holds a message trace (``sim.trace.frame()``) gets a space-time diagram."""
    import shutil

    from simulator import Constant, Simulation

    sim = Simulation(seed=1, trace=True)
    sim.network(latency=Constant(0.01), loss=0.2)
    sim.node("s").serve("get", service=Constant(0.001), workers=2)
    c = sim.node("c")
    for i in range(20):
        sim.at(i * 0.01, lambda i=i: c.call("s", "get", i, 0.05, lambda o, v: None))
    sim.faults.partition(at=0.1, heal_at=0.15, groups=[["c"], ["s"]])
    sim.run(until=0.5)
    run = tmp_path / "run"
    shutil.copytree(kernel_run, run)
    sim.trace.frame().to_parquet(run / "data" / "trace.parquet")
    page = _Page()
    page.feed(write_report(run).read_text(encoding="utf-8"))
    n_png = len(list((run / "figures").glob("*.png")))
    assert len(page.imgs) == n_png + 1 and all(s.startswith("data:image/png;base64,") for s in page.imgs)
