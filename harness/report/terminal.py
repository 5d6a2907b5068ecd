"""The verdict at the end of ``harness run`` (and ``harness report``): a Rich table on a terminal,
plain aligned text otherwise (CI logs, pipes), where box drawing and colour codes only get in the
way of grep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.report import fmt
from harness.report.data import RunReport
from harness.report.model import Outcome

__all__ = ["plain_lines", "show"]

_STYLE: Final = {
    Outcome.PASS: "bold white on green",
    Outcome.FAIL: "bold white on red",
    Outcome.ABORTED: "bold white on dark_orange3",
    Outcome.INCOMPLETE: "bold white on magenta",
}


def _verdict_rows(report: RunReport) -> list[tuple[str, str, str, str, str, str]]:
    """(result, SLO, window, observed, threshold, detail) per SLO, judged or not."""
    rows = []
    for v in report.judgement.verdicts:
        result = "PASS" if v.passed else ("NO DATA" if v.observed is None else "FAIL")
        rows.append(
            (
                result,
                v.name,
                v.window_label,
                fmt.measured(v.observed, v.unit),
                f"{v.comparator} {fmt.measured(v.threshold, v.unit)}",
                v.detail,
            )
        )
    rows += [("SKIP", s.name, "", fmt.NA, "", "not judged") for s in report.unjudged]
    return rows


def _recovery_rows(report: RunReport) -> list[tuple[str, str, str, str]]:
    """(fault, first impact, recovery, failed requests) per assessed fault."""
    return [
        (
            r.fault,
            "no impact seen"
            if r.time_to_first_impact_s is None
            else fmt.duration(r.time_to_first_impact_s),
            fmt.duration(r.recovery_time_s) if r.recovered_at is not None else "never recovered",
            fmt.NA if r.failed_requests is None else str(r.failed_requests),
        )
        for r in report.recoveries
    ]


def _headline(report: RunReport) -> str:
    return (
        f"{report.outcome.value}  {report.scenario}  ({report.status.value}, "
        f"exit {report.exit_code}, {fmt.duration(report.duration)})"
    )


def _columns(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def plain_lines(report: RunReport) -> list[str]:
    """The same content as :func:`show`, as plain text lines."""
    lines = [_headline(report), f"load: {report.load_model.text}"]
    lines += [f"aborted by guard: {reason}" for reason in report.aborted_by]
    if report.error:
        lines.append(f"error: {report.error}")
    lines += [f"note: {note}" for note in report.notes]
    verdicts = _verdict_rows(report)
    if verdicts:
        lines.append("")
        lines += _columns(verdicts, ("RESULT", "SLO", "WINDOW", "OBSERVED", "THRESHOLD", "DETAIL"))
    recoveries = _recovery_rows(report)
    if recoveries:
        lines.append("")
        lines += _columns(recoveries, ("FAULT", "FIRST IMPACT", "RECOVERY", "FAILED REQUESTS"))
    checks = check_rows(report)
    if checks:
        lines.append("")
        lines += _columns(checks, ("CHECK", "BEFORE", "AFTER", "DELTA", "ERROR"))
    return lines


def check_rows(report: RunReport) -> list[tuple[str, str, str, str, str]]:
    """One row per post-run check: its readings, and why one is missing."""

    def shown(value: float | None) -> str:
        return "none" if value is None else f"{value:g}"

    return [
        (c.name, shown(c.before), shown(c.after), shown(c.delta), "; ".join(c.errors))
        for c in report.checks
    ]


def _rich(report: RunReport, console: Console) -> None:
    headline = Text()
    headline.append(f" {report.outcome.value} ", style=_STYLE[report.outcome])
    headline.append(f"  {_headline(report).split('  ', 1)[1]}")
    console.print(headline)
    console.print(Text(f"load: {report.load_model.text}"))
    for reason in report.aborted_by:
        console.print(Text(f"aborted by guard: {reason}", style="dark_orange3"))
    if report.error:
        console.print(Text(f"error: {report.error}", style="red"))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    verdicts = _verdict_rows(report)
    if verdicts:
        table = Table(title="SLOs", title_justify="left")
        for name in ("Result", "SLO", "Window", "Observed", "Threshold", "Detail"):
            right = name in ("Observed", "Threshold")
            table.add_column(name, justify="right" if right else "left", overflow="fold")
        for result, *cells in verdicts:
            style = {"PASS": "green", "SKIP": "dim"}.get(result, "bold red")
            table.add_row(Text(result, style=style), *(Text(c) for c in cells))
        console.print(table)
    recoveries = _recovery_rows(report)
    if recoveries:
        table = Table(title="Recovery", title_justify="left")
        table.add_column("Fault")
        for name in ("First impact", "Recovery", "Failed requests"):
            table.add_column(name, justify="right")
        for fault, impact, recovery, failed in recoveries:
            style = "bold red" if recovery == "never recovered" else ""
            table.add_row(Text(fault), Text(impact), Text(recovery, style=style), Text(failed))
        console.print(table)
    checks = check_rows(report)
    if checks:
        table = Table(title="Checks", title_justify="left")
        for name in ("Check", "Before", "After", "Delta", "Error"):
            right = name in ("Before", "After", "Delta")
            table.add_column(name, justify="right" if right else "left", overflow="fold")
        for row in checks:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)


def show(report: RunReport, console: Console | None = None) -> None:
    """Print the verdict: Rich when ``console`` writes to a terminal, plain text otherwise."""
    console = console or Console()
    if console.is_terminal:
        _rich(report, console)
    else:
        # Through the console's file, not print(): tests and callers redirect that one.
        console.file.write("\n".join(plain_lines(report)) + "\n")
