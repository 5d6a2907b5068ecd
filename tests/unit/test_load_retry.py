"""The client retry policy: full-jitter backoff, Retry-After never undercut, attempts capped."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.load.retry import NAIVE, RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


def top(low: float, high: float) -> float:
    """A "uniform" that always draws the ceiling, to see it."""
    return high


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 2 ", 2.0), ("0", 0.0), ("1.5", 1.5)],
)
def test_retry_after_in_seconds_is_read(header: str, seconds: float) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: NOW) == 30.0


def test_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=lambda: NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "  ", "-1", "soon", "nan", "inf", "Wed, 99 Foo"])
def test_an_absent_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header) is None


# --- the policy -------------------------------------------------------------------------------


def test_the_backoff_ceiling_doubles_from_base_up_to_cap() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=1.0)
    assert [policy.backoff(n, top) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=1.0)
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return (low + high) / 2

    assert policy.backoff(2, uniform) == pytest.approx(0.2)
    ((low, high),) = drawn
    assert low == 0.0
    assert high == pytest.approx(0.4)


def test_without_jitter_the_wait_is_the_ceiling_itself() -> None:
    policy = RetryPolicy(base_s=0.25, cap_s=10.0, jitter=False)
    assert policy.backoff(3, random.uniform) == 2.0


def test_a_huge_retry_number_waits_the_cap_instead_of_overflowing() -> None:
    assert RetryPolicy(base_s=1.0, cap_s=7.0).backoff(5000, top) == 7.0


@settings(max_examples=examples(100))  # Hypothesis's default, a quarter outside CI
@given(
    retry=st.integers(0, 100),
    retry_after=st.one_of(st.none(), st.floats(0, 30)),
    seed=st.integers(0, 2**32),
)
def test_a_retry_never_goes_out_before_its_retry_after(
    retry: int, retry_after: float | None, seed: int
) -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=5.0)
    wait = policy.wait(retry, retry_after, random.Random(seed).uniform)
    assert wait >= (retry_after or 0.0)
    assert wait <= max(5.0, retry_after or 0.0)


def test_retryable_statuses_and_connection_errors_are_retried() -> None:
    policy = RetryPolicy(max_attempts=3)
    for status in [*sorted(RETRYABLE_STATUSES), 0]:
        assert policy.should_retry(status, 1, None), status
    for status in (200, 201, 400, 404, 409, 500):
        assert not policy.should_retry(status, 1, None), status


def test_connection_errors_are_not_retried_when_the_policy_says_so() -> None:
    assert not RetryPolicy(retry_connection_errors=False).should_retry(0, 1, None)


def test_attempts_stop_at_the_cap_counting_the_first() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(503, 2, None)
    assert not policy.should_retry(503, 3, None)
    assert not RetryPolicy(max_attempts=1).should_retry(503, 1, None)


def test_a_retry_after_longer_than_the_client_waits_ends_the_request() -> None:
    policy = RetryPolicy(max_retry_after_s=10.0)
    assert policy.should_retry(503, 1, 10.0)
    assert not policy.should_retry(503, 1, 10.5)


def test_the_naive_policy_retries_at_once_and_ignores_retry_after() -> None:
    assert NAIVE.wait(0, 30.0, random.uniform) == 0.0
    assert NAIVE.wait(7, 3600.0, random.uniform) == 0.0
    assert NAIVE.should_retry(503, 9, 3600.0)
    assert not NAIVE.should_retry(503, 10, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_attempts", 0), ("base_s", -1.0), ("cap_s", float("nan")), ("max_retry_after_s", -0.1)],
)
def test_a_nonsensical_policy_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
