"""SLO limits on the plots: which SLOs get a line, on which plot, at what value, over what span."""

from __future__ import annotations

import pytest

from harness.report.series import FaultSpan, PhaseSpan, Threshold
from harness.report.thresholds import slo_thresholds

pytestmark = pytest.mark.unit

RUN = (0.0, 40.0)
PHASES = (
    PhaseSpan("warmup", 0.0, 10.0, 10, ended=True),
    PhaseSpan("spike", 10.0, 30.0, 60, ended=True),
    PhaseSpan("cooldown", 30.0, 40.0, 10, ended=True),
)
FAULTS = (FaultSpan("kill-app-1", 14.0, 22.0, reverted=True),)


def lines(*slos: tuple[str, str]) -> tuple[Threshold, ...]:
    return slo_thresholds(slos, run=RUN, phases=PHASES, faults=FAULTS)


def test_a_503_share_slo_is_a_line_in_percent_over_its_phase() -> None:
    (line,) = lines(("spike-503s-bounded", "ratio(status == 503) < 30% during phase spike"))
    assert line == Threshold(
        plot="ratios",
        slo="spike-503s-bounded",
        label="SLO spike-503s-bounded: < 30%",
        value=pytest.approx(30.0),  # type: ignore[arg-type]
        start=10.0,
        end=30.0,
    )


def test_a_latency_percentile_slo_is_a_line_in_milliseconds() -> None:
    (line,) = lines(("warmup-p99", "p99(latency) < 250ms during phase warmup"))
    assert (line.plot, line.value, line.start, line.end) == ("latency", 250.0, 0.0, 10.0)
    assert line.label == "SLO warmup-p99: < 250ms"


def test_a_limit_written_in_seconds_is_still_drawn_in_milliseconds() -> None:
    (line,) = lines(("p95", "p95(latency) <= 1.5s"))
    assert line.value == pytest.approx(1500.0)
    assert (line.start, line.end) == RUN  # no window: the whole run


def test_retry_amplification_goes_on_its_own_panel() -> None:
    (line,) = lines(("amp", "retry_amplification < 1.5"))
    assert (line.plot, line.value) == ("amplification", 1.5)


def test_a_fault_window_runs_to_the_revert_plus_its_extension() -> None:
    (line,) = lines(("during-kill", "ratio(status == 503) < 50% during fault kill-app-1 + 5s"))
    assert (line.start, line.end) == (14.0, 27.0)


def test_a_bare_window_name_finds_the_phase_or_the_fault() -> None:
    phase, fault = lines(
        ("a", "p99(latency) < 1s during cooldown"),
        ("b", "p99(latency) < 1s during kill-app-1"),
    )
    assert (phase.start, phase.end) == (30.0, 40.0)
    assert (fault.start, fault.end) == (14.0, 22.0)


def test_slos_no_plot_shows_get_no_line() -> None:
    assert (
        lines(
            ("avail", "availability >= 99.5% during phase warmup"),  # no availability plot
            ("filtered", "ratio(status == 503, where status >= 500) < 10%"),  # not the 503 share
            ("5xx", "ratio(status >= 500) < 1%"),  # not the 503 share either
            ("500s", "count(status == 500) == 0"),
            ("recovers", "recovery_time(kill-app-1) < 15s"),
        )
        == ()
    )


def test_an_unknown_window_or_a_bad_slo_draws_nothing_rather_than_a_wrong_line() -> None:
    assert lines(("gone", "p99(latency) < 1s during phase soak"), ("bad", "p99(latency <")) == ()
