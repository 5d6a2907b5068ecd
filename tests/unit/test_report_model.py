"""The badge and the exit code, and reading the verdict's recovery under either shape."""

from __future__ import annotations

import pytest

from harness.record import RunStatus
from harness.report.model import Outcome, Unjudged, exit_code, outcome_of, recovery_of

from .test_report_synthetic import KILL_RECOVERY, SLOW_DB_RECOVERY, T0

pytestmark = pytest.mark.unit


def j(*, passed: bool = True, aborted: bool = False, incomplete: bool = False) -> Unjudged:
    return Unjudged(passed=passed, aborted=aborted, incomplete=incomplete)


@pytest.mark.parametrize(
    ("status", "judgement", "outcome", "code"),
    [
        (RunStatus.COMPLETED, j(), Outcome.PASS, 0),
        (RunStatus.COMPLETED, j(passed=False), Outcome.FAIL, 1),
        (RunStatus.ABORTED, j(passed=False), Outcome.ABORTED, 4),
        (RunStatus.COMPLETED, j(aborted=True), Outcome.ABORTED, 4),  # the verdict saw a breach
        (RunStatus.CRASHED, j(), Outcome.INCOMPLETE, 3),  # a pass over half a run is no pass
        (RunStatus.RUNNING, j(), Outcome.INCOMPLETE, 3),
        (RunStatus.INTERRUPTED, j(passed=False), Outcome.INCOMPLETE, 130),
        (RunStatus.COMPLETED, j(incomplete=True), Outcome.INCOMPLETE, 3),
    ],
)
def test_outcome_and_exit_code(
    status: RunStatus, judgement: Unjudged, outcome: Outcome, code: int
) -> None:
    assert outcome_of(status, judgement) is outcome
    assert exit_code(status, outcome) == code


def test_a_recovery_in_the_briefs_shape_reads_as_is() -> None:
    rec = recovery_of(KILL_RECOVERY)
    assert (rec.fault, rec.recovery_time_s, rec.time_to_first_impact_s) == ("kill-app-1", 4.2, 0.1)
    assert (rec.reverted_at, rec.failed_requests, rec.detail) == (T0 + 18, 150, "")


def test_a_recovery_in_the_verdict_modules_shape_reads_too() -> None:
    rec = recovery_of(SLOW_DB_RECOVERY)
    assert rec.recovery_time_s is None
    assert rec.recovered_at is None
    assert rec.time_to_first_impact_s == 0.3
    assert rec.reverted_at is None
    assert rec.failed_requests == 0
    assert rec.detail.startswith("never recovered")


def test_a_recovery_missing_everything_is_still_a_recovery() -> None:
    rec = recovery_of(object())
    assert rec.fault == "?"
    assert rec.failed_requests is None
    assert rec.recovered_at is None


def test_the_package_exports_what_it_lists() -> None:
    import harness.report

    for name in harness.report.__all__:
        assert hasattr(harness.report, name), name
