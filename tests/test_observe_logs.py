"""Structured JSON logs correlated with spans, and the debugging_with_traces lesson."""

import json
import logging

import pandas as pd
import pytest

from experiments import debugging_with_traces as dwt
from simulator import Constant, Simulation
from simulator.observe import logs
from simulator.observe.spans import enable_spans


@pytest.fixture(scope="module")
def quick():
    return dwt.run(dwt.QUICK, seed=3)


def _one_call_sim():
    """client -> server, the server's handler logs live with fields."""
    sim = Simulation(seed=11)
    enable_spans(sim)
    sim.network(latency=Constant(0.001))
    server = sim.node("server-0")
    server.serve("get", lambda msg: logs.log(sim, "server-0", logging.INFO, "lookup", key=msg.payload) or "v",
                 service=Constant(0.002))
    client = sim.node("client")
    for i in range(3):
        sim.at(i * 0.1, lambda i=i: client.call("server-0", "get", i, 1.0, lambda o, v: None))
    return sim


def test_live_lines_are_json_with_the_active_span_ids(tmp_path):
    sim = _one_call_sim()
    h = logs.attach_json_log(tmp_path / "logs.jsonl")
    try:
        sim.run(until=1.0)
    finally:
        logs.detach(h)
    lines = (tmp_path / "logs.jsonl").read_text().splitlines()
    assert len(lines) == 3
    recs = [json.loads(x) for x in lines]
    spans = sim.spans.frame()
    for i, r in enumerate(recs):
        assert set(r) == set(logs.LINE_FIELDS)
        assert (r["service"], r["node"], r["level"], r["message"]) == ("server", "server-0", "INFO", "lookup")
        assert r["fields"] == {"key": i}
        # the handler runs in the request's context: the client span of call i, in trace i
        s = spans.iloc[i]
        assert r["trace_id"] == logs.trace_hex(11, s["trace_id"]) and len(r["trace_id"]) == 32
        assert r["span_id"] == logs.span_hex(11, s["span_id"]) and len(r["span_id"]) == 16
        # time = simulated seconds: request sent at 0.1 i, 1 ms network, logged when the 2 ms service completes
        assert r["time"] == pytest.approx(0.1 * i + 0.003, abs=1e-9)


def test_replayed_span_logs_carry_the_spans_trace_ids(quick, tmp_path):
    spans = quick["spans"]
    h = logs.attach_json_log(tmp_path / "run" / "logs.jsonl")
    try:
        n = logs.emit_span_logs(spans, seed=3)
    finally:
        logs.detach(h)
    df = logs.read_json_log(tmp_path / "run" / "logs.jsonl")
    assert len(df) == n > 0
    assert df["time"].is_monotonic_increasing
    hex_trace = {logs.trace_hex(3, t) for t in spans["trace_id"].unique()}
    span_trace = {logs.span_hex(3, s): logs.trace_hex(3, t) for s, t in zip(spans["span_id"], spans["trace_id"])}
    assert set(df["trace_id"]) <= hex_trace
    # every line's span belongs to the trace the line names
    assert all(span_trace[s] == t for s, t in zip(df["span_id"], df["trace_id"]))
    assert {"INFO", "WARNING", "ERROR"} <= set(df["level"])
    assert set(df["service"]) <= {*dwt.SERVICES, "client"}


def test_cheap_when_off(quick, monkeypatch):
    calls = []
    monkeypatch.setattr(logs.JsonFormatter, "format", lambda self, rec: calls.append(rec) or "")
    made = []
    orig = logging.Logger.makeRecord
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda self, *a, **k: made.append(1) or orig(self, *a, **k))
    assert not logs.enabled()
    assert logs.emit_span_logs(quick["spans"], seed=3) == 0
    sim = _one_call_sim()
    sim.run(until=1.0)
    assert calls == [] and made == []


def test_self_time_is_duration_minus_children():
    # root 0..10 with children 1..4 and 5..9 (the second has a child 6..8): self 10-3-4=3, 3, 4-2=2, 2
    spans = pd.DataFrame({"trace_id": [0, 0, 0, 0], "span_id": [0, 1, 2, 3], "parent_id": [-1, 0, 0, 2],
                          "start": [0.0, 1.0, 5.0, 6.0], "end": [10.0, 4.0, 9.0, 8.0]})
    assert list(dwt.self_times(spans)) == pytest.approx([3.0, 3.0, 2.0, 2.0])


def test_lesson_traces_blame_the_db_while_red_shows_every_upstream_service_degraded(quick):
    s = quick["summary"].set_index("service")
    assert s["failed_requests_incident"].iloc[0] >= 10
    # traces: the largest self-time span of (nearly) every failed request is the call to the db
    assert s.loc["db", "share_blaming"] >= 0.9
    assert s.loc[["api", "orders", "inventory", "pricing"], "share_blaming"].sum() <= 0.1
    # RED: the db and everything upstream of it errors and is >= 5x slower; pricing (off the path) is not
    for svc in ("api", "orders", "inventory", "db"):
        assert s.loc[svc, "error_rate_incident"] > 0.2, svc
        assert s.loc[svc, "error_rate_base"] < 0.02, svc
        assert s.loc[svc, "p99_ms_incident"] > 5 * s.loc[svc, "p99_ms_base"], svc
    assert s.loc["pricing", "error_rate_incident"] < 0.02
    # the top of the graph looks at least as bad as the cause: p99 grows with each layer up (timeouts nest)
    assert s.loc["api", "p99_ms_incident"] >= s.loc["db", "p99_ms_incident"]
    # correlation ids: by time, a failed request's window interleaves several requests' lines
    assert s["median_requests_interleaved"].iloc[0] > 2
    assert s["median_lines_with_id"].iloc[0] < s["median_lines_without_id"].iloc[0]


def test_explain_works_on_the_spans(quick):
    from simulator.observe.explain import pick_traces, story

    worst = pick_traces(quick["spans"], quick["requests"], worst=3)
    assert len(worst) == 3
    text = story(quick["spans"], worst[0], quick["faults"])
    assert "db" in text


def test_params_refuse_incident_after_the_run():
    with pytest.raises(ValueError, match="incident_at"):
        dwt.Params(duration_s=5.0, incident_at=6.0)


def test_with_events_frame_is_what_run_returns(quick):
    assert "events" in quick["spans"].columns  # spans saved with their events in one table (with_events)
