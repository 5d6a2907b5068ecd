"""The shop's circuit breaker, driven by a fake clock."""

from __future__ import annotations

import pytest
from shopapp.db import BreakerState, CircuitBreaker

pytestmark = pytest.mark.unit

COOLDOWN_S = 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_s=COOLDOWN_S, clock=clock)


def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_breaker_stays_closed_below_the_failure_threshold(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_breaker_opens_after_consecutive_failures(breaker: CircuitBreaker) -> None:
    open_it(breaker)
    assert not breaker.allow()
    assert breaker.opened_total == 1


def test_a_success_resets_the_consecutive_failure_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2


def test_open_breaker_refuses_until_the_cooldown_has_passed(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S - 0.001)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_trial_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S)
    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()


def test_a_successful_trial_closes_the_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert all(breaker.allow() for _ in range(10))


def test_a_failed_trial_reopens_for_a_full_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S)
    assert breaker.allow()
    clock.advance(0.5)
    breaker.record_failure()  # one failure is enough when half-open
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_total == 2
    clock.advance(COOLDOWN_S - 0.001)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.allow()


def test_an_abandoned_trial_frees_the_slot_for_another(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S)
    assert breaker.allow()
    breaker.abandon()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_a_trial_that_never_reports_does_not_wedge_the_breaker(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(COOLDOWN_S)
    assert breaker.allow()
    clock.advance(COOLDOWN_S - 0.001)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.allow()


def test_a_late_success_from_before_the_opening_closes_it(breaker: CircuitBreaker) -> None:
    # A request let in while closed finishes after the breaker opened: the database answered.
    open_it(breaker)
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_abandon_when_closed_changes_nothing(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.abandon()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 1


def test_a_threshold_below_one_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0, cooldown_s=1, clock=clock)
