from __future__ import annotations

import pytest

from infrastructure.serving.in_flight_limit import DECAY, InFlightLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _answer(limit: InFlightLimit, clock: Clock, count: int, over_s: float) -> None:
    """``count`` answers spread evenly over ``over_s`` seconds, then one more a moment
    later (it closes the last window, whatever the rounding of the clock's steps)."""
    for _ in range(count):
        clock.now += over_s / count
        limit.answered(clock.now)
    clock.now += 0.001
    limit.answered(clock.now)


def test_without_a_latency_bound_the_floor_is_the_limit() -> None:
    clock = Clock()
    limit = InFlightLimit(256, 0.0, clock)
    _answer(limit, clock, 5000, 1.0)
    assert limit.current() == 256


def test_the_limit_is_the_measured_answer_rate_times_the_bound() -> None:
    # Given a worker that answered 3,000 requests in a second, with a 1 s latency bound
    clock = Clock()
    limit = InFlightLimit(256, 1.0, clock)
    assert limit.current() == 256  # nothing measured yet
    _answer(limit, clock, 3000, 1.0)
    # Then it may hold as many in flight as it answers within the bound
    assert limit.rate == pytest.approx(3000, rel=0.01)
    assert limit.current() == pytest.approx(3000, rel=0.01)


def test_the_limit_never_falls_below_the_floor() -> None:
    clock = Clock()
    limit = InFlightLimit(256, 1.0, clock)
    _answer(limit, clock, 50, 1.0)
    assert limit.rate == pytest.approx(50, rel=0.05)
    assert limit.current() == 256


def test_a_slower_worker_lowers_the_limit_within_seconds() -> None:
    # Given a worker measured at 3,000 answers/s (then its model was swapped for a slower one)
    clock = Clock()
    limit = InFlightLimit(10, 1.0, clock)
    _answer(limit, clock, 3000, 1.0)
    measured = limit.rate
    assert measured == pytest.approx(3000, rel=0.01)
    # When it answers 500/s for ten seconds
    _answer(limit, clock, 5000, 10.0)
    # Then the limit has decayed (a tenth per window), and not below the new rate
    assert 500 <= limit.rate <= measured * DECAY**8
    assert limit.current() == int(limit.rate)


def test_an_idle_spell_decays_the_rate_once() -> None:
    clock = Clock()
    limit = InFlightLimit(10, 1.0, clock)
    _answer(limit, clock, 2000, 1.0)
    measured = limit.rate
    assert measured > 1000
    clock.now += 3600.0  # an hour without a request
    limit.answered(clock.now)
    assert limit.rate == pytest.approx(measured * DECAY)


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        InFlightLimit(-1, 1.0)


def test_the_ceiling_is_reported_at_once_and_whenever_a_window_moves_it() -> None:
    clock = Clock()
    reported: list[int] = []
    limit = InFlightLimit(256, 1.0, clock, on_change=reported.append)
    assert reported == [256]  # the floor, before anything is measured
    _answer(limit, clock, 100, 1.0)  # below the floor: nothing new to report
    assert reported == [256]
    _answer(limit, clock, 3000, 1.0)
    assert len(reported) == 2 and reported[-1] == limit.current() > 2900
