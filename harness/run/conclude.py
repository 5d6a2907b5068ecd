"""The end of every run: judge it, write its reports (summary.json, junit.xml, report.html), print
the verdict table, and decide the exit code. An aborted, interrupted or crashed run gets its
report too (marked so): what was recorded is worth reading.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from rich.console import Console

from harness.errors import HarnessError
from harness.exit_codes import ExitCode
from harness.history import record_run
from harness.report import judge_run, with_settled, write_report
from harness.report.baseline import with_baseline
from harness.report.data import collect
from harness.report.exitcode import Settled, record_settled
from harness.report.terminal import show
from harness.run.request import RunOutcome
from harness.scenario import Scenario
from harness.verdict.units import duration

__all__ = ["conclude"]


def conclude(
    outcome: RunOutcome,
    scenario: Scenario,
    *,
    tell: Callable[[str], None],
    console: Console | None = None,
    baseline: str | None = None,
) -> RunOutcome:
    """Judge the run, write its reports, print the verdict table; the outcome with the exit code
    the process ends with (:func:`harness.report.exitcode.decide`, the one place that decides
    it). That code is decided before anything is written, and written into
    summary.json, junit.xml and the table as it is: a CI reading the files and one reading the
    process never disagree. Every run directory gets its report, also an aborted, interrupted or
    crashed run's (marked so): what was recorded is worth reading."""
    run_dir = outcome.run_dir
    settled = Settled(
        outcome.exit_code,
        str(outcome.detail.get("error") or "") if outcome.exit_code != ExitCode.OK else "",
    )
    try:
        # Kept with the run, so `harness report` rebuilds to the same code and reason.
        record_settled(run_dir, settled)
    except HarnessError as exc:
        tell(f"recording how the run ended failed: {exc}")
    started = time.monotonic()
    judgement, notes = judge_run(run_dir, scenario)
    judged = time.monotonic()
    try:
        report = collect(run_dir, judgement, notes=notes)
    except HarnessError as exc:
        tell(f"reading the run for its report failed: {exc}")
        return replace(outcome, exit_code=_unreported(outcome.exit_code))
    report = with_baseline(with_settled(report, settled, notes), run_dir, baseline)
    try:
        paths = write_report(run_dir, report)
    except HarnessError as exc:
        tell(f"writing the report failed: {exc}")
        code = _unreported(report.exit_code)
        if code != report.exit_code:
            # Whatever part of it was written must not say a code the process does not end with.
            # The same failure again is possible: the message above already says it.
            with contextlib.suppress(HarnessError):
                write_report(run_dir, replace(report, exit_code=code))
        return replace(outcome, exit_code=code)
    if note := record_run(run_dir.root):  # the reports directory's history (harness history)
        tell(note)
    console = console or _console()
    show(report, console)
    console.print(f"report: {paths.report_html}", markup=False, highlight=False, soft_wrap=True)
    # How long a user waited after the load for the verdict and the files (a long run's cost).
    reported = time.monotonic()
    console.print(
        f"judged in {duration(judged - started)}, reported in {duration(reported - judged)}",
        markup=False,
        highlight=False,
    )
    return replace(outcome, exit_code=report.exit_code, report=paths.report_html)


def _unreported(code: int) -> int:
    # A run that passed but whose report could not be written is not a pass a CI may trust.
    return ExitCode.INFRASTRUCTURE if code == ExitCode.OK else code


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole lines instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)
