"""The one number format (harness.verdict.units, the report's ``fmt``): every rendering of a
value reads the same, in the unit it is shown in, and a failed SLO never reads as a pass."""

from __future__ import annotations

import pytest

from harness.report import fmt
from harness.verdict import units

pytestmark = pytest.mark.unit


def test_the_report_formatter_is_the_verdict_formatter() -> None:
    # One implementation: the report's name re-exports, it defines nothing of its own.
    for name in fmt.__all__:
        assert getattr(fmt, name) is getattr(units, name), name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.2708, "0.2708"),
        (0.27084, "0.2708"),
        (40.75, "40.75"),
        (4.808, "4.808"),
        (22285.0, "22,285"),
        (22285.4, "22,285"),
        (1234.6, "1,235"),
        (7.0, "7"),
        (0.0, "0"),
        (-0.0, "0"),
        (-0.5, "-0.5"),
        (0.00001234, "0.00001234"),
        (9.99996, "10"),
        (None, "n/a"),
        (float("nan"), "n/a"),
        (float("inf"), "∞"),
    ],
)
def test_a_number_has_four_significant_digits_grouped_and_no_exponent(
    value: float | None, text: str
) -> None:
    assert units.number(value) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.075, "%", "7.5%"),
        (0.04808, "%", "4.808%"),
        (0.12, "%", "12%"),
        (0.0407, "ms", "40.7ms"),  # seconds held, shown in the unit written
        (0.04075, "ms", "40.75ms"),
        (0.287, "ms", "287ms"),
        (0.2708, "s", "0.2708s"),
        (2.0, "s", "2s"),
        (90.0, "m", "1.5m"),
        (3.0, "", "3"),
        (22282.0, "", "22,282"),
        (1.25, "", "1.25"),
        (None, "%", "n/a"),
        (float("nan"), "ms", "n/a"),
    ],
)
def test_a_measured_value_shows_in_the_unit_its_slo_was_written_in(
    value: float | None, unit: str, text: str
) -> None:
    assert units.measured(value, unit) == text


def test_a_measured_value_has_one_name_in_every_layer() -> None:
    # An alias invites a second formatter to grow behind it; the verdict, the report and the
    # game day all call ``measured``.
    from harness.report import fmt

    assert not hasattr(units, "format_value")
    assert not hasattr(fmt, "format_value")
    assert fmt.measured is units.measured


def test_a_failed_threshold_never_reads_the_same_as_the_value() -> None:
    # 99.4996% >= 99.5% failed: four digits would print "99.5% >= 99.5%".
    assert units.measured(0.994996, "%") == units.measured(0.995, "%")
    observed, threshold = units.measured_pair(0.994996, 0.995, "%")
    assert observed != threshold
    assert (observed, threshold) == ("99.4996%", "99.5%")
    assert units.measured_pair(0.4, 0.5, "s") == ("0.4s", "0.5s")
    assert units.measured_pair(0.5, 0.5, "s") == ("0.5s", "0.5s")
    assert units.measured_pair(None, 0.5, "%") == ("n/a", "50%")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2708, "0.2708s"),
        (7.36, "7.36s"),
        (45.5, "45.5s"),
        (59.99, "59.99s"),
        (125.0, "2m05s"),
        (3720.0, "1h02m"),
        (None, "n/a"),
    ],
)
def test_a_duration_reads_like_a_scenario_writes_it(seconds: float | None, text: str) -> None:
    assert units.duration(seconds) == text


@pytest.mark.parametrize(
    ("helper", "value", "text"),
    [
        (units.percent, 0.04808, "4.808%"),
        (units.percent, 0.0, "0%"),
        (units.percent, None, "n/a"),
        (units.ms, 40.75, "40.75ms"),
        (units.ms, 1008.0, "1,008ms"),
        (units.ms, None, "n/a"),
        (units.count, 22285, "22,285"),
        (units.count, None, "n/a"),
        (units.offset, 40.04419779777527, "+40.0s"),
        (units.offset, -3.21, "-3.2s"),
    ],
)
def test_shares_latencies_counts_and_offsets_have_one_form_each(
    helper: object, value: float | None, text: str
) -> None:
    assert callable(helper)
    assert helper(value) == text
