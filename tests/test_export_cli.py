"""`splitbrain export`: a run folder's spans read back by each viewer's own parser (OTLP with
opentelemetry-proto's ExportTraceServiceRequest, Chrome's trace-event JSON object format, JSON
lines), the faults the kernel stamps on spans, byte-identical exports of identical runs, and
refusals (exit 2, one line, nothing written)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from simulator import Simulation
from simulator.observe.spans import enable_spans, with_events
from simulator.runner.cli import main

# retry_amplification's QUICK run cut down: D crashes at 1 s for 1 s; three arms in one folder
RUN = ["run", "retry_amplification", "--quick", "--serial", "--no-plots", "--no-progress",
       "--param", "rate_rps=3", "--param", "duration_s=3", "--param", "outage_at=1", "--param", "outage_s=1"]


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as e:  # argparse's own refusals
        return int(e.code)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two identical runs of the same command."""
    base = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        assert cli(*RUN, "--out", str(base / name)) == 0
    return base / "a", base / "b"


def _export(run, out, *extra: str) -> dict:
    paths = {"otlp": out / "t.json", "chrome": out / "c.json", "logs": out / "l.jsonl"}
    assert cli("export", str(run), *(x for k, p in paths.items() for x in (f"--{k}", str(p))), *extra) == 0
    return paths


def _spans(req) -> list:
    return [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_exports_load_with_their_viewers_parsers(runs, tmp_path):
    run = runs[0]
    rows = pd.read_parquet(run / "data" / "spans.parquet")
    p = _export(run, tmp_path)
    # OTLP/JSON: opentelemetry-proto's own message, parsed by protobuf's JSON parser (must not raise)
    text = p["otlp"].read_text()
    got = _spans(json_format.Parse(text, ExportTraceServiceRequest()))
    assert len(got) == len(rows)
    raw = [s for rs in json.loads(text)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    hexdigits = set("0123456789abcdef")
    assert all(len(s["traceId"]) == 32 and set(s["traceId"]) <= hexdigits for s in raw)
    assert all(len(s["spanId"]) == 16 and set(s["spanId"]) <= hexdigits for s in raw)
    assert all(isinstance(s["kind"], int) for s in raw)  # OTLP/JSON: enums as integers
    # three arms: three id spaces, no collisions; every parent is exported
    ids = {(s["traceId"], s["spanId"]) for s in raw}
    assert len(ids) == len(raw)
    span_ids = {s["spanId"] for s in raw}
    assert all(s["parentSpanId"] in span_ids for s in raw if "parentSpanId" in s)
    # Chrome trace-event format, JSON object form: {"traceEvents": [...]} with ph/ts/pid/tid/name
    chrome = json.loads(p["chrome"].read_text())
    assert isinstance(chrome, dict) and isinstance(chrome["traceEvents"], list)
    for e in chrome["traceEvents"]:
        assert {"ph", "pid", "tid", "name"} <= set(e)
        assert e["ph"] == "M" or isinstance(e["ts"], (int, float))
        if e["ph"] == "X":
            assert e["dur"] >= 0
    assert sum(e["ph"] == "X" for e in chrome["traceEvents"]) == rows["end"].notna().sum()
    # JSON lines: every line names a span the OTLP export holds
    lines = [json.loads(line) for line in p["logs"].read_text().splitlines()]
    assert lines and all((x["trace_id"], x["span_id"]) in ids for x in lines)
    assert {x["fields"]["arm"] for x in lines} == set(rows["arm"])


def test_faults_reach_every_format(runs, tmp_path):
    p = _export(runs[0], tmp_path)
    raw = [s for rs in json.loads(p["otlp"].read_text())["resourceSpans"] for ss in rs["scopeSpans"]
           for s in ss["spans"]]
    hit = [s for s in raw if any(a["key"] == "splitbrain.faults" for a in s.get("attributes", []))]
    assert hit, "the outage stamps crash(D-0) on the calls made during it"
    assert all(any(e["name"] == "fault active" for e in s["events"]) for s in hit)
    assert any("crash(D-0)" in a["value"]["stringValue"] for s in hit for a in s["attributes"]
               if a["key"] == "splitbrain.faults")
    chrome = json.loads(p["chrome"].read_text())["traceEvents"]
    assert any("crash(D-0)" in e.get("args", {}).get("faults", "") for e in chrome if e["ph"] == "X")
    lines = [json.loads(line) for line in p["logs"].read_text().splitlines()]
    assert any(x["fields"].get("faults") == "crash(D-0)" for x in lines if "failed" in x["message"])


def test_identical_runs_export_identical_bytes(runs, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    pa, pb = _export(runs[0], a), _export(runs[1], b)
    for k in pa:
        assert pa[k].read_bytes() == pb[k].read_bytes(), k


def _partitioned_sim() -> Simulation:
    """a calls b every 0.5 s (timeout 0.2 s); a partition {a} | {b} holds from 1.2 s to 2.2 s."""
    sim = Simulation(seed=3)
    enable_spans(sim)
    a, b = sim.node("a"), sim.node("b")
    b.serve("get", service=0.01, workers=1)
    for i in range(6):
        sim.at(i * 0.5, lambda: a.call("b", "get", None, 0.2, lambda o, v: None))
    sim.faults.partition(at=1.2, heal_at=2.2, groups=[["a"], ["b"]])
    sim.run(until=4)
    return sim


def test_a_request_failed_by_a_partition_carries_it(tmp_path):
    sim = _partitioned_sim()
    f = sim.spans.frame()
    # sent at 1.5 and 2.0, inside the partition: timed out, stamped; the others ok and clean
    cut = f[(f["start"] > 1.2) & (f["start"] < 2.2)]
    assert list(cut["outcome"]) == ["timeout", "timeout"]
    assert (cut["faults"] == "partition(a|b)").all() and (cut["fault_at"] == cut["start"]).all()
    clean = f.drop(cut.index)
    assert (clean["outcome"] == "ok").all() and (clean["faults"] == "").all() and clean["fault_at"].isna().all()
    # through a run folder and the CLI to the OTLP attribute
    (tmp_path / "run" / "data").mkdir(parents=True)
    with_events(f, sim.spans.events_frame()).assign(seed=3).to_parquet(tmp_path / "run" / "data" / "spans.parquet")
    assert cli("export", str(tmp_path / "run"), "--otlp", str(tmp_path / "t.json")) == 0
    got = _spans(json_format.Parse((tmp_path / "t.json").read_text(), ExportTraceServiceRequest()))
    stamped = [s for s in got if any(a.key == "splitbrain.faults" for a in s.attributes)]
    assert len(stamped) == 2 and all(s.status.message == "timeout" for s in stamped)
    assert {e.attributes[0].value.string_value for s in stamped for e in s.events} == {"partition(a|b)"}


def test_stamping_changes_nothing_else():
    # Fault stamping only reads the kernel's state: the same run untraced has the same outcomes.
    traced = _partitioned_sim().spans.frame()
    sim = Simulation(seed=3)
    a, b = sim.node("a"), sim.node("b")
    b.serve("get", service=0.01, workers=1)
    res = []
    for i in range(6):
        sim.at(i * 0.5, lambda: a.call("b", "get", None, 0.2, lambda o, v: res.append((o, sim.now))))
    sim.faults.partition(at=1.2, heal_at=2.2, groups=[["a"], ["b"]])
    sim.run(until=4)
    assert res == list(zip(traced["outcome"], traced["end"]))
    assert getattr(sim, "spans", None) is None


@pytest.mark.parametrize("case", ["missing folder", "no spans", "no flag", "output is a folder",
                                  "output folder missing", "one good one bad", "exists", "same file twice"])
def test_bad_input_refused_with_one_line_and_nothing_written(case, runs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.json").write_text("mine")
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    run = str(runs[0])
    argv, names = {
        "missing folder": (["export", str(tmp_path / "nope"), "--otlp", str(out / "t.json")], "RUN"),
        "no spans": (["export", str(empty), "--chrome", str(out / "c.json")], "spans.parquet"),
        "no flag": (["export", run], "--otlp"),
        "output is a folder": (["export", run, "--otlp", str(out)], "--otlp"),
        "output folder missing": (["export", run, "--logs", str(out / "no" / "l.jsonl")], "--logs"),
        "one good one bad": (["export", run, "--otlp", str(out / "t.json"), "--chrome", str(out)], "--chrome"),
        "exists": (["export", run, "--chrome", str(out / "keep.json")], "--force"),
        "same file twice": (["export", run, "--otlp", str(out / "t.json"), "--logs", str(out / "t.json")], "--logs"),
    }[case]
    capsys.readouterr()
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("splitbrain: error: ") and err.count("\n") == 1 and names in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.json"] and (out / "keep.json").read_text() == "mine"


def test_force_overwrites(runs, tmp_path):
    (tmp_path / "t.json").write_text("old")
    assert cli("export", str(runs[0]), "--otlp", str(tmp_path / "t.json"), "--force") == 0
    assert json.loads((tmp_path / "t.json").read_text())["resourceSpans"]
