"""The end of every run: judge it, write its reports (summary.json, junit.xml, report.html), print
the verdict table, and decide the exit code. An aborted, interrupted or crashed run gets its
report too (marked so): what was recorded is worth reading.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from rich.console import Console

from harness.errors import HarnessError
from harness.exit_codes import ExitCode
from harness.report import judge_run, write_report
from harness.report.data import collect
from harness.report.terminal import show
from harness.run.request import RunOutcome
from harness.scenario import Scenario

__all__ = ["conclude", "exit_code_of"]


def conclude(
    outcome: RunOutcome,
    scenario: Scenario,
    *,
    tell: Callable[[str], None],
    console: Console | None = None,
) -> RunOutcome:
    """Judge the run, write its reports, print the verdict table; the outcome with the exit code
    the process ends with. That code is decided before anything is written, and written into
    summary.json, junit.xml and the table as it is: a CI reading the files and one reading the
    process never disagree. Every run directory gets its report, also an aborted, interrupted or
    crashed run's (marked so): what was recorded is worth reading."""
    run_dir = outcome.run_dir
    judgement, notes = judge_run(run_dir, scenario)
    try:
        report = collect(run_dir, judgement, notes=notes)
    except HarnessError as exc:
        tell(f"reading the run for its report failed: {exc}")
        return replace(outcome, exit_code=_unreported(outcome.exit_code))
    report = replace(report, exit_code=exit_code_of(outcome.exit_code, report.exit_code, notes))
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
    console = console or _console()
    show(report, console)
    console.print(f"report: {paths.report_html}", markup=False, highlight=False, soft_wrap=True)
    return replace(outcome, exit_code=report.exit_code, report=paths.report_html)


def exit_code_of(run_code: int, verdict_code: int, notes: Sequence[str]) -> int:
    """The process's exit code: what the run decided (settle: aborted, interrupted, crashed,
    faults left in force, bad input found late) wins; for a run that completed, the SLOs decide
    (0 or 1), and a verdict that could not be reached (``notes`` say why) is 3."""
    if run_code != ExitCode.OK:
        return run_code
    return ExitCode.INFRASTRUCTURE if notes else verdict_code


def _unreported(code: int) -> int:
    # A run that passed but whose report could not be written is not a pass a CI may trust.
    return ExitCode.INFRASTRUCTURE if code == ExitCode.OK else code


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole lines instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)
