"""report.html of a run that never recorded its end says so, and until when it recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.record import RunStatus
from harness.report import write_reports
from harness.report.model import Unjudged

from .test_report_synthetic import build_run

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]

NO_END = "The run recorded no end"
UNJUDGED = Unjudged(passed=False, aborted=False, incomplete=True)


def test_a_run_whose_writer_died_says_until_when_it_recorded_and_points_at_rollback(
    tmp_path: Path,
) -> None:
    run = build_run(tmp_path, upto=20.0, finish=None)  # status running, lock free: killed
    html = write_reports(run, UNJUDGED).report_html.read_text(encoding="utf-8")
    assert NO_END in html
    assert "about +20.0s into the run" in html  # the end of its last recorded bucket
    assert "`harness rollback` reverts them" in html


@pytest.mark.parametrize("status", [RunStatus.CRASHED, RunStatus.INTERRUPTED])
def test_a_run_whose_end_was_recorded_has_no_such_note(tmp_path: Path, status: RunStatus) -> None:
    # The CLI records a master that died, with the reason: that run did not go silent.
    run = build_run(tmp_path, upto=20.0, finish=status, error="the Locust master exited")
    html = write_reports(run, UNJUDGED).report_html.read_text(encoding="utf-8")
    assert "INCOMPLETE: the run did not reach the end of its phases" in html
    assert NO_END not in html
