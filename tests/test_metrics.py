"""Request records: columnar and small; derived views agree with direct computation."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from simulator import RequestLog, availability, availability_by_side, latency_percentiles, red


def filled(n=1000):
    log = RequestLog()
    rng = np.random.Generator(np.random.PCG64(0))
    lat = rng.exponential(0.01, n)
    for i in range(n):
        rid = log.begin(f"c{i % 2}", "s", "get", i * 0.01)
        if i % 10 == 9:
            continue  # still in flight
        log.end(rid, i * 0.01 + lat[i], "timeout" if i % 10 == 3 else "ok", 1 + (i % 3))
    return log, lat


def test_frame_shape_and_accounting():
    log, lat = filled()
    df = log.requests()
    assert list(df.columns[:9]) == ["client", "target", "op", "start", "end", "latency", "outcome",
                                    "attempts", "trace_id"]
    c = log.counts()
    assert c["in_flight"] == 100 and c["timeout"] == 100 and c["ok"] == 800 and sum(c.values()) == 1000
    ok = df[df.outcome == "ok"]
    assert np.allclose(ok["latency"], lat[ok.index])
    p = latency_percentiles(df, (0.5, 0.99))
    assert p["p50"][0] == pytest.approx(ok["latency"].quantile(0.5))
    assert p["p99"][0] == pytest.approx(ok["latency"].quantile(0.99))


def test_availability_and_red():
    log, _ = filled()
    df = log.requests()
    a = availability(df, window=1.0)
    assert a["requests"].sum() == 1000
    assert a["availability"].mean() == pytest.approx(0.8)
    s = availability_by_side(df, {"c0": "left", "c1": "right"}, window=5.0)
    assert set(s["side"]) == {"left", "right"}
    r = red(df, window=1.0)
    assert r["rate"].sum() == pytest.approx(900)
    with pytest.raises(ValueError, match="window"):
        availability(df, window=0)


def test_double_end_and_bad_outcome_raise():
    log = RequestLog()
    rid = log.begin("c", "s", "get", 0.0)
    with pytest.raises(ValueError, match="outcome must be one of"):
        log.end(rid, 1.0, "maybe")
    log.end(rid, 1.0, "ok")
    with pytest.raises(RuntimeError, match="already ended"):
        log.end(rid, 2.0, "ok")


def test_extra_columns():
    log = RequestLog()
    log.begin("c", "s", "get", 0.0)
    log.column("hedged", "b", 0)
    rid = log.begin("c", "s", "get", 0.1)
    log.set(rid, "hedged", 1)
    assert log.requests()["hedged"].tolist() == [0, 1]


def test_a_request_costs_bytes_not_a_dict():
    """200k requests in columns must stay under 60 bytes each (a dict is ~400+)."""
    tracemalloc.start()
    log = RequestLog()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(200_000):
        rid = log.begin("client", "server", "get", i * 1e-3)
        log.end(rid, i * 1e-3 + 0.002, "ok", 1)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert used / 200_000 < 60
    assert isinstance(log.requests(), pd.DataFrame)
