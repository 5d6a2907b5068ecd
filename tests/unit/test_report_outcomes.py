"""Every rendering shows an SLO's outcome as the verdict gave it (pass, fail, n/a, no data) and
marks a recovery another fault overlapped: terminal, HTML, JUnit and summary.json."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report import write_reports
from harness.report.data import collect
from harness.report.junit import render_junit
from harness.report.summary import summary
from harness.report.terminal import plain_lines
from harness.verdict.evaluate import Verdict

from .test_report_synthetic import KILL_RECOVERY, build_run, judgement

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]


def verdict(name: str, outcome: str, passed: bool, observed: float | None = None) -> Verdict:
    return Verdict(
        name=name,
        expression="backoff_growth >= 1.5",
        window_label="whole run",
        observed=observed,
        threshold=1.5,
        comparator=">=",
        unit="",
        passed=passed,
        detail=f"why {name}",
        outcome=outcome,  # type: ignore[arg-type]  # the four are tried, as strings
    )


VERDICTS = (
    verdict("measured-pass", "pass", True, 2.0),
    verdict("measured-fail", "fail", False, 1.0),
    verdict("not-applicable", "n/a", True),
    verdict("no-data-fails", "no data", False),
    verdict("no-data-passes", "no data", True),
)


@dataclasses.dataclass(frozen=True)
class Overlapped:
    """KILL_RECOVERY with the faults in force before it recovered."""

    fault: str = KILL_RECOVERY.fault
    injected_at: float = KILL_RECOVERY.injected_at
    reverted_at: float | None = KILL_RECOVERY.reverted_at
    reference_at: float = KILL_RECOVERY.reference_at
    recovered_at: float | None = KILL_RECOVERY.recovered_at
    recovery_time_s: float | None = KILL_RECOVERY.recovery_time_s
    time_to_first_impact_s: float | None = KILL_RECOVERY.time_to_first_impact_s
    failed_requests: int = KILL_RECOVERY.failed_requests
    overlapping: tuple[str, ...] = ("slow-db",)


def test_summary_json_says_each_outcome_and_the_overlap(tmp_path: Path) -> None:
    report = collect(build_run(tmp_path), judgement(verdicts=VERDICTS, recoveries=(Overlapped(),)))
    data = summary(report)
    outcomes = {s["name"]: (s["outcome"], s["passed"]) for s in data["slos"] if s["judged"]}
    assert outcomes == {
        "measured-pass": ("pass", True),
        "measured-fail": ("fail", False),
        "not-applicable": ("n/a", True),
        "no-data-fails": ("no data", False),
        "no-data-passes": ("no data", True),
    }
    (recovery,) = data["recoveries"]
    assert recovery["overlapping"] == ["slow-db"]


def test_junit_skips_n_a_with_its_reason_and_errors_on_failing_no_data(tmp_path: Path) -> None:
    report = collect(build_run(tmp_path), judgement(verdicts=VERDICTS))
    root = ET.fromstring(render_junit(report))
    got = {}
    for case in root.iter("testcase"):
        children = list(case)
        got[case.attrib["name"]] = (
            (children[0].tag, children[0].get("message")) if children else None
        )
    assert got["measured-pass"] is None
    assert got["measured-fail"] == ("failure", "observed 1, expected >= 1.5 (whole run)")
    assert got["not-applicable"] == ("skipped", "n/a: why not-applicable")
    assert got["no-data-fails"] == ("error", "no data: observed none, expected >= 1.5 (whole run)")
    assert got["no-data-passes"] == ("skipped", "no data: why no-data-passes")


def test_the_terminal_shows_n_a_and_marks_the_overlapped_recovery(tmp_path: Path) -> None:
    report = collect(build_run(tmp_path), judgement(verdicts=VERDICTS, recoveries=(Overlapped(),)))
    lines = plain_lines(report)
    result = {
        name: line.split()[0] for line in lines for name in VERDICTS_BY_NAME if f" {name} " in line
    }
    assert result == {
        "measured-pass": "PASS",
        "measured-fail": "FAIL",
        "not-applicable": "N/A",
        "no-data-fails": "NO",  # "NO DATA"
        "no-data-passes": "NO",  # "NO DATA (PASS)"
    }
    assert any("NO DATA (PASS)" in line for line in lines)
    assert any("kill-app-1 [overlaps slow-db]" in line for line in lines)


def test_the_html_shows_n_a_and_marks_the_overlapped_recovery(tmp_path: Path) -> None:
    paths = write_reports(
        build_run(tmp_path), judgement(verdicts=VERDICTS, recoveries=(Overlapped(),))
    )
    html = paths.report_html.read_text()
    assert '<span class="pill skip">n/a</span>' in html
    assert "no data (pass)" in html
    assert "(overlaps slow-db)" in html
    assert json.loads(paths.summary_json.read_text())["recoveries"][0]["overlapping"] == ["slow-db"]


VERDICTS_BY_NAME = {v.name: v for v in VERDICTS}
