"""Each messaging experiment's lesson holds on its QUICK preset."""

from experiments import delivery_semantics, kafka_acks, visibility_timeout


def test_kafka_acks_1_loses_acknowledged_writes_acks_all_does_not_and_is_slower():
    s = kafka_acks.run(kafka_acks.QUICK, seed=1)["summary"].set_index("arm")
    one, all_ = s.loc["acks=1"], s.loc["acks=all, min.insync=2"]
    assert one.acked_but_lost > 100 and all_.acked_but_lost == 0
    assert all_.ack_p50_calm_ms > one.ack_p50_calm_ms  # a replication round trip per write
    assert all_.ack_max_ms > 1000  # the stall while an ISR member is cut off


def test_delivery_semantics_lose_or_repeat_and_the_consumer_side_cures():
    s = delivery_semantics.run(delivery_semantics.QUICK, seed=1)["summary"].set_index("commit")
    amo, alo = s.loc["before"], s[~s.idempotent_consumer].loc["after"]
    idem = s[s.idempotent_consumer].loc["after"]
    eo = s.loc["transactional"]
    # (a Series has a .duplicated method: index the column)
    assert amo["lost"] > 10 and amo["duplicated"] == 0
    assert alo["lost"] == 0 and alo["duplicated"] > 10
    assert idem["lost"] == 0 and idem["duplicated"] == 0
    assert eo["lost"] == 0 and eo["duplicated"] == 0 and eo["exactly_once"] == eo["acked"]


def test_visibility_timeout_duplicates_below_the_tail_none_at_six_times():
    s = visibility_timeout.run(visibility_timeout.QUICK, seed=1)["summary"].set_index("multiple")
    assert s.loc[0.5, "duplicate_fraction"] > 0.5 and s.loc[1.0, "duplicate_fraction"] > 0.25
    assert s.loc[6.0, "duplicate_fraction"] <= 0.005 and s.loc[6.0, "lost"] == 0
    # redelivery follows the log-normal tail where no crash is involved (V = 1x: binomial 4 SE ~ 0.07)
    assert abs(s.loc[1.0, "redelivered_fraction"] - s.loc[1.0, "redelivered_theory"]) < 0.07
    assert s.loc[6.0, "latency_max_s"] > s.loc[1.0, "latency_max_s"]  # crash victims wait out V
