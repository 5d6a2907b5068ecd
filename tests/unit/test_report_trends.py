"""The report's trends: the latest runs of the scenario from the history, oldest first, this run
last and highlighted; nothing for a first run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history import previous_runs, record_run
from harness.report.data import collect
from harness.report.html import render_html
from harness.report.trends import TREND_RUNS, trend_points, trends_figure
from tests.unit.history_stores import make_run
from tests.unit.test_report_synthetic import build_run, judgement

pytestmark = pytest.mark.unit


def test_a_first_run_has_no_trends(tmp_path: Path) -> None:
    report = collect(build_run(tmp_path), judgement())
    assert report.history == ()
    assert trends_figure(report) is None
    assert "<h2>Trends</h2>" not in render_html(report, {})


def test_the_last_n_runs_oldest_first_and_this_run_last(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for i in range(25):
        record_run(
            make_run(reports, f"h{i:02d}", scenario="flash-sale", at=-1e6 + i, p99_ms=100 + i)
        )
    record_run(make_run(reports, "other", scenario="other", at=-1e5))
    report = collect(build_run(tmp_path), judgement())
    assert len(report.history) == TREND_RUNS
    rows = trend_points(report)
    assert len(rows) == TREND_RUNS
    assert [r.run for r in rows[:-1]] == [f"h{i:02d}" for i in range(6, 25)]
    assert rows[-1].run == report.run_name
    assert rows[-1].figure("total:p99_ms") == report.totals.p99_ms
    fig = trends_figure(report)
    assert fig is not None
    highlighted = [a for ax in fig.axes for a in ax.lines if a.get_gid() == "trend-this-run"]
    # One per panel that has this run's figure (this run never recovered: no recovery point).
    assert len(highlighted) == 3
    assert "<h2>Trends</h2>" in render_html(report, {})


def test_previous_runs_leave_out_the_run_itself(tmp_path: Path) -> None:
    record_run(make_run(tmp_path, "a", at=0))
    record_run(make_run(tmp_path, "b", at=1))
    assert [r.run for r in previous_runs(tmp_path / "b", "ci-gate")] == ["a"]
    assert previous_runs(tmp_path / "none" / "x", "ci-gate") == ()
