"""Durations: the spellings a scenario may use, and the ones it may not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.durations import DurationError, format_duration, parse_duration

from .fuzz_budget import examples

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("1h", 3600.0),
        ("0s", 0.0),
        ("0ms", 0.0),
        ("1h30m", 5400.0),
        ("1h2m3s4ms", 3723.004),
        ("1.5m", 90.0),
        ("100ms", 0.1),
        ("3ms", 0.003),
        (" 30s ", 30.0),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", 'expected a duration like 30s, got "soon"'),
        ("", 'expected a duration like 30s, got ""'),
        ("30s1m", 'expected a duration like 30s, got "30s1m"'),
        ("1m1m", 'expected a duration like 30s, got "1m1m"'),
        ("1m 30s", 'expected a duration like 30s, got "1m 30s"'),
        ("30S", 'expected a duration like 30s, got "30S"'),
        ("30 s", 'expected a duration like 30s, got "30 s"'),
        (".5s", 'expected a duration like 30s, got ".5s"'),
        ("1d", 'expected a duration like 30s, got "1d"'),
        ("-5s", 'expected a duration like 30s, got "-5s" (durations cannot be negative)'),
        (
            "30",
            'expected a duration like 30s, got "30": a bare number is ambiguous, '
            "add a unit (30s or 30ms)",
        ),
        (
            30,
            "expected a duration like 30s, got 30: a bare number is ambiguous, "
            "add a unit (30s or 30ms)",
        ),
        (
            1.5,
            "expected a duration like 30s, got 1.5: a bare number is ambiguous, "
            "add a unit (1.5s or 1.5ms)",
        ),
        (True, "expected a duration like 30s, got true"),
    ],
)
def test_anything_else_is_refused_with_a_phrase_for_the_field(
    value: str | float, message: str
) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


def test_a_long_bare_number_keeps_the_message_short() -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration("1" * 400)
    assert len(str(caught.value)) < 140
    assert str(caught.value).endswith("add a unit (s or ms)")


def test_an_overflowing_duration_is_refused_not_infinite() -> None:
    with pytest.raises(DurationError):
        parse_duration("9" * 400 + "h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (0.1 + 0.2, "300ms"),
        (25.0, "25s"),
        (1.5, "1.5s"),
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (3723.0, "1h2m3s"),
        (120.0, "2m"),
    ],
)
def test_messages_spell_seconds_the_way_a_scenario_would(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=examples(200), deadline=None, database=None)
@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_format_then_parse_gives_the_same_milliseconds(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)
