"""The timeline's details: times as the At column writes them, other numbers rounded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.record import EventKind, RunStatus
from harness.report import write_reports
from harness.report.html import detail_value

from .test_report_synthetic import T0, build_run, clock_at, judgement

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]


def test_an_offset_reads_as_the_at_column_does() -> None:
    assert detail_value("offset", 40.04419779777527, origin=0.0) == "+40.0s"


def test_a_unix_time_is_shown_as_seconds_since_the_run_start() -> None:
    assert detail_value("started_at", T0 + 40.0144, origin=T0) == "+40.0s"


def test_a_small_number_under_an_at_key_is_not_taken_for_a_unix_time() -> None:
    assert detail_value("retry_at", 2.5, origin=T0) == "2.5"


def test_other_numbers_keep_four_significant_digits() -> None:
    assert detail_value("ratio", 0.123456789, origin=0.0) == "0.1235"
    assert detail_value("spawn_rate", 10.0, origin=0.0) == "10"
    assert detail_value("users", 20, origin=0.0) == "20"


def test_floats_inside_lists_and_objects_are_rounded_too() -> None:
    value = {"weights": [0.333333333, 2], "ok": True}
    assert detail_value("x", value, origin=0.0) == '{"weights":[0.3333,2],"ok":true}'


def test_strings_and_flags_pass_through() -> None:
    assert detail_value("target", "app-1", origin=0.0) == "app-1"
    assert detail_value("manual", True, origin=0.0) == "true"


def test_the_timeline_of_a_real_page_rounds_a_fault_events_times(tmp_path: Path) -> None:
    run = build_run(tmp_path, finish=None)
    writer = run.writer(clock=clock_at(T0 + 41.0))
    # What a fault event carries: the unix time its injection began, its offset into the run.
    detail = {"started_at": T0 + 40.0144, "offset": 40.04419779777527, "latency": 40.123456}
    writer.event(EventKind.FAULT_INJECTED, "extra", detail, t=T0 + 40.05)
    writer.finish(RunStatus.COMPLETED)
    writer.close()
    html = write_reports(run, judgement()).report_html.read_text(encoding="utf-8")
    timeline = html.split("<h2>Timeline</h2>")[1]
    assert "started_at=+40.0s, offset=+40.0s, latency=40.12" in timeline
    assert not re.search(r"\d\.\d{5,}", timeline)  # no float printed whole
