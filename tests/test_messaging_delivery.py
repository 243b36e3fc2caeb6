"""The delivery checker on hand-made histories (every verdict), and its input forms."""

import pandas as pd
import pytest

from simulator.history.delivery import DeliveryLog, check_delivery, delivery_table

H = [("send", 1, "a", 0.0), ("ack", 1, "a", 0.1), ("process", 1, "a", 0.5),          # exactly once
     ("send", 2, "a", 1.0), ("ack", 2, "a", 1.1),                                      # lost
     ("send", 3, "b", 2.0), ("ack", 3, "b", 2.1), ("process", 3, "b", 2.2), ("process", 3, "b", 3.0),  # duplicated
     ("send", 4, "b", 2.5), ("process", 4, "b", 2.6),                                  # unacked, processed
     ("send", 5, "c", 3.0),                                                           # unacked, absent
     ("send", 6, "c", 3.1), ("ack", 6, "c", 3.2), ("send", 7, "c", 3.3), ("ack", 7, "c", 3.4),
     ("process", 7, "c", 4.0), ("process", 6, "c", 4.1)]                               # 6 after 7: one violation


def test_every_verdict():
    r = check_delivery(H, window_s=2.0)
    assert (r["sent"], r["acked"], r["lost"], r["duplicated"]) == (7, 5, 1, 1)
    assert r["exactly_once"] == 4 and r["unacked_processed"] == 1 and r["unacked_absent"] == 1
    assert r["extra_processings"] == 1 and r["order_violations"] == 1
    assert not r["valid_at_least_once"] and not r["valid_at_most_once"]
    t = delivery_table(H).set_index("msg")
    assert t.loc[3, "latency"] == pytest.approx(0.2) and t.loc[2, "verdict"] == "lost"
    w = r["windows"].set_index("window_start")
    assert w.loc[0.0, "lost"] == 1 and w.loc[2.0, "duplicated"] == 1


def test_inputs_log_frame_and_dicts_agree():
    log = DeliveryLog()
    for e in H:
        log.record(*e)
    keys = ("sent", "lost", "duplicated", "order_violations", "unacked_processed")
    a = check_delivery(log)
    b = check_delivery(pd.DataFrame(H, columns=["event", "msg", "key", "time"]))
    c = check_delivery([dict(zip(("event", "msg", "key", "time"), e)) for e in H])
    assert [a[k] for k in keys] == [b[k] for k in keys] == [c[k] for k in keys]
    assert log.new_id() == 1 and log.new_id() == 2


def test_bad_histories_are_refused():
    with pytest.raises(ValueError, match="unknown delivery event"):
        check_delivery([("sent", 1, "a", 0.0)])
    with pytest.raises(ValueError, match="missing"):
        check_delivery(pd.DataFrame({"event": ["send"], "msg": [1]}))
    with pytest.raises(ValueError, match="window_s"):
        check_delivery(H, window_s=0)


def test_empty_history():
    r = check_delivery([])
    assert r["sent"] == 0 and r["valid_exactly_once"]
