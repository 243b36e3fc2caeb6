"""The circuit breaker, transition by transition, against resilience4j's documented semantics."""

import pytest

from models.resilience import CircuitBreaker, CircuitBreakerConfig


def make(**kw):
    base = dict(sliding_window_size=4, minimum_number_of_calls=4, failure_rate_threshold=50,
                wait_duration_in_open_s=10, permitted_calls_in_half_open=2)
    base.update(kw)
    return CircuitBreaker(CircuitBreakerConfig(**base))


def feed(b, outcomes, t=0.0, duration=0.01):
    for o in outcomes:
        assert b.try_acquire(t)
        b.on_result(t, o, duration)


def test_no_verdict_before_minimum_number_of_calls():
    b = make(minimum_number_of_calls=4)
    feed(b, ["error"] * 3)
    assert b.state == "closed"  # 3 of 3 failed, but fewer than 4 calls recorded
    feed(b, ["error"])
    assert b.state == "open"


def test_opens_at_threshold_inclusive_and_not_below():
    b = make()
    feed(b, ["ok", "ok", "ok", "error"])  # 25% < 50%
    assert b.state == "closed"
    feed(b, ["error"])  # window (last 4): ok ok error error -> 50% >= 50%
    assert b.state == "open" and b.transitions == [(0.0, "closed", "open")]


def test_count_window_forgets_old_calls():
    b = make(sliding_window_size=4, minimum_number_of_calls=4, failure_rate_threshold=75)
    feed(b, ["error", "error", "ok", "ok", "ok", "ok"])
    assert b.state == "closed"  # the two errors slid out of the window of 4
    feed(b, ["error", "error"])  # last 4: ok ok error error = 50% < 75%
    assert b.state == "closed"


def test_time_window_uses_recent_seconds_only():
    b = make(sliding_window_type="time", sliding_window_size=5, minimum_number_of_calls=3)
    feed(b, ["error", "error"], t=0.5)
    feed(b, ["ok"], t=10.0)  # the errors at t=0.5 are older than 5 s: window holds 1 call
    assert b.state == "closed"
    feed(b, ["error", "error"], t=10.5)  # 2 of 3 failed within the last 5 s
    assert b.state == "open"


def test_slow_calls_open_the_breaker():
    b = make(slow_call_rate_threshold=50, slow_call_duration_s=1.0)
    feed(b, ["ok", "ok"], duration=0.1)
    feed(b, ["ok", "ok"], duration=2.0)  # 2 of 4 slow = 50%
    assert b.state == "open"


def test_open_rejects_then_half_open_on_first_call_after_wait():
    b = make()
    feed(b, ["error"] * 4)
    assert not b.try_acquire(5.0) and b.not_permitted == 1
    assert b.state == "open"
    assert b.try_acquire(10.0)  # wait elapsed: this call moves it to half_open and is a trial
    assert b.state == "half_open"


def test_automatic_transition_uses_a_timer():
    timers = []
    b = CircuitBreaker(CircuitBreakerConfig(sliding_window_size=2, minimum_number_of_calls=2,
                                            wait_duration_in_open_s=10, automatic_transition=True),
                       schedule=lambda d, fn: timers.append((d, fn)))
    feed(b, ["error", "error"], t=3.0)
    assert b.state == "open" and timers[0][0] == 10
    timers[0][1]()
    assert b.state == "half_open" and b.transitions[-1] == (13.0, "open", "half_open")


def test_half_open_permits_only_n_trials_then_closes_or_reopens():
    b = make(permitted_calls_in_half_open=2)
    feed(b, ["error"] * 4)
    assert b.try_acquire(10.0) and b.try_acquire(10.0)
    assert not b.try_acquire(10.0)  # a third concurrent trial is not permitted
    b.on_result(10.1, "ok", 0.1)
    assert b.state == "half_open"  # waits for all permitted trials
    b.on_result(10.2, "ok", 0.1)
    assert b.state == "closed"
    feed(b, ["error"] * 3, t=11)  # a fresh window: 3 < minimum 4
    assert b.state == "closed"

    b = make(permitted_calls_in_half_open=2)
    feed(b, ["error"] * 4)
    b.try_acquire(10.0), b.try_acquire(10.0)
    b.on_result(10.1, "ok", 0.1)
    b.on_result(10.2, "error", 0.1)  # 1 of 2 = 50% >= 50%
    assert b.state == "open"
    assert [(f, t) for _, f, t in b.transitions] == [("closed", "open"), ("open", "half_open"),
                                                     ("half_open", "open")]
    assert not b.try_acquire(15.0)  # a new full wait from the re-opening at 10.2
    assert b.try_acquire(20.2)


def test_forced_states_and_bad_config():
    b = make()
    b.transition_to(1.0, "forced_open")
    assert not b.try_acquire(100.0)
    b.transition_to(2.0, "disabled")
    feed(b, ["error"] * 10)
    assert b.state == "disabled"
    with pytest.raises(ValueError, match="failure_rate_threshold"):
        CircuitBreakerConfig(failure_rate_threshold=0)
    with pytest.raises(ValueError, match="sliding_window_type"):
        CircuitBreakerConfig(sliding_window_type="sliding")
    with pytest.raises(ValueError, match="permitted_calls_in_half_open"):
        CircuitBreakerConfig(permitted_calls_in_half_open=0)
