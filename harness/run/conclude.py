"""The end of every run: judge it, write its reports (summary.json, junit.xml, report.html), print
the verdict table, and decide the exit code. An aborted, interrupted or crashed run gets its
report too (marked so): what was recorded is worth reading.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

from rich.console import Console

from harness.errors import HarnessError
from harness.exit_codes import ExitCode
from harness.report import judge_run, write_report
from harness.report.data import collect
from harness.report.terminal import show
from harness.run.request import RunOutcome
from harness.scenario import Scenario

__all__ = ["conclude"]


def conclude(
    outcome: RunOutcome,
    scenario: Scenario,
    *,
    tell: Callable[[str], None],
    console: Console | None = None,
) -> RunOutcome:
    """Judge the run, write its reports, print the verdict table; the outcome with the exit code
    the verdict decides. Every run directory gets its report, also an aborted, interrupted or
    crashed run's (marked so): what was recorded is worth reading."""
    run_dir = outcome.run_dir
    judgement, notes = judge_run(run_dir, scenario)
    try:
        report = collect(run_dir, judgement, notes=notes)
        paths = write_report(run_dir, report)
    except HarnessError as exc:
        tell(f"writing the report failed: {exc}")
        code = ExitCode.INFRASTRUCTURE if outcome.exit_code == ExitCode.OK else outcome.exit_code
        return replace(outcome, exit_code=code)
    console = console or _console()
    show(report, console)
    console.print(f"report: {paths.report_html}", markup=False, highlight=False, soft_wrap=True)
    code = outcome.exit_code
    if code == ExitCode.OK:
        # A completed run: the SLOs decide (0 or 1); a verdict that could not be reached is 3.
        code = ExitCode.INFRASTRUCTURE if notes else report.exit_code
    return replace(outcome, exit_code=code, report=paths.report_html)


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole lines instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)
